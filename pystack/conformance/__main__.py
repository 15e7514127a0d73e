"""``python -m pystack.conformance [--profile linux|rfc] [--ip_version ipv4|ipv6|ipv4-mapped-ipv6] [--ignore-window]
[--ignore-option-order] [PATH...]``

Runs packetdrill scripts (files, or directories searched for ``*.pkt``; by default the corpus's TCP scripts,
see :func:`pystack.conformance.runner.default_corpus`) against pystack's sans-I/O core:
one verdict line per script, then ``N passed, N failed, N skipped``. The exit status is 0 when the run
itself worked, whatever the verdicts; 2 for bad arguments (a path that does not exist).
"""

from __future__ import annotations

import argparse
import sys

from pystack.conformance.runner import CORPUS_ENV, corpus_tcp_scripts, run_paths
from pystack.conformance.driver import Settings
from pystack.conformance.packets import FAMILIES
from pystack.conformance.profiles import PROFILES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pystack.conformance",
                                     description="Run packetdrill scripts against pystack's TCP.")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="a .pkt script or a directory of them (default: the corpus's gtests/net/tcp)")
    parser.add_argument("--profile", choices=PROFILES, default="linux",
                        help="choices the RFCs leave open: as Linux makes them, or pystack's own (default linux)")
    parser.add_argument("--ip_version", choices=FAMILIES, default=None,
                        help="run every script over this IP version, whatever it says itself (as packetdrill's "
                             "flag; default: each script's own, else ipv4)")
    parser.add_argument("--ignore-window", action="store_true",
                        help="do not compare the window of outbound packets")
    parser.add_argument("--ignore-option-order", action="store_true",
                        help="compare outbound TCP options as a set, not in order")
    parser.add_argument("--check-push", action="store_true",
                        help="compare PSH as well (RFC 9293 leaves it to the implementation)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print each script's timeline: its events and the segments pystack sent")
    args = parser.parse_args(argv)
    paths = args.paths
    if not paths:
        corpus = corpus_tcp_scripts()
        if not corpus.is_dir():
            print(f"no packetdrill corpus at {corpus} (set ${CORPUS_ENV} or give a PATH): nothing to run")
            return 0
        paths = [str(corpus)]
    settings = Settings(args.profile, args.ignore_window, args.ignore_option_order, args.check_push, args.ip_version)
    try:
        summary = run_paths(paths, settings, sys.stdout, quiet=args.quiet, verbose=args.verbose)
    except FileNotFoundError as exc:
        print(f"python -m pystack.conformance: {exc}", file=sys.stderr)
        return 2
    print(summary.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
