"""The narration of frames: hand-built frames in, the lines and ladder arrows they must produce out.

The frames are made with pystack's wire builders (themselves cross-checked against dpkt in tests/unit/wire),
addressed as in the campus lab: pystack 192.0.2.153, router/DHCP/DNS 192.0.2.1, web server 198.51.100.80.
"""

from __future__ import annotations

import io
import re

from pystack.tools.narrator import (
    BROADCAST, US, Narrator, describe_lease, describe_resolution, human_bytes, seconds,
)
from pystack.tools.observe import IN, OUT, ObservedLink, StateWatcher, WireNarration
from pystack.wire import arp, dhcp, dns, ethernet, ipv4, tcp, udp
from pystack.wire.ipv4 import addr_to_int

MAC = bytes.fromhex("0200000000aa")
ROUTER_MAC = bytes.fromhex("5e0000000001")
US_IP = addr_to_int("192.0.2.153")
ROUTER = addr_to_int("192.0.2.1")
WEB = addr_to_int("198.51.100.80")
BCAST = 0xFFFFFFFF


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _setup() -> tuple[WireNarration, Narrator, io.StringIO, Clock]:
    clock = Clock()
    out = io.StringIO()
    narrator = Narrator(out, clock)
    wire = WireNarration(narrator, MAC, clock)
    return wire, narrator, out, clock


def _lines(out: io.StringIO) -> list[str]:
    return [re.sub(r"^\[\s*[\d.]+\] ", "", line) for line in out.getvalue().splitlines()]


def _ip_frame(src_mac: bytes, dst_mac: bytes, src: int, dst: int, proto: int, payload: bytes) -> bytes:
    return ethernet.build(dst_mac, src_mac, ethernet.ETHERTYPE_IPV4, ipv4.build(src, dst, proto, payload))


def _udp_frame(direction: str, src: int, dst: int, sport: int, dport: int, payload: bytes,
               dst_mac: bytes | None = None) -> bytes:
    macs = (MAC, dst_mac or ROUTER_MAC) if direction == OUT else (ROUTER_MAC, dst_mac or MAC)
    return _ip_frame(*macs, src, dst, ipv4.PROTO_UDP, udp.build(src, dst, sport, dport, payload))


def _tcp_frame(direction: str, seq: int, ack: int, flags: int, payload: bytes = b"", options: bytes = b"") -> bytes:
    if direction == OUT:
        segment = tcp.build(US_IP, WEB, 40000, 80, seq, ack, flags, 65535, options, payload)
        return _ip_frame(MAC, ROUTER_MAC, US_IP, WEB, ipv4.PROTO_TCP, segment)
    segment = tcp.build(WEB, US_IP, 80, 40000, seq, ack, flags, 65160, options, payload)
    return _ip_frame(ROUTER_MAC, MAC, WEB, US_IP, ipv4.PROTO_TCP, segment)


# ---------------------------------------------------------------------- the narrator itself


def test_lines_are_stamped_with_seconds_since_start() -> None:
    clock = Clock()
    out = io.StringIO()
    n = Narrator(out, clock)
    clock.t += 1.5
    n.say("hello")
    n.say("at a given time", t=clock.t + 0.25)
    n.note("plain")
    assert out.getvalue().splitlines() == ["[   1.500] hello", "[   1.750] at a given time", "plain"]


def test_disabled_narrator_prints_nothing_but_keeps_arrows() -> None:
    out = io.StringIO()
    n = Narrator(out, Clock(), enabled=False)
    n.say("x")
    n.arrow(US, "192.0.2.1", "y")
    assert out.getvalue() == "" and len(n.arrows) == 1


def test_roles_name_the_columns_of_the_ladder() -> None:
    n = Narrator(io.StringIO(), Clock())
    n.role("192.0.2.1", "router")
    n.role("192.0.2.1", "DNS")
    n.role("192.0.2.1", "router")
    n.set_us("192.0.2.153/24")
    n.arrow(US, BROADCAST, "DHCPDISCOVER")
    n.arrow("192.0.2.1", US, "DHCPOFFER")
    lines = n.ladder().splitlines()
    assert lines[0].split() == ["pystack", "broadcast", "192.0.2.1"]
    assert lines[1].split() == ["192.0.2.153/24", "router,", "DNS"]


def test_wording() -> None:
    assert seconds(3600) == "3600 s (1 h)" and seconds(120) == "120 s (2 min)" and seconds(45) == "45 s"
    assert seconds(float("inf")) == "infinite"
    assert human_bytes(10) == "10 bytes" and human_bytes(300_000) == "300,000 bytes (293.0 KiB)"
    assert describe_lease(US_IP, 24, ROUTER, (ROUTER,), 3600, 1800, 3150, ROUTER, "example.test") == (
        "192.0.2.153/24, router 192.0.2.1, DNS 192.0.2.1, domain example.test, lease 3600 s (1 h), "
        "renew at T1 1800 s, rebind at T2 3150 s, from server 192.0.2.1")
    assert describe_lease(US_IP, 24, None, (), float("inf"), float("inf"), float("inf"), ROUTER) == (
        "192.0.2.153/24, router none, DNS none, lease infinite, from server 192.0.2.1")
    assert describe_resolution("web.example.test", ["www.example.test."], [WEB], 600, False) == (
        "web.example.test -> CNAME www.example.test -> A 198.51.100.80 (ttl 600 s)")
    many = describe_resolution("m", [], list(range(WEB, WEB + 6)), 5, True)
    assert many.endswith("198.51.100.83, ... (6 addresses) (ttl 5 s, from the cache)")


# ---------------------------------------------------------------------- DHCP


def _dhcp(mtype: int, op: int, chaddr: bytes = MAC, **fields) -> bytes:
    options = {dhcp.OPT_MESSAGE_TYPE: bytes([mtype])}
    options.update(fields.pop("options", {}))
    return dhcp.build(dhcp.DhcpMessage(op=op, xid=0x1234ABCD, chaddr=chaddr, options=options, **fields))


def test_dhcp_exchange() -> None:
    wire, n, out, _ = _setup()
    discover = _dhcp(dhcp.DISCOVER, dhcp.OP_REQUEST)
    wire.frame(OUT, _udp_frame(OUT, 0, BCAST, 68, 67, discover, dst_mac=ethernet.BROADCAST))
    offer_options = {dhcp.OPT_SERVER_ID: dhcp.option_u32(ROUTER), dhcp.OPT_SUBNET_MASK: dhcp.option_u32(0xFFFFFF00),
                     dhcp.OPT_ROUTER: dhcp.option_u32(ROUTER), dhcp.OPT_DNS: dhcp.option_u32(ROUTER),
                     dhcp.OPT_LEASE_TIME: dhcp.option_u32(3600)}
    offer = _dhcp(dhcp.OFFER, dhcp.OP_REPLY, yiaddr=US_IP, options=offer_options)
    wire.frame(IN, _udp_frame(IN, ROUTER, BCAST, 67, 68, offer, dst_mac=ethernet.BROADCAST))
    # Someone else's offer is not ours to tell.
    other = _dhcp(dhcp.OFFER, dhcp.OP_REPLY, chaddr=bytes.fromhex("020000000bbb"), yiaddr=US_IP + 1,
                  options=offer_options)
    wire.frame(IN, _udp_frame(IN, ROUTER, BCAST, 67, 68, other, dst_mac=ethernet.BROADCAST))
    request = _dhcp(dhcp.REQUEST, dhcp.OP_REQUEST, options={dhcp.OPT_REQUESTED_IP: dhcp.option_u32(US_IP),
                                                            dhcp.OPT_SERVER_ID: dhcp.option_u32(ROUTER)})
    wire.frame(OUT, _udp_frame(OUT, 0, BCAST, 68, 67, request, dst_mac=ethernet.BROADCAST))
    renew = _dhcp(dhcp.REQUEST, dhcp.OP_REQUEST, ciaddr=US_IP)
    wire.frame(OUT, _udp_frame(OUT, US_IP, ROUTER, 68, 67, renew))
    assert _lines(out) == [
        "-> DHCPDISCOVER (broadcast), xid 0x1234abcd",
        "<- DHCPOFFER 192.0.2.153 from 192.0.2.1: mask 255.255.255.0, router 192.0.2.1, DNS 192.0.2.1, lease 3600 s",
        "-> DHCPREQUEST for 192.0.2.153, server 192.0.2.1 (broadcast)",
        "-> DHCPREQUEST for 192.0.2.153 (renewing) to 192.0.2.1",
    ]
    assert [(a.src, a.dst, a.label) for a in n.arrows] == [
        (US, BROADCAST, "DHCPDISCOVER"), ("192.0.2.1", US, "DHCPOFFER 192.0.2.153"),
        (US, BROADCAST, "DHCPREQUEST 192.0.2.153"), (US, "192.0.2.1", "DHCPREQUEST 192.0.2.153")]


# ---------------------------------------------------------------------- ARP


def test_arp_probe_announcement_request_and_reply() -> None:
    wire, n, out, _ = _setup()
    n.role("192.0.2.1", "router")
    zero = b"\x00" * 6

    def arp_out(op: int, sip: int, tip: int) -> bytes:
        return ethernet.build(ethernet.BROADCAST, MAC, ethernet.ETHERTYPE_ARP, arp.build(op, MAC, sip, zero, tip))

    wire.frame(OUT, arp_out(arp.OP_REQUEST, 0, US_IP))
    wire.frame(OUT, arp_out(arp.OP_REQUEST, US_IP, US_IP))
    wire.frame(OUT, arp_out(arp.OP_REQUEST, US_IP, ROUTER))
    reply = arp.build(arp.OP_REPLY, ROUTER_MAC, ROUTER, MAC, US_IP)
    wire.frame(IN, ethernet.build(MAC, ROUTER_MAC, ethernet.ETHERTYPE_ARP, reply))
    # A request for another host's address, seen as a broadcast: not about us.
    other = arp.build(arp.OP_REQUEST, ROUTER_MAC, ROUTER, zero, US_IP + 7)
    wire.frame(IN, ethernet.build(ethernet.BROADCAST, ROUTER_MAC, ethernet.ETHERTYPE_ARP, other))
    assert _lines(out) == [
        "-> ARP probe: is 192.0.2.153 in use? (RFC 5227, sender 0.0.0.0)",
        "-> ARP announcement: 192.0.2.153 is at 02:00:00:00:00:aa (RFC 5227)",
        "-> ARP request: who has 192.0.2.1 (router)? tell 192.0.2.153",
        "<- ARP reply: 192.0.2.1 (router) is at 5e:00:00:00:00:01",
    ]
    assert [a.label for a in n.arrows][-1] == "ARP 192.0.2.1 is-at 5e:00:00:00:00:01"


# ---------------------------------------------------------------------- DNS


def test_dns_query_and_answer_with_cname_and_truncation() -> None:
    wire, n, out, _ = _setup()
    query = dns.build_query(0xBEEF, "web.example.test")
    wire.frame(OUT, _udp_frame(OUT, US_IP, ROUTER, 53000, 53, query))
    answer = dns.build(dns.DnsMessage(0xBEEF, dns.FLAG_QR | dns.FLAG_RD | dns.FLAG_RA | dns.FLAG_TC,
                                      [dns.Question("web.example.test")], [
        dns.Record("web.example.test", dns.TYPE_CNAME, dns.CLASS_IN, 600, "www.example.test"),
        dns.Record("www.example.test", dns.TYPE_A, dns.CLASS_IN, 600, WEB)]))
    wire.frame(IN, _udp_frame(IN, ROUTER, US_IP, 53, 53000, answer))
    nx = dns.build(dns.DnsMessage(0xBEF0, dns.FLAG_QR | dns.RCODE_NXDOMAIN, [dns.Question("nope.example.test")]))
    wire.frame(IN, _udp_frame(IN, ROUTER, US_IP, 53, 53000, nx))
    assert _lines(out) == [
        "-> DNS query id 0xbeef: A web.example.test? to 192.0.2.1:53 from port 53000",
        "<- DNS answer id 0xbeef from 192.0.2.1: NOERROR, web.example.test CNAME www.example.test (ttl 600), "
        "www.example.test A 198.51.100.80 (ttl 600), truncated (TC set: the answer did not fit)",
        "<- DNS answer id 0xbef0 from 192.0.2.1: NXDOMAIN, no records",
    ]
    assert [a.label for a in n.arrows] == ["DNS A web.example.test?",
                                           "DNS CNAME www.example.test, A 198.51.100.80 TC", "DNS NXDOMAIN"]


# ---------------------------------------------------------------------- TCP


def test_tcp_conversation_tells_handshake_first_data_and_close_and_counts_the_rest() -> None:
    wire, n, out, clock = _setup()
    isn_us, isn_them = 1_000_000, 4_294_967_000  # the server's sequence numbers wrap past 2**32
    syn_opts = tcp.build_options(mss=1460, wscale=7, sack_permitted=True)
    frames = [
        (OUT, _tcp_frame(OUT, isn_us, 0, tcp.SYN, options=syn_opts)),
        (IN, _tcp_frame(IN, isn_them, isn_us + 1, tcp.SYN | tcp.ACK, options=syn_opts)),
        (OUT, _tcp_frame(OUT, isn_us + 1, isn_them + 1, tcp.ACK)),
        (OUT, _tcp_frame(OUT, isn_us + 1, isn_them + 1, tcp.PSH | tcp.ACK, b"GET / HTTP/1.1\r\nHost: w\r\n\r\n")),
        (IN, _tcp_frame(IN, isn_them + 1, isn_us + 28, tcp.ACK)),
        (IN, _tcp_frame(IN, isn_them + 1, isn_us + 28, tcp.PSH | tcp.ACK, b"HTTP/1.1 200 OK\r\n\r\n")),
    ]
    seq = isn_them + 1 + 19
    for _ in range(3):
        frames.append((IN, _tcp_frame(IN, seq & 0xFFFFFFFF, isn_us + 28, tcp.ACK, b"x" * 1000)))
        seq += 1000
    frames += [
        (OUT, _tcp_frame(OUT, isn_us + 28, seq & 0xFFFFFFFF, tcp.ACK)),
        (OUT, _tcp_frame(OUT, isn_us + 28, seq & 0xFFFFFFFF, tcp.FIN | tcp.ACK)),
        (IN, _tcp_frame(IN, seq & 0xFFFFFFFF, isn_us + 29, tcp.FIN | tcp.ACK)),
        (OUT, _tcp_frame(OUT, isn_us + 29, (seq + 1) & 0xFFFFFFFF, tcp.ACK)),
    ]
    for direction, frame in frames:
        clock.t += 0.001
        wire.frame(direction, frame)
    lines = _lines(out)
    us, web = "192.0.2.153:40000", "198.51.100.80:80"
    assert lines == [
        f"-> TCP {us} > {web} [SYN] seq {isn_us} win 65535 <mss 1460, wscale 7, sackOK>",
        f"<- TCP {web} > {us} [SYN,ACK] seq {isn_them} ack {isn_us + 1} win 65160 <mss 1460, wscale 7, sackOK>",
        f"-> TCP {us} > {web} [ACK] seq 1 ack 1 win 65535 (handshake complete)",
        f"-> TCP {us} > {web} [PSH,ACK] seq 1 ack 1 win 65535, 27 bytes: 'GET / HTTP/1.1'",
        "   ... 1 ACK in (port 40000 <-> 198.51.100.80:80)",
        f"<- TCP {web} > {us} [PSH,ACK] seq 1 ack 28 win 65160, 19 bytes: 'HTTP/1.1 200 OK'",
        "   ... 3 more data segments in (3,000 bytes), 1 ACK out (port 40000 <-> 198.51.100.80:80)",
        f"-> TCP {us} > {web} [FIN,ACK] seq 28 ack 3020 win 65535",
        f"<- TCP {web} > {us} [FIN,ACK] seq 3020 ack 29 win 65160",
        f"-> TCP {us} > {web} [ACK] seq 29 ack 3021 win 65535 (acknowledges the FIN)",
    ]
    ladder = n.ladder()
    assert "data x3, 3,000 bytes" in ladder
    assert f"SYN seq {isn_us}" in ladder and f"SYN,ACK seq {isn_them}" in ladder
    wire.flush()  # nothing left to summarise
    assert len(_lines(out)) == len(lines)


def test_tcp_summary_is_flushed_at_the_end() -> None:
    wire, _, out, _ = _setup()
    wire.frame(OUT, _tcp_frame(OUT, 10, 0, tcp.SYN))
    wire.frame(IN, _tcp_frame(IN, 500, 11, tcp.SYN | tcp.ACK))
    wire.frame(OUT, _tcp_frame(OUT, 11, 501, tcp.ACK))
    wire.frame(IN, _tcp_frame(IN, 501, 11, tcp.ACK, b"a" * 10))
    wire.frame(IN, _tcp_frame(IN, 511, 11, tcp.ACK, b"b" * 10))
    wire.frame(OUT, _tcp_frame(OUT, 11, 521, tcp.ACK))
    before = len(_lines(out))
    wire.flush()
    assert _lines(out)[before:] == ["   ... 1 more data segment in (10 bytes), 1 ACK out "
                                    "(port 40000 <-> 198.51.100.80:80)"]


def test_garbage_is_ignored_without_a_word() -> None:
    wire, n, out, _ = _setup()
    good = _tcp_frame(OUT, 10, 0, tcp.SYN)
    for frame in [b"", b"\x00" * 13, good[:20], good[:14] + b"\x45" + b"\x00" * 30,
                  ethernet.build(MAC, ROUTER_MAC, ethernet.ETHERTYPE_IPV6, b"\x60" * 40),
                  # addressed to another host: not ours to tell
                  ethernet.build(bytes.fromhex("020000000ccc"), ROUTER_MAC, ethernet.ETHERTYPE_ARP, b"\x00" * 28),
                  _udp_frame(IN, ROUTER, US_IP, 53, 53000, b"\x12"),  # a DNS answer cut short
                  _udp_frame(IN, ROUTER, BCAST, 67, 68, b"\x02" * 50)]:  # a DHCP reply cut short
        wire.frame(IN, frame)
    assert out.getvalue() == "" and n.arrows == []


# ---------------------------------------------------------------------- the link wrapper and states


class FakeLink:
    fd = 7
    name = "pst9"

    def __init__(self) -> None:
        self.inbox = [b"frame-in"]
        self.accept = True
        self.written: list[bytes] = []

    def read(self) -> bytes | None:
        return self.inbox.pop(0) if self.inbox else None

    def write(self, frame: bytes) -> bool:
        if self.accept:
            self.written.append(frame)
        return self.accept

    def close(self) -> None:
        self.closed = True


def test_observed_link_reports_both_ways_and_survives_a_broken_observer() -> None:
    inner = FakeLink()
    seen: list[tuple[str, bytes]] = []
    settled: list[int] = []
    link = ObservedLink(inner, lambda d, f: seen.append((d, f)), lambda: settled.append(1))
    assert link.fd == 7 and link.name == "pst9"
    assert link.read() == b"frame-in" and link.read() is None
    assert link.write(b"frame-out")
    inner.accept = False
    assert not link.write(b"refused")
    assert seen == [(IN, b"frame-in"), (OUT, b"frame-out")]
    assert len(settled) == 4  # before each read and each write

    def broken(_d: str, _f: bytes) -> None:
        raise RuntimeError("bug in the narration")

    inner.accept = True
    inner.inbox = [b"x"]
    link = ObservedLink(inner, broken)
    assert link.read() == b"x" and link.write(b"y")


def test_state_watcher_tells_each_change_once() -> None:
    clock = Clock()
    out = io.StringIO()
    watcher = StateWatcher(Narrator(out, clock))
    state = ["CLOSED"]
    watcher.watch("TCP state", lambda: state[0])
    watcher.check()
    state[0] = "SYN_SENT"
    watcher.check()
    watcher.check()
    state[0] = "ESTABLISHED"
    watcher.check()
    assert _lines(out) == ["   TCP state: CLOSED -> SYN_SENT", "   TCP state: SYN_SENT -> ESTABLISHED"]
