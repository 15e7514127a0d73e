"""What a packetdrill script says, once parsed: timed events of four kinds.

Times are integer microseconds, as packetdrill keeps them. A packet's sequence numbers are the script's
own (the peer's ISN is what the script writes; ours is mapped by the driver), and its options are kept in
the order written, because the order is part of what an outbound packet is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class TimeKind(Enum):
    ABSOLUTE = "absolute"  # 0.100
    RELATIVE = "relative"  # +0.100, from the end of the previous event
    ANY = "any"  # *
    ABSOLUTE_RANGE = "absolute range"  # 0.1~0.2
    RELATIVE_RANGE = "relative range"  # +0.1~+0.2


@dataclass(frozen=True, slots=True)
class EventTime:
    kind: TimeKind
    start: int = 0
    """Microseconds (relative ones from the previous event)."""
    end: int = 0
    """The end of a range, in the same terms as ``start``."""
    blocking_end: int | None = None
    """``...END`` after a system call's time: when the blocking call returns, relative the same way."""


# ---------------------------------------------------------------- expressions (system call arguments)

@dataclass(frozen=True, slots=True)
class Num:
    value: int


@dataclass(frozen=True, slots=True)
class Dots:
    """``...``: any value (an address, a buffer)."""


@dataclass(frozen=True, slots=True)
class Sym:
    name: str


@dataclass(frozen=True, slots=True)
class Str:
    value: str


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Field:
    """One member of a ``{...}`` struct: ``name=value``, ``name(count)=value``, or a bare value."""
    name: str | None
    count: Expr | None
    value: Expr


@dataclass(frozen=True, slots=True)
class StructExpr:
    fields: tuple[Field, ...]

    def get(self, name: str) -> Expr | None:
        for f in self.fields:
            if f.name == name:
                return f.value
        return None


@dataclass(frozen=True, slots=True)
class Or:
    """``A|B``: flags or'ed together."""
    left: Expr
    right: Expr


Expr = Num | Dots | Sym | Str | ListExpr | StructExpr | Or


# ---------------------------------------------------------------- events

@dataclass(frozen=True, slots=True)
class TcpOption:
    """One option as written: ``nop``, ``eol``, ``mss 1460``, ``wscale 7``, ``sackOK``,
    ``sack 1:2 3:4``, ``TS val 100 ecr 0``; other kinds (``FO``, ``md5``) keep their text."""
    kind: str
    values: tuple[int, ...] = ()
    text: str = ""


@dataclass(frozen=True, slots=True)
class Packet:
    inbound: bool
    flags: str
    """The flag letters as written (``S.``, ``P.``, ``F.``, ``R``, ``-`` ...)."""
    seq: int
    end: int
    length: int
    ack: int | None = None
    window: int | None = None
    options: tuple[TcpOption, ...] | None = ()
    """None for ``<...>``: the options are not checked."""
    ecn: str | None = None
    """The ``[ect0]``-style IP ECN codepoint, if written."""
    urgent: int | None = None
    """``urg N``: the urgent pointer."""


@dataclass(frozen=True, slots=True)
class OtherPacket:
    """An ICMP or UDP packet line, kept as text: the runner drives TCP only."""
    inbound: bool
    text: str


@dataclass(frozen=True, slots=True)
class Syscall:
    name: str
    args: tuple[Expr, ...]
    result: Expr
    errno: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A shell command in backquotes."""
    text: str


@dataclass(frozen=True, slots=True)
class Code:
    """A ``%{ python }%`` block."""
    text: str


Action = Packet | OtherPacket | Syscall | Command | Code


@dataclass(frozen=True, slots=True)
class Event:
    line: int
    time: EventTime
    action: Action
    text: str
    """The event as written, on one line (for messages)."""


@dataclass(slots=True)
class Script:
    path: str
    options: dict[str, str] = field(default_factory=dict)
    """``--name=value`` header lines."""
    init_commands: list[Command] = field(default_factory=list)
    """Backquoted commands before the first event."""
    events: list[Event] = field(default_factory=list)


class ScriptError(Exception):
    """The text is not a script this parser understands; ``line`` is where it stopped."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message
