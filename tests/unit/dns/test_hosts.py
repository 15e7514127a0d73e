"""The hosts table (hosts(5)): both families, each answered apart, as glibc's files backend."""

from __future__ import annotations

import ipaddress

from pystack.dns.hosts import HostsTable

LINES = [
    "127.0.0.1 localhost",
    "::1 localhost ip6-localhost ip6-loopback  # the IPv6 loopback",
    "192.0.2.1 kernel.test kernel",
    "2001:db8::1 kernel.test kernel",
    "2001:db8::9 kernel.test",
    "fe80::1%eth0 scoped.test",
    "not-an-address junk.test",
]


def v6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def test_ipv6_lines_answer_ipv6_lookups_and_ipv4_lines_ipv4_ones() -> None:
    table = HostsTable.parse(LINES)
    assert table.addresses("kernel") == ("kernel.test", [0xC0000201])
    assert table.addresses("Kernel.Test.", version=6) == ("kernel.test", [v6("2001:db8::1"), v6("2001:db8::9")])
    assert table.addresses("ip6-localhost") is None  # only an IPv6 line names it
    assert table.addresses("ip6-localhost", version=6) == ("localhost", [1])
    assert table.addresses("localhost", version=6) == ("localhost", [1])
    assert table.addresses("localhost") == ("localhost", [0x7F000001])


def test_reverse_lookups_keep_the_families_apart() -> None:
    table = HostsTable.parse(LINES)
    assert table.names(v6("2001:db8::1"), version=6) == ["kernel.test", "kernel"]
    assert table.names(1, version=6) == ["localhost", "ip6-localhost", "ip6-loopback"]
    assert table.names(1) == []  # 0.0.0.1 is no IPv4 line's


def test_unparsable_and_scoped_addresses_are_skipped() -> None:
    table = HostsTable.parse(LINES)
    assert table.addresses("scoped.test", version=6) is None and table.addresses("junk.test") is None
