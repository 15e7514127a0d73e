"""Just enough SVG, written by hand: a document, escaped text, linear scales and axes with round ticks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable
from xml.sax.saxutils import escape, quoteattr

FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""


def text(x: float, y: float, content: str, anchor: str = "start", size: int = 12, extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
            f"{escape(content)}</text>")


def document(width: int, height: int, title: str, body: list[str]) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT}>',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        *body,
        "</svg>",
        "",
    ])


def path(ident: str, d: list[str], stroke: str, width: float = 1.0, extra: str = "") -> str:
    """One path element; an empty series is still there, with an empty ``d``."""
    return (f'<path id={quoteattr(ident)} d="{" ".join(d)}" fill="none" stroke="{stroke}" '
            f'stroke-width="{width}"{extra}/>')


def nice_step(span: float, ticks: int = 8) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


@dataclass(frozen=True)
class Scale:
    """Data values [lo, hi] onto pixels [p0, p1] (p1 < p0 for a y axis, which grows upwards)."""

    lo: float
    hi: float
    p0: float
    p1: float

    def __call__(self, v: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.p0 + (v - self.lo) * (self.p1 - self.p0) / span

    def ticks(self, count: int = 8) -> list[float]:
        step = nice_step(self.hi - self.lo, count)
        first = math.ceil(self.lo / step) * step
        n = int((self.hi - first) / step + 1e-9) + 1
        return [first + i * step for i in range(max(n, 0))]


def axis(ident: str, scale: Scale, at: float, horizontal: bool, label: str, fmt: Callable[[float], str],
         count: int = 8) -> str:
    """An axis line at ``at`` (y for horizontal, x for vertical), ticks with labels, and its title."""
    parts = [f'<g id="{ident}" stroke="black" fill="black">']
    if horizontal:
        parts.append(f'<line x1="{scale.p0:.1f}" y1="{at:.1f}" x2="{scale.p1:.1f}" y2="{at:.1f}"/>')
        for v in scale.ticks(count):
            x = scale(v)
            parts.append(f'<line class="tick" x1="{x:.1f}" y1="{at:.1f}" x2="{x:.1f}" y2="{at + 5:.1f}"/>')
            parts.append(text(x, at + 18, fmt(v), "middle", extra=' stroke="none"'))
        parts.append(text((scale.p0 + scale.p1) / 2, at + 36, label, "middle", 13, ' stroke="none"'))
    else:
        parts.append(f'<line x1="{at:.1f}" y1="{scale.p0:.1f}" x2="{at:.1f}" y2="{scale.p1:.1f}"/>')
        for v in scale.ticks(count):
            y = scale(v)
            parts.append(f'<line class="tick" x1="{at - 5:.1f}" y1="{y:.1f}" x2="{at:.1f}" y2="{y:.1f}"/>')
            parts.append(text(at - 8, y + 4, fmt(v), "end", extra=' stroke="none"'))
        mid = (scale.p0 + scale.p1) / 2
        parts.append(text(at - 62, mid, label, "middle", 13,
                          f' stroke="none" transform="rotate(-90 {at - 62:.1f} {mid:.1f})"'))
    parts.append("</g>")
    return "\n".join(parts)


def human_bytes(v: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= size:
            return f"{v / size:g}{unit}"
    return f"{v:g}"


def legend(x: float, y: float, entries: list[tuple[str, str]]) -> str:
    """Colour swatches with their names, in one row from (x, y)."""
    parts = ['<g id="legend">']
    for colour, name in entries:
        parts.append(f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 18:.1f}" y2="{y - 4:.1f}" stroke="{colour}" '
                     'stroke-width="3"/>')
        parts.append(text(x + 22, y, name, size=11))
        x += 30 + 6.5 * len(name)
    parts.append("</g>")
    return "\n".join(parts)
