"""Pictures of real traffic: ``pystack plot`` of a capture the daemon wrote, ``pystack fetch --ladder-svg``.
Each SVG is parsed and its structure checked; counts are checked against tshark's reading of the capture."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import HTTP_URL, MiB, curl, nft_loss, random_file, sha256_file

pytestmark = pytest.mark.integration

SVG = "{http://www.w3.org/2000/svg}"


def _ids(root: ET.Element) -> dict[str, ET.Element]:
    return {e.get("id"): e for e in root.iter() if e.get("id")}


def test_plot_of_a_lossy_download_capture(start_stack: Callable[..., lab.Daemon],
                                          require_tools: Callable[..., None], tmp_path: Path) -> None:
    require_tools("tshark", "nft", "curl")
    www = tmp_path / "www"
    www.mkdir()
    want = random_file(www / "f.bin", 2 * MiB)
    capture = tmp_path / "run.pcapng"
    daemon = start_stack("--http", str(www), "--pcap", str(capture))
    nft_loss(daemon.ns, lab.TAP, 2)
    got = tmp_path / "got.bin"
    curl(daemon.ns, "-o", str(got), f"{HTTP_URL}/f.bin", timeout=120)
    assert sha256_file(got) == want
    counters = daemon.stop()
    svg = tmp_path / "run.svg"
    proc = daemon.ns.run([*lab.pystack_command(), "plot", str(capture), "--conn", "80", "-o", str(svg)], timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr

    root = ET.parse(svg).getroot()
    assert root.tag == SVG + "svg"
    ids = _ids(root)
    assert f"{lab.STACK_IP}:80" in ids["title"].text
    for axis in ("x-axis", "y-axis"):
        assert len([t for t in ids[axis].iter(SVG + "text")]) >= 4, axis
        assert len([t for t in ids[axis].iter(SVG + "line")]) >= 4, axis
    drawn = int(ids["segments"].get("data-count")) + int(ids["retransmissions"].get("data-count"))
    tshark = daemon.ns.run(["tshark", "-n", "-r", str(capture), "-T", "fields", "-e", "frame.number", "-Y",
                            f"ip.src == {lab.STACK_IP} && tcp.srcport == 80 && "
                            "(tcp.len > 0 || tcp.flags.syn == 1 || tcp.flags.fin == 1)"], timeout=120)
    assert tshark.returncode == 0, tshark.stderr
    assert drawn == len(tshark.stdout.split())  # every segment that carried data (or SYN, FIN) is a bar
    if counters.get("tcp.retransmits", 0):
        assert int(ids["retransmissions"].get("data-count")) > 0
    assert int(ids["ack-line"].get("data-count")) > 0 and ids["ack-line"].get("d").startswith("M")
    assert int(ids["cwnd"].get("data-count")) > 0  # from the pcapng's comments


def _http_server(ns: lab.Namespace, directory: Path, port: int) -> subprocess.Popen:
    server = ns.spawn([sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "--directory", str(directory),
                       str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        probe = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.connect(("127.0.0.1", port))
            return server
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.1)
        finally:
            probe.close()


def test_fetch_draws_its_ladder_as_svg(daemon_ready: None, ns: lab.Namespace, tmp_path: Path) -> None:
    (tmp_path / "page").write_bytes(b"hello\n" * 1000)
    _http_server(ns, tmp_path, 8000)
    ladder = tmp_path / "ladder.svg"
    proc = ns.run([*lab.pystack_command(), "fetch", f"http://{lab.HOST_IP}:8000/page", "--tap", lab.TAP,
                   "--address", lab.STACK_ADDRESS, "--host-address", lab.HOST_ADDRESS, "--quiet",
                   "--ladder-svg", str(ladder)], timeout=60)
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(ladder).getroot()
    ids = _ids(root)
    titles = [t.text for t in ids["participants"].iter(SVG + "text")]
    assert titles[0] == "pystack" and lab.HOST_IP in titles
    arrows = [g for g in ids["arrows"] if g.get("class") == "arrow"]
    assert len(arrows) == int(ids["arrows"].get("data-count")) >= 5
    labels = " ".join(t.text or "" for g in arrows for t in g.iter(SVG + "text"))
    assert "SYN" in labels and "FIN" in labels and "bytes" in labels, labels
    assert all(g.find(SVG + "line") is not None or g.find(SVG + "circle") is not None for g in arrows)


def test_a_ladder_svg_that_cannot_be_written_is_one_line(daemon_ready: None, ns: lab.Namespace,
                                                        tmp_path: Path) -> None:
    proc = ns.run([*lab.pystack_command(), "fetch", f"http://{lab.HOST_IP}/", "--tap", lab.TAP, "--address",
                   lab.STACK_ADDRESS, "--ladder-svg", str(tmp_path / "no" / "such" / "dir.svg")], timeout=60)
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1].startswith("pystack: error: cannot write"), proc.stderr
    assert "Traceback" not in proc.stderr
