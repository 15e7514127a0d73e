"""Every limit and feature switch of the stack, in one documented place (lwIP ``opt.h`` style).

A :class:`StackConfig` is handed to :class:`pystack.stack.Stack`; tests shrink the bounds to
exercise them, the daemon uses the defaults. Defaults follow the Linux kernel where it has one.
Its sections hold what runs around the protocols: the poll loop and the heap (:class:`RuntimeConfig`,
read by :class:`pystack.runtime.Runtime`), the asyncio streams (:class:`StreamsConfig`) and the HTTP
server (:class:`HttpConfig`); TCP's section is in pystack/tcp/config.py, and the DHCP and DNS clients,
which run without a stack, have theirs in their packages. Each ``__post_init__`` rejects a value out of
its range, or two that contradict each other, with one :class:`~pystack.config_check.ConfigError`
(lwIP's ``init.c`` checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pystack.config_check import need
from pystack.ip6.config import Ipv6Config
from pystack.medium import Medium
from pystack.ports import PortRange
from pystack.tcp.config import TcpConfig


@dataclass(slots=True)
class RuntimeConfig:
    """The poll loop that drives a stack with a real link and clock, and the daemon's heap."""

    read_batch: int = 64
    """Frames read per wake-up before timers and output get their turn (bounds the latency of both)."""
    busy_poll: float = 0.0
    """Seconds the loop keeps polling the link after a burst of frames before it sleeps (Linux's
    net.core.busy_poll idea): the next frame of an exchange often follows within tens of microseconds, and
    a sleep and wake-up cost more. 0 always sleeps; the price of more is CPU while traffic flows.
    ``pystack run --busy-poll USEC``."""
    adaptive_poll: bool = False
    """Learn the window from the gaps between bursts, up to ``busy_poll`` (see runtime.PollWindow)."""
    busy_poll_auto: float = 200e-6
    """The ``busy_poll`` of ``pystack run --busy-poll auto`` (its default), with ``adaptive_poll``: KVM
    haltpoll's default guest_halt_poll_ns, 200 us."""
    poll_grow_start: float = 50e-6
    """The first adaptive window after a gap within the limit (haltpoll's guest_halt_poll_grow_start);
    a window halved below it closes."""
    heap_trim_threshold: int = 64 << 20
    """Bytes glibc's heap may keep free at its top before it returns them to the kernel (M_TRIM_THRESHOLD;
    glibc starts at 128 KiB). See pystack.heap for why ``pystack run`` raises it."""
    heap_top_pad: int = 1 << 20
    """Bytes the heap grows by beyond each request, so that growth comes in few steps (M_TOP_PAD)."""
    heap_mmap_threshold: int = 32 << 20
    """Allocations from this size on are mapped on their own and unmapped at free (M_MMAP_THRESHOLD; 32 MiB
    is glibc's largest on 64-bit hosts). The send and receive buffers (up to 4 and 6 MiB, freed whenever
    they empty) stay below it: 1 MiB mapped them afresh each time and made the page faults worse."""

    def __post_init__(self) -> None:
        need(self, self.read_batch >= 1, "read_batch must be at least 1")
        need(self, self.busy_poll >= 0, "busy_poll must be 0 (always sleep) or more")
        need(self, self.poll_grow_start > 0 and self.busy_poll_auto > 0,
             "poll_grow_start and busy_poll_auto must be above 0")
        need(self, not self.adaptive_poll or self.poll_grow_start <= self.busy_poll,
             "with adaptive_poll, poll_grow_start must not exceed busy_poll, the window's ceiling")
        need(self, 0 < self.heap_mmap_threshold <= 32 << 20,
             "heap_mmap_threshold must be above 0 and at most 32 MiB (glibc's mallopt refuses more)")
        need(self, 0 <= self.heap_trim_threshold < 1 << 31 and 0 <= self.heap_top_pad < 1 << 31,
             "heap_trim_threshold and heap_top_pad must fit mallopt's int (0 to 2**31 - 1)")


@dataclass(slots=True)
class StreamsConfig:
    """The asyncio streams over pystack TCP (pystack.api.streams)."""

    read_chunk: int = 65536
    """Bytes taken from a connection's receive buffer per ``recv`` when the transport hands data over
    (and by the built-in services of pystack.apps.stream_server)."""
    high_water: int = 256 * 1024
    """Bytes waiting in a transport beyond the send buffer above which the writer is paused
    (``pause_writing``; asyncio's own default is 64 KiB)..."""
    low_water: int = 64 * 1024
    """...and at or below which it resumes (``resume_writing``)."""

    def __post_init__(self) -> None:
        need(self, self.read_chunk >= 1, "read_chunk must be at least 1")
        need(self, 0 <= self.low_water <= self.high_water,
             "need 0 <= low_water <= high_water (asyncio's set_write_buffer_limits rule)")


@dataclass(slots=True)
class HttpConfig:
    """The HTTP/1.1 file server of ``pystack run --http`` (pystack.apps.http_session)."""

    max_header_bytes: int = 16384
    """Request line plus headers; beyond this the request is refused (431, RFC 6585 5)."""
    max_buffered_input: int = 65536
    """Input held while a response is still going out (pipelining); the glue stops reading past this."""
    small_file: int = 65536
    """Files up to this size are read whole when the request is handled (their response is one buffer);
    larger ones stream from the open file as the send window allows."""
    cache_bytes: int = 4 << 20
    """Bytes of small files' bodies one server keeps in memory for the GETs that come again..."""
    cache_entries: int = 256
    """...and how many files (the least recently used goes first)."""
    cache_settle: float = 1.0
    """A file is cached only once its ctime is this many seconds old, as git does for racily clean files:
    timestamps tick coarsely, so a file written twice within one tick, to the same size, would look unchanged."""

    def __post_init__(self) -> None:
        need(self, self.max_header_bytes >= 64, "max_header_bytes must be at least 64")
        need(self, self.max_buffered_input > self.max_header_bytes,
             "max_buffered_input must be above max_header_bytes, or a request whose header is within the "
             "limit stalls: the glue stops reading before the header ends")
        need(self, self.small_file >= 0 and self.cache_bytes >= 0 and self.cache_entries >= 0,
             "small_file, cache_bytes and cache_entries must be 0 or more")
        need(self, self.cache_settle >= 0, "cache_settle must be 0 or more")


@dataclass(slots=True)
class StackConfig:
    # --- link ---
    mtu: int = 1500
    """Link MTU in bytes (IP header + payload). IPv4 datagrams larger than this are fragmented."""
    medium: Medium = Medium.ETHERNET
    """What the link carries (pystack.medium): Ethernet frames with ARP (a TAP), or bare IP packets with no
    link header and no next-hop resolution (a TUN). Frames in and out are of this kind."""

    # --- ARP (RFC 826) ---
    arp_cache_size: int = 512
    """Most entries the ARP cache holds; the least recently used go first (kernel gc_thresh3 is 1024)."""
    arp_reachable_time: float = 30.0
    """Seconds an entry is trusted before it is refreshed (kernel base_reachable_time is 30 s)."""
    arp_retry_interval: float = 1.0
    """Seconds between ARP requests for an unresolved address (kernel retrans_time is 1 s)."""
    arp_max_retries: int = 3
    """Requests sent before a resolution gives up (kernel mcast_solicit is 3)."""
    arp_pending_bytes: int = 212992
    """Bytes of packets queued per unresolved address; more are dropped (kernel unres_qlen_bytes).
    Large enough for a 64 KiB datagram's fragments."""
    arp_pending_addresses: int = 64
    """Unresolved addresses that may hold queued packets at once."""
    arp_announcements: int = 2
    """Gratuitous ARP announcements when an address is configured (RFC 5227 ANNOUNCE_NUM)."""
    arp_announce_interval: float = 2.0
    """Seconds between announcements (RFC 5227 ANNOUNCE_INTERVAL)."""

    # --- IPv4 (RFC 791) ---
    default_ttl: int = 64
    """TTL of the datagrams we send (kernel ip_default_ttl, 64)."""
    reassembly_timeout: float = 30.0
    """Seconds a partial datagram is held (RFC 791 suggests 15 s lower bound; kernel ipfrag_time is 30 s)."""
    reassembly_max_datagrams: int = 64
    """Partial datagrams held at once; the oldest is evicted when a new one would exceed it."""
    reassembly_max_bytes: int = 4 * 1024 * 1024
    """Payload bytes held across all partial datagrams (kernel ipfrag_high_thresh is 4 MiB)."""

    # --- ICMP (RFC 792) ---
    icmp_ratelimit_interval: float = 1.0
    """Seconds per ICMP error token for one destination (kernel icmp_ratelimit is 1000 ms)..."""
    icmp_ratelimit_burst: int = 6
    """...with this burst per destination (kernel XRLIM_BURST_FACTOR is 6)."""
    icmp_global_rate: float = 1000.0
    """ICMP errors per second in all (kernel icmp_msgs_per_sec)..."""
    icmp_global_burst: int = 50
    """...with this burst (kernel icmp_msgs_burst)."""
    icmp_ratelimit_destinations: int = 1024
    """Destinations whose ICMP error tokens are remembered; the least recently used one is forgotten first."""
    icmp_echo_ignore_broadcasts: bool = True
    """Do not answer pings sent to a broadcast address (kernel default, against smurf attacks)."""

    # --- UDP (RFC 768) ---
    udp_recv_queue: int = 256
    """Datagrams a UDP socket buffers before new ones are dropped (counted)."""

    # --- ports ---
    ephemeral_ports: PortRange = field(default_factory=PortRange)
    """Local ports for a TCP or UDP socket that names none (the kernel's ip_local_port_range, 32768-60999,
    one range for both, as net.ipv4 has)."""

    # --- fast paths ---
    fast_paths: bool = True
    """Take the fast paths, over IPv4 and IPv6 alike: ping's echo lane, TCP's direct receive path and header
    prediction, bursts of segments packed in one piece (TcpPath, TcpPath6), and TCP segments sent without
    the IP layer's general checks. Each puts out the same frames and counts the same as the layered way
    (twin tests prove it); off, every frame takes the layered way (the unit suite runs both ways)."""

    # --- TCP (RFC 9293): its own section, documented in pystack/tcp/config.py ---
    tcp: TcpConfig = field(default_factory=TcpConfig)

    # --- IPv6 (RFC 8200), neighbour discovery, SLAAC: its own section, in pystack/ip6/config.py ---
    ipv6: Ipv6Config = field(default_factory=Ipv6Config)

    # --- around the protocols ---
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    streams: StreamsConfig = field(default_factory=StreamsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)

    def __post_init__(self) -> None:
        need(self, 68 <= self.mtu <= 65535, "mtu must be between 68 (RFC 791) and 65535")
        need(self, self.mtu - 40 >= self.tcp.min_mss,
             "mtu must leave TCP a segment size (mtu - 40) of at least tcp.min_mss, which it demands of peers")
        need(self, self.arp_cache_size >= 1 and self.arp_pending_addresses >= 1,
             "arp_cache_size and arp_pending_addresses must be at least 1")
        need(self, self.arp_reachable_time > 0 and self.arp_retry_interval > 0 and self.arp_announce_interval > 0,
             "arp_reachable_time, arp_retry_interval and arp_announce_interval must be above 0")
        need(self, self.arp_max_retries >= 1, "arp_max_retries must be at least 1")
        need(self, self.arp_pending_bytes >= 0 and self.arp_announcements >= 0,
             "arp_pending_bytes and arp_announcements must be 0 or more")
        need(self, 1 <= self.default_ttl <= 255, "default_ttl must be between 1 and 255 (RFC 791)")
        need(self, self.reassembly_timeout > 0, "reassembly_timeout must be above 0")
        need(self, self.reassembly_max_datagrams >= 1 and self.reassembly_max_bytes >= 1,
             "reassembly_max_datagrams and reassembly_max_bytes must be at least 1")
        need(self, self.icmp_ratelimit_interval > 0 and self.icmp_global_rate > 0,
             "icmp_ratelimit_interval and icmp_global_rate must be above 0")
        need(self, self.icmp_ratelimit_burst >= 1 and self.icmp_global_burst >= 1,
             "icmp_ratelimit_burst and icmp_global_burst must be at least 1")
        need(self, self.icmp_ratelimit_destinations >= 1, "icmp_ratelimit_destinations must be at least 1")
        need(self, self.udp_recv_queue >= 1, "udp_recv_queue must be at least 1")
