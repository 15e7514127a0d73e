"""The web flow over IPv6 (issue 15) in the dual-stack campus lab: dnsmasq advertises 2001:db8::/64 and
answers AAAA, the router forwards IPv6 to the kernel's http.server at 2001:db8:1::80.

pystack must take a SLAAC address from the advertisement, resolve AAAA and A together, race the families
as RFC 8305 says (IPv6 first), and tell each step; with IPv6 blackholed at the router it must fall back
to IPv4 after the connection attempt delay; -4 and -6 force one family. The kernel judges: the file's
SHA-256, the router's neighbour entry for pystack's SLAAC address, the kernel's echo replies.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pystack_lab import lab
import web_lab
from web_lab import ROUTER_IP, TAP, WEB6_IP, WEB_IP, WWW, CampusLab, assert_one_line_error, random_mac

pytestmark = pytest.mark.integration

FILES = {"file": 300_000}
STATIC = ("--address", "192.0.2.50/24", "--gateway", ROUTER_IP, "--dns", ROUTER_IP)
"""IPv4 set statically (no DHCP probe wait) where the test is not about the address."""


@pytest.fixture(scope="module")
def campus(daemon_ready: None) -> Iterator[CampusLab]:
    web_lab.require_lab()
    with web_lab.campus_lab(FILES, ipv6=True) as built:
        yield built


def slaac_address(mac: str) -> str:
    """2001:db8::/64 and the modified EUI-64 identifier of ``mac`` (RFC 4291 appendix A), worked out here
    independently of pystack."""
    b = bytes.fromhex(mac.replace(":", ""))
    iid = bytes([b[0] ^ 0x02]) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(ipaddress.IPv6Address(bytes.fromhex("20010db800000000") + iid))


def _served(campus: CampusLab, client: str, since: int) -> bool:
    """Whether the kernel's http.server logged a GET of /file from ``client`` after its first ``since``
    lines (an IPv4 client of its dual-stack socket shows as ::ffff:a.b.c.d)."""
    return any(line.startswith(f"{client} ") and '"GET /file HTTP/1.1" 200' in line
               for line in campus.web_requests()[since:])


def _position(text: str, pattern: str) -> int:
    m = re.search(pattern, text)
    assert m, f"narration lacks {pattern!r}:\n{text}"
    return m.start()


def _stamp(text: str, pattern: str) -> float:
    """The narration's time stamp (seconds since the start) of the first line matching ``pattern``."""
    m = re.search(r"^\[\s*([\d.]+)\] .*" + pattern, text, re.M)
    assert m, f"narration lacks {pattern!r}:\n{text}"
    return float(m.group(1))


def test_fetch_over_ipv6_from_nothing_narrates_ra_slaac_ns_aaaa_and_the_handshake(
        campus: CampusLab, tmp_path: Path) -> None:
    mac = random_mac()
    mine = slaac_address(mac)
    out = tmp_path / "file"
    served = len(campus.web_requests())
    proc = campus.run_pystack("fetch", f"http://{WWW}/file", "--tap", TAP, "--dhcp", "--mac", mac, "-o", str(out))
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err + campus.dnsmasq_output()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == campus.files["file"]
    assert "Traceback" not in err
    # The kernel's web server saw the request come from pystack's SLAAC address.
    assert _served(campus, mine, served), campus.web_requests()

    router_ll = r"fe80::[0-9a-f:]+"
    steps = [
        rf"<- router advertisement from {router_ll}: prefix 2001:db8::/64 \(on-link, autonomous: SLAAC\), "
        r"router lifetime [1-9]\d* s",
        rf"IPv6 SLAAC address: .*: {re.escape(mine)}/64, tentative until DAD",
        rf"-> DAD probe: is {re.escape(mine)} in use\?",
        rf"IPv6 address {re.escape(mine)}/64 \(SLAAC\) passed DAD: configured",
        rf"-> TCP \[{re.escape(mine)}\]:\d+ > \[{WEB6_IP}\]:80 \[SYN\]",
        rf"<- neighbour solicitation from {router_ll} \(router\): who has {re.escape(mine)}\?",
        rf"-> neighbour advertisement to {router_ll}: {re.escape(mine)} is at {mac} \(solicited",
        rf"<- TCP \[{WEB6_IP}\]:80 > \[{re.escape(mine)}\]:\d+ \[SYN,ACK\]",
        r"\[ACK\] seq 1 ack 1 .*\(handshake complete\)",
        rf"connected to \[{WEB6_IP}\]:80 in .* \(from \[{re.escape(mine)}\]:\d+\)",
        r"request: GET /file HTTP/1\.1",
        r"response: HTTP/1\.1 200 OK .*Content-Length 300000",
        r"TCP state: .* -> TIME_WAIT",
        r"ladder",
    ]
    positions = [_position(err, step) for step in steps]
    assert positions == sorted(positions), err
    # The AAAA question and its answer, asked together with A (RFC 8305 section 3).
    assert re.search(rf"-> DNS query id 0x[0-9a-f]{{4}}: AAAA {WWW}\? to {ROUTER_IP}:53", err), err
    assert re.search(rf"<- DNS answer id 0x[0-9a-f]{{4}} from {ROUTER_IP}: NOERROR, {WWW} AAAA {WEB6_IP}", err), err
    assert f"resolving {WWW} (AAAA and A, asked together" in err
    assert re.search(r"lease after .*: 192\.0\.2\.\d+/24", err), err  # IPv4 came up beside it (DHCP)
    ladder = err[err.index("\nladder"):]
    assert re.search(r"\|<-+RA 2001:db8::/64-+\|", ladder), ladder
    assert re.search(rf"\|-+DAD NS {re.escape(mine)}\?-+>\|", ladder), ladder
    assert re.search(rf"\|<-+NS who-has {re.escape(mine)}-+\|", ladder), ladder
    assert re.search(r"\|-+SYN seq \d+-+>\|", ladder) and WEB6_IP in ladder, ladder


def test_with_ipv6_blackholed_at_the_router_it_falls_back_to_ipv4(campus: CampusLab, tmp_path: Path) -> None:
    """The router drops the IPv6 SYN without a word: after the connection attempt delay (250 ms) the IPv4
    attempt starts beside it, wins, and the IPv6 one is cancelled (RFC 8305 section 5)."""
    out = tmp_path / "file"
    served = len(campus.web_requests())
    campus.blackhole_ipv6()
    try:
        proc = campus.run_pystack("fetch", f"http://{WWW}/file", "--tap", TAP, "--mac", random_mac(), *STATIC,
                                  "-o", str(out))
    finally:
        campus.blackhole_ipv6(False)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert hashlib.sha256(out.read_bytes()).hexdigest() == campus.files["file"]
    steps = [
        rf"Happy Eyeballs attempt 1: connecting to \[{WEB6_IP}\]:80 over pystack's TCP \(IPv6\) "
        rf"\(the order: \[{WEB6_IP}\]:80, {WEB_IP}:80",
        rf"-> TCP \[2001:db8::[0-9a-f:]+\]:\d+ > \[{WEB6_IP}\]:80 \[SYN\]",
        rf"Happy Eyeballs attempt 2: no answer from \[{WEB6_IP}\]:80 within 250 ms: connecting to {WEB_IP}:80 "
        r"over IPv4 as well",
        rf"-> TCP 192\.0\.2\.50:\d+ > {WEB_IP}:80 \[SYN\]",
        rf"<- TCP {WEB_IP}:80 > 192\.0\.2\.50:\d+ \[SYN,ACK\]",
        rf"cancelling the attempt to \[{WEB6_IP}\]:80 \(IPv6\): the race is won",
        rf"connected to {WEB_IP}:80 in .* \(IPv4, attempt 2 of 2\)",
        r"response: HTTP/1\.1 200 OK",
    ]
    positions = [_position(err, step) for step in steps]
    assert positions == sorted(positions), err
    assert not re.search(rf"<- TCP \[{WEB6_IP}\]", err), err  # nothing came back over IPv6
    assert _served(campus, "::ffff:192.0.2.50", served), campus.web_requests()
    # The IPv4 attempt waited for the delay, and no longer than a generous bound (TCP's own SYN
    # retransmission would come only after a second, its give-up after a minute or more).
    waited = _stamp(err, "Happy Eyeballs attempt 2") - _stamp(err, "Happy Eyeballs attempt 1")
    assert 0.2 <= waited < 5.0, err


def test_minus_4_forces_ipv4_without_starting_ipv6(campus: CampusLab) -> None:
    proc = campus.run_pystack("fetch", "-4", f"http://{WWW}/file", "--tap", TAP, "--mac", random_mac(), *STATIC)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert hashlib.sha256(proc.stdout).hexdigest() == campus.files["file"]
    assert f"resolving {WWW} (A) at" in err and f"AAAA {WWW}?" not in err, err
    assert re.search(rf"-> TCP 192\.0\.2\.50:\d+ > {WEB_IP}:80 \[SYN\]", err), err
    assert "IPv6 up" not in err and "router solicitation" not in err and "DAD probe" not in err, err
    assert "Happy Eyeballs" not in err


def test_minus_6_forces_ipv6(campus: CampusLab) -> None:
    proc = campus.run_pystack("fetch", "-6", f"http://{WWW}/file", "--tap", TAP, "--mac", random_mac(), *STATIC)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert hashlib.sha256(proc.stdout).hexdigest() == campus.files["file"]
    assert f"resolving {WWW} (AAAA) at" in err and f": A {WWW}?" not in err, err
    # --dns named only an IPv4 server: said in one line, and asked over IPv4.
    assert "no IPv6 DNS server" in err and f"asking {ROUTER_IP} for AAAA {WWW} over IPv4" in err, err
    assert re.search(rf"-> TCP \[2001:db8::[0-9a-f:]+\]:\d+ > \[{WEB6_IP}\]:80 \[SYN\]", err), err
    assert not re.search(rf"-> TCP 192\.0\.2\.50:\d+ > {WEB_IP}:80", err), err


def test_minus_6_with_ipv6_blackholed_gives_up_without_trying_ipv4(campus: CampusLab) -> None:
    campus.blackhole_ipv6()
    try:
        proc = campus.run_pystack("fetch", "-6", f"http://{WWW}/file", "--tap", TAP, "--mac", random_mac(),
                                  *STATIC, "--timeout", "3")
    finally:
        campus.blackhole_ipv6(False)
    assert_one_line_error(proc, f"cannot connect to [{WEB6_IP}]:80", "timed out")
    assert f"{WEB_IP}:80" not in proc.stderr.decode(errors="replace")


def test_an_ipv6_literal_url_is_fetched_with_the_literal_in_host(campus: CampusLab) -> None:
    proc = campus.run_pystack("fetch", f"http://[{WEB6_IP}]/file", "--tap", TAP, "--mac", random_mac(), *STATIC)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert hashlib.sha256(proc.stdout).hexdigest() == campus.files["file"]
    assert f"(Host: [{WEB6_IP}])" in err and "DNS query" not in err, err


def test_resolve_shows_aaaa_then_a(campus: CampusLab) -> None:
    both = campus.run_pystack("resolve", WWW, "--tap", TAP, "--mac", random_mac(), *STATIC)
    assert both.returncode == 0, both.stderr.decode(errors="replace")
    assert both.stdout.decode().split() == [WEB6_IP, WEB_IP]
    err = both.stderr.decode(errors="replace")
    assert "resolved AAAA in" in err and f"{WWW} -> AAAA {WEB6_IP}" in err, err
    only6 = campus.run_pystack("resolve", "-6", WWW, "--tap", TAP, "--mac", random_mac(), *STATIC)
    assert only6.returncode == 0 and only6.stdout.decode().split() == [WEB6_IP], only6.stderr


def test_ping6_through_the_router(campus: CampusLab) -> None:
    proc = campus.run_pystack("ping", "-6", WWW, "-c", "3", "-i", "0.2", "--tap", TAP, "--mac", random_mac(),
                              *STATIC)
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode(errors="replace") + out
    assert f"PING {WWW} ({WEB6_IP}) 56 data bytes" in out
    result = lab.parse_ping(out)
    assert (result["transmitted"], result["received"]) == (3, 3), out
    assert len(re.findall(rf"^64 bytes from {WEB6_IP}: icmp_seq=\d", out, re.M)) == 3, out


def test_aaaa_on_a_network_without_ipv6_routers_costs_about_a_second(daemon_ready: None) -> None:
    """dnsmasq answers AAAA but advertises no prefix: pystack waits for an advertisement only a little past
    its first router solicitation (RA_WAIT), then fetches over IPv4, without trying IPv6 it cannot reach."""
    web_lab.require_lab()
    with web_lab.campus_lab(FILES, ipv6=True, ra=False) as campus:
        proc = campus.run_pystack("fetch", f"http://{WWW}/file", "--tap", TAP, "--mac", random_mac(), *STATIC)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert hashlib.sha256(proc.stdout).hexdigest() == campus.files["file"]
    steps = [
        rf"resolved AAAA in .*{WEB6_IP}",
        r"waiting for IPv6 to finish configuring",
        r"-> router solicitation from fe80::",
        r"IPv6 not ready after .* \(no router advertised a prefix we could use\)",
        rf"-> TCP 192\.0\.2\.50:\d+ > {WEB_IP}:80 \[SYN\]",
        r"response: HTTP/1\.1 200 OK",
    ]
    positions = [_position(err, step) for step in steps]
    assert positions == sorted(positions), err
    assert not re.search(rf"-> TCP \[.*\]:\d+ > \[{WEB6_IP}\]", err), err
    # A generous bound: the whole solicitation schedule (three, 4 s apart) would take 8 s and more.
    waited = _stamp(err, "IPv6 not ready after") - _stamp(err, "-> router solicitation from")
    assert waited < 3.0, err
