"""FdLink takes a descriptor someone else opened: what it is not is refused in one line (no root needed
to check), and a packet socket whose medium is named carries frames both ways."""

from __future__ import annotations

import os
import random
import socket
import threading

import pytest

from pystack.api import socket as api
from pystack.config import StackConfig
from pystack.link.fd import FdLink, descriptor_medium
from pystack.link.tap import TapError, interface_state
from pystack.medium import Medium
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.wire.ipv4 import addr_to_int

MAC = bytes.fromhex("020000000002")
A_IP, B_IP = "192.0.2.2", "192.0.2.1"


def test_a_pipe_is_refused_it_would_not_keep_the_packets_apart() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(TapError, match=f"descriptor {r} is not a TUN/TAP device, nor a datagram"):
            FdLink(r, Medium.IP)
        assert descriptor_medium(r) is None
    finally:
        os.close(r)
        os.close(w)


def test_a_stream_socket_is_refused() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b, pytest.raises(TapError, match="nor a datagram or seqpacket socket"):
        FdLink(a.fileno(), "ip")


def test_a_packet_socket_needs_its_medium_named() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b, pytest.raises(TapError, match="--medium ip or --medium ethernet"):
        FdLink(a.fileno())


def test_an_unknown_medium_is_refused() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b, pytest.raises(TapError, match="unknown medium 'tun'"):
        FdLink(a.fileno(), "tun")


def test_a_packet_socket_carries_whole_packets_both_ways() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    link = FdLink(os.dup(a.fileno()), "ip")
    with a, b:
        assert link.medium is Medium.IP and link.read() is None  # nothing waiting: None, not an exception
        b.send(b"\x45" + bytes(19))
        b.send(b"\x45" + bytes(39))
        assert [link.read(), link.read(), link.read()] == [b"\x45" + bytes(19), b"\x45" + bytes(39), None]
        assert link.write(b"\x45" + bytes(27))
        assert b.recv(100) == b"\x45" + bytes(27)
        link.close()


def test_interface_state_reads_without_privilege() -> None:
    mtu, up, mac = interface_state("lo")
    assert mtu > 0 and up and mac == bytes(6)
    assert interface_state("no-such-if0") is None


def test_a_stack_of_the_other_medium_is_refused_by_the_runtime() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    link = FdLink(os.dup(a.fileno()), "ip")
    with a, b, pytest.raises(ValueError, match="the link carries the ip medium and the stack is set for ethernet"):
        Runtime(Stack(MAC), link)
    link.close()


def test_two_runtimes_on_handed_over_descriptors_of_the_ip_medium_exchange_tcp() -> None:
    """FdLink(fd, "ip") in code: two stacks in threads, each on one end of a seqpacket pair, a TCP echo
    of 200 kB through the poll loop (IP packets only on the pair)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    runtimes = []
    for sock, ip in ((a, A_IP), (b, B_IP)):
        link = FdLink(os.dup(sock.fileno()), "ip")
        runtime = Runtime(Stack(MAC, StackConfig(medium=link.medium)), link)
        runtime.stack.configure(addr_to_int(ip), 24, None, runtime.now())
        runtimes.append(runtime)
    a.close()
    b.close()
    threads = [rt.start_thread() for rt in runtimes]
    try:
        server = api.socket(runtimes[1], type=api.SOCK_STREAM)
        server.bind(("", 7000))
        server.listen(1)

        def serve() -> None:
            conn, _peer = server.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

        echo = threading.Thread(target=serve, daemon=True)
        echo.start()
        data = random.Random(3).randbytes(200_000)
        with api.socket(runtimes[0], type=api.SOCK_STREAM) as client:
            client.settimeout(20)
            client.connect((B_IP, 7000))
            sender = threading.Thread(target=lambda: (client.sendall(data), client.shutdown(api.SHUT_WR)))
            sender.start()
            got = bytearray()
            while chunk := client.recv(65536):
                got += chunk
            sender.join(10)
        assert got == data
        echo.join(10)
        server.close()
    finally:
        for rt in runtimes:
            rt.stop()
        for t in threads:
            t.join(5)
        for rt in runtimes:
            rt.close()
    # Real time: on a loaded machine a starved thread can hold its ACK past the other side's probe or
    # retransmission timeout, or its reader let the window close, and the duplicate or window probe that
    # sends is dropped. Every drop must be one of those of the other side's, and nothing is ARP.
    for rt, other in zip(runtimes, reversed(runtimes)):
        mine, theirs = rt.stack.counters, other.stack.counters
        resent = theirs["tcp.retransmits"] + theirs["tcp.tail_loss_probes"] + theirs["tcp.window_probes"]
        explained = mine["drop.tcp.out_of_window"] + mine["drop.tcp.zero_window_data"]
        assert mine.total_drops() == explained <= resent, (mine, theirs)
        assert not [k for k in mine if k.startswith("arp.")]
