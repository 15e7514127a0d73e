"""A table of socket misuses, each run and its outcome written down: the exception's class and errno,
or the value returned. The tests run this file with the kernel's python3 and under ``pystack exec``
against the same kernel echo server, and compare the two tables.

usage: misuse.py HOST ECHO_PORT CLOSED_PORT   (HOST on a /24: its .255 is the subnet's broadcast)
Prints one JSON object: case name -> [outcome, errno or value].
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

HOST, PORT, CLOSED = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
made: list[socket.socket] = []


def tcp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    made.append(s)
    return s


def udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    made.append(s)
    return s


def tcp6(v6only: bool | None = None) -> socket.socket:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    made.append(s)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    return s


def udp6(v6only: bool | None = None) -> socket.socket:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    made.append(s)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    return s


def closed() -> socket.socket:
    s = tcp()
    s.close()
    return s


def connected(timeout: float | None = 10.0) -> socket.socket:
    s = tcp()
    s.settimeout(timeout)
    s.connect((HOST, PORT))
    return s


def listening() -> socket.socket:
    s = tcp()
    s.bind(("", 0))
    s.listen()
    return s


def refused_nonblocking() -> list[int]:
    s = tcp()
    s.setblocking(False)
    first = s.connect_ex((HOST, CLOSED))
    select.select([], [s], [], 10)
    return [first, s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)]


def bind_in_use(reuse: bool) -> None:
    owner = listening()
    other = tcp()
    if reuse:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(("", owner.getsockname()[1]))


def echo_after_shut_rd() -> bytes:
    s = connected()
    s.shutdown(socket.SHUT_RD)
    return s.recv(10)


def connect_again(timeout: float | None) -> None:
    s = connected(timeout)
    s.connect((HOST, PORT))


def connect_thrice() -> list[int]:
    s = connected(10.0)
    return [s.connect_ex((HOST, PORT)), s.connect_ex((HOST, PORT))]


def peer_closes() -> list[Any]:
    s = connected()
    s.sendall(b"bye\n")
    line = s.recv(10)
    s.shutdown(socket.SHUT_WR)
    return [line.decode(), s.recv(10).decode()]


MAPPED = "::ffff:" + HOST
"""HOST as an AF_INET6 socket names it (RFC 4291 2.5.5.2)."""


def echo_over_mapped() -> list[Any]:
    """A dual-stack AF_INET6 socket reaches the IPv4 echo server through its mapped address."""
    s = tcp6()
    s.settimeout(10)
    s.connect((MAPPED, PORT))
    s.sendall(b"mapped\n")
    return [s.recv(10).decode(), list(s.getpeername()), s.getsockname()[0].startswith("::ffff:")]


def port_held_across_families(first: Callable[[], socket.socket], second: Callable[[], socket.socket]) -> None:
    """bind() of ``second`` on the port ``first`` holds: Linux's rules between :: and 0.0.0.0."""
    owner = first()
    owner.bind(("", 0))
    second().bind(("", owner.getsockname()[1]))


CASES: dict[str, Callable[[], Any]] = {
    "send on a closed socket": lambda: closed().send(b"x"),
    "recv on a closed socket": lambda: closed().recv(1),
    "connect on a closed socket": lambda: closed().connect((HOST, PORT)),
    "bind on a closed socket": lambda: closed().bind(("", 0)),
    "listen on a closed socket": lambda: closed().listen(),
    "accept on a closed socket": lambda: closed().accept(),
    "getsockname on a closed socket": lambda: closed().getsockname(),
    "getpeername on a closed socket": lambda: closed().getpeername(),
    "setsockopt on a closed socket": lambda: closed().setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    "shutdown on a closed socket": lambda: closed().shutdown(socket.SHUT_RDWR),
    "settimeout on a closed socket": lambda: closed().settimeout(1),
    "fileno of a closed socket": lambda: closed().fileno(),
    "recv unconnected": lambda: tcp().recv(1),
    "recvfrom unconnected": lambda: tcp().recvfrom(1),
    "send unconnected": lambda: tcp().send(b"x"),
    "sendall unconnected": lambda: tcp().sendall(b"x"),
    "getpeername unconnected": lambda: tcp().getpeername(),
    "getsockname unbound": lambda: tcp().getsockname(),
    "shutdown unconnected": lambda: tcp().shutdown(socket.SHUT_RDWR),
    "accept without listen": lambda: tcp().accept(),
    "SO_ERROR of a new socket": lambda: tcp().getsockopt(socket.SOL_SOCKET, socket.SO_ERROR),
    "SO_TYPE": lambda: tcp().getsockopt(socket.SOL_SOCKET, socket.SO_TYPE),
    "connect twice, blocking": lambda: connect_again(None),
    "connect twice, with a timeout": lambda: connect_again(10.0),
    "connect_ex twice more": connect_thrice,
    "listen when connected": lambda: connected().listen(),
    "bind twice": lambda: (lambda s: (s.bind(("", 0)), s.bind(("", 0))))(tcp()),
    "bind in use": lambda: bind_in_use(False),
    "bind in use with SO_REUSEADDR": lambda: bind_in_use(True),
    "bind to an address not ours": lambda: tcp().bind(("198.51.100.7", 0)),
    "connect refused": lambda: tcp().connect((HOST, CLOSED)),
    "connect_ex refused": lambda: tcp().connect_ex((HOST, CLOSED)),
    "non-blocking connect refused, SO_ERROR twice": refused_nonblocking,
    "recv timeout": lambda: (lambda s: (s.settimeout(0.3), s.recv(1)))(connected()),
    "recv non-blocking": lambda: (lambda s: (s.setblocking(False), s.recv(1)))(connected()),
    "accept timeout": lambda: (lambda s: (s.settimeout(0.3), s.accept()))(listening()),
    "accept non-blocking": lambda: (lambda s: (s.setblocking(False), s.accept()))(listening()),
    "send after SHUT_WR": lambda: (lambda s: (s.shutdown(socket.SHUT_WR), s.send(b"x")))(connected()),
    "recv after SHUT_RD": echo_after_shut_rd,
    "shutdown with a bad how": lambda: connected().shutdown(7),
    "echo, then EOF after SHUT_WR": peer_closes,
    "recv with a negative size": lambda: connected().recv(-1),
    "settimeout negative": lambda: tcp().settimeout(-1),
    "port out of range": lambda: tcp().connect((HOST, 70000)),
    "address not a tuple": lambda: tcp().connect(HOST),
    "unknown family": lambda: socket.socket(12345, socket.SOCK_STREAM),
    "unknown type": lambda: socket.socket(socket.AF_INET, 77),
    "udp send unconnected": lambda: udp().send(b"x"),
    "udp listen": lambda: udp().listen(),
    "udp accept": lambda: udp().accept(),
    "udp datagram too long": lambda: udp().sendto(bytes(70000), (HOST, 9)),
    "udp getpeername unconnected": lambda: udp().getpeername(),
    "udp getsockname unbound": lambda: udp().getsockname(),
    "udp recv non-blocking": lambda: (lambda s: (s.setblocking(False), s.recv(1)))(udp()),
    "udp recv timeout": lambda: (lambda s: (s.settimeout(0.3), s.recv(1)))(udp()),
    "udp broadcast without SO_BROADCAST": lambda: udp().sendto(b"x", (HOST.rsplit(".", 1)[0] + ".255", 9)),
    "udp shutdown unconnected": lambda: udp().shutdown(socket.SHUT_RD),
    "udp bind twice": lambda: (lambda s: (s.bind(("", 0)), s.bind(("", 0))))(udp()),
    "v6 getsockname unbound": lambda: tcp6().getsockname(),
    "v6 udp getsockname unbound": lambda: udp6().getsockname(),
    "v6 SO_DOMAIN": lambda: tcp6().getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN),
    "v6 V6ONLY is off by default": lambda: tcp6().getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY),
    "v6 V6ONLY after bind": lambda: (lambda s: (s.bind(("::", 0)),
                                               s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)))(tcp6()),
    "v6 V6ONLY set on an AF_INET socket": lambda: tcp().setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1),
    "v6 V6ONLY read from an AF_INET socket": lambda: tcp().getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY),
    "v6 getsockname on ::": lambda: (lambda s: (s.bind(("::", 0)), s.getsockname()[0]))(tcp6())[1],
    "v6 getsockname on the IPv4 wildcard mapped": lambda: (lambda s: (s.bind(("::ffff:0.0.0.0", 0)),
                                                                      s.getsockname()[0]))(tcp6())[1],
    "v6 connect mapped with V6ONLY": lambda: tcp6(True).connect((MAPPED, PORT)),
    "v6 connect_ex mapped with V6ONLY": lambda: tcp6(True).connect_ex((MAPPED, PORT)),
    "v6 bind mapped with V6ONLY": lambda: tcp6(True).bind(("::ffff:0.0.0.0", 0)),
    "v6 udp sendto mapped with V6ONLY": lambda: udp6(True).sendto(b"x", (MAPPED, 9)),
    "v6 bind to an address not ours": lambda: tcp6().bind(("2001:db8::7", 0)),
    "v6 connect to an IPv4 literal": lambda: tcp6().connect((HOST, PORT)),
    "v6 address not a tuple": lambda: tcp6().connect("::1"),
    "v6 address of one item": lambda: tcp6().connect(("::1",)),
    "v6 address of five items": lambda: tcp6().connect(("::1", 1, 0, 0, 0)),
    "v6 port out of range": lambda: tcp6().connect((MAPPED, 70000)),
    "v6 flowinfo out of range": lambda: tcp6().connect((MAPPED, PORT, 1 << 20, 0)),
    "v6 broadcast": lambda: udp6().sendto(b"x", ("<broadcast>", 9)),
    "v6 echo over a mapped address": echo_over_mapped,
    "v6 connect refused over a mapped address": lambda: tcp6().connect((MAPPED, CLOSED)),
    "v6 on :: holds the IPv4 port": lambda: port_held_across_families(tcp6, tcp),
    "v6 V6ONLY leaves the IPv4 port": lambda: port_held_across_families(lambda: tcp6(True), tcp),
    "v6 IPv4 port holds :: too": lambda: port_held_across_families(tcp, tcp6),
    "v6 udp on :: holds the IPv4 port": lambda: port_held_across_families(udp6, udp),
    "v6 getaddrinfo of an IPv4 literal": lambda: socket.getaddrinfo(HOST, PORT, socket.AF_INET6),
    "v6 getaddrinfo of an IPv6 literal for AF_INET": lambda: socket.getaddrinfo("2001:db8::1", PORT, socket.AF_INET),
    "v6 getaddrinfo of the passive wildcard": lambda: socket.getaddrinfo(None, PORT, socket.AF_INET6,
                                                                          socket.SOCK_STREAM, 0, socket.AI_PASSIVE),
    "v6 getnameinfo numeric": lambda: list(socket.getnameinfo(("2001:db8::1", PORT, 0, 0),
                                                              socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)),
    "v6 has_dualstack_ipv6": socket.has_dualstack_ipv6,
    "SO_LINGER as bytes": lambda: (lambda s: (s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 5)),
                                              struct.unpack("ii", s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))))(tcp()),
}


def outcome(case: Callable[[], Any]) -> list[Any]:
    try:
        value = case()
    except Exception as exc:
        return [type(exc).__name__, getattr(exc, "errno", None)]
    if isinstance(value, tuple) and value and all(v is None for v in value):
        value = None  # a chain of calls that returned nothing
    return ["returned", value if isinstance(value, (int, str, list, type(None))) else repr(value)]


def main() -> int:
    table = {name: outcome(case) for name, case in CASES.items()}
    for s in made:
        s.close()
    print(json.dumps(table), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
