"""The ladder diagram: columns, arrow heads and labels where they belong, bulk runs summarised."""

from __future__ import annotations

import re

from pystack.tools.ladder import MAX_LABEL, Arrow, Participant, render, summarise

A = Participant("us", "pystack", "192.0.2.10/24")
B = Participant("192.0.2.1", "192.0.2.1", "router, DNS")
C = Participant("198.51.100.80", "198.51.100.80", "web server")


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"\s*\d+\.\d{3}  ", line)]


def _bars(line: str) -> list[int]:
    return [i for i, ch in enumerate(line) if ch == "|"]


def test_header_names_each_column_over_its_bar() -> None:
    text = render([A, B, C], [Arrow(0.0, "us", "192.0.2.1", "hello")])
    lines = text.splitlines()
    titles, subtitles, bars = lines[0], lines[1], lines[2]
    centres = _bars(bars)
    assert len(centres) == 3
    for p, c in zip((A, B, C), centres):
        start = titles.index(p.title)
        assert start <= c < start + len(p.title)
        sub = subtitles.index(p.subtitle)
        assert sub <= c < sub + len(p.subtitle)


def test_arrow_heads_point_at_the_receiver_and_labels_sit_between() -> None:
    arrows = [Arrow(0.5, "us", "198.51.100.80", "SYN"), Arrow(0.75, "198.51.100.80", "us", "SYN,ACK"),
              Arrow(1.0, "192.0.2.1", "us", "DNS A 198.51.100.80")]
    text = render([A, B, C], arrows)
    centres = _bars(text.splitlines()[2])
    rows = _rows(text)
    assert [r.split()[0] for r in rows] == ["0.500", "0.750", "1.000"]
    right, left, middle = rows
    # us -> web: from the first bar to the third, head just before the third.
    assert right[centres[0]] == "|" and right[centres[2]] == "|"
    assert right[centres[2] - 1] == ">" and right[centres[0] + 1] == "-"
    assert centres[0] < right.index("SYN") < centres[2]
    assert left[centres[0] + 1] == "<" and left[centres[2] - 1] == "-"
    # router -> us spans only the first two columns; the third bar is untouched.
    assert middle[centres[0] + 1] == "<" and middle[centres[1] - 1] == "-"
    assert centres[0] < middle.index("DNS A 198.51.100.80") < centres[1]
    assert middle[centres[2]] == "|"


def test_columns_widen_for_long_labels() -> None:
    label = "L" * 40
    text = render([A, B], [Arrow(0, "us", "192.0.2.1", label)])
    row = _rows(text)[0]
    assert label in row
    bars = _bars(text.splitlines()[2])
    assert bars[1] - bars[0] >= len(label) + 4


def test_overlong_labels_are_clipped() -> None:
    text = render([A, B], [Arrow(0, "us", "192.0.2.1", "x" * 200)])
    row = _rows(text)[0]
    assert "x" * (MAX_LABEL - 3) + "..." in row and "x" * MAX_LABEL not in row


def test_participants_seen_only_in_arrows_are_added() -> None:
    text = render([A], [Arrow(0, "us", "203.0.113.9", "ping")])
    lines = text.splitlines()
    assert "pystack" in lines[0] and "203.0.113.9" in lines[0]
    assert len(_bars(lines[2])) == 2
    assert re.search(r"\|-+ping-+>\|", _rows(text)[0])


def test_bulk_runs_are_summarised_per_direction_and_kind() -> None:
    arrows = [Arrow(0.1, "us", "w", "PSH,ACK 80 bytes")]
    arrows += [Arrow(0.2 + i / 100, "w", "us", "data", "data", 1000) for i in range(5)]
    arrows += [Arrow(0.21, "us", "w", "ACK", "ACK")] * 3
    arrows += [Arrow(0.3, "us", "w", "FIN,ACK"), Arrow(0.4, "w", "us", "ACK", "ACK")]
    out = summarise(arrows)
    assert [a.label for a in out] == ["PSH,ACK 80 bytes", "data x5, 5,000 bytes", "ACK x3", "FIN,ACK", "ACK"]
    assert out[1].time == 0.2 and out[1].size == 5000
    assert (out[1].src, out[1].dst) == ("w", "us") and (out[2].src, out[2].dst) == ("us", "w")


def test_summary_keeps_separate_runs_apart() -> None:
    arrows = [Arrow(0, "us", "w", "data", "data", 10), Arrow(1, "us", "w", "data", "data", 10),
              Arrow(2, "w", "us", "RST"),
              Arrow(3, "us", "w", "data", "data", 10), Arrow(4, "us", "w", "data", "data", 10)]
    assert [a.label for a in summarise(arrows)] == ["data x2, 20 bytes", "RST", "data x2, 20 bytes"]


def test_render_can_show_every_arrow() -> None:
    arrows = [Arrow(i, "us", "192.0.2.1", "ACK", "ACK") for i in range(4)]
    assert len(_rows(render([A, B], arrows))) == 1
    assert len(_rows(render([A, B], arrows, summarise_bulk=False))) == 4


def test_nothing_to_draw() -> None:
    assert render([], []) == ""
