"""Asking a running daemon over its control socket: one request, one answer."""

from __future__ import annotations

import json
import socket
from typing import Any

from pystack.control.protocol import MAX_REPLY, encode_request, sockaddr


class ControlUnavailable(Exception):
    """No answer, or a refusal: one line for the user."""


def ask(address: str, command: str, timeout: float = 5.0, **options: bool) -> dict[str, Any]:
    """Send ``command`` with ``options`` to the daemon at ``address``; its answer, or ControlUnavailable."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(sockaddr(address))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlUnavailable(f"no pystack daemon listens on {address} in this network namespace "
                                     "(pystack run --tap or --tun NAME listens on @pystack/NAME)") from None
        except PermissionError:
            raise ControlUnavailable(f"not allowed to connect to {address} (root only)") from None
        try:
            sock.sendall(encode_request(command, **options))
        except (BrokenPipeError, ConnectionResetError):
            pass  # turned away before the request went: the refusal may be waiting to be read
        chunks = []
        size = 0
        while True:
            try:
                data = sock.recv(1 << 16)
            except ConnectionResetError:
                break  # closed with our request unread (a refusal): what came before is the answer
            if not data:
                break
            size += len(data)
            if size > MAX_REPLY:
                raise ControlUnavailable(f"the answer from {address} is larger than {MAX_REPLY} bytes")
            chunks.append(data)
    except socket.timeout:
        raise ControlUnavailable(f"the daemon on {address} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise ControlUnavailable(f"control socket {address}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    try:
        reply = json.loads(b"".join(chunks))
    except ValueError:
        raise ControlUnavailable(f"the daemon on {address} closed without a whole answer") from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        error = reply.get("error") if isinstance(reply, dict) else None
        raise ControlUnavailable(f"the daemon refused: {error or 'no reason given'}")
    return reply
