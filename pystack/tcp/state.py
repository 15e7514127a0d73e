"""The eleven connection states of RFC 9293 3.3.2 (figure 5)."""

from __future__ import annotations

from enum import IntEnum


class State(IntEnum):
    CLOSED = 0
    LISTEN = 1
    SYN_SENT = 2
    SYN_RECEIVED = 3
    ESTABLISHED = 4
    FIN_WAIT_1 = 5
    FIN_WAIT_2 = 6
    CLOSE_WAIT = 7
    CLOSING = 8
    LAST_ACK = 9
    TIME_WAIT = 10

    @property
    def synchronized(self) -> bool:
        """States past the handshake, where RFC 9293 3.10.7.4 and RFC 5961 apply in full."""
        return self >= State.ESTABLISHED
