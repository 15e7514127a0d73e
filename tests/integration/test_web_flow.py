"""The web flow from nothing (issue 4), in the campus and web lab: pystack leases an address from dnsmasq,
ARPs for the router, resolves the name, opens TCP through the router to the kernel's http.server, GETs
and closes -- telling each step on stderr and drawing the ladder.

One lab serves the whole module (it is built once, in namespaces with a random suffix, and removed at the
end); each test runs its own pystack command with its own random MAC.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pystack_lab import lab
import web_lab
from web_lab import ALIAS, MANY, ROUTER_IP, TAP, WEB_IP, WWW, CampusLab, assert_one_line_error, random_mac

pytestmark = pytest.mark.integration

FILES = {"file": 300_000, "small.txt": 5_000}
STATIC = ("--address", "192.0.2.50/24", "--gateway", ROUTER_IP, "--dns", ROUTER_IP)
"""A static set-up on the same LAN, for the tests that are not about DHCP (no probe wait)."""


@pytest.fixture(scope="module")
def campus(daemon_ready: None) -> Iterator[CampusLab]:
    web_lab.require_lab()
    with web_lab.campus_lab(FILES) as built:
        yield built


def _leased_address(leases: str, mac: str) -> str:
    for line in leases.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].lower() == mac.lower():
            return parts[2]
    raise AssertionError(f"no lease for {mac} in:\n{leases}")


def _position(text: str, pattern: str) -> int:
    m = re.search(pattern, text)
    assert m, f"narration lacks {pattern!r}:\n{text}"
    return m.start()


def test_fetch_with_dhcp_returns_the_file_and_narrates_each_step(campus: CampusLab, tmp_path: Path) -> None:
    mac = random_mac()
    out = tmp_path / "file"
    proc = campus.run_pystack("fetch", f"http://{WWW}/file", "--tap", TAP, "--dhcp", "--mac", mac, "-o", str(out))
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err + campus.dnsmasq_output()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == campus.files["file"]
    assert proc.stdout == b""
    assert "Traceback" not in err

    # dnsmasq handed the lease to pystack's MAC, and pystack says which address it got.
    address = _leased_address(campus.wait_for_lease(mac), mac)
    router_mac = ":".join(f"{b:02x}" for b in campus.lan.mac(TAP))
    # Each step, in the order it happened: the lease, the router's MAC, the answer, the handshake,
    # the request and status line, the close down to TIME_WAIT, and the ladder.
    steps = [
        rf"lease after .*: {re.escape(address)}/24, router {ROUTER_IP}, DNS {ROUTER_IP}, lease 3600 s",
        rf"ARP reply: {ROUTER_IP} .*is at {router_mac}",
        rf"DNS answer id 0x[0-9a-f]{{4}} from {ROUTER_IP}: NOERROR, {WWW} A {WEB_IP}",
        rf"-> TCP {re.escape(address)}:\d+ > {WEB_IP}:80 \[SYN\] seq \d+",
        rf"<- TCP {WEB_IP}:80 > {re.escape(address)}:\d+ \[SYN,ACK\] seq \d+ ack \d+",
        r"\[ACK\] seq 1 ack 1 .*handshake complete",
        r"request: GET /file HTTP/1\.1",
        r"response: HTTP/1\.1 200 OK .*Content-Length 300000",
        r"-> TCP .*\[FIN,ACK\]",
        r"TCP state: .* -> TIME_WAIT",
        r"ladder",
    ]
    positions = [_position(err, step) for step in steps]
    assert positions == sorted(positions), err
    ladder = err[err.index("ladder"):]
    assert re.search(r"\|-+SYN seq \d+-+>\|", ladder), ladder
    assert re.search(r"\|<-+data x\d+, [\d,]+ bytes-+\|", ladder), ladder
    assert "DHCPDISCOVER" in ladder and "DHCPACK" in ladder, ladder


def test_cname_is_followed_and_its_chain_told(campus: CampusLab) -> None:
    proc = campus.run_pystack("fetch", f"http://{ALIAS}/small.txt", "--tap", TAP, "--mac", random_mac())
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert hashlib.sha256(proc.stdout).hexdigest() == campus.files["small.txt"]
    assert f"{ALIAS} CNAME {WWW}" in err  # the answer as it came off the wire
    assert f"{ALIAS} -> CNAME {WWW} -> A {WEB_IP}" in err, err  # the chain, resolved
    assert f"Host: {ALIAS}" in err


def test_quiet_prints_only_the_body(campus: CampusLab) -> None:
    proc = campus.run_pystack("fetch", f"http://{WWW}/small.txt", "--tap", TAP, *STATIC, "--quiet")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stderr == b""
    assert hashlib.sha256(proc.stdout).hexdigest() == campus.files["small.txt"]


def test_unknown_name_is_a_one_line_error_with_status_1(campus: CampusLab) -> None:
    proc = campus.run_pystack("fetch", "http://nosuchhost.example.test/file", "--tap", TAP, *STATIC)
    assert_one_line_error(proc, "nosuchhost.example.test", "NXDOMAIN")
    assert proc.stdout == b""


def test_missing_file_is_status_1_with_the_status_line(campus: CampusLab) -> None:
    proc = campus.run_pystack("fetch", f"http://{WWW}/no-such-file", "--tap", TAP, *STATIC, "--quiet")
    assert_one_line_error(proc, "404")


def test_resolve_falls_back_to_tcp_when_the_answer_is_truncated(campus: CampusLab) -> None:
    proc = campus.run_pystack("resolve", MANY, "--tap", TAP, *STATIC)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert sorted(proc.stdout.decode().split()) == sorted(web_lab.many_addresses())
    assert "truncated (TC set" in err, err
    assert re.search(rf"-> TCP 192\.0\.2\.50:\d+ > {ROUTER_IP}:53 \[SYN\]", err), err


def test_resolve_with_dhcp_and_release(campus: CampusLab) -> None:
    mac = random_mac()
    proc = campus.run_pystack("resolve", ALIAS, "--tap", TAP, "--dhcp", "--release", "--mac", mac)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert proc.stdout.decode().split() == [WEB_IP]
    assert f"{ALIAS} -> CNAME {WWW} -> A {WEB_IP}" in err
    assert re.search(r"-> DHCPRELEASE of 192\.0\.2\.\d+ to 192\.0\.2\.1", err), err
    # dnsmasq took the address back: it logged the release, and its lease file no longer names the MAC.
    leases = campus.wait_for_lease(mac, present=False)
    assert mac not in leases.lower(), leases + campus.dnsmasq_output()
    assert re.search(rf"DHCPRELEASE\(pst0\) [\d.]+ {mac}", campus.dnsmasq_output()), campus.dnsmasq_output()


def test_ping_through_the_router(campus: CampusLab) -> None:
    proc = campus.run_pystack("ping", WWW, "-c", "3", "-i", "0.2", "--tap", TAP, *STATIC)
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode(errors="replace") + out
    result = lab.parse_ping(out)
    assert result["transmitted"] == 3 and result["received"] == 3, out
    assert len(result["rtts"]) == 3


def test_ping_with_no_answer_is_status_1(campus: CampusLab) -> None:
    """198.51.100.99 is on the web side's network, but nobody has it: the router cannot deliver."""
    proc = campus.run_pystack("ping", "198.51.100.99", "-c", "2", "-i", "0.2", "-W", "1", "--tap", TAP, *STATIC)
    assert_one_line_error(proc, "no echo reply from 198.51.100.99")
