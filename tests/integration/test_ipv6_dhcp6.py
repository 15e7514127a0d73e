"""DHCPv6 (RFC 8415) against dnsmasq on the kernel side of the TAP: a router advertisement with the M flag
makes pystack lease an address (dnsmasq's lease file names it, and the kernel pings it and fetches a file
from it with curl -6; stopped, pystack gives it back); with the O flag only, pystack asks an Information-Request and learns dnsmasq's DNS
server; ``--dhcp6`` leases without any advertisement."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import curl, wait_connectable

pytestmark = pytest.mark.integration

MAC = "02:00:00:00:00:02"
RANGE = ("2001:db8::100", "2001:db8::1ff")
LEASED = r"(2001:db8::1[0-9a-f]{2})/(\d+) \(DHCPv6\) configured"
DUID = "00:03:00:01:" + MAC
"""DUID-LL (RFC 8415 11.4): type 3, hardware type 1, the MAC; dnsmasq logs the client's DUID so."""


def _dnsmasq(ns: lab.Namespace, workdir: Path, *range_and_options: str) -> subprocess.Popen[bytes]:
    """dnsmasq serving DHCPv6 on the TAP (no DNS: port 0), its leases in workdir/leases, its log in
    workdir/dnsmasq.log."""
    return ns.spawn(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                     "--port=0", "--bind-interfaces", f"--interface={lab.TAP}", "--user=root", "--group=root",
                     f"--pid-file={workdir / 'dnsmasq.pid'}", f"--dhcp-leasefile={workdir / 'leases'}",
                     "--log-facility=-", "--log-dhcp", *range_and_options],
                    stdout=subprocess.DEVNULL, stderr=(workdir / "dnsmasq.log").open("wb"))


def _persistent_tap(ns: lab.Namespace) -> None:
    """The TAP made by the kernel before pystack attaches: it outlives pystack, so that a Release sent on
    the way out still finds dnsmasq's interface when dnsmasq gets to read it (with a TAP that vanished
    with pystack's fd, dnsmasq drops it under load: "error binding DHCP socket to device")."""
    with ns.ipr() as ipr:
        ipr.link("add", ifname=lab.TAP, kind="tuntap", mode="tap")


def _leases(workdir: Path) -> str:
    path = workdir / "leases"
    return path.read_text() if path.exists() else ""


def _wait_for_lease_file(workdir: Path, address: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while address not in (text := _leases(workdir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return text


def test_the_m_flag_leases_an_address_the_kernel_reaches(
        start_stack: Callable[..., lab.Daemon], require_tools: Callable[..., None], ns: lab.Namespace,
        tmp_path: Path) -> None:
    require_tools("dnsmasq", "ping", "curl")
    _persistent_tap(ns)
    www = tmp_path / "www"
    www.mkdir()
    body = bytes(range(256)) * 4096
    (www / "file").write_bytes(body)
    daemon = start_stack("--mac", MAC, "--host-address6", lab.HOST_ADDRESS6, "--no-slaac", "--http", str(www),
                         quiet_ipv6=False)
    _dnsmasq(daemon.ns, tmp_path, "--enable-ra", f"--dhcp-range={RANGE[0]},{RANGE[1]},64,10m")
    match = daemon.wait_for_line(rf"IPv6 address {LEASED}", timeout=40)
    address, prefix_len = match.group(1), int(match.group(2))
    assert ipaddress.IPv6Address(RANGE[0]) <= ipaddress.IPv6Address(address) <= ipaddress.IPv6Address(RANGE[1])
    assert prefix_len == 128  # as Linux's DHCPv6 clients add it; on-link is the advertised prefix's word
    daemon.wait_for_line(rf"DHCPv6: leased {re.escape(address)}/128")
    leases = _wait_for_lease_file(tmp_path, address)
    assert address in leases, leases + (tmp_path / "dnsmasq.log").read_text()
    result = lab.ping(daemon.ns, address, count=3, size=1000, interval=0.2, wait=3, extra=["-6"])
    assert (result["transmitted"], result["received"]) == (3, 3), result["output"] + "\n" + daemon.stderr()
    curl(daemon.ns, "-6", "-g", "-o", str(tmp_path / "got"), f"http://[{address}]/file")
    assert hashlib.sha256((tmp_path / "got").read_bytes()).digest() == hashlib.sha256(body).digest()
    counters = daemon.stop()
    assert counters.get("dhcp6.leases_bound", 0) == 1, counters
    assert counters.get("dhcp6.solicit_sent", 0) >= 1 and counters.get("dhcp6.request_sent", 0) >= 1, counters
    assert not {k: v for k, v in counters.items() if k.startswith("drop.dhcp6.")}, counters
    # SIGTERM: the daemon exited by itself (status 0, its counters written) once dnsmasq answered the Release.
    assert daemon.returncode == 0 and counters.get("dhcp6.releases_acknowledged", 0) == 1, counters
    log = (tmp_path / "dnsmasq.log").read_text()
    assert re.search(rf"DHCPREPLY\({lab.TAP}\) {re.escape(address)} {DUID}", log), log
    # Stopped (SIGTERM), pystack gave the address back: dnsmasq logged the Release and forgot the lease.
    deadline = time.monotonic() + 5
    while address in _leases(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert address not in _leases(tmp_path), (_leases(tmp_path) + (tmp_path / "dnsmasq.log").read_text()
                                              + daemon.stderr())
    assert f"DHCPRELEASE({lab.TAP}) {DUID}" in (tmp_path / "dnsmasq.log").read_text()
    assert re.search(rf"DHCPv6: lease of {re.escape(address)} ended \(released\)", daemon.stderr())
    # RFC 8415 18.2.7: pystack waited for dnsmasq's Reply to its Release, and logged it.
    assert re.search(rf"DHCPv6: Release of {re.escape(address)} acknowledged by the server \(\w+\)",
                     daemon.stderr()), daemon.stderr()


def test_the_o_flag_asks_only_for_the_dns_servers(
        start_stack: Callable[..., lab.Daemon], require_tools: Callable[..., None], tmp_path: Path) -> None:
    require_tools("dnsmasq")
    daemon = start_stack("--mac", MAC, "--host-address6", lab.HOST_ADDRESS6, "--no-slaac", quiet_ipv6=False)
    _dnsmasq(daemon.ns, tmp_path, "--enable-ra", f"--dhcp-range=::,constructor:{lab.TAP},ra-stateless,64,10m",
             f"--dhcp-option=option6:dns-server,[{lab.HOST_IP6}]", "--dhcp-option=option6:domain-search,example.test")
    daemon.wait_for_line(rf"DHCPv6: DNS servers {re.escape(lab.HOST_IP6)} \(search example.test\)", timeout=40)
    counters = daemon.stop()
    assert counters.get("dhcp6.information_request_sent", 0) >= 1, counters
    assert counters.get("dhcp6.information_received", 0) == 1, counters
    assert counters.get("dhcp6.solicit_sent", 0) == 0, counters
    assert "(DHCPv6) configured" not in daemon.stderr()
    log = (tmp_path / "dnsmasq.log").read_text()
    assert f"DHCPINFORMATION-REQUEST({lab.TAP})" in log, log


def test_dhcp6_leases_without_a_router_advertisement(
        start_stack: Callable[..., lab.Daemon], require_tools: Callable[..., None], tmp_path: Path) -> None:
    """dnsmasq without --enable-ra sends no advertisement: ``--dhcp6`` solicits at start-up, and the lease,
    with no on-link prefix advertised, is a /128 (as Linux adds one)."""
    require_tools("dnsmasq")
    daemon = start_stack("--mac", MAC, "--host-address6", lab.HOST_ADDRESS6, "--dhcp6", quiet_ipv6=False)
    _dnsmasq(daemon.ns, tmp_path, f"--dhcp-range={RANGE[0]},{RANGE[1]},64,10m")
    match = daemon.wait_for_line(rf"IPv6 address {LEASED}", timeout=40)
    address, prefix_len = match.group(1), int(match.group(2))
    assert prefix_len == 128
    assert address in _wait_for_lease_file(tmp_path, address)
    counters = daemon.stop()
    assert counters.get("ndisc.ra_received", 0) == 0 and counters.get("dhcp6.leases_bound", 0) == 1, counters


def test_fetch_narrates_dhcp6_and_connects_from_the_leased_address(
        ns: lab.Namespace, require_tools: Callable[..., None], tmp_path: Path) -> None:
    """``pystack fetch -6 --dhcp --release``: the advertisement's M flag makes the session lease an address
    (narrated: Solicit, Advertise, Request, Reply, DAD), the kernel's web server sees the request come from
    it, and the address is given back at the end (dnsmasq's lease file drops it)."""
    require_tools("dnsmasq")
    with ns.ipr() as ipr:
        ipr.link("add", ifname=lab.TAP, kind="tuntap", mode="tap")
    ns.add_address(lab.TAP, lab.HOST_ADDRESS)
    ns.add_address6(lab.TAP, lab.HOST_ADDRESS6)
    ns.link_up(lab.TAP)
    _dnsmasq(ns, tmp_path, "--enable-ra", f"--dhcp-range={RANGE[0]},{RANGE[1]},64,10m", "--no-ping",
             "--dhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,10m")
    www = tmp_path / "www"
    www.mkdir()
    body = bytes(range(256)) * 64
    (www / "file").write_bytes(body)
    server_log = tmp_path / "http.log"
    ns.spawn([sys.executable, "-m", "http.server", "--bind", lab.HOST_IP6, "--directory", str(www), "8080"],
             stdout=subprocess.DEVNULL, stderr=server_log.open("wb"))
    wait_connectable(ns, (lab.HOST_IP6, 8080), timeout=15.0)
    out = tmp_path / "got"
    proc = ns.run([*lab.pystack_command(), "fetch", "-6", f"http://[{lab.HOST_IP6}]:8080/file", "--tap", lab.TAP,
                   "--dhcp", "--release", "--mac", MAC, "-o", str(out)], timeout=90)
    err = proc.stderr
    assert proc.returncode == 0, err + (tmp_path / "dnsmasq.log").read_text()
    assert out.read_bytes() == body
    leased = re.search(r"DHCPv6 lease: (2001:db8::1[0-9a-f]{2}),", err)
    assert leased, err
    address = leased.group(1)
    order = [r"router advertisement from fe80::\S+: .*M: addresses by DHCPv6",
             r"-> DHCPv6 Solicit to ff02::1:2 \(all DHCP servers\)",
             rf"<- DHCPv6 Advertise from fe80::\S+ \(server DUID [0-9a-f:]+\): address {address}",
             rf"-> DHCPv6 Request for {address}",
             rf"<- DHCPv6 Reply from fe80::\S+ \(server DUID [0-9a-f:]+\): address {address}, preferred \d+ s",
             rf"IPv6 address {address}/128 \(DHCPv6\) passed DAD: configured"]
    positions = [re.search(pattern, err) for pattern in order]
    assert all(positions), [p for p, m in zip(order, positions) if not m] + [err]
    starts = [m.start() for m in positions if m is not None]
    assert starts == sorted(starts), err
    assert f"{address} - - " in server_log.read_text(), server_log.read_text()
    assert re.search(rf"-> DHCPv6 Release for {address}", err), err  # --release gives it back
    assert re.search(rf"DHCPv6: Release of {address} acknowledged by the server \(\w+\)", err), err  # 18.2.7
    deadline = time.monotonic() + 5
    while address in _leases(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert address not in _leases(tmp_path), _leases(tmp_path) + (tmp_path / "dnsmasq.log").read_text()
    assert f"DHCPRELEASE({lab.TAP}) {DUID}" in (tmp_path / "dnsmasq.log").read_text()


def test_malformed_dhcp6_replies_from_the_kernel_are_dropped_and_counted(
        start_stack: Callable[..., lab.Daemon], tmp_path: Path) -> None:
    """A kernel socket on port 547 sprays pystack's port 546 with broken and stray DHCPv6 messages while
    pystack solicits (--dhcp6, no server on the link): each is dropped and counted by reason, none raises,
    and pystack keeps answering ping -6."""
    daemon = start_stack("--mac", MAC, "--host-address6", lab.HOST_ADDRESS6, "--dhcp6", "--address6",
                         "2001:db8::2/64", quiet_ipv6=False)
    daemon.wait_for_line(r"IPv6 address 2001:db8::2/64 \(static\) configured", timeout=30)
    ours = "fe80::ff:fe00:2"  # the link-local address of MAC (modified EUI-64)
    daemon.wait_for_line(rf"IPv6 address {ours}/64 \(link-local\) configured", timeout=30)
    duid = bytes.fromhex("00030001" + MAC.replace(":", ""))
    spray = [
        b"",  # shorter than the header
        b"\x07\x00\x00",
        b"\x0c\x00\x00\x00",  # Relay-forward: not for clients
        b"\x07\x00\x00\x01\x00\x01\x00\x20ab",  # an option longer than the message
        b"\x07\x00\x00\x01\x00\x03\x00\x02ab",  # an IA_NA too short
        b"\x07\x00\x00\x01" + b"\x03\xe7\x00\x00" * 65,  # too many options
        b"\x0a\x00\x00\x01",  # Reconfigure, unauthenticated
        b"\x02\x12\x34\x56\x00\x01\x00\x0a" + duid,  # an Advertise for another exchange
    ]
    sock = daemon.ns.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.bind(("::", 547))
        scope = daemon.ns.call_in(socket.if_nametoindex, lab.TAP)
        for payload in spray * 5:
            sock.sendto(payload, (ours, 546, 0, scope))
    finally:
        sock.close()
    result = lab.ping(daemon.ns, "2001:db8::2", count=3, interval=0.2, wait=3, extra=["-6"])
    assert (result["transmitted"], result["received"]) == (3, 3), result["output"]
    counters = daemon.stop()
    drops = {k: v for k, v in counters.items() if k.startswith("drop.dhcp6.")}
    assert sum(drops.values()) == len(spray) * 5, drops
    assert {"drop.dhcp6.truncated", "drop.dhcp6.relay_message", "drop.dhcp6.truncated_option",
            "drop.dhcp6.bad_ia_na", "drop.dhcp6.too_many_options", "drop.dhcp6.reconfigure_ignored"} <= set(drops), drops
    assert counters.get("drop.internal_error", 0) == 0, counters
