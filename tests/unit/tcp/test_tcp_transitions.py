"""The state-transition table against RFC 9293 figure 5, and Connection._set_state holding to it."""

from __future__ import annotations

import pytest

from pystack.tcp.state import TRANSITIONS, State, TransitionError

from .tcp_helpers import active, passive
from .tcp_harness import Solo


S = State
FIGURE_5 = {
    (S.CLOSED, S.LISTEN), (S.CLOSED, S.SYN_SENT),
    (S.LISTEN, S.SYN_RECEIVED), (S.LISTEN, S.SYN_SENT), (S.LISTEN, S.CLOSED),
    (S.SYN_SENT, S.SYN_RECEIVED), (S.SYN_SENT, S.ESTABLISHED), (S.SYN_SENT, S.CLOSED),
    (S.SYN_RECEIVED, S.ESTABLISHED), (S.SYN_RECEIVED, S.FIN_WAIT_1),
    (S.ESTABLISHED, S.FIN_WAIT_1), (S.ESTABLISHED, S.CLOSE_WAIT),
    (S.FIN_WAIT_1, S.FIN_WAIT_2), (S.FIN_WAIT_1, S.CLOSING), (S.FIN_WAIT_1, S.TIME_WAIT),
    (S.FIN_WAIT_2, S.TIME_WAIT), (S.CLOSING, S.TIME_WAIT),
    (S.CLOSE_WAIT, S.LAST_ACK), (S.LAST_ACK, S.CLOSED), (S.TIME_WAIT, S.CLOSED),
}
"""The arrows of the figure (errata included: CLOSE in CLOSE-WAIT leads to LAST-ACK)."""

ADDED = {
    (S.CLOSED, S.SYN_RECEIVED),  # a connection object is born CLOSED; its listener plays LISTEN
    (S.CLOSED, S.ESTABLISHED),  # the ACK of a SYN cookie (RFC 4987 3.6)
    (S.SYN_RECEIVED, S.CLOSE_WAIT),  # RFC 9293 3.10.7.4 eighth step
} | {(s, S.CLOSED) for s in State if s != S.CLOSED}  # abort, RST, timeouts: any state to CLOSED
"""What the table allows beyond the figure, each for a reason."""


def test_the_table_is_figure_5_and_the_aborts() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table - FIGURE_5 - ADDED == set()
    assert FIGURE_5 - table == {(S.CLOSED, S.LISTEN)}  # listening is the Listener's, not a Connection's
    assert set(TRANSITIONS) == set(State)


def test_a_change_outside_the_table_is_refused_and_changes_nothing() -> None:
    solo = Solo()
    _lst, conn, _synack = passive(solo)
    assert conn.state == S.ESTABLISHED
    with pytest.raises(TransitionError):
        conn._set_state(S.TIME_WAIT)  # ESTABLISHED never goes straight to TIME-WAIT
    assert conn.state == S.ESTABLISHED and solo.counters["tcp.state.TIME_WAIT"] == 0
    conn2, _syn, _ack = active(Solo())
    with pytest.raises(TransitionError):
        conn2._set_state(S.LAST_ACK)
    assert conn2.state == S.ESTABLISHED
