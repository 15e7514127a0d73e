"""What the daemon answers on its control socket, read from the stack under the loop's lock.

``ss`` lists sockets as ``ss -tuna`` would: TCP connections (TIME-WAIT included), TCP listeners and
UDP ports, each with its queues, IPv4's then IPv6's (``[2001:db8::2]:80``; a dual-stack socket on ``::``
is a row in each); with ``info`` a connection's internals (pystack.tcp.info.tcp_info). ``stats`` is the
counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pystack.api.families import V4, V6, text
from pystack.tcp.info import tcp_info

if TYPE_CHECKING:
    from pystack.stack import Stack


def _endpoint(version: int, ip: int, port: int) -> str:
    return f"{text(version, ip)}:{port if port else '*'}"


def sockets(stack: Stack, tcp: bool = False, udp: bool = False, listening: bool = False, all: bool = False,
            info: bool = False) -> list[dict[str, Any]]:
    """The rows of ``pystack ss``: neither ``tcp`` nor ``udp`` means both; connected sockets only, or
    ``listening`` ones only, or ``all``."""
    if not tcp and not udp:
        tcp = udp = True
    connected = all or not listening
    bound = all or listening
    rows: list[dict[str, Any]] = []
    tcp_layers = ((V4, stack.tcp), (V6, stack.tcp6))
    if tcp and connected:
        for v, layer in tcp_layers:
            for conn in list(layer.connections.values()):
                row: dict[str, Any] = {
                    "netid": "tcp", "state": conn.state.name, "local": _endpoint(v, conn.local_ip, conn.local_port),
                    "peer": _endpoint(v, conn.remote_ip, conn.remote_port),
                    "recv_q": conn.recv_available, "send_q": conn.unsent,
                }
                if info:
                    row["info"] = tcp_info(conn)
                rows.append(row)
    if tcp and bound:
        for v, layer in tcp_layers:
            for (ip, port), listener in list(layer.listeners.items()):
                rows.append({"netid": "tcp", "state": "LISTEN", "local": _endpoint(v, ip, port),
                             "peer": _endpoint(v, 0, 0), "recv_q": listener.pending, "send_q": listener.backlog})
    if udp:
        for v, udp_layer in ((V4, stack.udp), (V6, stack.udp6)):
            for endpoint in list(udp_layer.ports.values()):
                remote = endpoint.remote
                if remote is None and not bound or remote is not None and not connected:
                    continue
                rows.append({
                    "netid": "udp", "state": "UNCONN" if remote is None else "ESTABLISHED",
                    "local": _endpoint(v, endpoint.local_ip, endpoint.port),
                    "peer": _endpoint(v, *remote) if remote is not None else _endpoint(v, 0, 0),
                    "recv_q": sum(len(data) for data, _src in endpoint.queue), "send_q": 0,
                })
    return rows


def answer(stack: Stack, command: str, options: dict[str, bool], now: float) -> dict[str, Any]:
    """The reply to a checked request (pystack.control.protocol.parse_request)."""
    if command == "ss":
        return {"ok": True, "time": now, "sockets": sockets(stack, **options)}
    return {"ok": True, "time": now, "counters": dict(sorted(stack.counters.items()))}
