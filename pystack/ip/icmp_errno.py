"""The errno a socket sees for an ICMP or an ICMPv6 error: one table per family, Linux's (icmp_err_convert
in net/ipv4/icmp.c, icmpv6_err_convert in net/ipv6/icmp.c), so a program over pystack reads what it would
read over the kernel. The transports are told errors in ICMP's words (pystack.iface.icmpv6.AS_ICMPV4);
ICMPv6 hands them its own errno as well, since its codes are not all IPv4's."""

from __future__ import annotations

import errno

UNREACH = {0: errno.ENETUNREACH, 1: errno.EHOSTUNREACH, 2: errno.ENOPROTOOPT, 3: errno.ECONNREFUSED,
           4: errno.EMSGSIZE, 5: errno.EOPNOTSUPP, 6: errno.ENETUNREACH, 7: errno.EHOSTDOWN, 8: errno.ENONET,
           9: errno.ENETUNREACH, 10: errno.EHOSTUNREACH, 11: errno.ENETUNREACH, 12: errno.EHOSTUNREACH,
           13: errno.EHOSTUNREACH, 14: errno.EHOSTUNREACH, 15: errno.EHOSTUNREACH}
"""ICMP Destination Unreachable codes (RFC 792, RFC 1122 3.2.2.1, RFC 1812 5.2.7.1) -> errno."""

UNREACH6 = {0: errno.ENETUNREACH, 1: errno.EACCES, 2: errno.EHOSTUNREACH, 3: errno.EHOSTUNREACH,
            4: errno.ECONNREFUSED, 5: errno.EACCES, 6: errno.EACCES}
"""ICMPv6 Destination Unreachable codes (RFC 4443 3.1: no route, administratively prohibited, beyond the
scope of the source address, address unreachable, port unreachable, source address failed ingress/egress
policy, reject route) -> errno."""

_PARAMETER_PROBLEM = 12
_FATAL_UNREACH = frozenset({2, 3, 4, 6, 7, 8, 9, 10, 13, 14, 15})
"""The unreachable codes icmp_err_convert marks fatal, and fragmentation needed (4), which __udp4_lib_err
makes hard for a socket that sets DF (IP_PMTUDISC_WANT, as pystack's UDP always does)."""
_TIME_EXCEEDED6, _PACKET_TOO_BIG6, _PARAMETER_PROBLEM6 = 3, 2, 4


def icmp_errno(icmp_type: int, icmp_code: int) -> int:
    """An ICMP error's errno: an unreachable's by its code (EHOSTUNREACH past the table), EPROTO for a
    parameter problem, EHOSTUNREACH for time exceeded and anything else."""
    if icmp_type == 3:
        return UNREACH.get(icmp_code, errno.EHOSTUNREACH)
    return errno.EPROTO if icmp_type == _PARAMETER_PROBLEM else errno.EHOSTUNREACH


def icmpv6_errno(icmp_type: int, icmp_code: int) -> int:
    """An ICMPv6 error's errno: an unreachable's by its code (EPROTO past the table), EMSGSIZE for Packet
    Too Big, EHOSTUNREACH for time exceeded, EPROTO for a parameter problem and anything else."""
    if icmp_type == 1:
        return UNREACH6.get(icmp_code, errno.EPROTO)
    if icmp_type == _PACKET_TOO_BIG6:
        return errno.EMSGSIZE
    return errno.EHOSTUNREACH if icmp_type == _TIME_EXCEEDED6 else errno.EPROTO


def icmp_fatal(icmp_type: int, icmp_code: int) -> bool:
    """Whether Linux calls an ICMP error hard (__udp4_lib_err with icmp_err_convert's fatal flags): the only
    errors a UDP socket without IP_RECVERR hears, and only when connected. Net and host unreachable, time
    exceeded and unreachable codes past the table are soft. ICMPv6 errors reach the transports in ICMP's
    words (pystack.iface.icmpv6.AS_ICMPV4), chosen so that the flag is icmpv6_err_convert's too."""
    if icmp_type == 3:
        return icmp_code in _FATAL_UNREACH
    return icmp_type == _PARAMETER_PROBLEM
