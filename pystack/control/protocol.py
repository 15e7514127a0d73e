"""What travels on the control socket: the address, the requests the daemon takes, and their bounds."""

from __future__ import annotations

import json
from typing import Any

MAX_REQUEST = 4096
"""Bytes of one request line; a longer one is refused."""
MAX_REPLY = 64 << 20
"""Bytes of an answer the client reads at most (ten thousand connections with -i take about 10 MiB)."""
MAX_CLIENTS = 8
"""Clients served at once; more are turned away at once (counted)."""
REQUEST_TIMEOUT = 2.0
"""Seconds a client has to send its request line after connecting."""
REPLY_TIMEOUT = 10.0
"""Seconds a client has to read its answer; then the daemon closes on it (counted)."""

COMMANDS = {"ss": {"tcp", "udp", "listening", "all", "info"}, "stats": set()}
"""Each command and the boolean options it takes."""


class RequestError(ValueError):
    """A request the daemon refuses: the message goes back to the client, and the refusal is counted."""


def default_address(tap: str) -> str:
    """The daemon's control socket for ``tap``: abstract, so scoped to the network namespace."""
    return f"@pystack/{tap}"


def sockaddr(address: str) -> str:
    """``@name`` is the abstract name (a leading NUL for the kernel), anything else a file's path."""
    return "\0" + address[1:] if address.startswith("@") else address


def encode_request(command: str, **options: bool) -> bytes:
    return json.dumps({"command": command, **options}, separators=(",", ":")).encode() + b"\n"


def parse_request(line: bytes) -> tuple[str, dict[str, bool]]:
    """(command, options) of one request line, or RequestError saying what is wrong with it."""
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise RequestError("not a line of JSON") from None
    if not isinstance(request, dict):
        raise RequestError("not a JSON object")
    command = request.pop("command", None)
    if not isinstance(command, str) or command not in COMMANDS:
        raise RequestError(f"unknown command {command!r} (known: {', '.join(sorted(COMMANDS))})")
    allowed = COMMANDS[command]
    options: dict[str, bool] = {}
    for key, value in request.items():
        if key not in allowed or not isinstance(value, bool):
            raise RequestError(f"{command} takes no option {key!r} = {value!r}")
        options[key] = value
    return command, options


def encode_reply(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply, separators=(",", ":")).encode() + b"\n"
