"""What a connection shows of itself to tools (``pystack ss -i``, frame comments in a pcapng capture):
read here only, so the connection's internals have one reader outside it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pystack.tcp.congestion import SSTHRESH_INITIAL

if TYPE_CHECKING:
    from pystack.tcp.connection import Connection


def congestion_note(conn: Connection) -> str:
    """cwnd, ssthresh and SRTT now, in one short phrase (a frame comment's tail)."""
    cc = conn.cc
    srtt = conn.rtt.srtt
    ssthresh = "-" if cc.ssthresh >= SSTHRESH_INITIAL else str(cc.ssthresh)
    rtt = "-" if srtt is None else f"{srtt * 1000:.3f}ms"
    return f"cwnd={cc.cwnd} ssthresh={ssthresh} srtt={rtt}"


def ca_state(conn: Connection) -> str:
    """The sender's state as Linux names it (tcp_ca_state): Loss after an RTO until SND.UNA passes what
    was out then, Recovery in fast recovery, Disorder on duplicate ACKs or SACKs, else Open."""
    rec = conn._rec
    if conn._retries and conn.snd_una != conn.snd_max:
        return "Loss"
    if rec.in_recovery:
        return "Recovery"
    if rec.dupacks or rec.sacked:
        return "Disorder"
    return "Open"


def tcp_info(conn: Connection) -> dict[str, Any]:
    """Everything ``pystack ss -i`` shows of a connection: Connection.info (what TCP_INFO tells) and
    the rest of its state; sizes in bytes, times in seconds."""
    info: dict[str, Any] = dict(conn.info())
    rec = conn._rec
    una = conn.snd_una
    sacked = rec.sacked.size
    lost = 0
    if rec.in_recovery:  # lost and not yet retransmitted: as RFC 6675 SetPipe counts them
        limit = rec.lost_limit(una)
        if limit > rec.high_rxt:
            lost = limit - rec.high_rxt - rec.sacked.covered(rec.high_rxt, limit)
    info.update(
        congestion_control=conn._cfg.congestion_control,
        ca_state=ca_state(conn),
        bytes_acked=conn._snd.acked,
        bytes_received=conn._rb.pos,
        sacked=sacked,
        lost=lost,
        timeouts=conn.stats["timeouts"],
        fast_retransmits=conn.stats["fast_retransmits"],
        rcv_buffer=conn._rb.cap,
        snd_buffer=conn._snd.cap,
    )
    return info
