"""The ladder diagram: who sent what to whom, in order, one column per participant.

::

                 pystack           broadcast           192.0.2.1
                                                   router, DHCP, DNS
                    |                   |                   |
       0.001        |---DHCPDISCOVER--->|                   |
       0.004        |<--------------DHCPOFFER---------------|

Runs of bulk arrows (TCP data and its ACKs, repeated ARP probes) are summarised as one arrow per
sender, receiver and kind, with a count and the bytes they carried.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LABEL = 48
MIN_GAP = 14
TIME_WIDTH = 10


@dataclass(frozen=True)
class Arrow:
    time: float
    """Seconds since the start of the session."""
    src: str
    dst: str
    label: str
    bulk: str | None = None
    """Kind of a repetitive arrow ("data", "ACK"); a run of bulk arrows is drawn as one line per kind."""
    size: int = 0
    """Payload bytes, summed when bulk arrows are summarised."""


@dataclass
class Participant:
    key: str
    title: str
    subtitle: str = ""


def summarise(arrows: list[Arrow]) -> list[Arrow]:
    """Collapse each run of consecutive bulk arrows into one arrow per (sender, receiver, kind).

    A kind that occurs once in its run keeps its own label.
    """
    out: list[Arrow] = []
    i = 0
    while i < len(arrows):
        if arrows[i].bulk is None:
            out.append(arrows[i])
            i += 1
            continue
        j = i
        while j < len(arrows) and arrows[j].bulk is not None:
            j += 1
        groups: dict[tuple[str, str, str], list[Arrow]] = {}
        for a in arrows[i:j]:
            groups.setdefault((a.src, a.dst, a.bulk or ""), []).append(a)
        for (src, dst, kind), members in groups.items():
            if len(members) == 1:
                out.append(members[0])
                continue
            size = sum(a.size for a in members)
            label = f"{kind} x{len(members)}" + (f", {size:,} bytes" if size else "")
            out.append(Arrow(members[0].time, src, dst, label, kind, size))
        i = j
    return out


def clip(label: str, limit: int = MAX_LABEL) -> str:
    return label if len(label) <= limit else label[:limit - 3] + "..."


def layout(participants: list[Participant], arrows: list[Arrow],
           summarise_bulk: bool) -> tuple[list[Arrow], list[Participant], dict[str, int]]:
    """The rows to draw, the columns in order and each key's column: participants named only by arrows
    are added as found. Shared by the text and the SVG ladder."""
    rows = summarise(arrows) if summarise_bulk else list(arrows)
    cols = list(participants)
    index = {p.key: i for i, p in enumerate(cols)}
    for a in rows:
        for key in (a.src, a.dst):
            if key not in index:
                index[key] = len(cols)
                cols.append(Participant(key, key))
    return rows, cols, index


def render(participants: list[Participant], arrows: list[Arrow], summarise_bulk: bool = True) -> str:
    """The diagram as text (no trailing newline). Participants named only by arrows are added as found."""
    rows, cols, index = layout(participants, arrows, summarise_bulk)
    n = len(cols)
    if n == 0:
        return ""
    labels = [clip(a.label) for a in rows]
    # Gaps between neighbouring column centres: room for the titles, then for every label.
    gaps = []
    for i in range(n - 1):
        need = max(_half(cols[i]) + _half(cols[i + 1], right=True) + 2, MIN_GAP)
        gaps.append(need)
    spans = sorted(((min(index[a.src], index[a.dst]), max(index[a.src], index[a.dst]), len(lab))
                    for a, lab in zip(rows, labels) if a.src != a.dst), key=lambda s: s[1] - s[0])
    for lo, hi, length in spans:
        need = length + 6  # two dashes either side, the head, and the column mark itself
        have = sum(gaps[lo:hi])
        if have < need:
            gaps[hi - 1] += need - have
    left = max(_half(cols[0]), 1) + 1
    centres = [left]
    for g in gaps:
        centres.append(centres[-1] + g)
    width = centres[-1] + _half(cols[-1], right=True) + 2

    lines = []
    lines.append(" " * TIME_WIDTH + _centred([c.title for c in cols], centres, width))
    if any(c.subtitle for c in cols):
        lines.append(" " * TIME_WIDTH + _centred([c.subtitle for c in cols], centres, width))
    lines.append(" " * TIME_WIDTH + _bars(centres, width).rstrip())
    for a, label in zip(rows, labels):
        canvas = list(_bars(centres, width))
        s, d = index[a.src], index[a.dst]
        if s == d:
            text = f"({label})"
            start = centres[s] + 2
            canvas[start:start + len(text)] = text
            canvas += [" "] * max(0, start + len(text) - len(canvas))
        else:
            lo, hi = (centres[s], centres[d]) if s < d else (centres[d], centres[s])
            for x in range(lo + 1, hi):
                canvas[x] = "-"
            if s < d:
                canvas[hi - 1] = ">"
            else:
                canvas[lo + 1] = "<"
            room = hi - lo - 1
            start = lo + 1 + (room - len(label)) // 2
            canvas[start:start + len(label)] = label
        lines.append(f"{a.time:{TIME_WIDTH - 2}.3f}  " + "".join(canvas).rstrip())
    return "\n".join(lines)


def _half(p: Participant, right: bool = False) -> int:
    widest = max(len(p.title), len(p.subtitle))
    return (widest + (1 if right else 0)) // 2


def _bars(centres: list[int], width: int) -> str:
    canvas = [" "] * width
    for c in centres:
        canvas[c] = "|"
    return "".join(canvas)


def _centred(texts: list[str], centres: list[int], width: int) -> str:
    canvas = [" "] * width
    for text, c in zip(texts, centres):
        start = max(0, c - len(text) // 2)
        canvas[start:start + len(text)] = text
    return "".join(canvas).rstrip()
