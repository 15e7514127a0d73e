"""A link made of a Unix datagram socketpair: two runtimes in one process, with real threads and a
real clock, and no root or TAP needed. The API tests (sockets, asyncio) run over it."""

from __future__ import annotations

import socket


class SocketPairLink:
    """One end of the pair; frames keep their boundaries (SOCK_SEQPACKET)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.fd = sock.fileno()

    @classmethod
    def pair(cls) -> tuple[SocketPairLink, SocketPairLink]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        return cls(a), cls(b)

    def read(self) -> bytes | None:
        try:
            return self.sock.recv(65536 + 14)
        except BlockingIOError:
            return None

    def write(self, frame: bytes) -> bool:
        try:
            self.sock.send(frame)
            return True
        except (BlockingIOError, OSError):
            return False

    def close(self) -> None:
        self.sock.close()
