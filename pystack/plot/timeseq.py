"""The time-sequence graph of a TCP connection, as tcptrace and Wireshark's Stevens graph draw it.

Time runs right, sequence numbers (bytes from the sender's ISN) up. Each data segment is a vertical
bar from its first to its last byte at the time it was seen (retransmissions in red), the ACK line
steps along the receiver's cumulative ACK, the window line along the right edge of the window it
offered (ACK plus window), and each SACK block is a short bar beside the ACK that carried it. When
pystack's comments give cwnd (a .pcapng capture), a second panel shows cwnd and ssthresh over time.
Each series is one ``path`` element with an ``id`` and a ``data-count`` of what it holds.
"""

from __future__ import annotations

from pystack.plot import svg
from pystack.plot.tcpseries import Series

WIDTH = 1100
MAIN_HEIGHT = 560
CWND_HEIGHT = 220
LEFT, RIGHT, TOP = 100, 30, 56

DATA = "#1f3f9f"
RETRANSMISSION = "#d62020"
ACK = "#1a8f2a"
WINDOW = "#c09000"
SACK = "#9b30c0"
CWND = "#1f3f9f"
SSTHRESH = "#888888"


def _steps(points: list[tuple[float, float]]) -> list[str]:
    """A step line through ``points`` (x, y): level until the next x, then up or down."""
    d: list[str] = []
    for i, (x, y) in enumerate(points):
        d.append(f"M{x:.1f},{y:.1f}" if i == 0 else f"H{x:.1f} V{y:.1f}")
    return d


def render(s: Series) -> str:
    """The SVG document of ``s``."""
    has_cwnd = bool(s.cwnd)
    height = TOP + MAIN_HEIGHT + (CWND_HEIGHT if has_cwnd else 0)
    t_max = max([0.001] + [g.time for g in s.segments] + [a.time for a in s.acks])
    y_max = max([1] + [g.end for g in s.segments] + [a.window_edge for a in s.acks])
    plot_bottom = TOP + MAIN_HEIGHT - 70
    xs = svg.Scale(0.0, t_max * 1.02, LEFT, WIDTH - RIGHT)
    ys = svg.Scale(0.0, y_max * 1.04, plot_bottom, TOP)
    body: list[str] = []
    notes = []
    if s.truncated:
        notes.append(f"first {len(s.segments)} segments only")
    if not s.window_scale_known:
        notes.append("window scale unknown (no SYNs): window unscaled")
    title = f"time-sequence graph of {s.title}" + (f" ({'; '.join(notes)})" if notes else "")
    body.append(svg.text(WIDTH / 2, 24, title, "middle", 15, ' id="title" font-weight="bold"'))

    data: list[str] = []
    rexmit: list[str] = []
    n_data = n_rexmit = 0
    for g in s.segments:
        x, y0, y1 = xs(g.time), ys(g.start), ys(g.end)
        bar = f"M{x:.1f},{y0:.1f} V{y1:.1f} M{x - 2:.1f},{y1:.1f} H{x + 2:.1f}"
        if g.retransmission:
            rexmit.append(bar)
            n_rexmit += 1
        else:
            data.append(bar)
            n_data += 1
    ack_points = [(xs(a.time), ys(a.ack)) for a in s.acks]
    window_points = [(xs(a.time), ys(a.window_edge)) for a in s.acks]
    sacks = [f"M{xs(a.time) + 1.5:.1f},{ys(left):.1f} V{ys(right):.1f}" for a in s.acks for left, right in a.sack]

    body.append(f'<g id="time-sequence" clip-path="none">')
    body.append(svg.path("window-edge", _steps(window_points), WINDOW, 1.2, f' data-count="{len(window_points)}"'))
    body.append(svg.path("ack-line", _steps(ack_points), ACK, 1.2, f' data-count="{len(ack_points)}"'))
    body.append(svg.path("sack-blocks", sacks, SACK, 2.0, f' data-count="{len(sacks)}"'))
    body.append(svg.path("segments", data, DATA, 1.0, f' data-count="{n_data}"'))
    body.append(svg.path("retransmissions", rexmit, RETRANSMISSION, 1.6, f' data-count="{n_rexmit}"'))
    body.append("</g>")
    body.append(svg.axis("x-axis", xs, plot_bottom, True, "time (s)", lambda v: f"{v:g}"))
    body.append(svg.axis("y-axis", ys, LEFT, False, "sequence number (bytes from ISN)", svg.human_bytes))
    body.append(svg.legend(LEFT, TOP + MAIN_HEIGHT - 16, [
        (DATA, f"data ({n_data})"), (RETRANSMISSION, f"retransmission ({n_rexmit})"), (ACK, "ACK"),
        (WINDOW, "receive window edge"), (SACK, f"SACK blocks ({len(sacks)})")]))

    if has_cwnd:
        top = TOP + MAIN_HEIGHT
        bottom = top + CWND_HEIGHT - 50
        c_max = max(max(c for _t, c, _s in s.cwnd), max((st for _t, _c, st in s.cwnd if st is not None), default=0))
        cy = svg.Scale(0.0, c_max * 1.08 or 1.0, bottom, top + 10)
        cwnd_points = [(xs(t), cy(c)) for t, c, _st in s.cwnd]
        ss_points = [(xs(t), cy(st)) for t, _c, st in s.cwnd if st is not None]
        body.append('<g id="cwnd-panel">')
        body.append(svg.path("ssthresh", _steps(ss_points), SSTHRESH, 1.2,
                             f' data-count="{len(ss_points)}" stroke-dasharray="5,3"'))
        body.append(svg.path("cwnd", _steps(cwnd_points), CWND, 1.4, f' data-count="{len(cwnd_points)}"'))
        body.append(svg.axis("cwnd-x-axis", xs, bottom, True, "time (s), from pystack's frame comments",
                             lambda v: f"{v:g}"))
        body.append(svg.axis("cwnd-y-axis", cy, LEFT, False, "bytes", svg.human_bytes, 4))
        body.append(svg.legend(WIDTH - 300, top + 14, [(CWND, "cwnd"), (SSTHRESH, "ssthresh")]))
        body.append("</g>")
    return svg.document(WIDTH, height, title, body)
