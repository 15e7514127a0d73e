"""``pystack fetch``, ``pystack resolve`` and ``pystack ping``: a session, one job, the narration, the ladder.
All three are dual-stack: names are asked for AAAA and A, fetch races the families (RFC 8305), ping and
resolve use IPv6 when there is an IPv6 answer and IPv6 is ready; ``Setup.family`` forces one.

Each returns the exit status; :class:`~pystack.tools.session.CommandError` (one line, status 1) and
:class:`~pystack.tools.session.SetupError` (status 2) are turned into messages by the CLI.
"""

from __future__ import annotations

import errno
import struct
import time
from collections.abc import Callable
from typing import Any, BinaryIO, TextIO

from pystack.tcp.state import State
from pystack.tools.http import HttpError, Response, ResponseReader, Url, build_request
from pystack.errors import CommandError, SetupError
from pystack.tools.happy_eyeballs import IPV6
from pystack.tools.narrator import Narrator, endpoint, host, human_bytes, ms, rate
from pystack.tools.session import ClientSession, Setup
from pystack.wire import icmp as icmp_wire
from pystack.wire import icmpv6 as icmpv6_wire
from pystack.wire import ipv4
from pystack.wire import ipv6 as ipv6_wire

RECV_SIZE = 65536
CLOSE_WAIT_LIMIT = 5.0
"""Seconds to watch the close: our FIN acknowledged and the server's FIN received (then TIME_WAIT)."""


def _run(setup: Setup, narrator: Narrator, job: Callable[[ClientSession], int]) -> int:
    """Open the session, run ``job``, always close; the ladder and the counters end the narration."""
    svg = None
    if setup.ladder_svg:
        try:
            svg = open(setup.ladder_svg, "w", encoding="utf-8")
        except OSError as exc:
            raise SetupError(f"cannot write {setup.ladder_svg}: {exc.strerror}") from None
    session = ClientSession(setup, narrator)
    try:
        session.open()
        session.configure()
        return job(session)
    finally:
        try:
            session.close()
        finally:
            if session.stack is not None:
                narrator.say(f"counters: {session.counters_line()}")
            if narrator.arrows and narrator.enabled:
                narrator.note("\nladder (seconds since start; runs of data segments and ACKs summarised):\n"
                              + narrator.ladder() + "\n")
            if svg is not None:
                with svg:
                    svg.write(narrator.ladder_svg())


# ---------------------------------------------------------------------- fetch


def fetch(setup: Setup, url: Url, out: BinaryIO, narrator: Narrator, cacert: str | None = None) -> int:
    """``cacert``: for https, the CA certificates (PEM) to trust instead of the system's."""
    narrator.say(f"fetch {url.text}")
    return _run(setup, narrator, lambda session: _fetch(session, url, out, narrator, cacert))


def _fetch(session: ClientSession, url: Url, out: BinaryIO, n: Narrator, cacert: str | None = None) -> int:
    tcp = session.connect(url.host, url.port, role="web server")
    peer = endpoint(*tcp.getpeername()[:2])
    sock: Any = session.tls(tcp, url.host, cacert) if url.scheme == "https" else tcp
    request = build_request(url)
    first_line = request.split(b"\r\n", 1)[0].decode("ascii")
    n.say(f"request: {first_line} (Host: {url.host_header}), {len(request)} bytes")
    reader = ResponseReader("GET")
    try:
        sent = time.monotonic()
        sock.sendall(request)
        first_byte: float | None = None
        told_head = False
        while not reader.complete:
            try:
                data = sock.recv(RECV_SIZE)
            except TimeoutError:
                raise CommandError(f"the server sent nothing for {session.setup.timeout:g} s "
                                   f"({reader.body_bytes} body bytes so far)") from None
            except OSError as exc:
                raise CommandError(f"connection to {peer} failed: {exc.strerror or exc}") from None
            if first_byte is None:
                first_byte = time.monotonic()
            body = reader.feed(data) if data else reader.feed_eof()
            if reader.response is not None and not told_head:
                told_head = True
                _tell_head(n, reader, first_byte - sent)
            if body:
                out.write(body)
            if not data:
                break
        out.flush()
    except HttpError as exc:
        tcp.close()
        raise CommandError(f"bad response from {url.host_header}: {exc}") from None
    response = reader.response
    assert response is not None
    took = time.monotonic() - (first_byte or sent)
    n.say(f"body complete: {human_bytes(reader.body_bytes)} in {ms(took)} ({rate(reader.body_bytes, took)})")
    if _server_closes(response) and reader.framing != "close" and tcp.state != State.CLOSE_WAIT:
        _await_close(sock)
    if tcp.state == State.CLOSE_WAIT:
        n.say("closing: the server closed first, so pystack's FIN ends it (LAST_ACK); "
              "the TIME_WAIT is on the server's side")
    else:
        n.say("closing: pystack sends its FIN first, so its side goes through FIN_WAIT to TIME_WAIT")
    tcp.close()
    state = session.wait_closed(tcp, CLOSE_WAIT_LIMIT)
    if state == State.TIME_WAIT:
        msl2 = session.stack.config.tcp.time_wait if session.stack is not None else 60.0
        n.say(f"TIME_WAIT: pystack holds the connection for {msl2:g} s (2 MSL, RFC 9293 3.6) so that a late "
              "segment cannot reach a new one; it ends when this process exits")
    elif state == State.CLOSED:
        n.say("connection closed")
    else:
        n.say(f"connection still in {state.name} after {CLOSE_WAIT_LIMIT:g} s; leaving it")
    if response.status >= 400:
        raise CommandError(f"the server answered {response.status_line}")
    return 0


def _server_closes(r: Response) -> bool:
    """RFC 9112 9.3 and 9.6: HTTP/1.0 without keep-alive, or ``Connection: close``, means the server
    closes once the response is sent."""
    tokens = {t.strip().lower() for v in r.header_values("Connection") for t in v.split(",")}
    return "close" in tokens or (r.version == "HTTP/1.0" and "keep-alive" not in tokens)


def _await_close(sock: Any) -> None:
    """The server said it closes after the response: read to its FIN (bounded) so that the close goes
    the way the server chose, whatever order the last data and the FIN were read in."""
    try:
        sock.settimeout(CLOSE_WAIT_LIMIT)
        while sock.recv(RECV_SIZE):
            pass  # bytes after the response are not ours to keep
    except OSError:  # TimeoutError included: close it ourselves, as before
        pass


def _tell_head(n: Narrator, reader: ResponseReader, wait: float) -> None:
    r = reader.response
    assert r is not None
    for interim in reader.interim:
        n.say(f"interim response: {interim.status_line}")
    framing = {"length": f"Content-Length {r.header('Content-Length')}",
               "chunked": "chunked transfer coding", "close": "body until the server closes",
               "none": "no body"}[reader.framing]
    extra = ""
    content_type = r.header("Content-Type")
    if content_type:
        extra += f", Content-Type {content_type}"
    server = r.header("Server")
    if server:
        extra += f", server {server}"
    n.say(f"response: {r.status_line} after {ms(wait)}; {framing}{extra}")


# ---------------------------------------------------------------------- resolve


def resolve(setup: Setup, name: str, out: TextIO, narrator: Narrator) -> int:
    """The addresses, one a line: the AAAA answer's, then the A answer's (or the one family asked for)."""
    def job(session: ClientSession) -> int:
        for family, q in session.resolve(name).items():
            for addr in q.addresses if q.error is None else []:
                print(host(family, addr), file=out, flush=True)
        return 0

    return _run(setup, narrator, job)


# ---------------------------------------------------------------------- ping


def ping(setup: Setup, host: str, count: int, interval: float, size: int, wait: float, out: TextIO,
         narrator: Narrator) -> int:
    return _run(setup, narrator, lambda session: _ping(session, host, count, interval, size, wait, out))


def _ping(session: ClientSession, name: str, count: int, interval: float, size: int, wait: float,
          out: TextIO) -> int:
    rt, stack = session.runtime, session.stack
    assert rt is not None and stack is not None and session.wire is not None
    family, dst = session.lookup(name)
    target = host(family, dst)
    session.wire.echo = False  # the reply lines below say it
    ident = session.rng.getrandbits(16)
    sent_at: dict[int, float] = {}
    rtts: dict[int, float] = {}
    duplicates = 0
    v6 = family == IPV6
    header = icmpv6_wire.HEADER_LEN if v6 else icmp_wire.HEADER_LEN

    def on_reply(src: int, rest: int, payload: bytes, now: float) -> None:
        nonlocal duplicates
        seq = rest & 0xFFFF
        if src != dst or rest >> 16 != ident or seq not in sent_at:
            return
        dup = seq in rtts
        if dup:
            duplicates += 1
        else:
            rtts[seq] = now - sent_at[seq]
        print(f"{header + len(payload)} bytes from {target}: icmp_seq={seq} "
              f"time={(now - sent_at[seq]) * 1000:.3f} ms{' (DUP!)' if dup else ''}", file=out, flush=True)

    if v6:
        print(f"PING {name} ({target}) {size} data bytes", file=out, flush=True)
    else:
        print(f"PING {name} ({target}) {size}({size + 28}) bytes of data.", file=out, flush=True)
    with rt.lock:
        if v6:
            stack.echo6_reply_handler = on_reply
        else:
            stack.echo_reply_handler = on_reply
    started = time.monotonic()
    try:
        for seq in range(1, count + 1):
            with rt.lock:
                now = rt.now()
                # Like ping(8): a time stamp, then a byte pattern, ``size`` bytes in all.
                payload = (struct.pack("!d", time.time()) + bytes(i & 0xFF for i in range(max(0, size - 8))))[:size]
                sent_at[seq] = now
                try:
                    if v6:
                        src = stack.source_for6(dst)
                        if src is None:
                            raise OSError(errno.EADDRNOTAVAIL, "no IPv6 address to send from")
                        message = icmpv6_wire.build(icmpv6_wire.TYPE_ECHO_REQUEST, 0, (ident << 16) | seq, payload,
                                                    src, dst)
                        stack.send_ip6(dst, ipv6_wire.NH_ICMPV6, message, now, src=src)
                    else:
                        message = icmp_wire.build(icmp_wire.TYPE_ECHO_REQUEST, 0, (ident << 16) | seq, payload)
                        stack.send_ip(dst, ipv4.PROTO_ICMP, message, now)
                except OSError as exc:
                    raise CommandError(f"cannot send to {target}: {exc.strerror or exc}") from None
                rt.flush()
                rt.wake()
            last = seq == count
            until = time.monotonic() + (wait if last else interval)
            with rt.lock:
                while time.monotonic() < until and not (last and len(rtts) == count):
                    rt.changed.wait(until - time.monotonic())
    finally:
        with rt.lock:
            if v6:
                stack.echo6_reply_handler = None
            else:
                stack.echo_reply_handler = None
    took = time.monotonic() - started
    received = len(rtts)
    loss = 100.0 * (count - received) / count if count else 0.0
    print(f"\n--- {name} ping statistics ---", file=out)
    dup_text = f", +{duplicates} duplicates" if duplicates else ""
    print(f"{count} packets transmitted, {received} received{dup_text}, {loss:.0f}% packet loss, "
          f"time {took * 1000:.0f}ms", file=out)
    if rtts:
        values = [v * 1000 for v in rtts.values()]
        print(f"rtt min/avg/max = {min(values):.3f}/{sum(values) / len(values):.3f}/{max(values):.3f} ms",
              file=out)
    out.flush()
    if not received:
        raise CommandError(f"no echo reply from {target} ({count} requests sent)")
    return 0
