"""Loss recovery for one connection's send side, apart from the connection that sends (as aioquic keeps
its recovery beside its connection): what was lost, and what to send in its place.

- the SACK scoreboard (RFC 2018): SACKed ranges as offsets from SND.UNA, in a RangeSet;
- RFC 6675 pipe and NextSeg, with RACK's rule for IsLost during recovery (RFC 8985 6.2);
- lost-retransmission detection (RACK's inference, made by sequence instead of time);
- the tail loss probe (RFC 8985 7): when it fires, which segment it sends, what its ACK shows;
- fast retransmit's entry state (RFC 5681 3.2, RFC 6582 ``recover``, the duplicate ACK count), with
  the bytes acknowledged in this batch of frames for FlightSize.

The connection owns the sequence numbers and the sending: it hands SND.UNA and offsets in, sends
what NextSeg and the probe choose, and records each segment as sent itself.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pystack.tcp.rangeset import RangeSet
from pystack.tcp.seq import MASK, seq_ge

if TYPE_CHECKING:
    from pystack.counters import Counters
    from pystack.tcp.config import TcpConfig

INF = math.inf
_NOTHING_SACKED = RangeSet()
"""The scoreboard of every connection the peer has SACKed nothing of: shared and only read, so an idle
connection carries none of its own; the first SACK block gives it its own (``update``)."""


class Recovery:
    __slots__ = ("counters", "in_recovery", "recover", "dupacks", "sacked", "high_rxt", "rxt_fence",
                 "batch_acked", "tlp_at", "tlp_out", "tlp_probe", "lost_end")

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.in_recovery = False
        self.recover = 0
        """RFC 6582 ``recover``: SND.MAX when the last recovery (or timeout) began."""
        self.dupacks = 0
        self.sacked = _NOTHING_SACKED
        """The scoreboard: [lo, hi) offsets from SND.UNA the peer has SACKed."""
        self.high_rxt = 0
        """RFC 6675 HighRxt, as an offset from SND.UNA."""
        self.rxt_fence = 0
        """SND.MAX (as an offset from SND.UNA) when the last retransmission went out: data above it was
        sent later, so a SACK for any of it while a retransmitted hole stays open says that the
        retransmission was lost too (RACK's inference, RFC 8985 6.2, made by sequence instead of time)."""
        self.batch_acked = 0
        """Bytes acknowledged since the connection last sent: in a batch of frames TCP sends only after the
        last of them, so this is what the flight was before the batch's ACKs (see ``enter``)."""
        self.tlp_at = INF
        """When the tail loss probe fires (RFC 8985 7), or INF; always before the RTO when armed."""
        self.tlp_out = False
        """A probe was sent and SND.UNA has not moved since: one probe per episode (RFC 8985 7.3)."""
        self.tlp_probe: tuple[int, int] | None = None
        """(start, end) sequence numbers of a tail loss probe whose ACK has not come yet."""
        self.lost_end: int | None = None
        """Sequence number below which un-SACKed data counts as lost, inferred from a probe's ACK."""

    # ------------------------------------------------------------------ entering and leaving

    def enter(self, snd_max: int, outstanding: int) -> int:
        """Fast retransmit begins (RFC 5681 3.2, RFC 6582 3.2 step 2): returns FlightSize for ssthresh.

        FlightSize (RFC 5681 eq. 4, RFC 9438 4.6) as it was before this batch of frames: a stack that sends
        after every ACK keeps its flight up while the ACKs below the loss arrive, and this one sends only
        after the batch, so the bytes those ACKs took out count too. Without them a whole window's ACKs
        read in one batch left a flight of the few segments above the loss, and ssthresh fell to 0.3 of
        the window instead of 0.7 (see docs/performance.md, "ssthresh from the flight before a batch")."""
        self.in_recovery = True
        self.recover = snd_max
        self.rxt_fence = outstanding
        return outstanding + self.batch_acked

    def on_timeout(self, snd_max: int) -> None:
        """The RTO fired: everything from SND.UNA is sent again, so recovery and probing start over."""
        self.tlp_at = INF
        self.tlp_out = True  # no probe until an ACK moves SND.UNA: the RTO already went back to it
        self.tlp_probe = self.lost_end = None
        self.recover = snd_max  # RFC 6582 4.1
        self.in_recovery = False
        self.dupacks = 0
        self.sacked = _NOTHING_SACKED  # RFC 2018 8: the receiver may have reneged
        self.high_rxt = 0
        self.rxt_fence = 0

    # ------------------------------------------------------------------ the scoreboard

    def update(self, blocks: tuple[tuple[int, int], ...], una: int, max_off: int) -> bool:
        """Merge the peer's SACK blocks (RFC 2018) into the scoreboard, each taken only within
        (0, ``max_off``]: what was sent and is still held. True if any was news."""
        board = self.sacked
        changed = False
        for left, right in blocks:
            lo = (left - una) & MASK
            hi = (right - una) & MASK
            if not (0 < lo < hi <= max_off):
                continue  # D-SACK, stale or bogus block
            if board is _NOTHING_SACKED:
                board = self.sacked = RangeSet()
            if board.add(lo, hi):
                changed = True
        if changed and self.in_recovery and self.rxt_fence:
            self._detect_lost_retransmission()
        return changed

    def _detect_lost_retransmission(self) -> None:
        """Data SACKed above the fence (sent after the last retransmission) while a hole below HighRxt is
        still open: its retransmission was lost (RACK, RFC 8985 6.2: a segment sent after it was
        delivered; in recovery its reordering window is 0). HighRxt goes back so that NextSeg (RFC 6675)
        sends it again now, rather than the RTO."""
        sacked = self.sacked
        if not sacked or not sacked.covered(self.rxt_fence, sacked.ranges[-1][1]):
            return
        if sacked.gap(0, self.high_rxt) is None:
            return
        self.high_rxt = 0
        self.rxt_fence = 0  # once per retransmission: the next one sets it again
        self.counters["tcp.lost_retransmissions"] += 1

    def shift(self, acked: int) -> None:
        """SND.UNA moved ``acked`` bytes: the offsets follow."""
        board = self.sacked
        if board:
            board.shift(acked)
            if board and board.ranges[0][0] == 0:  # the cumulative ACK should have covered it: keep it honest
                board.popleft()
        self.high_rxt = max(self.high_rxt - acked, 0)
        self.rxt_fence = max(self.rxt_fence - acked, 0)

    def lost_limit(self, una: int) -> int:
        """Offset below which un-SACKed data counts as lost, during recovery: the start of the highest
        SACKed block, or what a probe's ACK showed lost (``probe_answered``), whichever is higher.

        RFC 6675 IsLost wants more than (DupThresh-1)*SMSS bytes SACKed above. In recovery RACK (RFC 8985
        6.2, whose reordering window is 0 there while no reordering was seen) marks a segment lost as soon
        as any segment sent after it is delivered, and every SACKed byte above a hole that was not
        retransmitted was sent after it: so any SACKed byte above will do. A partial ACK that leaves one
        hole with a segment or two SACKed above it no longer waits for the RTO."""
        inferred = 0
        if self.lost_end is not None:
            inferred = (self.lost_end - una) & MASK
            if inferred >= 0x80000000:  # SND.UNA passed it: nothing left to infer
                self.lost_end = None
                inferred = 0
        sacked = self.sacked.ranges
        top = sacked[-1][0] if sacked else 0
        return top if top > inferred else inferred

    def next_seg(self, una: int, max_off: int, buflen: int, new_off: int, wnd: int, cwnd: int,
                 smss: int) -> tuple[int, int, bool] | None:
        """RFC 6675 5: while cwnd - pipe leaves a segment's room, NextSeg's choice as (offset, length,
        new data?), or None. Offsets are from SND.UNA; ``max_off`` is SND.MAX's, ``new_off`` SND.NXT's,
        ``buflen`` the data held. A hole chosen here is taken as retransmitted (HighRxt moves)."""
        sacked = self.sacked
        data_max = max_off if max_off < buflen else buflen
        lost = self.lost_limit(una)
        high_rxt = self.high_rxt
        pipe = max_off - sacked.size  # SetPipe: neither SACKed nor lost, unless retransmitted
        if lost > high_rxt:
            pipe -= lost - high_rxt - sacked.covered(high_rxt, lost)
        if cwnd - pipe < smss:
            return None
        hole = sacked.gap(high_rxt, min(lost, data_max))  # rule 1: a lost hole
        if hole is None:
            avail = buflen - new_off
            if avail > 0 and new_off + min(avail, smss) <= wnd:  # rule 2: new data
                return new_off, min(avail, smss), True
            top = sacked.ranges[-1][1] if sacked else 0
            hole = sacked.gap(high_rxt, min(top, data_max))  # rule 3: a hole not yet known lost
            if hole is None:
                return None
        lo, hi = hole
        n = min(hi - lo, smss)
        self.high_rxt = lo + n
        self.rxt_fence = max_off
        return lo, n, False

    # ------------------------------------------------------------------ the tail loss probe

    def schedule_tlp(self, now: float, srtt: float | None, flight: int, smss: int, rto_at: float,
                     cfg: TcpConfig) -> None:
        """RFC 8985 7.2: after new data goes out or an ACK moves SND.UNA, probe in max(2 SRTT,
        ``tlp_min``) if nothing is heard by then, ``tlp_delayed_ack`` more for a lone segment; only with
        data in flight, outside recovery, before the RTO. With ``tlp_at_rto`` a probe that would come after
        the RTO comes at its time instead, as RFC 8985 7.2 words it."""
        if self.tlp_out or self.in_recovery or srtt is None or not flight:
            self.tlp_at = INF
            return
        pto = max(2 * srtt, cfg.tlp_min)
        if flight <= smss:
            pto += cfg.tlp_delayed_ack  # one segment out: the peer may be holding a delayed ACK
        at = now + pto
        self.tlp_at = at if at < rto_at else rto_at if cfg.tlp_at_rto else INF

    def probe(self, una: int, new_off: int, max_off: int, buflen: int, wnd: int, smss: int,
              sack_ok: bool, new_first: bool = False) -> tuple[int, int, bool] | None:
        """RFC 8985 7.3: the one probe of this episode, as (offset, end, new data?), or None when only our
        FIN is out (the RTO retransmits it). Its ACK, with SACK, shows what was lost (``probe_answered``).

        New data (whatever cwnd says, if the peer's window takes it) when SACK already shows a hole, as
        RFC 8985 prefers. Otherwise the last segment sent, again, though new data waits: with nothing
        SACKed, the peer may well have everything and only its ACK was lost, and a receiver that has
        everything answers a duplicate at once (RFC 9293 3.10.7.4) but may hold the ACK of new in-order
        data for its delayed-ACK time, which Linux stretches past our RTO after a few stalls (see
        docs/performance.md, "The tail loss probe repeats the last segment").

        ``new_first`` (TcpConfig.tlp_new_data) is RFC 8985 7.3 to the letter: new data whenever there is
        some, else the most recently sent segment, which is our FIN alone once it went out after the data."""
        self.tlp_out = True
        self.counters["tcp.tail_loss_probes"] += 1
        avail = buflen - new_off
        if (self.sacked or new_first) and avail > 0 and new_off == max_off and new_off + min(avail, smss) <= wnd:
            start, end, new = new_off, new_off + (avail if avail < smss else smss), True
        elif new_first and max_off > buflen:
            start = end = buflen  # the FIN, as it was last sent
            new = False
        else:
            end = max_off if max_off < buflen else buflen
            if end == 0:
                return None
            start, new = (end - smss if end > smss else 0), False
        if sack_ok:  # sent after everything below it, as a new segment would be
            self.tlp_probe = ((una + start) & MASK, (una + end) & MASK)
        return start, end, new

    def probe_answered(self, una: int) -> bool:
        """An ACK while a probe is out (RFC 8985 7.4): RACK's inference at the one moment it is sure.
        The probe left at least 2 SRTT after everything below it, so once the probe is delivered,
        whatever below it is still neither ACKed nor SACKed was lost: RACK (6.2) would mark it so, as it
        was sent more than an RTT plus a reordering window before a delivered segment. Without this a
        small flight cannot make the duplicate ACKs or SACKed bytes that fast retransmit waits for, and
        the loss waits for the RTO. True when fast retransmit should begin."""
        start, end = self.tlp_probe  # type: ignore[misc]
        if seq_ge(una, end):
            self.tlp_probe = None  # everything up to the probe delivered: nothing was lost
            return False
        off, off_end = (start - una) & MASK, (end - una) & MASK
        if not self.sacked.covers(off, off_end):
            return False  # the probe itself not delivered (yet)
        self.tlp_probe = None
        if self.sacked.gap(0, off) is None:
            return False
        self.lost_end = start
        self.counters["tcp.probe_losses"] += 1
        return not self.in_recovery and seq_ge(una, self.recover)
