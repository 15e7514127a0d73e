"""The lab checks itself against the kernel alone, so a failing pystack test is never the lab's fault."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from pystack_lab import lab

pytestmark = pytest.mark.integration


def test_namespace_is_removed_with_its_processes(lab_ready: None) -> None:
    with lab.namespace() as ns:
        name = ns.name
        proc = ns.spawn(["sleep", "60"])
        assert name in lab.netns.listnetns()
    assert proc.returncode is not None, "the process started in the namespace was not stopped"
    assert name not in lab.netns.listnetns()


def test_namespace_is_removed_when_the_body_raises(lab_ready: None) -> None:
    with pytest.raises(ZeroDivisionError):
        with lab.namespace() as ns:
            name = ns.name
            1 / 0
    assert name not in lab.netns.listnetns()


def test_kernel_pings_kernel_over_veth(lab_ready: None) -> None:
    with lab.namespace() as a, lab.namespace() as b:
        lab.veth(a, "veth0", b, "veth1")
        for ns, ifname, address in ((a, "veth0", lab.HOST_ADDRESS), (b, "veth1", lab.STACK_ADDRESS)):
            ns.disable_ipv6(ifname)
            ns.add_address(ifname, address)
            ns.link_up(ifname)
        assert a.read_proc("/proc/sys/net/ipv6/conf/veth0/disable_ipv6") == "1"
        result = lab.ping(a, lab.STACK_IP, count=3, interval=0.1)
        assert (result["transmitted"], result["received"]) == (3, 3), result["output"]
        assert len(result["rtts"]) == 3


def test_packet_socket_frames_reach_the_other_end(lab_ready: None) -> None:
    """A frame written with AF_PACKET on one end of a veth is read, byte for byte, on the other."""
    with lab.namespace() as a, lab.namespace() as b:
        lab.veth(a, "veth0", b, "veth1")
        for ns, ifname in ((a, "veth0"), (b, "veth1")):
            ns.disable_ipv6(ifname)
            ns.link_up(ifname)
        tx, rx = a.packet_socket("veth0"), b.packet_socket("veth1")
        with tx, rx:
            rx.settimeout(5)
            frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + b"lab probe".ljust(46, b".")
            deadline = time.monotonic() + 5
            tx.send(frame)
            while time.monotonic() < deadline:
                if rx.recv(2048) == frame:
                    break
            else:
                pytest.fail("the frame did not arrive")


def test_floor_answers_ping(lab_ready: None) -> None:
    """The bench's floor (scripts/floor.py) is a correct, if minimal, responder."""
    with lab.namespace() as ns:
        proc = ns.spawn([sys.executable, str(lab.REPO / "scripts" / "floor.py")], stderr=subprocess.PIPE,
                        text=True)
        assert "ready" in proc.stderr.readline()
        ns.disable_ipv6(lab.TAP)
        ns.add_address(lab.TAP, lab.HOST_ADDRESS)
        ns.link_up(lab.TAP)
        for size in (56, 1472):
            result = lab.ping(ns, lab.STACK_IP, count=3, size=size, interval=0.05)
            assert result["received"] == 3, result["output"]
        assert lab.stop_process(proc) == 0


def test_floor_answers_ping6(lab_ready: None) -> None:
    """With ``--address6`` the floor answers the kernel's neighbour solicitations and ``ping -6`` too."""
    with lab.namespace() as ns:
        proc = ns.spawn([sys.executable, str(lab.REPO / "scripts" / "floor.py"), "--address6", lab.STACK_IP6],
                        stderr=subprocess.PIPE, text=True)
        assert "ready" in proc.stderr.readline()
        ns.add_address6(lab.TAP, lab.HOST_ADDRESS6)
        ns.link_up(lab.TAP)
        for size in (56, 1452):
            result = lab.ping(ns, lab.STACK_IP6, count=3, size=size, interval=0.05)
            assert result["received"] == 3, result["output"]
        assert lab.stop_process(proc) == 0


def test_socket_made_in_namespace_lives_there(ns: lab.Namespace) -> None:
    """Sockets from ``Namespace.socket`` see the namespace's interfaces, not the caller's."""
    server = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        reply = ns.run([sys.executable, "-c",
                        "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                        f"s.sendto(b'hi', ('127.0.0.1', {port}))"], timeout=20)
        assert reply.returncode == 0, reply.stderr
        server.settimeout(5)
        assert server.recvfrom(16)[0] == b"hi"


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert lab.percentile(values, 50) == 50.0
    assert lab.percentile(values, 99) == 99.0
    assert lab.percentile([3.0], 99) == 3.0
    assert lab.parse_ping("64 bytes from 192.0.2.2: icmp_seq=1 ttl=64 time=0.050 ms\n"
                          "1 packets transmitted, 1 received, 0% packet loss")["rtts"] == [0.05]
