"""DHCPv6 messages (RFC 8415): round trips, hand-laid bytes from the RFC's figures (no dpkt oracle exists
for DHCPv6), and malformed input refused with a reason."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystack.wire import WireError
from pystack.wire import dhcp6
from pystack.wire.dhcp6 import Dhcp6Message, IaAddress, IaNa, Status

from .reference import PROPERTY

MAC = bytes.fromhex("020000000002")
LEASED = 0x2001_0DB8 << 96 | 0x100
SERVER_DNS = 0x2001_0DB8 << 96 | 1


def _reply() -> Dhcp6Message:
    return Dhcp6Message(dhcp6.REPLY, 0xABCDEF, client_id=dhcp6.duid_ll(MAC), server_id=b"\x00\x01\x00\x01abcd",
                        ia_na=(IaNa(7, 1800, 2880, (IaAddress(LEASED, 3600, 7200),)),),
                        dns_servers=(SERVER_DNS,), domains=("example.test",), preference=255,
                        status=Status(dhcp6.SUCCESS, "all good"), refresh_time=600)


def test_a_reply_round_trips() -> None:
    msg = _reply()
    assert dhcp6.parse(dhcp6.build(msg)) == msg


def test_the_header_and_options_are_laid_out_as_rfc_8415_figures_2_and_11() -> None:
    msg = Dhcp6Message(dhcp6.SOLICIT, 0x123456, client_id=dhcp6.duid_ll(MAC), elapsed=0,
                       oro=(dhcp6.OPT_DNS_SERVERS, dhcp6.OPT_DOMAIN_LIST),
                       ia_na=(IaNa(1),))
    expected = (bytes([1, 0x12, 0x34, 0x56])
                + bytes.fromhex("0001 000a 0003 0001 020000000002")  # CLIENTID: DUID-LL, Ethernet, MAC
                + bytes.fromhex("0003 000c 00000001 00000000 00000000")  # IA_NA: IAID 1, T1 0, T2 0
                + bytes.fromhex("0006 0004 0017 0018")  # ORO: 23, 24
                + bytes.fromhex("0008 0002 0000"))  # ELAPSED_TIME 0
    assert dhcp6.build(msg) == expected
    assert dhcp6.parse(expected) == msg


def test_an_iaaddr_with_its_status_is_parsed_from_hand_laid_bytes() -> None:
    iaaddr = (bytes.fromhex("20010db8000000000000000000000100") + struct.pack("!II", 3600, 7200)
              + bytes.fromhex("000d 0004 0002") + b"no")
    ia = struct.pack("!III", 9, 100, 200) + struct.pack("!HH", 5, len(iaaddr)) + iaaddr
    raw = bytes([dhcp6.REPLY, 0, 0, 1]) + struct.pack("!HH", 3, len(ia)) + ia
    msg = dhcp6.parse(raw)
    assert msg.ia_na == (IaNa(9, 100, 200, (IaAddress(LEASED, 3600, 7200, Status(dhcp6.NO_ADDRS_AVAIL, "no")),)),)
    assert msg.ia_na[0].addresses[0].status is not None
    assert msg.ia_na[0].addresses[0].status.name == "NoAddrsAvail"


def test_a_domain_list_is_uncompressed_dns_names_one_after_another() -> None:
    raw = bytes([dhcp6.REPLY, 0, 0, 1]) + struct.pack("!HH", 24, 19) + b"\x07example\x04test\x00\x03lab\x00"
    assert dhcp6.parse(raw).domains == ("example.test", "lab")


def test_unknown_options_are_skipped_and_named() -> None:
    raw = bytes([dhcp6.ADVERTISE, 0, 0, 1]) + struct.pack("!HH", 999, 3) + b"abc"
    assert dhcp6.parse(raw).unknown == [999]


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\x07\x00\x00", "dhcp6.truncated"),
    (b"\x0c\x00\x00\x00", "dhcp6.relay_message"),
    (b"\x00\x00\x00\x00", "dhcp6.unknown_message_type"),
    (b"\x63\x00\x00\x00", "dhcp6.unknown_message_type"),
    (b"\x07\x00\x00\x00\x00\x01\x00", "dhcp6.truncated_option"),
    (b"\x07\x00\x00\x00\x00\x01\x00\x09abc", "dhcp6.truncated_option"),
    (b"\x07\x00\x00\x00\x00\x02\x00\x01a", "dhcp6.bad_duid"),
    (b"\x07\x00\x00\x00\x00\x02\x00\x03abc\x00\x02\x00\x03abc", "dhcp6.duplicate_option"),
    (b"\x07\x00\x00\x00\x00\x03\x00\x04abcd", "dhcp6.bad_ia_na"),
    (b"\x07\x00\x00\x00\x00\x08\x00\x01a", "dhcp6.bad_elapsed_time"),
    (b"\x07\x00\x00\x00\x00\x0d\x00\x01a", "dhcp6.bad_status_code"),
    (b"\x07\x00\x00\x00\x00\x17\x00\x0f" + bytes(15), "dhcp6.bad_address_list"),
    (b"\x07\x00\x00\x00\x00\x18\x00\x04\x07abc", "dhcp6.bad_domain_list"),
    (b"\x07\x00\x00\x00\x00\x18\x00\x02\x01a", "dhcp6.bad_domain_list"),
    (b"\x07\x00\x00\x00\x00\x07\x00\x02ab", "dhcp6.bad_preference"),
    (b"\x07\x00\x00\x00\x00\x06\x00\x03abc", "dhcp6.bad_oro"),
])
def test_malformed_messages_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(WireError) as info:
        dhcp6.parse(raw)
    assert info.value.reason == reason


def test_too_many_options_are_refused() -> None:
    raw = bytes([dhcp6.REPLY, 0, 0, 1]) + struct.pack("!HH", 999, 0) * (dhcp6.MAX_OPTIONS + 1)
    with pytest.raises(WireError, match="dhcp6.too_many_options"):
        dhcp6.parse(raw)
    assert dhcp6.parse(raw[:-4]).unknown == [999] * dhcp6.MAX_OPTIONS


def test_too_many_addresses_in_one_ia_are_refused() -> None:
    addresses = tuple(IaAddress(LEASED + i, 1, 2) for i in range(dhcp6.MAX_IA_ADDRESSES + 1))
    raw = dhcp6.build(Dhcp6Message(dhcp6.REPLY, 1, ia_na=(IaNa(1, 0, 0, addresses),)))
    with pytest.raises(WireError, match="dhcp6.too_many_addresses"):
        dhcp6.parse(raw)


def test_too_many_name_servers_are_refused() -> None:
    raw = bytes([dhcp6.REPLY, 0, 0, 1]) + struct.pack("!HH", 23, 16 * 17) + bytes(16 * 17)
    with pytest.raises(WireError, match="dhcp6.too_many_servers"):
        dhcp6.parse(raw)


def test_duid_ll_is_type_3_hardware_1_and_the_mac() -> None:
    assert dhcp6.duid_ll(MAC) == b"\x00\x03\x00\x01" + MAC


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_a_wire_error(data: bytes) -> None:
    try:
        msg = dhcp6.parse(data)
    except WireError as exc:
        assert exc.reason.startswith("dhcp6.")
        return
    assert 0 <= msg.xid < 1 << 24


@PROPERTY
@given(st.integers(0, (1 << 24) - 1), st.lists(st.integers(0, (1 << 128) - 1), max_size=4),
       st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_replies_round_trip(xid: int, addresses: list[int], preferred: int, valid: int) -> None:
    msg = Dhcp6Message(dhcp6.REPLY, xid, client_id=b"\x00\x03\x00\x01" + MAC,
                       ia_na=(IaNa(3, 10, 20, tuple(IaAddress(a, preferred, valid) for a in addresses)),))
    assert dhcp6.parse(dhcp6.build(msg)) == msg
