"""What a connection shows of itself to tools (``pystack ss -i``, frame comments in a pcapng capture):
read here only, so the connection's internals have one reader outside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pystack.tcp.connection import Connection

SSTHRESH_UNSET = 1 << 30
"""The initial, "arbitrarily high" ssthresh of RFC 5681 3.1 (pystack.tcp.congestion)."""


def congestion_note(conn: Connection) -> str:
    """cwnd, ssthresh and SRTT now, in one short phrase (a frame comment's tail)."""
    cc = conn.cc
    srtt = conn.rtt.srtt
    ssthresh = "-" if cc.ssthresh >= SSTHRESH_UNSET else str(cc.ssthresh)
    rtt = "-" if srtt is None else f"{srtt * 1000:.3f}ms"
    return f"cwnd={cc.cwnd} ssthresh={ssthresh} srtt={rtt}"
