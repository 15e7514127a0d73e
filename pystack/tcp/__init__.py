"""TCP (RFC 9293), sans-I/O: a layer that demultiplexes, listeners, and connections.

Usage from the IP layer::

    layer = TcpLayer(TcpConfig(), counters, emit=lambda src, dst, seg: ..., mtu=1500)
    layer.receive(src_ip, dst_ip, payload, now)       # protocol-6 payloads
    deadline = layer.get_timer(); layer.handle_timer(now)
"""

from pystack.tcp.config import TcpConfig
from pystack.tcp.congestion import ALGORITHMS, CongestionControl, NewReno
from pystack.tcp.connection import Connection
from pystack.tcp.layer import TcpLayer
from pystack.tcp.listener import Listener
from pystack.tcp.seq import seq_add, seq_diff, seq_ge, seq_gt, seq_le, seq_lt
from pystack.tcp.state import State

__all__ = [
    "ALGORITHMS", "CongestionControl", "Connection", "Listener", "NewReno", "State", "TcpConfig", "TcpLayer",
    "seq_add", "seq_diff", "seq_ge", "seq_gt", "seq_le", "seq_lt",
]
