"""Every limit and feature switch of the stack, in one documented place (lwIP ``opt.h`` style).

A :class:`StackConfig` is handed to :class:`pystack.stack.Stack`; tests shrink the bounds to
exercise them, the daemon uses the defaults. Defaults follow the Linux kernel where it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pystack.tcp.config import TcpConfig


@dataclass(slots=True)
class StackConfig:
    # --- link ---
    mtu: int = 1500
    """Link MTU in bytes (IP header + payload). IPv4 datagrams larger than this are fragmented."""

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
    icmp_echo_ignore_broadcasts: bool = True
    """Do not answer pings sent to a broadcast address (kernel default, against smurf attacks)."""

    # --- UDP (RFC 768) ---
    udp_recv_queue: int = 256
    """Datagrams a UDP socket buffers before new ones are dropped (counted)."""
    udp_ephemeral_low: int = 32768
    udp_ephemeral_high: int = 60999
    """Ephemeral port range, as the kernel's ip_local_port_range."""

    # --- fast paths ---
    fast_paths: bool = True
    """Take the fast paths: ping's echo lane, TCP's direct receive path and header prediction, bursts of
    segments packed in one piece (TcpPath), and TCP segments sent without send_ip's general checks. Each
    puts out the same frames and counts the same as the layered way (twin tests prove it); off, every
    frame takes the layered way (the unit suite runs both ways)."""

    # --- TCP (RFC 9293): its own section, documented in pystack/tcp/config.py ---
    tcp: TcpConfig = field(default_factory=TcpConfig)
