"""The connection events TCP tells its context's ``trace`` hook, as ``pystack run --trace`` writes them.

Where ``why`` (pystack.tcp.why) explains single segments, these are the moments a connection's course
changes: a state of RFC 9293 figure 5 entered, a congestion event (recovery entered or left, the loss
window after an RTO), a loss found (and by which rule), the retransmission timer firing, and the peer's
window changing. pystack.trace writes them as JSON lines in the spirit of qlog (a time, a name, data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from pystack.tcp.connection import Connection

Trace = Callable[[float, "Connection", str, dict[str, Any]], None]
"""``trace(now, connection, event, data)``: ``now`` is the time of the segment, timer or call handled."""

STATE = "state"
"""``{"from": state, "to": state}``: every change of RFC 9293 figure 5's states."""
CONGESTION = "congestion"
"""``{"event": ..., "cwnd", "ssthresh", "flight"}``: ``recovery`` (fast recovery entered, RFC 5681 3.2 /
RFC 6675 5), ``recovery_end`` (SND.UNA passed the recovery point), ``rto`` (the loss window, RFC 5681 3.1)."""
LOSS = "loss"
"""``{"seq", "end", "rule"}``: bytes [seq, end) taken for lost, and the rule that found them (duplicate
ACKs, a SACK hole, a partial ACK, the tail loss probe's answer: pystack.tcp.why's reasons)."""
RTO = "rto"
"""``{"retries", "rto", "snd_una", "flight"}``: the retransmission timer fired (RFC 6298 5.4); ``rto`` is
the backed-off timeout that follows."""
WINDOW = "window"
"""``{"from", "to"}``: the peer's receive window (SND.WND, scaled), in bytes, changed."""
