"""SYN cookies (RFC 4987 section 3.6, in the shape Linux uses): answer a SYN without keeping state when
the half-open queue is full, and rebuild the connection from the final ACK.

The cookie is our ISN: a keyed hash of the 4-tuple and the peer's ISN, plus a counter of
``TcpConfig.syncookie_period`` ticks in the top 8 bits and, under a second hash of that counter, the
index of the MSS we grant (``syncookie_mss``, a small table, as only 2 bits are spare). A cookie is valid
for ``syncookie_max_age`` ticks. Options other than the MSS are not remembered: a connection born from a
cookie has no window scaling, SACK or timestamps.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING

from pystack.tcp.isn import four_tuple

if TYPE_CHECKING:
    from pystack.tcp.config import TcpConfig

_MASK = 0xFFFFFFFF


class SynCookies:
    __slots__ = ("_key1", "_key2", "_period", "_max_age", "_mss_table", "lifetime")

    def __init__(self, secret: bytes, config: TcpConfig) -> None:
        self._key1 = hashlib.blake2s(secret + b"cookie-1").digest()
        self._key2 = hashlib.blake2s(secret + b"cookie-2").digest()
        self._period = config.syncookie_period
        self._max_age = config.syncookie_max_age
        self._mss_table = config.syncookie_mss
        self.lifetime = self._period * self._max_age
        """Seconds a cookie may stay valid at most: ACKs later than this after the last one sent are not
        checked as cookies."""

    @staticmethod
    def _hash(key: bytes, data: bytes) -> int:
        return int.from_bytes(hashlib.blake2s(data, key=key, digest_size=4).digest(), "big")

    def make(self, local_ip: int, local_port: int, remote_ip: int, remote_port: int, peer_isn: int,
             peer_mss: int, now: float) -> tuple[int, int]:
        """(our ISN, the MSS it encodes: the largest table entry not above the peer's)."""
        index = 0
        for i, mss in enumerate(self._mss_table):
            if mss <= peer_mss:
                index = i
        count = int(now / self._period) & 0xFF
        tuple_bytes = four_tuple(local_ip, local_port, remote_ip, remote_port) + bytes(4)
        h1 = self._hash(self._key1, tuple_bytes)
        h2 = self._hash(self._key2, tuple_bytes[:-4] + struct.pack("!I", count))
        cookie = (h1 + peer_isn + (count << 24) + ((h2 + index) & 0xFFFFFF)) & _MASK
        return cookie, self._mss_table[index]

    def check(self, local_ip: int, local_port: int, remote_ip: int, remote_port: int, peer_isn: int,
              cookie: int, now: float) -> int | None:
        """The MSS a valid cookie encodes, or None for a forged or expired one."""
        tuple_bytes = four_tuple(local_ip, local_port, remote_ip, remote_port) + bytes(4)
        value = (cookie - self._hash(self._key1, tuple_bytes) - peer_isn) & _MASK
        count = value >> 24
        if ((int(now / self._period) - count) & 0xFF) >= self._max_age:
            return None
        h2 = self._hash(self._key2, tuple_bytes[:-4] + struct.pack("!I", count))
        index = (value - h2) & 0xFFFFFF
        return self._mss_table[index] if index < len(self._mss_table) else None
