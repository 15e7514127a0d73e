"""IPv6 addresses as the kernel side sees them: pystack started with no IPv6 address takes one from the
router advertisement the kernel side sends (dnsmasq --enable-ra) and the kernel pings it; an address the
kernel already uses is refused by pystack's duplicate address detection."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab

pytestmark = pytest.mark.integration

MAC = "02:00:00:00:00:02"
SLAAC_ADDRESS = "2001:db8::ff:fe00:2"
"""2001:db8::/64 from the advertisement, and the modified EUI-64 identifier of MAC (RFC 4862 5.5.3)."""


def _ra_sender(ns: lab.Namespace, workdir: Path) -> subprocess.Popen[bytes]:
    """dnsmasq advertising 2001:db8::/64 on the TAP (autonomous and on-link, no DHCPv6), as docs/lab.md
    says; no DNS (port 0)."""
    return ns.spawn(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                     "--port=0", "--bind-interfaces", f"--interface={lab.TAP}", "--user=root", "--group=root",
                     f"--pid-file={workdir / 'dnsmasq.pid'}", "--log-facility=-", "--enable-ra",
                     f"--dhcp-range=::,constructor:{lab.TAP},ra-only,64,10m"],
                    stdout=subprocess.DEVNULL, stderr=(workdir / "dnsmasq.log").open("wb"))


def test_slaac_takes_an_address_from_the_kernel_sides_advertisement(
        start_stack: Callable[..., lab.Daemon], require_tools: Callable[..., None], tmp_path: Path) -> None:
    require_tools("dnsmasq", "ping")
    daemon = start_stack("--echo", "--mac", MAC, "--host-address6", lab.HOST_ADDRESS6, quiet_ipv6=False)
    _ra_sender(daemon.ns, tmp_path)
    daemon.wait_for_line(rf"IPv6 address {SLAAC_ADDRESS}/64 \(SLAAC\) configured", timeout=30)
    daemon.wait_for_line(r"IPv6 default router fe80::\S+ \(router advertisement, lifetime \d+ s\)")
    result = lab.ping(daemon.ns, SLAAC_ADDRESS, count=3, size=1000, interval=0.2, wait=3, extra=["-6"])
    assert (result["transmitted"], result["received"]) == (3, 3), result["output"] + "\n" + daemon.stderr()
    counters = daemon.stop()
    assert counters.get("ndisc.ra_received", 0) >= 1 and counters.get("ipv6.dad_duplicate", 0) == 0, counters


def test_no_slaac_takes_no_address_from_the_advertisement(
        start_stack: Callable[..., lab.Daemon], require_tools: Callable[..., None], tmp_path: Path) -> None:
    require_tools("dnsmasq")
    daemon = start_stack("--mac", MAC, "--host-address6", lab.HOST_ADDRESS6, "--no-slaac", quiet_ipv6=False)
    _ra_sender(daemon.ns, tmp_path)
    daemon.wait_for_line(r"IPv6 default router fe80::", timeout=30)  # the advertisement came, and was used
    counters = daemon.stop()
    assert counters.get("ndisc.ra_received", 0) >= 1, counters
    assert "(SLAAC)" not in daemon.stderr().split("ready on", 1)[1], daemon.stderr()


def test_an_address_the_kernel_uses_is_refused_by_dad(
        ns: lab.Namespace, start_stack: Callable[..., lab.Daemon]) -> None:
    """The kernel side holds 2001:db8::1 before pystack starts with it: the kernel answers pystack's DAD
    probe, and pystack logs the duplicate and never uses the address (RFC 4862 5.4.5)."""
    with ns.ipr() as ipr:
        ipr.link("add", ifname=lab.TAP, kind="tuntap", mode="tap")
    ns.add_address6(lab.TAP, lab.HOST_ADDRESS6)
    ns.link_up(lab.TAP)
    daemon = start_stack("--address6", lab.HOST_ADDRESS6, host_address=None, quiet_ipv6=False)
    daemon.wait_for_line(r"IPv6 address 2001:db8::1/64 \(static\) is in use by another node \(DAD\): not used",
                         timeout=15)
    counters = daemon.stop()
    assert counters.get("ipv6.dad_duplicate", 0) == 1, counters
    assert "2001:db8::1/64 (static) configured" not in daemon.stderr()
