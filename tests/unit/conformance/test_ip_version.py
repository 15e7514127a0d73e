"""``--ip_version``: the runner drives pystack's core over IPv6 as packetdrill's run_all.py does (the stack at
fd3d:fa7b:d17d::/48 behind fd3d:fa7b:d17d:8888::, the peer at 2001:db8::1, a link MTU of 1520), IPv4 on the
wire for ipv4-mapped-ipv6, and skips a script named for the other family."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import dpkt
import pytest

from pystack.conformance import packets as P
from pystack.conformance.__main__ import main
from pystack.conformance.driver import Driver, Settings, Verdict
from pystack.conformance.parser import parse
from pystack.stack import Stack
from pystack_lab.reference import ref_checksum

SERVER = """
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
   +0 write(4, ..., 3000) = 3000
   +0 > P. 1:3001(3000) ack 1
"""
"""A passive open and a write; our MSS is 1460 only if the IPv6 link's MTU is 1520 (1520 - 40 - 20)."""

CLIENT = """
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0...0.050 connect(3, ..., ...) = 0
   +0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
 +.05 < S. 0:0(0) ack 1 win 5792 <mss 1460,sackOK,TS val 700 ecr 100,nop,wscale 7>
   +0 > . 1:1(0) ack 1 <nop,nop,TS val 150 ecr 700>
"""


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every frame the stack under test sends during the run."""
    frames: list[bytes] = []
    original = Stack.frames_to_send

    def recording(self: Stack) -> list[bytes]:
        out = original(self)
        frames.extend(bytes(f) for f in out)
        return out

    monkeypatch.setattr(Stack, "frames_to_send", recording)
    yield frames


def driver(text: str, name: str = "test.pkt", **settings: object) -> Driver:
    return Driver(parse(text, name), Settings(**settings))  # type: ignore[arg-type]


def tcp_packets(frames: list[bytes]) -> list[dpkt.ip6.IP6]:
    """The TCP-over-IPv6 packets among ``frames``, read by dpkt (not the runner's parser nor pystack's)."""
    out = []
    for frame in frames:
        ip = dpkt.ethernet.Ethernet(frame).data
        if isinstance(ip, dpkt.ip6.IP6) and ip.nxt == 6:
            out.append(ip)
    return out


@pytest.mark.parametrize("how", ["flag", "script"])
def test_a_script_runs_over_ipv6_between_packetdrills_addresses(sent: list[bytes], how: str) -> None:
    run = driver(SERVER, ip_version="ipv6") if how == "flag" else driver("--ip_version=ipv6\n" + SERVER)
    assert run.run() == Verdict("test.pkt", "PASS")
    packets = tcp_packets(sent)
    assert len(packets) >= 3  # the SYN-ACK and the write's segments
    assert {(ipaddress.ip_address(p.src), ipaddress.ip_address(p.dst)) for p in packets} == {
        (ipaddress.ip_address("fd3d:fa7b:d17d::"), ipaddress.ip_address("2001:db8::1"))}
    assert not [f for f in sent if f[12:14] == b"\x08\x00"], "IPv4 on the wire of an IPv6 run"


def test_the_ipv6_mss_comes_from_the_links_mtu() -> None:
    """Over IPv6 an MTU of 1500 would give 1440: the script's 1460 holds only with run_all.py's 1520."""
    verdict = driver(SERVER.replace("mss 1460", "mss 1440"), ip_version="ipv6").run()
    assert verdict.status == "FAIL" and "(option mss: expected <mss 1440>, got <mss 1460>)" in verdict.detail


def test_an_active_open_over_ipv6_maps_isn_and_timestamps() -> None:
    assert driver(CLIENT, ip_version="ipv6").run().status == "PASS"


def test_the_flag_overrides_the_scripts_own_ip_version(sent: list[bytes]) -> None:
    run = driver("--ip_version=ipv6\n" + SERVER, ip_version="ipv4")
    assert run.run().status == "PASS"
    assert not tcp_packets(sent) and not run.stack.ipv6_enabled


def test_ipv4_mapped_ipv6_puts_ipv4_on_the_wire(sent: list[bytes]) -> None:
    """Only the sockets of packetdrill's ipv4-mapped-ipv6 are AF_INET6; the packets are IPv4's."""
    assert driver(SERVER, ip_version="ipv4-mapped-ipv6").run().status == "PASS"
    assert any(f[12:14] == b"\x08\x00" for f in sent) and not tcp_packets(sent)


@pytest.mark.parametrize("name,ip_version,skipped", [
    ("basic-v6.pkt", "ipv4", "written for IPv6 only"), ("basic-v6.pkt", "ipv4-mapped-ipv6", "written for IPv6 only"),
    ("basic-v4.pkt", "ipv6", "written for IPv4 only"), ("basic-v6.pkt", "ipv6", None), ("basic-v4.pkt", "ipv4", None),
])
def test_a_script_named_for_one_family_is_skipped_under_the_other(name: str, ip_version: str,
                                                                   skipped: str | None) -> None:
    verdict = driver(SERVER, name, ip_version=ip_version).run()
    if skipped is None:
        assert verdict.status == "PASS", verdict
    else:
        assert verdict.status == "SKIP" and verdict.detail.startswith(skipped), verdict


def test_an_ip_version_packetdrill_does_not_know_is_a_skip() -> None:
    verdict = driver("--ip_version=ipv5\n" + SERVER).run()
    assert verdict.status == "SKIP" and verdict.detail.startswith("--ip_version=ipv5")


def test_the_gateway_answers_the_stacks_neighbour_probes() -> None:
    """A minute of traffic the stack only receives, so no ACK of new data confirms the gateway (RFC 4861
    7.3.1): its entry goes STALE, DELAY, PROBE (7.3.3); the runner answers each probe as the gateway would,
    so the stack keeps sending."""
    text = SERVER + "  +.1 < . 1:1(0) ack 3001 win 257\n" + "".join(f"""
  +20 < P. {1 + 1000 * i}:{1001 + 1000 * i}(1000) ack 3001 win 257
   +0 > . 3001:3001(0) ack {1001 + 1000 * i}
""" for i in range(4))
    run = driver(text, ip_version="ipv6")
    assert run.run().status == "PASS"
    assert run.stack.counters["ndisc.ns_sent"] >= 1
    assert run.stack.counters["ndisc.na_received"] == run.stack.counters["ndisc.ns_sent"]


def test_the_runners_ipv6_frames_read_right_with_dpkt() -> None:
    seg = P.Segment(P.IPV6.remote, P.IPV6.local, 48000, 8080, 1000, 0, P.SYN, 65535,
                    [P.TcpOption("mss", (1460,)), P.TcpOption("nop"), P.TcpOption("wscale", (7,))], b"")
    eth = dpkt.ethernet.Ethernet(P.build_frame(seg, ipv6=True))
    ip = eth.data
    assert isinstance(ip, dpkt.ip6.IP6) and ip.hlim == 64 and ip.plen == len(ip.data)
    assert (ip.src, ip.dst) == (P.IPV6.remote.to_bytes(16, "big"), P.IPV6.local.to_bytes(16, "big"))
    pseudo = ip.src + ip.dst + len(bytes(ip.data)).to_bytes(4, "big") + b"\0\0\0\x06"
    assert ref_checksum(pseudo + bytes(ip.data)) == 0
    assert (ip.data.sport, ip.data.dport, ip.data.seq, ip.data.flags) == (48000, 8080, 1000, dpkt.tcp.TH_SYN)
    assert P.parse_frame(bytes(eth)) == seg  # the runner reads back what it wrote


def test_the_neighbour_discovery_the_runner_sends_reads_right_with_dpkt() -> None:
    for frame, mtype in ((P.neighbour_solicitation(P.IPV6.gateway, P.IPV6.local), 135),
                         (P.neighbour_advertisement(P.IPV6.gateway, P.IPV6.local, P.LOCAL_MAC), 136)):
        ip = dpkt.ethernet.Ethernet(frame).data
        assert isinstance(ip, dpkt.ip6.IP6) and ip.hlim == 255 and ip.nxt == 58
        body = bytes(ip.data)
        assert body[0] == mtype and body[24:32] == bytes((1 if mtype == 135 else 2, 1)) + P.GATEWAY_MAC
        pseudo = ip.src + ip.dst + len(body).to_bytes(4, "big") + b"\0\0\0\x3a"
        assert ref_checksum(pseudo + body) == 0


def test_the_command_line_takes_ip_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "server.pkt").write_text(SERVER)
    assert main(["--ip_version", "ipv6", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["PASS server.pkt", "1 passed, 0 failed, 0 skipped"]
    with pytest.raises(SystemExit) as exit_:
        main(["--ip_version", "ipv7", str(tmp_path)])
    assert exit_.value.code == 2
