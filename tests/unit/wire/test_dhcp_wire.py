"""DHCP messages (RFC 2131/2132): round trips, dpkt both ways, typed options, overload, and malformed input."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystack.wire import dhcp
from pystack.wire.dhcp import DhcpMessage

from .reference import FUZZ, PROPERTY, ipv4_addrs, macs, parses_or_rejects, rejects, u16, u32

MAC = bytes.fromhex("020000000002")
SERVER = 0xC0000201
YOU = 0xC0000264


def _offer_options() -> dict[int, bytes]:
    return {
        dhcp.OPT_MESSAGE_TYPE: bytes([dhcp.OFFER]),
        dhcp.OPT_SERVER_ID: dhcp.option_u32(SERVER),
        dhcp.OPT_LEASE_TIME: dhcp.option_u32(3600),
        dhcp.OPT_T1: dhcp.option_u32(1800),
        dhcp.OPT_T2: dhcp.option_u32(3150),
        dhcp.OPT_SUBNET_MASK: dhcp.option_u32(0xFFFFFF00),
        dhcp.OPT_ROUTER: dhcp.option_addresses([SERVER]),
        dhcp.OPT_DNS: dhcp.option_addresses([SERVER, 0x08080808]),
        dhcp.OPT_DOMAIN: b"example.test",
    }


def _offer() -> DhcpMessage:
    return DhcpMessage(op=dhcp.OP_REPLY, xid=0x12345678, chaddr=MAC, yiaddr=YOU, siaddr=SERVER,
                       flags=dhcp.FLAG_BROADCAST, options=_offer_options())


def _raw_options(*items: tuple[int, bytes]) -> bytes:
    return b"".join(bytes((code, len(v))) + v for code, v in items)


def _with_raw_options(area: bytes, sname: bytes = b"", file: bytes = b"") -> bytes:
    """A reply whose option area is exactly ``area`` (the test decides whether 'end' is there)."""
    head = dhcp.build(DhcpMessage(op=dhcp.OP_REPLY, xid=1, chaddr=MAC, sname=sname, file=file))
    return head[:dhcp.MIN_LEN] + area


def test_offer_round_trip_and_typed_options() -> None:
    raw = dhcp.build(_offer())
    assert len(raw) == dhcp.MIN_LEN + sum(2 + len(v) for v in _offer_options().values()) + 1
    assert raw[-1] == dhcp.OPT_END
    assert raw[236:240] == b"\x63\x82\x53\x63"
    msg = dhcp.parse(raw)
    assert msg == _offer()
    assert msg.message_type == dhcp.OFFER
    assert msg.server_id == SERVER
    assert (msg.lease_time, msg.t1, msg.t2) == (3600, 1800, 3150)
    assert msg.subnet_mask == 0xFFFFFF00
    assert msg.routers == [SERVER]
    assert msg.dns_servers == [SERVER, 0x08080808]
    assert msg.domain == "example.test"
    assert msg.requested_ip is None and msg.client_id is None


def test_absent_options_read_as_none_or_empty() -> None:
    raw = dhcp.build(DhcpMessage(op=dhcp.OP_REQUEST, xid=7, chaddr=MAC))
    assert len(raw) == dhcp.BOOTP_MIN_LEN  # padded after 'end' to the BOOTP minimum, RFC 1542 section 2.1
    assert raw[dhcp.MIN_LEN] == dhcp.OPT_END and raw[dhcp.MIN_LEN + 1:] == bytes(59)
    msg = dhcp.parse(raw)
    assert msg.message_type is None and msg.subnet_mask is None and msg.lease_time is None
    assert msg.routers == [] and msg.dns_servers == [] and msg.domain is None


options_st = st.dictionaries(st.integers(min_value=1, max_value=254).filter(
    lambda c: c not in dhcp._EXACT and c not in dhcp._MULTIPLE), st.binary(max_size=300), max_size=6)


@given(u32, macs, u16, u16, ipv4_addrs, ipv4_addrs, ipv4_addrs, ipv4_addrs, options_st, st.sampled_from([1, 2]))
@PROPERTY
def test_build_parse_round_trip(xid, mac, secs, flags, ci, yi, si, gi, options, op) -> None:
    msg = DhcpMessage(op=op, xid=xid, chaddr=mac, secs=secs, flags=flags, ciaddr=ci, yiaddr=yi, siaddr=si,
                      giaddr=gi, options={k: v for k, v in options.items()})
    raw = dhcp.build(msg)
    assert len(raw) >= dhcp.BOOTP_MIN_LEN
    assert dhcp.parse(raw) == msg
    # dpkt reads the same header; it does not join split options, so join them here (RFC 3396).
    ref = dpkt.dhcp.DHCP(raw)
    assert (ref.op, ref.xid, ref.secs, ref.flags, ref.ciaddr, ref.yiaddr, ref.siaddr, ref.giaddr) == (
        op, xid, secs, flags, ci, yi, si, gi)
    assert ref.chaddr == mac
    joined: dict[int, bytes] = {}
    for code, value in ref.opts:
        joined[code] = joined.get(code, b"") + value
    assert joined == options


def test_long_option_is_split_and_joined_again() -> None:
    value = bytes(range(256)) * 2  # 512 octets: three options of the same code on the wire
    raw = dhcp.build(DhcpMessage(op=dhcp.OP_REPLY, xid=1, chaddr=MAC, options={224: value}))
    assert [len(v) for c, v in dpkt.dhcp.DHCP(raw).opts if c == 224] == [255, 255, 2]
    assert dhcp.parse(raw).options[224] == value


def test_parses_a_message_built_by_dpkt() -> None:
    ref = dpkt.dhcp.DHCP(op=dpkt.dhcp.DHCP_OP_REPLY, xid=0xCAFEF00D, chaddr=MAC, yiaddr=YOU, flags=0x8000,
                         opts=[(dpkt.dhcp.DHCP_OPT_MSGTYPE, bytes([dhcp.ACK])),
                               (dpkt.dhcp.DHCP_OPT_SERVER_ID, SERVER.to_bytes(4, "big")),
                               (dpkt.dhcp.DHCP_OPT_LEASE_SEC, (120).to_bytes(4, "big")),
                               (dpkt.dhcp.DHCP_OPT_NETMASK, bytes([255, 255, 255, 0])),
                               (dpkt.dhcp.DHCP_OPT_ROUTER, SERVER.to_bytes(4, "big"))])
    msg = dhcp.parse(bytes(ref))
    assert (msg.op, msg.xid, msg.chaddr, msg.yiaddr, msg.flags) == (2, 0xCAFEF00D, MAC, YOU, 0x8000)
    assert (msg.message_type, msg.server_id, msg.lease_time, msg.subnet_mask, msg.routers) == (
        dhcp.ACK, SERVER, 120, 0xFFFFFF00, [SERVER])


def test_parses_a_captured_discover() -> None:
    # The DHCPDISCOVER that dpkt's own test suite carries (a capture from a Windows client), rebuilt by dpkt.
    ref = dpkt.dhcp.DHCP(op=1, xid=0xAD53C863, secs=0xB887, flags=0x8000, chaddr=bytes.fromhex("025582f3a600"),
                         opts=[(53, b"\x01"), (61, b"\x01\x02\x55\x82\xf3\xa6"), (50, bytes([192, 168, 0, 1])),
                               (12, b"hostname"), (60, b"MSFT 98"), (55, bytes([1, 15, 3, 6, 44, 46, 47, 57]))])
    msg = dhcp.parse(bytes(ref) + bytes(10))  # trailing padding after 'end' is allowed
    assert msg.message_type == dhcp.DISCOVER
    assert msg.client_id == b"\x01\x02\x55\x82\xf3\xa6"
    assert msg.requested_ip == 0xC0A80001
    assert msg.parameter_list == bytes([1, 15, 3, 6, 44, 46, 47, 57])
    assert msg.options[60] == b"MSFT 98"


def test_domain_tolerates_a_trailing_nul() -> None:
    area = _raw_options((dhcp.OPT_DOMAIN, b"example.test\x00")) + b"\xff"
    assert dhcp.parse(_with_raw_options(area)).domain == "example.test"


def test_pad_options_are_skipped() -> None:
    area = b"\x00\x00" + _raw_options((dhcp.OPT_MESSAGE_TYPE, b"\x05")) + b"\x00\xff"
    assert dhcp.parse(_with_raw_options(area)).message_type == dhcp.ACK


@pytest.mark.parametrize("overload", [1, 2, 3])
def test_option_overload_reads_file_then_sname(overload: int) -> None:
    in_file = _raw_options((dhcp.OPT_LEASE_TIME, dhcp.option_u32(60)), (dhcp.OPT_DOMAIN, b"a.")) + b"\xff"
    in_sname = _raw_options((dhcp.OPT_SERVER_ID, dhcp.option_u32(SERVER)), (dhcp.OPT_DOMAIN, b"test")) + b"\xff"
    area = _raw_options((dhcp.OPT_MESSAGE_TYPE, b"\x02"), (dhcp.OPT_OVERLOAD, bytes([overload]))) + b"\xff"
    msg = dhcp.parse(_with_raw_options(area, sname=in_sname, file=in_file))
    assert msg.message_type == dhcp.OFFER
    assert msg.lease_time == (60 if overload & 1 else None)
    assert msg.server_id == (SERVER if overload & 2 else None)
    assert msg.domain == {1: "a.", 2: "test", 3: "a.test"}[overload]  # RFC 3396 order: options, file, sname
    assert msg.file == (b"" if overload & 1 else in_file.rstrip(b"\x00"))


def test_without_overload_sname_and_file_are_plain_strings() -> None:
    raw = dhcp.build(DhcpMessage(op=dhcp.OP_REPLY, xid=1, chaddr=MAC, sname=b"srv", file=b"pxelinux.0"))
    msg = dhcp.parse(raw)
    assert (msg.sname, msg.file) == (b"srv", b"pxelinux.0")


# ---------------------------------------------------------------------- malformed


def test_truncated_at_every_offset_is_rejected() -> None:
    msg = _offer()
    msg.options[224] = bytes(100)  # long enough that no padding follows 'end'
    raw = dhcp.build(msg)
    assert raw[-1] == dhcp.OPT_END
    for cut in range(len(raw)):
        rejects(dhcp.parse, raw[:cut], {"dhcp.truncated", "dhcp.bad_option", "dhcp.no_end_option"})


@pytest.mark.parametrize("code,value", [
    (dhcp.OPT_SUBNET_MASK, b"\xff\xff\xff"),
    (dhcp.OPT_SUBNET_MASK, b"\xff\xff\xff\x00\x00"),
    (dhcp.OPT_ROUTER, b""),
    (dhcp.OPT_ROUTER, b"\xc0\x00\x02\x01\x01"),
    (dhcp.OPT_DNS, b"\x01\x02\x03"),
    (dhcp.OPT_LEASE_TIME, b"\x00\x00\x0e"),
    (dhcp.OPT_MESSAGE_TYPE, b""),
    (dhcp.OPT_MESSAGE_TYPE, b"\x05\x05"),
    (dhcp.OPT_SERVER_ID, b"\xc0\x00\x02"),
    (dhcp.OPT_T1, b""),
    (dhcp.OPT_T2, b"\x00" * 8),
    (dhcp.OPT_REQUESTED_IP, b"\x01"),
    (dhcp.OPT_CLIENT_ID, b"\x01"),
    (dhcp.OPT_DOMAIN, b""),
    (dhcp.OPT_PARAMETER_LIST, b""),
    (dhcp.OPT_OVERLOAD, b"\x04"),
])
def test_wrong_length_for_a_typed_option_is_a_bad_option(code: int, value: bytes) -> None:
    area = _raw_options((dhcp.OPT_MESSAGE_TYPE, b"\x02"), (code, value)) if code != dhcp.OPT_MESSAGE_TYPE \
        else _raw_options((code, value))
    rejects(dhcp.parse, _with_raw_options(area + b"\xff"), {"dhcp.bad_option"})


@pytest.mark.parametrize("area", [
    b"\x35\x05\x02\xff",  # length runs past the area
    b"\x35",  # code without a length
    b"\x00\x00\x33",  # code without a length after pads
    b"\x33\xff" + bytes(20),  # length 255 with 20 bytes left
])
def test_option_running_past_the_end_is_a_bad_option(area: bytes) -> None:
    rejects(dhcp.parse, _with_raw_options(area), {"dhcp.bad_option"})


def test_missing_end_option_is_rejected() -> None:
    rejects(dhcp.parse, _with_raw_options(_raw_options((dhcp.OPT_MESSAGE_TYPE, b"\x02"))), {"dhcp.no_end_option"})
    rejects(dhcp.parse, _with_raw_options(b""), {"dhcp.no_end_option"})


def test_overloaded_file_without_end_is_rejected() -> None:
    area = _raw_options((dhcp.OPT_OVERLOAD, b"\x01")) + b"\xff"
    rejects(dhcp.parse, _with_raw_options(area, file=b"\x33\x04\x00\x00\x00\x3c"), {"dhcp.no_end_option"})


@pytest.mark.parametrize("offset,value,reason", [
    (0, 3, "dhcp.bad_op"),
    (0, 0, "dhcp.bad_op"),
    (1, 6, "dhcp.unsupported_hardware"),  # IEEE 802 token ring
    (2, 16, "dhcp.unsupported_hardware"),
    (236, 0x64, "dhcp.bad_cookie"),
])
def test_bad_fixed_fields_are_rejected(offset: int, value: int, reason: str) -> None:
    raw = bytearray(dhcp.build(_offer()))
    raw[offset] = value
    rejects(dhcp.parse, bytes(raw), {reason})


def test_plain_bootp_without_cookie_is_rejected() -> None:
    raw = dhcp.build(_offer())
    rejects(dhcp.parse, raw[:236] + bytes(64), {"dhcp.bad_cookie"})


def test_builder_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(ValueError):
        dhcp.build(DhcpMessage(op=1, xid=1, chaddr=b"\x01\x02"))
    with pytest.raises(ValueError):
        dhcp.build(DhcpMessage(op=1, xid=1, chaddr=MAC, options={255: b"x"}))


@given(st.binary(max_size=400))
@FUZZ
def test_random_bytes_parse_or_reject(data: bytes) -> None:
    parses_or_rejects(dhcp.parse, data, "dhcp")


@given(st.integers(min_value=dhcp.MIN_LEN, max_value=dhcp.BOOTP_MIN_LEN - 1), st.binary(min_size=1, max_size=8))
@FUZZ
def test_corrupted_options_parse_or_reject(offset: int, junk: bytes) -> None:
    raw = bytearray(dhcp.build(_offer()))
    raw[offset:offset + len(junk)] = junk
    parses_or_rejects(dhcp.parse, bytes(raw[:dhcp.BOOTP_MIN_LEN]), "dhcp")
