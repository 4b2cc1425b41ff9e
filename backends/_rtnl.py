"""Route netlink in process, without pyroute2: a link's state and addresses in a network namespace.

Bringing ``lo`` up and reading its addresses is all the loopback plugin asks of
the kernel. With the ``ip`` command that is three fork+execs; pyroute2 takes
longer to import than the whole job takes. :class:`RouteSocket` speaks the few
rtnetlink messages needed itself, over a plain ``AF_NETLINK`` socket packed with
:mod:`struct`:

* ``RTM_GETLINK`` by name: the link's index and flags (``IFF_UP`` is "admin up");
* ``RTM_NEWLINK`` by name with ``IFF_UP`` in the change mask: up or down, acknowledged;
* ``RTM_GETADDR`` dump, kept for the link's index: its addresses.

A socket belongs for its whole life to the network namespace of the thread that
created it, so :meth:`RouteSocket.open` creates it in a short-lived thread that
first joins the namespace with ``setns(2)`` (the technique of :mod:`._nsenter`);
the caller's threads never change namespace, and nothing forks.

It returns plain numbers and imports only the interpreter's built-in modules
(plus :mod:`ctypes` for ``setns`` before Python 3.12): an exec'd plugin that uses
it starts without attrs, netaddr and ``typing`` (see :mod:`cnicore._plugin_main`).
Its answers are the link port's (the same addresses in the same order, IPv6
link-local ones left out), and its errors cnicore errors, translated at this
boundary as in every backend; tests hold it against ``ip``'s view of the kernel.
"""

from __future__ import annotations

# The C core of the socket module: ``socket`` itself builds enums at import, which costs
# an exec'd plugin milliseconds, and none of its conveniences are needed here.
import _socket
import _thread
import os
import struct

from cnicore._errors import CNIError, InternalError

__all__ = ["RawAddress", "RouteSocket"]

#: An address as plain numbers: ``(4 or 6, the IP as an integer, the prefix length)``.
RawAddress = tuple[int, int, int]

_NETLINK_ROUTE = 0
_RTM_NEWLINK = 16
_RTM_GETLINK = 18
_RTM_GETADDR = 22
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLM_F_DUMP = 0x300
_NLM_F_DUMP_INTR = 0x10
_DUMP_ATTEMPTS = 5
_IFLA_IFNAME = 3
_IFA_ADDRESS = 1
_IFA_LOCAL = 2
_NLA_TYPE_MASK = 0x3FFF
_IFF_UP = 0x1
_AF_UNSPEC = 0
_AF_INET = 2
_AF_INET6 = 10
_CLONE_NEWNET = 0x40000000
_RECEIVE_BYTES = 1 << 16

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence number, port id
_LINK = struct.Struct("=BxHiII")  # ifinfomsg: family, (pad), device type, index, flags, change mask
_ADDRESS = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefix length, flags, scope, link index
_ATTRIBUTE = struct.Struct("=HH")  # rtattr: length, type
_ERROR = struct.Struct("=i")  # nlmsgerr starts with the negated errno (0: an acknowledgement)


def _attribute(kind: int, data: bytes) -> bytes:
    length = _ATTRIBUTE.size + len(data)
    return _ATTRIBUTE.pack(length, kind) + data + b"\0" * (-length % 4)


def _attributes(body: bytes, offset: int = 0) -> dict[int, bytes]:
    # The hot path of every reply read here and in ._netlink (a link message has some forty attributes).
    found: dict[int, bytes] = {}
    end = len(body)
    unpack = _ATTRIBUTE.unpack_from
    while offset + 4 <= end:
        length, kind = unpack(body, offset)
        if length < 4:
            break
        found[kind & _NLA_TYPE_MASK] = body[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def _by_name(name: str, flags: int = 0, change: int = 0) -> bytes:
    return _LINK.pack(_AF_UNSPEC, 0, 0, flags, change) + _attribute(_IFLA_IFNAME, name.encode() + b"\0")


def _is_reported(version: int, ip: int) -> bool:
    # As every backend: all addresses but the IPv6 link-local ones (fe80::/10) the kernel makes itself.
    return not (version == 6 and ip >> 118 == 0x3FA)


def _error(code: int | None, what: str) -> CNIError:
    from ._common import error_from_errno

    return error_from_errno(code, what)


def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12+
    if setns is not None:
        setns(fd, _CLONE_NEWNET)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _new_socket() -> _socket.socket:
    sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _socket_in_namespace(path: str) -> _socket.socket:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        from ._common import namespace_gone

        raise namespace_gone(path) from exc
    except OSError as exc:
        raise _error(exc.errno, f"open netns {path}") from exc
    outcome: list[_socket.socket | BaseException] = []
    finished = _thread.allocate_lock()
    finished.acquire()

    def body() -> None:
        try:
            try:
                _setns(fd)
            except OSError as exc:
                outcome.append(_error(exc.errno, f"setns {path}"))
                return
            outcome.append(_new_socket())
        except BaseException as exc:
            outcome.append(exc)
        finally:
            finished.release()

    try:
        _thread.start_new_thread(body, ())
        finished.acquire()
    finally:
        os.close(fd)
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


class RouteSocket:
    """A route netlink socket bound to one network namespace; a context manager that closes it.

    Obtain one with :meth:`open`. Each method is one or two request/answer
    exchanges with the kernel; none is cached.
    """

    def __init__(self, sock: _socket.socket) -> None:
        self._sock = sock
        self._sequence = 0

    @classmethod
    def open(cls, path: str | None) -> RouteSocket:
        """A socket in the namespace at ``path`` (``None``: the calling thread's).

        Raises :class:`~cnicore.NamespaceNotFoundError` when ``path`` does not
        exist, other cnicore errors when it cannot be opened or joined.
        """
        try:
            return cls(_new_socket() if path is None else _socket_in_namespace(path))
        except CNIError:
            raise
        except OSError as exc:
            raise _error(exc.errno, "open a route netlink socket") from exc

    def __enter__(self) -> RouteSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket. Idempotent."""
        self._sock.close()

    def _exchange(self, kind: int, flags: int, payload: bytes, what: str) -> list[bytes]:
        """Send one request; return the bodies of the answer's messages (all of them for a dump).

        A dump the kernel marks interrupted (``NLM_F_DUMP_INTR``: the table changed while it
        was sent, so it may be inconsistent) is asked for again, a few times at most.
        """
        for _ in range(_DUMP_ATTEMPTS):
            bodies, interrupted = self._exchange_once(kind, flags, payload, what)
            if not interrupted:
                return bodies
        raise InternalError(f"{what}: the dump kept changing")

    def _exchange_once(self, kind: int, flags: int, payload: bytes, what: str) -> tuple[list[bytes], bool]:
        self._sequence += 1
        sequence = self._sequence
        message = _HEADER.pack(_HEADER.size + len(payload), kind, flags | _NLM_F_REQUEST, sequence, 0) + payload
        dump = flags & _NLM_F_DUMP == _NLM_F_DUMP
        bodies: list[bytes] = []
        interrupted = False
        self._send(message, what)
        while True:
            data = self._receive(what)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, reply, reply_flags, seq, _port = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise InternalError(f"{what}: malformed netlink message")
                body = data[offset + _HEADER.size:offset + length]
                offset += (length + 3) & ~3
                if seq != sequence:
                    continue  # an answer to nothing we are waiting for
                interrupted = interrupted or bool(reply_flags & _NLM_F_DUMP_INTR)
                if reply == _NLMSG_ERROR:
                    code = -_ERROR.unpack_from(body)[0]
                    if code:
                        raise _error(code, what)
                    return bodies, interrupted  # the acknowledgement
                if reply == _NLMSG_DONE:
                    return bodies, interrupted
                bodies.append(body)
                if not dump:
                    return bodies, interrupted

    def _send(self, message: bytes, what: str) -> None:
        try:
            self._sock.sendto(message, (0, 0))
        except OSError as exc:
            raise _error(exc.errno, what) from exc

    def _receive(self, what: str) -> bytes:
        try:
            return self._sock.recv(_RECEIVE_BYTES)
        except OSError as exc:
            raise _error(exc.errno, what) from exc

    def _link(self, name: str, what: str) -> tuple[int, int]:
        bodies = self._exchange(_RTM_GETLINK, 0, _by_name(name), what)
        if not bodies or len(bodies[0]) < _LINK.size:
            raise InternalError(f"{what}: the kernel sent no link")
        _family, _type, index, flags, _change = _LINK.unpack_from(bodies[0])
        return index, flags

    def link_is_up(self, name: str) -> bool:
        """Whether link ``name`` is administratively up. Read-only.

        Raises :class:`~cnicore.NotFoundError` when there is no such link.
        """
        return bool(self._link(name, f"get link {name}")[1] & _IFF_UP)

    def set_link_up(self, name: str, up: bool = True) -> None:
        """Set link ``name`` administratively up (or down). Idempotent.

        Raises :class:`~cnicore.NotFoundError` when there is no such link.
        """
        state = "up" if up else "down"
        self._exchange(_RTM_NEWLINK, _NLM_F_ACK, _by_name(name, _IFF_UP if up else 0, _IFF_UP),
                       f"set {name} {state}")

    def addresses(self, name: str) -> tuple[RawAddress, ...]:
        """The addresses of link ``name``, in the link port's order (IPv4 first, then by IP and prefix).

        IPv6 link-local addresses are left out, as every backend leaves them out.
        Raises :class:`~cnicore.NotFoundError` when there is no such link. Read-only.
        """
        what = f"list addresses of {name}"
        index, _flags = self._link(name, what)
        found: list[RawAddress] = []
        request = _ADDRESS.pack(_AF_UNSPEC, 0, 0, 0, 0)
        for body in self._exchange(_RTM_GETADDR, _NLM_F_DUMP, request, what):
            if len(body) < _ADDRESS.size:
                continue
            family, prefixlen, _flags, _scope, link = _ADDRESS.unpack_from(body)
            if link != index or family not in (_AF_INET, _AF_INET6):
                continue
            attributes = _attributes(body, _ADDRESS.size)
            # IFA_LOCAL is the address itself; IFA_ADDRESS is the peer's on a point-to-point link.
            raw = attributes.get(_IFA_LOCAL) or attributes.get(_IFA_ADDRESS)
            version = 4 if family == _AF_INET else 6
            if raw is None or len(raw) != (4 if version == 4 else 16):
                continue
            ip = int.from_bytes(raw, "big")
            if _is_reported(version, ip):
                found.append((version, ip, prefixlen))
        return tuple(sorted(found))
