"""Draw the pictures the README shows, from real traffic in a throwaway namespace:

  docs/pictures/time-sequence.svg  ``pystack plot`` of a 2 MiB download from pystack's HTTP server through
                                   3 % random loss each way (nftables), recorded with --pcap FILE.pcapng
                                   (plain frames, --no-offload, so that the loss is of wire segments);
  docs/pictures/ladder.svg         ``pystack fetch --ladder-svg`` of a page from the kernel's http.server.

Run as root: ``.venv/bin/python scripts/pictures.py`` (``--out DIR`` to draw elsewhere). Loss is random, so
every run draws a different graph.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pystack_lab import lab

REPO = Path(__file__).resolve().parent.parent
NFT_LOSS = """
table ip pictures {
    chain out {
        type filter hook output priority 0; policy accept;
        oifname "pst0" numgen random mod 100 < 3 drop
    }
    chain in {
        type filter hook prerouting priority 0; policy accept;
        iifname "pst0" numgen random mod 100 < 3 drop
    }
}
"""


def run(ns: lab.Namespace, argv: list[str], timeout: float = 120) -> None:
    proc = ns.run(argv, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"pictures: {' '.join(argv[:3])} failed: {proc.stderr.strip()}")


def time_sequence(out: Path, work: Path) -> None:
    www = work / "www"
    www.mkdir()
    (www / "file.bin").write_bytes(os.urandom(2 << 20))
    capture = work / "download.pcapng"
    with lab.namespace() as ns, lab.pystack_daemon(ns, "--http", str(www), "--pcap", str(capture), "--no-offload",
                                                  workdir=work):
        proc = ns.run(["nft", "-f", "-"], input=NFT_LOSS, timeout=15)
        if proc.returncode != 0:
            raise SystemExit(f"pictures: nft refused the loss rules: {proc.stderr.strip()}")
        run(ns, ["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", f"http://{lab.STACK_IP}/file.bin"])
    with lab.namespace() as ns:
        run(ns, [*lab.pystack_command(), "plot", str(capture), "--conn", "80", "-o", str(out / "time-sequence.svg")])


def ladder(out: Path, work: Path) -> None:
    (work / "index.html").write_bytes(b"<p>hello from the kernel</p>\n" * 200)
    with lab.namespace() as ns:
        server = ns.spawn([sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "--directory", str(work), "8000"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            probe = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.connect(("127.0.0.1", 8000))
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("pictures: http.server did not start") from None
                time.sleep(0.1)
            finally:
                probe.close()
        run(ns, [*lab.pystack_command(), "fetch", f"http://{lab.HOST_IP}:8000/index.html", "--tap", lab.TAP,
                 "--address", lab.STACK_ADDRESS, "--host-address", lab.HOST_ADDRESS, "--quiet", "-o", "/dev/null",
                 "--ladder-svg", str(out / "ladder.svg")])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "pictures", help="where (default %(default)s)")
    args = parser.parse_args()
    reason = lab.missing_prerequisites(("ip", "curl", "nft"))
    if reason:
        print(f"pictures: {reason}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pystack-pictures-") as tmp:
        work = Path(tmp)
        (work / "a").mkdir()
        (work / "b").mkdir()
        time_sequence(args.out, work / "a")
        ladder(args.out, work / "b")
    print(f"pictures: {args.out / 'time-sequence.svg'} and {args.out / 'ladder.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
