"""ICMPv4 (RFC 792): round trips, dpkt both ways, echo replies, error quotes and malformed messages."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pystack.wire import icmp, ipv4, udp
from pystack.wire.checksum import is_valid
from pystack.wire.icmp import HEADER_LEN, TYPE_DEST_UNREACHABLE, TYPE_ECHO_REPLY, TYPE_ECHO_REQUEST
from pystack_lab.reference import ref_checksum, ref_ones_sum

from .reference import FUZZ, PROPERTY, flip_bit, parses_or_rejects, payloads, rejects, u8, u16, u32, with_word

SRC = 0xC0000201
DST = 0xC0000202
# Types dpkt decodes into sub-objects are compared field by field elsewhere; the rest byte for byte.
raw_types = u8.filter(lambda t: t not in dpkt.icmp.ICMP._typesw)
PING = icmp.build(TYPE_ECHO_REQUEST, 0, 0x4D2 << 16 | 1, bytes(range(1, 57)))  # like ping's 56 data bytes


@given(u8, u8, u32, payloads)
@PROPERTY
def test_build_parse_round_trip(mtype: int, code: int, rest: int, body: bytes) -> None:
    msg = icmp.build(mtype, code, rest, body)
    assert len(msg) == HEADER_LEN + len(body)
    m = icmp.parse(msg)
    assert (m.type, m.code, m.rest, bytes(m.body)) == (mtype, code, rest, body)
    assert icmp.build(m.type, m.code, m.rest, m.body) == msg
    assert icmp.parse(memoryview(msg)) == m
    # The checksum is the reference's over the message with a zero checksum field, and verifies.
    assert int.from_bytes(msg[2:4], "big") == ref_checksum(with_word(msg, 2, 0))
    assert ref_ones_sum(msg) == 0xFFFF


def test_known_echo_request_bytes() -> None:
    # Type 8, code 0, id 0x1234, seq 1, data "abcd": checksum worked out with the reference.
    expected = bytes.fromhex("08000000123400016162636" + "4")
    expected = with_word(expected, 2, ref_checksum(expected))
    assert icmp.build(TYPE_ECHO_REQUEST, 0, 0x12340001, b"abcd") == expected


@given(raw_types, u8, u32, payloads)
@PROPERTY
def test_ours_parsed_by_dpkt(mtype: int, code: int, rest: int, body: bytes) -> None:
    msg = icmp.build(mtype, code, rest, body)
    m = dpkt.icmp.ICMP(msg)
    assert (m.type, m.code, bytes(m.data)) == (mtype, code, rest.to_bytes(4, "big") + body)
    assert m.sum == dpkt.in_cksum(with_word(msg, 2, 0))


@given(st.sampled_from([TYPE_ECHO_REQUEST, TYPE_ECHO_REPLY]), u16, u16, payloads)
@PROPERTY
def test_echo_parsed_by_dpkt(mtype: int, ident: int, seq: int, data: bytes) -> None:
    m = dpkt.icmp.ICMP(icmp.build(mtype, 0, ident << 16 | seq, data))
    assert isinstance(m.data, dpkt.icmp.ICMP.Echo)
    assert (m.type, m.code, m.echo.id, m.echo.seq, m.echo.data) == (mtype, 0, ident, seq, data)


@given(st.sampled_from([TYPE_ECHO_REQUEST, TYPE_ECHO_REPLY]), u8, u16, u16, payloads)
@PROPERTY
def test_dpkt_echo_parsed_by_ours(mtype: int, code: int, ident: int, seq: int, data: bytes) -> None:
    raw = bytes(dpkt.icmp.ICMP(type=mtype, code=code, data=dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=data)))
    m = icmp.parse(raw)
    assert (m.type, m.code, m.rest >> 16, m.rest & 0xFFFF, bytes(m.body)) == (mtype, code, ident, seq, data)
    assert icmp.build(mtype, code, ident << 16 | seq, data) == raw


@given(raw_types, u8, st.binary(min_size=4, max_size=4), payloads)
@PROPERTY
def test_dpkt_other_types_parsed_by_ours(mtype: int, code: int, rest: bytes, body: bytes) -> None:
    raw = bytes(dpkt.icmp.ICMP(type=mtype, code=code, data=rest + body))
    m = icmp.parse(raw)
    assert (m.type, m.code, m.rest, bytes(m.body)) == (mtype, code, int.from_bytes(rest, "big"), body)


def test_port_unreachable_quotes_a_small_datagram_whole() -> None:
    # RFC 1812 4.3.2.3, as Linux: the quote is as much of the datagram as fits a 576-byte error.
    datagram = ipv4.build(DST, SRC, ipv4.PROTO_UDP, udp.build(DST, SRC, 40000, 9, b"x" * 100), ident=77)
    body = icmp.error_body(datagram[:20], datagram[20:])
    assert body == datagram
    m = dpkt.icmp.ICMP(icmp.build(TYPE_DEST_UNREACHABLE, icmp.CODE_PORT_UNREACHABLE, 0, body))
    assert (m.type, m.code) == (3, 3)
    quoted = m.unreach.ip
    assert (quoted.id, quoted.p, quoted.src, quoted.dst) == (77, 17, DST.to_bytes(4, "big"), SRC.to_bytes(4, "big"))
    assert bytes(quoted) == datagram
    assert bytes(quoted.data.data) == b"x" * 100  # the whole UDP payload comes back


def test_a_large_datagram_is_quoted_up_to_548_bytes() -> None:
    datagram = ipv4.build(DST, SRC, ipv4.PROTO_UDP, udp.build(DST, SRC, 40000, 9, bytes(range(256)) * 5))
    body = icmp.error_body(memoryview(datagram)[:20], memoryview(datagram)[20:])
    assert len(body) == 548 and body == datagram[:548]
    error = ipv4.build(SRC, DST, ipv4.PROTO_ICMP, icmp.build(TYPE_DEST_UNREACHABLE, icmp.CODE_PORT_UNREACHABLE, 0,
                                                              body))
    assert len(error) == 576
    unreach = dpkt.ip.IP(error).data.unreach
    assert bytes(unreach)[4:] == datagram[:548]  # after the 4 unused bytes
    assert (unreach.ip.len, len(unreach.ip.data.data)) == (len(datagram), 548 - 28)  # header says 1308: truncated


def test_error_body_with_options_and_short_payload() -> None:
    with_opts = ipv4.build(SRC, DST, 17, bytes(range(250)) * 3, options=b"\x94\x04\x00\x00")
    assert icmp.error_body(with_opts[:24], with_opts[24:]) == with_opts[:548]  # options count in the 548
    tiny = ipv4.build(SRC, DST, 17, b"abc")
    assert icmp.error_body(memoryview(tiny)[:20], memoryview(tiny)[20:]) == tiny  # fewer than 8 payload bytes


def test_a_small_mtu_shortens_the_quote_but_not_below_8_bytes() -> None:
    datagram = ipv4.build(SRC, DST, 17, bytes(1000))
    assert icmp.error_body(datagram[:20], datagram[20:], 300) == datagram[:300 - 28]
    assert icmp.error_body(datagram[:20], datagram[20:], 68) == datagram[:40]  # the error fills 68 bytes
    with_opts = ipv4.build(SRC, DST, 17, bytes(100), options=bytes(40))
    assert icmp.error_body(with_opts[:60], with_opts[60:], 68) == with_opts[:68]  # RFC 792's 8 bytes at least


def test_fragmentation_needed_carries_the_mtu() -> None:
    # RFC 1191: next-hop MTU in the low 16 bits of the "rest" word.
    datagram = ipv4.build(SRC, DST, 17, bytes(1480))
    body = icmp.error_body(datagram[:20], datagram[20:])
    m = dpkt.icmp.ICMP(icmp.build(TYPE_DEST_UNREACHABLE, icmp.CODE_FRAGMENTATION_NEEDED, 1400, body))
    assert (m.code, m.unreach.mtu) == (4, 1400)


# --- echo reply by incremental checksum update -------------------------------------------------------


@given(u8, u32, payloads)
@PROPERTY
def test_echo_reply_from_request(code: int, rest: int, data: bytes) -> None:
    request = icmp.build(TYPE_ECHO_REQUEST, code, rest, data)
    reply = icmp.echo_reply_from_request(request)
    assert is_valid(reply) and ref_ones_sum(reply) == 0xFFFF
    m = icmp.parse(reply)
    assert (m.type, m.code, m.rest, bytes(m.body)) == (TYPE_ECHO_REPLY, code, rest, data)
    assert icmp.echo_reply_from_request(memoryview(request)) == reply
    full = icmp.build(TYPE_ECHO_REPLY, code, rest, data)
    # Bit for bit what a full recomputation gives, outside the +0/-0 corner tested below.
    assume(full[2:4] != b"\x00\x00")
    assert reply == full


@given(u8, u16, payloads)
@PROPERTY
def test_echo_reply_from_request_with_negative_zero_checksum(code: int, ident: int, data: bytes) -> None:
    # A sender may put 0xFFFF where a full computation gives 0x0000: both verify; the reply must too.
    # The sequence number is chosen so that the request's words sum to 0xFFFF (checksum +0).
    unchecked = with_word(icmp.build(TYPE_ECHO_REQUEST, code, ident << 16, data), 2, 0)
    seq = 0xFFFF - ref_ones_sum(unchecked)
    request = icmp.build(TYPE_ECHO_REQUEST, code, ident << 16 | seq, data)
    assert request[2:4] == b"\x00\x00"
    request = with_word(request, 2, 0xFFFF)
    assert icmp.parse(request).type == TYPE_ECHO_REQUEST
    reply = icmp.echo_reply_from_request(request)
    assert reply == icmp.build(TYPE_ECHO_REPLY, code, ident << 16 | seq, data)


def test_echo_reply_negative_zero_request_example() -> None:
    # Guaranteed example for the test above: the request's words sum to 0xFFFF (so its checksum is +0).
    request = icmp.build(TYPE_ECHO_REQUEST, 0, 0xF7FF0000)
    assert request[2:4] == b"\x00\x00"
    reply = icmp.echo_reply_from_request(with_word(request, 2, 0xFFFF))
    assert reply == icmp.build(TYPE_ECHO_REPLY, 0, 0xF7FF0000)


def test_echo_reply_checksum_is_positive_zero_like_a_full_recomputation() -> None:
    # RFC 1624 section 3/4: the reply's words sum to 0xFFFF, so its checksum is 0x0000, never 0xFFFF.
    request = icmp.build(TYPE_ECHO_REQUEST, 0, 0xFFFF0000)
    full = icmp.build(TYPE_ECHO_REPLY, 0, 0xFFFF0000)
    assert full[2:4] == b"\x00\x00"
    assert icmp.echo_reply_from_request(request) == full


def test_echo_reply_to_an_all_zero_request_is_all_ones() -> None:
    # id 0, seq 0, no data: the reply's words are all zero, so only 0xFFFF verifies (RFC 1624 section 3);
    # the plain equation 3 would give 0x0000 here, which the kernel would drop.
    reply = icmp.echo_reply_from_request(icmp.build(TYPE_ECHO_REQUEST, 0, 0))
    assert reply == b"\x00\x00\xff\xff\x00\x00\x00\x00"
    assert is_valid(reply) and icmp.parse(reply).type == TYPE_ECHO_REPLY
    assert icmp.echo_reply_from_request(icmp.build(TYPE_ECHO_REQUEST, 0, 0, bytes(6))) == icmp.build(TYPE_ECHO_REPLY, 0, 0, bytes(6))


# --- malformed input --------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", range(len(PING)))
def test_truncated_at_every_offset(cut: int) -> None:
    short = PING[:cut]
    if cut < HEADER_LEN:
        rejects(icmp.parse, short, {"icmp.truncated"})
    else:
        # ICMP has no length field: the checksum is what notices a shortened message (this sample never
        # sums to -0 when cut, which the reference confirms).
        assert ref_ones_sum(short) != 0xFFFF
        rejects(icmp.parse, short, {"icmp.bad_checksum"})
    rejects(icmp.parse, memoryview(PING)[:cut], {"icmp.truncated", "icmp.bad_checksum"})


@given(u8, u8, u32, payloads, st.data())
@PROPERTY
def test_truncation_is_refused_exactly_when_the_checksum_breaks(mtype: int, code: int, rest: int, body: bytes, data: st.DataObject) -> None:
    msg = icmp.build(mtype, code, rest, body)
    short = msg[:data.draw(st.integers(min_value=0, max_value=len(msg) - 1))]
    if len(short) < HEADER_LEN:
        rejects(icmp.parse, short, {"icmp.truncated"})
    elif ref_ones_sum(short) == 0xFFFF:  # e.g. only zero words were cut off: indistinguishable from valid
        assert bytes(icmp.parse(short).body) == short[HEADER_LEN:]
    else:
        rejects(icmp.parse, short, {"icmp.bad_checksum"})


@pytest.mark.parametrize("bit", range(0, len(PING) * 8, 3))
def test_single_bit_flips_are_refused(bit: int) -> None:
    rejects(icmp.parse, flip_bit(PING, bit), {"icmp.bad_checksum"})


@pytest.mark.parametrize("bit", range(HEADER_LEN * 8))
def test_every_header_bit_flip_is_refused(bit: int) -> None:
    rejects(icmp.parse, flip_bit(PING, bit), {"icmp.bad_checksum"})


def test_zero_checksum_is_not_special_in_icmp() -> None:
    # Unlike UDP, ICMP has no "no checksum" value (RFC 792).
    rejects(icmp.parse, with_word(PING, 2, 0), {"icmp.bad_checksum"})


@given(st.binary(max_size=80))
@FUZZ
def test_random_bytes_never_raise_anything_but_wire_error(data: bytes) -> None:
    parses_or_rejects(icmp.parse, data, "icmp")
