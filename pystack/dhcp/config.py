"""Every timer and limit of the DHCP client, in one place. Defaults follow RFC 2131 and RFC 5227."""

from __future__ import annotations

from dataclasses import dataclass


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
