"""The control socket, served by a real poll loop (two runtimes on a socketpair link): what ``ss`` and
``stats`` answer, and that bad or idle clients are refused and counted without stalling the loop."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from pystack.control import protocol
from pystack.control.client import ControlUnavailable, ask
from pystack.control.protocol import RequestError, parse_request
from pystack.control.render import ss_table
from pystack.control.server import ControlError, ControlServer
from pystack.link.socketpair import SocketPairLink
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.tcp.state import State
from pystack.wire.ipv4 import addr_to_int

A_IP, B_IP = addr_to_int("192.0.2.2"), addr_to_int("192.0.2.1")
WAIT = 10.0
"""Seconds any wait on the loops may take before the test fails instead of hanging."""


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT} s: {what}")
        time.sleep(0.01)


@pytest.fixture
def daemon() -> Iterator[tuple[Runtime, Runtime, str]]:
    """B (the daemon, 192.0.2.1, control socket at a fresh abstract name) serving port 80, and A
    connected to it and sending 200 kB that B's application does not read."""
    la, lb = SocketPairLink.pair()
    ra = Runtime(Stack(bytes.fromhex("020000000002")), la)
    rb = Runtime(Stack(bytes.fromhex("020000000001")), lb)
    ra.stack.configure(A_IP, 24, None, ra.now())
    rb.stack.configure(B_IP, 24, None, rb.now())
    address = f"@pystack-test/{secrets.token_hex(6)}"
    server = ControlServer(rb, address)
    listener = rb.stack.tcp.listen(0, 80, 8)
    threads = [ra.start_thread(), rb.start_thread()]
    try:
        with ra.lock:
            conn = ra.stack.tcp.connect(A_IP, B_IP, 80, ra.now())
            ra.flush()
        ra.wake()
        _until(lambda: conn.state == State.ESTABLISHED, "the connection is established")
        with ra.lock:
            conn.send(bytes(200_000), ra.now())
            ra.flush()
        ra.wake()
        _until(lambda: listener.pending == 1, "B has the connection to accept")
        yield ra, rb, address
    finally:
        for rt in (ra, rb):
            rt.stop()
        for t in threads:
            t.join(5)
        server.close()
        for rt in (ra, rb):
            rt.close()


def test_ss_lists_the_connection_with_its_internals_and_the_listener(daemon: tuple[Runtime, Runtime, str]) -> None:
    _ra, rb, address = daemon
    rows = ask(address, "ss", tcp=True, info=True)["sockets"]
    (row,) = rows
    assert row["state"] == "ESTABLISHED" and row["local"] == "192.0.2.1:80" and row["peer"].startswith("192.0.2.2:")
    info = row["info"]
    assert info["cwnd"] >= info["snd_mss"] > 0 and info["ca_state"] == "Open"
    assert info["srtt"] >= 0 and info["rto"] >= rb.stack.config.tcp.rto_min  # a sub-ms RTT in ms TSvals is 0
    assert info["bytes_received"] == row["recv_q"] > 0  # nobody reads: all that came is queued
    assert info["congestion_control"] == rb.stack.config.tcp.congestion_control
    (listening,) = ask(address, "ss", listening=True)["sockets"]
    assert listening["state"] == "LISTEN" and listening["local"] == "0.0.0.0:80" and listening["recv_q"] == 1
    text = ss_table(rows)
    assert text.splitlines()[1].split()[:2] == ["tcp", "ESTAB"]
    assert " cwnd:" in text.splitlines()[2] and " rtt:" in text


def test_stats_are_the_daemons_counters(daemon: tuple[Runtime, Runtime, str]) -> None:
    _ra, rb, address = daemon
    counters = ask(address, "stats")["counters"]
    assert counters["tcp.passive_opens"] == 1 and counters["frames_in"] > 0
    assert ask(address, "stats")["counters"]["control.requests"] == counters["control.requests"] + 1


def _raw(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(WAIT)
    sock.connect(protocol.sockaddr(address))
    return sock


def _answer(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass  # closed with our request unread: the answer came before
    return data


@pytest.mark.parametrize("request_line, error", [
    (b"hello\n", b"not a line of JSON"),
    (b'{"command": "rm"}\n', b"unknown command 'rm'"),
    (b'{"command": "ss", "info": 1}\n', b"ss takes no option 'info'"),
    (b"x" * (protocol.MAX_REQUEST + 10), b"longer than"),
], ids=["not-json", "unknown", "bad-option", "too-long"])
def test_a_bad_request_is_refused_and_counted(daemon: tuple[Runtime, Runtime, str], request_line: bytes,
                                              error: bytes) -> None:
    _ra, rb, address = daemon
    with _raw(address) as sock:
        sock.sendall(request_line)
        answer = _answer(sock)
    assert b'"ok":false' in answer and error in answer
    assert rb.stack.counters["drop.control.bad_request"] == 1


def test_a_silent_client_stalls_nothing_and_is_dropped_at_its_deadline(daemon: tuple[Runtime, Runtime, str]) -> None:
    _ra, rb, address = daemon
    with _raw(address) as silent:
        assert ask(address, "stats")["ok"]  # served while the silent one holds its connection
        _until(lambda: rb.stack.counters["drop.control.client_too_slow"] == 1, "the silent client is dropped")
        assert _answer(silent) == b""


def test_clients_beyond_the_bound_are_turned_away(daemon: tuple[Runtime, Runtime, str]) -> None:
    _ra, rb, address = daemon
    silent = [_raw(address) for _ in range(protocol.MAX_CLIENTS)]
    try:
        with pytest.raises(ControlUnavailable, match="busy"):
            ask(address, "stats")
        assert rb.stack.counters["drop.control.busy"] == 1
    finally:
        for sock in silent:
            sock.close()
    _until(lambda: _served(address), "the daemon answers again")


def _served(address: str) -> bool:
    try:
        return ask(address, "stats")["ok"]
    except ControlUnavailable:
        return False


def test_a_second_daemon_on_the_same_name_is_told_so(daemon: tuple[Runtime, Runtime, str]) -> None:
    _ra, rb, address = daemon
    with pytest.raises(ControlError, match="taken"):
        ControlServer(rb, address)


def test_no_daemon_is_one_clear_line() -> None:
    with pytest.raises(ControlUnavailable, match="no pystack daemon listens on @pystack-test/none"):
        ask("@pystack-test/none", "stats")


def test_requests_are_checked() -> None:
    assert parse_request(b'{"command":"ss","tcp":true}') == ("ss", {"tcp": True})
    assert parse_request(protocol.encode_request("stats")) == ("stats", {})
    with pytest.raises(RequestError):
        parse_request(b"[1]")
