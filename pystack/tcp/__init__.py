"""TCP (RFC 9293), sans-I/O: a layer that demultiplexes, listeners, and connections.

The IP layer drives it::

    tcp = TcpLayer(TcpConfig(), counters, emit=lambda src_ip, dst_ip, segment, now, gso_size=0: ..., mtu=1500)
    tcp.receive(src_ip, dst_ip, ipv4_payload, now)   # every protocol-6 datagram
    deadline = tcp.get_timer()                        # float | None, absolute time
    tcp.handle_timer(now)                             # when the deadline is reached
    tcp.icmp_error(icmp_type, icmp_code, local_ip, remote_ip, quoted_tcp_header, now, next_hop_mtu)

The socket layer drives the user side (every call takes ``now``; nothing blocks)::

    listener = tcp.listen(local_ip, port, backlog)    # local_ip 0 = any address
    conn = listener.accept()                          # Connection | None
    conn = tcp.connect(local_ip, remote_ip, remote_port, now, local_port=None)  # SYN sent at once
    conn.send(data, now) -> int      # bytes taken into the bounded send buffer (0 when full)
    conn.recv(max_bytes, now) -> bytes       # b"" at EOF; BlockingIOError when nothing yet
    conn.set_nodelay(on, now); conn.set_keepalive(on, now)
    conn.shutdown_write(now); conn.close(now); conn.abort(now)
    conn.state, conn.error, conn.readable, conn.writable, conn.on_event = callback

``on_event`` (a no-argument callable, on connections and listeners) is called whenever readiness may
have changed: data or EOF arrived, send space was freed, the handshake completed, the connection
closed or failed, or a listener got a connection to accept. The time of that event is
``conn.event_time`` (``listener.event_time``), for the calls the callback makes.
"""

from pystack.tcp.config import TcpConfig
from pystack.tcp.congestion import ALGORITHMS, CongestionControl, Cubic, NewReno
from pystack.tcp.connection import Connection
from pystack.tcp.layer import TcpLayer
from pystack.tcp.listener import Listener
from pystack.tcp.seq import seq_add, seq_diff, seq_ge, seq_gt, seq_le, seq_lt
from pystack.tcp.state import State

__all__ = [
    "ALGORITHMS", "CongestionControl", "Connection", "Cubic", "Listener", "NewReno", "State", "TcpConfig", "TcpLayer",
    "seq_add", "seq_diff", "seq_ge", "seq_gt", "seq_le", "seq_lt",
]
