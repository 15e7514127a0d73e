"""The packetdrill language as the parser reads it: times, packets, system calls, commands, code."""

from __future__ import annotations

import pytest

from pystack.conformance.parser import parse
from pystack.conformance.script import (
    Code, Command, Dots, Field, ListExpr, Num, Or, OtherPacket, Packet, ScriptError, StructExpr, Sym, Syscall,
    TcpOption, TimeKind,
)


def _events(text: str):
    return parse(text).events


def test_times_absolute_relative_any_ranges_and_blocking_ends():
    events = _events("""
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
  +.1 close(3) = 0
    * > . 1:1(0) ack 1
 0.1~0.2 > . 1:1(0) ack 1
 +.1~+.105 > . 1:1(0) ack 1
 +0...0.100 read(4, ..., 2000) = 2000
 +.002 ... 0.004 connect(4, ..., ...) = 0
""")
    times = [e.time for e in events]
    assert (times[0].kind, times[0].start) == (TimeKind.ABSOLUTE, 0)
    assert (times[1].kind, times[1].start) == (TimeKind.RELATIVE, 100_000)
    assert times[2].kind == TimeKind.ANY
    assert (times[3].kind, times[3].start, times[3].end) == (TimeKind.ABSOLUTE_RANGE, 100_000, 200_000)
    assert (times[4].kind, times[4].start, times[4].end) == (TimeKind.RELATIVE_RANGE, 100_000, 105_000)
    assert (times[5].kind, times[5].start, times[5].blocking_end) == (TimeKind.RELATIVE, 0, 100_000)
    assert (times[6].start, times[6].blocking_end) == (2_000, 4_000)


def test_packets_with_flags_numbers_window_and_options_in_their_order():
    (syn, data, probe) = (e.action for e in _events("""
  +0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
  +0 > P. 1:1001(1000) ack 1 <nop,nop,TS val 100 ecr 0,nop,nop,sack 1:2 3:4>
  +0 > . 0:0(0) ack 1 <...>
"""))
    assert isinstance(syn, Packet) and syn.inbound and syn.flags == "S" and syn.window == 32792
    assert syn.options == (TcpOption("mss", (1000,)), TcpOption("sackOK"), TcpOption("nop"), TcpOption("nop"),
                           TcpOption("nop"), TcpOption("wscale", (7,)))
    assert isinstance(data, Packet) and not data.inbound and (data.seq, data.end, data.length) == (1, 1001, 1000)
    assert data.ack == 1 and data.window is None
    assert TcpOption("TS", (100, 0)) in data.options and TcpOption("sack", (1, 2, 3, 4)) in data.options
    assert isinstance(probe, Packet) and probe.options is None


def test_a_system_call_spans_lines_and_keeps_structs_lists_flags_and_errno():
    (recvmsg, fcntl, connect) = (e.action for e in _events("""
   +0 recvmsg(4, {msg_name(...)=...,   // a comment inside
                  msg_iov(1)=[{..., 2000}],
                  msg_flags=0}, 0) = 2000
   +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
   +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
"""))
    assert isinstance(recvmsg, Syscall) and recvmsg.result == Num(2000)
    msg = recvmsg.args[1]
    assert isinstance(msg, StructExpr) and msg.get("msg_flags") == Num(0)
    iov = msg.get("msg_iov")
    assert isinstance(iov, ListExpr) and iov.items[0] == StructExpr((Field(None, None, Dots()),
                                                                     Field(None, None, Num(2000))))
    assert isinstance(fcntl, Syscall) and fcntl.args[2] == Or(Sym("O_RDWR"), Sym("O_NONBLOCK"))
    assert isinstance(connect, Syscall) and connect.result == Num(-1) and connect.errno == "EINPROGRESS"
    assert connect.note == "Operation now in progress"


def test_header_options_commands_and_code_blocks():
    script = parse("""// comment
--tolerance_usecs=10000
--strict_segments

`../common/defaults.sh
 sysctl -q net.ipv4.tcp_timestamps=0
`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%
   +0 `sysctl -q net.ipv4.tcp_sack=0`
`/tmp/sysctl_restore_${PPID}.sh`
""")
    assert script.options == {"tolerance_usecs": "10000", "strict_segments": ""}
    assert script.init_commands == [Command("../common/defaults.sh\n sysctl -q net.ipv4.tcp_timestamps=0")]
    kinds = [type(e.action) for e in script.events]
    assert kinds == [Syscall, Code, Command, Command]
    assert script.events[1].action == Code("assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd")
    assert script.events[3].time.kind == TimeKind.RELATIVE  # a bare command after events runs in turn


def test_icmp_and_udp_lines_are_kept_as_other_packets():
    (icmp,) = (e.action for e in _events("  +0 < icmp unreachable frag_needed mtu 800\n"))
    assert icmp == OtherPacket(True, "icmp unreachable frag_needed mtu 800")


@pytest.mark.parametrize("text, line, words", [
    ("    0 socket(..., SOCK_STREAM\n", 1, "unbalanced"),
    ("\n\n  +0 < S 0:5(3) win 100\n", 3, "length"),
    ("  +0 frobnicate\n", 1, "expected a packet"),
    ("  +0 > S. 0:0(0) ack 1 <mss 1460\n", 1, "unterminated"),
    ("  +0 close(3) == 0\n", 1, "result"),
])
def test_bad_scripts_stop_with_the_line_and_what_was_wrong(text, line, words):
    with pytest.raises(ScriptError) as info:
        parse(text)
    assert info.value.line == line and words in info.value.message
