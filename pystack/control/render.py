"""The daemon's answers as text: ``pystack ss`` in the columns of ``ss -tuni``, ``pystack stats`` as lines."""

from __future__ import annotations

import socket
from typing import Any

from pystack.tcp.congestion import SSTHRESH_INITIAL

STATE_NAMES = {"ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "SYN_RECEIVED": "SYN-RECV", "FIN_WAIT_1": "FIN-WAIT-1",
               "FIN_WAIT_2": "FIN-WAIT-2", "TIME_WAIT": "TIME-WAIT", "CLOSE_WAIT": "CLOSE-WAIT",
               "LAST_ACK": "LAST-ACK", "CLOSING": "CLOSING", "CLOSED": "UNCONN", "LISTEN": "LISTEN",
               "UNCONN": "UNCONN"}
"""pystack's state names (RFC 9293's) as ss prints them."""


def _service(endpoint: str, netid: str, numeric: bool) -> str:
    """``ip:port`` with the port's service name from /etc/services, as ss does without -n."""
    host, _, port = endpoint.rpartition(":")
    if numeric or not port.isdigit():
        return endpoint
    try:
        return f"{host}:{socket.getservbyport(int(port), netid)}"
    except OSError:
        return endpoint


def info_line(info: dict[str, Any]) -> str:
    """A connection's internals in the words of ``ss -i`` (times in ms, cwnd and ssthresh in segments)."""
    mss = info["snd_mss"] or 1
    parts = [str(info["congestion_control"])]
    if info["window_scaling"]:
        parts.append(f"wscale:{info['snd_wscale']},{info['rcv_wscale']}")
    parts.append(f"rto:{info['rto'] * 1000:g}")
    parts.append(f"rtt:{info['srtt'] * 1000:.3f}/{info['rttvar'] * 1000:.3f}")
    parts.append(f"mss:{mss} pmtu:{info['pmtu']} rcvmss:{info['rcv_mss']} advmss:{info['advmss']}")
    parts.append(f"cwnd:{info['cwnd'] // mss}")
    if info["ssthresh"] < SSTHRESH_INITIAL:
        parts.append(f"ssthresh:{info['ssthresh'] // mss}")
    parts.append(f"bytes_acked:{info['bytes_acked']} bytes_received:{info['bytes_received']}")
    parts.append(f"retrans:{info['retransmits']}/{info['total_retrans']}")
    if info["sacked"]:
        parts.append(f"sacked:{info['sacked']}")
    if info["lost"]:
        parts.append(f"lost:{info['lost']}")
    parts.append(f"ca_state:{info['ca_state']}")
    parts.append(f"snd_wnd:{info['snd_wnd']} rcv_space:{info['rcv_space']}")
    return " ".join(parts)


def ss_table(rows: list[dict[str, Any]], numeric: bool = False) -> str:
    """The sockets as ``ss`` lays them out, an indented internals line under each connection that has one."""
    head = ["Netid", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port"]
    cells = [[r["netid"], STATE_NAMES.get(r["state"], r["state"]), str(r["recv_q"]), str(r["send_q"]),
              _service(r["local"], r["netid"], numeric), _service(r["peer"], r["netid"], numeric)] for r in rows]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    lines = []
    for r, c in zip([None, *rows], [head, *cells]):
        lines.append(" ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
        if r is not None and "info" in r:
            lines.append("\t " + info_line(r["info"]))
    return "\n".join(lines)


def counters_lines(counters: dict[str, int]) -> str:
    return "\n".join(f"{name:<44} {value}" for name, value in sorted(counters.items()))


def delta_lines(before: dict[str, int], after: dict[str, int], seconds: float) -> str:
    """The counters that moved, per second, for ``pystack stats --watch``."""
    lines = []
    for name in sorted(after):
        change = after[name] - before.get(name, 0)
        if change:
            lines.append(f"{name:<44} {change / seconds:+.1f}/s")
    return "\n".join(lines) if lines else "(no counter moved)"
