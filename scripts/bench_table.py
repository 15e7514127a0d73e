"""The table ``make bench`` prints: a line per figure, a column per system, and pystack / kernel.

Each group of rows (ping, TCP, UDP, idle connections, the loss x delay matrix) turns its results into
:class:`Line` s here; a figure that could not be measured shows ``failed`` in its column and the why at the
end of its line, one that does not apply to a system shows ``n/a``, one that was not run shows ``-``
(``not run`` when the system cannot be run on this machine, the why in a note).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

COLUMNS = ("kernel", "pystack", "floor", "cubic", "pytcp")
"""Display order; ``cubic`` is the kernel with net.ipv4.tcp_congestion_control=cubic (matrix rows only)."""
LABEL = 44
WIDTH = 10
MB = 1_000_000


@dataclass
class Cell:
    value: float | None = None
    why: str | None = None
    """Why there is no value: ``n/a`` (does not apply), ``-`` (not run), else a failure."""
    mark: str = ""
    """Printed after the value (``*``: cut at its time bound)."""


@dataclass
class Line:
    label: str
    spec: str
    cells: dict[str, Cell] = field(default_factory=dict)
    ratio: bool = True


def _why(text: str) -> str:
    lines = [w for w in str(text).splitlines() if w.strip()]
    return lines[-1].strip() if lines else str(text)


def _cell(part: dict[str, Any] | None, get: Callable[[dict[str, Any]], float | None]) -> Cell:
    if part is None:
        return Cell(why="-")
    if "error" in part:
        return Cell(why=_why(part["error"]))
    if part.get("skipped"):
        return Cell(why="not run" if str(part["skipped"]).startswith("not run") else "-")
    try:
        value = get(part)
    except (KeyError, IndexError, TypeError, ZeroDivisionError):
        return Cell(why="n/a")
    return Cell(value) if value is not None else Cell(why="n/a")


# --- IPv6 beside IPv4 (the targets named with a 6: bench.py's and bench_tcp's IPV6_TARGETS) ---


def by_family(rows: list[dict[str, Any]], ipv6_targets: tuple[str, ...]) -> tuple[list[dict[str, Any]],
                                                                                  list[dict[str, Any]]]:
    """The IPv4 rows, and the IPv6 rows under their system's name (``pystack6`` in the ``pystack`` column)."""
    return ([r for r in rows if r["target"] not in ipv6_targets],
            [dict(r, target=r["target"][:-1]) for r in rows if r["target"] in ipv6_targets])


def _label6(label: str) -> str:
    """An IPv4 line's label for its IPv6 twin: ``ping -6 ...``, ``TCP -6 ...``, ``CPU ..., IPv6 ...``."""
    for word in ("ping ", "TCP ", "HTTP "):
        if label.startswith(word):
            return word + "-6 " + label[len(word):].replace("1472 B", "1452 B")
    return label.replace(", ", ", IPv6 ", 1)


def beside_ipv6(lines4: list[Line], lines6: list[Line]) -> list[Line]:
    """Each IPv6 line right after its IPv4 one, labelled as :func:`_label6` says; an IPv6 line with nothing
    measured in it (a row the IPv6 targets do not run) is left out."""
    out: list[Line] = []
    six = {line.label: line for line in lines6}
    for line in lines4:
        out.append(line)
        twin = six.get(line.label)
        if twin is not None and any(c.value is not None or c.why not in ("-", "n/a") for c in twin.cells.values()):
            out.append(Line(_label6(line.label), twin.spec, twin.cells, twin.ratio))
    return out


def ipv6_ratios(lines: list[Line], column: str) -> str:
    """``column``'s IPv6 figure over its IPv4 one, for each line pair of :func:`beside_ipv6` with both."""
    parts = []
    for four, six in zip(lines, lines[1:]):
        if six.label != _label6(four.label) or four.label.startswith("CPU"):
            continue
        a, b = four.cells.get(column), six.cells.get(column)
        if a is not None and b is not None and a.value and b.value is not None:
            parts.append(f"{four.label.split(' (')[0]} {b.value / a.value:.2f}")
    return "; ".join(parts)


# --- ping (bench.py measure) ---

PING: list[tuple[str, str, Callable[[dict[str, Any]], float | None], bool]] = [
    ("ping 56 B RTT median (ms)", ".3f", lambda r: r["rtt"][0]["median_ms"], True),
    ("ping 56 B RTT p99 (ms)", ".3f", lambda r: r["rtt"][0]["p99_ms"], True),
    ("ping 1472 B RTT median (ms)", ".3f", lambda r: r["rtt"][1]["median_ms"], True),
    ("ping 1472 B RTT p99 (ms)", ".3f", lambda r: r["rtt"][1]["p99_ms"], True),
    ("ping -f, 56 B (pkt/s)", "d", lambda r: r["flood"]["pps"], True),
    ("ping -f loss (%)", ".2f", lambda r: r["flood"]["loss_pct"], False),
]


def ping_lines(rows: list[dict[str, Any]]) -> list[Line]:
    return [Line(label, spec, {r["target"]: _cell(r, get) for r in rows}, ratio) for label, spec, get, ratio in PING]


# --- TCP (bench_tcp.measure) ---


def _cpu_per_gb(*parts: dict[str, Any]) -> float | None:
    """pystack's CPU seconds per GB (10^9 bytes) over the timed transfers of ``parts`` together."""
    cpu = sum(p["cpu_seconds"] for p in parts)
    moved = sum(p["bytes_timed"] for p in parts)
    return cpu / (moved / 1e9) if moved else None


def tcp_lines(rows: list[dict[str, Any]], mib: int, concurrency: int, busy_poll_us: int) -> list[Line]:
    def step(row: dict[str, Any], *keys: str) -> dict[str, Any] | None:
        if "error" in row and not all("_plain" in k for k in keys):
            return {"error": row["error"]}  # the default lab failed; the plain lab has its own whys
        parts = [row.get(k) for k in keys]
        if any(p is None for p in parts):
            return None
        bad = next((p for p in parts if "error" in p or p.get("skipped")), None)  # type: ignore[operator]
        return bad if bad is not None else {"parts": parts}

    def mbps(key: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda r: r[key]["mb_per_s"]

    specs: list[tuple[str, str, tuple[str, ...], Callable[[dict[str, Any]], float | None]]] = [
        (f"TCP download {mib} MiB (MB/s)", ".1f", ("download",), lambda p: p["parts"][0]["mb_per_s"]),
        (f"TCP upload {mib} MiB (MB/s)", ".1f", ("upload",), lambda p: p["parts"][0]["mb_per_s"]),
        ("TCP download, --pcap FILE.pcapng (MB/s)", ".1f", ("download_pcap",), lambda p: p["parts"][0]["mb_per_s"]),
        ("TCP download, --record FILE (MB/s)", ".1f", ("download_record",), lambda p: p["parts"][0]["mb_per_s"]),
        ("TCP download, MTU 1500, no offload (MB/s)", ".1f", ("download_plain",),
         lambda p: p["parts"][0]["mb_per_s"]),
        ("TCP upload, MTU 1500, no offload (MB/s)", ".1f", ("upload_plain",), lambda p: p["parts"][0]["mb_per_s"]),
        ("TCP download, no offload, --cpu 0 (MB/s)", ".1f", ("download_plain_cpu",),
         lambda p: p["parts"][0]["mb_per_s"]),
        ("TCP upload, no offload, --cpu 0 (MB/s)", ".1f", ("upload_plain_cpu",),
         lambda p: p["parts"][0]["mb_per_s"]),
        ("HTTP new conn/s, serial", ".0f", ("conn_serial",), lambda p: p["parts"][0]["per_second"]),
        (f"HTTP new conn/s, {concurrency} concurrent", ".0f", ("conn_concurrent",),
         lambda p: p["parts"][0]["per_second"]),
        (f"HTTP new conn/s, serial, --busy-poll {busy_poll_us}", ".0f", ("conn_serial_busy",),
         lambda p: p["parts"][0]["per_second"]),
        ("CPU ms per new conn, serial", ".3f", ("conn_serial",), lambda p: p["parts"][0].get("cpu_ms_per_request")),
        (f"CPU ms per new conn, serial, --busy-poll {busy_poll_us}", ".3f", ("conn_serial_busy",),
         lambda p: p["parts"][0].get("cpu_ms_per_request")),
        ("CPU s per GB, download", ".2f", ("download",), lambda p: _cpu_per_gb(*p["parts"])),
        ("CPU s per GB, download, --pcap FILE.pcapng", ".2f", ("download_pcap",), lambda p: _cpu_per_gb(*p["parts"])),
        ("CPU s per GB, download, --record FILE", ".2f", ("download_record",), lambda p: _cpu_per_gb(*p["parts"])),
        ("CPU s per GB, upload", ".2f", ("upload",), lambda p: _cpu_per_gb(*p["parts"])),
        ("CPU s per GB, download+upload", ".2f", ("download", "upload"), lambda p: _cpu_per_gb(*p["parts"])),
        ("CPU s per GB, down+up, no offload", ".2f", ("download_plain", "upload_plain"),
         lambda p: _cpu_per_gb(*p["parts"])),
    ]
    lines = []
    for label, spec, keys, get in specs:
        line = Line(label, spec, ratio=not label.startswith("CPU"))
        for row in rows:
            line.cells[row["target"]] = _cell(step(row, *keys), get)
        lines.append(line)
    return lines


# --- UDP (bench_udp.measure) ---


def udp_lines(rows: list[dict[str, Any]], windows: tuple[int, ...], size: int) -> list[Line]:
    lines = []
    for w in windows:
        line = Line(f"UDP echo {size} B, {w} in flight (pkt/s)", "d")
        for row in rows:
            part = {"error": row["error"]} if "error" in row else row.get(f"window{w}")
            line.cells[row["target"]] = _cell(part, lambda p: p["pps"])
        lines.append(line)
    return lines


# --- idle connections (bench_idle.measure) ---


def idle_lines(rows: list[dict[str, Any]], kernel_bytes: float | None) -> list[Line]:
    count = next((r["count"] for r in rows), 0)
    held = Line(f"idle TCP conns held (of {count})", "d")
    rate = Line("idle TCP conns opened per second", ".0f")
    memory = Line("memory per idle TCP conn (KiB)", ".2f")
    for row in rows:
        name = row["target"]
        held.cells[name] = _cell(row, lambda r: r["held"])
        rate.cells[name] = _cell(row, lambda r: r["held"] / r["open_seconds"] if r["open_seconds"] else None)
        if name == "kernel":
            memory.cells[name] = (_cell(row, lambda r: (kernel_bytes + r["server_bytes_per_conn"]) / 1024)
                                  if kernel_bytes is not None else
                                  Cell(why=_why(row["error"])) if "error" in row else Cell(why="n/a"))
        else:
            memory.cells[name] = _cell(row, lambda r: r["server_bytes_per_conn"] / 1024)
    return [held, rate, memory]


# --- the loss x delay matrix (bench_matrix.measure) ---


def matrix_lines(rows: list[dict[str, Any]], mib: int, losses: tuple[float, ...],
                 rtts: tuple[float, ...], key: Callable[[float, float], str]) -> list[Line]:
    lines = []
    for loss in losses:
        for rtt in rtts:
            line = Line(f"wire {mib} MiB, {loss:g}% loss, RTT +{rtt:g} ms (MB/s)", ".2f")
            for row in rows:
                part = {"error": row["error"]} if "error" in row else row["cells"].get(key(loss, rtt))
                cell = _cell(part, lambda p: p["mb_per_s"])
                if part is not None and part.get("complete") is False:
                    cell.mark = "*"
                line.cells[row["target"]] = cell
            lines.append(line)
    return lines


# --- the same program on three stacks (bench_same_program.measure) ---

PROGRAM: list[tuple[str, str, Callable[[dict[str, Any]], float | None], str]] = [
    ("program: upload (MB/s)", ".2f", lambda p: p["mb_per_s"], "upload"),
    ("program: download (MB/s)", ".2f", lambda p: p["mb_per_s"], "download"),
    ("program: connect+close (per s)", ".1f", lambda p: p["per_second"], "connect"),
    ("program: 64 B request/response median (ms)", ".3f", lambda p: p["median_ms"], "latency"),
    ("program: 64 B request/response p99 (ms)", ".3f", lambda p: p["p99_ms"], "latency"),
]


def program_lines(rows: list[dict[str, Any]]) -> list[Line]:
    lines = []
    for label, spec, get, test in PROGRAM:
        line = Line(label, spec)
        for row in rows:
            part = ({"error": row["error"]} if "error" in row else row if row.get("skipped")
                    else row.get(test))
            line.cells[row["target"]] = _cell(part, get)
        lines.append(line)
    return lines


# --- rendering ---


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    r = a / b
    return f"{r:.1f}x" if r >= 1 else f"{r:.3f}x" if r < 0.01 else f"{r:.2f}x"


def render(lines: list[Line], notes: list[str]) -> str:
    present = {c for line in lines for c in line.cells}
    names = [c for c in COLUMNS if c in present] + sorted(present - set(COLUMNS))
    versus_pytcp = "pytcp" in names
    head = (f"{'':<{LABEL}}" + "".join(f"{n:>{WIDTH}}" for n in names) + f"{'pystack/kernel':>16}"
            + (f"{'pystack/pytcp':>15}" if versus_pytcp else ""))
    out = [head, "-" * len(head)]
    for line in lines:
        if not line.cells:
            continue
        text, whys = f"{line.label:<{LABEL}}", []
        for n in names:
            cell = line.cells.get(n)
            if cell is None:
                text += " " * WIDTH
            elif cell.value is not None:
                value = format(round(cell.value) if line.spec == "d" else cell.value, line.spec) + cell.mark
                text += f"{value:>{WIDTH}}"
            elif cell.why in ("n/a", "-", "not run"):
                text += f"{cell.why:>{WIDTH}}"
            else:
                text += f"{'failed':>{WIDTH}}"
                whys.append(f"{n}: {cell.why[:90]}")
        k, p = line.cells.get("kernel"), line.cells.get("pystack")
        text += f"{_ratio(p.value if p else None, k.value if k else None) if line.ratio else '':>16}"
        if versus_pytcp:
            t = line.cells.get("pytcp")
            text += f"{_ratio(p.value if p else None, t.value if t else None) if line.ratio else '':>15}"
        if whys:
            text += "   failed: " + "; ".join(whys)
        out.append(text.rstrip())
    out += notes
    return "\n".join(out)
