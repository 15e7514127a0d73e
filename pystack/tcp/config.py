"""Every TCP limit and switch with its default, in one documented place.

The stack hangs a :class:`TcpConfig` off its ``StackConfig``; tests shrink the bounds to reach them.
Defaults follow the RFCs, and Linux where the RFCs leave a choice. ``__post_init__`` rejects a value out of
its range, or two that contradict each other, with one :class:`~pystack.config_check.ConfigError`.
(The local port range is the stack's, shared with UDP: ``StackConfig.ephemeral_ports``.)
"""

from __future__ import annotations

from dataclasses import dataclass

from pystack.config_check import need
from pystack.tcp.congestion import ALGORITHMS


@dataclass(slots=True)
class TcpConfig:
    # --- buffers and segment sizes ---
    send_buffer: int = 256 * 1024
    """Bytes of unacknowledged plus unsent data a connection holds at first; ``send()`` accepts no more.
    It grows with the congestion window (see ``send_buffer_max``); memory is taken only as data waits."""
    send_buffer_max: int = 4 * 1024 * 1024
    """Ceiling of the send buffer's growth: it follows twice the congestion window, as Linux's
    tcp_sndbuf_expand does up to tcp_wmem[2] (4 MiB), so that a path with delay is not held to one
    ``send_buffer`` per round trip (256 KiB per 20 ms is 13 MB/s). 0 or below ``send_buffer``: no growth."""
    recv_buffer: int = 256 * 1024
    """Bytes of in-order data waiting for ``recv()`` at first; the advertised window is the free part of it."""
    recv_buffer_max: int = 6 * 1024 * 1024
    """Ceiling of the receive buffer's growth (Linux tcp_rmem[2]): once per round trip, a user that read more
    than in the last one gets room for twice that (Linux's tcp_rcv_space_adjust, after DRS), so that a path
    with delay is not held to one ``recv_buffer`` per round trip. A user that reads slowly keeps the small
    buffer. Our window scale is chosen to reach this. 0 or below ``recv_buffer``: no growth."""
    mss: int | None = None
    """MSS we advertise, and the largest segment we send (Linux's TCP_MAXSEG); ``None`` means MTU - 40
    (RFC 9293 3.7.1). Always clamped to MTU - 40."""
    default_mss: int = 536
    """Send MSS assumed when the peer's SYN carries no MSS option (RFC 9293 3.7.1, IPv4)."""
    min_mss: int = 48
    """Smallest send MSS we accept from a peer, so a tiny MSS cannot force floods (Linux tcp_min_snd_mss)."""
    ooo_max_segments: int = 256
    """Out-of-order blocks held for reassembly (bytes are bounded by the window); more are dropped."""

    # --- connection set-up and tear-down ---
    max_backlog: int = 4096
    """Ceiling on a listener's accept queue, whatever ``listen()`` asks for (Linux somaxconn)."""
    syn_backlog: int = 256
    """Half-open (SYN-RECEIVED) connections per listener; beyond it SYNs get cookies (or are dropped)."""
    syncookies: bool = True
    """Answer SYNs with SYN cookies while the half-open queue is full (RFC 4987 3.6; Linux tcp_syncookies=1)."""
    syncookie_period: float = 64.0
    """Seconds per tick of the counter a SYN cookie carries in its top 8 bits (pystack.tcp.syncookie;
    Linux's period is a minute)."""
    syncookie_max_age: int = 2
    """Ticks a SYN cookie stays valid: the final ACK must come within them (Linux MAX_SYNCOOKIE_AGE, 2)."""
    syncookie_mss: tuple[int, ...] = (536, 1300, 1440, 1460)
    """The MSS values a SYN cookie can grant, ascending: the largest not above the peer's is chosen, and
    only 2 bits of the cookie hold its index (Linux's msstab for IPv4)."""
    time_wait: float = 60.0
    """TIME-WAIT duration, 2*MSL (RFC 9293 3.4.2; Linux uses 60 s)."""
    max_time_wait: int = 4096
    """Connections allowed in TIME-WAIT at once; beyond that they close at once (Linux tcp_max_tw_buckets)."""
    fin_wait2_timeout: float = 60.0
    """Seconds a closed (orphaned) connection waits in FIN-WAIT-2 for the peer's FIN (Linux tcp_fin_timeout)."""
    isn_secret: bytes | None = None
    """Key of the RFC 6528 ISN hash; ``None`` draws 16 random bytes when the layer starts. At least 16 bytes
    (RFC 6528 3: the secret must be hard to guess)."""
    ts_offset_pairs: int = 1024
    """Host pairs whose TSval offset (RFC 7323 5.4, keyed per pair of hosts) is remembered; past this the
    memory starts again empty (a miss only recomputes a hash)."""

    # --- retransmission (RFC 6298) ---
    rto_initial: float = 1.0
    """RTO before any RTT sample (RFC 6298 2.1)."""
    rto_min: float = 0.2
    """Lower bound of the RTO. RFC 6298 2.4 says 1 s; Linux (and most stacks) use 200 ms."""
    rto_min_on_variance: bool = False
    """Apply ``rto_min`` to the variance term, RTO = SRTT + max(4*RTTVAR, rto_min), as Linux does, rather
    than to the RTO as a whole (RFC 6298 2.4): on a steady path the RTO stays an RTT above rto_min."""
    rto_max: float = 120.0
    """Upper bound of the backed-off RTO (RFC 6298 2.5 allows >= 60 s; Linux TCP_RTO_MAX is 120 s)."""
    syn_retries: int = 6
    """SYN retransmissions before ``connect`` fails with ETIMEDOUT (Linux tcp_syn_retries)."""
    synack_retries: int = 5
    """SYN-ACK retransmissions before a half-open connection is dropped (Linux tcp_synack_retries)."""
    max_retries: int = 15
    """Data retransmissions (or unanswered zero-window probes) before ETIMEDOUT (Linux tcp_retries2)."""
    persist_max: float = 60.0
    """Upper bound of the backed-off zero-window probe interval."""
    window_probe_empty: bool = False
    """The zero-window probe is an ACK with sequence number SND.UNA - 1 and no data, which the peer
    answers with a duplicate ACK carrying its window, as Linux's tcp_xmit_probe_skb does. False: one
    byte of new data (RFC 9293 3.8.6.1), which a peer whose window reopened unannounced takes."""

    # --- acknowledgements and sending ---
    delayed_ack: bool = True
    """Delay ACKs of in-order data (RFC 1122 4.2.3.2, RFC 5681 4.2): ACK every second full segment..."""
    ack_delay: float = 0.04
    """...or after this many seconds, whichever comes first (RFC 5681: < 0.5 s; we stay <= 200 ms).
    40 ms is Linux's delayed-ACK minimum; it must stay well below ``rto_min``, or the peer's RTO fires
    before our delayed ACK and every small exchange is retransmitted."""
    quickacks: int = 0
    """In-order data segments ACKed at once, undelayed, at the start of a connection and again after the
    peer was silent for longer than an RTO, so that a sender in slow start is not held back by delayed
    ACKs (Linux's quick-ACK mode, 16 segments). 0: each may be delayed, as RFC 5681 4.2 allows."""
    nodelay: bool = False
    """Default of ``Connection.nodelay``: True disables Nagle's algorithm (RFC 1122 4.2.3.4)."""
    initial_window_segments: int = 10
    """Initial congestion window in segments (RFC 6928)."""
    cwnd_validation: bool = False
    """Grow cwnd only when the flight used it (RFC 7661's idea, as Linux's tcp_is_cwnd_limited): in slow
    start while cwnd is below twice the largest flight of the window, in congestion avoidance when the
    flight filled it. False: every ACK of new data may grow it (RFC 5681 3.1), however little was sent."""
    slow_start_limit: int = 2
    """Most SMSS slow start adds to cwnd per ACK (RFC 3465 2.2's L; RFC 5681 3.1 has 1). 0 is Linux's rule:
    all the ACK newly delivers, where data the peer already reported by SACK (or, without SACK, by a
    duplicate ACK) was delivered then and is not counted again."""
    dupack_threshold: int = 3
    """Duplicate ACKs that trigger fast retransmit (RFC 5681 DupThresh)."""
    tail_loss_probe: bool = True
    """RFC 8985 section 7: when data in flight gets no ACK for two smoothed RTTs, send one probe segment
    (new data, or the last segment again) so that the peer's ACK (with SACK) starts fast recovery,
    instead of waiting for the retransmission timeout (at least ``rto_min``)."""
    tlp_new_data: bool = False
    """The probe is new data whenever there is some and the peer's window takes it, and otherwise the most
    recently sent segment (our FIN alone, once it went out after the data), as RFC 8985 7.3 and Linux do.
    False: new data only once SACK shows a hole, else the last MSS sent again (pystack's choice, see
    Recovery.probe)."""
    tlp_at_rto: bool = False
    """When the probe timeout would come after the RTO (one segment out: 2 SRTT plus the delayed-ACK
    allowance), probe at the RTO's time instead and let the RTO follow one RTO later, as RFC 8985 7.2 and
    Linux do. False: no probe then, the RTO fires (pystack's choice)."""
    tlp_min: float = 0.01
    """The least probe timeout in seconds (Linux's TCP_TIMEOUT_MIN is 2 jiffies; RFC 8985 suggests 10 ms)."""
    tlp_delayed_ack: float = 0.2
    """Added to the probe timeout while one segment is in flight, which the peer may be holding a delayed
    ACK for (RFC 8985 7.2's WCDelAckT, 200 ms recommended; Linux's TCP_DELACK_MAX)."""
    congestion_control: str = "cubic"
    """Name of the congestion controller (see pystack.tcp.congestion.ALGORITHMS): ``cubic`` (RFC 9438), as
    Linux's default, or ``newreno`` (RFC 5681/6582)."""

    # --- options (negotiated as Linux does: each only if both SYNs carry it) ---
    window_scaling: bool = True
    """RFC 7323 window scale option; our shift is the smallest that covers the receive buffer's ceiling."""
    timestamps: bool = True
    """RFC 7323 timestamps: RTT measurement and PAWS."""
    sack: bool = True
    """RFC 2018 selective acknowledgements, and RFC 6675 loss recovery when negotiated."""

    # --- keepalive (RFC 1122 4.2.3.6), off unless asked for ---
    keepalive: bool = False
    """Default of ``Connection.keepalive``."""
    keepalive_idle: float = 7200.0
    """Idle seconds before the first probe (RFC 1122: no less than two hours by default)."""
    keepalive_interval: float = 75.0
    """Seconds between unanswered probes (Linux tcp_keepalive_intvl)."""
    keepalive_probes: int = 9
    """Unanswered probes before the connection fails with ETIMEDOUT (Linux tcp_keepalive_probes)."""

    # --- defences ---
    oow_ack_interval: float = 0.5
    """Least seconds between our answers to unacceptable pure ACKs of one connection; it stops ACK
    wars between two ends that each reject the other's ACKs (Linux tcp_invalid_ratelimit, 500 ms)."""
    challenge_ack_limit: int = 100
    """Challenge ACKs (RFC 5961 7) sent per second across the layer; more are suppressed and counted."""

    def __post_init__(self) -> None:
        need(self, self.send_buffer > 0 and self.recv_buffer > 0, "send_buffer and recv_buffer must be above 0")
        need(self, self.send_buffer_max >= 0 and self.recv_buffer_max >= 0,
             "send_buffer_max and recv_buffer_max must be 0 (no growth) or more")
        need(self, 0 < self.min_mss <= self.default_mss,
             "need 0 < min_mss <= default_mss: a peer without an MSS option must still be served")
        need(self, self.mss is None or self.mss >= self.min_mss,
             "mss must be None (MTU - 40) or at least min_mss, which we demand of peers ourselves")
        need(self, self.ooo_max_segments >= 0, "ooo_max_segments must be 0 or more")
        need(self, self.max_backlog >= 1 and self.syn_backlog >= 1, "max_backlog and syn_backlog must be at least 1")
        need(self, self.time_wait >= 0 and self.max_time_wait >= 0, "time_wait and max_time_wait must be 0 or more")
        need(self, self.syncookie_period > 0 and 1 <= self.syncookie_max_age <= 255,
             "syncookie_period must be above 0 and syncookie_max_age 1 to 255 (a cookie's counter has 8 bits)")
        need(self, 1 <= len(self.syncookie_mss) <= 4 and list(self.syncookie_mss) == sorted(set(self.syncookie_mss))
             and self.syncookie_mss[0] >= self.min_mss,
             "syncookie_mss must hold 1 to 4 sizes in ascending order (a cookie has 2 bits for the index), "
             "none below min_mss")
        need(self, self.fin_wait2_timeout > 0, "fin_wait2_timeout must be above 0")
        need(self, self.isn_secret is None or len(self.isn_secret) >= 16,
             "isn_secret must be None or at least 16 bytes (RFC 6528 3)")
        need(self, self.ts_offset_pairs >= 1, "ts_offset_pairs must be at least 1")
        need(self, 0 < self.rto_min <= self.rto_initial <= self.rto_max,
             "need 0 < rto_min <= rto_initial <= rto_max (RFC 6298 2.1, 2.4, 2.5)")
        need(self, 0 < self.ack_delay < self.rto_min,
             "ack_delay must be above 0 and below rto_min, or the peer's retransmission timer fires before "
             "our delayed ACK (RFC 5681 4.2 allows up to 0.5 s)")
        need(self, self.ack_delay < 0.5, "ack_delay must be below 0.5 s (RFC 5681 4.2, RFC 1122 4.2.3.2)")
        need(self, self.quickacks >= 0, "quickacks must be 0 (none) or more")
        need(self, 0 < self.tlp_min <= self.rto_max, "need 0 < tlp_min <= rto_max (RFC 8985 7.2)")
        need(self, 0 <= self.tlp_delayed_ack <= 0.5,
             "tlp_delayed_ack must be 0 to 0.5 s, the longest a receiver may delay an ACK (RFC 5681 4.2)")
        need(self, self.persist_max >= self.rto_min,
             "persist_max must be at least rto_min: zero-window probes back off from the RTO up to it")
        need(self, self.syn_retries >= 0 and self.synack_retries >= 0 and self.max_retries >= 1,
             "syn_retries and synack_retries must be 0 or more, max_retries at least 1")
        need(self, self.initial_window_segments >= 1 and self.dupack_threshold >= 1,
             "initial_window_segments and dupack_threshold must be at least 1")
        need(self, self.slow_start_limit >= 0, "slow_start_limit must be 0 (Linux's rule) or more")
        if self.congestion_control not in ALGORITHMS:
            need(self, False, f"congestion_control must be one of {', '.join(sorted(ALGORITHMS))}")
        need(self, self.keepalive_idle > 0 and self.keepalive_interval > 0 and self.keepalive_probes >= 1,
             "keepalive_idle and keepalive_interval must be above 0, keepalive_probes at least 1")
        need(self, self.oow_ack_interval >= 0 and self.challenge_ack_limit >= 1,
             "oow_ack_interval must be 0 or more, challenge_ack_limit at least 1")
