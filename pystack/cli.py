"""The ``pystack`` command: ``pystack run`` is the daemon on a TAP device; ``fetch``, ``resolve`` and
``ping`` are clients on pystack's own stack that narrate every step (pystack/tools/)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import random
import signal
import sys
from typing import TYPE_CHECKING, NoReturn, Sequence

from pystack import __version__
from pystack.api.families import Where
from pystack.control.commands import COMMANDS as CONTROL_COMMANDS
from pystack.control.commands import add_commands, add_daemon_flags, control_address, serve_control
from pystack.dns import servers as nameservers
from pystack.plot.command import COMMANDS as PLOT_COMMANDS
from pystack.plot.command import add_command as add_plot_command
from pystack.replay.command import COMMANDS as REPLAY_COMMANDS
from pystack.replay.command import add_command as add_replay_command
from pystack.replay.command import add_daemon_flags as add_record_flags
from pystack.errors import CommandError, SetupError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pystack.config import RuntimeConfig, StackConfig
    from pystack.dhcp6.host import Dhcp6Host
    from pystack.tools.lease_keeper import LeaseKeeper
    from pystack.medium import Medium
    from pystack.dhcp import Bound
    from pystack.runtime import Runtime
    from pystack.stack import Stack
    from pystack.tools.session import Setup

log = logging.getLogger("pystack")

EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad user input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (plus where to find help), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _ipv4_interface(text: str) -> ipaddress.IPv4Interface:
    try:
        iface = ipaddress.IPv4Interface(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 address with prefix (like 192.0.2.2/24): {text!r}") from None
    if "/" not in text:
        raise argparse.ArgumentTypeError(f"give the prefix length too (like {text}/24)")
    return iface


def _ipv4_address(text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 address: {text!r}") from None


def _dns_server(text: str) -> Where:
    """An IPv4 or IPv6 address for --dns."""
    try:
        return nameservers.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 or IPv6 address: {text!r}") from None


def _ipv6_interface(text: str) -> ipaddress.IPv6Interface:
    try:
        iface = ipaddress.IPv6Interface(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv6 address with prefix (like 2001:db8::2/64): {text!r}") from None
    if "/" not in text:
        raise argparse.ArgumentTypeError(f"give the prefix length too (like {text}/64)")
    if iface.ip.is_multicast or iface.ip.is_unspecified or iface.ip.is_loopback or iface.ip.is_link_local:
        raise argparse.ArgumentTypeError(f"{iface.ip} cannot be given to an interface (link-local addresses are "
                                         "formed by pystack itself)")
    return iface


def _ipv6_address(text: str) -> ipaddress.IPv6Address:
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv6 address: {text!r}") from None
    if address.is_multicast or address.is_unspecified or address.is_loopback:
        raise argparse.ArgumentTypeError(f"{address} cannot be a router's address")
    return address


def _int_between(text: str, low: int, high: int, why: str = "") -> int:
    """A whole number within [low, high], or one clear argparse error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high}{why}, not {value}")
    return value


def _cpu(text: str) -> int:
    return _int_between(text, 0, (os.cpu_count() or 1) - 1, " (a CPU number of this machine)")


def _busy_poll(text: str) -> int | str:
    if text == "auto":
        return text
    return _int_between(text, 0, 100_000, " microseconds (or auto)")


def _mtu(text: str) -> int:
    return _int_between(text, 576, 65521, " (RFC 791 minimum; TAP maximum)")


def _tcp_retries(text: str) -> int:
    return _int_between(text, 1, 255, " retransmissions")


def _mac(text: str) -> bytes:
    from pystack.wire.ethernet import mac_from_str

    try:
        mac = mac_from_str(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a MAC address (like 02:00:00:00:00:02): {text!r}") from None
    if mac[0] & 1:
        raise argparse.ArgumentTypeError(f"{text} is a multicast address; a host needs a unicast MAC")
    return mac


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 86400 * 365:
        raise argparse.ArgumentTypeError(f"must be between 0 and a year of seconds, not {text}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _count(text: str) -> int:
    return _int_between(text, 1, 100000)


def _payload_size(text: str) -> int:
    return _int_between(text, 0, 65507, " (the largest ICMP payload)")


def _http_spec(text: str) -> tuple[str, int]:
    directory, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        directory, port = text, 80
    else:
        port = int(port_text)
        if not 0 < port < 65536:
            raise argparse.ArgumentTypeError(f"port must be 1-65535, not {port}")
    if not os.path.isdir(directory):
        raise argparse.ArgumentTypeError(f"not a directory: {directory!r}")
    return directory, port


def build_parser() -> argparse.ArgumentParser:
    from pystack.config import StackConfig
    from pystack.dhcp.config import DhcpConfig
    from pystack.tcp.congestion import ALGORITHMS

    defaults, dhcp_defaults = StackConfig(), DhcpConfig()

    parser = _Parser(
        prog="pystack",
        description="A userspace TCP/IP stack in Python. It owns a TAP device and speaks Ethernet, ARP, "
                    "IPv4, ICMP, UDP and TCP itself, so the kernel on the other side can ping it and talk to it.",
    )
    parser.add_argument("--version", action="version", version=f"pystack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    run = sub.add_parser(
        "run", help="run the stack as a daemon on a TAP device (root)",
        description="Run pystack on a TAP device until SIGINT/SIGTERM, then print its counters. "
                    "Needs root (CAP_NET_ADMIN) and /dev/net/tun.",
        epilog="example: pystack run --tap pst0 --address 192.0.2.2/24 --host-address 192.0.2.1/24 --echo\n"
               "then, from the kernel side: ping 192.0.2.2\n"
               "or, on a LAN with a DHCP server: pystack run --tap pst0 --dhcp --http /srv/www",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--tap", metavar="NAME",
                       help="TAP device to create, or a persistent one to attach to (e.g. pst0); "
                            "one made for you (ip tuntap add mode tap user YOU) needs no root")
    where.add_argument("--tun", metavar="NAME",
                       help="a TUN device to create, or a persistent one to attach to: bare IP packets, no "
                            "Ethernet, no ARP and no neighbour discovery (every destination goes to the kernel "
                            "behind it); "
                            "one made for you (ip tuntap add mode tun user YOU) needs no root")
    where.add_argument("--fd", type=_descriptor, metavar="N",
                       help="the TAP or TUN open as descriptor N, handed over by whoever opened it (no root "
                            "needed); or a datagram or seqpacket socket, one frame or packet a message, with "
                            "--medium")
    run.add_argument("--medium", choices=["ethernet", "ip"],
                     help="with --fd: what the descriptor carries, Ethernet frames or bare IP packets (default: "
                          "what the TUN/TAP device is)")
    how = run.add_mutually_exclusive_group(required=True)
    how.add_argument("--address", type=_ipv4_interface, metavar="CIDR",
                     help="pystack's IPv4 address and prefix, e.g. 192.0.2.2/24")
    how.add_argument("--dhcp", action="store_true",
                     help="lease an address with DHCP and keep it (renew, rebind) while running; "
                          "release it on SIGINT/SIGTERM")
    run.add_argument("--dhcp-timeout", type=_seconds, default=dhcp_defaults.acquire_timeout, metavar="SECONDS",
                     help="with --dhcp: give up (exit status 1) when no lease came within this time "
                          "(default %(default)g; 0 keeps trying)")
    run.add_argument("--gateway", type=_ipv4_address, metavar="IP",
                     help="default router for destinations off the local network")
    run.add_argument("--host-address", type=_ipv4_interface, metavar="CIDR",
                     help="also configure the kernel's side of the TAP with this address and bring it up")
    run.add_argument("--address6", type=_ipv6_interface, metavar="CIDR",
                     help="a static IPv6 address and prefix, e.g. 2001:db8::2/64, used once duplicate address "
                          "detection passes (IPv6 is on by default: a link-local address, and SLAAC from "
                          "router advertisements)")
    run.add_argument("--gateway6", type=_ipv6_address, metavar="ADDR",
                     help="default IPv6 router (link-local, or on --address6's network); without it, routers "
                          "advertised in RAs are used")
    run.add_argument("--host-address6", type=_ipv6_interface, metavar="CIDR",
                     help="also give the kernel's side of the TAP this IPv6 address (nodad: usable at once)")
    run.add_argument("--no-slaac", action="store_true",
                     help="take no addresses from router advertisements (their routers, MTU and DNS servers "
                          "are still used)")
    run.add_argument("--dhcp6", action="store_true",
                     help="lease an IPv6 address with DHCPv6 (RFC 8415) from start-up, without waiting for a "
                          "router advertisement. Without it, DHCPv6 still starts when an RA says so: its M "
                          "flag leases an address, its O flag asks for DNS servers only. On SIGINT/SIGTERM a "
                          "leased address is released (RFC 8415 18.2.7): pystack waits for the server's Reply "
                          "or the first REL_TIMEOUT (1 s), whichever comes first")
    run.add_argument("--no-ipv6", action="store_true", help="IPv4 only: no IPv6 at all (its frames are dropped)")
    run.add_argument("--mtu", type=_mtu, default=defaults.mtu,
                     help="link MTU (default %(default)s); larger datagrams are fragmented; below 1280 there is "
                          "no IPv6 (RFC 8200 section 5)")
    run.add_argument("--mac", type=_mac, help="pystack's MAC address (default: random, locally administered)")
    run.add_argument("--no-offload", action="store_true",
                     help="plain frames only: no virtio-net header, so no TCP segmentation or checksum offload "
                          "(by default the TAP carries TCP segments of up to 64 KiB, cut to the MTU by the kernel)")
    run.add_argument("--cpu", type=_cpu, metavar="N",
                     help="run pystack on CPU N only, and have the kernel process the frames pystack writes on "
                          "the other CPUs (RPS on the TAP) instead of inside pystack's writes, which raises plain-frame "
                          "TCP throughput (needs 2 CPUs; default: no pinning, no steering)")
    run.add_argument("--busy-poll", type=_busy_poll, default="auto", metavar="USEC|auto",
                     help="after frames arrive, keep polling the TAP for USEC microseconds before sleeping, like "
                          "Linux's net.core.busy_poll: the next frame of a request/response exchange is then "
                          "read without a wake-up (more connections/s for serial clients), at the price of up "
                          "to USEC of CPU after each burst of traffic. auto (the default) learns the window "
                          f"from the gaps between bursts, up to {defaults.runtime.busy_poll_auto * 1e6:g} us, as "
                          "KVM guests' haltpoll "
                          "does: it polls while frames follow each other within that, and not for slower "
                          "traffic such as ping or an idle link. 0: always sleep")
    run.add_argument("--tcp-max-retries", type=_tcp_retries, default=defaults.tcp.max_retries, metavar="N",
                     help="retransmissions of unacknowledged data (or unanswered zero-window probes) before "
                          "a connection gives up with ETIMEDOUT (RFC 1122 4.2.3.5 R2); each waits twice as "
                          "long as the one before, up to 120 s (default %(default)s, like Linux's tcp_retries2: "
                          "about 15 minutes; 3 gives up within seconds on a LAN). SYN retries are not affected")
    run.add_argument("--congestion", choices=sorted(ALGORITHMS), default=defaults.tcp.congestion_control,
                     help="TCP congestion control: cubic (RFC 9438, Linux's default: the window falls to 0.7 "
                          "on a loss and grows back with time) or newreno (RFC 5681/6582: halves it, grows one "
                          "segment per round trip) (default %(default)s)")
    run.add_argument("--echo", action="store_true", help="serve echo (RFC 862) on port 7, UDP and TCP")
    run.add_argument("--discard", action="store_true", help="serve TCP discard (RFC 863) on port 9")
    run.add_argument("--http", type=_http_spec, metavar="DIR[:PORT]",
                     help="serve the files under DIR over HTTP/1.1 on PORT (default 80); "
                          "POST /sha256 answers the SHA-256 of the request body")
    run.add_argument("--pcap", metavar="FILE", help="record every frame in and out to FILE (tcpdump -r, Wireshark); "
                     "a FILE ending in .pcapng also tells why pystack sent each frame (tshark's frame.comment)")
    run.add_argument("--stats-json", metavar="FILE", help="write the counters as JSON to FILE on exit")
    add_record_flags(run)  # --trace, --record
    add_daemon_flags(run)
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                     help="logging detail on stderr (default info)")
    _client_commands(sub)
    add_commands(sub)  # ss, stats: clients of a running daemon's control socket
    add_plot_command(sub)
    add_replay_command(sub)
    return parser


def _setup_flags(p: argparse.ArgumentParser) -> None:
    """The set-up flags of the client commands: the TAP and how pystack gets its address."""
    from pystack.config import StackConfig
    from pystack.dhcp.config import DhcpConfig

    defaults, dhcp_defaults = StackConfig(), DhcpConfig()
    g = p.add_argument_group("set-up (default: --tap pst0 --dhcp)")
    g.add_argument("--tap", default="pst0", metavar="NAME",
                   help="TAP device to create, or a persistent one to attach to (default pst0); one made "
                        "for you (ip tuntap add mode tap user YOU), up, needs no root")
    g.add_argument("--tun", metavar="NAME",
                   help="a TUN device instead of --tap: bare IP packets, no Ethernet and no ARP (with --address, "
                        "and --address6 for IPv6; every destination goes to the kernel behind it); one made for "
                        "you (ip tuntap add mode tun user YOU), up, needs no root")
    g.add_argument("--fd", type=_descriptor, metavar="N",
                   help="use the TAP or TUN open as descriptor N (handed over by whoever opened it, no root "
                        "needed) instead of opening --tap; or a datagram or seqpacket socket, with --medium")
    g.add_argument("--medium", choices=["ethernet", "ip"],
                   help="with --fd: what the descriptor carries (default: what the TUN/TAP device is)")
    how = g.add_mutually_exclusive_group()
    how.add_argument("--dhcp", action="store_true", help="lease an address with DHCP (the default)")
    how.add_argument("--address", type=_ipv4_interface, metavar="CIDR",
                     help="a static address instead of DHCP, e.g. 192.0.2.2/24 (with --gateway, --dns)")
    g.add_argument("--gateway", type=_ipv4_address, metavar="IP", help="with --address: the default router")
    g.add_argument("--address6", type=_ipv6_interface, metavar="CIDR",
                   help="a static IPv6 address too, e.g. 2001:db8::2/64, beside SLAAC and DHCPv6 on a TAP; on a "
                        "TUN (no neighbour discovery, no DAD) usable at once, and the way to have IPv6 there")
    g.add_argument("--gateway6", type=_ipv6_address, metavar="ADDR",
                   help="the default IPv6 router (link-local, or on --address6's network) instead of the "
                        "advertised ones; on a TUN the peer takes what no route claims anyway")
    g.add_argument("--dns", type=_dns_server, action="append", default=[], metavar="IP",
                   help="DNS server to ask, IPv4 or IPv6 (repeatable, asked in order); overrides the servers "
                        "the DHCP lease and the routers' advertisements (RDNSS) name")
    g.add_argument("--dhcp-timeout", type=_positive_seconds, default=dhcp_defaults.acquire_timeout,
                   metavar="SECONDS",
                   help="give up when no DHCP lease came within this time (default %(default)g)")
    g.add_argument("--release", action="store_true",
                   help="give the DHCP lease (and a DHCPv6 one) back on exit (default: leave them to run out); "
                        "a DHCPv6 Release waits for the server's Reply or the first REL_TIMEOUT (1 s)")
    g.add_argument("--host-address", type=_ipv4_interface, metavar="CIDR",
                   help="also configure the kernel's side of the TAP with this address and bring it up")
    g.add_argument("--mtu", type=_mtu, default=defaults.mtu, help="link MTU (default %(default)s)")
    g.add_argument("--mac", type=_mac, help="pystack's MAC address (default: random, locally administered)")
    g.add_argument("--timeout", type=_positive_seconds, default=30.0, metavar="SECONDS",
                   help="TCP connect timeout, and longest silence while waiting for data (default 30)")
    g.add_argument("--pcap", metavar="FILE", help="record every frame in and out to FILE "
                   "(FILE.pcapng: with why pystack sent each frame)")
    g.add_argument("--ladder-svg", metavar="FILE", help="also draw the ladder diagram as SVG in FILE")
    g.add_argument("--trace", metavar="FILE.jsonl",
                   help="write TCP's connection events to FILE, one JSON object a line (as pystack run --trace)")
    g.add_argument("--quiet", "-q", action="store_true",
                   help="no narration: only the result (the body, the addresses) and errors")
    g.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                   help="logging detail on stderr besides the narration (default warning)")


def _family_flags(p: argparse.ArgumentParser, four: str, six: str) -> None:
    """-4 and -6 of the dual-stack client commands (by default both families, raced as RFC 8305 says)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("-4", dest="family", action="store_const", const=4, default=0, help=four)
    g.add_argument("-6", dest="family", action="store_const", const=6, default=0,
                   help=six + "; DNS questions go to IPv6 servers (RDNSS, --dns) when there are any, else "
                              "over IPv4")


def _client_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    fetch = sub.add_parser(
        "fetch", help="get a URL over pystack's own TCP, narrating every step (root)",
        description="Fetch an http:// or https:// URL with pystack's own stack: lease an address (DHCP), find "
                    "the router's MAC (ARP), resolve the name (DNS over UDP, TCP when truncated), open TCP, "
                    "for https the TLS handshake (the certificate checked against the system's CAs or "
                    "--cacert), GET, close. Each step goes to stderr as it happens, then a ladder diagram of the "
                    "exchange; the body goes to stdout or -o FILE.",
        epilog="example: pystack fetch http://www.example.test/file --tap pst0 --dhcp -o file")
    fetch.add_argument("url", metavar="URL",
                       help="http://HOST[:PORT]/PATH or https://... (HOST a name, an IPv4 address or an IPv6 one "
                            "in brackets)")
    fetch.add_argument("-o", "--output", metavar="FILE", help="write the body to FILE instead of stdout")
    fetch.add_argument("--cacert", metavar="FILE",
                       help="for https: trust the CA certificates in FILE (PEM) instead of the system's")
    _setup_flags(fetch)
    _family_flags(fetch, "connect over IPv4 only (ask only for A records)",
                  "connect over IPv6 only (ask only for AAAA records)")

    resolve = sub.add_parser(
        "resolve", help="resolve a name to IPv6 and IPv4 addresses over pystack's own UDP (root)",
        description="Resolve NAME (AAAA and A records asked together, following CNAMEs) with pystack's stub "
                    "resolver. The addresses go to stdout, one per line, IPv6 first; the narration to stderr.",
        epilog="example: pystack resolve web.example.test --tap pst0 --dhcp")
    resolve.add_argument("name", metavar="NAME")
    _setup_flags(resolve)
    _family_flags(resolve, "ask for A records only", "ask for AAAA records only")

    ping = sub.add_parser(
        "ping", help="ICMP echo from pystack to a host (root)",
        description="Send ICMP echo requests from pystack and print the replies like ping(8).",
        epilog="example: pystack ping www.example.test -c 3 --tap pst0 --dhcp")
    run_program = sub.add_parser(
        "exec", help="run a Python program whose sockets are pystack's (root)",
        description="Set pystack up as fetch does (DHCP by default), then run an unmodified Python program in "
                    "this process with pystack.socket in place of the socket module: its TCP, UDP and name "
                    "lookups (hosts table, then pystack's DNS client) go over pystack, and select, selectors "
                    "and asyncio work on its sockets, IPv4 and IPv6 (SLAAC from the routers' advertisements, or "
                    "--address6; an AF_INET6 socket on :: takes IPv4 too). The exit status is the program's. Not "
                    "covered: code "
                    "that uses _socket directly, subprocesses (they get the kernel's socket).",
        epilog="example: pystack exec --tap pst0 --address 192.0.2.2/24 -- -m http.server 8000\n"
               "         pystack exec --tap pst0 --dhcp -- client.py --verbose",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run_program.add_argument("program", nargs=argparse.REMAINDER, metavar="-- (SCRIPT | -m MODULE | -c CODE) [ARGS]",
                             help="the program and its arguments, after --")
    run_program.add_argument("--hosts", default="/etc/hosts", metavar="FILE",
                             help="hosts table consulted before DNS (default /etc/hosts)")
    _setup_flags(run_program)
    add_daemon_flags(run_program)

    ping.add_argument("host", metavar="HOST", help="a name, or an IPv4 or IPv6 address (a name: IPv6 first when "
                                                   "there is an AAAA record and IPv6 is configured)")
    ping.add_argument("-c", "--count", type=_count, default=4, help="echo requests to send (default 4)")
    ping.add_argument("-i", "--interval", type=_positive_seconds, default=1.0, metavar="SECONDS",
                      help="between requests (default 1)")
    ping.add_argument("-s", "--size", type=_payload_size, default=56, help="payload bytes (default 56)")
    ping.add_argument("-W", "--wait", type=_positive_seconds, default=2.0, metavar="SECONDS",
                      help="for the last reply (default 2)")
    _setup_flags(ping)
    _family_flags(ping, "ping over IPv4 (ICMP)", "ping over IPv6 (ICMPv6)")


def _random_mac() -> bytes:
    # Locally administered (bit 1), unicast (bit 0 clear): RFC 7042 section 2.1.
    return bytes([0x02]) + random.randbytes(5)


def _descriptor(text: str) -> int:
    fd = _int_between(text, 0, 1 << 20)
    try:
        os.fstat(fd)
    except OSError:
        raise argparse.ArgumentTypeError(f"descriptor {fd} is not open") from None
    return fd


def _check_root(command: str, args: argparse.Namespace) -> None:
    """Root opens any TAP; a TAP made for this user, or a descriptor handed over, needs none (then the
    kernel's side is the administrator's to configure)."""
    fd = getattr(args, "fd", None)
    if os.geteuid() != 0:
        from pystack.link.tap import tap_owner

        kind, name = ("tun", args.tun) if getattr(args, "tun", None) else ("tap", args.tap)
        if fd is None and tap_owner(name) != os.geteuid():
            raise UsageError(f"pystack {command} needs root (CAP_NET_ADMIN) to open a {kind.upper()} device, or a "
                             f"{kind.upper()} made for this user (ip tuntap add mode {kind} user {os.geteuid()}), "
                             "or --fd N")
        for flag in ("host_address", "cpu"):
            if getattr(args, flag, None) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} needs root")
    if fd is None and not os.path.exists("/dev/net/tun"):
        raise UsageError("/dev/net/tun is missing: this kernel or container has no TUN/TAP device")


def _link_medium(args: argparse.Namespace) -> Medium | None:
    """What the link will carry: --tun's IP packets, --tap's Ethernet frames, or --fd's (--medium, else what
    the device is; None for a descriptor that is no TUN/TAP, which FdLink then refuses in one line)."""
    from pystack.link.fd import descriptor_medium
    from pystack.medium import Medium

    if args.medium is not None and args.fd is None:
        raise UsageError("--medium goes with --fd (a --tap carries Ethernet frames, a --tun IP packets)")
    if getattr(args, "tun", None):
        return Medium.IP
    if args.fd is not None:
        return Medium(args.medium) if args.medium is not None else descriptor_medium(args.fd)
    return Medium.ETHERNET


def _check_medium(args: argparse.Namespace, medium: Medium | None) -> None:
    """On the IP medium: a static address (DHCP needs Ethernet's broadcast), no MAC. IPv6 runs there as on
    a TAP, without neighbour discovery (pystack.iface.ip_link6.PointToPointNd); DHCPv6 needs Ethernet's
    link-layer addresses (RFC 8415's DUID-LL) and is refused."""
    from pystack.medium import Medium

    if medium is not Medium.IP:
        return
    if args.address is None:
        raise UsageError("a TUN carries bare IP packets: DHCP needs Ethernet, so give --address")
    if args.mac is not None:
        raise UsageError("--mac goes with Ethernet (a TAP): a TUN has no MAC")
    if getattr(args, "dhcp6", False):
        raise UsageError("--dhcp6 goes with Ethernet (a TAP): its client identifier (DUID-LL) is made from "
                         "the MAC a TUN has not; give --address6")


def _check_addressing(args: argparse.Namespace) -> None:
    """--address with --gateway and --host-address, or DHCP (where the lease names the router)."""
    addr = args.address
    if addr is None:
        if args.gateway is not None:
            raise UsageError("--gateway goes with --address; with DHCP the lease names the router")
        return
    if args.host_address is not None:
        if args.host_address.ip == addr.ip:
            raise UsageError(f"--host-address {args.host_address.ip} is the same as --address")
        if args.host_address.network != addr.network:
            raise UsageError(f"--host-address {args.host_address} is not on pystack's network {addr.network}")
    if args.gateway is not None and args.gateway not in addr.network:
        raise UsageError(f"--gateway {args.gateway} is not on the local network {addr.network}")
    if addr.ip in (addr.network.network_address, addr.network.broadcast_address) and addr.network.prefixlen < 31:
        raise UsageError(f"--address {addr.ip} is the network or broadcast address of {addr.network}")


def _check_ipv6(args: argparse.Namespace) -> None:
    """--address6, --gateway6, --host-address6 and --no-slaac need IPv6 (on by default, off with --no-ipv6,
    a client command's -4, or an MTU below 1280), and must agree with each other. The client commands have
    the first two only."""
    host = getattr(args, "host_address6", None)
    asked = [flag for flag, value in (("--address6", args.address6), ("--gateway6", args.gateway6),
                                      ("--host-address6", host), ("--no-slaac", getattr(args, "no_slaac", False)),
                                      ("--dhcp6", getattr(args, "dhcp6", False)))
             if value]
    if asked and getattr(args, "no_ipv6", False):
        raise UsageError(f"{asked[0]} goes with IPv6, which --no-ipv6 turns off")
    if asked and getattr(args, "family", 0) == 4:
        raise UsageError(f"{asked[0]} goes with IPv6, which -4 turns off")
    if asked and args.mtu < 1280:
        raise UsageError(f"{asked[0]} needs IPv6, and IPv6 needs an MTU of at least 1280 (not {args.mtu})")
    addr = args.address6
    if addr is not None and host is not None:
        if host.ip == addr.ip:
            raise UsageError(f"--host-address6 {host.ip} is the same as --address6")
        if host.network != addr.network:
            raise UsageError(f"--host-address6 {host} is not on pystack's network {addr.network}")
    gateway = args.gateway6
    if gateway is not None and not gateway.is_link_local and (addr is None or gateway not in addr.network):
        raise UsageError(f"--gateway6 {gateway} is not on-link: give a link-local address or one in --address6's "
                         "network")
    if addr is not None and gateway is not None and gateway == addr.ip:
        raise UsageError(f"--gateway6 {gateway} is pystack's own --address6")


def _check_run(args: argparse.Namespace) -> Medium | None:
    """The flags of ``pystack run``, checked together; what the link will carry (see _link_medium)."""
    _check_addressing(args)
    _check_ipv6(args)
    medium = _link_medium(args)
    _check_medium(args, medium)
    _check_root("run", args)
    return medium


def _stack_config(args: argparse.Namespace) -> StackConfig:
    """The daemon's StackConfig: the defaults, with what ``pystack run``'s flags set (one line if they
    contradict each other)."""
    from pystack.config import RuntimeConfig, StackConfig
    from pystack.config_check import ConfigError
    from pystack.ip6.config import Ipv6Config
    from pystack.tcp.config import TcpConfig

    try:
        return StackConfig(mtu=args.mtu, tcp=TcpConfig(max_retries=args.tcp_max_retries,
                                                       congestion_control=args.congestion),
                           runtime=_runtime_config(RuntimeConfig(), args.busy_poll),
                           ipv6=Ipv6Config(slaac=not args.no_slaac))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _runtime_config(defaults: RuntimeConfig, busy_poll: int | str) -> RuntimeConfig:
    """``--busy-poll USEC`` polls that long after every burst; ``auto`` learns the window, up to
    ``busy_poll_auto``."""
    import dataclasses

    if busy_poll == "auto":
        return dataclasses.replace(defaults, busy_poll=defaults.busy_poll_auto, adaptive_poll=True)
    assert isinstance(busy_poll, int)
    return dataclasses.replace(defaults, busy_poll=busy_poll / 1e6, adaptive_poll=False)


def cmd_run(args: argparse.Namespace) -> int:
    if args.record and args.dhcp:
        raise UsageError("--record goes with --address: a DHCP lease is not recorded yet")
    if args.record and args.dhcp6:
        raise UsageError("--record and --dhcp6 do not go together: a DHCPv6 lease is not recorded yet")
    medium = _check_run(args)
    import time

    from pystack.apps.services import Services, start_services
    from pystack.heap import keep_freed_memory
    from pystack.link.setup import LinkSetupError, open_link
    from pystack.reasons import explain_frames
    from pystack.runtime import Runtime
    from pystack.stack import Stack
    from pystack.wire.ethernet import mac_to_str

    config = _stack_config(args)
    keep_freed_memory(config.runtime)
    try:
        link, pcap = open_link(args.tun or args.tap or "", args.mtu, offload=not args.no_offload, pcap=args.pcap,
                               fd=args.fd, host_address=args.host_address, host_address6=args.host_address6,
                               medium=medium)
    except LinkSetupError as exc:
        raise UsageError(str(exc)) from None
    config.medium = link.medium  # what the link carries, the stack speaks
    loop_notes = ""  # how the loop runs: --cpu, --busy-poll (for the ready line)
    if args.cpu is not None:
        from pystack.link.steering import SteeringError, pin_and_steer

        try:
            others = pin_and_steer(link.name, args.cpu)
        except SteeringError as exc:
            link.close()
            raise UsageError(str(exc)) from None
        loop_notes = f", cpu {args.cpu} (kernel work on {','.join(map(str, sorted(others)))})"
    mac = args.mac or _random_mac()
    recording = None
    if args.record:  # the stack writes down what enters it, for pystack replay
        from pystack.replay.record import Recording

        try:
            recording = Recording(args.record, mac, config, time.monotonic(),  # the Runtime's clock
                                  limit=args.record_limit << 20)
        except SetupError:
            link.close()
            raise
    stack = Stack(mac, config) if recording is None else recording.stack
    runtime = Runtime(stack, link, pcap)
    now = runtime.now()
    explain_frames(stack, pcap)  # a .pcapng capture: each sent frame's reason as its comment
    trace = None
    try:
        if args.trace:
            from pystack.trace import TraceWriter

            trace = TraceWriter(args.trace, now, stack.counters)
            trace.attach(stack.tcp, stack.tcp6)
        control = serve_control(runtime, link.name, args)  # what pystack ss and stats ask
    except SetupError:
        runtime.close()
        if recording is not None:
            recording.close()
        raise
    if args.address is not None:
        gateway = int(args.gateway) if args.gateway else None
        stack.configure(int(args.address.ip), args.address.network.prefixlen, gateway, now)
    ipv6_note = _start_ipv6(stack, args, now)
    wanted = Services(echo=args.echo, discard=args.discard, http_port=args.http[1] if args.http else None,
                      http_root=args.http[0] if args.http else None)
    services = (start_services(stack, wanted, config.http) if recording is None
                else recording.start_services(wanted, config.http))

    serving = f"; serving {', '.join(services)}" if services else ""
    poll_us = round(config.runtime.busy_poll * 1e6)
    if config.runtime.adaptive_poll:
        loop_notes += f", busy-poll auto (up to {poll_us} us)"
    elif poll_us:
        loop_notes += f", busy-poll {poll_us} us"

    def ready(address: str, gateway: str | None, extra: str = "") -> None:
        # The ready line is printed at every log level: scripts wait for it.
        where = (f"mac {mac_to_str(mac)}" if link.medium.value == "ethernet"
                 else f"{link.KIND}, bare IP packets (no Ethernet, no ARP)")
        print(f"pystack: ready on {link.name}: {where}, address {address}{extra}"
              f"{f', gateway {gateway}' if gateway else ''}{ipv6_note}, mtu {args.mtu}, offload {'on' if link.offload else 'off'}{loop_notes}"
              f"{serving}", file=sys.stderr, flush=True)

    keeper = None
    if args.dhcp:
        from pystack.tools.lease_keeper import LeaseKeeper
        from pystack.tools.narrator import ip, seconds

        def on_lease(lease: Bound) -> None:
            ready(f"{ip(lease.address)}/{lease.prefix}", ip(lease.router) if lease.router is not None else None,
                  f" (DHCP lease {seconds(lease.lease)} from {ip(lease.server)})")

        keeper = LeaseKeeper(stack, runtime, args.dhcp_timeout or None, on_lease)
    stops = 0
    leave = _leaving(stack, runtime, keeper)

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stops
        stops += 1
        log.info("%s received, shutting down", signal.Signals(signum).name)
        if stops == 1:
            leave()  # the leases go back first; a second signal stops at once
        else:
            runtime.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if keeper is None:
        ready(str(args.address), str(args.gateway) if args.gateway else None)
    else:
        timeout = f"giving up after {args.dhcp_timeout:g} s" if args.dhcp_timeout else "no time limit"
        print(f"pystack: started on {link.name}: mac {mac_to_str(mac)}, asking for a DHCP lease ({timeout})",
              file=sys.stderr, flush=True)
        keeper.start()
    try:
        runtime.run()
    finally:
        if control is not None:
            control.close()
        _release_dhcp6(stack, runtime)
        runtime.close()
        if trace is not None:
            trace.close()
        if recording is not None:
            recording.close()
            if recording.failed:
                log.error("the recording %s stopped early: %s", args.record, recording.failed)
        if link.offload:
            stack.counters["link.super_frames_in"] += link.super_frames
            stack.counters["link.partial_checksum_frames_in"] += link.partial_checksum_frames
        counters = dict(sorted(stack.counters.items()))
        print("pystack counters:\n" + stack.counters.report(), file=sys.stderr)
        if args.stats_json:
            with open(args.stats_json, "w") as fh:
                json.dump(counters, fh, indent=1)
    if keeper is not None and keeper.failure is not None:
        raise CommandError(f"no DHCP lease: {keeper.failure}")
    return 0


def _start_ipv6(stack: Stack, args: argparse.Namespace, now: float) -> str:
    """IPv6 up as ``pystack run``'s flags say (on unless --no-ipv6 or an MTU below 1280); what the ready
    line says of it. Each address is logged at info when DAD lets it be used, and when it goes."""
    if args.no_ipv6:
        return ", ipv6 off"
    if args.mtu < 1280:
        log.info("IPv6 off: the MTU %d is below IPv6's minimum of 1280 (RFC 8200 section 5)", args.mtu)
        return ", ipv6 off (mtu below 1280)"
    stack.start_ipv6(now)
    parts = ["link-local"]
    if args.address6 is not None:
        stack.add_address6(int(args.address6.ip), args.address6.network.prefixlen, now)
        parts.append(str(args.address6))
    if args.gateway6 is not None:
        stack.gateway6 = int(args.gateway6)
        parts.append(f"gateway {args.gateway6}")
    parts.append("no SLAAC" if args.no_slaac else "SLAAC")
    from pystack.dhcp6 import Mode
    from pystack.dhcp6.host import Dhcp6Host

    if getattr(args, "record", None):
        return f", ipv6 {' + '.join(parts[:-1])} ({parts[-1]}; no DHCPv6 while recording)"
    dhcp6 = Dhcp6Host.attach(stack)  # router advertisements with the M or O flag start it
    if args.dhcp6:
        dhcp6.start(Mode.STATEFUL, now)
        parts[-1] += ", DHCPv6"
    return f", ipv6 {' + '.join(parts[:-1])} ({parts[-1]})"


def _leaving(stack: Stack, runtime: Runtime, keeper: LeaseKeeper | None) -> Callable[[], None]:
    """The daemon's way out, as a function safe to call from a signal handler: in the loop, DHCPv6
    addresses are released and their Reply waited for, at most until the first REL_TIMEOUT (RFC 8415
    18.2.7, ~1 s; see EXIT_ATTEMPTS), then the DHCP lease (the keeper's DHCPRELEASE), then the loop stops."""
    from pystack.dhcp6.host import EXIT_ATTEMPTS

    step = ""

    def leave() -> None:
        nonlocal step
        step = step or "release6"
        runtime.wake()

    def tick(now: float) -> None:
        nonlocal step
        if step == "release6":
            for host in _dhcp6_hosts(stack):
                if host.leased:
                    host.release(now, EXIT_ATTEMPTS)
            step = "wait6"
        if step == "wait6" and not any(host.releasing for host in _dhcp6_hosts(stack)):
            step = "done"
            if keeper is not None:
                keeper.shutdown()  # its own tick hook releases, then stops the loop
            else:
                runtime.stop()

    runtime.tick_hooks.append(tick)
    return leave


def _dhcp6_hosts(stack: Stack) -> list[Dhcp6Host]:
    from pystack.dhcp6.host import Dhcp6Host

    return [source for source in stack.timer_sources if isinstance(source, Dhcp6Host)]


def _release_dhcp6(stack: Stack, runtime: Runtime) -> None:
    """The loop stopped with DHCPv6 addresses still leased (a second signal): Release goes out once, not
    waited for. To ff02::1:2: no neighbour has to answer first, it leaves with this flush."""
    for host in _dhcp6_hosts(stack):
        if host.leased:
            with runtime.lock:
                host.release(runtime.now(), 1)
                runtime.flush()


def _setup(args: argparse.Namespace) -> Setup:
    """The client commands' set-up flags, checked together."""
    from pystack.tools.session import Setup

    _check_addressing(args)
    if args.address is not None and args.release:
        raise UsageError("--release goes with DHCP, not with --address")
    _check_ipv6(args)
    medium = _link_medium(args)
    _check_medium(args, medium)
    _check_root(args.command, args)
    if args.tun:
        args.tap = args.tun  # the device's name (and the default control socket's)
    return Setup(tap=args.tap, fd=args.fd, medium=medium, mac=args.mac or _random_mac(), mtu=args.mtu,
                 address=args.address, gateway=args.gateway, address6=args.address6, gateway6=args.gateway6,
                 dns=args.dns, host_address=args.host_address,
                 dhcp_timeout=args.dhcp_timeout, release=args.release, pcap=args.pcap, timeout=args.timeout,
                 ladder_svg=args.ladder_svg, control=control_address(args), trace=args.trace,
                 family=getattr(args, "family", 0))


def cmd_fetch(args: argparse.Namespace) -> int:
    from pystack.tools.commands import fetch
    from pystack.tools.http import UrlError, parse_url
    from pystack.tools.narrator import Narrator

    try:
        url = parse_url(args.url)
    except UrlError as exc:
        raise UsageError(str(exc)) from None
    if args.cacert is not None and not os.access(args.cacert, os.R_OK):
        raise UsageError(f"cannot read --cacert {args.cacert}")
    setup = _setup(args)
    narrator = Narrator(enabled=not args.quiet)
    if args.output:
        try:
            out = open(args.output, "wb")
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
        with out:
            return fetch(setup, url, out, narrator, args.cacert)
    return fetch(setup, url, sys.stdout.buffer, narrator, args.cacert)


def cmd_resolve(args: argparse.Namespace) -> int:
    from pystack.tools.commands import resolve
    from pystack.tools.narrator import Narrator

    try:
        from pystack.wire.dns import name_key

        name_key(args.name)
    except ValueError as exc:
        raise UsageError(f"not a DNS name: {args.name!r} ({exc})") from None
    return resolve(_setup(args), args.name, sys.stdout, Narrator(enabled=not args.quiet))


def cmd_exec(args: argparse.Namespace) -> int:
    from pystack.tools.narrator import Narrator
    from pystack.tools.program import Program, ProgramError, exec_program

    try:
        program = Program.parse(args.program)
    except ProgramError as exc:
        raise UsageError(str(exc)) from None
    return exec_program(_setup(args), program, args.hosts, Narrator(enabled=not args.quiet))


def cmd_ping(args: argparse.Namespace) -> int:
    from pystack.tools.commands import ping
    from pystack.tools.narrator import Narrator

    return ping(_setup(args), args.host, args.count, args.interval, args.size, args.wait, sys.stdout,
                Narrator(enabled=not args.quiet))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s pystack: %(message)s", stream=sys.stderr)
    commands = {"run": cmd_run, "fetch": cmd_fetch, "resolve": cmd_resolve, "ping": cmd_ping, "exec": cmd_exec}
    commands.update(CONTROL_COMMANDS)
    commands.update(PLOT_COMMANDS)
    commands.update(REPLAY_COMMANDS)
    if args.command not in commands:
        parser.error(f"unknown command {args.command}")
    try:
        return commands[args.command](args)
    except (UsageError, SetupError) as exc:
        print(f"pystack: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:
        print(f"pystack: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout went away (``pystack fetch URL | head``): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
