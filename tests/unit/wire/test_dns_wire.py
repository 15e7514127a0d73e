"""DNS messages (RFC 1035): queries and answers against dpkt, compression, name limits, malformed input."""

from __future__ import annotations

import ipaddress
import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystack.wire import dns
from pystack.wire.dns import DnsMessage, Question, Record, Soa

from .reference import FUZZ, PROPERTY, parses_or_rejects, rejects, u16, u32

WWW = 0xC6336450  # 198.51.100.80
RESPONSE = dns.FLAG_QR | dns.FLAG_RD | dns.FLAG_RA

labels_st = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
names_st = st.lists(labels_st, min_size=1, max_size=5).map(".".join)


def _header(ident: int, flags: int, qd: int, an: int, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


def _wire_name(name: str) -> bytes:
    return b"".join(bytes([len(lab)]) + lab.encode() for lab in name.split(".")) + b"\x00"


# A dnsmasq-shaped answer for web.example.test, written byte by byte: the CNAME's owner points at the
# question (offset 12), its target "www" points at "example.test" inside the question (offset 16), and
# the A record's owner points at the CNAME target (offset 46).
HAND_ANSWER = (
    _header(0xBEEF, 0x8580, 1, 2)
    + _wire_name("web.example.test") + b"\x00\x01\x00\x01"
    + b"\xc0\x0c" + b"\x00\x05\x00\x01" + (300).to_bytes(4, "big") + b"\x00\x06" + b"\x03www\xc0\x10"
    + b"\xc0\x2e" + b"\x00\x01\x00\x01" + (60).to_bytes(4, "big") + b"\x00\x04" + WWW.to_bytes(4, "big")
)


def test_query_matches_the_rfc_layout_and_dpkt() -> None:
    raw = dns.build_query(0x1234, "www.example.test")
    assert raw == _header(0x1234, dns.FLAG_RD, 1, 0) + _wire_name("www.example.test") + b"\x00\x01\x00\x01"
    ref = dpkt.dns.DNS(raw)
    assert (ref.id, ref.qr, ref.rd, ref.qd[0].name, ref.qd[0].type, ref.qd[0].cls) == (
        0x1234, 0, 1, "www.example.test", dns.TYPE_A, dns.CLASS_IN)
    msg = dns.parse(raw)
    assert not msg.is_response and msg.questions == [Question("www.example.test", dns.TYPE_A, dns.CLASS_IN)]


def test_hand_written_compressed_answer() -> None:
    msg = dns.parse(HAND_ANSWER)
    assert msg.id == 0xBEEF and msg.is_response and msg.rcode == dns.RCODE_NOERROR and not msg.truncated
    assert msg.flags & dns.FLAG_AA
    assert msg.answers == [Record("web.example.test", dns.TYPE_CNAME, dns.CLASS_IN, 300, "www.example.test"),
                           Record("www.example.test", dns.TYPE_A, dns.CLASS_IN, 60, WWW)]
    ref = dpkt.dns.DNS(HAND_ANSWER)
    assert [(rr.name, rr.type) for rr in ref.an] == [("web.example.test", 5), ("www.example.test", 1)]
    assert ref.an[0].cname == "www.example.test" and ref.an[1].ip == WWW.to_bytes(4, "big")


def test_our_compression_saves_what_dpkt_saves_and_reads_back() -> None:
    msg = DnsMessage(7, RESPONSE, [Question("web.example.test")], [
        Record("web.example.test", dns.TYPE_CNAME, dns.CLASS_IN, 30, "www.example.test"),
        Record("www.example.test", dns.TYPE_A, dns.CLASS_IN, 30, WWW)])
    ours = dns.build(msg)
    assert dns.parse(ours) == msg
    plain = dns.build(msg, compress=False)
    assert dns.parse(plain) == msg
    assert len(ours) < len(plain)
    ref = dpkt.dns.DNS(id=7, op=dns.FLAG_RD | dns.FLAG_RA, qr=1)  # dpkt keeps the low flag bits in 'op'
    ref.qd = [dpkt.dns.DNS.Q(name="web.example.test", type=1, cls=1)]
    ref.an = [dpkt.dns.DNS.RR(name="web.example.test", type=5, cls=1, ttl=30, cname="www.example.test"),
              dpkt.dns.DNS.RR(name="www.example.test", type=1, cls=1, ttl=30, ip=WWW.to_bytes(4, "big"))]
    assert len(bytes(ref)) == len(ours)
    assert dns.parse(bytes(ref)) == msg


def test_negative_answer_with_soa_parses_like_dpkt() -> None:
    ref = dpkt.dns.DNS(id=9, op=dns.FLAG_RD | dns.FLAG_RA, qr=1, rcode=dns.RCODE_NXDOMAIN)
    ref.qd = [dpkt.dns.DNS.Q(name="nope.example.test", type=1, cls=1)]
    ref.ns = [dpkt.dns.DNS.RR(name="example.test", type=6, cls=1, ttl=600, mname="ns.example.test",
                              rname="hostmaster.example.test", serial=2024, refresh=3600, retry=600,
                              expire=86400, minimum=300)]
    msg = dns.parse(bytes(ref))
    assert msg.rcode == dns.RCODE_NXDOMAIN and msg.answers == []
    assert msg.authority == [Record("example.test", dns.TYPE_SOA, dns.CLASS_IN, 600,
                                    Soa("ns.example.test", "hostmaster.example.test", 2024, 3600, 600, 86400, 300))]
    assert dns.parse(dns.build(msg)) == msg


def test_truncation_flag_and_unknown_types_kept_raw() -> None:
    txt = b"\x05hello\x05world"
    msg = DnsMessage(3, RESPONSE | dns.FLAG_TC, [Question("x.test", dns.TYPE_TXT)],
                     [Record("x.test", dns.TYPE_TXT, dns.CLASS_IN, 5, txt)],
                     additional=[Record("", dns.TYPE_OPT, 1232, 0, b"")])
    parsed = dns.parse(dns.build(msg))
    assert parsed.truncated and parsed == msg
    ref = dpkt.dns.DNS(dns.build(msg))
    assert ref.an[0].text == ["hello", "world"] and ref.ar[0].type == dns.TYPE_OPT


def test_aaaa_record_is_an_ipv6_address_as_dpkt_reads_it() -> None:
    """RFC 3596 section 2.2: 16 octets of address, decoded as A's four are."""
    address = ipaddress.IPv6Address("2001:db8:1::80")
    msg = DnsMessage(4, RESPONSE, [Question("www.example.test", dns.TYPE_AAAA)],
                     [Record("www.example.test", dns.TYPE_AAAA, dns.CLASS_IN, 60, address)])
    raw = dns.build(msg)
    assert dns.parse(raw) == msg
    ref = dpkt.dns.DNS(raw)
    assert ref.an[0].type == dns.TYPE_AAAA and ref.an[0].ip6 == address.packed
    built = dpkt.dns.DNS(id=4, op=dns.FLAG_RD | dns.FLAG_RA, qr=1)
    built.qd = [dpkt.dns.DNS.Q(name="www.example.test", type=dns.TYPE_AAAA, cls=1)]
    built.an = [dpkt.dns.DNS.RR(name="www.example.test", type=dns.TYPE_AAAA, cls=1, ttl=60, ip6=address.packed)]
    assert dns.parse(bytes(built)).answers == msg.answers


record_st = st.one_of(
    st.builds(lambda n, t, a: Record(n, dns.TYPE_A, dns.CLASS_IN, t, a), names_st, u32, u32),
    st.builds(lambda n, t, c: Record(n, dns.TYPE_CNAME, dns.CLASS_IN, t, c), names_st, u32, names_st),
    st.builds(lambda n, t, d: Record(n, dns.TYPE_AAAA, dns.CLASS_IN, t, ipaddress.IPv6Address(d)), names_st, u32,
              st.binary(min_size=16, max_size=16)),
)


@given(u16, names_st, st.lists(record_st, max_size=6), st.lists(record_st, max_size=2), st.booleans())
@PROPERTY
def test_round_trip_against_dpkt(ident, qname, answers, additional, compress) -> None:
    msg = DnsMessage(ident, RESPONSE, [Question(qname)], answers, [], additional)
    raw = dns.build(msg, compress=compress)
    assert dns.parse(raw) == msg
    ref = dpkt.dns.DNS(raw)
    assert ref.id == ident and ref.qd[0].name == qname
    for rec, rr in zip(answers + additional, list(ref.an) + list(ref.ar), strict=True):
        assert (rr.name, rr.type, rr.ttl) == (rec.name, rec.rtype, rec.ttl)
        if rec.rtype == dns.TYPE_A:
            assert rr.ip == rec.rdata.to_bytes(4, "big")
        elif rec.rtype == dns.TYPE_CNAME:
            assert rr.cname == rec.rdata
        else:
            assert rr.ip6 == rec.rdata.packed


# ---------------------------------------------------------------------- names


def test_unusual_label_bytes_round_trip_escaped() -> None:
    raw = _header(1, 0, 1, 0) + b"\x03a.b\x04c d\x00\x02XY\x00" + b"\x00\x01\x00\x01"
    msg = dns.parse(raw)
    assert msg.questions[0].name == "a\\046b.c\\032d\\000.XY"
    assert dns.build(msg) == raw
    assert dns.name_key("A\\.B.c\\032D\\000.xy.") == dns.name_key(msg.questions[0].name)


def test_name_key_is_case_insensitive_and_ignores_the_trailing_dot() -> None:
    assert dns.name_key("WWW.Example.TEST.") == dns.name_key("www.example.test") == "www.example.test"
    assert dns.name_key(".") == dns.name_key("") == ""
    assert dns.name_key("a.b") != dns.name_key("a\\.b")


def test_longest_legal_name_parses_and_one_more_octet_does_not() -> None:
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])  # 4 * 64 - 2 + 1 = 255 octets on the wire
    raw = dns.build(DnsMessage(1, 0, [Question(longest)]))
    assert dns.parse(raw).questions[0].name == longest
    too_long = _header(1, 0, 1, 0) + b"".join(b"\x3f" + b"a" * 63 for _ in range(3)) + b"\x3e" + b"b" * 62 \
        + b"\x00\x00\x01\x00\x01"
    rejects(dns.parse, too_long, {"dns.name_too_long"})
    with pytest.raises(ValueError):
        dns.build_query(1, longest + "b")


def test_name_built_from_pointers_is_held_to_255_octets() -> None:
    # Each answer's owner adds a 63-octet label in front of the previous owner through a pointer, so the
    # fourth name is 4 * 64 + 1 = 257 octets long although every pointer is legal.
    body = bytearray(_header(1, RESPONSE, 0, 5))
    prev = None
    for _ in range(5):
        here = len(body)
        body += b"\x3f" + b"x" * 63 + ((0xC000 | prev).to_bytes(2, "big") if prev is not None else b"\x00")
        body += b"\xff\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        prev = here
    rejects(dns.parse, bytes(body), {"dns.name_too_long"})


@pytest.mark.parametrize("name", ["a..b", "a" * 64 + ".test", "caf\u00e9.test", "bad\\", "x\\300"])
def test_builder_refuses_impossible_names(name: str) -> None:
    with pytest.raises(ValueError):
        dns.build_query(1, name)


# ---------------------------------------------------------------------- malformed


def test_truncated_at_every_offset_is_rejected() -> None:
    for cut in range(len(HAND_ANSWER)):
        rejects(dns.parse, HAND_ANSWER[:cut], {"dns.truncated"})


def test_trailing_bytes_after_the_records_are_ignored() -> None:
    assert dns.parse(HAND_ANSWER + b"junk") == dns.parse(HAND_ANSWER)


def _question_then(name_bytes: bytes, an: int = 1) -> bytes:
    """A message with one question for 'a.test' then one answer whose owner is ``name_bytes``."""
    return (_header(1, RESPONSE, 1, an) + _wire_name("a.test") + b"\x00\x01\x00\x01"
            + name_bytes + b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes(4))


@pytest.mark.parametrize("case,data,reason", [
    ("pointer to itself", _question_then(b"\xc0\x18"), "dns.bad_pointer"),
    ("pointer forward", _question_then(b"\xc0\x30"), "dns.bad_pointer"),
    ("pointer into the header", _question_then(b"\xc0\x02"), "dns.bad_pointer"),
    ("loop through its own label", _question_then(b"\x01z\xc0\x18"), "dns.bad_pointer"),
    ("two pointers to each other", _header(1, 0, 2, 0) + b"\x01a\xc0\x14\x00\x01\x00\x01\x01b\xc0\x0c\x00\x01\x00\x01",
     "dns.bad_pointer"),
    ("label type 01", _question_then(b"\x41a\x00"), "dns.bad_label_type"),
    ("label type 10", _question_then(b"\x81a\x00"), "dns.bad_label_type"),
    ("A record of 5 octets", _header(1, RESPONSE, 0, 1) + b"\x00\x00\x01\x00\x01" + bytes(4) + b"\x00\x05"
     + bytes(5), "dns.bad_rdata"),
    ("AAAA record of 15 octets", _header(1, RESPONSE, 0, 1) + b"\x00\x00\x1c\x00\x01" + bytes(4) + b"\x00\x0f"
     + bytes(15), "dns.bad_rdata"),
    ("AAAA record of 17 octets", _header(1, RESPONSE, 0, 1) + b"\x00\x00\x1c\x00\x01" + bytes(4) + b"\x00\x11"
     + bytes(17), "dns.bad_rdata"),
    ("CNAME with trailing junk", _header(1, RESPONSE, 0, 1) + b"\x00\x00\x05\x00\x01" + bytes(4) + b"\x00\x03"
     + b"\x00zz", "dns.bad_rdata"),
    ("CNAME running past its rdata", _header(1, RESPONSE, 0, 1) + b"\x00\x00\x05\x00\x01" + bytes(4) + b"\x00\x01"
     + b"\x01z\x00", "dns.bad_rdata"),
    ("SOA too short", _header(1, RESPONSE, 0, 1) + b"\x00\x00\x06\x00\x01" + bytes(4) + b"\x00\x06"
     + b"\x00\x00" + bytes(4), "dns.bad_rdata"),
    ("more questions than sent", _header(1, 0, 2, 0) + _wire_name("a.test") + b"\x00\x01\x00\x01",
     "dns.truncated"),
])
def test_malformed_messages_are_rejected(case: str, data: bytes, reason: str) -> None:
    rejects(dns.parse, data, {reason})


def test_pointer_chain_hops_are_bounded() -> None:
    # The root at offset 12 (the question), then a chain of pointers inside an unknown record's RDATA,
    # each pointing at the one before: legal backwards jumps, but more of them than any name needs.
    n = dns.MAX_POINTER_HOPS
    q = b"\x00\x00\x01\x00\x01"  # question: root, A, IN
    rr_head = b"\x00\xff\x00\x00\x01\x00\x00\x00\x00" + (2 * n).to_bytes(2, "big")
    chain_start = 12 + len(q) + len(rr_head)

    def at(k: int) -> int:
        return chain_start + 2 * k

    chain = b"".join((0xC000 | (12 if k == 0 else at(k - 1))).to_bytes(2, "big") for k in range(n))
    body = _header(1, RESPONSE, 1, 2) + q + rr_head + chain
    tail = b"\xff\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    # An owner pointing at chain pointer k follows k + 2 pointers in all.
    within = body + (0xC000 | at(n - 2)).to_bytes(2, "big") + tail
    assert dns.parse(within).answers[1].name == ""
    beyond = body + (0xC000 | at(n - 1)).to_bytes(2, "big") + tail
    rejects(dns.parse, beyond, {"dns.too_many_pointers"})


@given(st.binary(max_size=200))
@FUZZ
def test_random_bytes_parse_or_reject(data: bytes) -> None:
    parses_or_rejects(dns.parse, data, "dns")


@given(st.integers(min_value=0, max_value=len(HAND_ANSWER) - 1), st.binary(min_size=1, max_size=4))
@FUZZ
def test_corrupted_answers_parse_or_reject(offset: int, junk: bytes) -> None:
    raw = bytearray(HAND_ANSWER)
    raw[offset:offset + len(junk)] = junk
    parses_or_rejects(dns.parse, bytes(raw), "dns")
