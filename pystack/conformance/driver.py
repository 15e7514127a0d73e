"""Run one packetdrill script against pystack's sans-I/O core and give its verdict.

The script's inbound packets go into a :class:`pystack.stack.Stack` as Ethernet frames from the gateway,
over IPv4 or IPv6 as ``--ip_version`` says, its system calls become TCP user calls, and the frames the stack
emits are compared with the script's outbound packets. The clock is the script's: between events it jumps
from timer to timer, so a script of seconds runs in milliseconds and every run is the same.

What packetdrill does (its run*.c), done the same way here:

- Times: ``+t`` is relative to when the previous event ended (for an outbound packet, when it was sent);
  an outbound packet may come ``tolerance_usecs`` (4 ms) or 12.5 % of the gap since the previous event
  early or late, whichever is more; ``a~b`` and ``*`` widen that; ``...end`` is when a blocking call
  returns, counted like the start.
- Sequence numbers: the peer's are the script's; ours are the script's plus our ISN (learnt from the
  first SYN or SYN-ACK we send). An inbound ``ecr`` is rewritten to the TSval we really sent for the
  script's TSval (or the first one, shifted). Outbound TSvals are compared only with ``--tcp_ts_tick_usecs``.
- Consecutive outbound segments are joined to match a larger scripted one (Linux sends super-segments;
  pystack cuts them at the MSS) unless ``--strict_segments``.
- Only the connection under test is watched: the newest one the script opened or accepted.

Two checks differ: the ``ecr`` of our outbound segments is compared too (the script writes what a correct
stack echoes; RFC 7323 4.3 fixes it), and PSH only with ``Settings.check_push`` (RFC 9293 3.9.1 leaves it
to the implementation).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from pystack.conformance import packets as P
from pystack.conformance import shell, syscalls
from pystack.conformance.profiles import stack_config
from pystack.conformance.script import (
    Code, Command, Dots, Event, OtherPacket, Packet, Script, Syscall, TcpOption, TimeKind,
)
from pystack.conformance.syscalls import Attempt, CallFailed, Result, Sockets, Unsupported
from pystack.config import StackConfig
from pystack.stack import Stack
from pystack.tcp.congestion import SSTHRESH_INITIAL
from pystack.tcp.connection import Connection
from pystack.tcp.layer import TcpLayer

MASK = 0xFFFFFFFF
LOOKAHEAD = 10.0
"""Seconds past an expected packet's window the runner looks to say what came instead (or nothing)."""
ANY_HORIZON = 120.0
"""How long a ``*`` outbound packet is waited for."""
TCPI_FIELDS = frozenset((
    "tcpi_snd_cwnd", "tcpi_snd_ssthresh", "tcpi_snd_mss", "tcpi_rcv_mss", "tcpi_advmss", "tcpi_rtt", "tcpi_rto",
    "tcpi_state", "tcpi_unacked", "tcpi_total_retrans",
))
_TCPI = re.compile(r"\btcpi_\w+")
_KNOWN_OPTIONS = frozenset((
    "tolerance_usecs", "tolerance_percent", "tcp_ts_tick_usecs", "strict_segments", "ip_version",
    "local_ip", "remote_ip", "bind_port", "connect_port",
))
_FIRST_REMOTE_PORT = 48000


@dataclass(frozen=True, slots=True)
class Settings:
    profile: str = "linux"
    ignore_window: bool = False
    """Do not compare the window of outbound packets (scripts written for another stack's buffers)."""
    ignore_option_order: bool = False
    """Compare outbound options as a set: the same options in any order and with any padding."""
    check_push: bool = False
    """Compare PSH too. Off by default: RFC 9293 3.9.1 leaves PUSH to the implementation, and Linux sets it
    per socket buffer it built (two MSS here), pystack on the segment that empties its send queue."""
    ip_version: str | None = None
    """packetdrill's ``--ip_version`` given to the runner: it overrides the script's own, as packetdrill's
    command line does; None runs each script as it says (IPv4 unless it says otherwise)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    path: str
    status: str  # PASS, FAIL or SKIP
    detail: str = ""

    def line(self) -> str:
        return f"{self.status} {self.path}" + (f": {self.detail}" if self.detail else "")


class Mismatch(Exception):
    """What pystack did differs from the script (the verdict is FAIL)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")


class Skip(Exception):
    pass


@dataclass(slots=True)
class Flow:
    """The connection under test: packetdrill's socket_under_test and its script/live mappings."""
    local_port: int
    remote_port: int
    active: bool
    script_isn: int | None = None
    live_isn: int | None = None
    ts_map: dict[int, int] = field(default_factory=dict)
    ts_first: tuple[int, int] | None = None
    """(script TSval, live TSval) of our first segment with a timestamp."""

    def seq_to_script(self, live: int) -> int:
        if self.live_isn is None or self.script_isn is None:
            return live
        return (live - self.live_isn + self.script_isn) & MASK

    def ack_to_live(self, script: int) -> int:
        if self.live_isn is None or self.script_isn is None:
            return script
        return (script - self.script_isn + self.live_isn) & MASK

    def ecr_to_live(self, script: int) -> int:
        if script in self.ts_map:
            return self.ts_map[script]
        if self.ts_first is not None:
            return (script - self.ts_first[0] + self.ts_first[1]) & MASK
        return script

    def tsval_to_script(self, live: int) -> int:
        if self.ts_first is None:
            return live
        return (self.ts_first[0] + live - self.ts_first[1]) & MASK


@dataclass(slots=True)
class Pending:
    """A blocking call under way."""
    event: Event
    call: Syscall
    attempt: Attempt
    start: float
    end: float
    """When the script says it returns (seconds)."""


class Driver:
    def __init__(self, script: Script, settings: Settings | None = None,
                 trace: Callable[[str], None] | None = None) -> None:
        self.script = script
        self.settings = settings or Settings()
        self.trace = trace
        """Called with one line per event run and per segment sent (``--verbose``)."""
        opts = script.options
        self.tolerance = int(opts.get("tolerance_usecs", "4000")) / 1e6
        self.tolerance_pct = float(opts.get("tolerance_percent", "12.5"))
        self.ts_tick = int(opts.get("tcp_ts_tick_usecs", "0")) / 1e6
        self.strict_segments = "strict_segments" in opts
        self.ip_version = self.settings.ip_version or opts.get("ip_version", "ipv4")
        self.family = P.FAMILIES.get(self.ip_version, P.IPV4)
        """The addresses and the wire's IP version (``ipv4-mapped-ipv6`` puts IPv4 on the wire)."""
        self.config: StackConfig
        """The profile's config, made when the run starts (sysctls in the script change it)."""
        self.stack: Stack
        self.tcp: TcpLayer
        """The stack's TCP for the family: ``stack.tcp``, or ``stack.tcp6`` over IPv6."""
        self.now = 0.0
        self.last_event_time = 0.0
        self.out: deque[tuple[float, P.Segment]] = deque()
        self.flow: Flow | None = None
        self.listening_flow = False
        self.next_remote_port = _FIRST_REMOTE_PORT
        self.sockets = Sockets(self)
        self.pending: Pending | None = None
        self.code_ns: dict[str, object] = {}
        self.user_mss: int | None = None
        self.internal_errors: list[str] = []

    # ------------------------------------------------------------ the whole run

    def run(self) -> Verdict:
        path = self.script.path
        handler = _ErrorCollector(self.internal_errors)
        log = logging.getLogger("pystack")
        saved = (log.handlers[:], log.propagate)
        log.handlers[:] = [handler]
        log.propagate = False
        try:
            self.config = stack_config(self.settings.profile)
            reason = self.skip_reason()
            if reason:
                return Verdict(path, "SKIP", reason)
            self.setup()
            for event in self.script.events:
                self.event(event)
            self.finish()
        except Mismatch as exc:
            return Verdict(path, "FAIL", str(exc))
        except (Skip, Unsupported, shell.Unhonourable) as exc:
            return Verdict(path, "SKIP", str(exc))
        except Exception as exc:  # the runner's own bug: a verdict, never a traceback
            where = traceback.extract_tb(exc.__traceback__)[-1]
            return Verdict(path, "FAIL", f"runner error: {type(exc).__name__}: {exc} "
                                         f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
        finally:
            log.handlers[:], log.propagate = saved
        return Verdict(path, "PASS")

    def skip_reason(self) -> str | None:
        """What this script needs that pystack (or the runner) does not have, found before running it."""
        opts = self.script.options
        if self.ip_version not in P.FAMILIES:
            return f"--ip_version={self.ip_version} (packetdrill knows {', '.join(P.FAMILIES)})"
        only = _only_for(self.script.path)
        if only is not None and only != self.family.ipv6:
            return f"written for {'IPv6' if only else 'IPv4'} only (run_all.py runs *v{6 if only else 4}.pkt so)"
        if "mss" in opts:
            return "GRO packets (--mss: packetdrill injects GSO packets with that gso_size; the core takes frames)"
        unknown = sorted(set(opts) - _KNOWN_OPTIONS)
        if unknown:
            return "option --" + unknown[0]
        scratch = copy.deepcopy(self.config)
        try:
            for command in self.script.init_commands:
                shell.apply(command.text, scratch)
            for event in self.script.events:
                action = event.action
                if isinstance(action, Command):
                    shell.apply(action.text, scratch)
                elif isinstance(action, Syscall):
                    why = syscalls.unsupported(action)
                    if why:
                        return why
                elif isinstance(action, OtherPacket):
                    return "ICMP or UDP packets"
                elif isinstance(action, Packet):
                    why = _packet_unsupported(action)
                    if why:
                        return why
                elif isinstance(action, Code):
                    missing = sorted(set(_TCPI.findall(action.text)) - TCPI_FIELDS)
                    if missing:
                        return "TCP_INFO " + ", ".join(missing)
        except shell.Unhonourable as exc:
            return str(exc)
        return None

    def setup(self) -> None:
        for command in self.script.init_commands:
            shell.apply(command.text, self.config)
        family = self.family
        self.config.mtu = family.mtu
        if family.ipv6:
            # The address is usable when the script starts, as packetdrill's is on its tun device.
            self.config.ipv6 = dataclasses.replace(self.config.ipv6, dad_transmits=0)
        self.stack = stack = Stack(P.LOCAL_MAC, self.config)
        if family.ipv6:
            stack.start_ipv6(self.now)
            stack.add_address6(family.local, family.prefix_len, self.now)
            stack.gateway6 = family.gateway
            self.tcp = stack.tcp6
            # The gateway asks for us: the stack learns its MAC (RFC 4861 7.2.3) and answers.
            stack.receive_frame(P.neighbour_solicitation(family.gateway, family.local), self.now)
        else:
            stack.configure(family.local, family.prefix_len, family.gateway, self.now)
            self.tcp = stack.tcp
            # The gateway asks for us: the stack learns its MAC (RFC 826) and answers; nothing else to see.
            stack.receive_frame(P.arp_frame(1, P.GATEWAY_MAC, family.gateway, bytes(6), family.local, b"\xff" * 6),
                                self.now)
        self.collect()

    def finish(self) -> None:
        pending = self.pending
        if pending is not None:
            tol = max(self.tolerance, self.tolerance_pct / 100 * (pending.end - pending.start))
            self.advance(max(self.now, pending.end + tol))
            if self.pending is not None:
                raise Mismatch(pending.event.line, f"{pending.call.name}() is still blocked when the script "
                                                   f"ends (it should return at {pending.end:.6f} s)")

    # ------------------------------------------------------------ events

    def event(self, ev: Event) -> None:
        action = ev.action
        start, lo, hi, end = self.times(ev)
        if self.trace is not None:
            self.trace(f"{start:10.6f} {ev.line:4d} {_script_text(ev)}")
        if isinstance(action, Packet) and not action.inbound:
            self.expect(ev, action, lo, hi)
        else:
            self.advance(start)
            if isinstance(action, Packet):
                self.inject(ev, action)
            elif isinstance(action, Syscall):
                self.syscall(ev, action, end)
            elif isinstance(action, Command):
                shell.apply(action.text, self.config)
            elif isinstance(action, Code):
                self.code(ev, action)
        self.last_event_time = start

    def times(self, ev: Event) -> tuple[float, float, float | None, float | None]:
        """(start, earliest, latest or None for ``*``, blocking end) in seconds."""
        t = ev.time
        base = self.now
        kind = t.kind
        if kind == TimeKind.ABSOLUTE:
            start = lo = t.start / 1e6
            hi: float | None = lo
        elif kind == TimeKind.RELATIVE:
            start = lo = base + t.start / 1e6
            hi = lo
        elif kind == TimeKind.ANY:
            start = lo = base
            hi = None
        elif kind == TimeKind.ABSOLUTE_RANGE:
            start = lo = t.start / 1e6
            hi = t.end / 1e6
        else:
            start = lo = base + t.start / 1e6
            hi = base + t.end / 1e6
        end = None
        if t.blocking_end is not None:
            end = t.blocking_end / 1e6 + (0.0 if kind in (TimeKind.ABSOLUTE, TimeKind.ABSOLUTE_RANGE) else base)
        return start, lo, hi, end

    def tolerance_for(self, expected: float, since: float) -> float:
        return max(self.tolerance, self.tolerance_pct / 100 * max(expected - since, 0.0))

    # ------------------------------------------------------------ the clock and the stack

    def advance(self, to: float) -> None:
        """Run the stack's timers up to ``to``, collecting what it sends, then set the clock there."""
        stuck = 0
        while True:
            deadline = self.stack.get_timer()
            if deadline is None or deadline > to:
                break
            when = max(deadline, self.now)
            stuck = stuck + 1 if when == self.now else 0
            if stuck > 10_000:
                raise Mismatch(0, f"pystack's timer at {when:.6f} s fires again and again without moving")
            self.now = when
            self.stack.handle_timer(when)
            self.collect()
            self.retry_pending()
        if to > self.now:
            self.now = to

    def collect(self) -> None:
        """Take what the stack sent; the gateway answers the stack's ARP requests and neighbour
        solicitations for it at once, and what that releases is taken too, at the same time."""
        gateway = self.family.gateway
        while frames := self.stack.frames_to_send():
            for frame in frames:
                seen = P.parse_frame(frame)
                if isinstance(seen, P.Segment):
                    self.out.append((self.now, seen))
                    if self.trace is not None and self.flow is not None and self.is_flow(seen):
                        self.trace(f"{self.now:10.6f}   sent {self.describe(seen)}")
                elif isinstance(seen, P.ArpRequest):
                    if seen.target_ip == gateway:
                        self.stack.receive_frame(P.arp_frame(2, P.GATEWAY_MAC, gateway, seen.sender_mac,
                                                             seen.sender_ip, seen.sender_mac), self.now)
                elif isinstance(seen, P.NeighbourSolicitation):
                    if seen.target_ip == gateway:
                        self.stack.receive_frame(P.neighbour_advertisement(gateway, seen.sender_ip, seen.sender_mac),
                                                 self.now)
                elif isinstance(seen, P.Unreadable):
                    raise Mismatch(0, f"pystack sent a broken frame at {self.now:.6f} s: {seen.reason}")
        if self.internal_errors:
            raise Mismatch(0, "pystack hit an internal error: " + self.internal_errors[0])

    def inject(self, ev: Event, pkt: Packet) -> None:
        flow = self.flow_for_inbound(pkt)
        if pkt.window is None:
            raise Skip(f"line {ev.line}: an inbound packet without a window")
        flags = P.flag_bits(pkt.flags)
        options: list[TcpOption] = []
        for opt in pkt.options or ():
            options.append(self.inbound_option(flow, opt, bool(flags & P.ACK)))
        ack = pkt.ack or 0
        if flags & P.ACK:
            ack = flow.ack_to_live(ack)
        family = self.family
        seg = P.Segment(family.remote, family.local, flow.remote_port, flow.local_port, pkt.seq, ack, flags,
                        pkt.window, options, bytes(pkt.length), pkt.urgent or 0)
        try:
            frame = P.build_frame(seg, family.ipv6)
        except ValueError as exc:
            raise Skip(f"line {ev.line}: {exc}") from None
        self.stack.begin_batch()
        self.stack.receive_frame(frame, self.now)
        self.stack.end_batch(self.now)  # a batch of one frame, as the daemon's loop reads it
        self.collect()
        self.retry_pending()

    def inbound_option(self, flow: Flow, opt: TcpOption, acking: bool) -> TcpOption:
        """The script's option with our sequence numbers (SACK) and our TSval echoed (TS ecr)."""
        if opt.kind == "sack":
            return TcpOption("sack", tuple(flow.ack_to_live(v) for v in opt.values))
        if opt.kind == "TS":
            val, ecr = opt.values
            return TcpOption("TS", (val, flow.ecr_to_live(ecr) if acking else ecr))
        return opt

    def flow_for_inbound(self, pkt: Packet) -> Flow:
        flags = P.flag_bits(pkt.flags)
        new_syn = flags & P.SYN and not flags & P.ACK and (self.flow is None or self.listening_flow)
        if self.flow is None or new_syn:
            self.flow = Flow(P.BIND_PORT, self.next_remote_port, active=False)
            self.next_remote_port += 1
            self.listening_flow = False
        return self.flow

    # hooks for the socket layer (syscalls.Sockets)

    def listening(self, sock: syscalls.Sock) -> None:
        self.listening_flow = True

    def connecting(self, conn: Connection) -> None:
        self.flow = Flow(conn.local_port, conn.remote_port, active=True)
        self.listening_flow = False

    def set_user_mss(self, mss: int) -> None:
        """TCP_MAXSEG before the connection exists: the MSS pystack announces (TcpConfig.mss is stack-wide,
        which is the same thing with one connection under test)."""
        self.user_mss = mss
        self.config.tcp.mss = mss

    def set_send_buffer(self, conn: Connection, size: int) -> None:
        """SO_SNDBUF: the connection's own send buffer, of that many bytes and not grown (as Linux locks it)."""
        conn.use_config(dataclasses.replace(self.config.tcp, send_buffer=size, send_buffer_max=size), self.now)

    def mss_of(self, conn: Connection) -> int:
        return int(conn.info()["snd_mss"])

    # ------------------------------------------------------------ outbound packets

    def next_segment(self, limit: float) -> tuple[float, P.Segment] | None:
        """The next segment of the flow under test sent no later than ``limit`` (running timers to find it)."""
        while True:
            while self.out:
                when, seg = self.out[0]
                if self.is_flow(seg):
                    return when, seg
                self.out.popleft()
            deadline = self.stack.get_timer()
            if deadline is None or deadline > limit:
                return None
            self.advance(deadline)

    def is_flow(self, seg: P.Segment) -> bool:
        flow = self.flow
        return (flow is not None and seg.src == self.family.local and seg.dst == self.family.remote
                and seg.sport == flow.local_port and seg.dport == flow.remote_port)

    def expect(self, ev: Event, pkt: Packet, lo: float, hi: float | None) -> None:
        if self.flow is None:
            raise Mismatch(ev.line, "an outbound packet before any connection exists")
        if hi is None:
            early, late = lo, lo + ANY_HORIZON
        else:
            early = lo - self.tolerance_for(lo, self.last_event_time)
            late = hi + self.tolerance_for(hi, self.last_event_time)
        script_text = _script_text(ev)
        found = self.next_segment(late)
        if found is None:
            later = self.next_segment(late + LOOKAHEAD)
            when = f"at {lo:.6f} s" if hi in (None, lo) else f"in {lo:.6f}~{hi:.6f} s"
            if later is None:
                raise Mismatch(ev.line, f"expected `{script_text}` {when}, but pystack sent nothing "
                                        f"until {late + LOOKAHEAD:.3f} s")
            raise Mismatch(ev.line, f"timing: expected `{script_text}` {when}, got "
                                    f"`{self.describe(later[1])}` at {later[0]:.6f} s")
        sent_at, seg = found
        self.out.popleft()
        self.learn_isn(pkt, seg)
        pieces = [seg]
        total = len(seg.payload)
        while total < pkt.length and not self.strict_segments:
            more = self.next_segment(late)
            if more is None or not _joinable(pieces, more[1], pkt.length - total):
                break
            self.out.popleft()
            pieces.append(more[1])
            total += len(more[1].payload)
        actual = _join(pieces)
        problem = self.compare(pkt, actual, ev.time.start)
        if problem:
            raise Mismatch(ev.line, f"expected `{script_text}`, got `{self.describe(actual)}` ({problem})")
        if not early - 1e-9 <= sent_at <= late + 1e-9:
            when = f"at {lo:.6f} s" if hi in (None, lo) else f"in {lo:.6f}~{hi:.6f} s"
            raise Mismatch(ev.line, f"timing: expected `{script_text}` {when} (tolerance "
                                    f"{(late - (hi or lo)) * 1000:.1f} ms), sent at {sent_at:.6f} s")

    def learn_isn(self, pkt: Packet, seg: P.Segment) -> None:
        flow = self.flow
        assert flow is not None
        if seg.flags & P.SYN and "S" in pkt.flags and flow.live_isn is None:
            flow.live_isn = seg.seq
            flow.script_isn = pkt.seq

    def compare(self, pkt: Packet, seg: P.Segment, event_start: int) -> str | None:
        """The first difference between the script's packet and the one sent, or None."""
        flow = self.flow
        assert flow is not None
        if len(seg.payload) != pkt.length:
            return f"payload: expected {pkt.length} bytes, got {len(seg.payload)}"
        want = P.flag_bits(pkt.flags)
        ignored = 0 if self.settings.check_push else P.PSH
        if (seg.flags ^ want) & ~ignored:
            return f"flags: expected {P.flag_letters(want)}, got {P.flag_letters(seg.flags)}"
        seq = flow.seq_to_script(seg.seq)
        if seq != pkt.seq:
            return f"seq: expected {pkt.seq}, got {seq}"
        want_ack = pkt.ack if pkt.ack is not None else 0
        if seg.ack != want_ack and (want & P.ACK or pkt.ack is not None):
            return f"ack: expected {want_ack}, got {seg.ack}"
        if pkt.window is not None and not self.settings.ignore_window and seg.window != pkt.window:
            return f"win: expected {pkt.window}, got {seg.window}"
        if seg.payload.count(0) != len(seg.payload):
            return "payload: the bytes differ from the zeros written"
        return self.compare_options(pkt, seg, event_start)

    def compare_options(self, pkt: Packet, seg: P.Segment, event_start: int) -> str | None:
        flow = self.flow
        assert flow is not None
        script_ts = next((o for o in pkt.options or () if o.kind == "TS"), None)
        live_ts = seg.option("TS")
        if script_ts is not None and live_ts is not None:
            flow.ts_map[script_ts.values[0]] = live_ts.values[0]
            if flow.ts_first is None:
                flow.ts_first = (script_ts.values[0], live_ts.values[0])
        if pkt.options is None:
            return None
        want = list(pkt.options)
        got = list(seg.options)
        if self.settings.ignore_option_order:
            want = sorted((o for o in want if o.kind not in ("nop", "eol")), key=lambda o: o.kind)
            got = sorted((o for o in got if o.kind not in ("nop", "eol")), key=lambda o: o.kind)
        if [o.kind for o in want] != [o.kind for o in got]:
            return "options: expected " + P.format_options(want) + ", got " + P.format_options(got)
        for w, g in zip(want, got):
            if w.kind == "TS":
                tsval = flow.tsval_to_script(g.values[0])
                if self.ts_tick:
                    allowed = max(self.tolerance, self.tolerance_pct / 100 * event_start / 1e6)
                    if abs(((tsval - w.values[0] + 0x80000000) & MASK) - 0x80000000) * self.ts_tick > allowed + 1e-9:
                        return f"TS val: expected {w.values[0]}, got {tsval}"
                if g.values[1] != w.values[1]:
                    return f"TS ecr: expected {w.values[1]}, got {g.values[1]}"
            elif w.values != g.values or w.text != g.text:
                return f"option {w.kind}: expected {P.format_options([w])}, got {P.format_options([g])}"
        return None

    def describe(self, seg: P.Segment) -> str:
        """A sent segment in the script's terms (our sequence numbers from the script's ISN)."""
        flow = self.flow
        assert flow is not None
        options = [TcpOption("TS", (flow.tsval_to_script(o.values[0]), o.values[1])) if o.kind == "TS" else o
                   for o in seg.options]
        ack = seg.ack if seg.flags & P.ACK else None
        return P.format_segment(">", seg.flags, flow.seq_to_script(seg.seq), len(seg.payload), ack, seg.window,
                                options)

    # ------------------------------------------------------------ system calls

    def syscall(self, ev: Event, call: Syscall, end: float | None) -> None:
        if self.pending is not None:
            p = self.pending
            raise Mismatch(ev.line, f"{call.name}() while the blocking {p.call.name}() of line "
                                    f"{p.event.line} has not returned (it should have by {p.end:.6f} s)")
        try:
            attempt = self.sockets.call(call)
            result = attempt()
        except CallFailed as exc:
            raise Skip(f"line {ev.line}: {call.name}(): {exc}") from None
        self.collect()
        if result is None:
            if end is None:
                raise Mismatch(ev.line, f"{call.name}() would block, and the script expects it to return "
                                        f"at once")
            self.pending = Pending(ev, call, attempt, self.now, end)
            return
        if end is not None:
            self.check_return_time(ev, call, self.now, end)
        self.check_result(ev, call, result)
        self.retry_pending()

    def retry_pending(self) -> None:
        pending = self.pending
        if pending is None:
            return
        result = pending.attempt()
        if result is None:
            return
        self.pending = None
        self.check_return_time(pending.event, pending.call, pending.start, pending.end)
        self.check_result(pending.event, pending.call, result)
        self.collect()

    def check_return_time(self, ev: Event, call: Syscall, start: float, end: float) -> None:
        tol = max(self.tolerance, self.tolerance_pct / 100 * (end - start))
        if abs(self.now - end) > tol + 1e-9:
            raise Mismatch(ev.line, f"timing: {call.name}() returned at {self.now:.6f} s, expected at "
                                    f"{end:.6f} s (tolerance {tol * 1000:.1f} ms)")

    def check_result(self, ev: Event, call: Syscall, result: Result) -> None:
        want = call.result
        got_text = str(result.value) + (f" {result.errno_name}" if result.err else "")
        if not isinstance(want, Dots):
            want_value = syscalls.value(want)
            if result.value != want_value or (call.errno is not None and result.errno_name != call.errno):
                want_text = str(want_value) + (f" {call.errno}" if call.errno else "")
                raise Mismatch(ev.line, f"{call.name}() returned {got_text}, expected {want_text}")
        for name, expected in syscalls.expected_outputs(call).items():
            got = result.outputs.get(name)
            if got != expected:
                raise Mismatch(ev.line, f"{call.name}() gave {got} where the script expects {expected}")

    # ------------------------------------------------------------ %{ python }%

    def code(self, ev: Event, code: Code) -> None:
        ns = self.code_ns
        ns.update(self.tcp_info())
        ns["print"] = lambda *args, **kw: None
        try:
            exec(compile(code.text, f"{self.script.path}:{ev.line}", "exec"), ns)  # noqa: S102 - the script's
        except AssertionError as exc:
            raise Mismatch(ev.line, f"python assertion failed: {exc}") from None
        except NameError as exc:
            raise Skip(f"line {ev.line}: {exc}") from None
        except Exception as exc:
            raise Mismatch(ev.line, f"python block raised {type(exc).__name__}: {exc}") from None

    def tcp_info(self) -> dict[str, object]:
        """The TCP_INFO fields of the connection under test, from ``Connection.info()``."""
        conn = self.flow_connection()
        if conn is None:
            raise Skip("TCP_INFO without a connection")
        info = conn.info()
        mss = int(info["snd_mss"])
        ssthresh = int(info["ssthresh"])
        return {
            "tcpi_state": _LINUX_STATES.get(str(info["state"]), 7),
            "tcpi_snd_mss": mss,
            "tcpi_rcv_mss": info["rcv_mss"],
            "tcpi_advmss": info["advmss"],
            "tcpi_snd_cwnd": int(info["cwnd"]) // mss,
            "tcpi_snd_ssthresh": 0x7FFFFFFF if ssthresh >= SSTHRESH_INITIAL else ssthresh // mss,
            "tcpi_rtt": int(float(info["srtt"]) * 1e6),
            "tcpi_rto": int(float(info["rto"]) * 1e6),
            "tcpi_unacked": -(-int(info["unacked"]) // mss),
            "tcpi_total_retrans": info["total_retrans"],
        }

    def flow_connection(self) -> Connection | None:
        flow = self.flow
        if flow is None:
            return None
        for sock in self.sockets.fds.values():
            c = sock.conn
            if c is not None and c.local_port == flow.local_port and c.remote_port == flow.remote_port:
                return c
        return None


_LINUX_STATES = {
    "ESTABLISHED": 1, "SYN_SENT": 2, "SYN_RECEIVED": 3, "FIN_WAIT_1": 4, "FIN_WAIT_2": 5, "TIME_WAIT": 6,
    "CLOSED": 7, "CLOSE_WAIT": 8, "LAST_ACK": 9, "LISTEN": 10, "CLOSING": 11,
}
"""Linux's numbers for the states (include/net/tcp_states.h), as tcpi_state gives them."""


# ---------------------------------------------------------------- helpers

def _packet_unsupported(pkt: Packet) -> str | None:
    flags = P.flag_bits(pkt.flags)
    if pkt.ecn is not None or flags & (P.ECE | P.CWR | P.AE):
        return "ECN"
    if flags & P.URG or pkt.urgent:
        return "urgent data"
    for opt in pkt.options or ():
        if opt.kind == "FO" or opt.text.startswith("FO"):
            return shell.FAST_OPEN
        if opt.kind.startswith("md5"):
            return "TCP MD5 signatures"
        if opt.text:
            return f"TCP option {opt.text}"
    return None


def _only_for(path: str) -> bool | None:
    """The family a script is for by its name, as packetdrill's run_all.py decides: ``*v6.pkt`` IPv6 only
    (True), ``*v4.pkt`` IPv4 only (False), any other both (None)."""
    if path.endswith("v6.pkt"):
        return True
    if path.endswith("v4.pkt"):
        return False
    return None


def _joinable(pieces: list[P.Segment], nxt: P.Segment, missing: int) -> bool:
    """Whether ``nxt`` continues the super-segment being joined (packetdrill's aggregation rules)."""
    last = pieces[-1]
    first = pieces[0]
    if last.flags & P.FIN or nxt.seq != (last.seq + len(last.payload)) & MASK:
        return False
    if (nxt.flags & ~(P.PSH | P.FIN | P.CWR)) != (first.flags & ~(P.PSH | P.FIN | P.CWR)):
        return False
    if nxt.ack != first.ack or nxt.window != first.window or not nxt.payload:
        return False
    # Every piece but the last is as long as the first one, and the pieces do not overshoot the script's.
    return len(last.payload) == len(first.payload) >= len(nxt.payload) and len(nxt.payload) <= missing


def _join(pieces: list[P.Segment]) -> P.Segment:
    if len(pieces) == 1:
        return pieces[0]
    first = pieces[0]
    flags = first.flags & ~(P.PSH | P.FIN)
    for p in pieces:
        flags |= p.flags & (P.PSH | P.FIN)
    return P.Segment(first.src, first.dst, first.sport, first.dport, first.seq, first.ack, flags, first.window,
                     first.options, b"".join(p.payload for p in pieces), first.urgent, first.tos)


def _script_text(ev: Event) -> str:
    text = ev.text
    m = re.match(r"\s*\S+\s+(.*)$", text)
    return m.group(1) if m else text


class _ErrorCollector(logging.Handler):
    """Keeps pystack's "internal error" log records (the stack catches its own exceptions and logs them)."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        detail = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            tb = traceback.extract_tb(record.exc_info[2])[-1] if record.exc_info[2] else None
            where = f" at {tb.filename.rsplit('/', 1)[-1]}:{tb.lineno}" if tb else ""
            detail += f": {type(exc).__name__}: {exc}{where}"
        self.sink.append(detail)


__all__ = ["Driver", "Settings", "Verdict"]
