"""Names (pystack/api/names.py) asking DNS servers of either family over two in-memory dual-stack stacks:
UDP over IPv6, the TCP retry over IPv6 when the answer is truncated, an IPv4 server through the same
AF_INET6 socket, and a server list read afresh for every question."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator

import pytest

from pystack.api import socket as api
from pystack.api.families import V4, V6, Where
from pystack.api.names import Names
from pystack.dns import DnsConfig
from pystack.dns import tcp as dns_tcp
from pystack.runtime import Runtime
from pystack.wire import dns as dns_wire

from .conftest import A6, A_IP, B6, B_IP

SERVER6 = Where(V6, int(ipaddress.IPv6Address(B6)))
SERVER4 = Where(V4, int(ipaddress.IPv4Address(B_IP)))
WWW6 = ipaddress.IPv6Address("2001:db8:1::80")
MANY = [0xC6336464 + i for i in range(40)]
"""many.example.test's A records: 40 do not fit 512 bytes, so the UDP answer is truncated."""


def _answer(query: bytes, limit: int | None) -> bytes:
    """www.example.test has AAAA and A, many.example.test 40 A records; TC when they exceed ``limit``."""
    msg = dns_wire.parse(query)
    q = msg.questions[0]
    name = q.name.rstrip(".").lower()
    records: list[dns_wire.RData] = []
    if name == "www.example.test":
        records = [WWW6] if q.qtype == dns_wire.TYPE_AAAA else [0xC6336450] if q.qtype == dns_wire.TYPE_A else []
    elif name == "many.example.test" and q.qtype == dns_wire.TYPE_A:
        records = list(MANY)
    flags = dns_wire.FLAG_QR | dns_wire.FLAG_RD | dns_wire.FLAG_RA
    answers = [dns_wire.Record(q.name, q.qtype, dns_wire.CLASS_IN, 60, r) for r in records]
    if limit is not None and len(answers) > 10:
        flags |= dns_wire.FLAG_TC
        answers = answers[:3]
    return dns_wire.build(dns_wire.DnsMessage(msg.id, flags, [q], answers))


class Server:
    """A DNS server on B: UDP and TCP port 53 on one address, recording whom it heard from."""

    def __init__(self, rb: Runtime, family: int, host: str) -> None:
        self.udp_peers: list[str] = []
        self.tcp_peers: list[str] = []
        self.udp = api.socket(rb, family, api.SOCK_DGRAM)
        self.udp.bind((host, dns_wire.PORT))
        self.tcp = api.socket(rb, family, api.SOCK_STREAM)
        self.tcp.bind((host, dns_wire.PORT))
        self.tcp.listen(4)
        threading.Thread(target=self._serve_udp, daemon=True).start()
        threading.Thread(target=self._serve_tcp, daemon=True).start()

    def _serve_udp(self) -> None:
        while True:
            try:
                data, peer = self.udp.recvfrom(512)
            except OSError:
                return
            self.udp_peers.append(peer[0])
            self.udp.sendto(_answer(data, limit=512), peer)

    def _serve_tcp(self) -> None:
        while True:
            try:
                conn, peer = self.tcp.accept()
            except OSError:
                return
            self.tcp_peers.append(peer[0])
            with conn:
                conn.settimeout(10)
                reader = dns_tcp.StreamReader()
                messages: list[bytes] = []
                while not messages:
                    data = conn.recv(4096)
                    if not data:
                        break
                    messages = reader.feed(data)
                for message in messages:
                    conn.sendall(dns_tcp.frame(_answer(message, limit=None)))

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def server6(runtimes6: tuple[Runtime, Runtime]) -> Iterator[tuple[Runtime, Server]]:
    ra, rb = runtimes6
    server = Server(rb, api.AF_INET6, B6)
    yield ra, server
    server.close()


def test_questions_to_an_ipv6_server_go_over_udp6(server6) -> None:
    ra, server = server6
    names = Names(ra, [SERVER6], config=DnsConfig(timeout=5.0))
    answers = names.lookup("www.example.test", (6, 4))
    assert answers[6] == ("www.example.test", [int(WWW6)]) and answers[4] == ("www.example.test", [0xC6336450])
    assert server.udp_peers == [A6, A6]  # AAAA and A, from pystack's IPv6 address


def test_a_truncated_answer_is_asked_again_over_tcp6(server6) -> None:
    ra, server = server6
    names = Names(ra, [SERVER6], config=DnsConfig(timeout=5.0))
    q = names.query("many.example.test")
    assert q.error is None and q.addresses == MANY and q.server == SERVER6
    assert server.udp_peers == [A6] and server.tcp_peers == [A6]


def test_an_ipv4_server_is_reached_from_the_same_socket_when_the_ipv6_one_is_silent(
        runtimes6: tuple[Runtime, Runtime]) -> None:
    """The list names a silent IPv6 server, then an IPv4 one: one AF_INET6 socket on :: asks both."""
    ra, rb = runtimes6
    server = Server(rb, api.AF_INET, B_IP)
    silent = Where(V6, int(ipaddress.IPv6Address("2001:db8::99")))  # on the link, nobody answers
    try:
        names = Names(ra, [silent, SERVER4], config=DnsConfig(timeout=0.3, attempts=1))
        q = names.query("www.example.test", dns_wire.TYPE_AAAA)
        assert q.error is None and q.addresses == [int(WWW6)] and q.server == SERVER4
        assert server.udp_peers == [A_IP]
    finally:
        server.close()


def test_the_server_list_is_read_again_for_every_question(server6) -> None:
    ra, server = server6
    listed: list[Where] = []
    names = Names(ra, lambda: listed, config=DnsConfig(timeout=5.0))
    q = names.query("www.example.test")
    assert q.error is not None and "no DNS server" in str(q.error)
    listed.append(SERVER6)  # a router advertised it since
    q = names.query("www.example.test")
    assert q.error is None and q.addresses == [0xC6336450] and server.udp_peers == [A6]
