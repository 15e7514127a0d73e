"""The reasons TCP gives for the segments it sends, as the layer's ``why`` hook hears them.

A connection tells the hook where it decides to send (pystack.reasons turns them into the comments of
a pcapng capture). Every segment counted in ``tcp.retransmits`` has a reason that says "retransmission",
and no other reason does, so a capture's comments can be checked against the counter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from pystack.tcp.connection import Connection

Why = Callable[[tuple[int, int, int, int], int, str, "Connection | None"], None]
"""``why((local IP, local port, remote IP, remote port), seq, reason, connection or None)``."""

NEW_DATA = "new data"
FIN = "FIN"
LIMITED_TRANSMIT = "new data, limited transmit on a duplicate ACK (RFC 3042)"
GO_BACK_N = "retransmission, go-back-N after an RTO (RFC 5681 3.1)"
FAST_DUPACKS = "fast retransmission: duplicate ACKs (RFC 5681 3.2)"
FAST_SACK = "fast retransmission: SACK shows a hole (RFC 6675 5)"
FAST_PROBE = "fast retransmission: the tail loss probe's ACK shows a loss (RACK, RFC 8985 7.4)"
PARTIAL_ACK = "retransmission on a partial ACK (RFC 6582 3.2)"
SACK_HOLE = "retransmission of a SACK hole in recovery (RFC 6675 NextSeg)"
SACK_NEW = "new data in SACK recovery (RFC 6675 NextSeg rule 2)"
TLP_NEW = "tail loss probe: new data (RFC 8985 7.3)"
TLP_RETRANSMISSION = "tail loss probe: retransmission of the last segment (RFC 8985 7.3)"
WINDOW_PROBE = "zero window probe (RFC 9293 3.8.6.1)"
SWS_OVERRIDE = "data despite sender SWS avoidance: its override timeout (RFC 9293 3.8.6.2.1)"
ACK_NOW = "ACK"
IMMEDIATE_ACK = "immediate ACK: a segment out of order, filling a hole, or unacceptable (RFC 5681 4.2)"
DELAYED_ACK = "delayed ACK: its timer (RFC 1122 4.2.3.2)"
STRETCH_ACK = "stretch ACK: one for the segments of a batch read at once"
WINDOW_UPDATE = "window update: the reader made room"
CHALLENGE_ACK = "challenge ACK (RFC 5961)"
SYN_COOKIE = "SYN-ACK with a SYN cookie: the SYN queue is full (RFC 4987 3.6)"
RST_CLOSED_PORT = "RST: no socket on this port (RFC 9293 3.10.7.1)"
RST_LISTEN_ACK = "RST: an ACK to a listening port (RFC 9293 3.10.7.2)"
RST_BAD_ACK = "RST: an ACK of nothing we sent (RFC 9293 3.10.7.3)"
RST_ABORT = "RST: the application aborted the connection"
RST_DATA_AFTER_CLOSE = "RST: data arrived after the application closed"


def after_rto(retries: int) -> str:
    """A segment resent because the retransmission timer fired ``retries`` times in a row."""
    return f"retransmission after RTO #{retries} (RFC 6298 5.4)" if retries else GO_BACK_N


def syn(synack: bool, retries: int) -> str:
    kind = "SYN-ACK" if synack else "SYN"
    return f"{kind} again after RTO #{retries}" if retries else kind


def keepalive(probe: int) -> str:
    return f"keepalive probe #{probe} (RFC 1122 4.2.3.6)"
