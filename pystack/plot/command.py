"""``pystack plot CAPTURE -o FILE.svg``: the time-sequence graph of a connection in a capture."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from pystack.errors import CommandError, SetupError


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``pystack plot`` (run by :data:`COMMANDS`)."""
    plot = sub.add_parser(
        "plot", help="draw a TCP connection of a capture as a time-sequence graph (SVG)",
        description="Draw the time-sequence (Stevens) graph of a TCP connection in a pcap or pcapng capture: "
                    "data segments (retransmissions in red), the ACK line, the receive window's edge and SACK "
                    "blocks; with a .pcapng capture of pystack's, cwnd and ssthresh over time below it.",
        epilog="example: pystack run ... --pcap run.pcapng, then: pystack plot run.pcapng --conn 80 -o run.svg")
    plot.add_argument("capture", metavar="CAPTURE", help="a .pcap or .pcapng file (pystack --pcap, tcpdump -w)")
    plot.add_argument("--conn", metavar="ADDR:PORT|PORT|ADDR",
                      help="the connection to draw, by an address, a port or both of either end "
                           "(default: the one that carried the most data); its busier direction is drawn")
    plot.add_argument("-o", "--output", required=True, metavar="FILE.svg", help="where to write the SVG")
    plot.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                      help="logging detail on stderr (default warning)")


def cmd_plot(args: argparse.Namespace) -> int:
    from pystack.plot.capture import CaptureError, read_capture
    from pystack.plot.tcpseries import series
    from pystack.plot.timeseq import render

    try:
        out = open(args.output, "w", encoding="utf-8")
    except OSError as exc:
        raise SetupError(f"cannot write {args.output}: {exc.strerror}") from None
    with out:
        try:
            s = series(lambda: read_capture(args.capture), args.conn)
        except CaptureError as exc:
            raise SetupError(str(exc)) from None
        except ValueError as exc:
            raise CommandError(f"{args.capture}: {exc}") from None
        out.write(render(s))
    rexmit = sum(g.retransmission for g in s.segments)
    print(f"pystack plot: {s.title}: {len(s.segments)} data segments ({rexmit} retransmissions), "
          f"{len(s.acks)} ACKs{', cwnd from comments' if s.cwnd else ''} -> {args.output}", file=sys.stderr)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"plot": cmd_plot}
