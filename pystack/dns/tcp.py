"""DNS over TCP framing (RFC 1035 section 4.2.2, RFC 7766 section 8): a 2-byte length before each message.

Sans-I/O: :func:`frame` makes the bytes to write, :class:`StreamReader` takes whatever the stream gave
and hands out whole messages. Used when a UDP answer came back truncated (TC set).
"""

from __future__ import annotations

from pystack.wire import WireError
from pystack.wire.dns import HEADER_LEN

MAX_MESSAGE = 0xFFFF


def frame(message: bytes) -> bytes:
    if len(message) > MAX_MESSAGE:
        raise ValueError("DNS message longer than 65535 bytes")
    return len(message).to_bytes(2, "big") + message


class StreamReader:
    """Reassembles length-prefixed messages from stream pieces of any size."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        """Whole messages completed by ``data``. A length too short for a DNS header is a WireError."""
        self._buf += data
        out = []
        while len(self._buf) >= 2:
            length = (self._buf[0] << 8) | self._buf[1]
            if length < HEADER_LEN:
                raise WireError("dns.tcp_bad_length")
            if len(self._buf) < 2 + length:
                break
            out.append(bytes(self._buf[2:2 + length]))
            del self._buf[:2 + length]
        return out

    @property
    def partial(self) -> int:
        """Bytes held of a message not yet complete (a stream that ends here was cut short)."""
        return len(self._buf)
