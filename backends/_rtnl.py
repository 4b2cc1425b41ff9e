"""Route netlink in process, without pyroute2: a link's state and addresses in a network namespace.

Bringing ``lo`` up and reading its addresses is all the loopback plugin asks of
the kernel. With the ``ip`` command that is three fork+execs; pyroute2 takes
longer to import than the whole job takes. :class:`RouteSocket` speaks the few
rtnetlink messages needed itself, over a plain ``AF_NETLINK`` socket packed with
:mod:`struct`:

* ``RTM_GETLINK`` by name: the link's index and flags (``IFF_UP`` is "admin up");
* ``RTM_NEWLINK`` by name with ``IFF_UP`` in the change mask: up or down, acknowledged;
* ``RTM_GETADDR`` dump, kept for the link's index: its addresses.

This module is also the one rtnetlink request/reply loop of cnicore:
:class:`Rtnl` (send one request, collect its answer, a dump asked again when
the kernel marks it interrupted, refusals as :class:`NetlinkError` with the
kernel's extended-ack text) serves :class:`RouteSocket` here and every request
of the netlink backend (:mod:`._netlink`).

A socket belongs for its whole life to the network namespace of the thread that
created it, so :meth:`Rtnl.open` creates it in a short-lived thread that first
joins the namespace (:mod:`._setns`, the one ``setns`` helper); the caller's
threads never change namespace, and nothing forks.

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
import os
import struct

from cnicore._errors import CNIError, InternalError

from ._setns import run_in_netns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["NetlinkError", "NetlinkProtocolError", "RawAddress", "RouteSocket", "Rtnl"]

#: An address as plain numbers: ``(4 or 6, the IP as an integer, the prefix length)``.
RawAddress = tuple[int, int, int]

_NETLINK_ROUTE = 0
_RTM_NEWLINK = 16
_RTM_GETLINK = 18
_RTM_GETADDR = 22
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_NLM_F_REQUEST = 0x1
_NLM_F_MULTI = 0x2
_NLM_F_ACK = 0x4
_NLM_F_DUMP_INTR = 0x10
_NLM_F_CAPPED = 0x100
_NLM_F_ACK_TLVS = 0x200
_NLM_F_DUMP = 0x300
_DUMP_ATTEMPTS = 5
_SOL_NETLINK = 270
_NETLINK_EXT_ACK = 11
_NETLINK_GET_STRICT_CHK = 12
_NLMSGERR_ATTR_MSG = 1
_IFLA_IFNAME = 3
_IFA_ADDRESS = 1
_IFA_LOCAL = 2
_NLA_TYPE_MASK = 0x3FFF
_IFF_UP = 0x1
_AF_UNSPEC = 0
_AF_INET = 2
_AF_INET6 = 10
_RECEIVE_BYTES = 1 << 18

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
    from ._kernel import error_from_errno

    return error_from_errno(code, what)


class NetlinkError(OSError):
    """The kernel refused a request: ``errno``, and the extended-ack text when the kernel gave one."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code, os.strerror(code) + (f": {message}" if message else ""))


def _error_text(payload: bytes, flags: int) -> str:
    """The extended-ack message of an NLMSG_ERROR payload, if any."""
    if not flags & _NLM_F_ACK_TLVS or len(payload) < 4 + _HEADER.size:
        return ""
    offset = 4 + _HEADER.size if flags & _NLM_F_CAPPED else 4 + _HEADER.unpack_from(payload, 4)[0]
    message = _attributes(payload, (offset + 3) & ~3).get(_NLMSGERR_ATTR_MSG, b"")
    return message.rstrip(b"\0").decode(errors="replace")


class NetlinkProtocolError(ValueError):
    """The kernel's answer cannot be read (a malformed message), or a dump never settled."""


class Rtnl:
    """One rtnetlink socket, in the namespace of the thread that opened it; one user at a time.

    The one request/reply loop: :meth:`request`. Obtain one with :meth:`open`
    (``Rtnl()`` opens one in the calling thread's namespace; ``Rtnl(sock)`` speaks
    over a socket-like object given, as tests do); a context manager that closes it.
    """

    def __init__(self, sock: Any = None) -> None:
        if sock is not None:
            self._sock = sock
            self._seq = 0
            return
        self._sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
        try:
            self._sock.bind((0, 0))
            for option in (_NETLINK_EXT_ACK, _NETLINK_GET_STRICT_CHK):
                # Error texts and kernel-side dump filters: nice to have, not needed (older kernels).
                try:  # noqa: SIM105 (contextlib costs an exec'd plugin its import)
                    self._sock.setsockopt(_SOL_NETLINK, option, 1)
                except OSError:
                    pass
        except BaseException:
            self._sock.close()
            raise
        self._seq = 0

    @classmethod
    def open(cls, path: str | None) -> Rtnl:
        """A socket in the namespace at ``path`` (``None``: the calling thread's).

        Raises :class:`~cnicore.NamespaceNotFoundError` when ``path`` does not
        exist, ``OSError`` when the socket cannot be made, other cnicore errors
        when the namespace cannot be joined.
        """
        rtnl: Rtnl = run_in_netns(path, cls)
        return rtnl

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket. Idempotent."""
        self._sock.close()

    def request(self, kind: int, body: bytes, *, flags: int = 0) -> list[tuple[int, bytes]]:
        """Send one message; the replies as (type, payload).

        A dump returns every message up to NLMSG_DONE (asked again, a few times at
        most, when the kernel marks it interrupted: the table changed while it was
        sent); a change sent with NLM_F_ACK returns [] once acknowledged; a get
        returns its one message. A refusal raises :class:`NetlinkError`; an answer
        that cannot be read, or a dump that never settles, :class:`NetlinkProtocolError`.
        """
        for _ in range(_DUMP_ATTEMPTS):
            replies, interrupted = self._exchange(kind, body, flags | _NLM_F_REQUEST)
            if not interrupted:
                return replies
        raise NetlinkProtocolError("the dump kept changing")

    def _exchange(self, kind: int, body: bytes, flags: int) -> tuple[list[tuple[int, bytes]], bool]:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        seq = self._seq
        self._sock.sendto(_HEADER.pack(_HEADER.size + len(body), kind, flags, seq, 0) + body, (0, 0))
        dump = flags & _NLM_F_DUMP == _NLM_F_DUMP
        replies: list[tuple[int, bytes]] = []
        interrupted = False
        while True:
            data = self._sock.recv(_RECEIVE_BYTES)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, msg_type, msg_flags, msg_seq, _pid = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise NetlinkProtocolError("malformed netlink message")
                payload = data[offset + _HEADER.size:offset + length]
                offset += (length + 3) & ~3
                if msg_seq != seq:
                    continue  # a late answer to an earlier request: not ours
                interrupted = interrupted or bool(msg_flags & _NLM_F_DUMP_INTR)
                if msg_type in (_NLMSG_ERROR, _NLMSG_DONE):
                    code = -_ERROR.unpack_from(payload)[0] if len(payload) >= 4 else 0
                    if code > 0:
                        raise NetlinkError(code, _error_text(payload, msg_flags))
                    return replies, interrupted
                replies.append((msg_type, payload))
                if not dump and not msg_flags & _NLM_F_MULTI and not flags & _NLM_F_ACK:
                    return replies, interrupted


class RouteSocket:
    """A route netlink socket bound to one network namespace; a context manager that closes it.

    Obtain one with :meth:`open`. Each method is one or two request/answer
    exchanges with the kernel (:meth:`Rtnl.request`); none is cached.
    """

    def __init__(self, rtnl: Rtnl) -> None:
        self._rtnl = rtnl

    @classmethod
    def open(cls, path: str | None) -> RouteSocket:
        """A socket in the namespace at ``path`` (``None``: the calling thread's).

        Raises :class:`~cnicore.NamespaceNotFoundError` when ``path`` does not
        exist, other cnicore errors when it cannot be opened or joined.
        """
        try:
            return cls(Rtnl.open(path))
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
        self._rtnl.close()

    def _exchange(self, kind: int, flags: int, payload: bytes, what: str) -> list[bytes]:
        """Send one request; the bodies of the answer's messages. Refusals become cnicore errors about ``what``."""
        try:
            return [body for _kind, body in self._rtnl.request(kind, payload, flags=flags)]
        except OSError as exc:
            raise _error(exc.errno, what) from exc
        except NetlinkProtocolError as exc:
            raise InternalError(f"{what}: {exc}") from exc

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
