"""Initial sequence numbers per RFC 6528: ISN = M + F(4-tuple, secret).

M is a clock ticking every 4 microseconds (RFC 9293 3.4.1), taken from the ``now`` the caller passes,
so tests stay deterministic; F is a keyed hash (BLAKE2s here) so an off-path attacker cannot guess it.
"""

from __future__ import annotations

import hashlib
import os
import struct

from pystack.tcp.config import TcpConfig

_TUPLE = struct.Struct("!IHIH")
_PAIR = struct.Struct("!II")
_IPV4_END = 1 << 32


def four_tuple(local_ip: int, local_port: int, remote_ip: int, remote_port: int) -> bytes:
    """A connection's addresses and ports as the bytes its hashes take: IPv4 addresses in 4 bytes, IPv6
    ones (every IPv6 address a connection can have is above 2**32) in 16."""
    if local_ip < _IPV4_END and remote_ip < _IPV4_END:
        return _TUPLE.pack(local_ip, local_port, remote_ip, remote_port)
    return (local_ip.to_bytes(16, "big") + local_port.to_bytes(2, "big") + remote_ip.to_bytes(16, "big")
            + remote_port.to_bytes(2, "big"))


class IsnGenerator:
    __slots__ = ("_secret", "_ts_offsets", "_max_pairs")

    def __init__(self, secret: bytes | None = None, max_pairs: int | None = None) -> None:
        """``max_pairs``: host pairs whose TSval offset is remembered (``TcpConfig.ts_offset_pairs`` when None)."""
        self._secret = secret if secret is not None else os.urandom(16)
        self._ts_offsets: dict[tuple[int, int], int] = {}
        self._max_pairs = max_pairs if max_pairs is not None else TcpConfig().ts_offset_pairs

    def __call__(self, local_ip: int, local_port: int, remote_ip: int, remote_port: int, now: float) -> int:
        digest = hashlib.blake2s(
            four_tuple(local_ip, local_port, remote_ip, remote_port), key=self._secret, digest_size=4
        ).digest()
        return (int(now * 250_000) + int.from_bytes(digest, "big")) & 0xFFFFFFFF

    def ts_offset(self, local_ip: int, remote_ip: int) -> int:
        """The TSval clock's offset (RFC 7323 5.4), keyed per pair of hosts rather than per connection, as
        Linux since 4.13: a new connection to the same host then starts above what an old incarnation
        sent, so a server in TIME-WAIT takes its SYN (RFC 6191) instead of dropping it under PAWS."""
        pair = (local_ip, remote_ip)
        offset = self._ts_offsets.get(pair)
        if offset is None:
            pair_bytes = (_PAIR.pack(local_ip, remote_ip) if local_ip < _IPV4_END and remote_ip < _IPV4_END
                          else local_ip.to_bytes(16, "big") + remote_ip.to_bytes(16, "big"))
            digest = hashlib.blake2s(pair_bytes, key=self._secret, digest_size=4,
                                     person=b"tsoffset").digest()
            offset = int.from_bytes(digest, "big")
            if len(self._ts_offsets) >= self._max_pairs:
                self._ts_offsets.clear()
            self._ts_offsets[pair] = offset
        return offset
