"""The ``pystack`` command: ``pystack run`` is the daemon on a TAP device."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import random
import signal
import sys
from typing import NoReturn, Sequence

from pystack import __version__

log = logging.getLogger("pystack")

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


def _mtu(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 576 <= value <= 65521:
        raise argparse.ArgumentTypeError(f"MTU must be between 576 and 65521 (RFC 791 minimum; TAP maximum), not {value}")
    return value


def _mac(text: str) -> bytes:
    from pystack.wire.ethernet import mac_from_str

    try:
        mac = mac_from_str(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a MAC address (like 02:00:00:00:00:02): {text!r}") from None
    if mac[0] & 1:
        raise argparse.ArgumentTypeError(f"{text} is a multicast address; a host needs a unicast MAC")
    return mac


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
               "then, from the kernel side: ping 192.0.2.2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--tap", required=True, metavar="NAME",
                     help="TAP device to create, or a persistent one to attach to (e.g. pst0)")
    run.add_argument("--address", required=True, type=_ipv4_interface, metavar="CIDR",
                     help="pystack's IPv4 address and prefix, e.g. 192.0.2.2/24")
    run.add_argument("--gateway", type=_ipv4_address, metavar="IP",
                     help="default router for destinations off the local network")
    run.add_argument("--host-address", type=_ipv4_interface, metavar="CIDR",
                     help="also configure the kernel's side of the TAP with this address and bring it up")
    run.add_argument("--mtu", type=_mtu, default=1500, help="link MTU (default 1500); larger datagrams are fragmented")
    run.add_argument("--mac", type=_mac, help="pystack's MAC address (default: random, locally administered)")
    run.add_argument("--echo", action="store_true", help="serve echo (RFC 862) on port 7, UDP and TCP")
    run.add_argument("--discard", action="store_true", help="serve TCP discard (RFC 863) on port 9")
    run.add_argument("--http", type=_http_spec, metavar="DIR[:PORT]",
                     help="serve the files under DIR over HTTP/1.1 on PORT (default 80); "
                          "POST /sha256 answers the SHA-256 of the request body")
    run.add_argument("--pcap", metavar="FILE", help="record every frame in and out to FILE (tcpdump -r, Wireshark)")
    run.add_argument("--stats-json", metavar="FILE", help="write the counters as JSON to FILE on exit")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                     help="logging detail on stderr (default info)")
    return parser


def _random_mac() -> bytes:
    # Locally administered (bit 1), unicast (bit 0 clear): RFC 7042 section 2.1.
    return bytes([0x02]) + random.randbytes(5)


def _check_run(args: argparse.Namespace) -> None:
    if os.geteuid() != 0:
        raise UsageError("pystack run needs root (CAP_NET_ADMIN) to open a TAP device")
    if not os.path.exists("/dev/net/tun"):
        raise UsageError("/dev/net/tun is missing: this kernel or container has no TUN/TAP device")
    addr = args.address
    if args.host_address is not None:
        if args.host_address.ip == addr.ip:
            raise UsageError(f"--host-address {args.host_address.ip} is the same as --address")
        if args.host_address.network != addr.network:
            raise UsageError(f"--host-address {args.host_address} is not on pystack's network {addr.network}")
    if args.gateway is not None and args.gateway not in addr.network:
        raise UsageError(f"--gateway {args.gateway} is not on the local network {addr.network}")
    if addr.ip in (addr.network.network_address, addr.network.broadcast_address) and addr.network.prefixlen < 31:
        raise UsageError(f"--address {addr.ip} is the network or broadcast address of {addr.network}")


def cmd_run(args: argparse.Namespace) -> int:
    _check_run(args)
    from pystack.apps.http_session import HttpSession
    from pystack.apps.stream_server import DiscardSession, EchoSession, StreamServer
    from pystack.apps.udp_echo import UdpEcho
    from pystack.config import StackConfig
    from pystack.hostside import HostSideError, configure_host_side
    from pystack.link.pcap import PcapWriter
    from pystack.link.tap import TapError, TapLink
    from pystack.runtime import Runtime
    from pystack.stack import Stack
    from pystack.wire.ethernet import mac_to_str

    try:
        pcap = PcapWriter(args.pcap) if args.pcap else None
    except OSError as exc:
        raise UsageError(f"cannot write pcap file {args.pcap}: {exc.strerror}") from None
    try:
        link = TapLink(args.tap, args.mtu)
    except TapError as exc:
        raise UsageError(str(exc)) from None
    if args.host_address is not None:
        try:
            configure_host_side(link.name, args.host_address, args.mtu)
        except HostSideError as exc:
            link.close()
            raise UsageError(str(exc)) from None
    mac = args.mac or _random_mac()
    stack = Stack(mac, StackConfig(mtu=args.mtu))
    runtime = Runtime(stack, link, pcap)
    now = runtime.now()
    gateway = int(args.gateway) if args.gateway else None
    stack.configure(int(args.address.ip), args.address.network.prefixlen, gateway, now)
    services = []
    if args.echo:
        UdpEcho(stack, runtime.now)
        StreamServer(stack, runtime.now, 7, EchoSession)
        services.append("echo on udp/tcp port 7")
    if args.discard:
        StreamServer(stack, runtime.now, 9, DiscardSession)
        services.append("discard on tcp port 9")
    if args.http:
        root, port = args.http
        StreamServer(stack, runtime.now, port, lambda: HttpSession(root))
        services.append(f"http on tcp port {port} from {os.path.abspath(root)}")

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s received, shutting down", signal.Signals(signum).name)
        runtime.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # The ready line is printed at every log level: scripts wait for it.
    print(f"pystack: ready on {link.name}: mac {mac_to_str(mac)}, address {args.address}"
          f"{f', gateway {args.gateway}' if args.gateway else ''}, mtu {args.mtu}"
          f"{'; serving ' + ', '.join(services) if services else ''}", file=sys.stderr, flush=True)
    try:
        runtime.run()
    finally:
        runtime.close()
        counters = dict(sorted(stack.counters.items()))
        print("pystack counters:\n" + stack.counters.report(), file=sys.stderr)
        if args.stats_json:
            with open(args.stats_json, "w") as fh:
                json.dump(counters, fh, indent=1)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s pystack: %(message)s", stream=sys.stderr)
    try:
        if args.command == "run":
            return cmd_run(args)
    except UsageError as exc:
        print(f"pystack: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
