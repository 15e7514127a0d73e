"""``pystack ss`` and ``pystack stats`` (clients of a running daemon's control socket), and the daemon's
``--control``/``--no-control`` flags."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Callable

from pystack.errors import CommandError, SetupError

if TYPE_CHECKING:
    from pystack.control.server import ControlServer
    from pystack.runtime import Runtime


def add_daemon_flags(p: argparse.ArgumentParser) -> None:
    """The flags of a daemon (``pystack run``) that place or turn off its control socket."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--control", metavar="PATH",
                   help="the control socket that pystack ss and pystack stats ask: a file's path, or @NAME for an "
                        "abstract one (default @pystack/TAP, scoped to the network namespace; root only)")
    g.add_argument("--no-control", action="store_true", help="no control socket")


def control_address(args: argparse.Namespace) -> str | None:
    """Where a command with :func:`add_daemon_flags` serves its control socket; None for no socket (or
    a command without those flags)."""
    from pystack.control.protocol import default_address

    if getattr(args, "no_control", True):
        return None
    return args.control or default_address(args.tap)


def serve_control(runtime: Runtime, tap: str, args: argparse.Namespace) -> ControlServer | None:
    """The daemon's control socket as its flags ask, or None; SetupError (one line) if it cannot listen."""
    from pystack.control.protocol import default_address
    from pystack.control.server import ControlError, ControlServer

    if args.no_control:
        return None
    try:
        return ControlServer(runtime, args.control or default_address(tap))
    except ControlError as exc:
        raise SetupError(str(exc)) from None


def _client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tap", "--tun", default="pst0", metavar="NAME",
                   help="the daemon's TAP or TUN device (default pst0)")
    p.add_argument("--control", metavar="PATH", help="its control socket, if not the default @pystack/TAP")
    p.add_argument("--json", action="store_true", help="the daemon's answer as JSON")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                   help="logging detail on stderr (default warning)")


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``pystack ss`` and ``pystack stats`` (run by :data:`COMMANDS`)."""
    ss = sub.add_parser(
        "ss", help="list a running daemon's sockets, like ss -tuni (root)",
        description="List the sockets of the pystack daemon running on --tap in this network namespace, as "
                    "ss(8) does: state, queues, local and peer address; -i adds TCP's internals.",
        epilog="example: pystack ss -ti --tap pst0")
    ss.add_argument("-t", "--tcp", action="store_true", help="TCP sockets")
    ss.add_argument("-u", "--udp", action="store_true", help="UDP sockets (neither -t nor -u: both)")
    ss.add_argument("-l", "--listening", action="store_true", help="listening (and unconnected UDP) sockets only")
    ss.add_argument("-a", "--all", action="store_true", help="listening and connected sockets")
    ss.add_argument("-i", "--info", action="store_true",
                    help="TCP internals: congestion control, wscale, rto, rtt (srtt/rttvar, ms), mss, cwnd and "
                         "ssthresh (segments), bytes acked and received, retransmissions, SACKed and lost bytes, "
                         "recovery state, send window, receive space")
    ss.add_argument("-n", "--numeric", action="store_true", help="port numbers, not service names")
    _client_flags(ss)

    stats = sub.add_parser(
        "stats", help="a running daemon's counters, or their change per second (root)",
        description="Print the counters of the pystack daemon running on --tap in this network namespace.",
        epilog="example: pystack stats --watch --tap pst0")
    stats.add_argument("--watch", action="store_true", help="print, every --interval, the counters that moved, per second")
    stats.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="with --watch (default 1)")
    stats.add_argument("--count", type=int, default=0, metavar="N", help="with --watch: stop after N reports (default: never)")
    _client_flags(stats)


def _address(args: argparse.Namespace) -> str:
    from pystack.control.protocol import default_address

    return args.control or default_address(args.tap)


def _ask(args: argparse.Namespace, command: str, **options: bool) -> dict:
    from pystack.control.client import ControlUnavailable, ask

    try:
        return ask(_address(args), command, **options)
    except ControlUnavailable as exc:
        raise CommandError(str(exc)) from None


def cmd_ss(args: argparse.Namespace) -> int:
    from pystack.control.render import ss_table

    reply = _ask(args, "ss", tcp=args.tcp, udp=args.udp, listening=args.listening, all=args.all, info=args.info)
    if args.json:
        json.dump(reply["sockets"], sys.stdout, indent=1)
        print()
    else:
        print(ss_table(reply["sockets"], numeric=args.numeric))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from pystack.control.render import counters_lines, delta_lines

    if not 0.05 <= args.interval <= 3600:
        raise SetupError(f"--interval must be between 0.05 and 3600 seconds, not {args.interval:g}")
    if args.count < 0:
        raise SetupError(f"--count must be 0 (never stop) or more, not {args.count}")
    reply = _ask(args, "stats")
    if not args.watch:
        if args.json:
            json.dump(reply["counters"], sys.stdout, indent=1)
            print()
        else:
            print(counters_lines(reply["counters"]))
        return 0
    reports = 0
    while not args.count or reports < args.count:
        time.sleep(args.interval)
        now = _ask(args, "stats")
        seconds = max(now["time"] - reply["time"], 1e-9)
        if args.json:
            print(json.dumps({"seconds": seconds, "per_second": {
                k: (v - reply["counters"].get(k, 0)) / seconds for k, v in now["counters"].items()
                if v != reply["counters"].get(k, 0)}}), flush=True)
        else:
            print(f"--- {seconds:.2f} s\n{delta_lines(reply['counters'], now['counters'], seconds)}", flush=True)
        reply = now
        reports += 1
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"ss": cmd_ss, "stats": cmd_stats}
