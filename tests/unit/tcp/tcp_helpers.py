"""Handshake helpers for the Solo (one layer, scripted peer) tests."""

from __future__ import annotations

from tcp_harness import IP_A, IP_B, LOCAL_PORT, PEER_PORT, Solo

from pystack.wire import tcp as wire
from pystack.wire.tcp import ACK, SYN

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
