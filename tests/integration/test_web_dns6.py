"""DNS over IPv6 from the servers routers advertise (RDNSS, RFC 8106) in the dual-stack campus lab.

dnsmasq advertises itself as the RDNSS, at its link-local address on the TAP (its default), and the
kernel drops every IPv4 packet to port 53 (nftables, counted): the names resolve only if pystack asks
the advertised server over IPv6. The kernel judges: dnsmasq's query log names the IPv6 address each
question came from, nftables counts what reached port 53 over each family, the file's SHA-256 matches.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pystack_lab import lab
import web_lab
from web_lab import MANY, MANY_COUNT, TAP, WEB6_IP, WWW, CampusLab, random_mac

pytestmark = pytest.mark.integration

FILES = {"file": 200_000}
TABLE = "pstdns"
RULES = f"""
table ip {TABLE} {{
    chain in {{
        type filter hook input priority 0; policy accept;
        iifname "{TAP}" udp dport 53 counter drop
        iifname "{TAP}" tcp dport 53 counter drop
    }}
}}
table ip6 {TABLE} {{
    chain in {{
        type filter hook input priority 0; policy accept;
        iifname "{TAP}" udp dport 53 counter
        iifname "{TAP}" tcp dport 53 tcp flags syn counter
    }}
}}
"""
"""IPv4 DNS dropped; IPv6 DNS datagrams and TCP connection attempts counted."""


@pytest.fixture(scope="module")
def campus(daemon_ready: None) -> Iterator[CampusLab]:
    web_lab.require_lab()
    with web_lab.campus_lab(FILES, ipv6=True) as built:
        proc = built.lan.run(["nft", "-f", "-"], input=RULES, timeout=15)
        if proc.returncode != 0:
            raise lab.LabError(f"nft refused the rules: {proc.stderr.strip()}")
        yield built


def counters(campus: CampusLab) -> dict[tuple[str, str], int]:
    """Packets each rule counted: (family, udp or tcp) -> packets."""
    found: dict[tuple[str, str], int] = {}
    for family in ("ip", "ip6"):
        proc = campus.lan.run(["nft", "-j", "list", "table", family, TABLE], timeout=15, check=True)
        for item in json.loads(proc.stdout)["nftables"]:
            rule = item.get("rule")
            if not rule:
                continue
            proto = "tcp" if "tcp" in json.dumps(rule["expr"]) else "udp"
            for expr in rule["expr"]:
                if "counter" in expr:
                    found[(family, proto)] = expr["counter"]["packets"]
    return found


def link_local(mac: str) -> str:
    """fe80::/64 and the modified EUI-64 identifier of ``mac`` (RFC 4291 appendix A), worked out here."""
    b = bytes.fromhex(mac.replace(":", ""))
    iid = bytes([b[0] ^ 0x02]) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(ipaddress.IPv6Address(bytes.fromhex("fe80000000000000") + iid))


def queries_from(campus: CampusLab, since: int, source: str) -> list[str]:
    """dnsmasq's log lines ``query[TYPE] NAME from SOURCE`` after its first ``since`` lines."""
    lines = campus.dnsmasq_output().splitlines()[since:]
    return [m.group(1) for line in lines if (m := re.search(rf"(query\[\w+\] \S+) from {re.escape(source)}$", line))]


def test_fetch_minus_6_asks_the_advertised_link_local_server_over_ipv6(campus: CampusLab, tmp_path: Path) -> None:
    mac = random_mac()
    out = tmp_path / "file"
    log_start, before = len(campus.dnsmasq_output().splitlines()), counters(campus)
    proc = campus.run_pystack("fetch", "-6", f"http://{WWW}/file", "--tap", TAP, "--mac", mac, "-o", str(out))
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err + campus.dnsmasq_output()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == campus.files["file"]
    # The advertisement named dnsmasq's link-local address; pystack asked it from its own link-local one.
    m = re.search(r"<- router advertisement from (fe80::[0-9a-f:]+): .*DNS (fe80::[0-9a-f:]+) \(RDNSS", err)
    assert m and m.group(1) == m.group(2), err
    assert f"asking {m.group(2)} for AAAA {WWW} over IPv6" in err, err
    assert queries_from(campus, log_start, link_local(mac)) == [f"query[AAAA] {WWW}"], campus.dnsmasq_output()
    after = counters(campus)
    assert after[("ip", "udp")] == before[("ip", "udp")], after  # -6: nothing asked over IPv4
    assert after[("ip6", "udp")] >= before[("ip6", "udp")] + 1, after
    assert re.search(rf"connected to \[{WEB6_IP}\]:80", err), err


def test_a_silent_ipv4_server_is_followed_by_the_advertised_ipv6_one(campus: CampusLab, tmp_path: Path) -> None:
    """Dual stack: the lease's server first (resolv.conf's order), dropped by the kernel; after its
    timeout the RDNSS server answers both questions over IPv6."""
    mac = random_mac()
    out = tmp_path / "file"
    log_start, before = len(campus.dnsmasq_output().splitlines()), counters(campus)
    proc = campus.run_pystack("fetch", f"http://{WWW}/file", "--tap", TAP, "--mac", mac, "-o", str(out))
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err + campus.dnsmasq_output()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == campus.files["file"]
    assert re.search(rf"asking 192\.0\.2\.1 for AAAA and A {WWW} over IPv4; fe80::[0-9a-f:]+ in turn", err), err
    assert re.search(r"resolved AAAA in .* from fe80::[0-9a-f:]+ over IPv6", err), err
    assert sorted(queries_from(campus, log_start, link_local(mac))) == [f"query[AAAA] {WWW}", f"query[A] {WWW}"]
    after = counters(campus)
    assert after[("ip", "udp")] >= before[("ip", "udp")] + 2, after  # AAAA and A to 192.0.2.1, dropped
    assert after[("ip6", "udp")] >= before[("ip6", "udp")] + 2, after


def test_a_truncated_answer_is_asked_again_over_tcp_to_the_ipv6_server(campus: CampusLab) -> None:
    """many.example.test's A records overflow 512 bytes: dnsmasq sets TC over UDP6, and pystack asks
    again over TCP to the same IPv6 server (RFC 7766 section 5)."""
    mac = random_mac()
    log_start, before = len(campus.dnsmasq_output().splitlines()), counters(campus)
    proc = campus.run_pystack("resolve", MANY, "--tap", TAP, "--mac", mac,
                              "--address", "192.0.2.51/24", "--gateway", "192.0.2.1")
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err + campus.dnsmasq_output()
    assert len(proc.stdout.decode().split()) == MANY_COUNT, proc.stdout
    assert re.search(r"asking fe80::[0-9a-f:]+ again over TCP port 53 over IPv6", err), err
    assert f"query[A] {MANY}" in queries_from(campus, log_start, link_local(mac)), campus.dnsmasq_output()
    after = counters(campus)
    assert after[("ip6", "tcp")] >= before[("ip6", "tcp")] + 1, after  # the kernel saw the SYN over IPv6


def test_exec_programs_names_come_from_the_advertised_ipv6_server(campus: CampusLab) -> None:
    """pystack exec: the program's getaddrinfo asks the session's current servers, the RDNSS one
    included (the lease's is silent), over IPv6."""
    mac = random_mac()
    log_start = len(campus.dnsmasq_output().splitlines())
    code = ("import json, socket\n"
            "print(json.dumps(sorted({a[4][0] for a in socket.getaddrinfo('www.example.test', 80, "
            "type=socket.SOCK_STREAM)})))")
    proc = campus.run_pystack("exec", "--tap", TAP, "--mac", mac, "--hosts", "/dev/null", "-q", "--", "-c", code,
                              timeout=120)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err + campus.dnsmasq_output()
    assert json.loads(proc.stdout.decode().strip().splitlines()[-1]) == sorted([WEB6_IP, web_lab.WEB_IP])
    assert sorted(queries_from(campus, log_start, link_local(mac))) == [f"query[AAAA] {WWW}", f"query[A] {WWW}"]
