"""Bad DHCP offers and DNS answers from the LAN are dropped and counted, and the good ones still work.

The campus lab without dnsmasq's DHCP: a fake DHCP server and a fake DNS server, both kernel sockets in
the lan namespace, answer every request first with junk -- cut short, for another transaction, for
another client, for another question -- and only then properly. pystack must lease, resolve, and report
each drop by reason in its counters line.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator

import pytest

import web_lab
from pystack.wire import dhcp, dns
from pystack.wire.ipv4 import addr_to_int
from web_lab import ROUTER_IP, TAP, WEB_IP, WWW, CampusLab, random_mac

pytestmark = pytest.mark.integration

FAKE_DNS = "192.0.2.53"
OFFERED = "192.0.2.77"
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


@pytest.fixture
def campus(daemon_ready: None) -> Iterator[CampusLab]:
    web_lab.require_lab()
    with web_lab.campus_lab(dhcp=False, http=False) as built:
        built.lan.add_address(TAP, f"{FAKE_DNS}/24")
        yield built


class FakeServers:
    """Junk first, then the right answer, for every DHCP message and DNS query that arrives."""

    def __init__(self, campus: CampusLab) -> None:
        self.dhcp = campus.lan.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.dhcp.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, TAP.encode())
        self.dhcp.bind(("0.0.0.0", dhcp.SERVER_PORT))
        self.dns = campus.lan.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.dns.bind((FAKE_DNS, dns.PORT))
        for s in (self.dhcp, self.dns):
            s.settimeout(0.2)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._serve, args=(s, fn), daemon=True)
                        for s, fn in ((self.dhcp, self._dhcp_answers), (self.dns, self._dns_answers))]
        for t in self.threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(5)
        self.dhcp.close()
        self.dns.close()

    def _serve(self, sock: socket.socket, answers) -> None:
        while not self.stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                replies = answers(data)
            except Exception:  # a query we cannot parse gets no answer
                continue
            for reply, dest in replies:
                sock.sendto(reply, dest or peer)

    @staticmethod
    def _dhcp_answers(data: bytes) -> list[tuple[bytes, tuple[str, int]]]:
        msg = dhcp.parse(data)
        kind = {dhcp.DISCOVER: dhcp.OFFER, dhcp.REQUEST: dhcp.ACK}.get(msg.message_type or 0)
        if kind is None:
            return []
        server = addr_to_int(ROUTER_IP)
        options = {dhcp.OPT_MESSAGE_TYPE: bytes([kind]), dhcp.OPT_SERVER_ID: dhcp.option_u32(server),
                   dhcp.OPT_SUBNET_MASK: dhcp.option_u32(0xFFFFFF00), dhcp.OPT_ROUTER: dhcp.option_u32(server),
                   dhcp.OPT_DNS: dhcp.option_u32(addr_to_int(FAKE_DNS)), dhcp.OPT_LEASE_TIME: dhcp.option_u32(600)}

        def reply(xid: int = msg.xid, chaddr: bytes = msg.chaddr) -> bytes:
            return dhcp.build(dhcp.DhcpMessage(op=dhcp.OP_REPLY, xid=xid, chaddr=chaddr, options=options,
                                               yiaddr=addr_to_int(OFFERED), flags=msg.flags))

        good = reply()
        bcast = ("255.255.255.255", dhcp.CLIENT_PORT)
        return [(good[:100], bcast),                                   # cut short
                (good[:236] + b"\x00\x00\x00\x00" + good[240:], bcast),  # no magic cookie
                (reply(xid=msg.xid ^ 1), bcast),                       # another transaction
                (reply(chaddr=bytes(6)), bcast),                       # another client
                (good, bcast)]

    @staticmethod
    def _dns_answers(data: bytes) -> list[tuple[bytes, None]]:
        query = dns.parse(data)
        question = query.questions[0]
        flags = dns.FLAG_QR | dns.FLAG_RD | dns.FLAG_RA
        answer = dns.Record(question.name, dns.TYPE_A, dns.CLASS_IN, 60, addr_to_int(WEB_IP))
        good = dns.build(dns.DnsMessage(query.id, flags, [question], [answer]))
        other = dns.build(dns.DnsMessage(query.id, flags, [dns.Question("other.example.test")], [answer]))
        return [(good[:7], None),                                     # shorter than a header
                (good[:-3], None),                                    # record cut short
                (dns.build(dns.DnsMessage(query.id ^ 0x5555, flags, [question], [answer])), None),  # wrong ID
                (other, None),                                        # another question
                (good, None)]


def test_junk_offers_and_answers_are_dropped_and_counted(campus: CampusLab) -> None:
    servers = FakeServers(campus)
    try:
        proc = campus.run_pystack("resolve", WWW, "--tap", TAP, "--dhcp", "--mac", random_mac(), timeout=60)
    finally:
        servers.close()
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert proc.stdout.decode().split() == [WEB_IP]
    assert "lease after" in err and f"{OFFERED}/24" in err, err
    counters = re.search(r"counters: .*dropped: (.*)", err)
    assert counters, err
    drops = dict((k, int(v)) for k, v in re.findall(r"([\w.]+) (\d+)", counters.group(1)))
    for reason in ("dhcp.truncated", "dhcp.bad_cookie", "dhcp.wrong_xid", "dhcp.wrong_chaddr",
                   "dns.truncated", "dns.wrong_question"):
        assert drops.get(reason, 0) >= 1, (reason, drops)
    # The answer with the wrong ID is refused as unknown; the cut-short record as a parse error.
    assert drops.get("dns.unknown_id", 0) >= 1, drops
    assert "Traceback" not in err
