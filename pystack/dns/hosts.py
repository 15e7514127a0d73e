"""The hosts table (hosts(5)): names answered before DNS is asked, as glibc's ``hosts: files dns``.

Only IPv4 lines count (pystack has no IPv6). Each line is ``ADDRESS CANONICAL [ALIASES...]``; ``#``
starts a comment. A name on several lines has every address, in the order of the file.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

MAX_LINES = 100_000
"""Lines read from a hosts file; the rest is ignored (a bound on the table)."""


class HostsTable:
    def __init__(self) -> None:
        self._addresses: dict[str, list[int]] = {}
        self._canonical: dict[str, str] = {}
        self._names: dict[int, list[str]] = {}

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
                address = int(ipaddress.IPv4Address(fields[0]))
            except ValueError:
                continue  # IPv6 or garbage
            for name in fields[1:]:
                table.add(name, address, canonical=fields[1])
        return table

    @classmethod
    def load(cls, path: str = "/etc/hosts") -> HostsTable:
        """The file's table; an unreadable file is an empty table, as for the C library."""
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return cls.parse(fh)
        except OSError:
            return cls()

    def add(self, name: str, address: int, canonical: str | None = None) -> None:
        key = name.lower().rstrip(".")
        addresses = self._addresses.setdefault(key, [])
        if address not in addresses:
            addresses.append(address)
        self._canonical.setdefault(key, canonical or name)
        names = self._names.setdefault(address, [])
        if name not in names:
            names.append(name)

    def addresses(self, name: str) -> tuple[str, list[int]] | None:
        """(canonical name, addresses) of ``name``, or None when the table does not know it."""
        key = name.lower().rstrip(".")
        if key not in self._addresses:
            return None
        return self._canonical[key], list(self._addresses[key])

    def names(self, address: int) -> list[str]:
        """The names of ``address``, the first line's canonical name first; [] when unknown."""
        return list(self._names.get(address, []))
