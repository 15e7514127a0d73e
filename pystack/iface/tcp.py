"""TCP's ways in and out of the interface: its emit port (segments, and GSO frames the link cuts), the
one-pack path for a burst of segments (pystack.ip.tcp_path), and the direct receive path for plain
segments. The last two are fast paths: they make the same frames and counts as the layered way."""

from __future__ import annotations

import random

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.iface.ethernet import EthernetLink
from pystack.iface.ipv4 import Ipv4
from pystack.iface.ipv4_address import is_martian_source
from pystack.iface.transport import Transports
from pystack.ip.tcp_path import TcpPath
from pystack.medium import Medium
from pystack.tcp.layer import TcpLayer
from pystack.wire import ipv4 as ipv4_wire
from pystack.wire.gso import GsoFrame, segment

_ZERO_MAC = b"\x00" * 6


class TcpGlue:
    """One TcpLayer (``tcp``) attached to IPv4. ``fast``: take the fast paths (StackConfig.fast_paths)."""

    def __init__(self, config: StackConfig, counters: Counters, link: EthernetLink, ipv4: Ipv4,
                 transports: Transports, rng: random.Random, fast: bool) -> None:
        self.config = config
        self.counters = counters
        self.link = link
        self.ipv4 = ipv4
        self.transports = transports
        self.fast = fast
        self._addr = ipv4.addr
        self._layers = transports.layers
        self.tcp = TcpLayer(config.tcp, counters, self.emit, mtu=config.mtu, rng=rng,
                            ephemeral=config.ephemeral_ports)
        self.tcp.fast_paths = fast  # header prediction
        if fast and config.medium is Medium.ETHERNET:  # TcpPath, send_gso and receive_direct are Ethernet's
            self.tcp.segment_path = self.path
        self.tcp.confirm = ipv4.confirm  # the same on both paths
        transports.attach(ipv4_wire.PROTO_TCP, self.tcp)

    def emit(self, src: int, dst: int, segment_bytes: bytes, now: float, gso_size: int = 0) -> None:
        """TCP's way out, at the time of the segment, timer or user call that sends it. Routing errors are
        counted, not raised: TCP retransmits on its own timers."""
        try:
            if gso_size:
                self.send_gso(dst, segment_bytes, now, src, gso_size)
            elif (self.fast and len(segment_bytes) + ipv4_wire.MIN_HEADER_LEN <= self.config.mtu
                  and dst != self.ipv4.addr.address):
                self.ipv4.send_datagram(src, dst, ipv4_wire.PROTO_TCP, segment_bytes, now, self.config.default_ttl,
                                        0, ipv4_wire.FLAG_DF)  # what send would do, without its checks
            else:
                self.ipv4.send(dst, ipv4_wire.PROTO_TCP, segment_bytes, now, src=src, dont_fragment=True)
        except OSError:
            self.counters.drop("tcp.unroutable")

    def send_gso(self, dst: int, segment_bytes: bytes | memoryview, now: float, src: int, gso_size: int) -> None:
        """A TCP segment larger than the MTU, for the link to cut into ``gso_size``-byte pieces
        (segmentation offload): one GsoFrame, or real wire segments held while ARP resolves."""
        next_hop, mac = self.ipv4.neighbour(dst, now)
        head = self.ipv4.frame_header(mac or _ZERO_MAC, self.link.mac, 0, len(segment_bytes), self.ipv4.next_ident(),
                                      ipv4_wire.FLAG_DF, self.config.default_ttl, ipv4_wire.PROTO_TCP, src, dst)
        if mac is None:
            # Rare, and Ethernet's only: the neighbour is not resolved. Hold real wire segments; ARP's queue
            # keeps plain datagrams.
            for piece in segment(head + segment_bytes, gso_size):
                self.ipv4.arp.hold(next_hop, piece[14:], now)
            return
        self.link.send_frame(GsoFrame(head + segment_bytes, gso_size))
        self.counters["gso_frames_out"] += 1

    def path(self, src: int, dst: int, sport: int, dport: int, now: float) -> TcpPath | None:
        """A one-pack path for a burst of TCP segments to ``dst`` (pystack.ip.tcp_path), or None when each
        segment must take the layered way: to our own address, no route, or a neighbour ARP has not
        resolved (the layered path holds the segment behind ARP and counts what it cannot route)."""
        if dst == self.ipv4.addr.address:
            return None
        try:
            _next_hop, mac = self.ipv4.neighbour(dst, now)
        except OSError:
            return None
        if mac is None:
            return None
        return TcpPath(self.link.out, self.counters, self.ipv4.next_ident, mac, self.link.mac, src, dst, sport, dport,
                       self.config.default_ttl)

    def receive_direct(self, frame: bytes | memoryview, now: float, checksum_trusted: bool) -> bool:
        """TCP's way in for the plain case: a unicast IPv4 datagram to us, no options, not a fragment,
        its header checksum right, handed to TCP without the Ethernet and IPv4 parse objects.

        Every segment of a transfer and each of the five or so of a short connection takes this path,
        so it is checked with builtins (and the one martian-source rule), as fully as the layered path
        checks it (frame to our MAC from a unicast source, version 4 with a 20-byte header, total length
        within the frame, RFC 791 checksum, reserved flag clear, source not martian). Anything else
        returns False and the layered path takes the frame, counting what it drops. The twin tests
        (tests/unit/stack/test_fast_paths.py) feed the same frames to both paths and compare what comes
        out.
        """
        us = self._addr.address
        if (frame[12:14] != b"\x08\x00" or frame[14] != 0x45 or frame[0:6] != self.link.mac or frame[6] & 1
                or frame[20] & 0xBF or frame[21] or us is None):  # options, reserved flag, MF, offset
            return False
        total = (frame[16] << 8) | frame[17]
        if total < 40 or total + 14 > len(frame) or int.from_bytes(frame[30:34], "big") != us:
            return False
        src = int.from_bytes(frame[26:30], "big")
        if is_martian_source(src):
            return False
        # A header with 0x45 first never sums to zero, so it verifies iff its sum is 0 mod 0xFFFF.
        if int.from_bytes(frame[14:34], "big") % 0xFFFF or self._layers.get(6) is not self.tcp:
            return False
        self.tcp.receive(src, us, memoryview(frame)[34:14 + total], now, checksum_trusted)
        return True
