"""``pystack run --dhcp``: keep a DHCP lease for as long as the daemon runs.

The DHCP client (RFC 2131) renews at T1 and rebinds at T2 by itself; this class logs what it does,
calls ``on_ready`` at the first lease (the daemon's ready line), starts over when a lease is lost, and
on shutdown sends DHCPRELEASE (RFC 2131 section 4.4.6) and keeps the loop turning until it has left
(ARP may first have to find the server's MAC), at most ``release_grace`` seconds.

Everything here runs in the loop thread under the runtime's lock: DHCP events, the tick hook, and the
shutdown request (which only sets a flag and wakes the loop, so a signal handler may call it).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from pystack.dhcp import Bound, Declined, DhcpClient, DhcpConfig, Failed, LeaseLost, ProbeAddress
from pystack.dhcp.client import Event
from pystack.dhcp.host import DhcpHost
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.tools.narrator import describe_lease, ip, seconds

log = logging.getLogger("pystack")

RELEASE_GRACE = 2.0


class LeaseKeeper:
    def __init__(self, stack: Stack, runtime: Runtime, timeout: float | None,
                 on_ready: Callable[[Bound], None], release_grace: float = RELEASE_GRACE) -> None:
        self.stack = stack
        self.runtime = runtime
        self.on_ready = on_ready
        self.release_grace = release_grace
        self.rng = random.SystemRandom()
        self.failure: str | None = None
        """Why the daemon must exit: no lease at all within the timeout."""
        self.bound: Bound | None = None
        self.ever_bound = False
        self._shutdown = False
        self._release_deadline: float | None = None
        with runtime.lock:
            client = DhcpClient(stack.mac, runtime.now(), self.rng, DhcpConfig(acquire_timeout=timeout),
                                stack.counters)
            self.host = DhcpHost.attach(stack, client, self.rng, on_event=self._on_event)
        runtime.tick_hooks.append(self._tick)
        stack.timer_sources.append(self)

    def start(self) -> None:
        with self.runtime.lock:
            self.host.poll(self.runtime.now())
            self.runtime.flush()
        self.runtime.wake()

    def shutdown(self) -> None:
        """Ask for a clean stop: release the lease, then stop the loop (safe from a signal handler)."""
        self._shutdown = True
        self.runtime.wake()

    # ------------------------------------------------------------------ in the loop

    def _tick(self, now: float) -> None:
        if not self._shutdown:
            return
        if self._release_deadline is None:
            if self.bound is None:
                self.runtime.stop()
                return
            address, server = self.bound.address, self.bound.server
            self.host.release(now)
            log.info("DHCP: released %s (DHCPRELEASE to %s)", ip(address), ip(server))
            self._release_deadline = now + self.release_grace
        if not self.stack.arp.pending or now >= self._release_deadline:
            self.runtime.stop()

    # As a timer source of the stack: wake the loop at the end of the release grace period.

    def get_timer(self) -> float | None:
        return self._release_deadline

    def handle_timer(self, now: float) -> None:
        pass  # the tick hook that runs after every loop iteration does the work

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ProbeAddress):
            log.info("DHCP: offered %s; checking that no one uses it (RFC 5227 ARP probes)", ip(event.address))
        elif isinstance(event, Bound):
            first = not self.ever_bound
            self.ever_bound = True
            previous, self.bound = self.bound, event
            text = describe_lease(event.address, event.prefix, event.router, event.dns, event.lease, event.t1,
                                  event.t2, event.server, event.domain)
            if first:
                log.info("DHCP: bound %s", text)
                self.on_ready(event)
            elif event.renewed:
                log.info("DHCP: lease on %s renewed for %s", ip(event.address), seconds(event.lease))
            elif previous is None or previous.address != event.address:
                log.warning("DHCP: bound again, now %s", text)
        elif isinstance(event, LeaseLost):
            if self.bound is not None and self.bound.address == event.address:
                self.bound = None
            if event.reason != "released":
                log.warning("DHCP: lost the lease on %s (%s); looking for a new one", ip(event.address),
                            event.reason)
        elif isinstance(event, Declined):
            log.warning("DHCP: %s is in use by another host (ARP conflict): declined, starting again",
                        ip(event.address))
        elif isinstance(event, Failed):
            if not self.ever_bound:
                self.failure = event.reason
                self.runtime.stop()
            else:
                log.warning("DHCP: %s; still trying", event.reason)
                self.host.client.start(self.stack.now)
