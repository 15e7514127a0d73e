"""Watching the wire for the narration: a link wrapper that sees every frame both ways, and a decoder that
turns frames into narrated steps and ladder arrows.

:class:`ObservedLink` wraps the TAP link handed to the Runtime (which takes any object with
``fd``/``read``/``write``/``close``), so the stack itself needs no hook. The Runtime reads and writes
under its lock, so the watcher's calls are already serialised.

:class:`WireNarration` tells DHCP, ARP, DNS, ICMP and TCP, and on IPv6 neighbour discovery (router
solicitations and advertisements, DAD probes, neighbour solicitations and advertisements: IPv6's ARP),
MLD reports, ICMPv6, UDP and TCP the same way. For TCP it narrates what the reader of a
capture looks for -- the handshake, the first data segment each way, FINs, RSTs and the ACKs of FINs --
and counts the rest (data and pure ACKs), which it summarises in one line before the next narrated
segment. Sequence numbers are absolute in SYNs and relative to the ISNs after, as tcpdump prints them.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pystack.medium import Medium
from pystack.tools.narrator import BROADCAST, MULTICAST, US, Narrator, endpoint, ip, ip6
from pystack.wire import WireError
from pystack.wire import arp as arp_wire
from pystack.wire import dhcp as dhcp_wire
from pystack.wire import dhcp6 as dhcp6_wire
from pystack.wire import dns as dns_wire
from pystack.wire import ethernet
from pystack.wire import icmp as icmp_wire
from pystack.wire import icmpv6 as icmpv6_wire
from pystack.wire import ipv4, ipv6
from pystack.wire import tcp as tcp_wire
from pystack.wire import udp as udp_wire

log = logging.getLogger("pystack")

OUT = "out"
IN = "in"
_ARROW = {OUT: "->", IN: "<-"}
_LIMITED_BROADCAST = 0xFFFFFFFF
_MASK32 = 0xFFFFFFFF


class ObservedLink:
    """A Link that reports each frame read and each frame written (after the kernel took it).

    ``settle`` runs before every read and every write: by then the Runtime has handled the previous
    frame (or a socket call has changed a connection), so a watcher can report what changed -- a TCP
    state -- before the next frame is told, in the order it happened.
    """

    def __init__(self, link: Any, on_frame: Callable[[str, bytes], None],
                 settle: Callable[[], None] | None = None) -> None:
        self.inner = link
        self.fd = link.fd
        self.on_frame = on_frame
        self.settle = settle
        self._failed = False

    def __getattr__(self, name: str) -> Any:  # name, kernel_mac, ... of the wrapped link
        return getattr(self.inner, name)

    def read(self) -> bytes | None:
        self._safely(self.settle)
        frame = self.inner.read()
        if frame is not None:
            self._safely(self.on_frame, IN, frame)
        return frame

    def write(self, frame: bytes) -> bool:
        self._safely(self.settle)
        ok = self.inner.write(frame)
        if ok:
            self._safely(self.on_frame, OUT, frame)
        return ok

    def close(self) -> None:
        self.inner.close()

    def _safely(self, fn: Callable[..., None] | None, *args: Any) -> None:
        """The narration must never stop the stack: a bug in it is logged once and narration goes on."""
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:
            if not self._failed:
                self._failed = True
                log.exception("internal error in the narration (please report it)")


class StateWatcher:
    """Reports the RFC 9293 state changes of the connections it was given, as they happen."""

    def __init__(self, narrator: Narrator) -> None:
        self.narrator = narrator
        self._watched: list[tuple[str, Callable[[], Any], list[Any]]] = []

    def watch(self, label: str, state: Callable[[], Any]) -> None:
        self._watched.append((label, state, [state()]))

    def check(self, _now: float | None = None) -> None:
        for label, state, last in self._watched:
            now_state = state()
            if now_state != last[0]:
                self.narrator.say(f"   {label}: {_state_name(last[0])} -> {_state_name(now_state)}")
                last[0] = now_state


def _state_name(state: Any) -> str:
    return getattr(state, "name", str(state))


def _both(value: Any) -> Callable[[], dict[str, Any]]:
    return lambda: {OUT: value, IN: value}


@dataclass
class _Conn:
    """What the narration remembers of one TCP connection, per direction (OUT: ours, IN: the peer's)."""

    isn: dict[str, int | None] = field(default_factory=_both(None))
    fin: dict[str, int | None] = field(default_factory=_both(None))
    """Sequence number of each side's FIN."""
    fin_acked: dict[str, bool] = field(default_factory=_both(False))
    first_data: dict[str, bool] = field(default_factory=_both(False))
    data_segments: dict[str, int] = field(default_factory=_both(0))
    data_bytes: dict[str, int] = field(default_factory=_both(0))
    acks: dict[str, int] = field(default_factory=_both(0))
    syn_sender: str | None = None
    synack_seen: bool = False
    handshake_acked: bool = False

    def pending(self) -> bool:
        return any(self.data_segments.values()) or any(self.acks.values())


class WireNarration:
    """Decodes frames seen on the link into narrated lines and ladder arrows."""

    def __init__(self, narrator: Narrator, mac: bytes, clock: Callable[[], float],
                 medium: Medium = Medium.ETHERNET) -> None:
        self.n = narrator
        self.mac = mac
        self.medium = medium
        """What the frames are: Ethernet frames, or on the IP medium (a TUN) bare IP packets."""
        self.clock = clock
        self.address: int | None = None
        """Our IPv4 address once we have one (tells our ARP announcements from requests)."""
        self.netmask = 0
        self.addresses6: set[int] = set()
        """Our IPv6 addresses, tentative ones included (tells a solicitation for us from one for others)."""
        self.echo = True
        """Narrate ICMP echo line by line (off for ``pystack ping``, which prints its own lines)."""
        self._conns: dict[tuple[int, str, int], _Conn] = {}

    # ------------------------------------------------------------------ entry point

    def frame(self, direction: str, frame: bytes) -> None:
        t = self.clock()
        if self.medium is Medium.IP:
            try:
                if frame and frame[0] >> 4 == 4:
                    self._ipv4(direction, ipv4.parse(frame), t)
            except WireError:
                pass
            return
        try:
            dst, src, ethertype, payload = ethernet.parse(frame)
        except WireError:
            return
        if direction == IN and dst != self.mac and dst != ethernet.BROADCAST:
            if not (ethertype == ethernet.ETHERTYPE_IPV6 and dst[:2] == b"\x33\x33"):
                return  # IPv6 multicast is sorted by its group below
        try:
            if ethertype == ethernet.ETHERTYPE_ARP:
                self._arp(direction, arp_wire.parse(payload), dst, t)
            elif ethertype == ethernet.ETHERTYPE_IPV4:
                self._ipv4(direction, ipv4.parse(payload), t)
            elif ethertype == ethernet.ETHERTYPE_IPV6:
                self._ipv6(direction, ipv6.parse(payload), t)
        except WireError:
            pass  # the stack counts what it drops; the narration only tells what makes sense

    def flush(self) -> None:
        """Summarise the data and ACKs not told yet (at the end of the session)."""
        for key, conn in self._conns.items():
            if conn.pending():
                self._summary(key, conn)

    # ------------------------------------------------------------------ helpers

    def _peer(self, addr: int) -> str:
        if addr == _LIMITED_BROADCAST:
            return BROADCAST
        if self.address is not None and self.netmask:
            if addr == (self.address & self.netmask) | (~self.netmask & _MASK32):
                return BROADCAST
        return ip(addr)

    def _ends(self, direction: str, peer: str) -> tuple[str, str]:
        return (US, peer) if direction == OUT else (peer, US)

    def _tell(self, direction: str, text: str, _t: float) -> None:
        # Stamped when printed (the arrow keeps the frame's own time): lines stay in time order even
        # when the loop thread and the command's thread both have something to say.
        self.n.say(f"{_ARROW[direction]} {text}")

    def _role(self, addr: int) -> str:
        roles = self.n.roles_of(ip(addr))
        return f" ({', '.join(roles)})" if roles else ""

    # ------------------------------------------------------------------ ARP

    def _arp(self, direction: str, pkt: arp_wire.ArpPacket, dst_mac: bytes, t: float) -> None:
        if direction == OUT:
            to = BROADCAST if dst_mac == ethernet.BROADCAST else ip(pkt.target_ip)
            if pkt.op == arp_wire.OP_REQUEST and pkt.sender_ip == 0:
                self._tell(OUT, f"ARP probe: is {ip(pkt.target_ip)} in use? (RFC 5227, sender 0.0.0.0)", t)
                self.n.arrow(US, to, f"ARP probe {ip(pkt.target_ip)}?", t, bulk=f"ARP probe {ip(pkt.target_ip)}?")
            elif pkt.op == arp_wire.OP_REQUEST and pkt.sender_ip == pkt.target_ip:
                self._tell(OUT, f"ARP announcement: {ip(pkt.sender_ip)} is at {ethernet.mac_to_str(pkt.sender_mac)} "
                                "(RFC 5227)", t)
                self.n.arrow(US, to, f"ARP announce {ip(pkt.sender_ip)}", t, bulk=f"ARP announce {ip(pkt.sender_ip)}")
            elif pkt.op == arp_wire.OP_REQUEST:
                self._tell(OUT, f"ARP request: who has {ip(pkt.target_ip)}{self._role(pkt.target_ip)}? "
                                f"tell {ip(pkt.sender_ip)}", t)
                self.n.arrow(US, to, f"ARP who-has {ip(pkt.target_ip)}", t)
            else:
                self._tell(OUT, f"ARP reply: {ip(pkt.sender_ip)} is at {ethernet.mac_to_str(pkt.sender_mac)}", t)
                self.n.arrow(US, ip(pkt.target_ip), f"ARP {ip(pkt.sender_ip)} is-at", t)
            return
        sender = ip(pkt.sender_ip)
        if pkt.op == arp_wire.OP_REPLY:
            self._tell(IN, f"ARP reply: {sender}{self._role(pkt.sender_ip)} is at "
                           f"{ethernet.mac_to_str(pkt.sender_mac)}", t)
            self.n.arrow(sender, US, f"ARP {sender} is-at {ethernet.mac_to_str(pkt.sender_mac)}", t)
        elif self.address is not None and pkt.target_ip == self.address and pkt.sender_ip != pkt.target_ip:
            self._tell(IN, f"ARP request from {sender}: who has {ip(pkt.target_ip)}?", t)
            self.n.arrow(sender, BROADCAST if dst_mac == ethernet.BROADCAST else US,
                         f"ARP who-has {ip(pkt.target_ip)}", t)
        elif pkt.sender_ip == 0 or pkt.sender_ip == pkt.target_ip:
            pass  # someone else's probe or announcement
        # other requests are not about us

    # ------------------------------------------------------------------ IPv4

    def _ipv4(self, direction: str, pkt: ipv4.IPv4Packet, t: float) -> None:
        if pkt.fragment_offset:
            return  # told with the first fragment
        peer_addr = pkt.dst if direction == OUT else pkt.src
        peer = self._peer(peer_addr)
        if pkt.protocol == ipv4.PROTO_UDP:
            if pkt.more_fragments:
                return
            sport, dport, data = udp_wire.parse(pkt.payload, pkt.src, pkt.dst)
            if {sport, dport} == {dhcp_wire.SERVER_PORT, dhcp_wire.CLIENT_PORT}:
                self._dhcp(direction, dhcp_wire.parse(data), peer, t)
            elif (dport if direction == OUT else sport) == dns_wire.PORT:
                self._dns(direction, dns_wire.parse(data), peer, sport, dport, t)
            else:
                self._tell(direction, f"UDP {ip(pkt.src)}:{sport} > {ip(pkt.dst)}:{dport}, {len(data)} bytes", t)
                self.n.arrow(*self._ends(direction, peer), f"UDP {len(data)} bytes", t)
        elif pkt.protocol == ipv4.PROTO_TCP:
            if pkt.more_fragments:
                return
            seg = tcp_wire.parse(pkt.payload, pkt.src, pkt.dst, verify_checksum=False)
            self._tcp(direction, ip(pkt.src), ip(pkt.dst), seg, peer, t)
        elif pkt.protocol == ipv4.PROTO_ICMP:
            self._icmp(direction, pkt, peer, t)

    # ------------------------------------------------------------------ DHCP

    def _dhcp(self, direction: str, msg: dhcp_wire.DhcpMessage, peer: str, t: float) -> None:
        if msg.chaddr != self.mac:
            return
        name = dhcp_wire.MESSAGE_TYPE_NAMES.get(msg.message_type or 0, "BOOTP")
        to = " (broadcast)" if peer == BROADCAST else f" to {peer}"
        if direction == OUT:
            if msg.message_type == dhcp_wire.DISCOVER:
                text = f"{name}{to}, xid {msg.xid:#010x}"
                label = name
            elif msg.message_type == dhcp_wire.REQUEST:
                wanted = msg.requested_ip or msg.ciaddr
                sid = f", server {ip(msg.server_id)}" if msg.server_id is not None else ""
                why = " (renewing)" if msg.ciaddr and peer != BROADCAST else " (rebinding)" if msg.ciaddr else ""
                text = f"{name} for {ip(wanted)}{sid}{why}{to}"
                label = f"{name} {ip(wanted)}"
            elif msg.message_type in (dhcp_wire.RELEASE, dhcp_wire.DECLINE):
                what = msg.ciaddr or msg.requested_ip or 0
                text = f"{name} of {ip(what)}{to}"
                label = f"{name} {ip(what)}"
            else:
                text, label = f"{name}{to}", name
            self._tell(OUT, text, t)
            self.n.arrow(US, peer, label, t)
            return
        server = msg.server_id
        sender = ip(server) if server is not None else peer
        if msg.message_type in (dhcp_wire.OFFER, dhcp_wire.ACK):
            details = []
            if msg.subnet_mask is not None:
                details.append(f"mask {ip(msg.subnet_mask)}")
            if msg.routers:
                details.append("router " + ", ".join(ip(r) for r in msg.routers))
            if msg.dns_servers:
                details.append("DNS " + ", ".join(ip(d) for d in msg.dns_servers))
            if msg.lease_time is not None:
                details.append(f"lease {msg.lease_time} s")
            text = f"{name} {ip(msg.yiaddr)} from {sender}" + (f": {', '.join(details)}" if details else "")
            label = f"{name} {ip(msg.yiaddr)}"
        elif msg.message_type == dhcp_wire.NAK:
            text = f"{name} from {sender}" + (f": {msg.server_message}" if msg.server_message else "")
            label = name
        else:
            text, label = f"{name} from {sender}", name
        self._tell(IN, text, t)
        # The reply comes from the server (its source address), whatever it was addressed to.
        self.n.arrow(sender, US, label, t)

    # ------------------------------------------------------------------ DHCPv6

    def _dhcp6(self, direction: str, msg: dhcp6_wire.Dhcp6Message, peer: str, t: float) -> None:
        """Our client's messages and the answers to it (its DUID is DUID-LL from our MAC)."""
        if msg.client_id != dhcp6_wire.duid_ll(self.mac):
            return
        name = f"DHCPv6 {msg.name}"
        addresses = [a for ia in msg.ia_na for a in ia.addresses]
        listed = ", ".join(ip6(a.address) for a in addresses)
        if direction == OUT:
            to = " to ff02::1:2 (all DHCP servers)" if peer == MULTICAST else f" to {peer}"
            what = {dhcp6_wire.SOLICIT: ": is there a DHCPv6 server for an address? (RFC 8415 18.2.1)",
                    dhcp6_wire.INFORMATION_REQUEST: ": which DNS servers? (RFC 8415 18.2.6)"}.get(msg.msg_type, "")
            self._tell(OUT, f"{name}{' for ' + listed if listed else ''}{to}, xid {msg.xid:#08x}{what}", t)
            self.n.arrow(US, peer, f"{name} {listed}".rstrip(), t)
            return
        details = []
        for a in addresses:
            status = f" ({a.status.name})" if a.status is not None and a.status.code else ""
            details.append(f"address {ip6(a.address)}, preferred {_lifetime(a.preferred)}, valid "
                           f"{_lifetime(a.valid)}{status}")
        for ia in msg.ia_na:
            if ia.addresses:
                details.append(f"renew at T1 {_lifetime(ia.t1)}, rebind at T2 {_lifetime(ia.t2)}")
            if ia.status is not None and ia.status.code:
                details.append(f"{ia.status.name}" + (f": {ia.status.message}" if ia.status.message else ""))
        if msg.status is not None and msg.status.code:
            details.append(f"{msg.status.name}" + (f": {msg.status.message}" if msg.status.message else ""))
        if msg.preference is not None:
            details.append(f"preference {msg.preference}")
        if msg.dns_servers:
            details.append("DNS " + ", ".join(ip6(d) for d in msg.dns_servers))
        if msg.domains:
            details.append("search " + ", ".join(msg.domains))
        if msg.refresh_time is not None:
            details.append(f"ask again in {_lifetime(msg.refresh_time)}")
        server = msg.server_id.hex(":") if msg.server_id else "?"
        self._tell(IN, f"{name} from {peer} (server DUID {server})" + (f": {'; '.join(details)}" if details else ""), t)
        self.n.arrow(peer, US, f"{name} {listed}".rstrip(), t)

    # ------------------------------------------------------------------ DNS

    def _dns(self, direction: str, msg: dns_wire.DnsMessage, peer: str, sport: int, dport: int,
             t: float) -> None:
        q = msg.questions[0] if msg.questions else None
        qtext = f"{_type(q.qtype)} {q.name}?" if q is not None else "?"
        if direction == OUT:
            self._tell(OUT, f"DNS query id {msg.id:#06x}: {qtext} to {peer}:{dport} from port {sport}", t)
            self.n.arrow(US, peer, f"DNS {qtext}", t)
            return
        rcode = dns_wire.RCODE_NAMES.get(msg.rcode, f"RCODE {msg.rcode}")
        answers = _answers(msg.answers)
        tc = ", truncated (TC set: the answer did not fit)" if msg.truncated else ""
        body = answers if answers else "no records"
        self._tell(IN, f"DNS answer id {msg.id:#06x} from {peer}: {rcode}, {body}{tc}", t)
        short = _answers(msg.answers, short=True) or rcode
        self.n.arrow(peer, US, f"DNS {short}{' TC' if msg.truncated else ''}", t)

    # ------------------------------------------------------------------ ICMP

    def _icmp(self, direction: str, pkt: ipv4.IPv4Packet, peer: str, t: float) -> None:
        if pkt.more_fragments:
            kind = None
            if len(pkt.payload) >= 1:
                kind = pkt.payload[0]
            if kind not in (icmp_wire.TYPE_ECHO_REQUEST, icmp_wire.TYPE_ECHO_REPLY):
                return
            mtype, code, rest = kind, 0, int.from_bytes(pkt.payload[4:8], "big")
        else:
            msg = icmp_wire.parse(pkt.payload)
            mtype, code, rest = msg.type, msg.code, msg.rest
        ends = self._ends(direction, peer)
        if mtype in (icmp_wire.TYPE_ECHO_REQUEST, icmp_wire.TYPE_ECHO_REPLY):
            name = "echo request" if mtype == icmp_wire.TYPE_ECHO_REQUEST else "echo reply"
            if self.echo:
                self._tell(direction, f"ICMP {name} {ip(pkt.src)} > {ip(pkt.dst)}, id {rest >> 16} "
                                      f"seq {rest & 0xFFFF}", t)
            self.n.arrow(*ends, f"ICMP {name}", t, bulk=f"ICMP {name}")
            return
        names = {icmp_wire.TYPE_DEST_UNREACHABLE: "destination unreachable",
                 icmp_wire.TYPE_TIME_EXCEEDED: "time exceeded", icmp_wire.TYPE_PARAMETER_PROBLEM: "parameter problem"}
        name = names.get(mtype, f"type {mtype}")
        self._tell(direction, f"ICMP {name} (code {code}) {ip(pkt.src)} > {ip(pkt.dst)}", t)
        self.n.arrow(*ends, f"ICMP {name}", t)

    # ------------------------------------------------------------------ IPv6

    def _peer6(self, addr: int) -> str:
        return MULTICAST if ipv6.is_multicast(addr) else ip6(addr)

    def _ipv6(self, direction: str, pkt: ipv6.Ipv6Packet, t: float) -> None:
        if direction == IN and not ipv6.is_multicast(pkt.dst) and pkt.dst not in self.addresses6:
            return  # not for us (the kernel's own traffic on the link)
        chain = ipv6.walk(pkt)
        body = pkt.datagram[chain.offset:]
        peer = self._peer6(pkt.dst if direction == OUT else pkt.src)
        if chain.fragment is not None:
            # Told with the first fragment, and only for ICMPv6 echo (as for IPv4).
            if chain.fragment.offset == 0 and chain.fragment.next_header == ipv6.NH_ICMPV6 and len(body) >= 8:
                self._echo6(direction, pkt, body[0], int.from_bytes(body[4:8], "big"), peer, t)
            return
        if chain.protocol == ipv6.NH_ICMPV6:
            self._icmpv6(direction, pkt, icmpv6_wire.parse(body, pkt.src, pkt.dst), peer, t)
        elif direction == IN and ipv6.is_multicast(pkt.dst):
            return  # multicast UDP and the like are not ours to tell
        elif chain.protocol == ipv6.NH_UDP:
            sport, dport, data = udp_wire.parse(body, pkt.src, pkt.dst, verify_checksum=False)
            if {sport, dport} == {dhcp6_wire.SERVER_PORT, dhcp6_wire.CLIENT_PORT}:
                self._dhcp6(direction, dhcp6_wire.parse(data), peer, t)
            elif (dport if direction == OUT else sport) == dns_wire.PORT:
                self._dns(direction, dns_wire.parse(data), peer, sport, dport, t)
            else:
                self._tell(direction, f"UDP {endpoint(ip6(pkt.src), sport)} > {endpoint(ip6(pkt.dst), dport)}, "
                                      f"{len(data)} bytes", t)
                self.n.arrow(*self._ends(direction, peer), f"UDP {len(data)} bytes", t)
        elif chain.protocol == ipv6.NH_TCP:
            seg = tcp_wire.parse(body, pkt.src, pkt.dst, verify_checksum=False)
            self._tcp(direction, ip6(pkt.src), ip6(pkt.dst), seg, peer, t)

    def _icmpv6(self, direction: str, pkt: ipv6.Ipv6Packet, msg: icmpv6_wire.Icmpv6Message, peer: str,
                t: float) -> None:
        kind = msg.type
        if kind in (icmpv6_wire.TYPE_ECHO_REQUEST, icmpv6_wire.TYPE_ECHO_REPLY):
            if direction == IN and ipv6.is_multicast(pkt.dst):
                return  # someone's all-nodes ping: the stack answers it, the kernel's ping tells it
            self._echo6(direction, pkt, kind, msg.rest, peer, t)
        elif kind == icmpv6_wire.TYPE_ROUTER_SOLICITATION:
            if direction == OUT:
                src = "::" if pkt.src == ipv6.UNSPECIFIED else ip6(pkt.src)
                self._tell(OUT, f"router solicitation from {src} to {ip6(pkt.dst)} (all routers): is there an "
                                "IPv6 router on this link? (RFC 4861 6.3.7)", t)
                self.n.arrow(US, MULTICAST, "RS (all routers)", t)
        elif kind == icmpv6_wire.TYPE_ROUTER_ADVERTISEMENT and direction == IN:
            self._ra(pkt, icmpv6_wire.parse_ra(msg, src=pkt.src, hop_limit=pkt.hop_limit), t)
        elif kind == icmpv6_wire.TYPE_NEIGHBOUR_SOLICITATION:
            self._ns(direction, pkt, icmpv6_wire.parse_ns(msg, src=pkt.src, dst=pkt.dst, hop_limit=pkt.hop_limit), t)
        elif kind == icmpv6_wire.TYPE_NEIGHBOUR_ADVERTISEMENT:
            self._na(direction, pkt, icmpv6_wire.parse_na(msg, dst=pkt.dst, hop_limit=pkt.hop_limit), peer, t)
        elif kind == icmpv6_wire.TYPE_MLD_REPORT:
            if direction == OUT:
                records = icmpv6_wire.parse_mld_report(msg, src=pkt.src, hop_limit=pkt.hop_limit, router_alert=True)
                join = [ip6(r.group) for r in records if r.record_type in (icmpv6_wire.CHANGE_TO_EXCLUDE,
                                                                           icmpv6_wire.MODE_IS_EXCLUDE)]
                leave = [ip6(r.group) for r in records
                         if r.record_type == icmpv6_wire.CHANGE_TO_INCLUDE and not r.sources]
                what = "; ".join(p for p in (f"listening to {', '.join(join)}" if join else "",
                                             f"leaving {', '.join(leave)}" if leave else "") if p)
                self._tell(OUT, f"MLDv2 report: {what or 'no change'} (RFC 3810: the solicited-node groups are "
                                "where neighbour solicitations for our addresses arrive)", t)
                self.n.arrow(US, MULTICAST, "MLD report", t, bulk="MLD report")
        elif kind < 128 and not (direction == IN and ipv6.is_multicast(pkt.dst)):
            names = {icmpv6_wire.TYPE_DEST_UNREACHABLE: "destination unreachable",
                     icmpv6_wire.TYPE_PACKET_TOO_BIG: "packet too big",
                     icmpv6_wire.TYPE_TIME_EXCEEDED: "time exceeded",
                     icmpv6_wire.TYPE_PARAMETER_PROBLEM: "parameter problem"}
            name = names.get(kind, f"type {kind}")
            self._tell(direction, f"ICMPv6 {name} (code {msg.code}) {ip6(pkt.src)} > {ip6(pkt.dst)}", t)
            self.n.arrow(*self._ends(direction, peer), f"ICMPv6 {name}", t)

    def _echo6(self, direction: str, pkt: ipv6.Ipv6Packet, kind: int, rest: int, peer: str, t: float) -> None:
        if kind not in (icmpv6_wire.TYPE_ECHO_REQUEST, icmpv6_wire.TYPE_ECHO_REPLY):
            return
        name = "echo request" if kind == icmpv6_wire.TYPE_ECHO_REQUEST else "echo reply"
        if self.echo:
            self._tell(direction, f"ICMPv6 {name} {ip6(pkt.src)} > {ip6(pkt.dst)}, id {rest >> 16} "
                                  f"seq {rest & 0xFFFF}", t)
        self.n.arrow(*self._ends(direction, peer), f"ICMPv6 {name}", t, bulk=f"ICMPv6 {name}")

    def _ra(self, pkt: ipv6.Ipv6Packet, ra: icmpv6_wire.RouterAdvertisement, t: float) -> None:
        router = ip6(pkt.src)
        if ra.router_lifetime:
            self.n.role(router, "router")
        parts = []
        for info in ra.options.prefixes:
            use = [w for w, on in (("on-link", info.on_link), ("autonomous: SLAAC", info.autonomous)) if on]
            parts.append(f"prefix {ip6(info.prefix)}/{info.prefix_len} ({', '.join(use) or 'no flags'})")
        parts.append(f"router lifetime {ra.router_lifetime} s" + ("" if ra.router_lifetime else
                                                                   " (not a default router)"))
        flags = [f for f, on in (("M: addresses by DHCPv6", ra.managed), ("O: other settings by DHCPv6", ra.other))
                 if on]
        parts += flags
        if ra.options.mtu is not None:
            parts.append(f"MTU {ra.options.mtu}")
        servers = [ip6(a) for r in ra.options.rdnss for a in r.servers]
        if servers:
            parts.append("DNS " + ", ".join(servers) + " (RDNSS, RFC 8106)")
        if ra.options.source_lladdr is not None:
            parts.append(f"its MAC {ethernet.mac_to_str(ra.options.source_lladdr)} (so no neighbour solicitation "
                         "is needed for it)")
        self._tell(IN, f"router advertisement from {router}: {', '.join(parts)}", t)
        label = "RA " + ", ".join(f"{ip6(p.prefix)}/{p.prefix_len}" for p in ra.options.prefixes)
        self.n.arrow(router, US, label.rstrip(), t)

    def _ns(self, direction: str, pkt: ipv6.Ipv6Packet, ns: icmpv6_wire.NeighbourSolicitation, t: float) -> None:
        target = ip6(ns.target)
        if direction == OUT:
            if pkt.src == ipv6.UNSPECIFIED:
                self._tell(OUT, f"DAD probe: is {target} in use? (neighbour solicitation from :: to "
                                f"{ip6(pkt.dst)}, RFC 4862 5.4.2; silence means it is ours)", t)
                self.n.arrow(US, MULTICAST, f"DAD NS {target}?", t, bulk=f"DAD NS {target}?")
            elif ipv6.is_multicast(pkt.dst):
                self._tell(OUT, f"neighbour solicitation: who has {target}{self._role6(target)}? (IPv6's ARP, "
                                f"to its solicited-node group {ip6(pkt.dst)})", t)
                self.n.arrow(US, MULTICAST, f"NS who-has {target}", t)
            else:
                self._tell(OUT, f"neighbour solicitation to {target}{self._role6(target)}: still there? "
                                "(reachability probe, RFC 4861 7.3.3)", t)
                self.n.arrow(US, ip6(pkt.dst), f"NS {target}?", t)
            return
        if ns.target not in self.addresses6:
            return  # about another node
        if pkt.src == ipv6.UNSPECIFIED:
            self._tell(IN, f"another node's DAD probe for {target}: it wants our address too", t)
            self.n.arrow(MULTICAST, US, f"DAD NS {target}?", t)
            return
        sender = ip6(pkt.src)
        self._tell(IN, f"neighbour solicitation from {sender}{self._role6(sender)}: who has {target}?", t)
        self.n.arrow(sender, US, f"NS who-has {target}", t)

    def _na(self, direction: str, pkt: ipv6.Ipv6Packet, na: icmpv6_wire.NeighbourAdvertisement, peer: str,
            t: float) -> None:
        target = ip6(na.target)
        flags = ", ".join(f for f, on in (("router", na.router), ("solicited", na.solicited),
                                          ("override", na.override)) if on)
        if direction == OUT:
            mac = ethernet.mac_to_str(na.options.target_lladdr) if na.options.target_lladdr else "?"
            self._tell(OUT, f"neighbour advertisement to {ip6(pkt.dst)}: {target} is at {mac} ({flags or 'no flags'})", t)
            self.n.arrow(US, peer, f"NA {target} is-at", t)
            return
        if na.target in self.addresses6:
            self._tell(IN, f"neighbour advertisement from {ip6(pkt.src)}: {target} is in use there (DAD fails)", t)
            self.n.arrow(ip6(pkt.src), US, f"NA {target} (duplicate)", t)
            return
        mac = ethernet.mac_to_str(na.options.target_lladdr) if na.options.target_lladdr else "(MAC already known)"
        self._tell(IN, f"neighbour advertisement: {target}{self._role6(target)} is at {mac} ({flags or 'no flags'})", t)
        self.n.arrow(ip6(pkt.src), US, f"NA {target} is-at", t)

    def _role6(self, text: str) -> str:
        roles = self.n.roles_of(text)
        return f" ({', '.join(roles)})" if roles else ""

    # ------------------------------------------------------------------ TCP

    def _tcp(self, direction: str, src_ip: str, dst_ip: str, seg: tcp_wire.TcpSegment, peer: str, t: float) -> None:
        if direction == OUT:
            key = (seg.src_port, peer, seg.dst_port)
        else:
            key = (seg.dst_port, peer, seg.src_port)
        flags = seg.flags
        conn = self._conns.get(key)
        if conn is None or (flags & tcp_wire.SYN and not flags & tcp_wire.ACK and direction == OUT
                            and conn.isn[OUT] not in (None, seg.seq)):
            conn = self._conns[key] = _Conn()
        other = IN if direction == OUT else OUT
        size = len(seg.payload)
        syn, fin, rst, ack = (flags & tcp_wire.SYN, flags & tcp_wire.FIN, flags & tcp_wire.RST,
                              flags & tcp_wire.ACK)
        tell = None
        if syn:
            conn.isn[direction] = seg.seq
            if ack:
                conn.synack_seen = True
            else:
                conn.syn_sender = direction
            tell = "handshake"
        elif rst or fin:
            tell = "close"
        elif size:
            if not conn.first_data[direction]:
                conn.first_data[direction] = True
                tell = "first data"
        else:
            fin_other = conn.fin[other]
            if conn.synack_seen and not conn.handshake_acked and direction == conn.syn_sender:
                conn.handshake_acked = True
                tell = "handshake"
            elif fin_other is not None and not conn.fin_acked[other] and seg.ack == (fin_other + 1) & _MASK32:
                conn.fin_acked[other] = True
                tell = "ack of FIN"
        if fin:
            conn.fin[direction] = (seg.seq + size + (1 if syn else 0)) & _MASK32
            fin_other = conn.fin[other]
            if ack and fin_other is not None and seg.ack == (fin_other + 1) & _MASK32:
                conn.fin_acked[other] = True
        if tell is None:
            if size:
                conn.data_segments[direction] += 1
                conn.data_bytes[direction] += size
                self.n.arrow(*self._ends(direction, peer), "data", t, bulk="data", size=size)
            else:
                conn.acks[direction] += 1
                self.n.arrow(*self._ends(direction, peer), "ACK", t, bulk="ACK")
            return
        if conn.pending():
            self._summary(key, conn)
        src = endpoint(src_ip, seg.src_port)
        dst = endpoint(dst_ip, seg.dst_port)
        names = _flag_names(flags)
        seq_text = self._seq_text(conn, direction, seg)
        extra = ""
        if syn:
            extra = " " + _options(seg)
        if size:
            extra += f", {size} bytes" + _peek(seg.payload)
        if tell == "handshake" and not syn:
            extra += " (handshake complete)"
        elif tell == "ack of FIN":
            extra += " (acknowledges the FIN)"
        self._tell(direction, f"TCP {src} > {dst} [{names}] {seq_text} win {seg.window}{extra}", t)
        label = names if not size else f"{names} {size} bytes"
        if syn:
            label += f" seq {seg.seq}"
        self.n.arrow(*self._ends(direction, peer), label, t)

    def _seq_text(self, conn: _Conn, direction: str, seg: tcp_wire.TcpSegment) -> str:
        other = IN if direction == OUT else OUT
        if seg.flags & tcp_wire.SYN:
            text = f"seq {seg.seq}"
            if seg.flags & tcp_wire.ACK:
                text += f" ack {seg.ack}"
            return text
        base = conn.isn[direction]
        seq = (seg.seq - base) & _MASK32 if base is not None else seg.seq
        text = f"seq {seq}"
        if seg.flags & tcp_wire.ACK:
            obase = conn.isn[other]
            text += f" ack {(seg.ack - obase) & _MASK32 if obase is not None else seg.ack}"
        return text

    def _summary(self, key: tuple[int, str, int], conn: _Conn) -> None:
        parts = []
        for direction, word in ((IN, "in"), (OUT, "out")):
            if conn.data_segments[direction]:
                count = conn.data_segments[direction]
                parts.append(f"{count} more data segment{'s' if count > 1 else ''} {word} "
                             f"({conn.data_bytes[direction]:,} bytes)")
        for direction, word in ((OUT, "out"), (IN, "in")):
            count = conn.acks[direction]
            if count:
                parts.append(f"{count} ACK{'s' if count > 1 else ''} {word}")
        self.n.say(f"   ... {', '.join(parts)} (port {key[0]} <-> {endpoint(key[1], key[2])})")
        for d in (IN, OUT):
            conn.data_segments[d] = conn.data_bytes[d] = conn.acks[d] = 0


def _flag_names(flags: int) -> str:
    names = [n for bit, n in ((tcp_wire.SYN, "SYN"), (tcp_wire.FIN, "FIN"), (tcp_wire.RST, "RST"),
                              (tcp_wire.PSH, "PSH"), (tcp_wire.ACK, "ACK"), (tcp_wire.URG, "URG"))
             if flags & bit]
    return ",".join(names) or "none"


def _options(seg: tcp_wire.TcpSegment) -> str:
    opts = []
    if seg.mss is not None:
        opts.append(f"mss {seg.mss}")
    if seg.wscale is not None:
        opts.append(f"wscale {seg.wscale}")
    if seg.sack_permitted:
        opts.append("sackOK")
    if seg.ts_val is not None:
        opts.append(f"TS {seg.ts_val}/{seg.ts_ecr}")
    return "<" + ", ".join(opts) + ">" if opts else "<no options>"


def _peek(payload: memoryview) -> str:
    """The first line of a text payload ("GET /file HTTP/1.1"), when there is one."""
    head = bytes(payload[:120])
    line = head.split(b"\r\n", 1)[0]
    if line and all(32 <= c < 127 for c in line):
        return f": {line.decode('ascii')!r}"
    return ""


def _type(qtype: int) -> str:
    return {dns_wire.TYPE_A: "A", dns_wire.TYPE_AAAA: "AAAA", dns_wire.TYPE_CNAME: "CNAME",
            dns_wire.TYPE_SOA: "SOA", dns_wire.TYPE_NS: "NS", dns_wire.TYPE_PTR: "PTR",
            dns_wire.TYPE_MX: "MX", dns_wire.TYPE_TXT: "TXT"}.get(qtype, f"TYPE{qtype}")


def _answers(records: list[dns_wire.Record], short: bool = False) -> str:
    parts = []
    for r in records:
        if r.rtype == dns_wire.TYPE_A and isinstance(r.rdata, int):
            data = ip(r.rdata)
        elif isinstance(r.rdata, ipaddress.IPv6Address):
            data = str(r.rdata)
        elif isinstance(r.rdata, str):
            data = r.rdata
        else:
            data = f"({len(r.rdata) if isinstance(r.rdata, bytes) else '?'} bytes)"
        parts.append(f"{_type(r.rtype)} {data}" if short else f"{r.name} {_type(r.rtype)} {data} (ttl {r.ttl})")
    if short and len(parts) > 2:
        return f"{len(parts)} records"
    if len(parts) > 4:
        return f"{', '.join(parts[:4])}, ... ({len(parts)} records)"
    return ", ".join(parts)


def _lifetime(seconds: int) -> str:
    """A DHCPv6 lifetime or T1/T2 (RFC 8415 7.7: all ones is infinity)."""
    return "infinite" if seconds == dhcp6_wire.INFINITY else f"{seconds} s"
