"""UDP against kernel peers: the echo service (RFC 862) and port unreachable for closed ports (RFC 1122 4.1.3.1)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

from pystack.api.socket import IP_RECVERR, IPPROTO_IP
from pystack_lab import lab

pytestmark = pytest.mark.integration


def _exchange(ns: lab.Namespace, payload: bytes, port: int = 7) -> bytes:
    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(3)
        sock.connect((lab.STACK_IP, port))
        sock.send(payload)
        return sock.recv(65535)


@pytest.mark.parametrize("size", [1, 512, 1472, 8000])
def test_python_socket_gets_its_datagram_echoed(stack: lab.Daemon, size: int) -> None:
    """Random bytes come back unchanged; 8000 bytes are fragmented by the kernel and by pystack."""
    payload = os.urandom(size)
    try:
        reply = _exchange(stack.ns, payload)
    except OSError as exc:
        pytest.fail(f"no echo: {exc!r}\n{stack.stderr()}")
    assert reply == payload
    counters = stack.stop()
    assert counters.get("udp.echoed", 0) >= 1, counters


def test_netcat_gets_its_datagram_echoed(stack: lab.Daemon) -> None:
    message = f"hello pystack {os.urandom(4).hex()}\n"
    proc = stack.ns.run(["nc", "-u", "-w", "2", lab.STACK_IP, "7"], input=message, timeout=15)
    assert proc.stdout == message, f"nc printed {proc.stdout!r}, stderr {proc.stderr!r}\n{stack.stderr()}"


def test_closed_port_is_refused(stack: lab.Daemon) -> None:
    """A connected kernel socket learns of pystack's ICMP port unreachable as ECONNREFUSED."""
    with pytest.raises(ConnectionRefusedError):
        _exchange(stack.ns, b"anyone there?", port=9)
    counters = stack.stop()
    assert counters.get("drop.udp.port_closed", 0) >= 1, counters
    assert counters.get("icmp.errors_sent", 0) >= 1, counters


def test_the_kernels_error_queue_gets_back_what_pystacks_port_unreachable_quotes(stack: lab.Daemon) -> None:
    """pystack quotes up to 548 bytes of the datagram (RFC 1812 4.3.2.3, as Linux): the kernel's error queue
    hands back the 520 bytes of payload after the IP and UDP headers, or all of a shorter payload."""
    for payload, quoted in ((b"anyone?", b"anyone?"), (bytes(range(256)) * 4, (bytes(range(256)) * 4)[:520])):
        sock = stack.ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sock.setsockopt(IPPROTO_IP, IP_RECVERR, 1)
            sock.settimeout(3)
            sock.connect((lab.STACK_IP, 9))
            sock.send(payload)
            with pytest.raises(ConnectionRefusedError):
                sock.recv(2000)
            data, _ancdata, flags, _address = sock.recvmsg(2000, 512, socket.MSG_ERRQUEUE)
        assert flags & socket.MSG_ERRQUEUE and data == quoted, (len(data), flags)


def test_echo_port_is_closed_without_echo_flag(start_stack: Callable[..., lab.Daemon]) -> None:
    daemon = start_stack()
    with pytest.raises(ConnectionRefusedError):
        _exchange(daemon.ns, b"echo?", port=7)
