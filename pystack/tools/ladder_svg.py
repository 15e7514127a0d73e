"""The ladder diagram as SVG (``--ladder-svg FILE``): the text ladder's columns, rows and summarised runs,
drawn with lifelines and arrowheads. One ``g`` per arrow (class ``arrow``), in time order."""

from __future__ import annotations

from pystack.plot import svg
from pystack.tools.ladder import Arrow, Participant, clip, layout

COLUMN = 230
ROW = 30
TIME_COLUMN = 80
HEAD = 70
MAX_LABEL = 60
_HALO = ' stroke="white" stroke-width="4" paint-order="stroke"'
"""A label's white outline, so that a lifeline it crosses does not cut through its letters."""


def render_svg(participants: list[Participant], arrows: list[Arrow], summarise_bulk: bool = True) -> str:
    rows, cols, index = layout(participants, arrows, summarise_bulk)
    width = TIME_COLUMN + max(len(cols), 1) * COLUMN
    height = HEAD + (len(rows) + 1) * ROW
    x = [TIME_COLUMN + COLUMN // 2 + i * COLUMN for i in range(len(cols))]
    body = ['<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="black"/></marker></defs>']
    body.append('<g id="participants">')
    for i, p in enumerate(cols):
        body.append(svg.text(x[i], 24, p.title, "middle", 14, ' font-weight="bold"'))
        if p.subtitle:
            body.append(svg.text(x[i], 42, p.subtitle, "middle", 11, ' fill="#555"'))
    body.append("</g>")
    body.append('<g id="lifelines" stroke="#999" stroke-dasharray="4,3">')
    for xi in x:
        body.append(f'<line x1="{xi}" y1="{HEAD - 14}" x2="{xi}" y2="{height - 8}"/>')
    body.append("</g>")
    body.append(f'<g id="arrows" data-count="{len(rows)}">')
    body.append(svg.text(8, HEAD - 20, "seconds", size=11, extra=' fill="#555"'))
    for r, a in enumerate(rows):
        y = HEAD + (r + 1) * ROW
        s, d = index[a.src], index[a.dst]
        label = clip(a.label, MAX_LABEL)
        body.append('<g class="arrow">')
        body.append(svg.text(8, y + 4, f"{a.time:.3f}", size=11, extra=' fill="#555"'))
        if s == d:
            body.append(f'<circle cx="{x[s]}" cy="{y}" r="3" fill="black"/>')
            body.append(svg.text(x[s] + 8, y + 4, label, size=12))
        else:
            colour = "#1f3f9f" if a.bulk is None else "#777"
            body.append(f'<line x1="{x[s]}" y1="{y}" x2="{x[d]}" y2="{y}" stroke="{colour}" stroke-width="1.4" '
                        'marker-end="url(#head)"/>')
            body.append(svg.text((x[s] + x[d]) / 2, y - 5, label, "middle", 12, _HALO))
        body.append("</g>")
    body.append("</g>")
    return svg.document(width, height, "ladder diagram", body)
