"""``pystack replay FILE``, and the daemon's ``--record FILE`` and ``--trace FILE.jsonl`` flags."""

from __future__ import annotations

import argparse
import sys
from typing import Callable


DEFAULT_LIMIT_MIB = 4096


def _mib(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of MiB: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 MiB, not {value}")
    return value


def add_daemon_flags(p: argparse.ArgumentParser) -> None:
    """``--trace`` and ``--record`` of ``pystack run``."""
    p.add_argument("--trace", metavar="FILE.jsonl",
                   help="write TCP's connection events to FILE, one JSON object a line in the spirit of qlog: "
                        "state changes, congestion events, losses found (and the rule that found them), RTOs "
                        "fired, the peer's window changing")
    p.add_argument("--record", metavar="FILE",
                   help="record everything that enters pystack's core (frames with their times, timer firings, "
                        "the RNG seed, what the services hand to TCP) and every frame it sends, to FILE: "
                        "pystack replay FILE runs the same core again and checks each frame (with --address; "
                        "the file grows with the traffic, about twice what pystack sends)")
    p.add_argument("--record-limit", type=_mib, default=DEFAULT_LIMIT_MIB, metavar="MIB",
                   help="stop recording when the file would pass MIB mebibytes; the replay then compares up to "
                        "there (default %(default)s)")


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``pystack replay`` (run by :data:`COMMANDS`)."""
    p = sub.add_parser(
        "replay", help="run a recording (pystack run --record) again and check every frame is the same",
        description="Run pystack's core again, on a fake clock, from a recording made with pystack run --record: "
                    "the same frames in at the same times, the same timers, the same random numbers, the same "
                    "answers from the services. Every frame it sends must be the recorded one, byte for byte. "
                    "Prints 'replayed N frames, identical' (exit status 0), or where it first diverged: the "
                    "frame's number and time, the expected and the actual frame decoded (exit status 1). No "
                    "root, no TAP: it runs anywhere.",
        epilog="example: pystack run ... --record run.rec, then: pystack replay run.rec\n"
               "         git bisect run pystack replay run.rec   (the first commit that sends otherwise)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recording", metavar="FILE", help="a recording made with pystack run --record FILE")
    p.add_argument("--trace", metavar="FILE.jsonl",
                   help="also write the replayed connections' events to FILE, as pystack run --trace does (on the "
                        "recording's clock), from a run that was not traced")
    p.add_argument("--pcap", metavar="FILE",
                   help="also write the frames in and out to FILE as pystack run --pcap does, at the recorded "
                        "times: a FILE ending in .pcapng tells why each frame was sent (up to a divergence)")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                   help="logging detail on stderr (default warning)")


def cmd_replay(args: argparse.Namespace) -> int:
    from pystack.replay.replay import replay

    result = replay(args.recording, trace=args.trace, pcap=args.pcap)  # RecordingError, TraceError: one line, status 2
    if result.unknown_settings:
        print(f"pystack replay: settings this pystack does not have were skipped: {', '.join(result.unknown_settings)}",
              file=sys.stderr)
    if result.cut_short:
        print("pystack replay: the recording ends without its clean shutdown (the daemon was killed?): "
              "compared up to its last whole record", file=sys.stderr)
    print(result.summary())
    return 0 if result.identical else 1


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"replay": cmd_replay}
