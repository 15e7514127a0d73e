"""The shell commands of packetdrill scripts, read as configuration: a sysctl becomes a TcpConfig value,
the corpus's defaults.sh is the profile itself, and a command that changes something pystack has no
knob for (a qdisc, route metrics, a module parameter) makes the script a skip with that reason.
"""

from __future__ import annotations

import re
import shlex

from pystack.config import StackConfig


class Unhonourable(Exception):
    """A command the runner cannot honour on pystack: the reason for a skip."""


_DEFAULTS = re.compile(r"^(\.\./)+common/defaults\.sh$")
_RESTORE = re.compile(r"^/tmp/sysctl_restore_\$\{PPID\}\.sh$")
_NO_EFFECT = {
    # Sizes of TSO/GSO bursts and the qdisc under them: they decide how Linux cuts its flights into
    # super-segments, which the runner joins back anyway (packetdrill does the same on a wire).
    "tcp_min_tso_segs", "tcp_tso_win_divisor",
}
_BASELINE = {
    # defaults.sh values pystack already behaves as: setting them again changes nothing.
    "tcp_frto": "2", "tcp_dsack": "1", "tcp_fack": "0", "tcp_recovery": "1", "tcp_ecn": "0",
    "tcp_ecn_option": "2", "tcp_pacing_ss_ratio": "200", "tcp_pacing_ca_ratio": "120",
    "tcp_notsent_lowat": "4294967295", "tcp_fastopen": "0x70403", "tcp_syncookies": "1",
    "tcp_slow_start_after_idle": "0", "tcp_fastopen_key": "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4",
}
FAST_OPEN = "TCP fast open (RFC 7413)"
_WHY = {
    "tcp_ecn": "ECN", "tcp_ecn_option": "ECN", "tcp_notsent_lowat":
    "TCP_NOTSENT_LOWAT", "tcp_slow_start_after_idle": "slow start after idle (RFC 5681 4.1)",
    "tcp_mtu_probing": "packetization-layer path MTU discovery (RFC 4821)", "tcp_base_mss": "MTU probing",
    "tcp_pacing_ss_ratio": "pacing", "tcp_pacing_ca_ratio": "pacing", "tcp_frto": "F-RTO settings",
    "tcp_recovery": "RACK settings",
}


def apply(command: str, config: StackConfig) -> None:
    """Make ``config`` what ``command`` would make the kernel; raise Unhonourable if it cannot."""
    for line in _lines(command):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            raise Unhonourable(f"shell command {line.split()[0]}") from None
        if not words:
            continue
        if _DEFAULTS.match(words[0]) or _RESTORE.match(words[0]):
            continue
        name = words[0].rsplit("/", 1)[-1]
        if name == "sysctl":
            for arg in words[1:]:
                if not arg.startswith("-"):
                    _sysctl(arg, config)
        elif name == "set_sysctls.py":
            for arg in words[1:]:
                _sysctl(arg, config)
        elif name == "ethtool" and "-K" in words:
            continue  # segmentation offload on the tun: the runner joins segments either way
        elif name == "tc":
            if words[-2:] == ["root", "pfifo"] and "limit" not in words:
                continue  # defaults.sh's plain FIFO: no pacing, no drops
            raise Unhonourable("a qdisc (" + " ".join(words[2:7]) + ")")
        elif name == "ip" and "route" in words:
            raise Unhonourable("route metrics (advmss, mtu lock, initcwnd)")
        elif name == "echo" and any("/sys/module/" in w for w in words):
            raise Unhonourable("kernel module parameters (" + words[-1].rsplit("/", 1)[-1] + ")")
        else:
            raise Unhonourable(f"shell command {name}")


def _lines(command: str) -> list[str]:
    text = command.replace("\\\n", " ").rstrip().rstrip("\\")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _sysctl(arg: str, config: StackConfig) -> None:
    key, sep, raw = arg.partition("=")
    if not sep:
        raise Unhonourable(f"sysctl {arg}")
    name = re.split(r"[./]", key.strip())[-1]
    value = raw.strip().strip('"')
    tcp = config.tcp
    if name in _NO_EFFECT:
        return
    if _BASELINE.get(name) == value:
        return
    if name == "tcp_timestamps":
        tcp.timestamps = value != "0"
    elif name == "tcp_sack":
        tcp.sack = value != "0"
    elif name == "tcp_window_scaling":
        tcp.window_scaling = value != "0"
    elif name == "tcp_early_retrans":
        tcp.tail_loss_probe = value not in ("0", "1", "2")  # 3 and 4 enable TLP (Linux ip-sysctl.rst)
    elif name == "tcp_congestion_control":
        if value not in ("cubic", "reno"):
            raise Unhonourable(f"congestion control {value}")
        tcp.congestion_control = "cubic" if value == "cubic" else "newreno"
    elif name in ("tcp_wmem", "tcp_rmem"):
        low, default, high = (int(x) for x in value.split())
        if name == "tcp_wmem":
            tcp.send_buffer, tcp.send_buffer_max = default, high
        else:
            tcp.recv_buffer, tcp.recv_buffer_max = default, high
    elif name == "tcp_syn_retries":
        tcp.syn_retries = int(value)
    elif name == "tcp_synack_retries":
        tcp.synack_retries = int(value)
    elif name == "tcp_reordering":
        tcp.dupack_threshold = int(value)
    elif name == "tcp_syncookies":
        tcp.syncookies = value != "0"
    elif name.startswith("tcp_fastopen"):
        raise Unhonourable(FAST_OPEN)
    else:
        raise Unhonourable(_WHY.get(name, f"sysctl {name}={value}"))
