"""``make demo``: watch the Linux kernel talk to pystack, in plain words.

Builds a throwaway network namespace, starts pystack there on a TAP (recording a pcap), lets the kernel's
own ``ping`` reach it at 56, 1472 and 4000 bytes (the last one fragmented both ways), sends a UDP datagram
to pystack's echo service, downloads a file from pystack's HTTP server with ``curl`` and uploads one to
it (both checked by SHA-256), prints pystack's counters, and removes the namespace. Exit status 0 only
when every ping, the echo and both transfers came back right.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import socket
import sys
import time
from pathlib import Path

from pystack_lab import lab


PING_SIZES = ((56, "the default size"), (1472, "exactly one full Ethernet frame"),
              (4000, "too big for one frame: fragmented by the kernel, reassembled and re-fragmented by pystack"))


def say(text: str) -> None:
    print(text, flush=True)


def udp_echo(ns: lab.Namespace, message: bytes) -> bytes | None:
    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(2.0)
        sock.sendto(message, (lab.STACK_IP, 7))
        data, _ = sock.recvfrom(65535)
        return data
    except OSError:  # timeout or refused
        return None
    finally:
        sock.close()


def curl_transfers(ns: lab.Namespace, www: Path) -> bool:
    """Download a file from pystack's HTTP server and upload one to POST /sha256, both checked by SHA-256."""
    ok = True
    body = (www / "demo.bin").read_bytes()
    want = hashlib.sha256(body).hexdigest()
    got_path = www.parent / "downloaded.bin"
    r = ns.run(["curl", "-s", "-o", str(got_path), "-w", "%{http_code} %{speed_download}",
                f"http://{lab.STACK_IP}/demo.bin"], timeout=60)
    status, _, speed = r.stdout.partition(" ")
    same = got_path.exists() and hashlib.sha256(got_path.read_bytes()).hexdigest() == want
    say(f"   download of {len(body) >> 20} MiB: HTTP {status or '?'}, "
        f"{float(speed or 0) / 1e6:.1f} MB/s, SHA-256 {'matches' if same else 'DOES NOT MATCH'}.")
    ok &= same
    r = ns.run(["curl", "-s", "--data-binary", f"@{www / 'demo.bin'}", "-w", " %{speed_upload}",
                f"http://{lab.STACK_IP}/sha256"], timeout=60)
    answer, _, speed = r.stdout.strip().rpartition(" ")
    same = answer.strip() == want
    say(f"   upload of the same {len(body) >> 20} MiB to /sha256: {float(speed or 0) / 1e6:.1f} MB/s, pystack "
        f"hashed it to {answer.strip()[:16]}..., {'the same as ours' if same else 'NOT OURS: ' + want[:16]}.")
    return ok and same


def show_pcap(ns: lab.Namespace, pcap: Path, lines: int = 8) -> None:
    if shutil.which("tcpdump") is None or not pcap.exists():
        return
    out = ns.run(["tcpdump", "-nn", "-r", str(pcap)], timeout=20).stdout.splitlines()
    say(f"   tcpdump, reading {pcap.name} on its own, saw {len(out)} frames; the first {min(lines, len(out))}:")
    for line in out[:lines]:
        say(f"     {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcap", type=Path, default=Path("demo.pcap"), help="where to record pystack's frames")
    parser.add_argument("--count", type=int, default=3, help="pings per size")
    args = parser.parse_args()
    reason = lab.missing_prerequisites(("ip", "ping"))
    if reason:
        print(f"demo: {reason}", file=sys.stderr)
        return 2
    pcap = args.pcap.resolve()
    ok = True
    say("pystack demo: a userspace TCP/IP stack in Python, checked by the Linux kernel on the other side of a TAP.\n")
    www = Path(tempfile.mkdtemp(prefix="pystack-demo-")) / "www"
    www.mkdir()
    (www / "demo.bin").write_bytes(os.urandom(8 << 20))
    with lab.namespace() as ns:
        say(f"1. Made a private network namespace, {ns.name}; nothing here can reach any real network.")
        say(f"2. Starting pystack on TAP {lab.TAP} as {lab.STACK_IP}; the kernel's end of the TAP is {lab.HOST_IP}.")
        started = time.monotonic()
        with lab.pystack_daemon(ns, "--echo", "--http", str(www), "--pcap", str(pcap)) as daemon:
            say(f"   pystack (pid {daemon.pid}) is ready after {time.monotonic() - started:.1f} s.")
            say(f"3. The kernel's ping sends {args.count} echo requests of each size to pystack:")
            for size, what in PING_SIZES:
                r = lab.ping(ns, lab.STACK_IP, count=args.count, size=size, interval=0.2)
                got = r["received"]
                rtt = f", round trip median {sorted(r['rtts'])[len(r['rtts']) // 2]:.2f} ms" if r["rtts"] else ""
                verdict = "all came back" if got == args.count else "SOME WERE LOST"
                say(f"   {size:>5} bytes ({what}): {got}/{args.count} replies, {verdict}{rtt}.")
                ok &= got == args.count
            message = b"hello pystack, this is the kernel"
            say(f"4. A kernel UDP socket sends {message.decode()!r} to pystack's echo service, {lab.STACK_IP}:7:")
            reply = udp_echo(ns, message)
            if reply == message:
                say("   the same bytes came back.")
            else:
                say(f"   NO ECHO (got {reply!r}).")
                ok = False
            if shutil.which("curl"):
                say("5. The kernel's curl talks TCP to pystack's HTTP server:")
                ok &= curl_transfers(ns, www)
            say("6. Stopping pystack with SIGTERM. Its counters (frames in and out, and every drop by reason):")
            counters = daemon.stop()
        for key, value in sorted(counters.items()):
            say(f"     {key:<40} {value}")
        if not counters:
            say("     (it wrote no counters)")
        if daemon.returncode != 0:
            say(f"   pystack exited with status {daemon.returncode}:\n{daemon.stderr()}")
            ok = False
        say(f"7. pystack recorded every frame it saw and sent in {pcap}.")
        show_pcap(ns, pcap)
    shutil.rmtree(www.parent, ignore_errors=True)
    say(f"8. Removed the namespace {ns.name}.")
    say("\nDemo " + ("passed: the kernel got every reply and every byte." if ok else "FAILED: see above."))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
