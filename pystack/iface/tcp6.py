"""TCP's ways in and out over IPv6, as pystack.iface.tcp's over IPv4: its emit port (segments, and GSO
frames the link cuts), the one-pack path for a burst of segments (pystack.ip.tcp_path.TcpPath6), and the
direct receive path for plain segments. The last two, and the emit port's short way for a segment that
fits, are fast paths: they make the same frames and counts as the layered way (pystack.iface.ipv6)."""

from __future__ import annotations

import random

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.iface.ethernet import EthernetLink
from pystack.iface.icmpv6 import IPV6_EXTRA_HEADER
from pystack.iface.ipv6 import Ipv6
from pystack.iface.ndisc import Ndisc
from pystack.ip.tcp_path import TcpPath6
from pystack.medium import Medium
from pystack.tcp.layer import TcpLayer
from pystack.wire import ethernet
from pystack.wire import ipv6 as ipv6_wire

_ETHERTYPE_IPV6 = ethernet.ETHERTYPE_IPV6.to_bytes(2, "big")


class Tcp6Glue:
    """One TcpLayer (``tcp``) attached to IPv6. ``fast``: take the fast paths (StackConfig.fast_paths)."""

    def __init__(self, config: StackConfig, counters: Counters, link: EthernetLink, ipv6: Ipv6, nd: Ndisc,
                 rng: random.Random, fast: bool) -> None:
        self.config = config
        self.counters = counters
        self.link = link
        self.ipv6 = ipv6
        self.nd = nd
        self._addresses = nd.addresses.table
        # Its MTU counts the IPv6 header's 20 bytes beyond IPv4's, so its MSS is MTU - 60.
        self.tcp = TcpLayer(config.tcp, counters, self.emit, mtu=config.mtu - IPV6_EXTRA_HEADER, rng=rng,
                            ephemeral=config.ephemeral_ports)
        self.tcp.fast_paths = fast  # header prediction
        self.fast = fast = fast and config.medium is Medium.ETHERNET  # the fast paths build Ethernet frames
        if fast:
            self.tcp.segment_path = self.path
        self.tcp.confirm = nd.confirm  # RFC 4861 7.3.1, the same on both paths

    def emit(self, src: int, dst: int, segment_bytes: bytes, now: float, gso_size: int = 0) -> None:
        """TCP's way out, at the time of the segment, timer or user call that sends it. Routing errors are
        counted, not raised: TCP retransmits on its own timers."""
        try:
            if gso_size:
                self.ipv6.send_gso(src, dst, segment_bytes, now, gso_size)
                return
            length = len(segment_bytes)
            if self.fast and (way := self.ipv6.way(dst, now)) is not None and ipv6_wire.HEADER_LEN + length <= way.mtu:
                # What Ipv6.send would put out, without its checks (TCP's source is ours, dst unicast).
                self.link.send_frame(b"".join((way.mac, self.link.mac, _ETHERTYPE_IPV6, ipv6_wire.build_header(
                    src, dst, ipv6_wire.NH_TCP, length, hop_limit=way.hop_limit), segment_bytes)))
                return
            self.ipv6.send(dst, ipv6_wire.NH_TCP, segment_bytes, now, src=src)
        except OSError:
            self.counters.drop("tcp.unroutable")

    def path(self, src: int, dst: int, sport: int, dport: int, now: float) -> TcpPath6 | None:
        """A one-pack path for a burst of TCP segments to ``dst`` (pystack.ip.tcp_path), or None when each
        segment must take the layered way: to our own address, no route, a neighbour to resolve, or a
        path MTU (a router's advertisement, a Packet Too Big) below the link's that TCP's segments may pass."""
        way = self.ipv6.way(dst, now)
        if way is None or way.mtu < self.config.mtu:
            return None
        return TcpPath6(self.link.out, self.counters, way.mac, self.link.mac, src, dst, sport, dport, way.hop_limit)

    def receive_frame(self, frame: bytes | memoryview, now: float, checksum_trusted: bool) -> bool:
        """:meth:`receive_direct` for a whole Ethernet frame, before the link's dispatch (which costs an IPv6
        segment about a microsecond that IPv4's skips): EtherType IPv6, to our MAC from a unicast one, a packet
        of at least 40 bytes with Next Header 6, as EthernetLink.receive and Stack._receive6_fast check them.
        False for anything else, which then takes the link's way."""
        if (len(frame) < 62 or frame[20] != 6 or frame[12:14] != _ETHERTYPE_IPV6 or frame[:6] != self.link.mac
                or frame[6] & 1):
            return False
        return self.receive_direct(memoryview(frame)[14:], now, checksum_trusted)

    def receive_direct(self, p: memoryview, now: float, checksum_trusted: bool) -> bool:
        """TCP's way in for the plain case: ``p``, an IPv6 packet of at least 40 bytes with Next Header 6 in
        a frame to our MAC, handed to TCP without the IPv6 parse objects and the header chain's walk.

        Every segment of a transfer takes this path, so it is checked with builtins, as fully as the
        layered path checks it (version 6, Payload Length within the packet, a source neither multicast,
        unspecified nor loopback, a destination we have and may use). Anything else returns False and the
        layered path takes the packet, counting what it drops. The twin tests
        (tests/unit/stack/test_fast_paths.py) feed the same frames to both paths and compare what comes out.
        """
        end = 40 + ((p[4] << 8) | p[5])
        if p[0] >> 4 != 6 or end > len(p):
            return False
        src = int.from_bytes(p[8:24], "big")
        dst = int.from_bytes(p[24:40], "big")
        if src >> 120 == 0xFF or src <= 1 or dst == 1:
            return False
        ours = self._addresses.get(dst)
        if ours is None or not ours.usable:
            return False
        self.tcp.receive(src, dst, p[40:end], now, checksum_trusted)
        return True
