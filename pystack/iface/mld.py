"""MLDv2 (RFC 3810) for one interface, as a host: the IPv6 multicast groups we listen to, their
Ethernet addresses on the link, and the reports that tell the routers about them.

Joining a group (the solicited-node group of each address, RFC 4862 5.4.2) sends a State Change Report
``robustness`` times, the later ones at a random moment within the Unsolicited Report Interval (RFC 3810
6.1); leaving one reports that too. A query is answered after a random delay within its Maximum
Response Delay (6.2) with the current state of the groups it asks about. The all-nodes group is joined
from the start and never reported (RFC 3810 section 6). Bounded: one entry per joined group, and the
groups are those of the interface's addresses (``Ipv6Config.max_addresses``) and all-nodes.
"""

from __future__ import annotations

import random
from typing import Callable

from pystack.counters import Counters
from pystack.iface.ethernet import EthernetLink
from pystack.wire import ethernet
from pystack.wire import icmpv6 as icmpv6_wire
from pystack.wire import ipv6 as ipv6_wire
from pystack.wire.icmpv6 import MldQuery, MulticastRecord

ROBUSTNESS = 2
"""Reports sent for each change of state (RFC 3810 9.1, the Robustness Variable's default)."""
UNSOLICITED_REPORT_INTERVAL = 1.0
"""Seconds within which the repetitions of a State Change Report go (RFC 3810 9.11)."""

_MLD_ROUTERS_MAC = ipv6_wire.multicast_mac(ipv6_wire.ALL_MLDV2_ROUTERS)


def reportable(group: int) -> bool:
    """RFC 3810 section 6: no reports for the link-scope all-nodes group, nor for groups of
    interface-local (or reserved) scope."""
    return group != ipv6_wire.ALL_NODES and (group >> 112) & 0xF > 1


class Mld:
    """The groups joined (``groups``, with a count of who asked) and the reports due."""

    def __init__(self, counters: Counters, link: EthernetLink, rng: random.Random,
                 source: Callable[[], int]) -> None:
        self.counters = counters
        self.link = link
        self.rng = rng
        self.source = source
        """Our link-local address once usable, else :: (RFC 3810 5.2.13 allows it while none is)."""
        self.groups: dict[int, int] = {}
        self._changes: dict[int, tuple[int, int, float]] = {}
        """Group -> (record type, reports still to send, when the next is due): State Change Reports."""
        self._answers: dict[int, float] = {}
        """Group -> when its Current State Report is due (answers to queries)."""

    # ------------------------------------------------------------------ joining and leaving

    def join(self, group: int, now: float) -> None:
        count = self.groups.get(group, 0)
        self.groups[group] = count + 1
        if count:
            return
        self.link.multicast_macs.add(ipv6_wire.multicast_mac(group))
        if reportable(group):
            self._change(group, icmpv6_wire.CHANGE_TO_EXCLUDE, now)

    def leave(self, group: int, now: float) -> None:
        count = self.groups.get(group, 0)
        if count > 1:
            self.groups[group] = count - 1
            return
        if not count:
            return
        del self.groups[group]
        self._answers.pop(group, None)
        mac = ipv6_wire.multicast_mac(group)
        if all(ipv6_wire.multicast_mac(g) != mac for g in self.groups):
            self.link.multicast_macs.discard(mac)
        if reportable(group):
            self._change(group, icmpv6_wire.CHANGE_TO_INCLUDE, now)

    def leave_all(self) -> None:
        """IPv6 stops on the interface: forget every group without a word (Linux does the same when
        the interface goes down)."""
        for group in self.groups:
            self.link.multicast_macs.discard(ipv6_wire.multicast_mac(group))
        self.groups.clear()
        self._changes.clear()
        self._answers.clear()

    def _change(self, group: int, record_type: int, now: float) -> None:
        """A State Change Report now, and ROBUSTNESS - 1 more later (RFC 3810 6.1)."""
        self._changes[group] = (record_type, ROBUSTNESS - 1, now + self.rng.random() * UNSOLICITED_REPORT_INTERVAL)
        self._send([MulticastRecord(record_type, group)], "mld.change_reports_sent")

    # ------------------------------------------------------------------ queries (RFC 3810 6.2)

    def on_query(self, query: MldQuery, now: float) -> None:
        self.counters["mld.queries_received"] += 1
        delay = self.rng.random() * query.max_response_delay / 1000.0
        groups = [query.group] if query.group else list(self.groups)
        for group in groups:
            if group in self.groups and reportable(group):
                due = self._answers.get(group)
                if due is None or now + delay < due:
                    self._answers[group] = now + delay

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        times = [due for _t, _n, due in self._changes.values()]
        times += self._answers.values()
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for group, (record_type, left, due) in list(self._changes.items()):
            if due > now:
                continue
            self._send([MulticastRecord(record_type, group)], "mld.change_reports_sent")
            if left > 1:
                self._changes[group] = (record_type, left - 1, now + self.rng.random() * UNSOLICITED_REPORT_INTERVAL)
            else:
                del self._changes[group]
        due_now = [g for g, due in self._answers.items() if due <= now]
        if due_now:
            for group in due_now:
                del self._answers[group]
            self._send([MulticastRecord(icmpv6_wire.MODE_IS_EXCLUDE, g) for g in due_now], "mld.reports_sent")

    def _send(self, records: list[MulticastRecord], counter: str) -> None:
        src = self.source()
        packet = icmpv6_wire.mld_packet(src, ipv6_wire.ALL_MLDV2_ROUTERS, icmpv6_wire.build_mld_report(src, records))
        self.counters[counter] += 1
        self.link.send(_MLD_ROUTERS_MAC, ethernet.ETHERTYPE_IPV6, packet)
