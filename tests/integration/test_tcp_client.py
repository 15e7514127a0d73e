"""pystack as a TCP client: a program embedding pystack (TapLink, Runtime, pystack.api.socket) runs in
the namespace with ``ip netns exec`` and downloads from the kernel's ``python3 -m http.server``.

The program is tcp_lab.py's ``client`` command: it creates TAP pst0, gives the kernel side 192.0.2.1/24
(pystack.hostside.configure_host_side) and is 192.0.2.2 itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import lab
from tcp_lab import EmbeddedClient, MiB, kernel_http_server, random_file

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
