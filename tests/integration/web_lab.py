"""The campus and web lab (docs/lab.md, shape 2) for the web-flow tests (test_web_*.py).

``…-lan`` holds the persistent TAP ``pst0`` (192.0.2.1/24, the router), dnsmasq bound to it for DHCP and
DNS, and IPv4 forwarding; a veth pair joins it to ``…-web`` (198.51.100.1 <-> 198.51.100.80/24), where the
kernel's ``python3 -m http.server`` serves a directory of files. pystack is run inside ``…-lan`` with no
address of its own: it leases one, resolves names at dnsmasq and fetches through the router.

``ipv6=True`` makes it dual-stack with documentation addresses (RFC 3849): 2001:db8::1/64 on the TAP,
2001:db8:1::1 <-> 2001:db8:1::80/64 on the veth pair (all ``nodad``), IPv6 forwarding on, dnsmasq sending
router advertisements of 2001:db8::/64 (SLAAC, RDNSS) and AAAA records, the web server on ``::`` (both
families); :meth:`CampusLab.blackhole_ipv6` makes the router drop what goes to the web side over IPv6.

Everything is made with pyroute2 in namespaces with a random suffix, and removed in a ``finally``;
dnsmasq and the web server are started by PID (pystack_lab.lab) and stopped by PID.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import netns

from pystack_lab import lab

TAP = "pst0"
ROUTER_IP = "192.0.2.1"
ROUTER = f"{ROUTER_IP}/24"
POOL = ("192.0.2.100", "192.0.2.199")
WAN_ROUTER = "198.51.100.1/24"
WEB_IP = "198.51.100.80"
WEB = f"{WEB_IP}/24"
WWW = "www.example.test"
ROUTER6_IP = "2001:db8::1"
ROUTER6 = f"{ROUTER6_IP}/64"
WAN_ROUTER6 = "2001:db8:1::1/64"
WEB6_IP = "2001:db8:1::80"
WEB6 = f"{WEB6_IP}/64"
WEB6_NET = "2001:db8:1::/64"
ALIAS = "web.example.test"
MANY = "many.example.test"
MANY_COUNT = 40
"""A name with this many A records: its answer (40 x 16 bytes) does not fit 512 bytes of UDP, so dnsmasq
sets TC and the client must ask again over TCP."""
LOCAL_TTL = 600

slow = pytest.mark.slow


def run_slow() -> bool:
    """``make test-slow`` sets PYSTACK_SLOW=1; without it the tests marked slow are skipped."""
    return os.environ.get("PYSTACK_SLOW") == "1"


def slow_test(fn: Any) -> Any:
    """Mark a test slow and skip it unless PYSTACK_SLOW=1 (the main ``make test`` stays short)."""
    return slow(pytest.mark.skipif(not run_slow(), reason="slow: run with make test-slow")(fn))


def missing_prerequisites() -> str | None:
    return lab.missing_prerequisites(("ip", "dnsmasq"))


def require_lab() -> None:
    """Skip without dnsmasq (or root); under CI (CI=true) fail instead, as the other lab tests do."""
    reason = missing_prerequisites()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"integration prerequisite missing under CI: {reason}", pytrace=False)
        pytest.skip(reason)


def random_mac() -> str:
    """Locally administered unicast, so the test knows what dnsmasq must record."""
    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


def many_addresses() -> list[str]:
    return [f"198.51.100.{100 + i}" for i in range(MANY_COUNT)]


@dataclass
class CampusLab:
    lan: lab.Namespace
    web: lab.Namespace
    workdir: Path
    www: Path
    lease_file: Path
    ipv6: bool = False
    dnsmasq: subprocess.Popen[Any] | None = None
    dnsmasq_log: Path | None = None
    web_log: Path | None = None
    """The web server's request log (http.server writes one line a request, with the client's address)."""
    files: dict[str, str] = field(default_factory=dict)
    """Served file name -> SHA-256 hex."""

    def pystack(self, *argv: str) -> list[str]:
        """The argv that runs ``pystack ARGV`` inside the lan namespace."""
        return self.lan.cmd([*lab.pystack_command(), *argv])

    def run_pystack(self, *argv: str, timeout: float = 90.0) -> subprocess.CompletedProcess[bytes]:
        """Run a pystack command in the lan namespace to completion (bytes out: bodies may be binary)."""
        try:
            return self.lan.run([*lab.pystack_command(), *argv], timeout=timeout, text=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pystack {' '.join(argv)} did not finish within {timeout} s")

    def leases(self) -> str:
        try:
            return self.lease_file.read_text()
        except FileNotFoundError:
            return ""

    def dnsmasq_output(self) -> str:
        if self.dnsmasq_log is None:
            return ""
        try:
            return self.dnsmasq_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def web_requests(self) -> list[str]:
        if self.web_log is None:
            return []
        try:
            return self.web_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def blackhole_ipv6(self, on: bool = True) -> None:
        """A blackhole route for the web side's IPv6 network on the router (metric 1, before the connected
        route): what pystack sends there over IPv6 is dropped without a word, as on a broken IPv6 path."""
        with self.lan.ipr() as ipr:
            ipr.route("add" if on else "del", dst=WEB6_NET, type="blackhole", family=socket.AF_INET6, priority=1)

    def wait_for_lease(self, mac: str, present: bool = True, timeout: float = 10.0) -> str:
        """Poll dnsmasq's lease file until ``mac`` is (or is no longer) in it; return the file."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.leases()
            if (mac.lower() in text.lower()) == present:
                return text
            if time.monotonic() > deadline:
                return text
            time.sleep(0.1)


def _persistent_tap(ns: lab.Namespace, name: str) -> None:
    with ns.ipr() as ipr:
        ipr.link("add", ifname=name, kind="tuntap", mode="tap")


def _wait_listening(ns: lab.Namespace, kind: int, addr: tuple[str, int], proc: subprocess.Popen[Any],
                    what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise lab.LabError(f"{what} exited with status {proc.returncode}")
        if kind == socket.SOCK_STREAM:
            sock = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.settimeout(1)
                sock.connect(addr)
                return
            except OSError:
                pass
            finally:
                sock.close()
        else:
            if _dns_answers(ns, addr):
                return
        if time.monotonic() > deadline:
            raise lab.LabError(f"{what} did not listen on {addr} within {timeout} s")
        time.sleep(0.1)


def _dns_answers(ns: lab.Namespace, addr: tuple[str, int]) -> bool:
    from pystack.wire import dns as dns_wire

    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(0.5)
        sock.sendto(dns_wire.build_query(0x1234, WWW), addr)
        data = sock.recv(4096)
        return dns_wire.parse(data).answers != []
    except OSError:
        return False
    finally:
        sock.close()


def dnsmasq_argv(workdir: Path, lease_time: str = "1h", dhcp: bool = True, ipv6: bool = False,
                 ra: bool = True) -> list[str]:
    # With IPv6, --bind-dynamic: the TAP's link-local address (dnsmasq's default RDNSS) comes only when
    # pystack opens the TAP, after dnsmasq started; --bind-interfaces would never listen on it.
    argv = [
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        "--port", "53", "--bind-dynamic" if ipv6 else "--bind-interfaces", f"--interface={TAP}",
        "--user=root", "--group=root",
        f"--pid-file={workdir / 'dnsmasq.pid'}", "--log-facility=-", "--log-queries", "--log-dhcp",
        # --local: dnsmasq answers NXDOMAIN itself for unknown names in the zone (it has no upstream).
        "--local=/example.test/",
        f"--host-record={WWW},{WEB_IP}" + (f",{WEB6_IP}" if ipv6 else ""), f"--cname={ALIAS},{WWW}",
        f"--local-ttl={LOCAL_TTL}",
        *[f"--host-record={MANY},{ip}" for ip in many_addresses()],
    ]
    if dhcp:
        argv += [f"--dhcp-range={POOL[0]},{POOL[1]},255.255.255.0,{lease_time}", "--no-ping",
                 f"--dhcp-leasefile={workdir / 'leases'}"]
    if ipv6 and ra:
        # Router advertisements of the TAP's prefix for SLAAC (no DHCPv6), with dnsmasq as the RDNSS.
        argv += ["--enable-ra", f"--dhcp-range=::,constructor:{TAP},ra-only,64,1h"]
    return argv


@contextlib.contextmanager
def campus_lab(files: dict[str, int] | None = None, *, dhcp: bool = True, lease_time: str = "1h",
               http: bool = True, ipv6: bool = False, ra: bool = True) -> Iterator[CampusLab]:
    """Build the lab; ``files`` (name -> size) are random files the web server serves.

    ``dhcp=False`` runs dnsmasq for DNS only (no DHCP server on the LAN); ``ipv6=True`` adds IPv6, and
    ``ra=False`` then leaves out the router advertisements (AAAA records, but no IPv6 for pystack).
    """
    suffix = secrets.token_hex(4)
    made: list[lab.Namespace] = []
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pystack-web-")))
        try:
            for role in ("lan", "web"):
                name = f"pst-{suffix}-{role}"
                netns.create(name)
                ns = lab.Namespace(name)
                made.append(ns)
                ns.link_up("lo")
            lan, web = made
            www = workdir / "www"
            www.mkdir()
            campus = CampusLab(lan, web, workdir, www, workdir / "leases", ipv6=ipv6)
            for name, size in (files or {}).items():
                data = os.urandom(size)
                (www / name).write_bytes(data)
                campus.files[name] = hashlib.sha256(data).hexdigest()

            _persistent_tap(lan, TAP)
            lan.add_address(TAP, ROUTER)
            lan.link_up(TAP)
            if ipv6:
                # The kernel's link-local address comes when pystack opens the TAP (carrier up); without
                # its DAD wait, dnsmasq can answer pystack's first router solicitation from it at once.
                lan.write_proc(f"/proc/sys/net/ipv6/conf/{TAP}/accept_dad", "0")
                lan.add_address6(TAP, ROUTER6)
                lan.write_proc("/proc/sys/net/ipv6/conf/all/forwarding", "1")
            else:
                lan.disable_ipv6(TAP)
            lan.write_proc("/proc/sys/net/ipv4/ip_forward", "1")
            lab.veth(lan, "wan0", web, "eth0")
            lan.add_address("wan0", WAN_ROUTER)
            lan.link_up("wan0")
            web.add_address("eth0", WEB)
            web.link_up("eth0")
            web.add_route("default", WAN_ROUTER.split("/")[0])
            if ipv6:
                lan.add_address6("wan0", WAN_ROUTER6)
                web.add_address6("eth0", WEB6)
                with web.ipr() as ipr:
                    ipr.route("add", dst="::/0", gateway=WAN_ROUTER6.split("/")[0], family=socket.AF_INET6)

            campus.dnsmasq_log = workdir / "dnsmasq.log"
            log_fh = stack.enter_context(open(campus.dnsmasq_log, "wb"))
            campus.dnsmasq = lan.spawn(dnsmasq_argv(workdir, lease_time, dhcp, ipv6, ra), stdout=log_fh,
                                       stderr=subprocess.STDOUT)
            _wait_listening(lan, socket.SOCK_DGRAM, (ROUTER_IP, 53), campus.dnsmasq, "dnsmasq")
            if http:
                campus.web_log = workdir / "http.log"
                web_fh = stack.enter_context(open(campus.web_log, "wb"))
                # On :: the server takes both families (http.server's DualStackServer clears IPV6_V6ONLY).
                server = web.spawn([shutil.which("python3") or "python3", "-m", "http.server",
                                    "--bind", "::" if ipv6 else WEB_IP,
                                    "--protocol", "HTTP/1.1", "--directory", str(www), "80"],
                                   stdout=subprocess.DEVNULL, stderr=web_fh)
                _wait_listening(web, socket.SOCK_STREAM, (WEB_IP, 80), server, "the web server")
            yield campus
        finally:
            errors = []
            for ns in reversed(made):
                try:
                    ns.close()
                except Exception as exc:  # keep removing the others
                    errors.append(str(exc))
            if errors:
                raise lab.LabError("; ".join(errors))


def narration_lines(stderr: bytes | str) -> list[str]:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    return text.splitlines()


def assert_one_line_error(proc: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    """Exit status 1, no traceback, and the error is one line naming the problem."""
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("pystack: error:")]
    assert len(errors) == 1, err
    for needle in needles:
        assert needle in errors[0], err
    return errors[0]


def argv_common(mac: str, *extra: str) -> Sequence[str]:
    return ("--tap", TAP, "--mac", mac, *extra)
