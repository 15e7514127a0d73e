"""The hosts table (hosts(5)): names answered before DNS is asked, as glibc's ``hosts: files dns``.

Each line is ``ADDRESS CANONICAL [ALIASES...]``, the address IPv4 or IPv6; ``#`` starts a comment. A
name on several lines has every address of a family, in the order of the file. Lookups name the IP
version (4 or 6), as getaddrinfo's family does: the two families' entries never mix.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

MAX_LINES = 100_000
"""Lines read from a hosts file; the rest is ignored (a bound on the table)."""


class HostsTable:
    def __init__(self) -> None:
        self._addresses: dict[tuple[int, str], list[int]] = {}
        self._canonical: dict[tuple[int, str], str] = {}
        self._names: dict[tuple[int, int], list[str]] = {}

    @classmethod
    def parse(cls, lines: Iterable[str]) -> HostsTable:
        table = cls()
        for number, line in enumerate(lines):
            if number >= MAX_LINES:
                break
            fields = line.split("#", 1)[0].split()
            if len(fields) < 2:
                continue
            try:
                address = ipaddress.ip_address(fields[0])
            except ValueError:
                continue  # garbage
            if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
                continue  # fe80::1%eth0: glibc's inet_pton refuses it too
            for name in fields[1:]:
                table.add(name, int(address), canonical=fields[1], version=address.version)
        return table

    @classmethod
    def load(cls, path: str = "/etc/hosts") -> HostsTable:
        """The file's table; an unreadable file is an empty table, as for the C library."""
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return cls.parse(fh)
        except OSError:
            return cls()

    def add(self, name: str, address: int, canonical: str | None = None, version: int = 4) -> None:
        key = (version, name.lower().rstrip("."))
        addresses = self._addresses.setdefault(key, [])
        if address not in addresses:
            addresses.append(address)
        self._canonical.setdefault(key, canonical or name)
        names = self._names.setdefault((version, address), [])
        if name not in names:
            names.append(name)

    def addresses(self, name: str, version: int = 4) -> tuple[str, list[int]] | None:
        """(canonical name, addresses of IP ``version``) of ``name``, or None when the table does not
        know it in that family."""
        key = (version, name.lower().rstrip("."))
        if key not in self._addresses:
            return None
        return self._canonical[key], list(self._addresses[key])

    def names(self, address: int, version: int = 4) -> list[str]:
        """The names of ``address``, the first line's canonical name first; [] when unknown."""
        return list(self._names.get((version, address), []))
