"""Profiles: the choices the RFCs leave open, made as Linux makes them (``linux``) or as pystack does by
default (``rfc``). A profile is only config values; the corpus then judges everything else.

The values the ``linux`` profile changes, and why (docs/conformance.md has the table):

- ``recv_buffer_max`` 15 MiB: Linux's ``tcp_rmem[2]`` in packetdrill's defaults.sh. The window scale we
  offer is the smallest that reaches it (RFC 7323 2.3 leaves the choice), so this gives Linux's 8.
- ``quickacks`` 16: Linux's quick-ACK mode (TCP_MAX_QUICKACKS): the first 16 data segments, and those after
  a silence longer than the RTO, are ACKed at once; RFC 5681 4.2 lets every one of them wait.
- ``slow_start_limit`` 0: slow start grows by every segment an ACK newly delivers (a stretch ACK of ten
  adds ten), data SACKed or duplicate-ACKed before counting as delivered then; pystack's own is RFC 3465's
  L of 2 SMSS per ACK, counting bytes when the cumulative ACK covers them.
- ``cwnd_validation``: cwnd grows only when the flight used it (Linux's tcp_is_cwnd_limited; RFC 7661's
  idea); pystack's own lets every ACK of new data grow it (RFC 5681 3.1), however little was in flight.
- ``rto_min_on_variance``: RTO = SRTT + max(4 RTTVAR, rto_min), Linux's arithmetic; pystack's own floors
  the whole RTO at rto_min (RFC 6298 2.4), so a steady 100 ms path gets 250 ms rather than 300.
- ``tlp_new_data``: the tail loss probe is new data when there is some (RFC 8985 7.3, Linux); pystack's
  own repeats the last segment until SACK shows a hole.
- ``tlp_at_rto``: a probe whose timeout would come after the RTO goes at the RTO's time, the RTO one RTO
  later (RFC 8985 7.2, Linux); pystack's own lets the RTO fire.
- ``tlp_min`` 2 ms: Linux's floor for the probe timeout (TCP_TIMEOUT_MIN, two jiffies at 1000 Hz); pystack's
  own is 10 ms.
- ``window_probe_empty``: the zero-window probe is an ACK for SND.UNA - 1 without data (Linux's
  tcp_xmit_probe_skb); pystack's own is one byte of new data (RFC 9293 3.8.6.1).
"""

from __future__ import annotations

import dataclasses

from pystack.config import StackConfig
from pystack.tcp.config import TcpConfig

_ISN_SECRET = b"packetdrill-isn!"
"""A fixed RFC 6528 key: the same script gives the same ISNs on every run (the runner maps them anyway)."""

PROFILES = ("linux", "rfc")


def stack_config(profile: str) -> StackConfig:
    """A fresh StackConfig for ``profile`` (the runner mutates it for sysctls, so never shared)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (choose from {', '.join(PROFILES)})")
    tcp = TcpConfig(isn_secret=_ISN_SECRET)
    if profile == "linux":
        tcp = dataclasses.replace(
            tcp,
            recv_buffer_max=15 * 1024 * 1024,
            quickacks=16,
            slow_start_limit=0,
            cwnd_validation=True,
            rto_min_on_variance=True,
            tlp_new_data=True,
            tlp_at_rto=True,
            tlp_min=0.002,
            window_probe_empty=True,
        )
    return StackConfig(tcp=tcp)
