"""Every TCP limit and switch with its default, in one documented place.

The stack hangs a :class:`TcpConfig` off its ``StackConfig``; tests shrink the bounds to reach them.
Defaults follow the RFCs, and Linux where the RFCs leave a choice.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    """MSS we advertise; ``None`` means MTU - 40 (RFC 9293 3.7.1). Always clamped to MTU - 40."""
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
    time_wait: float = 60.0
    """TIME-WAIT duration, 2*MSL (RFC 9293 3.4.2; Linux uses 60 s)."""
    max_time_wait: int = 4096
    """Connections allowed in TIME-WAIT at once; beyond that they close at once (Linux tcp_max_tw_buckets)."""
    fin_wait2_timeout: float = 60.0
    """Seconds a closed (orphaned) connection waits in FIN-WAIT-2 for the peer's FIN (Linux tcp_fin_timeout)."""
    ephemeral_low: int = 32768
    ephemeral_high: int = 60999
    """Local port range for ``connect()`` without a port (Linux ip_local_port_range)."""
    isn_secret: bytes | None = None
    """Key of the RFC 6528 ISN hash; ``None`` draws 16 random bytes when the layer starts."""

    # --- retransmission (RFC 6298) ---
    rto_initial: float = 1.0
    """RTO before any RTT sample (RFC 6298 2.1)."""
    rto_min: float = 0.2
    """Lower bound of the RTO. RFC 6298 2.4 says 1 s; Linux (and most stacks) use 200 ms."""
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
    dupack_threshold: int = 3
    """Duplicate ACKs that trigger fast retransmit (RFC 5681 DupThresh)."""
    tail_loss_probe: bool = True
    """RFC 8985 section 7: when data in flight gets no ACK for two smoothed RTTs, send one probe segment
    (new data, or the last segment again) so that the peer's ACK (with SACK) starts fast recovery,
    instead of waiting for the retransmission timeout (at least ``rto_min``)."""
    tlp_min: float = 0.01
    """The least probe timeout in seconds (Linux's TCP_TIMEOUT_MIN is 2 jiffies; RFC 8985 suggests 10 ms)."""
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
