"""A divergent frame decoded in one line, and where two frames first differ named by header field."""

from __future__ import annotations

from pystack.replay.describe import describe, first_difference
from pystack.wire import arp, ethernet, ipv4, ipv6, tcp, udp
from pystack.wire.ipv4 import addr_to_int

A = addr_to_int("192.0.2.2")
B = addr_to_int("192.0.2.1")
MAC_A = bytes.fromhex("020000000002")
MAC_B = bytes.fromhex("020000000001")


def _tcp_frame(seq: int, payload: bytes = b"", checksum: bool = True) -> bytes:
    seg = tcp.build(A, B, 80, 41000, seq, 7, tcp.ACK | tcp.PSH, 512, b"", payload, checksum=checksum)
    return ethernet.build(MAC_B, MAC_A, ethernet.ETHERTYPE_IPV4, ipv4.build(A, B, 6, seg, ident=99))


def test_tcp_arp_udp_and_ipv6_frames_in_one_line() -> None:
    assert describe(_tcp_frame(1000, b"abc")) == \
        "192.0.2.2.80 > 192.0.2.1.41000: TCP [P.] seq 1000 ack 7 win 512 length 3 (id 99)"
    request = ethernet.build(ethernet.BROADCAST, MAC_A, ethernet.ETHERTYPE_ARP,
                             arp.build(arp.OP_REQUEST, MAC_A, A, bytes(6), B))
    assert describe(request) == "ARP request who-has 192.0.2.1 tell 192.0.2.2"
    dgram = ipv4.build(A, B, 17, udp.build(A, B, 53, 5353, b"xy"))
    assert describe(dgram, ethernet=False) == "192.0.2.2.53 > 192.0.2.1.5353: UDP length 2 (id 0)"
    six = ipv6.build(0x20010DB8 << 96 | 2, 0x20010DB8 << 96 | 1, 17, udp.build(0, 0, 7, 7, b""))
    assert describe(six, ethernet=False).startswith("2001:db8::2.7 > 2001:db8::1.7: UDP length 0 (IPv6)")
    assert describe(b"\x00" * 5) == "a runt of 5 bytes"


def test_the_first_difference_is_named_by_its_field() -> None:
    assert first_difference(_tcp_frame(1000), _tcp_frame(1001)).startswith("first difference at byte 41 (TCP "
                                                                          "sequence number)")
    assert "(TCP checksum)" in first_difference(_tcp_frame(5, b"abc"), _tcp_frame(5, b"axc"))
    assert "(TCP payload byte 1)" in first_difference(_tcp_frame(5, b"abc", False), _tcp_frame(5, b"axc", False))
    assert first_difference(b"abc", b"abcd") == "the same first 3 bytes, then lengths 3 and 4"
