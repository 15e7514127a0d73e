"""Every timer and bound of the DHCPv6 client, in one place. The transmission parameters are RFC 8415
section 7.6's; ``__post_init__`` rejects a value out of its range with one
:class:`~pystack.config_check.ConfigError`."""

from __future__ import annotations

from dataclasses import dataclass

from pystack.config_check import need


@dataclass(frozen=True, slots=True)
class Retransmission:
    """RFC 8415 section 15: the first timeout ``irt``, doubled up to ``mrt``; at most ``mrc`` messages and
    ``mrd`` seconds (0: no bound). Each timeout is randomised by RAND, uniform in +-0.1 of itself."""

    irt: float
    mrt: float = 0.0
    mrc: int = 0
    mrd: float = 0.0


@dataclass(slots=True)
class Dhcp6Config:
    # --- RFC 8415 section 7.6 ---
    sol_max_delay: float = 1.0
    """Random wait before the first Solicit (section 18.2.1)."""
    solicit: Retransmission = Retransmission(irt=1.0, mrt=3600.0)
    request: Retransmission = Retransmission(irt=1.0, mrt=30.0, mrc=10)
    renew: Retransmission = Retransmission(irt=10.0, mrt=600.0)
    """Renew's MRD is the time left until T2; Rebind's until the addresses' valid lifetimes end."""
    rebind: Retransmission = Retransmission(irt=10.0, mrt=600.0)
    decline: Retransmission = Retransmission(irt=1.0, mrc=4)
    release: Retransmission = Retransmission(irt=1.0, mrc=4)
    """REL_TIMEOUT and REL_MAX_RC; an owner on its way out may wait for fewer (Dhcp6Client.release)."""
    inf_max_delay: float = 1.0
    """Random wait before the first Information-Request (section 18.2.6)."""
    information: Retransmission = Retransmission(irt=1.0, mrt=3600.0)
    irt_default: float = 86400.0
    """Information refresh time when the server gives none (section 21.23)..."""
    irt_minimum: float = 600.0
    """...and the least one it may give."""
    sol_max_rt_range: tuple[float, float] = (60.0, 86400.0)
    """A server's SOL_MAX_RT option is used only within this range (section 21.24)."""

    # --- bounds ---
    max_addresses: int = 4
    """Addresses kept from one IA_NA; more are dropped and counted."""
    max_dns_servers: int = 4
    max_domains: int = 6
    max_advertisements: int = 8
    """Advertise messages kept while the first Solicit timeout runs (the best one wins)."""
    min_lifetime: float = 10.0
    """Valid lifetimes and T1 shorter than this are raised to it, so a hostile server cannot make us spin."""
    restart_wait_max: float = 300.0
    """After NoAddrsAvail or a failed Request the client solicits again after a wait that doubles, up to this."""

    # --- the glue on a stack (pystack.dhcp6.host) ---
    host_rounds: int = 16

    def __post_init__(self) -> None:
        for name in ("solicit", "request", "renew", "rebind", "decline", "release", "information"):
            rt: Retransmission = getattr(self, name)
            need(self, rt.irt > 0 and rt.mrt >= 0 and rt.mrc >= 0 and rt.mrd >= 0,
                 f"{name}: need irt above 0 and mrt, mrc, mrd 0 or more (RFC 8415 section 15)")
        need(self, self.sol_max_delay >= 0 and self.inf_max_delay >= 0, "sol_max_delay and inf_max_delay must be 0 or more")
        need(self, 0 < self.irt_minimum <= self.irt_default, "need 0 < irt_minimum <= irt_default (RFC 8415 21.23)")
        need(self, 0 < self.sol_max_rt_range[0] <= self.sol_max_rt_range[1], "sol_max_rt_range must be a range above 0")
        need(self, self.max_addresses >= 1 and self.max_dns_servers >= 1 and self.max_domains >= 0
             and self.max_advertisements >= 1, "max_addresses, max_dns_servers, max_advertisements must be at least 1")
        need(self, self.min_lifetime > 0 and self.restart_wait_max > 0, "min_lifetime and restart_wait_max must be above 0")
        need(self, self.host_rounds >= 1, "host_rounds must be at least 1")
