"""Every limit and timer of the IPv6 layer, in one documented place (the IPv4 ones are in
:class:`pystack.config.StackConfig`).

Defaults are RFC 4861 section 10's constants, RFC 4862's and RFC 8200's, or Linux's sysctl defaults where
the RFCs leave a choice; every table has a bound here. Tests shrink the bounds to reach them. A value
out of its range stops the build with one :class:`~pystack.config_check.ConfigError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pystack.config_check import need

IID_EUI64 = "eui64"
IID_STABLE = "stable"


@dataclass(slots=True)
class Ipv6Config:
    # --- IPv6 (RFC 8200) ---
    default_hop_limit: int = 64
    """Hop limit of the packets we send until an RA says otherwise (Linux net.ipv6.conf.*.hop_limit)."""
    max_extension_headers: int = 8
    """Extension headers walked in one packet before it is dropped (RFC 8504 5.3 lets hosts bound them)."""
    max_options_per_header: int = 8
    """Options other than padding in one options header (Linux max_hbh_opts_number, max_dst_opts_number)."""

    # --- reassembly (RFC 8200 section 4.5) ---
    reassembly_timeout: float = 60.0
    """Seconds a partial packet is held (RFC 8200 4.5: 60 s; Linux ip6frag_time)."""
    reassembly_max_datagrams: int = 64
    """Partial packets held at once; the oldest goes when a new one would pass it."""
    reassembly_max_bytes: int = 4 * 1024 * 1024
    """Bytes held across all partial packets (Linux ip6frag_high_thresh is 4 MiB)."""
    reassembly_max_fragments: int = 128
    """Fragments of one packet: 65,535 bytes at the 1280-byte minimum MTU take 54; tiny overlapping
    fragments (RFC 5722's attack) would take thousands."""

    # --- path MTU discovery (RFC 8201) ---
    path_mtu_entries: int = 256
    """Destinations whose smaller path MTU a Packet Too Big told us; the least recently told goes first."""
    path_mtu_timeout: float = 600.0
    """Seconds a learned path MTU holds before the link's is tried again (RFC 8201 5.3: at least 5 minutes,
    10 recommended; Linux mtu_expires)."""
    destination_cache_size: int = 256
    """Destinations whose next hop, MAC and path MTU the fast paths remember (pystack.iface.ipv6.Way);
    when full it is emptied and filled again as packets are sent."""

    # --- neighbour discovery (RFC 4861 sections 7.3 and 10) ---
    neighbour_cache_size: int = 512
    """Entries in the neighbour cache; the least recently used resolved one goes first (Linux gc_thresh3
    is 1024; the ARP cache holds 512)."""
    neighbour_pending_addresses: int = 64
    """Addresses being resolved (INCOMPLETE) at once; each holds queued packets."""
    neighbour_pending_bytes: int = 212992
    """Bytes of packets queued per address being resolved (Linux unres_qlen_bytes)."""
    max_multicast_solicit: int = 3
    """Multicast solicitations before a resolution fails (MAX_MULTICAST_SOLICIT)."""
    max_unicast_solicit: int = 3
    """Unicast probes of a PROBE entry before it is deleted (MAX_UNICAST_SOLICIT)."""
    retrans_timer: float = 1.0
    """Seconds between solicitations (RETRANS_TIMER); an RA may change it."""
    base_reachable_time: float = 30.0
    """Seconds a confirmed neighbour stays REACHABLE, before randomisation (REACHABLE_TIME); an RA may
    change it."""
    delay_first_probe_time: float = 5.0
    """Seconds in DELAY before the first unicast probe (DELAY_FIRST_PROBE_TIME)."""

    # --- router discovery (RFC 4861 sections 6.3 and 10) ---
    max_rtr_solicitation_delay: float = 1.0
    """Random delay before the first router solicitation, and before the first DAD probe after the link
    comes up (MAX_RTR_SOLICITATION_DELAY, RFC 4862 5.4.2)."""
    rtr_solicitation_interval: float = 4.0
    """Seconds between router solicitations (RTR_SOLICITATION_INTERVAL)."""
    max_rtr_solicitations: int = 3
    """Router solicitations sent while no RA arrives (MAX_RTR_SOLICITATIONS)."""
    max_default_routers: int = 8
    """Entries in the default router list; more routers are ignored until one expires."""
    max_onlink_prefixes: int = 16
    """Entries in the on-link prefix list; more prefixes are ignored until one expires."""
    max_dns_servers: int = 3
    """RDNSS addresses kept (glibc's MAXNS); when full, a new one replaces the one expiring soonest
    (RFC 8106 5.3.1)."""

    # --- addresses (RFC 4291, RFC 4862, RFC 7217) ---
    max_addresses: int = 16
    """Addresses on the interface, link-local and duplicates included (Linux max_addresses). It bounds the
    multicast groups joined too: each address's solicited-node group, and all-nodes (pystack.iface.mld)."""
    slaac: bool = True
    """Form addresses from prefixes advertised with the A flag (Linux autoconf)."""
    dad_transmits: int = 1
    """DAD probes per address, RetransTimer apart; 0 turns DAD off (DupAddrDetectTransmits, Linux
    dad_transmits)."""
    iid_mode: str = IID_EUI64
    """How interface identifiers are made: from the MAC (EUI-64, RFC 4291 appendix A; Linux's default
    addr_gen_mode 0) or stable and opaque (RFC 7217, needs ``stable_secret``)."""
    stable_secret: bytes = b""
    """RFC 7217's secret key, at least 16 bytes (128 bits, section 5) when ``iid_mode`` is stable."""
    idgen_retries: int = 3
    """New stable identifiers tried after a DAD failure (RFC 7217 IDGEN_RETRIES)..."""
    idgen_delay: float = 1.0
    """...each after a random delay up to this many seconds (RFC 7217 IDGEN_DELAY)."""

    def __post_init__(self) -> None:
        need(self, 1 <= self.default_hop_limit <= 255, "default_hop_limit must be 1 to 255")
        need(self, self.max_extension_headers >= 1 and self.max_options_per_header >= 0,
             "max_extension_headers must be at least 1 and max_options_per_header 0 or more")
        need(self, self.reassembly_timeout > 0, "reassembly_timeout must be above 0")
        need(self, self.path_mtu_entries >= 1 and self.path_mtu_timeout > 0,
             "path_mtu_entries must be at least 1 and path_mtu_timeout above 0")
        need(self, self.destination_cache_size >= 1, "destination_cache_size must be at least 1")
        need(self, min(self.reassembly_max_datagrams, self.reassembly_max_bytes, self.reassembly_max_fragments) >= 1,
             "reassembly_max_datagrams, reassembly_max_bytes and reassembly_max_fragments must be at least 1")
        need(self, 1 <= self.neighbour_pending_addresses < self.neighbour_cache_size,
             "need 1 <= neighbour_pending_addresses < neighbour_cache_size (a resolved entry can always be evicted)")
        need(self, self.neighbour_pending_bytes >= 0, "neighbour_pending_bytes must be 0 or more")
        need(self, self.max_multicast_solicit >= 1 and self.max_unicast_solicit >= 1,
             "max_multicast_solicit and max_unicast_solicit must be at least 1")
        need(self, min(self.retrans_timer, self.base_reachable_time, self.delay_first_probe_time) > 0,
             "retrans_timer, base_reachable_time and delay_first_probe_time must be above 0")
        need(self, self.max_rtr_solicitation_delay >= 0 and self.rtr_solicitation_interval > 0,
             "max_rtr_solicitation_delay must be 0 or more and rtr_solicitation_interval above 0")
        need(self, min(self.max_rtr_solicitations, self.max_default_routers, self.max_onlink_prefixes,
                       self.max_dns_servers) >= 0,
             "max_rtr_solicitations, max_default_routers, max_onlink_prefixes and max_dns_servers must be 0 or more")
        need(self, self.max_addresses >= 1, "max_addresses must be at least 1 (the link-local address)")
        need(self, self.dad_transmits >= 0 and self.idgen_retries >= 0 and self.idgen_delay >= 0,
             "dad_transmits, idgen_retries and idgen_delay must be 0 or more")
        need(self, self.iid_mode in (IID_EUI64, IID_STABLE), f"iid_mode must be {IID_EUI64!r} or {IID_STABLE!r}")
        need(self, self.iid_mode != IID_STABLE or len(self.stable_secret) >= 16,
             "stable identifiers need a stable_secret of at least 16 bytes (RFC 7217 section 5)")
