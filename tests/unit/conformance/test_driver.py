"""The runner drives pystack's core through small scripts written here, and each gets the right verdict."""

from __future__ import annotations

from pystack.conformance.driver import Driver, Settings, Verdict
from pystack.conformance.parser import parse

SERVER = """
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
"""
"""A passive open: the stack under test on port 8080, the peer's MSS 1000 and window scale 7; the
handshake's round trip of 100 ms makes the RTO 300 ms (RFC 6298 2.2: SRTT + 4 * SRTT/2)."""

CLIENT = """
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
   +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
   +0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
 +.05 < S. 0:0(0) ack 1 win 5792 <mss 1460,sackOK,TS val 700 ecr 100,nop,wscale 7>
"""


def run(text: str, **settings: object) -> Verdict:
    return Driver(parse(text, "test.pkt"), Settings(**settings)).run()  # type: ignore[arg-type]


def test_a_passive_open_and_a_write_pass():
    verdict = run(SERVER + """
   +0 write(4, ..., 3000) = 3000
   +0 > P. 1:3001(3000) ack 1
""")
    assert verdict == Verdict("test.pkt", "PASS")


def test_segments_sent_together_are_joined_unless_strict_segments():
    text = SERVER + """
   +0 write(4, ..., 3000) = 3000
   +0 > P. 1:3001(3000) ack 1
"""
    verdict = run("--strict_segments\n" + text)
    assert verdict.status == "FAIL"
    assert "line 13" in verdict.detail and "payload: expected 3000 bytes, got 1000" in verdict.detail


def test_the_first_difference_is_reported_in_packetdrill_notation():
    verdict = run(SERVER.replace("wscale 8", "wscale 7") + """
   +0 < . 1:1001(1000) ack 1 win 257
   +0 < P. 1001:2001(1000) ack 1 win 257
   +0 > . 1:1(0) ack 2002
""", profile="rfc")
    assert verdict.status == "FAIL"
    assert verdict.detail.startswith("line 13: expected `> . 1:1(0) ack 2002`, got `> . 1:1(0) ack 2001 win ")
    assert verdict.detail.endswith("(ack: expected 2002, got 2001)")


def test_timers_run_on_the_script_clock_and_their_packets_are_timed():
    on_time = run(SERVER + """
   +0 write(4, ..., 1000) = 1000
   +0 > P. 1:1001(1000) ack 1
  +.3 > P. 1:1001(1000) ack 1
""")
    assert on_time.status == "PASS"
    late = run(SERVER + """
   +0 write(4, ..., 1000) = 1000
   +0 > P. 1:1001(1000) ack 1
   +1 > P. 1:1001(1000) ack 1
""")
    assert late.status == "FAIL"
    assert "timing: expected `> P. 1:1001(1000) ack 1` at 1.100000 s" in late.detail
    assert "sent at 0.400000 s" in late.detail


def test_a_packet_that_never_comes_is_a_failure():
    verdict = run(SERVER + "   +0 > . 1:1(0) ack 1\n")
    assert verdict.status == "FAIL" and "pystack sent nothing" in verdict.detail


def test_a_blocking_read_returns_when_its_data_arrives():
    text = SERVER + """
   +0...{end} read(4, ..., 1000) = 1000
  +.1 < P. 1:1001(1000) ack 1 win 257
"""
    assert run(text.format(end="0.100")).status == "PASS"
    early = run(text.format(end="0.050"))
    assert early.status == "FAIL"
    assert "line 11: timing: read() returned at 0.200000 s, expected at 0.150000 s" in early.detail


def test_a_call_that_would_block_without_three_dots_fails_and_a_nonblocking_one_says_eagain():
    blocked = run(SERVER + "   +0 read(4, ..., 1000) = 1000\n")
    assert blocked.status == "FAIL" and "read() would block" in blocked.detail
    nonblocking = run(SERVER + """
   +0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
   +0 read(4, ..., 1000) = -1 EAGAIN (Resource temporarily unavailable)
   +0 fcntl(4, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)
""")
    assert nonblocking.status == "PASS"


def test_return_values_and_errno_are_compared():
    verdict = run(SERVER + "   +0 write(4, ..., 10) = -1 EPIPE (Broken pipe)\n")
    assert verdict.status == "FAIL" and "write() returned 10, expected -1 EPIPE" in verdict.detail


def test_an_active_open_maps_our_isn_and_the_echoed_timestamp():
    verdict = run(CLIENT + "   +0 > . 1:1(0) ack 1 <nop,nop,TS val 150 ecr 700>\n")
    assert verdict.status == "PASS"


def test_the_ecr_we_send_is_checked():
    verdict = run(CLIENT + "   +0 > . 1:1(0) ack 1 <nop,nop,TS val 150 ecr 701>\n")
    assert verdict.status == "FAIL" and "(TS ecr: expected 701, got 700)" in verdict.detail


def test_timestamp_values_are_checked_only_with_a_tick():
    text = CLIENT + "   +0 > . 1:1(0) ack 1 <nop,nop,TS val 180 ecr 700>\n"
    assert run(text).status == "PASS"
    ticked = run("--tcp_ts_tick_usecs=1000\n" + text)
    assert ticked.status == "FAIL" and "TS val: expected 180, got 150" in ticked.detail


def test_the_profile_decides_the_window_scale_we_offer():
    assert run(SERVER, profile="linux").status == "PASS"
    rfc = run(SERVER, profile="rfc")
    assert rfc.status == "FAIL" and "(option wscale: expected <wscale 8>, got <wscale 7>)" in rfc.detail


def test_window_and_option_order_can_be_ignored_for_other_systems():
    text = SERVER.replace("<mss 1460,nop,wscale 8>", "win 1 <nop,wscale 8,mss 1460>")
    assert run(text).status == "FAIL"
    assert run(text, ignore_window=True, ignore_option_order=True).status == "PASS"


def test_python_blocks_see_tcp_info():
    assert run(SERVER + "   +0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%\n").status == "PASS"
    wrong = run(SERVER + "   +0 %{ assert tcpi_snd_cwnd == 11, tcpi_snd_cwnd }%\n")
    assert wrong.status == "FAIL" and wrong.detail == "line 10: python assertion failed: 10"


def test_what_pystack_does_not_have_is_a_skip_with_its_reason():
    cases = {
        "   +0 epoll_create(1) = 5\n": "epoll (system call epoll_create)",
        "   +0 setsockopt(4, SOL_TCP, TCP_CORK, [1], 4) = 0\n": "socket option TCP_CORK",
        "   +0 send(4, ..., 100, MSG_ZEROCOPY) = 100\n": "zerocopy (MSG_ZEROCOPY)",
        "   +0 send(4, ..., 100, MSG_MORE) = 100\n": "send flag MSG_MORE",
        "   +0 `tc qdisc replace dev tun0 root fq`\n": "a qdisc (replace dev tun0 root fq)",
        "   +0 %{ assert tcpi_lost == 0 }%\n": "TCP_INFO tcpi_lost",
        "   +0 < [ect0] . 1:1(0) ack 1 win 257\n": "ECN",
    }
    for line, reason in cases.items():
        assert run(SERVER + line) == Verdict("test.pkt", "SKIP", reason)


def test_sysctls_in_commands_become_config():
    text = """
`../common/defaults.sh
sysctl -q net.ipv4.tcp_timestamps=0`
""" + CLIENT.replace("sackOK,TS val 100 ecr 0,nop,wscale 8", "nop,nop,sackOK,nop,wscale 8")
    assert run(text.replace("TS val 700 ecr 100,", "")).status == "PASS"


def test_a_runner_bug_is_a_verdict_not_a_traceback(monkeypatch):
    from pystack.conformance.syscalls import Sockets

    def broken(self, args):
        raise KeyError("oops")
    monkeypatch.setattr(Sockets, "sys_accept", broken)
    verdict = run(SERVER)
    assert verdict.status == "FAIL" and verdict.detail.startswith("runner error: KeyError: 'oops' (test_driver.py:")
    assert run(SERVER, profile="bsd").detail.startswith("runner error: ValueError: unknown profile 'bsd'")
