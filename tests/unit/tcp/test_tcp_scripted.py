"""TCP behaviours the packetdrill corpus found wrong, each proved by a small script of its own run on the
whole core by pystack.conformance (frames in, frames out, the script's clock).

The scripts are written here, in packetdrill's language: the stack under test listens on 8080 and the
handshake's round trip is 100 ms, so SRTT is 100 ms and the RTO 300 ms (RFC 6298 2.2).
"""

from __future__ import annotations

from pystack.conformance.driver import Driver, Settings
from pystack.conformance.parser import parse

ACCEPTED = """
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <...>
  +.1 < . 1:1(0) ack 1 win 320
   +0 accept(3, ..., ...) = 4
"""

ACCEPTED_TS = """
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 20000 <mss 1000,sackOK,TS val 100 ecr 0>
   +0 > S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 100 ecr 100>
  +.1 < . 1:1(0) ack 1 win 20000 <nop,nop,TS val 200 ecr 100>
   +0 accept(3, ..., ...) = 4
"""
"""The same with timestamps: our TSvals are the script's from 100 on (the runner maps them)."""


def verdict(text: str, profile: str = "rfc") -> str:
    result = Driver(parse(text, "script"), Settings(profile=profile)).run()
    return result.status + (": " + result.detail if result.detail else "")


def test_the_rto_is_rearmed_after_a_tail_loss_probe():
    # RFC 8985 7.3: after sending a probe the sender MUST re-arm the RTO (not the PTO), so that the RTO
    # stays the last resort a full RTO after the probe. It fired one RTO after the data instead, only
    # one SRTT after the probe, before the probe's ACK could come.
    assert verdict(ACCEPTED + """
   +0 write(4, ..., 4000) = 4000
   +0 > P. 1:4001(4000) ack 1
  +.2 > P. 3001:4001(1000) ack 1
  +.3 > . 1:1001(1000) ack 1
""") == "PASS"


def test_a_segment_whose_ack_is_refused_leaves_ts_recent_alone():
    # An ACK of data never sent (RFC 9293 3.10.7.4) is answered and the segment dropped, and so is its
    # timestamp: TS.Recent moved only once the ACK is acceptable (RFC 5961 5.2 spirit). Taken earlier, a
    # blind injection with a huge TSval made PAWS (RFC 7323 5.3) drop every real segment after it.
    assert verdict(ACCEPTED_TS + """
   +0 < F. 1:1(0) ack 9999 win 20000 <nop,nop,TS val 200000 ecr 100>
   +0 > . 1:1(0) ack 1 <nop,nop,TS val 100 ecr 200>
   +0 < . 1:1001(1000) ack 1 win 20000 <nop,nop,TS val 201 ecr 100>
   +0 < . 1001:2001(1000) ack 1 win 20000 <nop,nop,TS val 201 ecr 100>
   +0 > . 1:1(0) ack 2001 <nop,nop,TS val 100 ecr 201>
""") == "PASS"


QUICKACKS = ACCEPTED + """
   +0 < P. 1:1001(1000) ack 1 win 320
   +0 > . 1:1(0) ack 1001
  +.3 < P. 1001:2001(1000) ack 1 win 320
   +0 > . 1:1(0) ack 2001
"""
"""One segment at the start, another after 300 ms of silence (the RTO): each ACKed at once in quick-ACK
mode (TcpConfig.quickacks, set by the linux profile), else after the delayed-ACK time."""


def test_quick_acks_at_the_start_and_after_a_silence_with_tcpconfig_quickacks():
    assert verdict(QUICKACKS, profile="linux") == "PASS"
    delayed = verdict(QUICKACKS, profile="rfc")
    assert delayed.startswith("FAIL: line 11: timing: ") and delayed.endswith("at 0.140000 s")


def test_quick_acks_run_out():
    # TcpConfig.quickacks is 16 in the linux profile: the 17th segment's ACK waits for a second one.
    lines = [f"   +0 < . {1 + i * 1000}:{1001 + i * 1000}(1000) ack 1 win 320\n"
             f"   +0 > . 1:1(0) ack {1001 + i * 1000}\n" for i in range(16)]
    assert verdict(ACCEPTED + "".join(lines), profile="linux") == "PASS"
    lines.append("   +0 < . 16001:17001(1000) ack 1 win 320\n   +0 > . 1:1(0) ack 17001\n")
    assert verdict(ACCEPTED + "".join(lines), profile="linux").endswith("at 0.140000 s")


def test_a_gro_super_frame_counts_as_the_full_sized_segments_it_holds():
    # A TAP with receive offload hands us the kernel's GRO frames: 10 segments in one. RFC 5681 4.2 wants
    # an ACK for at least every second full-sized segment; the receiver's MSS estimate grew to the frame's
    # length instead, so this ACK waited for the delayed-ACK timer. It is now capped at the MSS we announce.
    assert verdict(ACCEPTED + """
   +0 < . 1:10001(10000) ack 1 win 320
   +0 > . 1:1(0) ack 10001
""") == "PASS"


def test_slow_start_grows_by_what_a_stretch_ack_delivers_with_no_limit():
    # TcpConfig.slow_start_limit 0 (the linux profile): an ACK of ten segments adds ten to cwnd, as Linux
    # does; the default L of 2 SMSS per ACK (RFC 3465 2.2) adds two.
    text = ACCEPTED + """
   +0 write(4, ..., 30000) = 30000
   +0 > P. 1:10001(10000) ack 1
  +.1 < . 1:1(0) ack 10001 win 320
   +0 > . 10001:30001(20000) ack 1
"""
    assert verdict(text, profile="linux") == "PASS"
    assert "(payload: expected 20000 bytes, got 12000)" in verdict(text, profile="rfc")


def test_data_sacked_before_counts_as_delivered_then_with_no_limit():
    # Two duplicate ACKs SACK 1001:3001 (limited transmit sends a segment for each, RFC 3042); the ACK of
    # 3001 then delivers one new segment, so cwnd goes from 10 to 11 and two more go out (Linux, with
    # slow_start_limit 0), where counting all 3000 bytes up to 2 SMSS makes 12 and three.
    text = ACCEPTED + """
   +0 write(4, ..., 15000) = 15000
   +0 > P. 1:10001(10000) ack 1
 +.11 < . 1:1(0) ack 1 win 320 <sack 1001:2001,nop,nop>
   +0 > . 10001:11001(1000) ack 1
 +.01 < . 1:1(0) ack 1 win 320 <sack 1001:3001,nop,nop>
   +0 > . 11001:12001(1000) ack 1
 +.01 < . 1:1(0) ack 3001 win 320
   +0 > . 12001:14001(2000) ack 1
 +.02 < . 1:1(0) ack 5001 win 320
   +0 > . 14001:15001(1000) ack 1
"""
    assert verdict(text, profile="linux") == "PASS"
    assert "sent at 0.230000 s" in verdict(text, profile="rfc")


def test_a_configured_mss_bounds_the_segments_we_send_too():
    # TcpConfig.mss (what TCP_MAXSEG sets) is the MSS we announce and, as in Linux and BSD, the largest
    # segment we send: the peer's 1300 is more than our 1100, so ours is the send MSS.
    assert verdict("""--strict_segments
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_TCP, TCP_MAXSEG, [1100], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1300,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1100,nop,wscale 7>
  +.1 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
   +0 getsockopt(4, SOL_TCP, TCP_MAXSEG, [1100], [4]) = 0
   +0 write(4, ..., 3300) = 3300
   +0 > . 1:1101(1100) ack 1
   +0 > . 1101:2201(1100) ack 1
   +0 > P. 2201:3301(1100) ack 1
""") == "PASS"


def test_the_tail_loss_probe_sends_new_data_first_with_tlp_new_data():
    # TcpConfig.tlp_new_data (the linux profile): the probe is the next new segment when there is one and
    # the peer's window takes it, as RFC 8985 7.3 prefers; pystack's default repeats the last one sent.
    text = ACCEPTED + """
   +0 write(4, ..., 20000) = 20000
   +0 > P. 1:10001(10000) ack 1
  +.1 < . 1:1(0) ack 1001 win 320
   +0 > . 10001:12001(2000) ack 1
  +.2 > . {probe} ack 1
"""
    assert verdict(text.format(probe="12001:13001(1000)"), profile="linux") == "PASS"
    assert verdict(text.format(probe="11001:12001(1000)"), profile="rfc") == "PASS"


def test_a_fin_sent_alone_is_probed_alone_with_tlp_new_data():
    # The last segment sent is the FIN, after all the data: RFC 8985 7.3 repeats it (Linux too); pystack's
    # default resends the last MSS of data with the FIN.
    text = ACCEPTED + """
   +0 write(4, ..., 5000) = 5000
   +0 > P. 1:5001(5000) ack 1
 +.01 shutdown(4, SHUT_WR) = 0
   +0 > F. 5001:5001(0) ack 1
 +.19 > {probe} ack 1
"""
    assert verdict(text.format(probe="F. 5001:5001(0)"), profile="linux") == "PASS"
    assert verdict(text.format(probe="FP. 4001:5001(1000)"), profile="rfc") == "PASS"


def test_an_application_limited_flight_does_not_grow_cwnd_with_cwnd_validation():
    # TcpConfig.cwnd_validation (the linux profile): five segments out of a cwnd of ten never tested the
    # window, so their ACK leaves it at ten (Linux's tcp_is_cwnd_limited, RFC 7661's idea); a full flight
    # still doubles it in slow start. Without it every ACK of new data grows cwnd (RFC 5681).
    text = ACCEPTED + """
   +0 write(4, ..., 5000) = 5000
   +0 > P. 1:5001(5000) ack 1
  +.1 < . 1:1(0) ack 5001 win 320
   +0 %{{ assert tcpi_snd_cwnd == {cwnd}, tcpi_snd_cwnd }}%
   +0 write(4, ..., 30000) = 30000
   +0 > P. 5001:15001(10000) ack 1
  +.1 < . 1:1(0) ack 15001 win 320
   +0 %{{ assert tcpi_snd_cwnd == {full}, tcpi_snd_cwnd }}%
"""
    assert verdict(text.format(cwnd=10, full=20), profile="linux") == "PASS"
    assert verdict(text.format(cwnd=12, full=14), profile="rfc") == "PASS"


def test_the_rto_floor_applies_to_the_variance_with_rto_min_on_variance():
    # Two 100 ms samples: RFC 6298 gives SRTT + 4 RTTVAR = 100 + 150 ms (2.3), floored as a whole at
    # rto_min (2.4). Linux floors the variance term instead: SRTT + max(4 RTTVAR, rto_min) = 300 ms
    # (TcpConfig.rto_min_on_variance, the linux profile).
    text = ACCEPTED + """
   +0 write(4, ..., 1000) = 1000
   +0 > P. 1:1001(1000) ack 1
  +.1 < . 1:1(0) ack 1001 win 320
   +0 write(4, ..., 1000) = 1000
   +0 > P. 1001:2001(1000) ack 1
  +{rto} > P. 1001:2001(1000) ack 1
"""
    assert verdict(text.format(rto=".3"), profile="linux") == "PASS"
    assert verdict(text.format(rto=".25"), profile="rfc") == "PASS"


def test_a_probe_goes_in_place_of_an_rto_that_would_come_first_with_tlp_at_rto():
    # One segment out: the PTO is 2 SRTT plus the delayed-ACK allowance, 400 ms, later than the RTO (300 ms
    # here). With TcpConfig.tlp_at_rto (the linux profile) the probe goes at the RTO's time, as RFC 8985 7.2
    # says, and the RTO, re-armed after it (7.3), follows one RTO later without backoff; pystack's default
    # sends no probe: the RTO fires, then backs off.
    assert verdict(ACCEPTED + """
   +0 write(4, ..., 1000) = 1000
   +0 > P. 1:1001(1000) ack 1
  +.1 < . 1:1(0) ack 1001 win 320
   +0 write(4, ..., 1000) = 1000
   +0 > P. 1001:2001(1000) ack 1
  +.3 > P. 1001:2001(1000) ack 1
  +.3 > P. 1001:2001(1000) ack 1
""", profile="linux") == "PASS"


ZERO_WINDOW = ACCEPTED + """
   +0 write(4, ..., 2000) = 2000
   +0 > P. 1:2001(2000) ack 1
  +.1 < . 1:1(0) ack 2001 win 0
   +0 write(4, ..., 3000) = 3000
  +.3 > . 2000:2000(0) ack 1
  +.6 > . 2000:2000(0) ack 1
   +0 < . 1:1(0) ack 2001 win 0
 +1.2 > . 2000:2000(0) ack 1
   +0 < . 1:1(0) ack 2001 win 320
   +0 > P. 2001:5001(3000) ack 1
"""
"""slow_start/slow-start-after-win-update.pkt's probes (that script is skipped for its sysctl): Linux's
zero-window probe is an ACK for SND.UNA - 1 without data, every RTO with backoff, until the window opens."""


def test_the_linux_profile_probes_a_zero_window_as_linux_does():
    assert verdict(ZERO_WINDOW, profile="linux") == "PASS"
    # pystack's own probe is one byte of new data (RFC 9293 3.8.6.1), at the same times.
    assert verdict(ZERO_WINDOW).startswith("FAIL: line 14: expected `> . 2000:2000(0) ack 1`")
