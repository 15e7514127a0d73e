"""The stub resolver: answers, CNAME chains, errors, retries across servers, spoofing checks, TC."""

from __future__ import annotations

import ipaddress
import random

import dpkt
import pytest

from pystack.dns import DnsConfig, DnsError, Resolver, Status
from pystack.wire import dns
from pystack.wire.dns import Question, Record

from .fake_dns import NS1, NS2, WWW, WWW6, FakeDns, Net


def test_a_query_goes_to_port_53_from_a_random_port_and_resolves() -> None:
    net = Net()
    done = []
    q = net.resolve("www.example.test", on_done=done.append)
    assert q.status is Status.DONE and q.result() == [WWW] and q.addresses == [WWW]
    assert (q.ttl, q.server, q.cname_chain, q.from_cache) == (60, NS1, [], False)
    assert done == [q]
    [(_t, dgram)] = net.sent
    assert dgram.server == NS1 and dgram.port == 53 and dgram.src_port == q.src_port
    assert 49152 <= q.src_port <= 65535
    sent = dpkt.dns.DNS(dgram.payload)  # an independent reading of our query
    assert (sent.qr, sent.rd, len(sent.qd), sent.qd[0].name, sent.qd[0].type) == (0, 1, 1, "www.example.test", 1)
    assert net.counters.total_drops() == 0


def test_caller_chosen_source_port_is_used() -> None:
    net = Net()
    q = net.resolve("www.example.test", src_port=40000)
    assert q.src_port == 40000 and net.sent[0][1].src_port == 40000 and q.done


def test_ids_are_random_per_transmission() -> None:
    net = Net({NS1: FakeDns(mode="silent")}, DnsConfig(attempts=4))
    net.resolve("www.example.test")
    ids = [dns.parse(d.payload).id for _t, d in net.sent]
    assert len(ids) == 4 and len(set(ids)) == 4


def test_cname_chain_in_one_answer() -> None:
    q = Net().resolve("web.example.test")
    assert q.result() == [WWW]
    assert q.cname_chain == ["www.example.test"]
    assert q.ttl == 60  # the smaller of the CNAME's 300 and the A record's 60


def test_answer_built_by_dpkt_with_compression() -> None:
    net = Net({NS1: FakeDns(mode="silent")})
    q = net.resolve("Web.Example.Test", run=False)
    sent = dns.parse(net.sent[0][1].payload)
    ref = dpkt.dns.DNS(id=sent.id, op=dns.FLAG_RD | dns.FLAG_RA, qr=1)
    ref.qd = [dpkt.dns.DNS.Q(name="web.example.TEST", type=1, cls=1)]  # case may differ (RFC 4343)
    ref.an = [dpkt.dns.DNS.RR(name="web.example.test", type=5, cls=1, ttl=40, cname="WWW.example.test"),
              dpkt.dns.DNS.RR(name="www.example.test", type=1, cls=1, ttl=90, ip=WWW.to_bytes(4, "big"))]
    assert net.resolver.receive(NS1, 53, bytes(ref), net.now) == []
    assert q.result() == [WWW] and q.ttl == 40
    # dpkt compressed "example.test" against the question's "example.TEST": names match whatever the case.
    assert [dns.name_key(n) for n in q.cname_chain] == ["www.example.test"]


def test_several_addresses() -> None:
    q = Net().resolve("two.example.test")
    assert sorted(q.result()) == [0xC6336451, 0xC6336452] and q.ttl == 30


def test_cname_target_not_chased_by_the_server_is_asked_for() -> None:
    net = Net({NS1: FakeDns(follow_cnames=False)})
    q = net.resolve("web.example.test")
    assert q.result() == [WWW] and q.cname_chain == ["www.example.test"] and q.ttl == 60
    asked = [question.name for _t, _s, question in net.questions()]
    assert asked == ["web.example.test", "www.example.test"]
    ids = [dns.parse(d.payload).id for _t, d in net.sent]
    assert ids[0] != ids[1]


@pytest.mark.parametrize("follow", [True, False])
def test_cname_loop_is_bounded(follow: bool) -> None:
    net = Net({NS1: FakeDns(follow_cnames=follow)}, DnsConfig(max_cname_hops=8))
    q = net.resolve("loop1.example.test")
    assert q.status is Status.FAILED and q.error is not None and q.error.code == "cname_loop"
    assert len(net.sent) <= 9


def test_nxdomain_is_a_clear_error() -> None:
    q = Net().resolve("nope.example.test")
    assert q.status is Status.FAILED
    with pytest.raises(DnsError) as info:
        q.result()
    assert info.value.code == "nxdomain"
    assert str(info.value) == "nope.example.test: no such name (NXDOMAIN from 192.0.2.1)"


def test_nxdomain_at_the_end_of_a_chain_names_the_target() -> None:
    q = Net().resolve("dangling.example.test")
    assert q.error is not None and q.error.code == "nxdomain"
    assert "for gone.example.test" in str(q.error) and q.cname_chain == ["gone.example.test"]


def test_nodata_is_a_clear_error() -> None:
    q = Net().resolve("textonly.example.test")
    assert q.error is not None and q.error.code == "nodata"
    assert str(q.error) == "textonly.example.test: no A record (NOERROR, no data from 192.0.2.1)"


def test_other_types_come_back_raw() -> None:
    q = Net().resolve("textonly.example.test", qtype=dns.TYPE_TXT)
    assert q.result() == [b"\x05hello"] and q.addresses == []


def test_servfail_moves_to_the_next_server_at_once() -> None:
    net = Net({NS1: FakeDns(mode="servfail"), NS2: FakeDns()})
    q = net.resolve("www.example.test")
    assert q.result() == [WWW] and q.server == NS2
    assert [(t, s) for t, s, _q in net.questions()] == [(1000.0, NS1), (1000.0, NS2)]


@pytest.mark.parametrize("mode,code,text", [("servfail", "servfail", "SERVFAIL"), ("refused", "refused", "REFUSED")])
def test_every_server_failing_is_a_clear_error(mode: str, code: str, text: str) -> None:
    net = Net({NS1: FakeDns(mode=mode), NS2: FakeDns(mode=mode)})
    q = net.resolve("www.example.test")
    assert q.error is not None and q.error.code == code and text in str(q.error)
    assert len(net.sent) == 2 and net.now == 1000.0


def test_timeouts_rotate_servers_and_back_off_then_fail() -> None:
    net = Net({NS1: FakeDns(mode="silent"), NS2: FakeDns(mode="silent")},
              DnsConfig(timeout=2.0, backoff=2.0, attempts=2))
    q = net.resolve("www.example.test")
    assert [(t - 1000, s) for t, s, _q in net.questions()] == [(0, NS1), (2, NS2), (4, NS1), (8, NS2)]
    assert net.now == 1000 + 12
    assert q.error is not None and q.error.code == "timeout"
    assert str(q.error) == "www.example.test: no answer from 192.0.2.1, 192.0.2.53 (4 queries in 12.0 s)"
    assert net.resolver.get_timer() is None


def test_late_answer_to_an_earlier_transmission_is_accepted() -> None:
    slow = FakeDns(mode="silent")
    net = Net({NS1: slow, NS2: FakeDns(mode="silent")})
    q = net.resolve("www.example.test", run=False)
    net.run(duration=2.5)  # the retry to NS2 went out
    assert len(net.sent) == 2
    first = net.sent[0][1]
    slow.mode = "ok"
    reply = slow.answer(first.payload)
    net.resolver.receive(NS1, 53, reply, net.now, dst_port=first.src_port)
    assert q.result() == [WWW] and q.server == NS1


def test_truncated_answer_asks_for_tcp() -> None:
    net = Net({NS1: FakeDns(mode="truncate"), NS2: FakeDns()})
    q = net.resolve("www.example.test")
    assert q.status is Status.NEEDS_TCP and q.needs_tcp and q.done
    with pytest.raises(DnsError) as info:
        q.result()
    assert info.value.code == "truncated"
    assert dns.parse(q.wire_query).questions == [Question("www.example.test")]
    assert len(net.sent) == 1  # not retried over UDP elsewhere
    assert net.resolver.cache.get(("www.example.test", dns.TYPE_A), net.now) is None


@pytest.mark.parametrize("name", ["", ".", "a..b", "x" * 64 + ".test", "caf\u00e9.test"])
def test_bad_names_fail_at_once(name: str) -> None:
    net = Net()
    q = net.resolve(name, run=False)
    assert q.error is not None and q.error.code == "bad_name" and net.sent == []


def test_ipv4_literal_needs_no_query() -> None:
    net = Net()
    q = net.resolve("198.51.100.80", run=False)
    assert q.result() == [WWW] and net.sent == []


def test_aaaa_query_follows_the_cname_and_gives_ipv6_addresses() -> None:
    """RFC 3596: the AAAA question, asked as A's is, answered with 128-bit addresses."""
    net = Net()
    q = net.resolve("web.example.test", qtype=dns.TYPE_AAAA)
    assert q.result() == [WWW6] and q.addresses == [int(WWW6)]
    assert q.cname_chain == ["www.example.test"] and q.ttl == 45
    sent = dpkt.dns.DNS(net.sent[0][1].payload)
    assert (sent.qd[0].name, sent.qd[0].type) == ("web.example.test", dns.TYPE_AAAA)
    assert Net().resolve("v6only.example.test", qtype=dns.TYPE_AAAA).addresses == [
        int(ipaddress.IPv6Address("2001:db8:1::6")), int(ipaddress.IPv6Address("2001:db8:1::7"))]


def test_a_and_aaaa_answers_are_cached_apart() -> None:
    net = Net()
    net.resolve("www.example.test")
    q6 = net.resolve("www.example.test", qtype=dns.TYPE_AAAA)
    assert not q6.from_cache and q6.addresses == [int(WWW6)]
    again = net.resolve("www.example.test", qtype=dns.TYPE_AAAA)
    assert again.from_cache and again.addresses == [int(WWW6)] and len(net.sent) == 2


def test_name_without_aaaa_is_nodata_for_aaaa() -> None:
    q = Net().resolve("two.example.test", qtype=dns.TYPE_AAAA)
    assert q.error is not None and q.error.code == "nodata" and "no AAAA record" in str(q.error)
    assert q.addresses == []


def test_ipv6_literal_needs_no_aaaa_query() -> None:
    net = Net()
    q = net.resolve("2001:DB8::1", qtype=dns.TYPE_AAAA, run=False)
    assert q.result() == [ipaddress.IPv6Address("2001:db8::1")] and net.sent == []


def test_no_servers_is_an_error() -> None:
    net = Net({})
    q = net.resolve("www.example.test", run=False)
    assert q.error is not None and "no DNS server" in str(q.error)


def test_outstanding_queries_are_bounded() -> None:
    net = Net({NS1: FakeDns(mode="silent")}, DnsConfig(max_outstanding=3))
    handles = [net.resolve(f"h{i}.example.test", run=False) for i in range(4)]
    assert [h.done for h in handles] == [False, False, False, True]
    assert handles[3].error is not None and handles[3].error.code == "overloaded"


def test_cancel() -> None:
    net = Net({NS1: FakeDns(mode="silent")})
    q = net.resolve("www.example.test", run=False)
    net.resolver.cancel(q)
    assert q.error is not None and q.error.code == "cancelled" and net.resolver.get_timer() is None
    reply = FakeDns().answer(net.sent[0][1].payload)
    net.resolver.receive(NS1, 53, reply, net.now)
    assert net.counters.drops() == {"dns.unknown_id": 1}


# ---------------------------------------------------------------------- answers that must not count


def _pending() -> tuple[Net, object, bytes, int]:
    """A query in flight, the genuine answer, and the port it was sent from."""
    net = Net({NS1: FakeDns(mode="silent")})
    q = net.resolve("www.example.test", run=False)
    sent = net.sent[0][1]
    return net, q, FakeDns().answer(sent.payload), sent.src_port


def _edit(payload: bytes, **changes) -> bytes:
    msg = dns.parse(payload)
    for key, value in changes.items():
        setattr(msg, key, value)
    return dns.build(msg)


@pytest.mark.parametrize("case", ["wrong id", "wrong server", "wrong source port", "wrong destination port",
                                  "wrong name", "wrong type", "wrong class", "no question", "two questions",
                                  "not a response", "not a query opcode"])
def test_spoofed_or_mismatched_answers_are_dropped_and_counted(case: str) -> None:
    net, q, good, port = _pending()
    msg = dns.parse(good)
    server, sport, dport, payload = NS1, 53, port, good
    reason = {"wrong id": "dns.unknown_id", "wrong server": "dns.wrong_server"}.get(case)
    if case == "wrong id":
        payload = _edit(good, id=(msg.id + 1) & 0xFFFF)
    elif case == "wrong server":
        server = NS2
    elif case == "wrong source port":
        sport, reason = 5353, "dns.wrong_port"
    elif case == "wrong destination port":
        dport, reason = port ^ 1, "dns.wrong_port"
    elif case in ("wrong name", "wrong type", "wrong class", "no question", "two questions"):
        question = {"wrong name": [Question("evil.example.test")],
                    "wrong type": [Question("www.example.test", dns.TYPE_AAAA)],
                    "wrong class": [Question("www.example.test", dns.TYPE_A, 3)],
                    "no question": [],
                    "two questions": [Question("www.example.test")] * 2}[case]
        payload, reason = _edit(good, questions=question), "dns.wrong_question"
    elif case == "not a response":
        payload, reason = _edit(good, flags=msg.flags & ~dns.FLAG_QR), "dns.not_a_response"
    elif case == "not a query opcode":
        payload, reason = _edit(good, flags=msg.flags | (2 << 11)), "dns.not_a_response"
    assert net.resolver.receive(server, sport, payload, net.now, dst_port=dport) == []
    assert net.counters.drops() == {reason: 1}
    assert not q.done
    net.resolver.receive(NS1, 53, good, net.now, dst_port=port)  # the genuine answer still counts
    assert q.result() == [WWW]


def test_spoofed_answer_racing_the_real_one_does_not_poison_the_cache() -> None:
    net, q, good, port = _pending()
    evil = _edit(good, answers=[Record("www.example.test", dns.TYPE_A, 1, 86400, 0x0A000001)])
    msg = dns.parse(good)
    net.resolver.receive(NS1, 53, _edit(evil, id=(msg.id + 7) & 0xFFFF), net.now, dst_port=port)
    net.resolver.receive(NS2, 53, evil, net.now, dst_port=port)
    net.resolver.receive(NS1, 53, good, net.now, dst_port=port)
    assert q.result() == [WWW]
    q2 = net.resolve("www.example.test", run=False)
    assert q2.from_cache and q2.result() == [WWW]


def test_answer_owned_by_another_name_does_not_count() -> None:
    net, q, good, port = _pending()
    bogus = _edit(good, answers=[Record("other.example.test", dns.TYPE_A, 1, 60, 0x0A000001)])
    net.resolver.receive(NS1, 53, bogus, net.now, dst_port=port)
    assert q.error is not None and q.error.code == "nodata"  # no A record for the name asked


def test_a_server_that_refuses_hands_the_question_to_the_next_at_once() -> None:
    """Resolver.refused (an ICMP port unreachable from the server whose turn it is): the next server is
    asked at that moment; a refusal of an earlier turn's question only forgets that question; a round of
    refusals ends as a timeout would, without the waiting."""
    r = Resolver([NS1, NS2], random.Random(1), DnsConfig(timeout=2.0, attempts=1))
    q, out = r.query("www.example.test", 0.0)
    assert [d.server for d in out] == [NS1]
    out = r.refused(NS1, 0.1)
    assert [d.server for d in out] == [NS2] and r.get_timer() == pytest.approx(2.1)
    assert r.refused(NS1, 0.2) == [] and not q.done  # NS1 has no question of ours left
    assert r.refused(NS2, 0.3) == [] and q.done and q.error is not None and q.error.code == "timeout"
    assert r.counters["dns.port_unreachable"] == 2 and r.counters["dns.timeouts"] == 0
