"""The Internet checksum (RFC 1071) against a word-by-word reference and dpkt."""

from __future__ import annotations

import os

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystack.wire.checksum import fold, incremental_update, internet_checksum, is_valid, ones_sum, pseudo_header_sum
from pystack_lab.reference import ref_checksum, ref_ones_sum

from .reference import PROPERTY, ipv4_addrs, pseudo_header, u8, u16


def test_rfc1071_section3_example() -> None:
    # RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 have the one's complement sum ddf2.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ref_ones_sum(data) == 0xDDF2  # the reference itself agrees with the RFC
    assert ones_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D
    assert is_valid(data + (0x220D).to_bytes(2, "big"))


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00", b"\x00" * 7], ids=["empty", "1zero", "2zero", "7zero"])
def test_all_zero_data_sums_to_zero(data: bytes) -> None:
    # A sum of nothing but zero words is +0; its checksum is 0xFFFF, and it does not verify.
    assert ones_sum(data) == 0 == ref_ones_sum(data)
    assert internet_checksum(data) == 0xFFFF
    assert not is_valid(data)


@pytest.mark.parametrize("length", [1, 2, 3, 4, 19, 20, 1499, 1500, 65535])
def test_all_ff_data(length: int) -> None:
    data = b"\xff" * length
    assert ones_sum(data) == ref_ones_sum(data)
    assert internet_checksum(data) == ref_checksum(data)
    if length % 2 == 0:
        # 0xFFFF is -0: the sum of any number of them is -0, never +0, so such data verifies.
        assert ones_sum(data) == 0xFFFF
        assert is_valid(data)


@pytest.mark.parametrize("length", [1, 3, 5, 21, 1501, 65535])
def test_odd_length_pads_with_a_zero_byte(length: int) -> None:
    data = os.urandom(length)
    assert ones_sum(data) == ones_sum(data + b"\x00") == ref_ones_sum(data)
    assert internet_checksum(data) == ref_checksum(data) == dpkt.in_cksum(data)


def test_sum_that_is_a_nonzero_multiple_of_ffff_is_negative_zero() -> None:
    # 0x8000 + 0x7FFF = 0xFFFF and 0xFFFF + 0xFFFF + 0xFFFF: the modulo trick must not return +0 here.
    for data in (bytes.fromhex("80007fff"), b"\xff" * 6, bytes.fromhex("fffe0001")):
        assert ones_sum(data) == 0xFFFF == ref_ones_sum(data)
        assert internet_checksum(data) == 0


@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=1 << 20))
@PROPERTY
def test_matches_reference(data: bytes, initial: int) -> None:
    assert ones_sum(data, initial) == ref_ones_sum(data, initial)
    assert internet_checksum(data, initial) == ref_checksum(data, initial)


@given(st.binary(max_size=3000))
@PROPERTY
def test_matches_dpkt(data: bytes) -> None:
    assert internet_checksum(data) == dpkt.in_cksum(data)


@given(st.binary(max_size=3000))
@PROPERTY
def test_accepts_memoryview_and_bytearray(data: bytes) -> None:
    expected = ones_sum(data)
    assert ones_sum(memoryview(data)) == expected
    assert ones_sum(bytearray(data)) == expected
    # A view into the middle of a bigger buffer, as the stack passes them.
    framed = b"\x12\x34" + data + b"\x56"
    assert ones_sum(memoryview(framed)[2:2 + len(data)]) == expected


@given(st.binary(max_size=1000).map(lambda b: b[: len(b) & ~1]), st.binary(max_size=1000))
@PROPERTY
def test_incremental_over_concatenation(head: bytes, tail: bytes) -> None:
    # RFC 1071 section 2(C): a sum over parts (split at an even offset) may be folded in as ``initial``.
    assert ones_sum(tail, ones_sum(head)) == ones_sum(head + tail) == ref_ones_sum(head + tail)


@given(st.binary(max_size=2000).map(lambda b: b[: len(b) & ~1]))
@PROPERTY
def test_byte_order_independence(data: bytes) -> None:
    # RFC 1071 section 2(B): swapping every byte pair swaps the bytes of the sum.
    swapped = bytes(b for i in range(0, len(data), 2) for b in (data[i + 1], data[i]))
    s = ones_sum(data)
    assert ones_sum(swapped) == ((s & 0xFF) << 8) | (s >> 8)


@given(st.binary(max_size=2000).map(lambda b: b + b"\x00\x00" if len(b) % 2 == 0 else b + b"\x00\x00\x00"))
@PROPERTY
def test_inserted_checksum_verifies_and_any_bit_flip_breaks_it(data: bytes) -> None:
    # The last two bytes (at an even offset) act as the checksum field.
    at = len(data) - 2
    csum = internet_checksum(data)
    good = data[:at] + csum.to_bytes(2, "big")
    assert is_valid(good)
    for bit in range(0, len(good) * 8, max(1, len(good) // 16)):
        bad = bytearray(good)
        bad[bit // 8] ^= 0x80 >> (bit % 8)
        assert not is_valid(bad)


@given(ipv4_addrs, ipv4_addrs, u8, u16)
@PROPERTY
def test_pseudo_header_sum_equals_summing_the_pseudo_header_bytes(src: int, dst: int, proto: int, length: int) -> None:
    # Folded, the integer shortcut equals the RFC 768 pseudo-header laid out as bytes.
    assert ones_sum(b"", pseudo_header_sum(src, dst, proto, length)) == ref_ones_sum(pseudo_header(src, dst, proto, length))


@given(ipv4_addrs, ipv4_addrs, u8, st.binary(max_size=1500))
@PROPERTY
def test_initial_equals_prepending_the_pseudo_header(src: int, dst: int, proto: int, data: bytes) -> None:
    phs = pseudo_header_sum(src, dst, proto, len(data))
    assert internet_checksum(data, phs) == ref_checksum(pseudo_header(src, dst, proto, len(data)) + data)


@given(st.lists(u16, max_size=60000))
@PROPERTY
def test_fold_of_a_sum_of_words_is_their_ones_complement_sum(words: list[int]) -> None:
    # Up to 60,000 words: sums near 2**32, where a single fold would leave a carry.
    data = b"".join(w.to_bytes(2, "big") for w in words)
    assert fold(sum(words)) == ones_sum(data) == ref_ones_sum(data)


@given(st.binary(min_size=2, max_size=200).map(lambda b: b[: len(b) & ~1]), st.data())
@PROPERTY
def test_incremental_update_equals_recomputing(data: bytes, draw: st.DataObject) -> None:
    # RFC 1624: the updated field verifies over the changed data, as a recomputed one does.
    at = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    new_word = draw.draw(u16)
    field = internet_checksum(data)
    changed = data[:at] + new_word.to_bytes(2, "big") + data[at + 2:]
    updated = incremental_update(field, int.from_bytes(data[at:at + 2], "big"), new_word)
    assert updated == internet_checksum(changed) or (updated == 0 and not any(changed))
