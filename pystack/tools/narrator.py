"""The narrator: one time-stamped line per step on stderr as it happens, and the ladder at the end.

Lines come from two places: the frame watcher (what went over the wire, pystack/tools/observe.py) and
the client session (the lease, the answer, the status line). Both may call in from the stack's loop
thread or from the command's thread, so output is serialised with a lock.
"""

from __future__ import annotations

import ipaddress
import math
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from pystack.tools.ladder import Arrow, Participant, render

US = "us"
"""The participant key of pystack itself (its address changes when it leases one)."""
BROADCAST = "broadcast"
MULTICAST = "multicast"
"""The ladder's column for IPv6 multicast groups (all routers, solicited-node groups, MLD)."""


class Narrator:
    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 enabled: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.enabled = enabled
        self.start = clock()
        self.arrows: list[Arrow] = []
        self._participants: dict[str, Participant] = {US: Participant(US, "pystack")}
        self._roles: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def elapsed(self, t: float | None = None) -> float:
        return (self.clock() if t is None else t) - self.start

    def say(self, text: str, t: float | None = None) -> None:
        """One step, stamped with the seconds since the start."""
        if not self.enabled:
            return
        with self._lock:  # stamped under the lock, so the lines' times never go backwards
            print(f"[{self.elapsed(t):8.3f}] {text}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A line without a time stamp (headings, the ladder)."""
        if not self.enabled:
            return
        with self._lock:
            print(text, file=self.stream, flush=True)

    def arrow(self, src: str, dst: str, label: str, t: float | None = None, bulk: str | None = None,
              size: int = 0) -> None:
        with self._lock:
            for key in (src, dst):
                if key not in self._participants:
                    self._participants[key] = Participant(key, key)
            self.arrows.append(Arrow(self.elapsed(t), src, dst, label, bulk, size))

    def role(self, key: str, role: str) -> None:
        """Name what a participant is ("router", "DNS", "web server"), shown under its address."""
        with self._lock:
            roles = self._roles.setdefault(key, [])
            if role not in roles:
                roles.append(role)
            p = self._participants.setdefault(key, Participant(key, key))
            p.subtitle = ", ".join(roles)

    def set_us(self, subtitle: str) -> None:
        with self._lock:
            self._participants[US].subtitle = subtitle

    def roles_of(self, key: str) -> list[str]:
        return list(self._roles.get(key, []))

    def ladder_parts(self) -> tuple[list[Participant], list[Arrow]]:
        """The ladder's columns, pystack first, then broadcast, then the others in order of first
        appearance; and its arrows."""
        with self._lock:
            order = [self._participants[US]]
            for key in (BROADCAST, MULTICAST):
                if key in self._participants:
                    order.append(self._participants[key])
            used = {a.src for a in self.arrows} | {a.dst for a in self.arrows}
            order += [p for k, p in self._participants.items() if k not in (US, BROADCAST, MULTICAST) and k in used]
            return order, list(self.arrows)

    def ladder(self) -> str:
        return render(*self.ladder_parts())

    def ladder_svg(self) -> str:
        from pystack.tools.ladder_svg import render_svg

        return render_svg(*self.ladder_parts())


# ---------------------------------------------------------------------- wording shared by the commands


def ip(addr: int) -> str:
    return str(ipaddress.IPv4Address(addr))


def ip6(addr: int) -> str:
    return str(ipaddress.IPv6Address(addr))


def host(family: int, addr: int) -> str:
    """An address of IP version ``family`` (4 or 6) as text."""
    return ip6(addr) if family == 6 else ip(addr)


def endpoint(address: str, port: int) -> str:
    """``192.0.2.1:80``, or ``[2001:db8::1]:80`` for an IPv6 address (RFC 3986 3.2.2)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def seconds(value: float) -> str:
    """3600 -> "3600 s (1 h)"; infinite leases read as such."""
    if math.isinf(value):
        return "infinite"
    text = f"{value:g} s"
    if value >= 3600 and value % 3600 == 0:
        text += f" ({value / 3600:g} h)"
    elif value >= 60 and value % 60 == 0:
        text += f" ({value / 60:g} min)"
    return text


def describe_lease(address: int, prefix: int, router: int | None, dns: tuple[int, ...] | list[int],
                   lease: float, t1: float, t2: float, server: int, domain: str | None = None) -> str:
    """One line for a DHCP lease: everything the interface was configured with, and when it renews."""
    parts = [f"{ip(address)}/{prefix}", f"router {ip(router) if router is not None else 'none'}",
             f"DNS {', '.join(ip(d) for d in dns) if dns else 'none'}"]
    if domain:
        parts.append(f"domain {domain}")
    parts.append(f"lease {seconds(lease)}")
    if math.isfinite(lease):
        parts.append(f"renew at T1 {t1:g} s, rebind at T2 {t2:g} s")
    parts.append(f"from server {ip(server)}")
    return ", ".join(parts)


def describe_resolution(name: str, chain: list[str], addresses: list[int], ttl: int, from_cache: bool,
                        family: int = 4) -> str:
    """``web.example.test -> CNAME www.example.test -> A 198.51.100.80 (ttl 600 s)``; AAAA for ``family`` 6."""
    steps = [name] + [f"CNAME {c.rstrip('.')}" for c in chain]
    shown = ", ".join(host(family, a) for a in addresses[:4])
    if len(addresses) > 4:
        shown += f", ... ({len(addresses)} addresses)"
    steps.append(f"{'AAAA' if family == 6 else 'A'} {shown}" if addresses else "no address")
    return " -> ".join(steps) + f" (ttl {ttl} s{', from the cache' if from_cache else ''})"


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n:,} bytes ({n / size:.1f} {unit})"
    return f"{n:,} bytes"


def rate(nbytes: int, duration: float) -> str:
    if duration <= 0:
        return "-"
    per_second = nbytes / duration
    if per_second >= 1e6:
        return f"{per_second / 1e6:.1f} MB/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.1f} kB/s"
    return f"{per_second:.0f} B/s"


def ms(duration: float) -> str:
    return f"{duration * 1000:.1f} ms" if duration < 1 else f"{duration:.2f} s"
