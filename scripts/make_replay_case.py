"""Make the recording tests/unit/replay/test_regression_case.py replays: real traffic in a throwaway namespace.

The daemon (IPv4 only, plain 1500-byte frames) serves a 96 KiB text file over HTTP and answers two pings;
the kernel's curl downloads the file through 8 % random loss each way (nftables), and the run is recorded
with --record. Loss is random, so the script keeps the first run whose download needed both a fast
retransmission and a timeout, and writes it gzipped (text compresses to a few tens of KiB).

Run as root when a change to what pystack sends is meant (the regression case then fails, as it should):
``.venv/bin/python scripts/make_replay_case.py`` (``--out FILE`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
from pathlib import Path

from pystack_lab import lab

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "unit" / "replay" / "data" / "lossy_download.rec.gz"
NFT_LOSS = """
table ip replaycase {
    chain out {
        type filter hook output priority 0; policy accept;
        oifname "pst0" numgen random mod 100 < 8 drop
    }
    chain in {
        type filter hook prerouting priority 0; policy accept;
        iifname "pst0" numgen random mod 100 < 8 drop
    }
}
"""
TRIES = 20


def one_run(work: Path) -> tuple[Path, dict[str, int]]:
    www = work / "www"
    www.mkdir(exist_ok=True)
    text = "".join(f"line {i}: pystack replays what it recorded, frame for frame.\n" for i in range(1800))
    (www / "file.txt").write_text(text[: 96 * 1024])
    recording = work / "run.rec"
    with lab.namespace() as ns:
        with lab.pystack_daemon(ns, "--http", str(www), "--no-offload", "--no-ipv6", "--record", str(recording),
                                workdir=work) as daemon:
            ping = lab.ping(ns, lab.STACK_IP, count=2, interval=0.2)
            if ping["received"] != 2:
                raise SystemExit(f"make_replay_case: ping failed: {ping['output']}")
            proc = ns.run(["nft", "-f", "-"], input=NFT_LOSS, timeout=15)
            if proc.returncode != 0:
                raise SystemExit(f"make_replay_case: nft refused the loss rules: {proc.stderr.strip()}")
            got = ns.run(["curl", "-sS", "--noproxy", "*", "--max-time", "120", f"http://{lab.STACK_IP}/file.txt"],
                         timeout=150)
            if got.returncode != 0 or got.stdout != text[: 96 * 1024]:
                raise SystemExit(f"make_replay_case: the download failed: {got.stderr.strip()}")
            counters = daemon.stop()
    return recording, counters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for attempt in range(1, TRIES + 1):
        with tempfile.TemporaryDirectory(prefix="replaycase-") as tmp:
            recording, counters = one_run(Path(tmp))
            if counters.get("tcp.fast_retransmits", 0) and counters.get("tcp.timeouts", 0):
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_bytes(gzip.compress(recording.read_bytes(), 9, mtime=0))
                wanted = {k: counters.get(k, 0) for k in ("tcp.retransmits", "tcp.fast_retransmits", "tcp.timeouts")}
                print(f"make_replay_case: run {attempt}: {json.dumps(wanted)} -> {args.out} "
                      f"({args.out.stat().st_size} bytes)")
                return 0
    raise SystemExit(f"make_replay_case: no run of {TRIES} lost enough to need both ways of recovery")


if __name__ == "__main__":
    raise SystemExit(main())
