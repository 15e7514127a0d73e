"""The floor of the benchmark: the least a Python program can do to answer ping over a TAP.

A bare read/write loop that answers ARP requests and ICMP echo requests for one address (and, given
``--address6``, neighbour solicitations and ICMPv6 echo requests for an IPv6 one) by swapping fields in place
and writing the frame back. No parsing beyond fixed offsets, no validation, no state: whatever
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


def _sum16(data: bytes | bytearray) -> int:
    """RFC 1071's one's complement sum of 16-bit words, folded."""
    total = int.from_bytes(data + b"\0" * (len(data) & 1), "big")
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _neighbour_advertisement(f: bytearray, ip6: bytes, mac: bytes) -> bytes:
    """The solicited advertisement (RFC 4861 4.4: S and O set, our MAC as target link-layer option) answering
    the solicitation ``f``, to its sender, hop limit 255."""
    asker = bytes(f[22:38])
    body = bytearray(b"\x88\x00\x00\x00\x60\x00\x00\x00" + ip6 + b"\x02\x01" + mac)
    pseudo = ip6 + asker + len(body).to_bytes(4, "big") + b"\x00\x00\x00\x3a"
    body[2:4] = (~_sum16(pseudo + bytes(body)) & 0xFFFF).to_bytes(2, "big")
    header = b"\x60\x00\x00\x00" + len(body).to_bytes(2, "big") + b"\x3a\xff" + ip6 + asker
    return bytes(f[6:12]) + mac + b"\x86\xdd" + header + bytes(body)


def serve(fd: int, ip: bytes, mac: bytes, ip6: bytes | None = None) -> None:
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
        elif ethertype == b"\x86\xdd" and ip6 is not None and f[20] == 58 and len(f) >= 62:
            # ICMPv6 right after the IPv6 header: an echo request (128) to our address, or a neighbour
            # solicitation (135) for it from a unicast sender (RFC 4861 7.2.4).
            if f[54] == 128 and f[38:54] == ip6:
                f[0:6], f[6:12] = f[6:12], mac
                f[22:38], f[38:54] = f[38:54], f[22:38]  # the pseudo-header's sum is unchanged by a swap
                f[54] = 129
                # RFC 1624 incremental update: the type word went from 0x8000 to 0x8100.
                total = (~int.from_bytes(f[56:58], "big") & 0xFFFF) + 0x7FFF + 0x8100
                total = (total & 0xFFFF) + (total >> 16)
                total = (total & 0xFFFF) + (total >> 16)
                f[56:58] = (~total & 0xFFFF).to_bytes(2, "big")
                write(fd, f)
            elif f[54] == 135 and len(f) >= 78 and f[62:78] == ip6 and any(f[22:38]):
                write(fd, _neighbour_advertisement(f, ip6, mac))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tap", default="pst0")
    parser.add_argument("--address", default="192.0.2.2", help="the IPv4 address to answer for")
    parser.add_argument("--address6", help="an IPv6 address to answer for too (ping -6; no DAD, no router)")
    args = parser.parse_args()

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fd = open_tap(args.tap)
    mac = bytes([0x02]) + secrets.token_bytes(5)  # locally administered, unicast
    print(f"floor: ready on {args.tap} as {args.address}", file=sys.stderr, flush=True)
    try:
        serve(fd, socket.inet_aton(args.address), mac,
              None if args.address6 is None else socket.inet_pton(socket.AF_INET6, args.address6))
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
