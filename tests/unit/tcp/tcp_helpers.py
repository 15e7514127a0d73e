"""Handshake helpers for the Solo (one layer, scripted peer) tests, and a pair of whole stacks."""

from __future__ import annotations

from pystack.config import StackConfig
from pystack.stack import Stack
from pystack.wire import ipv4
from pystack.wire import tcp as wire
from pystack.wire.tcp import ACK, SYN

from .tcp_harness import IP_A, IP_B, LOCAL_PORT, PEER_PORT, Solo

PEER_ISS = 5000
PEER_MSS = wire.build_options(mss=1460)


def passive(solo: Solo, options: bytes = PEER_MSS, window: int = 65535, peer_iss: int = PEER_ISS):
    """Listen, take a SYN, answer the SYN-ACK; returns (listener, connection, syn_ack)."""
    lst = solo.layer.listen(IP_B, LOCAL_PORT, 4)
    solo.send(peer_iss, 0, SYN, window, options=options)
    synack = solo.one()
    assert synack.flags == SYN | ACK and synack.ack == peer_iss + 1
    solo.send(peer_iss + 1, synack.seq + 1, ACK, window)
    conn = lst.accept()
    assert conn is not None
    return lst, conn, synack


def active(solo: Solo, options: bytes = PEER_MSS, window: int = 65535, peer_iss: int = PEER_ISS):
    """Connect to the scripted peer and complete the handshake; returns (connection, syn, final ack)."""
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    syn = solo.one()
    assert syn.flags == SYN
    solo.send(peer_iss, syn.seq + 1, SYN | ACK, window, options=options)
    ack = solo.one()
    assert ack.flags == ACK and ack.ack == peer_iss + 1 and ack.seq == syn.seq + 1
    return conn, syn, ack


def stack_pair(now: float) -> tuple[Stack, Stack]:
    """Client A (IP_A) and server B (IP_B) on one /24, each with the other's MAC already in its ARP cache."""
    a_mac, b_mac = bytes.fromhex("02000000000a"), bytes.fromhex("02000000000b")
    a, b = Stack(a_mac, StackConfig()), Stack(b_mac, StackConfig())
    a.configure(IP_A, 24, None, now)
    b.configure(IP_B, 24, None, now)
    a.arp.update(IP_B, b_mac, now, create=True)
    b.arp.update(IP_A, a_mac, now, create=True)
    return a, b


def connected_stacks(now: float):
    """A stack_pair with a connection from A to B's port 80, handshake done: (a, b, client, server)."""
    a, b = stack_pair(now)
    listener = b.tcp.listen(0, 80, 4)
    client = a.tcp.connect(IP_A, IP_B, 80, now)
    shuttle(a, b, now)
    server = listener.accept()
    assert server is not None
    return a, b, client, server


def shuttle(a: Stack, b: Stack, now: float) -> None:
    """Carry frames both ways, one receive_frame each, until both are quiet."""
    for _ in range(100):
        moved = False
        for src, dst in ((a, b), (b, a)):
            for frame in src.frames_to_send():
                dst.receive_frame(frame, now)
                moved = True
        if not moved:
            return
    raise AssertionError("the stacks kept talking")


def tcp_of(frame: bytes) -> wire.TcpSegment:
    """The TCP segment in an Ethernet frame (asserting it is one)."""
    ip = ipv4.parse(memoryview(frame)[14:])
    assert ip.protocol == ipv4.PROTO_TCP
    return wire.parse(ip.payload, ip.src, ip.dst)
