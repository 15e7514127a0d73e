"""A parser for packetdrill's script language, as its grammar (parser.y) and the upstream scripts use it.

A script is ``--name=value`` header lines, backquoted shell commands, and timed events: ``<``/``>`` TCP
packets on one line, system calls (which may span lines, ``= result [ERRNO] [(note)]`` after the closing
parenthesis), backquoted commands and ``%{ python }%`` blocks. ``//`` and ``/* */`` are comments.
Anything else raises :class:`ScriptError` with the line, which the runner reports as a skip.
"""

from __future__ import annotations

import bisect
import re
from decimal import Decimal

from pystack.conformance.script import (
    Action, Code, Command, Dots, Event, EventTime, Expr, Field, ListExpr, Num, Or, OtherPacket, Packet, Script, ScriptError, Str,
    StructExpr, Sym, Syscall, TcpOption, TimeKind,
)

_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
_TIME = re.compile(rf"(?P<any>\*)|(?P<rel>\+)?(?P<a>{_NUMBER})(?:~(?P<rel2>\+)?(?P<b>{_NUMBER}))?")
_BLOCKING_END = re.compile(r"\s*\.\.\.\s*(?P<end>\d+(?:\.\d+)?|\.\d+)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PACKET = re.compile(
    r"\s*(?:\[(?P<ecn>[A-Za-z0-9]+)\]\s*)?(?P<flags>[FSRPEWUA.\-]+)\s+"
    r"(?P<seq>\d+):(?P<end>\d+)\((?P<len>\d+)\)(?P<rest>.*)$")
_RESULT = re.compile(
    r"\s*=\s*(?P<value>-?(?:0[xX][0-9a-fA-F]+|\d+)|\.\.\.|[A-Za-z_]\w*)"
    r"\s*(?P<errno>E[A-Z0-9]+)?\s*(?:\((?P<note>.*)\))?\s*$")
_FLAG_LETTERS = set("FSRPEWUA.-")


def _usecs(text: str) -> int:
    """Seconds as written to integer microseconds, exactly (no binary fractions)."""
    return int(Decimal(text) * 1_000_000)


def parse_file(path: str) -> Script:
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse(f.read(), path)


def parse(text: str, path: str = "<script>") -> Script:
    return _Parser(text, path).script()


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_right(self._line_starts, self.pos if pos is None else pos)

    def error(self, message: str, pos: int | None = None) -> ScriptError:
        return ScriptError(self.line(pos), message)

    # ------------------------------------------------------------ scanning

    def skip_blank(self) -> None:
        """Whitespace and comments."""
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t\r\n":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def rest_of_line(self) -> str:
        end = self.text.find("\n", self.pos)
        if end < 0:
            end = len(self.text)
        raw = self.text[self.pos:end]
        self.pos = end
        return _strip_comment(raw)

    def script(self) -> Script:
        script = Script(self.path)
        text = self.text
        while True:
            self.skip_blank()
            if self.pos >= len(text):
                return script
            start = self.pos
            at_line_start = not text[text.rfind("\n", 0, start) + 1:start].strip()
            if text.startswith("--", start) and at_line_start:
                self.pos += 2
                option = self.rest_of_line().strip()
                name, _, value = option.partition("=")
                script.options[name.strip()] = value.strip()
                continue
            if text[start] == "`":
                command = self.command()
                if script.events:
                    script.events.append(Event(self.line(start), EventTime(TimeKind.RELATIVE), command,
                                               _one_line(text[start:self.pos])))
                else:
                    script.init_commands.append(command)
                continue
            script.events.append(self.event())

    def command(self) -> Command:
        end = self.text.find("`", self.pos + 1)
        if end < 0:
            raise self.error("unterminated backquote")
        body = self.text[self.pos + 1:end]
        self.pos = end + 1
        return Command(body.strip())

    def event(self) -> Event:
        start = self.pos
        line = self.line()
        time = self.event_time()
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1
        text = self.text
        c = text[self.pos:self.pos + 1]
        action: Action
        if c in ("<", ">"):
            self.pos += 1
            action = self.packet(c == "<", self.rest_of_line())
        elif c == "`":
            action = self.command()
        elif text.startswith("%{", self.pos):
            end = text.find("}%", self.pos + 2)
            if end < 0:
                raise self.error("unterminated %{ block")
            action = Code(text[self.pos + 2:end].strip())
            self.pos = end + 2
        else:
            m = _IDENT.match(text, self.pos)
            if m is None or text[m.end():m.end() + 1] != "(":
                raise self.error(f"expected a packet, a system call or a command, found {_excerpt(text, self.pos)!r}")
            self.pos = m.end()
            action = self.syscall(m.group())
        if time.blocking_end is not None and not isinstance(action, Syscall):
            raise self.error("only a system call may have a blocking end time", start)
        return Event(line, time, action, _one_line(text[start:self.pos]))

    def event_time(self) -> EventTime:
        m = _TIME.match(self.text, self.pos)
        if m is None:
            raise self.error(f"expected an event time, found {_excerpt(self.text, self.pos)!r}")
        self.pos = m.end()
        if m.group("any"):
            kind, start, end = TimeKind.ANY, 0, 0
        else:
            relative = bool(m.group("rel"))
            start = _usecs(m.group("a"))
            if m.group("b") is None:
                kind, end = (TimeKind.RELATIVE if relative else TimeKind.ABSOLUTE), start
            else:
                if relative != bool(m.group("rel2")):
                    raise self.error("a time range must be all relative or all absolute")
                kind = TimeKind.RELATIVE_RANGE if relative else TimeKind.ABSOLUTE_RANGE
                end = _usecs(m.group("b"))
                if end < start:
                    raise self.error("a time range must not end before it starts")
        blocking_end = None
        b = _BLOCKING_END.match(self.text, self.pos)
        if b is not None:
            self.pos = b.end()
            blocking_end = _usecs(b.group("end"))
        return EventTime(kind, start, end, blocking_end)

    # ------------------------------------------------------------ packets

    def packet(self, inbound: bool, line: str) -> Packet | OtherPacket:
        m = _PACKET.match(line)
        if m is None:
            if re.match(r"\s*(icmp|udp|\[)", line):
                return OtherPacket(inbound, line.strip())
            raise self.error(f"not a packet this runner knows: {line.strip()!r}")
        flags = m.group("flags")
        if not set(flags) <= _FLAG_LETTERS:
            raise self.error(f"bad TCP flags {flags!r}")
        seq, end, length = int(m.group("seq")), int(m.group("end")), int(m.group("len"))
        if (end - seq) & 0xFFFFFFFF != length:
            raise self.error(f"{seq}:{end}({length}): the length is not end - start")
        ack = window = urgent = None
        options: tuple[TcpOption, ...] | None = ()
        rest = m.group("rest").strip()
        while rest:
            if rest.startswith("<"):
                close = rest.rfind(">")
                if close < 0:
                    raise self.error("unterminated <options>")
                options = self.options(rest[1:close])
                rest = rest[close + 1:].strip()
                continue
            word = re.match(r"(ack|win|urg)\s+(\d+)\s*", rest)
            if word is None:
                raise self.error(f"unexpected {rest!r} in a packet")
            if word.group(1) == "ack":
                ack = int(word.group(2))
            elif word.group(1) == "win":
                window = int(word.group(2))
            else:
                urgent = int(word.group(2))
            rest = rest[word.end():]
        return Packet(inbound, flags, seq, end, length, ack, window, options, m.group("ecn"), urgent)

    def options(self, text: str) -> tuple[TcpOption, ...] | None:
        if text.strip() == "...":
            return None
        out = []
        for item in text.split(","):
            words = item.split()
            if not words:
                raise self.error("empty TCP option")
            kind = words[0]
            try:
                if kind in ("nop", "eol", "sackOK") and len(words) == 1:
                    out.append(TcpOption(kind))
                elif kind in ("mss", "wscale") and len(words) == 2:
                    out.append(TcpOption(kind, (int(words[1], 0),)))
                elif kind == "sack" and len(words) >= 2:
                    values: list[int] = []
                    for block in words[1:]:
                        left, _, right = block.partition(":")
                        values += (int(left), int(right))
                    out.append(TcpOption(kind, tuple(values)))
                elif kind == "TS" and len(words) == 5 and words[1] == "val" and words[3] == "ecr":
                    out.append(TcpOption(kind, (int(words[2]), int(words[4]))))
                else:
                    out.append(TcpOption(kind, text=item.strip()))
            except ValueError:
                raise self.error(f"bad TCP option {item.strip()!r}") from None
        return tuple(out)

    # ------------------------------------------------------------ system calls

    def syscall(self, name: str) -> Syscall:
        text = self.text
        open_pos = self.pos
        depth = 0
        i = open_pos
        pieces: list[str] = []
        seg_start = i
        while i < len(text):
            c = text[i]
            if c == "/" and text.startswith("//", i):  # a comment inside a multi-line call
                pieces.append(text[seg_start:i])
                nl = text.find("\n", i)
                i = seg_start = len(text) if nl < 0 else nl
                continue
            if c == '"':
                close = text.find('"', i + 1)
                if close < 0:
                    raise self.error("unterminated string")
                i = close + 1
                continue
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        else:
            raise self.error(f"unbalanced parentheses in {name}()", open_pos)
        pieces.append(text[seg_start:i])
        inner = "".join(pieces)[1:]
        self.pos = i + 1
        args = _ExprParser(inner, self, open_pos).arguments()
        result = _RESULT.match(self.rest_of_line())
        if result is None:
            raise self.error(f"{name}(): expected '= result [ERRNO] [(note)]'")
        value = result.group("value")
        expr: Expr
        if value == "...":
            expr = Dots()
        elif _IDENT.fullmatch(value):
            expr = Sym(value)
        else:
            expr = Num(int(value, 0))
        return Syscall(name, args, expr, result.group("errno"), result.group("note"))


class _ExprParser:
    """Arguments of a system call: numbers, symbols, ``...``, strings, ``[lists]``, ``{structs}``, ``A|B``."""

    _TOKEN = re.compile(r"""\s*(?:(?P<num>0[xX][0-9a-fA-F]+|\d+)|(?P<dots>\.\.\.)|(?P<ident>[A-Za-z_]\w*)
                            |(?P<str>"[^"]*")|(?P<punct>[\[\]{}(),=|\-]))""", re.X)

    def __init__(self, text: str, parser: _Parser, pos: int) -> None:
        self.tokens: list[tuple[str, str]] = []
        self.parser = parser
        self.pos0 = pos
        i = 0
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                break
            m = self._TOKEN.match(text, i)
            if m is None or m.end() == i:
                raise parser.error(f"cannot read {text[i:i + 20]!r} in system call arguments", pos)
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            i = m.end()
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if value is not None and tok[1] != value:
            raise self.parser.error(f"expected {value!r} in system call arguments, found {tok[1]!r}", self.pos0)
        self.i += 1
        return tok

    def arguments(self) -> tuple[Expr, ...]:
        args: list[Expr] = []
        if self.peek()[0] == "end":
            return ()
        while True:
            args.append(self.expr())
            if self.peek()[1] == ",":
                self.take()
                continue
            if self.peek()[0] != "end":
                raise self.parser.error(f"unexpected {self.peek()[1]!r} in system call arguments", self.pos0)
            return tuple(args)

    def expr(self) -> Expr:
        left = self.term()
        while self.peek()[1] == "|":
            self.take()
            left = Or(left, self.term())
        return left

    def term(self) -> Expr:
        kind, value = self.take()
        if kind == "num":
            return Num(int(value, 0))
        if value == "-" and self.peek()[0] == "num":
            return Num(-int(self.take()[1], 0))
        if kind == "dots":
            return Dots()
        if kind == "str":
            return Str(value[1:-1])
        if kind == "ident":
            return Sym(value)
        if value == "[":
            items: list[Expr] = []
            while self.peek()[1] != "]":
                items.append(self.expr())
                if self.peek()[1] == ",":
                    self.take()
            self.take("]")
            return ListExpr(tuple(items))
        if value == "{":
            fields: list[Field] = []
            while self.peek()[1] != "}":
                fields.append(self.field())
                if self.peek()[1] == ",":
                    self.take()
                elif self.peek()[1] != "}":
                    raise self.parser.error(f"unexpected {self.peek()[1]!r} in a struct", self.pos0)
            self.take("}")
            return StructExpr(tuple(fields))
        raise self.parser.error(f"unexpected {value!r} in system call arguments", self.pos0)

    def field(self) -> Field:
        kind, value = self.peek()
        if kind == "ident" and self.peek(1)[1] in ("=", "("):
            self.take()
            count = None
            if self.peek()[1] == "(":
                self.take()
                count = self.expr()
                self.take(")")
            self.take("=")
            return Field(value, count, self.expr())
        return Field(None, None, self.expr())


def _strip_comment(line: str) -> str:
    cut = line.find("//")
    return line if cut < 0 else line[:cut]


def _one_line(text: str) -> str:
    lines = [_strip_comment(x).strip() for x in text.splitlines()]
    return " ".join(x for x in lines if x)


def _excerpt(text: str, pos: int) -> str:
    end = text.find("\n", pos)
    return text[pos:end if end >= 0 else len(text)][:40]
