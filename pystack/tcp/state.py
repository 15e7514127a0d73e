"""The eleven connection states of RFC 9293 3.3.2, and the changes between them that figure 5 allows."""

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


_S = State
SENDING = frozenset((_S.ESTABLISHED, _S.CLOSE_WAIT, _S.FIN_WAIT_1, _S.CLOSING, _S.LAST_ACK))
"""States that send data (and a FIN), retransmit and probe: after the handshake, until our FIN is acknowledged."""
RECEIVING = frozenset((_S.ESTABLISHED, _S.FIN_WAIT_1, _S.FIN_WAIT_2))
"""States that take the peer's data: after the handshake, until its FIN."""
OPEN = frozenset((_S.ESTABLISHED, _S.FIN_WAIT_1, _S.FIN_WAIT_2, _S.CLOSE_WAIT))
"""Synchronized states where at most one FIN has passed, so one direction at least still carries data. RFC
9293 names them together: a RST there resets the user's calls (3.10.7.4), an ABORT sends one (with
SYN-RECEIVED, 3.10.5); and keepalive (RFC 1122 4.2.3.6) probes the peer in them."""
TRANSITIONS: dict[State, frozenset[State]] = {
    # A connection is born CLOSED and leaves it as figure 5's LISTEN does: SYN sent (active OPEN), or SYN
    # received by its listener; or ESTABLISHED at once from a SYN cookie's ACK (RFC 4987 3.6).
    _S.CLOSED: frozenset((_S.SYN_SENT, _S.SYN_RECEIVED, _S.ESTABLISHED)),
    _S.LISTEN: frozenset((_S.SYN_RECEIVED, _S.SYN_SENT, _S.CLOSED)),
    _S.SYN_SENT: frozenset((_S.SYN_RECEIVED, _S.ESTABLISHED, _S.CLOSED)),
    # FIN_WAIT_1: CLOSE before the handshake completes; CLOSE_WAIT: a FIN with the ACK of our SYN
    # (RFC 9293 3.10.7.4, eighth step).
    _S.SYN_RECEIVED: frozenset((_S.ESTABLISHED, _S.FIN_WAIT_1, _S.CLOSE_WAIT, _S.CLOSED)),
    _S.ESTABLISHED: frozenset((_S.FIN_WAIT_1, _S.CLOSE_WAIT, _S.CLOSED)),
    _S.FIN_WAIT_1: frozenset((_S.FIN_WAIT_2, _S.CLOSING, _S.TIME_WAIT, _S.CLOSED)),
    _S.FIN_WAIT_2: frozenset((_S.TIME_WAIT, _S.CLOSED)),
    _S.CLOSE_WAIT: frozenset((_S.LAST_ACK, _S.CLOSED)),
    _S.CLOSING: frozenset((_S.TIME_WAIT, _S.CLOSED)),
    _S.LAST_ACK: frozenset((_S.CLOSED,)),
    _S.TIME_WAIT: frozenset((_S.CLOSED,)),
}
"""Every state change RFC 9293 figure 5 draws (with its errata: CLOSE in CLOSE-WAIT leads to LAST-ACK),
plus the abort (RST, ABORT, a timeout, an error) from any state to CLOSED, which the figure leaves out.
``Connection._set_state`` refuses any other, as h11's state machine refuses an event its table lacks."""


class TransitionError(RuntimeError):
    """A state change the table does not allow: a bug in the state machine, never the peer's doing."""
