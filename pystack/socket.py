"""The standard library's ``socket`` module over pystack, for programs written against it.

    import pystack.socket as socket
    socket.use(runtime)                 # or run the program under ``pystack exec``
    with socket.create_connection(("www.example.test", 80)) as s: ...

Everything the stdlib module has is here. What reaches the network is pystack's: the ``socket`` class
(AF_INET and AF_INET6, stream and datagram, over :mod:`pystack.api.socket`, which has the semantics and
the errors), ``getaddrinfo``, ``gethostbyname(_ex)``, ``gethostbyaddr``, ``getnameinfo`` (the hosts
table, then pystack's own DNS client, A and AAAA: :mod:`pystack.api.names`), and the stdlib's own
``create_connection``, ``create_server``, ``getfqdn`` and ``has_dualstack_ipv6`` run over those. The
rest (constants, exceptions, ``inet_pton``, ``socketpair``, ``gethostname``, ``getservbyname`` ...) is
the stdlib's.

AF_INET6 needs a stack with IPv6 up (``has_ipv6`` says so once :func:`use` is called; otherwise
EAFNOSUPPORT, and programs fall back to IPv4). As on Linux, an AF_INET6 socket bound to ``::`` takes
IPv4 too, its peers shown as ``::ffff:a.b.c.d``, unless IPV6_V6ONLY is set before bind. getaddrinfo
with AF_UNSPEC asks for AAAA records too when the stack has IPv6 up (as AI_ADDRCONFIG would have it),
IPv6 answers first when the stack has a source address and a route for them (RFC 6724 rules 1 and 6).

AF_UNIX sockets, and sockets made from a descriptor (``fileno=``), stay the kernel's: they never leave
the machine, and asyncio's self-pipe is one.
"""

from __future__ import annotations

import abc
import errno as _errno
import ipaddress as _ipaddress
import socket as _std
import types as _types
from dataclasses import dataclass as _dataclass
from typing import Any

from pystack.api import families as _families
from pystack.api import socket as _api
from pystack.api.names import Names
from pystack.dns import DnsError as _DnsError
from pystack.dns.hosts import HostsTable
from pystack.runtime import Runtime

# The stdlib module's whole namespace first (what its own functions look up at run time), then ours over it.
globals().update({_k: _v for _k, _v in vars(_std).items() if not _k.startswith("__")})
__all__ = [*_std.__all__, "use", "Network"]

has_ipv6 = False


@_dataclass
class Network:
    """What this module's sockets and lookups use: a running stack and its names."""

    runtime: Runtime
    names: Names


_network: Network | None = None


def use(runtime: Runtime, names: Names | None = None) -> Network:
    """Make new sockets and name lookups of this module go over ``runtime``'s stack (its loop must be
    running, e.g. ``runtime.start_thread()``). ``names`` defaults to /etc/hosts and no DNS server."""
    global _network, has_ipv6
    _network = Network(runtime, names if names is not None else Names(runtime, (), HostsTable.load()))
    has_ipv6 = runtime.stack.ipv6_enabled
    return _network


def _current() -> Network:
    if _network is None:
        raise OSError(_errno.ENETDOWN, "no pystack stack for this socket: call pystack.socket.use(runtime) first")
    return _network


# ---------------------------------------------------------------------- names


_EAI_TEXT = {
    _std.EAI_NONAME: "Name or service not known", _std.EAI_NODATA: "No address associated with hostname",
    _std.EAI_AGAIN: "Temporary failure in name resolution", _std.EAI_FAIL: "Non-recoverable failure in name resolution",
    _std.EAI_SERVICE: "Servname not supported for ai_socktype", _std.EAI_SOCKTYPE: "ai_socktype not supported",
    _std.EAI_FAMILY: "ai_family not supported", _std.EAI_ADDRFAMILY: "Address family for hostname not supported",
}
_EAI_OF_DNS = {"nxdomain": _std.EAI_NONAME, "bad_name": _std.EAI_NONAME, "nodata": _std.EAI_NODATA,
               "cname_loop": _std.EAI_FAIL}
"""How the resolver's outcomes read as getaddrinfo errors; the others (timeout, servfail ...) are EAI_AGAIN."""
_TYPES = ((_std.SOCK_STREAM, _std.IPPROTO_TCP, "tcp"), (_std.SOCK_DGRAM, _std.IPPROTO_UDP, "udp"),
          (_std.SOCK_RAW, 0, ""))


def _gaierror(code: int) -> _std.gaierror:
    return _std.gaierror(code, _EAI_TEXT.get(code, "Unknown error"))


def _text(value: str | bytes) -> str:
    return value.decode("ascii") if isinstance(value, (bytes, bytearray)) else value


def _literal(host: str) -> tuple[int, int] | None:
    """(IP version, address) of an address literal (an IPv6 one may name a scope, ``fe80::1%pst0``:
    pystack has one interface), else None."""
    try:
        address = _ipaddress.ip_address(host)
    except ValueError:
        return None
    return address.version, int(address)


def _ipv6_up() -> bool:
    """AF_UNSPEC lookups give IPv6 answers only from a stack with IPv6 up."""
    return _network is not None and _network.runtime.stack.ipv6_enabled


def _family_of(version: int) -> AddressFamily:
    return _std.AddressFamily.AF_INET if version == 4 else _std.AddressFamily.AF_INET6


def _text_of(version: int, address: int) -> str:
    return _families.write(_family_of(version), version, address, 0)[0]


def _dns_error(exc: _DnsError) -> _std.gaierror:
    return _gaierror(_EAI_OF_DNS.get(exc.code, _std.EAI_AGAIN))


def _resolve(name: str, family: int) -> tuple[str, list[tuple[int, int]]]:
    """(canonical name, [(IP version, address)]) of a host name for ``family``, or the gaierror glibc
    gives. AF_UNSPEC asks for AAAA too when the stack has IPv6 up (pystack.api.names.Names.lookup)."""
    versions = {_std.AF_INET: [4], _std.AF_INET6: [6]}.get(family, [6, 4] if _ipv6_up() else [4])
    answers = _current().names.lookup(name, versions)
    canonical, found, errors = "", [], []
    for version in versions:
        answer = answers[version]
        if isinstance(answer, _DnsError):
            errors.append(answer)
            continue
        canonical = canonical or answer[0]
        found += [(version, address) for address in answer[1]]
    if not found:
        codes = {exc.code for exc in errors}
        if codes & {"nxdomain", "bad_name"}:
            raise _gaierror(_std.EAI_NONAME)
        raise _dns_error(next((exc for exc in errors if exc.code != "nodata"), errors[0]))
    if len(versions) > 1:
        found.sort(key=_destination_order)
    return canonical, found


def _destination_order(found: tuple[int, int]) -> tuple[bool, bool]:
    """RFC 6724 section 6 in short: destinations the stack cannot send to now (no source address or no
    route) last (rule 1), then IPv6 before IPv4 (rule 6: ::/0 has precedence 40, ::ffff:0:0/96 35)."""
    version, address = found
    runtime = _current().runtime
    with runtime.lock:
        usable = _families.reachable(runtime.stack, _families.Where(version, address))
    return not usable, version == 4


def _lookup(host: str) -> tuple[str, list[int]]:
    """(canonical name, IPv4 addresses) of a name, or the gaierror glibc would give (gethostbyname's)."""
    literal = _literal(host)
    if literal is not None:
        if literal[0] != 4:
            raise _gaierror(_std.EAI_ADDRFAMILY)
        return host, [literal[1]]
    canonical, found = _resolve(host, _std.AF_INET)
    return canonical, [address for _v, address in found]


def getaddrinfo(host: str | bytes | None, port: str | bytes | int | None, family: int = 0, type: int = 0,
                proto: int = 0, flags: int = 0) -> list[tuple[AddressFamily, SocketKind, int, str, Any]]:
    """As the stdlib's, over pystack: literals, the hosts table, then pystack's DNS client (A, AAAA)."""
    if family not in (_std.AF_UNSPEC, _std.AF_INET, _std.AF_INET6):
        raise _gaierror(_std.EAI_FAMILY)
    kinds = [(k, p, n) for k, p, n in _TYPES
             if type in (0, k) and proto in (0, p) and (type or k != _std.SOCK_RAW or not proto)]
    if not kinds:
        raise _gaierror(_std.EAI_SOCKTYPE)
    number = 0
    if port is not None:
        service = _text(port) if not isinstance(port, int) else port
        if isinstance(service, int) or service.isdigit():
            number = int(service)
            if not 0 <= number <= 65535:
                raise _gaierror(_std.EAI_SERVICE)
        else:
            if flags & _std.AI_NUMERICSERV:
                raise _gaierror(_std.EAI_NONAME)
            found_services = []
            for k, p, n in kinds:
                try:
                    found_services.append(((k, p, n), _std.getservbyname(service, n or "tcp")))
                except OSError:
                    pass
            if not found_services:
                raise _gaierror(_std.EAI_SERVICE)
            kinds = [kind for kind, _ in found_services]
            number = found_services[0][1]
    wanted = {_std.AF_INET: [4], _std.AF_INET6: [6]}.get(family, [4, 6] if _ipv6_up() else [4])
    if host is None:
        # glibc's order: the wildcards IPv4 first, the loopbacks IPv6 first.
        passive = bool(flags & _std.AI_PASSIVE)
        every = [(4, 0), (6, 0)] if passive else [(6, 1), (4, 0x7F000001)]
        canonical, found = "", [(v, a) for v, a in every if v in wanted]
    else:
        name = _text(host)
        literal = _literal(name)
        if literal is not None:
            if literal[0] not in wanted:
                raise _gaierror(_std.EAI_ADDRFAMILY)
            canonical, found = name, [literal]
        elif flags & _std.AI_NUMERICHOST:
            raise _gaierror(_std.EAI_NONAME)
        else:
            canonical, found = _resolve(name, family)
    result: list[tuple[AddressFamily, SocketKind, int, str, Any]] = []
    for version, address in found:
        af = _family_of(version)
        for kind, protocol, _name in kinds:
            first = not result and flags & _std.AI_CANONNAME
            result.append((af, _std.SocketKind(kind), protocol, canonical if first else "",
                           _families.write(af, version, address, number)))
    return result


def gethostbyname(hostname: str) -> str:
    return gethostbyname_ex(hostname)[2][0]


def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    """IPv4 only, as glibc's."""
    canonical, addresses = _lookup(hostname)  # an IPv6 literal is EAI_ADDRFAMILY
    if _literal(hostname) is not None:
        return hostname, [], [hostname]
    aliases = [hostname] if canonical.lower() != hostname.lower().rstrip(".") else []
    return canonical, aliases, [str(_ipaddress.IPv4Address(a)) for a in addresses]


def gethostbyaddr(ip_address: str) -> tuple[str, list[str], list[str]]:
    """The names of an address (a name is resolved first, as glibc does): hosts table, then PTR."""
    literal = _literal(ip_address)
    if literal is None:
        try:
            literal = _resolve(ip_address, _std.AF_UNSPEC)[1][0]
        except _std.gaierror:
            raise _std.herror(1, "Unknown host") from None
    version, address = literal
    try:
        names = _current().names.names(address, version)
    except _DnsError as exc:
        raise (_std.herror(1, "Unknown host") if exc.code in ("nxdomain", "nodata", "bad_name")
               else _std.herror(2, "Host name lookup failure")) from None
    return names[0], names[1:], [_text_of(version, address)]


def getnameinfo(sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
    host, port = sockaddr[0], sockaddr[1]
    literal = _literal(host)
    if literal is None:
        raise _gaierror(_std.EAI_NONAME)
    if literal[0] == 4 and len(sockaddr) != 2:
        raise OSError("IPv4 sockaddr must be 2 tuple")
    name = _text_of(*literal)
    if not flags & _std.NI_NUMERICHOST:
        try:
            name = _current().names.names(literal[1], literal[0])[0]
        except _DnsError:
            if flags & _std.NI_NAMEREQD:
                raise _gaierror(_std.EAI_NONAME) from None
    service = str(port)
    if not flags & _std.NI_NUMERICSERV:
        try:
            service = _std.getservbyport(port, "udp" if flags & _std.NI_DGRAM else "tcp")
        except OSError:
            pass
    return name, service


def _address(family: int, address: Any, what: str) -> tuple[Any, ...]:
    """An address of ``family`` checked as CPython does, its host resolved to a literal of the family."""
    if family == _std.AF_INET6:
        return _address6(address, what)
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError(f"{what}(): AF_INET address must be tuple, not {type(address).__name__}")
    host, port = address
    if not isinstance(port, int):
        raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
    if not 0 <= port <= 65535:
        raise OverflowError(f"{what}(): port must be 0-65535.")
    host = _text(host)
    if host in ("", "<broadcast>"):
        return host, port
    return _text_of(4, _lookup(host)[1][0]), port  # a literal is itself (an IPv6 one EAI_ADDRFAMILY)


def _address6(address: Any, what: str) -> tuple[Any, ...]:
    """(host, port[, flowinfo[, scope_id]]) as CPython's getsockaddrarg checks it."""
    if not isinstance(address, tuple):
        raise TypeError(f"{what}(): AF_INET6 address must be tuple, not {type(address).__name__}")
    if not 2 <= len(address) <= 4:
        raise TypeError("AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
    host, port, *rest = address
    for number in (port, *rest):
        if not isinstance(number, int):
            raise TypeError(f"'{type(number).__name__}' object cannot be interpreted as an integer")
    host = _text(host)
    if host in ("<broadcast>", "255.255.255.255"):
        raise OSError("address family mismatched")
    literal = _literal(host)
    if host and (literal is None or literal[0] != 6):
        host = getaddrinfo(host, None, _std.AF_INET6)[0][4][0]  # EAI_ADDRFAMILY for an IPv4 literal
    if not 0 <= port <= 65535:
        raise OverflowError(f"{what}(): port must be 0-65535.")
    if rest and not 0 <= rest[0] <= 0xFFFFF:
        raise OverflowError(f"{what}(): flowinfo must be 0-1048575.")
    return (host, port)


# ---------------------------------------------------------------------- the socket class


_STREAM_OR_DGRAM = {_std.SOCK_STREAM: _std.IPPROTO_TCP, _std.SOCK_DGRAM: _std.IPPROTO_UDP}


class socket(metaclass=abc.ABCMeta):
    """``socket.socket`` on pystack. The stdlib's kernel sockets count as instances too, so that
    ``isinstance(s, socket.socket)`` holds for the AF_UNIX sockets handed through."""

    def __new__(cls, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> Any:
        if cls is socket and (fileno is not None or family == _std.AF_UNIX):
            return _std.socket(family, type, proto, fileno)  # the kernel's own (see the module docstring)
        return super().__new__(cls)

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
        family = _std.AF_INET if family == -1 else family
        type = _std.SOCK_STREAM if type == -1 else type
        proto = 0 if proto == -1 else proto
        kind = type & ~(_std.SOCK_NONBLOCK | _std.SOCK_CLOEXEC)
        if family not in (_std.AF_INET, _std.AF_INET6):
            raise _api._oserror(_errno.EAFNOSUPPORT)
        if kind not in _STREAM_OR_DGRAM:
            raise _api._oserror(_errno.EPROTONOSUPPORT if kind == _std.SOCK_RAW else _errno.EINVAL)
        if proto not in (0, _STREAM_OR_DGRAM[kind]):
            raise _api._oserror(_errno.EPROTONOSUPPORT)
        runtime = _current().runtime
        self._sock: _api.TcpSocket | _api.UdpSocket = (
            _api.TcpSocket(runtime, family=family) if kind == _std.SOCK_STREAM else _api.UdpSocket(runtime, family))
        self._family = _std.AddressFamily(family)
        self._type = _std.SocketKind(kind)
        self._proto = proto
        self._io_refs = 0
        self._closed = False
        self._sock.settimeout(0.0 if type & _std.SOCK_NONBLOCK else _std.getdefaulttimeout())

    @classmethod
    def _wrap(cls, sock: _api.TcpSocket, like: socket) -> socket:
        self = super().__new__(cls)
        self._sock = sock
        self._family, self._type, self._proto = like._family, like._type, like._proto
        self._io_refs = 0
        self._closed = False
        return self

    family = property(lambda self: self._family, doc="the socket's address family")
    type = property(lambda self: self._type, doc="the socket's type")
    proto = property(lambda self: self._proto, doc="the socket's protocol")
    timeout = property(lambda self: self._sock.gettimeout(), doc="the timeout, as gettimeout()")

    def __repr__(self) -> str:
        ready = self._sock._ready
        text = (f"<pystack.socket.socket{' [closed]' if self._closed else ''} fd={ready.fileno() if ready else -1}, "
                f"family={self._family}, type={self._type}, proto={self._proto}")
        if not self._closed and not self._sock._closed:
            text += f", laddr={self.getsockname()}"
            try:
                text += f", raddr={self.getpeername()}"
            except OSError:
                pass
        return text + ">"

    def __getstate__(self) -> None:
        raise TypeError(f"cannot pickle {self.__class__.__name__!r} object")

    # What the stdlib's socket class builds from the other methods is taken as it is.
    makefile = _std.socket.makefile
    _decref_socketios = _std.socket._decref_socketios
    close = _std.socket.close
    __enter__ = _std.socket.__enter__
    __exit__ = _std.socket.__exit__
    _sendfile_use_send = _std.socket._sendfile_use_send
    _check_sendfile_params = _std.socket._check_sendfile_params

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """By send(): os.sendfile needs a kernel socket."""
        return self._sendfile_use_send(file, offset, count)  # type: ignore[no-any-return]

    def _real_close(self) -> None:
        self._sock.close()

    def detach(self) -> int:
        raise OSError(_errno.EOPNOTSUPP, "a pystack socket has no kernel descriptor to detach")

    def dup(self) -> socket:
        raise OSError(_errno.EOPNOTSUPP, "a pystack socket has no kernel descriptor to duplicate")

    def fileno(self) -> int:
        return self._sock.fileno()

    def settimeout(self, value: float | None) -> None:
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._sock.gettimeout()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def getblocking(self) -> bool:
        return self._sock.getblocking()

    def bind(self, address: Any) -> None:
        self._sock.bind(_address(self._family, address, "bind"))

    def connect(self, address: Any) -> None:
        self._sock.connect(_address(self._family, address, "connect"))

    def connect_ex(self, address: Any) -> int:
        return self._sock.connect_ex(_address(self._family, address, "connect_ex"))

    def listen(self, backlog: int = min(_std.SOMAXCONN, 128)) -> None:
        self._sock.listen(backlog)

    def accept(self) -> tuple[socket, Any]:
        sock, address = self._sock.accept()
        new = socket._wrap(sock, self)
        # As CPython: the new socket has the default timeout, and blocks if there is none.
        sock.settimeout(_std.getdefaulttimeout())
        return new, address

    def send(self, data: Any, flags: int = 0) -> int:
        return self._sock.send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._sock.sendall(data, flags)

    def sendto(self, data: Any, flags_or_address: Any, address: Any = None) -> int:
        if address is None:
            return self._sock.sendto(data, _address(self._family, flags_or_address, "sendto"))
        return self._sock.sendto(data, flags_or_address, _address(self._family, address, "sendto"))

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
        target = None if address is None else _address(self._family, address, "sendmsg")
        return self._sock.sendmsg(buffers, ancdata, flags, target)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self._sock.recv(bufsize, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        return self._sock.recv_into(buffer, nbytes, flags)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        return self._sock.recvfrom(bufsize, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        return self._sock.recvfrom_into(buffer, nbytes, flags)

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def getpeername(self) -> Any:
        return self._sock.getpeername()

    def setsockopt(self, level: int, optname: int, value: int | bytes | None, optlen: int | None = None) -> None:
        if value is None:
            value = bytes(optlen or 0)
        self._sock.setsockopt(level, optname, value)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        return self._sock.getsockopt(level, optname, buflen)

    def tcp_info(self) -> dict[str, Any]:
        """pystack's TCP_INFO view (``getsockopt(IPPROTO_TCP, TCP_INFO, 104)`` gives Linux's layout)."""
        if not isinstance(self._sock, _api.TcpSocket):
            raise _api._oserror(_errno.EOPNOTSUPP)
        return self._sock.tcp_info()


socket.register(_std.socket)
SocketType = socket


def _ours(fn: Any) -> Any:
    """The stdlib's own function, looking its names up here (so it makes pystack sockets)."""
    new = _types.FunctionType(fn.__code__, globals(), fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__doc__ = fn.__doc__
    return new


create_connection = _ours(_std.create_connection)
create_server = _ours(_std.create_server)
has_dualstack_ipv6 = _ours(_std.has_dualstack_ipv6)
getfqdn = _ours(_std.getfqdn)
