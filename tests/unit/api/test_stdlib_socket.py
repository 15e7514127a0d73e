"""pystack.socket, the stdlib module's surface, over runtime A; its peers are pystack.api sockets on B.

No root: the two stacks are joined by a socketpair link (conftest.py). The kernel's own sockets on
loopback are the reference where a behaviour is compared.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import hashlib
import ipaddress
import os
import random
import selectors
import struct
import threading
from collections.abc import Iterator

import pytest

import pystack.socket as ps
from pystack.api import socket as api
from pystack.api.families import Where
from pystack.api.names import Names
from pystack.dns.hosts import HostsTable
from pystack.runtime import Runtime
from pystack.wire import dns as dns_wire
from pystack.wire.ipv4 import addr_to_int

from .conftest import A_IP, B_IP


@pytest.fixture
def net(runtimes: tuple[Runtime, Runtime]) -> Iterator[tuple[Runtime, Runtime]]:
    """pystack.socket on A, with a hosts table naming B and B's DNS server at port 53."""
    ra, rb = runtimes
    hosts = HostsTable.parse([f"{B_IP} peer.example.test peer"])
    ps.use(ra, Names(ra, [Where(4, addr_to_int(B_IP))], hosts))
    try:
        yield ra, rb
    finally:
        ps._network = None


def _echo_server(rb: Runtime, port: int, family: int = api.AF_INET) -> api.TcpSocket:
    server = api.socket(rb, family, api.SOCK_STREAM)
    server.bind(("", port))
    server.listen(64)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return

            def echo(c: api.TcpSocket = conn) -> None:
                with c:
                    try:
                        while data := c.recv(65536):
                            c.sendall(data)
                    except ConnectionResetError:
                        pass  # a client that closed with SO_LINGER 0

            threading.Thread(target=echo, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server


def _dns_server(rb: Runtime, records: dict[str, list[str]]) -> api.UdpSocket:
    """Answers A and AAAA questions from ``records`` (name -> addresses of either family): NOERROR with no
    data for a known name without the address type asked for, NXDOMAIN for the rest."""
    sock = api.socket(rb, type=api.SOCK_DGRAM)
    sock.bind(("", dns_wire.PORT))

    def serve() -> None:
        while True:
            try:
                data, peer = sock.recvfrom(512)
            except OSError:
                return
            query = dns_wire.parse(data)
            q = query.questions[0]
            known = records.get(q.name.rstrip(".").lower())
            answers = []
            for text in known or []:
                address = ipaddress.ip_address(text)
                if (q.qtype, address.version) in ((dns_wire.TYPE_A, 4), (dns_wire.TYPE_AAAA, 6)):
                    rdata = int(address) if address.version == 4 else address
                    answers.append(dns_wire.Record(q.name, q.qtype, dns_wire.CLASS_IN, 60, rdata))
            flags = dns_wire.FLAG_QR | dns_wire.FLAG_RD | dns_wire.FLAG_RA | (0 if known else dns_wire.RCODE_NXDOMAIN)
            sock.sendto(dns_wire.build(dns_wire.DnsMessage(query.id, flags, [q], answers)), peer)

    threading.Thread(target=serve, daemon=True).start()
    return sock


def test_create_connection_and_makefile_carry_a_line_protocol_and_a_megabyte(net):
    _ra, rb = net
    server = _echo_server(rb, 7100)
    data = random.Random(1).randbytes(1 << 20)
    with ps.create_connection(("peer.example.test", 7100), timeout=20) as s:
        assert isinstance(s, ps.socket) and s.family == ps.AF_INET and s.type == ps.SOCK_STREAM
        assert s.getpeername() == (B_IP, 7100)
        f = s.makefile("rwb")
        f.write(b"first line\nsecond line\n")
        f.flush()
        assert f.readline() == b"first line\n" and f.readline() == b"second line\n"
        sender = threading.Thread(target=lambda: s.sendall(data), daemon=True)
        sender.start()
        got = bytearray()
        buf = bytearray(65536)
        while len(got) < len(data):
            n = s.recv_into(buf)
            assert n
            got += buf[:n]
        sender.join(10)
        f.close()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert s.fileno() == -1
    server.close()


def test_getaddrinfo_answers_from_literals_hosts_and_pystacks_dns(net):
    _ra, rb = net
    dns = _dns_server(rb, {"www.example.test": ["192.0.2.80"]})
    stream = (ps.AF_INET, ps.SOCK_STREAM, ps.IPPROTO_TCP)
    assert ps.getaddrinfo("192.0.2.9", 80, type=ps.SOCK_STREAM) == [(*stream, "", ("192.0.2.9", 80))]
    assert ps.getaddrinfo(None, "80", flags=ps.AI_PASSIVE, type=ps.SOCK_STREAM) == [(*stream, "", ("0.0.0.0", 80))]
    assert ps.getaddrinfo("peer", 7, ps.AF_INET, ps.SOCK_DGRAM) == [(ps.AF_INET, ps.SOCK_DGRAM, ps.IPPROTO_UDP, "",
                                                                     (B_IP, 7))]
    assert ps.getaddrinfo("www.example.test", 443, type=ps.SOCK_STREAM, flags=ps.AI_CANONNAME) == [
        (*stream, "www.example.test", ("192.0.2.80", 443))]
    assert ps.gethostbyname("www.example.test") == "192.0.2.80"
    assert ps.gethostbyaddr(B_IP)[0] == "peer.example.test"
    with pytest.raises(ps.gaierror) as nx:
        ps.getaddrinfo("nowhere.example.test", 80)
    assert nx.value.errno == ps.EAI_NONAME
    with pytest.raises(ps.gaierror) as numeric:
        ps.getaddrinfo("www.example.test", 80, flags=ps.AI_NUMERICHOST)
    assert numeric.value.errno == ps.EAI_NONAME
    with pytest.raises(ps.gaierror) as v6:
        ps.getaddrinfo("www.example.test", 80, ps.AF_INET6)
    assert v6.value.errno == ps.EAI_NODATA  # glibc's answer for a name with A records only
    with pytest.raises(ps.gaierror) as family:
        ps.getaddrinfo("www.example.test", 80, ps.AF_PACKET)
    assert family.value.errno == ps.EAI_FAMILY
    dns.close()


def test_errors_are_the_kernels(net):
    """Each misuse raises what a kernel socket raises for it (same class, same errno), here on loopback."""
    _ra, rb = net
    server = _echo_server(rb, 7101)

    def kernel_listener() -> tuple[str, int]:
        ks = ps._std.socket()
        ks.bind(("127.0.0.1", 0))
        ks.listen()
        kernel_listeners.append(ks)
        return ks.getsockname()

    kernel_listeners: list = []

    def closed(make):
        s = make()
        s.close()
        return s

    def connected(make, address):
        s = make()
        s.settimeout(5)
        s.connect(address)
        return s

    cases = {
        "send after close": lambda make, addr: closed(make).send(b"x"),
        "recv after close": lambda make, addr: closed(make).recv(1),
        "connect after close": lambda make, addr: closed(make).connect(addr),
        "settimeout after close": lambda make, addr: closed(make).settimeout(1),
        "recv unconnected": lambda make, addr: make().recv(1),
        "send unconnected": lambda make, addr: make().send(b"x"),
        "getpeername unconnected": lambda make, addr: make().getpeername(),
        "shutdown unconnected": lambda make, addr: make().shutdown(ps.SHUT_RDWR),
        "accept unlistening": lambda make, addr: make().accept(),
        "connect twice": lambda make, addr: connected(make, addr).connect(addr),
        "listen connected": lambda make, addr: connected(make, addr).listen(),
        "bind twice": lambda make, addr: (lambda s: (s.bind(("", 0)), s.bind(("", 0))))(make()),
        "send after shutdown": lambda make, addr: (lambda s: (s.shutdown(ps.SHUT_WR), s.send(b"x")))(
            connected(make, addr)),
        "recv timeout": lambda make, addr: (lambda s: (s.settimeout(0.05), s.recv(1)))(connected(make, addr)),
        "recv nonblocking": lambda make, addr: (lambda s: (s.setblocking(False), s.recv(1)))(connected(make, addr)),
        "udp send unconnected": lambda make, addr: make(ps.SOCK_DGRAM).send(b"x"),
        "udp listen": lambda make, addr: make(ps.SOCK_DGRAM).listen(),
        "udp oversize": lambda make, addr: make(ps.SOCK_DGRAM).sendto(bytes(70000), (addr[0], 9)),
        "raw socket": lambda make, addr: make(ps.SOCK_RAW),
        "AF_INET6": lambda make, addr: make(family=ps.AF_INET6) if make is ps.socket else ps._std.socket(12345),
        "port out of range": lambda make, addr: make().connect((addr[0], 70000)),
        "address not a tuple": lambda make, addr: make().connect(addr[0]),
    }

    def outcome(fn, make, addr):
        try:
            fn(make, addr)
        except Exception as exc:
            return type(exc).__name__, getattr(exc, "errno", None)
        return "no error", None

    def kernel_make(kind=ps.SOCK_STREAM, family=ps.AF_INET):
        return ps._std.socket(family, kind)

    def ours_make(kind=ps.SOCK_STREAM, family=ps.AF_INET):
        return ps.socket(family, kind)

    differ = {}
    for name, fn in cases.items():
        theirs = outcome(fn, kernel_make, kernel_listener())
        ours = outcome(fn, ps.socket if name == "AF_INET6" else ours_make, (B_IP, 7101))
        if name == "AF_INET6":
            theirs = ("OSError", errno.EAFNOSUPPORT)  # a kernel without IPv6, as this stack has none up
        if theirs != ours:
            differ[name] = (theirs, ours)
    assert not differ, differ
    for ks in kernel_listeners:
        ks.close()
    server.close()


def test_bind_in_use_is_eaddrinuse_and_a_closed_port_refuses(net):
    _ra, rb = net
    a = ps.socket()
    a.bind(("", 7200))
    b = ps.socket()
    with pytest.raises(OSError) as in_use:
        b.bind(("0.0.0.0", 7200))
    assert in_use.value.errno == errno.EADDRINUSE
    a.listen()
    with pytest.raises(OSError) as still:
        b.bind(("", 7200))
    assert still.value.errno == errno.EADDRINUSE
    a.close()
    b.bind(("", 7200))  # free again once closed
    b.close()
    c = ps.socket()
    c.settimeout(5)
    with pytest.raises(ConnectionRefusedError):
        c.connect((B_IP, 7299))
    assert c.connect_ex((B_IP, 7299)) == errno.ECONNREFUSED  # tried again, as Linux does


def test_selectors_see_exactly_the_sockets_readiness(net):
    """A non-blocking connect becomes writable; data makes it readable and reading it all makes it not;
    a full send buffer makes it unwritable until the peer reads."""
    _ra, rb = net
    server = api.socket(rb, type=api.SOCK_STREAM)
    server.bind(("", 7300))
    server.listen()
    c = ps.socket()
    c.setsockopt(ps.SOL_SOCKET, ps.SO_SNDBUF, 8192)
    c.setblocking(False)
    assert c.connect_ex((B_IP, 7300)) == errno.EINPROGRESS
    sel = selectors.DefaultSelector()
    sel.register(c, selectors.EVENT_READ | selectors.EVENT_WRITE)
    events = dict((key.fileobj, ev) for key, ev in sel.select(5))
    assert events == {c: selectors.EVENT_WRITE}
    assert c.getsockopt(ps.SOL_SOCKET, ps.SO_ERROR) == 0
    peer, _ = server.accept()
    peer.sendall(b"to the client")
    sel.modify(c, selectors.EVENT_READ)  # wait for the data (writable it already is)
    assert dict((key.fileobj, ev) for key, ev in sel.select(5)) == {c: selectors.EVENT_READ}
    sel.modify(c, selectors.EVENT_READ | selectors.EVENT_WRITE)
    events = dict((key.fileobj, ev) for key, ev in sel.select(0))
    assert events == {c: selectors.EVENT_READ | selectors.EVENT_WRITE}
    assert c.recv(100) == b"to the client"
    assert dict((key.fileobj, ev) for key, ev in sel.select(0)) == {c: selectors.EVENT_WRITE}
    sent = 0
    sel.modify(c, selectors.EVENT_WRITE)
    while sel.select(2):  # send while it becomes writable: until our buffer and the peer's window are full
        with pytest.raises(BlockingIOError):
            while True:
                sent += c.send(bytes(4096))
    sel.modify(c, selectors.EVENT_READ | selectors.EVENT_WRITE)
    assert sel.select(0) == []  # neither readable nor writable
    got = 0
    while got < sent:
        got += len(peer.recv(65536))
    assert dict((key.fileobj, ev) for key, ev in sel.select(5)) == {c: selectors.EVENT_WRITE}
    peer.close()  # its FIN: readable (EOF)
    sel.modify(c, selectors.EVENT_READ)
    assert dict((key.fileobj, ev) for key, ev in sel.select(5)) == {c: selectors.EVENT_READ}
    assert c.recv(10) == b""
    sel.close()
    c.close()
    server.close()


def test_listening_socket_is_readable_when_a_connection_waits(net):
    ra, rb = net
    listener = ps.create_server(("", 7400))
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.accept()
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ | selectors.EVENT_WRITE)
    assert sel.select(0) == []
    peer = api.socket(rb, type=api.SOCK_STREAM)
    peer.settimeout(5)
    peer.connect((A_IP, 7400))
    assert [ev for _, ev in sel.select(5)] == [selectors.EVENT_READ]
    conn, address = listener.accept()
    assert address == peer.getsockname() and conn.gettimeout() is None
    assert sel.select(0) == []
    sel.close()
    for s in (conn, listener, peer):
        s.close()


def test_asyncio_selector_loop_drives_pystack_sockets(net):
    """asyncio's own streams, server and sock_* calls over sockets it was handed."""
    _ra, rb = net
    server = _echo_server(rb, 7500)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = ps.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, (B_IP, 7500))
        await loop.sock_sendall(sock, b"sock_ calls")
        assert await loop.sock_recv(sock, 100) == b"sock_ calls"
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"a stream line\n")
        assert await reader.readline() == b"a stream line\n"
        writer.close()
        await writer.wait_closed()

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write((await r.readline()).upper())
            await w.drain()
            w.close()

        listener = ps.create_server(("", 7501))
        srv = await asyncio.start_server(handle, sock=listener)
        answers = []

        def client(i: int) -> None:
            c = api.socket(rb, type=api.SOCK_STREAM)
            c.settimeout(10)
            c.connect((A_IP, 7501))
            c.sendall(b"client %d\n" % i)
            answers.append(c.recv(100))
            c.close()

        await asyncio.gather(*(loop.run_in_executor(None, client, i) for i in range(10)))
        assert sorted(answers) == sorted(b"CLIENT %d\n" % i for i in range(10))
        srv.close()
        await srv.wait_closed()

    asyncio.run(main())
    server.close()


def test_ten_thousand_sockets_leave_no_descriptor_behind(net):
    """Open, take fileno() (a readiness pair), close: 10,000 times; the process's descriptors stay flat."""
    gc.collect()  # what earlier tests left for the collector goes first, not during the count
    before = len(os.listdir("/proc/self/fd"))
    for i in range(10_000):
        s = ps.socket(ps.AF_INET, ps.SOCK_DGRAM if i % 2 else ps.SOCK_STREAM)
        assert s.fileno() >= 0
        s.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_socket_dropped_without_close_frees_its_descriptors(net):
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(100):
        ps.socket().fileno()
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before


def test_options_round_trip_and_reach_the_connection(net):
    _ra, rb = net
    server = _echo_server(rb, 7600)
    s = ps.socket()
    s.setsockopt(ps.IPPROTO_TCP, ps.TCP_NODELAY, 1)
    s.setsockopt(ps.SOL_SOCKET, ps.SO_KEEPALIVE, 1)
    s.setsockopt(ps.IPPROTO_TCP, ps.TCP_KEEPIDLE, 30)
    s.setsockopt(ps.IPPROTO_TCP, ps.TCP_KEEPINTVL, 5)
    s.setsockopt(ps.IPPROTO_TCP, ps.TCP_KEEPCNT, 3)
    s.setsockopt(ps.SOL_SOCKET, ps.SO_RCVBUF, 65536)
    s.setsockopt(ps.SOL_SOCKET, ps.SO_LINGER, struct.pack("ii", 1, 0))
    s.settimeout(5)
    s.connect((B_IP, 7600))
    conn = s._sock._conn
    assert conn is not None and conn.nodelay and conn.keepalive
    assert conn._cfg.keepalive_idle == 30 and conn._cfg.keepalive_probes == 3
    assert s.getsockopt(ps.SOL_SOCKET, ps.SO_RCVBUF) == 65536
    assert struct.unpack("ii", s.getsockopt(ps.SOL_SOCKET, ps.SO_LINGER, 8)) == (1, 0)
    assert s.getsockopt(ps.SOL_SOCKET, ps.SO_TYPE) == ps.SOCK_STREAM
    info = struct.unpack("=8B24I", s.getsockopt(ps.IPPROTO_TCP, ps.TCP_INFO, 104))
    assert info[0] == 1 and info[10] > 0  # ESTABLISHED (Linux's number), an MSS
    assert s.tcp_info()["state"] == "ESTABLISHED"
    with pytest.raises(OSError) as unknown:
        s.setsockopt(ps.SOL_SOCKET, ps.SO_REUSEPORT, 1)
    assert unknown.value.errno == errno.ENOPROTOOPT
    s.close()  # SO_LINGER 0: a reset
    assert conn.state.name == "CLOSED"
    server.close()


def test_udp_datagrams_with_recvfrom_into_and_sendmsg(net):
    _ra, rb = net
    peer = api.socket(rb, type=api.SOCK_DGRAM)
    peer.bind(("", 5300))
    peer.settimeout(5)
    s = ps.socket(ps.AF_INET, ps.SOCK_DGRAM)
    s.settimeout(5)
    assert s.getsockname() == ("0.0.0.0", 0)
    assert s.sendmsg([b"two ", b"parts"], (), 0, ("peer", 5300)) == 9
    data, address = peer.recvfrom(100)
    assert data == b"two parts"
    peer.sendto(b"answer", address)
    buf = bytearray(16)
    assert s.recvfrom_into(buf) == (6, (B_IP, 5300)) and buf[:6] == b"answer"
    with pytest.raises(PermissionError):
        s.sendto(b"x", ("<broadcast>", 9))
    s.setsockopt(ps.SOL_SOCKET, ps.SO_BROADCAST, 1)
    assert s.sendto(b"x", ("<broadcast>", 9)) == 1
    s.close()
    peer.close()


def test_unix_sockets_stay_the_kernels(net):
    a, b = ps.socketpair()
    assert isinstance(a, ps.socket) and type(a) is ps._std.socket
    u = ps.socket(ps.AF_UNIX, ps.SOCK_STREAM)
    assert type(u) is ps._std.socket
    for s in (a, b, u):
        s.close()


def test_without_a_stack_a_socket_says_so():
    ps._network = None
    with pytest.raises(OSError) as info:
        ps.socket()
    assert info.value.errno == errno.ENETDOWN
