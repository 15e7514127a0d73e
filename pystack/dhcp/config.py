"""Every timer and limit of the DHCP client, in one place. Defaults follow RFC 2131 and RFC 5227.

``__post_init__`` rejects a value out of its range, or two that contradict each other, with one
:class:`~pystack.config_check.ConfigError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pystack.config_check import need


@dataclass(slots=True)
class DhcpConfig:
    # --- retransmission while acquiring (RFC 2131 section 4.1) ---
    backoff_initial: float = 4.0
    """Seconds before the first retransmission of a DISCOVER or REQUEST; doubled each time..."""
    backoff_max: float = 64.0
    """...up to this..."""
    backoff_jitter: float = 1.0
    """...each randomised by a uniform +-this many seconds."""
    request_retries: int = 4
    """REQUESTs sent for one offer before the client goes back to INIT (RFC 2131 section 4.4.1)."""
    acquire_timeout: float | None = 60.0
    """Seconds to look for a lease (DISCOVER to BOUND, across NAKs and declines) before giving up with
    a clear error; None keeps looking for ever."""
    startup_delay: float = 0.0
    """Upper bound of a random wait before the first DISCOVER. RFC 2131 section 4.4.1 suggests 1 to 10 s
    to desynchronise hosts that boot together; one host on a lab wire does not need it."""

    # --- renewing and rebinding (RFC 2131 section 4.4.5) ---
    renew_min_interval: float = 60.0
    """Shortest wait between retransmissions in RENEWING and REBINDING (RFC 2131 says 60 s)..."""
    renew_max_attempts: int | None = None
    """...and an optional cap on them (None: halve the remaining time down to the minimum, as the RFC says)."""
    min_lease: float = 10.0
    """Leases shorter than this are treated as this long, so a hostile server cannot make us spin."""

    # --- address conflict detection (RFC 5227 section 1.1, 2.1) ---
    arp_probe: bool = True
    """Ask the caller to probe an offered address with ARP before using it."""
    probe_wait: float = 1.0
    """PROBE_WAIT: random wait before the first probe."""
    probe_num: int = 3
    """PROBE_NUM: probes sent."""
    probe_min: float = 1.0
    """PROBE_MIN: shortest gap between probes."""
    probe_max: float = 2.0
    """PROBE_MAX: longest gap between probes."""
    announce_wait: float = 2.0
    """ANNOUNCE_WAIT: wait after the last probe before the address is taken as free."""
    probe_result_timeout: float = 15.0
    """If the caller never reports a probe result, assume no conflict after this long (and count it)."""
    decline_wait: float = 10.0
    """Seconds to wait after a DHCPDECLINE before starting again (RFC 2131 section 3.1, step 5)."""

    # --- what we ask for ---
    hostname: str | None = None
    """Option 12, sent in DISCOVER and REQUEST when set."""
    max_message_size: int = 1500 - 28
    """Option 57: the largest DHCP message we accept (an Ethernet MTU less IP and UDP headers)."""

    # --- the glue on a stack (pystack.dhcp.host) ---
    host_rounds: int = 16
    """Rounds one ``DhcpHost.poll`` runs, each moving what the last produced between the UDP endpoint,
    the client, the ARP probe and the stack, before it returns (a bound on a reply-to-reply chain)."""

    def __post_init__(self) -> None:
        need(self, 0 < self.backoff_initial <= self.backoff_max,
             "need 0 < backoff_initial <= backoff_max (RFC 2131 4.1: 4 s doubling to 64 s)")
        need(self, 0 <= self.backoff_jitter < self.backoff_initial,
             "backoff_jitter must be 0 or more and below backoff_initial, or a retransmission could be due at once")
        need(self, self.request_retries >= 1, "request_retries must be at least 1")
        need(self, self.acquire_timeout is None or self.acquire_timeout > 0,
             "acquire_timeout must be None (keep looking) or above 0")
        need(self, self.startup_delay >= 0, "startup_delay must be 0 or more")
        need(self, self.renew_min_interval > 0, "renew_min_interval must be above 0")
        need(self, self.renew_max_attempts is None or self.renew_max_attempts >= 1,
             "renew_max_attempts must be None or at least 1")
        need(self, self.min_lease > 0, "min_lease must be above 0")
        need(self, 0 <= self.probe_min <= self.probe_max,
             "need 0 <= probe_min <= probe_max (RFC 5227 2.1.1: 1 s to 2 s)")
        need(self, self.probe_num >= 1, "probe_num must be at least 1")
        need(self, self.probe_wait >= 0 and self.announce_wait >= 0 and self.decline_wait >= 0,
             "probe_wait, announce_wait and decline_wait must be 0 or more")
        need(self, self.probe_result_timeout > self.probe_wait + self.probe_num * self.probe_max + self.announce_wait,
             "probe_result_timeout must be longer than a whole probe (probe_wait + probe_num * probe_max + "
             "announce_wait), or a probe that runs its course counts as lost")
        need(self, 576 - 28 <= self.max_message_size <= 65535 - 28,
             "max_message_size must be between 548 (RFC 2131 2: a 576-byte datagram) and 65507")
        need(self, self.host_rounds >= 1, "host_rounds must be at least 1")
