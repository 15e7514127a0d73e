"""pystack as a TCP client: a program embedding pystack (TapLink, Runtime, pystack.api.socket) runs in
the namespace with ``ip netns exec`` and downloads from the kernel's ``python3 -m http.server``.

The program is tcp_lab.py's ``client`` command: it creates TAP pst0, gives the kernel side 192.0.2.1/24
(pystack.hostside.configure_host_side) and is 192.0.2.2 itself. Besides plain downloads, its
application reads slowly or stalls, so pystack's receive window fills, closes and reopens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import EmbeddedClient, MiB, kernel_distrust, kernel_http_server, kernel_mib, random_file

pytestmark = pytest.mark.integration

PORT = 8080


@pytest.fixture
def client(daemon_ready: None, ns: lab.Namespace) -> Iterator[EmbeddedClient]:
    embedded = EmbeddedClient(ns)
    try:
        yield embedded
    finally:
        embedded.close()


def test_embedded_pystack_downloads_10mib_over_http11(ns: lab.Namespace, client: EmbeddedClient,
                                                      tmp_path: Path) -> None:
    """10 MiB and 1000 bytes, each over its own pystack connection, intact; pystack closes first."""
    www = tmp_path / "www"
    www.mkdir()
    want = {"ten.bin": random_file(www / "ten.bin", 10 * MiB), "small.bin": random_file(www / "small.bin", 1000)}
    kernel_http_server(ns, www, PORT)
    for name, digest in want.items():
        answer = client.request(host=lab.HOST_IP, port=PORT, path=f"/{name}", timeout=60)
        assert "error" not in answer, f"{answer}\n{client.stderr()}"
        assert answer["status"].startswith("HTTP/1.1 200"), answer
        assert answer["received"] == answer["length"] == (www / name).stat().st_size
        assert answer["sha256"] == digest
        # pystack closed first (after the body): FIN-WAIT-1, FIN-WAIT-2, and the server's FIN -> TIME-WAIT.
        assert answer["state_after_close"] == "TIME_WAIT", answer
    counters = client.finish()
    assert counters.get("tcp.active_opens") == 2, counters
    assert counters.get("tcp.state.TIME_WAIT") == 2, counters


def test_embedded_reader_that_stalls_closes_the_window(ns: lab.Namespace, client: EmbeddedClient,
                                                       tmp_path: Path) -> None:
    """pystack as the receiver stops reading for 1.5 s: its window goes to zero, the kernel probes it
    (TCPWinProbe), and once the application reads again the window reopens and 4 MiB arrive intact."""
    www = tmp_path / "www"
    www.mkdir()
    want = random_file(www / "f.bin", 4 * MiB)
    kernel_http_server(ns, www, PORT)
    before = kernel_mib(ns)
    answer = client.request(host=lab.HOST_IP, port=PORT, path="/f.bin", stall=1.5, timeout=60)
    assert "error" not in answer, f"{answer}\n{client.stderr()}"
    assert answer["sha256"] == want
    after = kernel_mib(ns)
    assert after["TcpExt.TCPWinProbe"] > before.get("TcpExt.TCPWinProbe", 0), "the window never closed"
    assert not kernel_distrust(before, after)


def test_embedded_slow_reader(ns: lab.Namespace, client: EmbeddedClient, tmp_path: Path) -> None:
    """pystack's application reads 32 KiB every 10 ms: the window opens as it reads; 4 MiB intact."""
    www = tmp_path / "www"
    www.mkdir()
    want = random_file(www / "f.bin", 4 * MiB)
    kernel_http_server(ns, www, PORT)
    answer = client.request(host=lab.HOST_IP, port=PORT, path="/f.bin", pause=0.01, chunk=32768, timeout=60)
    assert "error" not in answer, f"{answer}\n{client.stderr()}"
    assert answer["sha256"] == want
