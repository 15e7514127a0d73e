"""Record a stack serving HTTP on an in-memory wire, then replay it: every frame comes out the same, and a
changed TCP rule is caught at the first frame it changes."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from pystack.apps.services import Services
from pystack.config import StackConfig
from pystack.link.memory import FakeClock, MemoryWire
from pystack.replay import format as fmt
from pystack.replay.record import Recording
from pystack.replay.replay import replay
from pystack.stack import Stack
from pystack.tcp.config import TcpConfig
from pystack.wire.ipv4 import addr_to_int

SERVER_IP = addr_to_int("192.0.2.2")
CLIENT_IP = addr_to_int("192.0.2.1")
SERVER_MAC = bytes.fromhex("020000000002")
CLIENT_MAC = bytes.fromhex("020000000001")


class _Kept(io.BytesIO):
    """An in-memory file that keeps its bytes after close."""

    def close(self) -> None:
        self.kept = self.getvalue()
        super().close()


def _record_download(tmp_path: Path, size: int = 300_000, loss: float = 0.03, seed: int = 11,
                     limit: int | None = None, config: StackConfig | None = None) -> tuple[bytes, bytes]:
    """A recorded server sends ``size`` bytes over HTTP to a client through a wire that loses ``loss`` of the
    server's data segments; (the recording, the body the client got)."""
    www = tmp_path / "www"
    www.mkdir(exist_ok=True)
    body = random.Random(seed).randbytes(size)
    (www / "f.bin").write_bytes(body)
    clock = FakeClock()
    sink = _Kept()
    recording = Recording("mem", SERVER_MAC, config or StackConfig(), clock.now, seed=seed, opener=lambda _p: sink,
                          limit=limit)
    server = recording.stack
    server.configure(SERVER_IP, 24, None, clock.now)
    recording.start_services(Services(echo=True, http_port=80, http_root=str(www)), server.config.http)
    client = Stack(CLIENT_MAC, StackConfig(), rng=random.Random(seed + 1))
    client.configure(CLIENT_IP, 24, None, clock.now)
    drops = random.Random(seed + 2)

    def fault(sender: int, frame: bytes) -> list[bytes]:
        if sender == 0 and len(frame) > 200 and drops.random() < loss:
            return []
        return [frame]

    wire = MemoryWire(server, client, clock=clock, fault=fault)
    conn = client.tcp.connect(CLIENT_IP, SERVER_IP, 80, clock.now)
    wire.run(until=lambda: conn.writable)
    conn.send(b"GET /f.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", clock.now)
    got = bytearray()
    while not conn.at_eof:
        wire.run(until=lambda: conn.recv_available > 0 or conn.at_eof)
        while conn.recv_available:
            got += conn.recv(1 << 20, clock.now)
    conn.close(clock.now)
    wire.run(duration=5.0)
    recording.close()
    return sink.kept, bytes(got)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    data, got = _record_download(tmp_path_factory.mktemp("replay"))
    assert got.endswith(random.Random(11).randbytes(300_000))  # the download itself worked
    return data


def test_a_recorded_lossy_download_replays_with_every_frame_identical(recorded: bytes) -> None:
    result = replay(io.BytesIO(recorded))
    assert result.summary() == f"replayed {result.frames} frames, identical"
    assert result.frames > 300_000 // 1500 and not result.cut_short  # every data segment at least
    assert result.stack.counters["tcp.retransmits"] > 0  # the loss was replayed too
    assert result.stack.counters.get("drop.internal_error", 0) == 0


@pytest.mark.parametrize("seed, loss, tcp", [
    (1, 0.1, TcpConfig(sack=False)),
    (2, 0.1, TcpConfig(congestion_control="newreno")),
    (3, 0.2, TcpConfig(timestamps=False, delayed_ack=False)),
    (4, 0.05, TcpConfig(tail_loss_probe=False, window_scaling=False)),
], ids=["newreno-recovery", "newreno-cc", "no-timestamps", "no-tlp"])
def test_runs_of_other_losses_and_rules_replay_identical(tmp_path: Path, seed: int, loss: float,
                                                         tcp: TcpConfig) -> None:
    data, got = _record_download(tmp_path, 100_000, loss, seed, config=StackConfig(tcp=tcp))
    assert got.endswith(random.Random(seed).randbytes(100_000))
    result = replay(io.BytesIO(data))
    assert result.identical, result.summary()
    assert result.stack.counters["tcp.retransmits"] > 0


def test_the_layered_way_replays_what_the_fast_paths_sent(recorded: bytes) -> None:
    result = replay(io.BytesIO(recorded), stack={"fast_paths": False})
    assert result.identical, result.summary()


def test_a_changed_tcp_constant_is_reported_at_the_first_frame_it_changes(recorded: bytes) -> None:
    result = replay(io.BytesIO(recorded), tcp={"initial_window_segments": 4})
    d = result.divergence
    assert d is not None
    # The SYN-ACK and the response's first segments go out as before; the fifth data segment is held back.
    assert d.frame > 3 and d.expected is not None
    text = result.summary()
    assert text.startswith(f"diverged at frame {d.frame}, t=")
    assert "expected: 192.0.2.2.80 > 192.0.2.1." in text


def test_a_recording_cut_short_replays_up_to_its_last_whole_record(recorded: bytes) -> None:
    result = replay(io.BytesIO(recorded[: len(recorded) * 2 // 3]))
    assert result.identical and result.cut_short
    full = replay(io.BytesIO(recorded))
    assert 0 < result.frames < full.frames


def test_a_recording_stops_at_its_limit_and_replays_up_to_there(tmp_path: Path, recorded: bytes) -> None:
    data, _got = _record_download(tmp_path, limit=200_000)
    assert len(data) <= 200_000 < len(recorded)  # the run went on; the file did not
    result = replay(io.BytesIO(data))
    assert result.identical and result.cut_short and result.frames > 0


def test_a_service_answer_the_replay_does_not_ask_for_is_a_divergence(recorded: bytes) -> None:
    reader = fmt.RecordReader(io.BytesIO(recorded))
    out = io.BytesIO()
    writer = fmt.RecordWriter(out, reader.header)
    dropped = False
    while (record := reader.next()) is not None:
        if record.kind == fmt.SESSION and not dropped:
            number, asked, answer = fmt.session(record.body)
            if asked == fmt.PULL:
                dropped = True  # the service's first answer of bytes goes missing
                continue
        writer._put(record.kind, bytes(record.body))
    writer.flush()
    result = replay(io.BytesIO(out.getvalue()))
    assert result.divergence is not None and "session 0 was asked pull" in result.summary()


def test_what_is_not_a_recording_is_refused_in_one_line() -> None:
    with pytest.raises(fmt.RecordingError, match="not a pystack recording"):
        replay(io.BytesIO(b"\xd4\xc3\xb2\xa1 a pcap, say"))
    with pytest.raises(fmt.RecordingError, match="cannot read"):
        replay("/nonexistent/recording")
