"""Connection tracking entries over netlink (``NETLINK_NETFILTER``), without pyroute2 or the ``conntrack`` tool.

What portmap asks of it: after publishing UDP host ports, drop the tracked
flows already addressed to those ports. A UDP "connection" the kernel tracked
before the DNAT rule existed keeps its old translation (none) for as long as
packets keep coming, so the published port would stay a black hole for that
peer. The reference portmap deletes those entries after its rules are in place
and only reports a failure (it never fails ADD for it); so does cnicore.

The kernel deletes one entry per request, named by its original tuple, so
:func:`delete_entries` dumps the family's table once, picks the entries whose
original tuple has the protocol and one of the destination ports, and sends a
delete for each, with the tuple (and zone) as the dump gave them. An entry gone
in between (it timed out) is no error.

The messages go through the one netlink request loop (:class:`._rtnl.Rtnl`) over
a netfilter socket; standard library only.
"""

from __future__ import annotations

import _socket
import errno
import struct

from ._rtnl import NetlinkError, Rtnl, _attribute, _attributes
from ._setns import run_in_netns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = ["Flow", "delete_entries", "list_entries"]

#: One tracked flow's original direction: ``(protocol, source, destination, source port, destination port)``;
#: addresses as text, ports None for a protocol without ports.
Flow = tuple[int, str, str, int | None, int | None]

_NETLINK_NETFILTER = 12
_NFNL_SUBSYS_CTNETLINK = 1
_IPCTNL_MSG_CT_GET = 1
_IPCTNL_MSG_CT_DELETE = 2
_NLM_F_ACK = 0x4
_NLM_F_DUMP = 0x300
_NLA_F_NESTED = 0x8000
_CTA_TUPLE_ORIG = 1
_CTA_ZONE = 18
_CTA_TUPLE_IP = 1
_CTA_TUPLE_PROTO = 2
_CTA_IP_V4_SRC = 1
_CTA_IP_V4_DST = 2
_CTA_IP_V6_SRC = 3
_CTA_IP_V6_DST = 4
_CTA_PROTO_NUM = 1
_CTA_PROTO_SRC_PORT = 2
_CTA_PROTO_DST_PORT = 3
_FAMILIES = {4: _socket.AF_INET, 6: _socket.AF_INET6}
_NFGEN = struct.Struct("=BBH")  # nfgenmsg: family, version (0), resource id (big endian; 0)
_PORT = struct.Struct("!H")


def _socket_here() -> Rtnl:
    sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, _NETLINK_NETFILTER)
    try:
        sock.bind((0, 0))
    except BaseException:
        sock.close()
        raise
    return Rtnl(sock)


def _open(netns: str | None) -> Rtnl:
    return run_in_netns(netns, _socket_here)


def _dump(nl: Rtnl, version: int) -> list[tuple[bytes, dict[int, bytes], Flow]]:
    family = _FAMILIES[version]
    kind = _NFNL_SUBSYS_CTNETLINK << 8 | _IPCTNL_MSG_CT_GET
    found = []
    for _type, payload in nl.request(kind, _NFGEN.pack(family, 0, 0), flags=_NLM_F_DUMP):
        top = _attributes(payload, _NFGEN.size)
        orig = top.get(_CTA_TUPLE_ORIG)
        if orig is None:
            continue
        tuple_attrs = _attributes(orig)
        ips = _attributes(tuple_attrs.get(_CTA_TUPLE_IP, b""))
        proto = _attributes(tuple_attrs.get(_CTA_TUPLE_PROTO, b""))
        if _CTA_PROTO_NUM not in proto:
            continue
        src_key, dst_key = (_CTA_IP_V4_SRC, _CTA_IP_V4_DST) if version == 4 else (_CTA_IP_V6_SRC, _CTA_IP_V6_DST)
        src, dst = ips.get(src_key), ips.get(dst_key)
        sport, dport = proto.get(_CTA_PROTO_SRC_PORT), proto.get(_CTA_PROTO_DST_PORT)
        flow: Flow = (proto[_CTA_PROTO_NUM][0],
                      _socket.inet_ntop(family, src) if src else "",
                      _socket.inet_ntop(family, dst) if dst else "",
                      _PORT.unpack(sport)[0] if sport and len(sport) == 2 else None,
                      _PORT.unpack(dport)[0] if dport and len(dport) == 2 else None)
        found.append((orig, top, flow))
    return found


def list_entries(version: int, *, netns: str | None = None) -> list[Flow]:
    """The tracked flows of IP ``version`` (4 or 6) in the namespace at ``netns`` (None: this thread's).

    Raises ``OSError`` when the table cannot be read.
    """
    with _open(netns) as nl:
        return [flow for _orig, _top, flow in _dump(nl, version)]


def delete_entries(version: int, protocol: int, dst_ports: Collection[int], *, netns: str | None = None) -> int:
    """Delete the tracked flows of IP ``version`` whose original direction has ``protocol`` and a destination
    port in ``dst_ports``; how many were deleted.

    Raises ``OSError`` (a :class:`~backends._rtnl.NetlinkError` for the kernel's refusal) when the table
    cannot be read or an entry cannot be deleted; an entry that went away meanwhile is skipped.
    """
    ports = frozenset(dst_ports)
    if not ports:
        return 0
    family = _FAMILIES[version]
    kind = _NFNL_SUBSYS_CTNETLINK << 8 | _IPCTNL_MSG_CT_DELETE
    deleted = 0
    with _open(netns) as nl:
        for orig, top, (proto, _src, _dst, _sport, dport) in _dump(nl, version):
            if proto != protocol or dport not in ports:
                continue
            body = _NFGEN.pack(family, 0, 0) + _attribute(_CTA_TUPLE_ORIG | _NLA_F_NESTED, orig)
            zone = top.get(_CTA_ZONE)
            if zone is not None:
                body += _attribute(_CTA_ZONE, zone)
            try:
                nl.request(kind, body, flags=_NLM_F_ACK)
            except NetlinkError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                continue
            deleted += 1
    return deleted
