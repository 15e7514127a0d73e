"""An ICMPv6 error about what a socket sent reaches it as the errno Linux's icmpv6_err_convert gives
(net/ipv6/icmp.c, tab_unreach), not as the errno of the IPv4 words the transports are told in.

A connected UDP socket with IPV6_RECVERR hears every error; without it, as Linux's (__udp6_lib_err), only
those the table marks fatal (port unreachable, administratively prohibited, policy, reject route, parameter
problem, unknown unreachable codes). The kernel, rejecting with nftables, showed the same for each
unreachable code it can send (tests/integration/test_udp_icmp_errors.py)."""

from __future__ import annotations

import errno

import pytest

from pystack.ip.icmp_errno import icmp_errno, icmpv6_errno
from pystack.tcp.state import State
from pystack.wire import icmpv6, ipv6

from .stack_pair import A6, B6, B_MAC, frame_to, ipv6_packets, make_pair6

LINUX = [
    ((1, 0), errno.ENETUNREACH, False),  # no route to destination
    ((1, 1), errno.EACCES, True),  # administratively prohibited
    ((1, 2), errno.EHOSTUNREACH, False),  # beyond the scope of the source address
    ((1, 3), errno.EHOSTUNREACH, False),  # address unreachable
    ((1, 4), errno.ECONNREFUSED, True),  # port unreachable
    ((1, 5), errno.EACCES, True),  # source address failed ingress/egress policy
    ((1, 6), errno.EACCES, True),  # reject route to destination
    ((1, 7), errno.EPROTO, True),  # past Linux's table (RFC 6554's error in the source routing header)
    ((3, 0), errno.EHOSTUNREACH, False),  # hop limit exceeded
    ((3, 1), errno.EHOSTUNREACH, False),  # fragment reassembly time exceeded
    ((4, 0), errno.EPROTO, True),  # erroneous header field
    ((4, 1), errno.EPROTO, True),  # unrecognised Next Header
    ((4, 2), errno.EPROTO, True),  # unrecognised option
]
"""(type, code), the errno, and whether it is fatal (heard without IPV6_RECVERR)."""


@pytest.mark.parametrize("recverr", [True, False], ids=["recverr", "plain"])
@pytest.mark.parametrize("type_code, expected, fatal", LINUX, ids=[f"{t}/{c}" for (t, c), _e, _f in LINUX])
def test_a_connected_udp_socket_hears_an_icmpv6_error_as_linux_errno(type_code, expected, fatal, recverr) -> None:
    a, b, wire = make_pair6()
    b.udp6.bind(0, 9)  # takes the datagram quietly: the only error A hears is the one made below
    endpoint = a.udp6.bind(0, 5000)
    endpoint.recverr = recverr
    endpoint.connect((B6, 9))
    start = len(wire.log)
    endpoint.sendto(b"anyone?", None, wire.clock.now)
    wire.run(duration=1)
    sent = next(p for p in ipv6_packets(wire, start, sender=0) if p.next_header == ipv6.NH_UDP)
    message = icmpv6.build_error(type_code[0], type_code[1], 0, sent.datagram, B6, A6)
    a.receive_frame(frame_to(a, ipv6.build(B6, A6, ipv6.NH_ICMPV6, message), B_MAC), wire.clock.now)
    assert icmpv6_errno(*type_code) == expected
    if not (fatal or recverr):
        assert endpoint.recvfrom() is None  # a soft error: Linux's socket hears nothing
        return
    with pytest.raises(OSError) as info:
        endpoint.recvfrom()
    assert info.value.errno == expected


def test_administratively_prohibited_fails_a_tcp_connect_with_eacces() -> None:
    """A SYN answered by a firewall's ICMPv6 administratively prohibited: connect fails as on Linux."""
    a, _b, wire = make_pair6()
    wire.fault = lambda sender, frame: [] if sender == 0 and frame[20] == ipv6.NH_TCP else [frame]  # the firewall
    start = len(wire.log)
    client = a.tcp6.connect(A6, B6, 81, wire.clock.now)
    wire.run(duration=0.5)
    syn = next(p for p in ipv6_packets(wire, start, sender=0) if p.next_header == ipv6.NH_TCP)
    assert client.state == State.SYN_SENT
    message = icmpv6.build_error(icmpv6.TYPE_DEST_UNREACHABLE, icmpv6.CODE_ADMIN_PROHIBITED, 0, syn.datagram, B6, A6)
    a.receive_frame(frame_to(a, ipv6.build(B6, A6, ipv6.NH_ICMPV6, message), B_MAC), wire.clock.now)
    assert client.state == State.CLOSED and client.error == errno.EACCES


def test_over_ipv4_communication_administratively_prohibited_stays_ehostunreach() -> None:
    """IPv4's table is its own: RFC 1812's code 13 is EHOSTUNREACH on Linux, and code 8 (source host
    isolated) ENONET."""
    assert icmp_errno(3, 13) == errno.EHOSTUNREACH and icmp_errno(3, 8) == errno.ENONET
    assert icmp_errno(3, 3) == errno.ECONNREFUSED and icmp_errno(11, 0) == errno.EHOSTUNREACH
    assert icmp_errno(12, 0) == errno.EPROTO
