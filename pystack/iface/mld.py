"""MLDv2 (RFC 3810) for one interface, as a host: the IPv6 multicast groups we listen to, their
Ethernet addresses on the link, and the reports that tell the routers about them.

Joining a group (the solicited-node group of each address, RFC 4862 5.4.2) sends a State Change Report
``robustness`` times, the later ones at a random moment within the Unsolicited Report Interval (RFC 3810
6.1); leaving one reports that too. A query is answered after a random delay within its Maximum
Response Delay (6.2) with the current state of the groups it asks about. The all-nodes group is joined
from the start and never reported (RFC 3810 section 6). Bounded: one entry per joined group, and the
groups are those of the interface's addresses (``Ipv6Config.max_addresses``) and all-nodes.

An MLDv1 query (RFC 2710, 24 bytes) means an MLDv1 router is on the link: the host falls back to MLDv1
(RFC 3810 8.2.1) until the Older Version Querier Present Timeout passes (9.12) with no other v1 query.
Meanwhile it reports each group alone in an MLDv1 Report sent to the group, and says Done to all routers
when it leaves a group it was the last to report (RFC 2710 4); another host's MLDv1 Report for a group
cancels our pending one. This is what Linux's net/ipv6/mcast.c does (mld_in_v1_mode, igmp6_event_report).
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
V1_UNSOLICITED_REPORT_INTERVAL = 10.0
"""Seconds within which an MLDv1 Report on joining is repeated (RFC 2710 7.10; Linux's
mldv1_unsolicited_report_interval)."""
QUERY_INTERVAL = 125.0
"""The querier's Query Interval until an MLDv2 query says otherwise (RFC 3810 9.2), seconds."""
QUERY_RESPONSE_INTERVAL = 10.0
"""The querier's Query Response Interval until an MLDv2 query says otherwise (RFC 3810 9.3), seconds."""

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
        """Group -> when its Current State Report is due (answers to queries; in MLDv1 mode also the
        repetition of a join's Report): the kind of report is chosen when it is sent."""
        self.querier_robustness = ROBUSTNESS
        self.query_interval = QUERY_INTERVAL
        self.query_response_interval = QUERY_RESPONSE_INTERVAL
        """What the last MLDv2 query said of the querier's variables (RFC 3810 9.1-9.3, Linux's mc_qrv,
        mc_qi and mc_qri): they set how long an MLDv1 querier is remembered."""
        self.v1_until: float | None = None
        """When MLDv1 compatibility mode ends (RFC 3810 8.2.1, 9.12); None in MLDv2 mode."""
        self._last_reporter: set[int] = set()
        """Groups whose last MLDv1 Report on the link was ours: only those get a Done (RFC 2710 4)."""

    def in_v1_mode(self, now: float) -> bool:
        return self.v1_until is not None and now < self.v1_until

    # ------------------------------------------------------------------ joining and leaving

    def join(self, group: int, now: float) -> None:
        count = self.groups.get(group, 0)
        self.groups[group] = count + 1
        if count:
            return
        self.link.multicast_macs.add(ipv6_wire.multicast_mac(group))
        if not reportable(group):
            return
        if self.in_v1_mode(now):
            # RFC 2710 4: a Report at once, repeated after a random delay (Linux: igmp6_join_group).
            self._send_v1(icmpv6_wire.TYPE_MLDV1_REPORT, group)
            self._answers[group] = now + self.rng.random() * V1_UNSOLICITED_REPORT_INTERVAL
        else:
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
        was_last_reporter = group in self._last_reporter
        self._last_reporter.discard(group)
        if not reportable(group):
            return
        if self.in_v1_mode(now):
            if was_last_reporter:  # RFC 2710 4: else another listener is likely still there
                self._send_v1(icmpv6_wire.TYPE_MLDV1_DONE, group)
        else:
            self._change(group, icmpv6_wire.CHANGE_TO_INCLUDE, now)

    def leave_all(self) -> None:
        """IPv6 stops on the interface: forget every group without a word (Linux does the same when
        the interface goes down)."""
        for group in self.groups:
            self.link.multicast_macs.discard(ipv6_wire.multicast_mac(group))
        self.groups.clear()
        self._changes.clear()
        self._answers.clear()
        self._last_reporter.clear()

    def _change(self, group: int, record_type: int, now: float) -> None:
        """A State Change Report now, and ROBUSTNESS - 1 more later (RFC 3810 6.1)."""
        self._changes[group] = (record_type, ROBUSTNESS - 1, now + self.rng.random() * UNSOLICITED_REPORT_INTERVAL)
        self._send([MulticastRecord(record_type, group)], "mld.change_reports_sent")

    # ------------------------------------------------------------------ queries (RFC 3810 6.2)

    def on_query(self, query: MldQuery, now: float) -> None:
        self.counters["mld.queries_received"] += 1
        if query.version == 1:
            self._enter_v1_mode(now)
        elif not self.in_v1_mode(now):
            # RFC 3810 9.1-9.3 (Linux's mld_update_qrv/qi/qri); a QRV of 0 says nothing (5.1.8).
            self.querier_robustness = query.robustness or self.querier_robustness
            self.query_interval = float(query.query_interval)
            self.query_response_interval = query.max_response_delay / 1000.0
        # In MLDv1 mode an MLDv2 query is answered as an MLDv1 one but does not prolong the mode
        # (RFC 3810 8.2.1: only a 24-byte query starts or refreshes it; Linux's __mld_query_work).
        delay = self.rng.random() * query.max_response_delay / 1000.0
        groups = [query.group] if query.group else list(self.groups)
        for group in groups:
            if group in self.groups and reportable(group):
                due = self._answers.get(group)
                if due is None or now + delay < due:
                    self._answers[group] = now + delay

    def _enter_v1_mode(self, now: float) -> None:
        """RFC 3810 8.2.1 and 9.12: an MLDv1 querier is present for Robustness * Query Interval + Query
        Response Interval (260 s by default); pending MLDv2 State Change Reports are dropped, as Linux's
        mld_process_v1 does (mld_ifc_stop_work, mld_clear_delrec)."""
        if not self.in_v1_mode(now):
            self.counters["mld.v1_mode_entered"] += 1
        self.counters["mld.v1_queries_received"] += 1
        self.v1_until = now + self.querier_robustness * self.query_interval + self.query_response_interval
        self._changes.clear()

    def on_v1_report(self, group: int) -> None:
        """Another listener reported ``group`` in MLDv1: in MLDv1 mode our pending Report for it is not
        needed, and we are no longer its last reporter (RFC 2710 4, Linux's igmp6_event_report). In MLDv2
        mode it suppresses nothing: MLDv2 has no suppression (RFC 3810 8.2.2 leaves it a MAY), and Linux
        answers a general query there on its own timer, which such a report does not stop. The mode ends
        on a timer (:meth:`handle_timer`), so ``v1_until`` alone tells it."""
        self.counters["mld.reports_heard"] += 1
        if group in self.groups and self.v1_until is not None:
            if self._answers.pop(group, None) is not None:
                self.counters["mld.v1_reports_suppressed"] += 1
            self._last_reporter.discard(group)

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        times = [due for _t, _n, due in self._changes.values()]
        times += self._answers.values()
        if self.v1_until is not None:
            times.append(self.v1_until)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        if self.v1_until is not None and now >= self.v1_until:
            self.v1_until = None  # back to MLDv2 (RFC 3810 8.2.1): nothing is sent for the change
            self._last_reporter.clear()
            self.counters["mld.v1_mode_left"] += 1
        for group, (record_type, left, due) in list(self._changes.items()):
            if due > now:
                continue
            self._send([MulticastRecord(record_type, group)], "mld.change_reports_sent")
            if left > 1:
                self._changes[group] = (record_type, left - 1, now + self.rng.random() * UNSOLICITED_REPORT_INTERVAL)
            else:
                del self._changes[group]
        due_now = [g for g, due in self._answers.items() if due <= now]
        if not due_now:
            return
        for group in due_now:
            del self._answers[group]
        if self.in_v1_mode(now):
            for group in due_now:  # RFC 2710 4: one Report per group, to the group
                self._send_v1(icmpv6_wire.TYPE_MLDV1_REPORT, group)
        else:
            self._send([MulticastRecord(icmpv6_wire.MODE_IS_EXCLUDE, g) for g in due_now], "mld.reports_sent")

    def _send(self, records: list[MulticastRecord], counter: str) -> None:
        src = self.source()
        packet = icmpv6_wire.mld_packet(src, ipv6_wire.ALL_MLDV2_ROUTERS, icmpv6_wire.build_mld_report(src, records))
        self.counters[counter] += 1
        self.link.send(_MLD_ROUTERS_MAC, ethernet.ETHERTYPE_IPV6, packet)

    def _send_v1(self, mtype: int, group: int) -> None:
        src = self.source()
        dst, message = icmpv6_wire.build_mldv1(mtype, src, group)
        if mtype == icmpv6_wire.TYPE_MLDV1_REPORT:
            self._last_reporter.add(group)
            self.counters["mld.v1_reports_sent"] += 1
        else:
            self.counters["mld.v1_dones_sent"] += 1
        self.link.send(ipv6_wire.multicast_mac(dst), ethernet.ETHERTYPE_IPV6, icmpv6_wire.mld_packet(src, dst, message))
