"""What ``pystack ss -i`` shows of a connection (pystack.tcp.info) after a transfer between two stacks."""

from __future__ import annotations

import random

from pystack.tcp.info import tcp_info

from stack.conftest import connected, make_pair, transfer


def test_bytes_acked_and_received_count_the_transfer_and_the_fin() -> None:
    a, b, wire = make_pair()
    client, server = connected(a, b, wire)
    assert tcp_info(client)["bytes_acked"] == 0  # the SYN is not counted
    data = random.Random(5).randbytes(200_000)
    assert transfer(client, server, wire, data) == data
    wire.run(duration=1.0)
    assert tcp_info(client)["bytes_acked"] == len(data) and tcp_info(server)["bytes_received"] == len(data)
    client.close(wire.clock.now)
    wire.run(until=lambda: server.at_eof)
    wire.run(duration=0.5)
    assert tcp_info(client)["bytes_acked"] == len(data) + 1  # the FIN's sequence number, as before
