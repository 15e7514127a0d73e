"""The IP medium (pystack.medium): a link that carries bare IP packets, as a TUN does.

There is no link header and nothing to resolve: the device is point-to-point, so every packet written
reaches the peer, which routes it. :class:`IpLink` takes the place of the Ethernet link (the protocols
above and the one queue out, with nothing put around a payload); :class:`PointToPoint` takes ARP's (a
next hop needs no address, so nothing waits, nothing is asked and nothing is announced), as
pystack.iface.ip_link6's ``PointToPointNd`` takes neighbour discovery's for IPv6. IPv4, IPv6, ICMP,
ICMPv6, UDP and TCP run above them unchanged; the Ethernet medium's code and fast paths are not touched.
"""

from __future__ import annotations

import struct
from typing import Iterable

from pystack.iface.arp import Arp
from pystack.iface.ethernet import EthernetLink
from pystack.wire import ethernet
from pystack.wire import ipv4 as ipv4_wire
from pystack.wire.errors import WireError

NO_LINK_ADDRESS = b""
"""What :meth:`PointToPoint.resolve` answers for every next hop: resolved, with no address to write."""

_ETHERTYPE_OF_VERSION = {4: ethernet.ETHERTYPE_IPV4, 6: ethernet.ETHERTYPE_IPV6}
"""The IP version nibble of a packet, to the EtherType the layers above registered under."""
_IPV4_HEADER = struct.Struct("!BBHHHBBHII")


class IpLink(EthernetLink):
    """An :class:`EthernetLink`'s role on the IP medium: a packet's version says which protocol takes it
    (the layers register by EtherType, as on Ethernet), and what they send goes out as it is."""

    __slots__ = ()

    def receive(self, frame: bytes | memoryview, now: float) -> None:
        """Hand a packet to its protocol; raises WireError (counted by the caller) for the rest. A
        point-to-point medium has no link-layer broadcast: every packet came "to us" on the link."""
        if not len(frame):
            raise WireError("ip_link.empty")
        version = frame[0] >> 4
        receive = self.protocols.get(_ETHERTYPE_OF_VERSION.get(version, -1))
        if receive is None:
            raise WireError("ip_link.ipv6_unsupported" if version == 6 else "ip_link.bad_version")
        receive(memoryview(frame), True, now)

    def send(self, dst_mac: bytes, ethertype: int, payload: bytes | memoryview) -> None:
        """``payload`` alone: there is no header to put around it (``dst_mac`` and ``ethertype`` are moot)."""
        self.out.append(payload if type(payload) is bytes else bytes(payload))
        self.counters["frames_out"] += 1

    def send_all(self, dst_mac: bytes, ethertype: int, payloads: Iterable[bytes]) -> None:
        before = len(self.out)
        self.out.extend(payloads)
        self.counters["frames_out"] += len(self.out) - before


class PointToPoint(Arp):
    """ARP's place on the IP medium: every next hop is reachable as it is (:data:`NO_LINK_ADDRESS`), so
    no datagram is held, no request asked, no address announced. ``cache`` stays empty."""

    def resolve(self, next_hop: int, now: float) -> bytes:
        return NO_LINK_ADDRESS

    def hold(self, next_hop: int, packet: bytes, now: float) -> None:
        self.link.send(NO_LINK_ADDRESS, ethernet.ETHERTYPE_IPV4, packet)  # nothing to wait for

    def announce(self, now: float) -> None:
        """No announcement: there are no link addresses to tell (RFC 5227 is about ARP)."""

    def next_deadline(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> list[bytes]:
        return []


def packet_header(dst_mac: bytes, src_mac: bytes, tos: int, payload_len: int, ident: int, flags_offset: int,
                  ttl: int, protocol: int, src: int, dst: int) -> bytes:
    """:func:`pystack.wire.ipv4.frame_header` on the IP medium: the option-less IPv4 header alone (the
    MACs are moot), so IPv4's send path packs each datagram the same way on both media."""
    total = ipv4_wire.MIN_HEADER_LEN + payload_len
    return _IPV4_HEADER.pack(0x45, tos, total, ident, flags_offset, ttl, protocol,
                             ipv4_wire.header_checksum(tos, total, ident, flags_offset, ttl, protocol, src, dst),
                             src, dst)
