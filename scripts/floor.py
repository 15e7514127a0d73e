"""The floor of the benchmark: the least a Python program can do to answer ping over a TAP.

A bare read/write loop that answers ARP requests and ICMP echo requests for one address by swapping fields
in place and writing the frame back. No parsing beyond fixed offsets, no validation, no state: whatever
pystack costs above this is the price of being a real stack, and the kernel's figures are the ceiling.
It knows nothing of pystack and shares no code with it.

Run it inside a namespace: ``ip netns exec NS python scripts/floor.py --tap pst0 --address 192.0.2.2``.
It prints ``ready`` on stderr once the TAP is open; the caller configures the kernel side of the TAP.
SIGTERM or SIGINT stops it with status 0.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import secrets
import signal
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def serve(fd: int, ip: bytes, mac: bytes) -> None:
    read, write = os.read, os.write
    while True:
        f = bytearray(read(fd, 65536))
        ethertype = f[12:14]
        if ethertype == b"\x08\x06":
            # ARP request (RFC 826, op 1) for our address: turn it into the reply in place.
            if f[20:22] == b"\x00\x01" and f[38:42] == ip:
                sender = f[22:32]
                f[0:6] = f[6:12]
                f[6:12] = mac
                f[21] = 2
                f[22:28] = mac
                f[28:32] = ip
                f[32:42] = sender
                write(fd, f)
        elif ethertype == b"\x08\x00":
            ihl = (f[14] & 0x0F) * 4
            icmp = 14 + ihl
            # ICMP (protocol 1) echo request (type 8) to our address, not a fragment.
            if f[23] == 1 and f[30:34] == ip and f[icmp] == 8 and not (f[20] & 0x3F or f[21]):
                f[0:6], f[6:12] = f[6:12], mac
                f[26:30], f[30:34] = f[30:34], f[26:30]  # the header checksum is unchanged by a swap
                f[icmp] = 0
                # RFC 1624 incremental update: the type word went from 0x0800 to 0x0000.
                csum = int.from_bytes(f[icmp + 2:icmp + 4], "big") + 0x0800
                csum = (csum & 0xFFFF) + (csum >> 16)
                f[icmp + 2:icmp + 4] = csum.to_bytes(2, "big")
                write(fd, f)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tap", default="pst0")
    parser.add_argument("--address", default="192.0.2.2", help="the IPv4 address to answer for")
    args = parser.parse_args()

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fd = open_tap(args.tap)
    mac = bytes([0x02]) + secrets.token_bytes(5)  # locally administered, unicast
    print(f"floor: ready on {args.tap} as {args.address}", file=sys.stderr, flush=True)
    try:
        serve(fd, socket.inet_aton(args.address), mac)
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
