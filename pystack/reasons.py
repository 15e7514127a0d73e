"""Why each frame was sent: the reason its sender gives, kept until the capture writes the frame.

A sender that decides to send (TCP's fast retransmit, ARP's retry, a DHCP retransmission ...) notes its
reason under the key its frame will have on the wire; the pcapng writer (pystack.link.pcapng) takes the
note back as the frame passes and writes it as the frame's comment, which Wireshark and tshark show as
``frame.comment``. A key is made of the fields that tell one frame from the next of the same flow: for a
TCP segment its addresses, ports and sequence number. Two frames with one key (a pure ACK and a window
update, say) take their notes in the order they were made, which is the order they leave.

Senders note only while a capture listens (:func:`explain_frames`): otherwise their hook is None and a
frame costs one test. A note whose frame never passes (the link refused it) is forgotten when the table
is full, oldest first.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Hashable, Protocol

from pystack.tcp.info import congestion_note

if TYPE_CHECKING:
    from pystack.tcp.connection import Connection

Note = Callable[[Hashable, str], None]
"""``note(key, reason)``: the next frame with ``key`` is sent because of ``reason`` (FrameReasons.note)."""

MAX_KEYS = 4096
"""Keys with notes waiting at once; a burst of a whole window of segments needs one per segment."""
MAX_PER_KEY = 64
"""Notes waiting under one key (pure ACKs of one connection in one batch, ARP retries)."""


def tcp_key(src: int, dst: int, sport: int, dport: int, seq: int) -> tuple:
    return ("tcp", src, dst, sport, dport, seq)


def udp_key(src: int, dst: int, sport: int, dport: int) -> tuple:
    return ("udp", src, dst, sport, dport)


def icmp_key(src: int, dst: int, icmp_type: int, code: int) -> tuple:
    return ("icmp", src, dst, icmp_type, code)


def arp_key(op: int, sender_ip: int, target_ip: int) -> tuple:
    return ("arp", op, sender_ip, target_ip)


def frame_key(frame: bytes | memoryview) -> tuple | None:
    """The key of an Ethernet frame, as its sender made it with the functions above; None for a frame
    that cannot have a note (too short, a later fragment, another protocol)."""
    if len(frame) < 34:
        return None
    ethertype = (frame[12] << 8) | frame[13]
    if ethertype == 0x0806:
        if len(frame) < 42:
            return None
        return arp_key((frame[20] << 8) | frame[21], int.from_bytes(frame[28:32], "big"),
                       int.from_bytes(frame[38:42], "big"))
    if ethertype != 0x0800 or frame[14] >> 4 != 4:
        return None
    if ((frame[20] << 8) | frame[21]) & 0x1FFF:
        return None  # a fragment after the first: no transport header
    ihl = (frame[14] & 0x0F) * 4
    l4 = 14 + ihl
    proto = frame[23]
    src = int.from_bytes(frame[26:30], "big")
    dst = int.from_bytes(frame[30:34], "big")
    if proto == 6 and len(frame) >= l4 + 8:
        return tcp_key(src, dst, (frame[l4] << 8) | frame[l4 + 1], (frame[l4 + 2] << 8) | frame[l4 + 3],
                       int.from_bytes(frame[l4 + 4:l4 + 8], "big"))
    if proto == 17 and len(frame) >= l4 + 4:
        return udp_key(src, dst, (frame[l4] << 8) | frame[l4 + 1], (frame[l4 + 2] << 8) | frame[l4 + 3])
    if proto == 1 and len(frame) >= l4 + 2:
        return icmp_key(src, dst, frame[l4], frame[l4 + 1])
    return None


class FrameReasons:
    """Notes waiting for their frames, by key, each key's in the order made (bounded: MAX_KEYS keys)."""

    __slots__ = ("_notes", "forgotten")

    def __init__(self) -> None:
        self._notes: dict[Hashable, deque[str]] = {}
        self.forgotten = 0
        """Notes dropped for room before their frame passed (bounded table)."""

    def __len__(self) -> int:
        return sum(len(q) for q in self._notes.values())

    def note(self, key: Hashable, text: str) -> None:
        """The next frame with ``key`` is sent because of ``text``."""
        notes = self._notes
        queue = notes.get(key)
        if queue is None:
            if len(notes) >= MAX_KEYS:
                oldest = next(iter(notes))
                self.forgotten += len(notes.pop(oldest))
            queue = notes[key] = deque()
        elif len(queue) >= MAX_PER_KEY:
            queue.popleft()
            self.forgotten += 1
        queue.append(text)

    def take(self, frame: bytes | memoryview) -> str | None:
        """The reason noted for ``frame`` (and forget it), or None."""
        key = frame_key(frame)
        if key is None:
            return None
        queue = self._notes.get(key)
        if not queue:
            return None
        text = queue.popleft()
        if not queue:
            del self._notes[key]
        return text

    def tcp(self, key4: tuple[int, int, int, int], seq: int, reason: str, conn: Connection | None) -> None:
        """TCP's hook (TcpLayer.why): ``key4`` is (local IP, local port, remote IP, remote port); a
        connection's segment also tells its congestion state at the moment it was sent."""
        local_ip, local_port, remote_ip, remote_port = key4
        text = reason if conn is None else f"{reason}; {congestion_note(conn)}"
        self.note(tcp_key(local_ip, remote_ip, local_port, remote_port, seq), text)


class Explaining(Protocol):
    """What explain_frames needs of a stack (pystack.stack.Stack, whose layers import this module: a
    protocol here keeps the import graph free of cycles)."""

    @property
    def mac(self) -> bytes: ...
    @property
    def tcp(self) -> Any: ...
    def explain(self, note: Note | None) -> None: ...


def explain_frames(stack: Explaining, writer: object) -> FrameReasons | None:
    """Have ``stack``'s senders give their reasons and ``writer`` write them, if it is a pcapng writer
    (the classic pcap format has no place for them): returns the notes' table, or None."""
    from pystack.link.pcapng import LINKTYPE_ETHERNET, PcapngWriter

    if not isinstance(writer, PcapngWriter) or writer.linktype != LINKTYPE_ETHERNET:
        return None  # the notes are keyed by Ethernet frames: a TUN's capture goes without them
    reasons = FrameReasons()
    writer.mac = stack.mac
    writer.explain = reasons.take
    stack.tcp.why = reasons.tcp
    stack.explain(reasons.note)
    return reasons
