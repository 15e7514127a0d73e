"""DHCP in the campus lab: giving up when no server answers, ``pystack run --dhcp`` holding a lease and
releasing it on SIGTERM, and (slow) renewing a short lease."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from pystack_lab import lab
import web_lab
from web_lab import TAP, WWW, CampusLab, assert_one_line_error, random_mac, slow_test

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _prerequisites(daemon_ready: None) -> None:
    web_lab.require_lab()


def test_no_dhcp_server_gives_up_with_a_clear_message() -> None:
    with web_lab.campus_lab(dhcp=False, http=False) as campus:
        proc = campus.run_pystack("fetch", f"http://{WWW}/", "--tap", TAP, "--dhcp", "--dhcp-timeout", "5",
                                  timeout=60)
        line = assert_one_line_error(proc, "DHCP", "no DHCP server answered")
        assert "DHCPDISCOVER sent" in line
        assert b"DHCPDISCOVER (broadcast)" in proc.stderr  # the narration shows what was tried
        assert proc.stdout == b""


def _lease_line(campus: CampusLab, mac: str) -> list[str]:
    for line in campus.leases().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].lower() == mac.lower():
            return parts
    raise AssertionError(f"no lease for {mac}:\n{campus.leases()}")


def _ready_address(daemon: lab.Daemon) -> str:
    for line in daemon.lines:
        m = re.search(r"ready on \S+: mac \S+, address (\d+\.\d+\.\d+\.\d+)/24 \(DHCP lease", line)
        if m:
            return m.group(1)
    raise AssertionError(f"no DHCP ready line:\n{daemon.stderr()}")


def test_daemon_serves_on_its_lease_and_releases_it_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("hello from a leased address\n")
    mac = random_mac()
    with web_lab.campus_lab(http=False) as campus:
        with lab.pystack_daemon(campus.lan, "--dhcp", "--mac", mac, "--http", str(tmp_path / "www"), tap=TAP,
                                address=None, host_address=None, workdir=tmp_path) as daemon:
            address = _ready_address(daemon)
            assert _lease_line(campus, mac)[2] == address
            # From the web server's namespace, through the router: pystack answers from its leased
            # address and routes the answer back through the router the lease named.
            curl = campus.web.run(["curl", "-sS", "--noproxy", "*", "--max-time", "20",
                                   f"http://{address}/hello.txt"], timeout=40)
            assert curl.returncode == 0, curl.stderr + daemon.stderr()
            assert curl.stdout == "hello from a leased address\n"
            os.kill(daemon.pid, signal.SIGTERM)
            assert daemon.proc.wait(15) == 0, daemon.stderr()
        counters = daemon.counters
        assert counters.get("dhcp.releases_sent") == 1, counters
        assert "released" in daemon.stderr(), daemon.stderr()
        leases = campus.wait_for_lease(mac, present=False)
        assert mac.lower() not in leases.lower(), leases + campus.dnsmasq_output()


def test_daemon_without_a_server_exits_1(tmp_path: Path) -> None:
    with web_lab.campus_lab(dhcp=False, http=False) as campus:
        proc = campus.lan.run([*lab.pystack_command(), "run", "--tap", TAP, "--dhcp", "--dhcp-timeout", "3"],
                              timeout=60)
        assert proc.returncode == 1, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("pystack: error:")]
        assert len(errors) == 1 and "no DHCP server answered" in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr


@slow_test
def test_daemon_renews_a_short_lease(tmp_path: Path) -> None:
    """dnsmasq's shortest lease is 2 minutes: T1 comes after 60 s, and the renewal is a unicast
    DHCPREQUEST that dnsmasq acknowledges with a new expiry."""
    mac = random_mac()
    with web_lab.campus_lab(lease_time="2m", http=False) as campus:
        with lab.pystack_daemon(campus.lan, "--dhcp", "--mac", mac, tap=TAP, address=None, host_address=None,
                                workdir=tmp_path) as daemon:
            address = _ready_address(daemon)
            first_expiry = int(_lease_line(campus, mac)[0])
            deadline = time.monotonic() + 100
            while not any("renewed" in line for line in daemon.lines):
                assert daemon.alive(), daemon.stderr()
                assert time.monotonic() < deadline, f"no renewal within 100 s:\n{daemon.stderr()}"
                time.sleep(1)
            campus.wait_for_lease(mac)
            renewed = _lease_line(campus, mac)
            assert renewed[2] == address
            assert int(renewed[0]) > first_expiry, (first_expiry, renewed)
            assert lab.ping(campus.lan, address, count=2, interval=0.2)["received"] == 2
        assert daemon.counters.get("dhcp.leases_renewed", 0) >= 1, daemon.counters
        assert daemon.counters.get("dhcp.renewals_sent", 0) >= 1, daemon.counters
