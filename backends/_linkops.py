"""The rtnetlink link operations on plain values (standard library only): the one implementation of each.

Each function here is one operation on an open :class:`._rtnl.Rtnl` socket,
built and read with :mod:`struct`: names, integers and address text in, a
:class:`LinkMessage` or plain tuples out. Two faces call them:

* the typed :class:`~cnicore.backends.NetlinkLinkBackend` (:mod:`._netlink`),
  which checks its typed arguments, opens a socket per operation and turns the
  answers into :class:`~cnicore.links.Link`, ``Address`` and ``Route`` values;
* :class:`PlainLinkPort`, the bridge engine's link port
  (:class:`~cnicore.plugins._bridgecore.LinkPort`) for the executed bridge: the
  same operations answering strings and :class:`~cnicore._linkplan.LinkInfo`, so
  that an exec'd bridge runs without attrs, netaddr, ``typing`` or
  :mod:`cnicore.links`.

The wire format: a request is a netlink header (added by :class:`Rtnl`), a
family header (``ifinfomsg``, ``ifaddrmsg``, ``rtmsg``) and attributes
(type-length-value, padded to 4 bytes, nested ones flagged ``NLA_F_NESTED``).
Replies are read lazily: an attribute's bytes are decoded only when asked for.
Kernel refusals are :class:`._rtnl.NetlinkError` (an ``OSError``) until
:class:`Session` translates them into cnicore errors at the operation's edge.
"""

from __future__ import annotations

import _socket
import errno
import os
import struct

from cnicore._errors import CNIError, InternalError, NotFoundError
from cnicore._gofmt import go_quote

from ._kernel import (
    PEER_NAME_ATTEMPTS,
    VETH_TXQUEUELEN,
    check_mtu,
    error_from_errno,
    not_a_bridge,
    random_peer_name,
    read_sysctl_path,
    veth_exists,
    write_sysctl_path,
)
from ._rtnl import _ADDRESS, _LINK, NetlinkError, NetlinkProtocolError, Rtnl
from ._rtnl import _ATTRIBUTE as _ATTR
from ._rtnl import _attribute as _attr
from ._rtnl import _attributes as _parse_attrs
from ._setns import open_netns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Final

    from cnicore._linkplan import LinkInfo

__all__ = ["LinkMessage", "PlainLinkPort", "Session", "add_veth", "address_dump",
           "change_address", "delete_link", "ensure_bridge", "get_index", "get_link", "link_dump", "link_info",
           "port_vlans", "route_dump", "route_request", "set_link", "set_link_options", "set_master", "set_mtu",
           "set_port_flag", "set_port_vlans"]

NLM_F_ACK: Final = 0x4
NLM_F_DUMP: Final = 0x300
_NLM_F_EXCL: Final = 0x200
_NLM_F_CREATE: Final = 0x400
_NLA_F_NESTED: Final = 0x8000
_NLA_TYPE_MASK: Final = 0x3FFF
ACKED: Final = NLM_F_ACK
CREATE: Final = NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
# Routes are added as the reference adds them (netlink.RouteAddEcmp): without NLM_F_EXCL, so a second
# route to a destination through another gateway or device is accepted (one container on two networks
# gets a default route per interface); only the very same route is refused (EEXIST).
CREATE_ROUTE: Final = NLM_F_ACK | _NLM_F_CREATE

# Message types (include/uapi/linux/rtnetlink.h).
RTM_NEWLINK: Final = 16
RTM_DELLINK: Final = 17
RTM_GETLINK: Final = 18
RTM_SETLINK: Final = 19
RTM_NEWADDR: Final = 20
RTM_DELADDR: Final = 21
RTM_GETADDR: Final = 22
RTM_NEWROUTE: Final = 24
RTM_DELROUTE: Final = 25
RTM_GETROUTE: Final = 26
# Link attributes (include/uapi/linux/if_link.h).
IFLA_ADDRESS: Final = 1
IFLA_IFNAME: Final = 3
IFLA_MTU: Final = 4
IFLA_MASTER: Final = 10
IFLA_PROTINFO: Final = 12
IFLA_TXQLEN: Final = 13
IFLA_OPERSTATE: Final = 16
IFLA_LINKINFO: Final = 18
IFLA_IFALIAS: Final = 20
IFLA_AF_SPEC: Final = 26
IFLA_NET_NS_FD: Final = 28
IFLA_EXT_MASK: Final = 29
IFLA_INFO_KIND: Final = 1
IFLA_INFO_DATA: Final = 2
IFLA_INFO_SLAVE_DATA: Final = 5
IFLA_BR_VLAN_FILTERING: Final = 7
IFLA_BRPORT_MODE: Final = 4
IFLA_BRPORT_ISOLATED: Final = 33
_VETH_INFO_PEER: Final = 1
_IFLA_BRIDGE_VLAN_INFO: Final = 2
_RTEXT_FILTER_BRVLAN: Final = 1 << 1
_RTEXT_FILTER_SKIP_STATS: Final = 1 << 3
# Address attributes and flags (include/uapi/linux/if_addr.h).
_IFA_ADDRESS: Final = 1
_IFA_LOCAL: Final = 2
_IFA_BROADCAST: Final = 4
_IFA_FLAGS: Final = 8
IFA_F_DADFAILED: Final = 0x08
IFA_F_TENTATIVE: Final = 0x40
# Route attributes and values.
_RTA_DST: Final = 1
_RTA_OIF: Final = 4
_RTA_GATEWAY: Final = 5
_RTA_PRIORITY: Final = 6
_RTA_PREFSRC: Final = 7
_RTA_MULTIPATH: Final = 9
_RTNEXTHOP: Final = struct.Struct("=HBBi")  # rtnexthop: length, flags, hops, link index (then attributes)
_RTMSG: Final = struct.Struct("=BBBBBBBBI")
_RTA_TABLE: Final = 15
_RTN_UNICAST: Final = 1
# What the reference's routes carry (vishvananda/netlink's default, `ip route` prints no proto).
_RTPROT_BOOT: Final = 3
_RT_TABLE_COMPAT: Final = 252
_RT_SCOPE_NOWHERE: Final = 255
#: Route scopes by number, as the link port names them.
SCOPES: Final = {0: "universe", 253: "link", 254: "host"}
_SCOPE_NUMBERS: Final = {name: number for number, name in SCOPES.items()}
# Link flags and types.
IFF_UP: Final = 0x1
IFF_PROMISC: Final = 0x100
IFF_ALLMULTI: Final = 0x200
IFF_LOWER_UP: Final = 0x10000
_ARPHRD_LOOPBACK: Final = 772
_OPER_STATES: Final = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")
# include/uapi/linux/if_bridge.h, struct bridge_vlan_info flags.
_BRIDGE_VLAN_INFO_PVID: Final = 0x2
_BRIDGE_VLAN_INFO_UNTAGGED: Final = 0x4
_AF_BRIDGE: Final = 7
_AF_INET: Final = 2
_AF_INET6: Final = 10
#: Address families by IP version, and back.
FAMILIES: Final = {4: _AF_INET, 6: _AF_INET6}
VERSIONS: Final = {_AF_INET: 4, _AF_INET6: 6}
_NO_STATS: Final = _attr(IFLA_EXT_MASK, struct.pack("=I", _RTEXT_FILTER_SKIP_STATS))
#: The main routing table.
MAIN_TABLE: Final = 254

#: A port VLAN as plain values: ``(vid, pvid, untagged)``.
PlainVlan = tuple[int, bool, bool]


def _pad(length: int) -> int:
    return (length + 3) & ~3


def attr_str(kind: int, text: str) -> bytes:
    """A NUL-terminated string attribute."""
    return _attr(kind, text.encode() + b"\0")


def attr_bytes(kind: int, data: bytes) -> bytes:
    """An attribute holding ``data`` as it is."""
    return _attr(kind, data)


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """The attributes in ``data`` (nested ones), by type."""
    return _parse_attrs(data)


def attr_u8(kind: int, value: int) -> bytes:
    """A one-byte attribute."""
    return _attr(kind, struct.pack("=B", value))


def attr_u32(kind: int, value: int) -> bytes:
    """A native 32-bit attribute."""
    return _attr(kind, struct.pack("=I", value))


def nested(kind: int, *children: bytes) -> bytes:
    """A nested attribute (flagged: some kernel parsers, IFLA_PROTINFO of AF_BRIDGE, read it as nested only then)."""
    return _attr(kind | _NLA_F_NESTED, b"".join(children))


def ifinfomsg(*, family: int = 0, index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    """The link family header."""
    return _LINK.pack(family, 0, index, flags, change)


def _ifaddrmsg(*, family: int, prefixlen: int = 0, flags: int = 0, scope: int = 0, index: int = 0) -> bytes:
    return _ADDRESS.pack(family, prefixlen, flags, scope, index)


def _rtmsg(*, family: int, dst_len: int = 0, table: int = 0, protocol: int = 0, scope: int = 0,
           kind: int = 0) -> bytes:
    return _RTMSG.pack(family, dst_len, 0, 0, table, protocol, scope, kind, 0)


def _iter_attrs(data: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    end = len(data)
    while offset + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        yield kind & _NLA_TYPE_MASK, data[offset + _ATTR.size:offset + length]
        offset += _pad(length)


def text_of(raw: bytes) -> str:
    """A NUL-terminated string attribute's text."""
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def u8_of(raw: bytes | None) -> int:
    """A one-byte attribute's value (0 when absent)."""
    return raw[0] if raw else 0


def u32_of(raw: bytes | None) -> int:
    """A 32-bit attribute's value (0 when absent or short)."""
    return struct.unpack("=I", raw[:4])[0] if raw and len(raw) >= 4 else 0


def _mac_text(raw: bytes | None) -> str:
    if raw is None or len(raw) != 6:
        return "00:00:00:00:00:00"
    return ":".join(f"{b:02x}" for b in raw)


def ip_text(family: int, raw: bytes) -> str:
    """An address's text from its bytes."""
    return _socket.inet_ntop(family, raw)


def _ip_bytes(version: int, ip: str) -> bytes:
    return _socket.inet_pton(FAMILIES[version], ip)


def _version_of(ip: str) -> int:
    return 6 if ":" in ip else 4


class LinkMessage:
    """An RTM_NEWLINK message, read lazily."""

    __slots__ = ("attrs", "flags", "index", "kind_type", "payload")

    def __init__(self, payload: bytes) -> None:
        _family, self.kind_type, self.index, self.flags, _change = _LINK.unpack_from(payload)
        self.payload = payload
        self.attrs = _parse_attrs(payload, _LINK.size)

    @property
    def name(self) -> str:
        """The link's name."""
        return text_of(self.attrs.get(IFLA_IFNAME, b""))

    @property
    def master(self) -> int:
        """The master's index (0 for none)."""
        raw = self.attrs.get(IFLA_MASTER)
        return struct.unpack("=I", raw)[0] if raw else 0

    @property
    def mac(self) -> str:
        """The MAC's text (all zeros for none)."""
        return _mac_text(self.attrs.get(IFLA_ADDRESS))

    @property
    def mtu(self) -> int:
        """The MTU."""
        return u32_of(self.attrs.get(IFLA_MTU))

    @property
    def promiscuous(self) -> bool:
        """Whether the link is in promiscuous mode (IFF_PROMISC)."""
        return bool(self.flags & IFF_PROMISC)

    @property
    def allmulti(self) -> bool:
        """Whether the link receives all multicast (IFF_ALLMULTI)."""
        return bool(self.flags & IFF_ALLMULTI)

    @property
    def txqueuelen(self) -> int:
        """The transmit queue length."""
        return u32_of(self.attrs.get(IFLA_TXQLEN))

    @property
    def alias(self) -> str:
        """The alias ("" for none)."""
        return text_of(self.attrs.get(IFLA_IFALIAS) or b"")

    @property
    def oper_state(self) -> str:
        """RFC 2863's operational state, as ``ip`` names it."""
        oper = u8_of(self.attrs.get(IFLA_OPERSTATE))
        return _OPER_STATES[oper] if oper < len(_OPER_STATES) else "unknown"

    def info(self) -> dict[int, bytes]:
        """The IFLA_LINKINFO attributes."""
        raw = self.attrs.get(IFLA_LINKINFO)
        return _parse_attrs(raw) if raw else {}

    @property
    def kind(self) -> str:
        """``loopback``, the kind the link was created as (``bridge``, ``veth``...), or ``device``."""
        if self.kind_type == _ARPHRD_LOOPBACK:
            return "loopback"
        kind = self.info().get(IFLA_INFO_KIND)
        return text_of(kind) if kind else "device"


class Session:
    """A socket in the namespace at ``path`` (None: the calling thread's) for one operation about ``what``.

    A context manager giving the :class:`Rtnl`; it closes the socket on leaving,
    and turns a kernel refusal into the errno's cnicore error about ``what``, an
    unreadable answer into :class:`~cnicore.InternalError`. Raises
    :class:`~cnicore.NamespaceNotFoundError` when the namespace is gone.

    With ``pool`` (namespace path -> socket), the namespace's socket is taken
    from it, or opened and left in it, and stays open on leaving: one socket
    (one thread joining the namespace) per namespace rather than per operation.
    A socket that saw an error other than a kernel refusal (or the cnicore
    error made of one) is closed and dropped from the pool. Answers are matched
    to requests by sequence number, so a socket serves any number of operations.
    """

    def __init__(self, path: str | None, what: str, *, pool: dict[str | None, Rtnl] | None = None) -> None:
        self.what = what
        self._path = path
        self._pool = pool
        sock = None if pool is None else pool.get(path)
        if sock is None:
            try:
                sock = Rtnl.open(path)
            except CNIError:
                raise
            except OSError as exc:
                raise error_from_errno(exc.errno, what) from exc
            if pool is not None:
                pool[path] = sock
        self.sock = sock

    def __enter__(self) -> Rtnl:
        return self.sock

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        pool = self._pool
        if pool is None or (exc is not None and not isinstance(exc, (NetlinkError, CNIError))):
            self.sock.close()
            if pool is not None:
                pool.pop(self._path, None)
        if exc is None or isinstance(exc, CNIError):
            return
        if isinstance(exc, OSError):
            raise error_from_errno(exc.errno, self.what) from exc
        if isinstance(exc, (struct.error, ValueError, IndexError, NetlinkProtocolError)):
            raise InternalError(f"{self.what}: cannot read the kernel's answer: {exc}") from exc


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(f"link {go_quote(name)} not found")


# -- reading ------------------------------------------------------------------------------------------


def get_link(sock: Rtnl, name: str) -> LinkMessage:
    """The link called ``name``; :class:`~cnicore.NotFoundError` if there is none."""
    try:
        replies = sock.request(RTM_GETLINK, ifinfomsg() + attr_str(IFLA_IFNAME, name) + _NO_STATS)
    except NetlinkError as exc:
        if exc.errno == errno.ENODEV:
            raise _not_found(name) from exc
        raise
    if not replies:
        raise _not_found(name)
    return LinkMessage(replies[0][1])


def get_index(sock: Rtnl, index: int) -> LinkMessage | None:
    """The link with index ``index``, or None."""
    try:
        replies = sock.request(RTM_GETLINK, ifinfomsg(index=index) + _NO_STATS)
    except NetlinkError as exc:
        if exc.errno == errno.ENODEV:
            return None
        raise
    return LinkMessage(replies[0][1]) if replies else None


def link_dump(sock: Rtnl) -> list[LinkMessage]:
    """Every link of the namespace."""
    return [LinkMessage(payload) for _kind, payload in
            sock.request(RTM_GETLINK, ifinfomsg() + _NO_STATS, flags=NLM_F_DUMP)]


def master_name(sock: Rtnl, msg: LinkMessage) -> str | None:
    """The name of the link's master (None without one)."""
    if not msg.master:
        return None
    found = get_index(sock, msg.master)
    return found.name if found is not None else None


def address_dump(sock: Rtnl, index: int = 0) -> list[tuple[int, int, str, int, int]]:
    """``(link index, 4 or 6, ip text, prefix length, IFA flags)`` of every address (of link ``index`` if not 0).

    In the kernel's order, IPv6 link-local ones included (the callers filter and sort).
    """
    found = []
    # With strict checking the kernel filters by index itself; older kernels send everything.
    for _kind, payload in sock.request(RTM_GETADDR, _ifaddrmsg(family=0, index=index), flags=NLM_F_DUMP):
        family, prefixlen, flags, _scope, link = _ADDRESS.unpack_from(payload)
        if (index and link != index) or family not in VERSIONS:
            continue
        attrs = _parse_attrs(payload, _ADDRESS.size)
        # IFA_LOCAL is the address itself; IFA_ADDRESS is the peer's on a point-to-point link.
        raw = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)
        if raw is None:
            continue
        if _IFA_FLAGS in attrs:
            flags = u32_of(attrs[_IFA_FLAGS])
        found.append((link, VERSIONS[family], ip_text(family, raw), prefixlen, flags))
    return found


def _reported_sort_key(ip: str, version: int, prefixlen: int) -> tuple[int, int, int] | None:
    """The link port's order of addresses (IPv4 first, by IP and prefix), None for those it leaves out.

    Every backend leaves out the IPv6 link-local addresses (fe80::/10) the kernel makes itself.
    """
    value = int.from_bytes(_ip_bytes(version, ip), "big")
    if version == 6 and value >> 118 == 0x3FA:
        return None
    return version, value, prefixlen


def link_info(sock: Rtnl, msg: LinkMessage) -> LinkInfo:
    """The link as the bridge engine reads it."""
    from cnicore._linkplan import LinkInfo  # the bridge's link plan (the tuning port needs none)

    return LinkInfo(name=msg.name, kind=msg.kind, mac=msg.mac, mtu=msg.mtu, master=master_name(sock, msg),
                    oper_state=msg.oper_state, promiscuous=bool(msg.flags & IFF_PROMISC))


def port_vlans(sock: Rtnl, index: int) -> tuple[PlainVlan, ...]:
    """The VLANs of bridge port ``index``, by VID: ``(vid, pvid, untagged)``."""
    # AF_BRIDGE dump with RTEXT_FILTER_BRVLAN: one message per port, VLANs in IFLA_AF_SPEC.
    entries: dict[int, PlainVlan] = {}
    request = ifinfomsg(family=_AF_BRIDGE) + attr_u32(IFLA_EXT_MASK, _RTEXT_FILTER_BRVLAN)
    for _kind, payload in sock.request(RTM_GETLINK, request, flags=NLM_F_DUMP):
        msg = LinkMessage(payload)
        spec = msg.attrs.get(IFLA_AF_SPEC)
        if msg.index != index or spec is None:
            continue
        for kind, info in _iter_attrs(spec):
            if kind == _IFLA_BRIDGE_VLAN_INFO:
                flags, vid = struct.unpack_from("=HH", info)
                entries[vid] = (vid, bool(flags & _BRIDGE_VLAN_INFO_PVID), bool(flags & _BRIDGE_VLAN_INFO_UNTAGGED))
    return tuple(entries[vid] for vid in sorted(entries))


#: A route as plain values: ``(version, dst ip, dst prefix length, gateway, device index, metric, table, scope
#: name, source)``.
PlainRoute = tuple[int, str, int, "str | None", "int | None", int, int, str, "str | None"]


def route_dump(sock: Rtnl, version: int) -> list[PlainRoute]:
    """Every unicast route of the family: one per nexthop of a multipath route.

    The kernel merges IPv6 routes to one destination with one metric through different
    gateways into one multipath route (as for the default routes of a container on two
    networks); the port lists each nexthop as a route of its own.
    """
    routes: list[PlainRoute] = []
    for _kind, payload in sock.request(RTM_GETROUTE, _rtmsg(family=FAMILIES[version]), flags=NLM_F_DUMP):
        family, dst_len, _src_len, _tos, table, _protocol, scope, kind, _flags = _RTMSG.unpack_from(payload)
        attrs = _parse_attrs(payload, _RTMSG.size)
        if kind != _RTN_UNICAST or family not in VERSIONS:
            continue
        found = VERSIONS[family]
        dst = ip_text(family, attrs[_RTA_DST]) if _RTA_DST in attrs else ("0.0.0.0" if found == 4 else "::")
        raw_source = attrs.get(_RTA_PREFSRC)
        source = ip_text(family, raw_source) if raw_source else None
        hops: list[tuple[int | None, bytes | None]] = []
        multipath = attrs.get(_RTA_MULTIPATH)
        if multipath is None:
            oif = attrs.get(_RTA_OIF)
            hops.append((u32_of(oif) if oif is not None else None, attrs.get(_RTA_GATEWAY)))
        else:
            offset = 0
            while offset + _RTNEXTHOP.size <= len(multipath):
                length, _hop_flags, _hops, hop_index = _RTNEXTHOP.unpack_from(multipath, offset)
                if length < _RTNEXTHOP.size:
                    break
                hop_attrs = _parse_attrs(multipath[offset:offset + length], _RTNEXTHOP.size)
                hops.append((hop_index, hop_attrs.get(_RTA_GATEWAY)))
                offset += _pad(length)
        metric = u32_of(attrs.get(_RTA_PRIORITY))
        route_table = u32_of(attrs[_RTA_TABLE]) if _RTA_TABLE in attrs else table
        scope_name = SCOPES.get(scope, "universe") if found == 4 else "universe"
        routes.extend((found, dst, dst_len, ip_text(family, gateway) if gateway else None, oif, metric, route_table,
                       scope_name, source) for oif, gateway in hops)
    return routes


# -- links --------------------------------------------------------------------------------------------


def ensure_bridge(sock: Rtnl, name: str, *, mtu: int | None, promiscuous: bool, vlan_filtering: bool) -> LinkMessage:
    """The bridge ``name``, created (with ``mtu`` and VLAN filtering) if missing, up (and promiscuous if asked).

    Raises :class:`~cnicore.AlreadyExistsError` when a link that is not a bridge holds the name.
    """
    try:
        msg = get_link(sock, name)
    except NotFoundError:
        data = [attr_str(IFLA_INFO_KIND, "bridge")]
        if vlan_filtering:
            data.append(nested(IFLA_INFO_DATA, attr_u8(IFLA_BR_VLAN_FILTERING, 1)))
        body = ifinfomsg() + attr_str(IFLA_IFNAME, name) + nested(IFLA_LINKINFO, *data)
        if mtu is not None:
            body += attr_u32(IFLA_MTU, mtu)
        try:
            sock.request(RTM_NEWLINK, body, flags=CREATE)
        except NetlinkError as exc:
            # Someone else made it between our look and our add: fine, it is checked below.
            if exc.errno != errno.EEXIST:
                raise
        msg = get_link(sock, name)
    if msg.kind != "bridge":
        raise not_a_bridge(name)
    wanted = IFF_UP | (IFF_PROMISC if promiscuous else 0)
    if msg.flags & wanted != wanted:
        sock.request(RTM_SETLINK, ifinfomsg(index=msg.index, flags=wanted, change=wanted), flags=ACKED)
        msg = get_link(sock, name)
    return msg


def add_veth(sock: Rtnl, name: str, host_fd: int, *, mtu: int | None, mac: str | None,
             peer_names: Callable[[], str], check_name: Callable[[str], object] | None = None) -> str:
    """Create a veth pair from inside the socket's namespace: ``name`` here, its peer in ``host_fd``'s.

    The peer is named by ``peer_names`` (drawn again, as the reference does, while
    the name is taken in the host; ``check_name`` checks each); returns it. Raises
    the reference's :class:`~cnicore.AlreadyExistsError` when ``name`` is taken.
    """
    peer_name = ""
    for _ in range(PEER_NAME_ATTEMPTS):
        peer_name = peer_names()
        if check_name is not None:
            check_name(peer_name)
        # The peer is born in the host namespace (IFLA_NET_NS_FD on the peer) while the
        # container end is born here: nothing is created in one place and moved.
        peer = ifinfomsg() + attr_str(IFLA_IFNAME, peer_name) + attr_u32(IFLA_NET_NS_FD, host_fd)
        body = ifinfomsg() + attr_str(IFLA_IFNAME, name)
        # Both ends without a transmit queue length, as the reference makes them (see VETH_TXQUEUELEN).
        peer += attr_u32(IFLA_TXQLEN, VETH_TXQUEUELEN)
        body += attr_u32(IFLA_TXQLEN, VETH_TXQUEUELEN)
        if mtu is not None:
            peer += attr_u32(IFLA_MTU, mtu)
            body += attr_u32(IFLA_MTU, mtu)
        if mac is not None:
            body += _attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
        body += nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "veth"),
                       nested(IFLA_INFO_DATA, _attr(_VETH_INFO_PEER, peer)))
        try:
            sock.request(RTM_NEWLINK, body, flags=CREATE)
            return peer_name
        except NetlinkError as exc:
            if exc.errno != errno.EEXIST:
                raise
            try:
                get_link(sock, name)
            except NotFoundError:
                continue  # the host name was taken: draw another, as the reference does
            raise veth_exists(name, peer_name) from exc
    raise veth_exists(name, peer_name)


def delete_link(sock: Rtnl, name: str) -> None:
    """Delete link ``name``; :class:`~cnicore.NotFoundError` if there is none."""
    try:
        sock.request(RTM_DELLINK, ifinfomsg() + attr_str(IFLA_IFNAME, name), flags=ACKED)
    except NetlinkError as exc:
        if exc.errno == errno.ENODEV:
            raise _not_found(name) from exc
        raise


def set_link(sock: Rtnl, name: str, *, flags: int = 0, change: int = 0, attrs: bytes = b"") -> None:
    """One RTM_SETLINK on link ``name``: the flags in ``change`` set as in ``flags``, ``attrs`` given."""
    body = ifinfomsg(flags=flags, change=change) + attr_str(IFLA_IFNAME, name) + attrs
    try:
        sock.request(RTM_SETLINK, body, flags=ACKED)
    except NetlinkError as exc:
        if exc.errno == errno.ENODEV:
            raise _not_found(name) from exc
        raise


def set_link_options(sock: Rtnl, name: str, *, promiscuous: bool | None = None, allmulti: bool | None = None,
                     txqueuelen: int | None = None, alias: str | None = None) -> None:
    """One RTM_SETLINK for every option given (checked: :func:`._kernel.check_link_options`) of link ``name``.

    With none given, the link must still exist (:class:`~cnicore.NotFoundError` otherwise).
    """
    flags = change = 0
    for wanted, bit in ((promiscuous, IFF_PROMISC), (allmulti, IFF_ALLMULTI)):
        if wanted is not None:
            change |= bit
            flags |= bit if wanted else 0
    attrs = b""
    if txqueuelen is not None:
        attrs += attr_u32(IFLA_TXQLEN, txqueuelen)
    if alias is not None:
        # An empty alias (no NUL) is how the kernel is told to drop it.
        attrs += attr_bytes(IFLA_IFALIAS, alias.encode("utf-8", "surrogateescape"))
    if change or attrs:
        set_link(sock, name, flags=flags, change=change, attrs=attrs)
    else:
        get_link(sock, name)


def set_mtu(sock: Rtnl, name: str, mtu: int) -> None:
    """Set the MTU of link ``name`` (checked: :func:`._kernel.check_mtu`)."""
    set_link(sock, name, attrs=attr_u32(IFLA_MTU, check_mtu(mtu)))


def mac_attr(mac: str) -> bytes:
    """The IFLA_ADDRESS attribute of a (checked) MAC."""
    return _attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))


def set_master(sock: Rtnl, name: str, master: str | None) -> None:
    """Enslave link ``name`` to ``master`` (None: release it)."""
    index = get_link(sock, name).index
    master_index = get_link(sock, master).index if master is not None else 0
    sock.request(RTM_SETLINK, ifinfomsg(index=index) + attr_u32(IFLA_MASTER, master_index), flags=ACKED)


def port(sock: Rtnl, name: str) -> LinkMessage:
    """Link ``name``, which must be a bridge port (:class:`~cnicore.NotFoundError` otherwise)."""
    msg = get_link(sock, name)
    if not msg.master:
        raise NotFoundError(f"link {go_quote(name)} is not a bridge port")
    return msg


def set_port_flag(sock: Rtnl, name: str, kind: int, on: bool) -> None:
    """Set a bridge port flag (IFLA_BRPORT_MODE: hairpin, IFLA_BRPORT_ISOLATED) of port ``name``."""
    index = port(sock, name).index
    body = ifinfomsg(family=_AF_BRIDGE, index=index) + nested(IFLA_PROTINFO, attr_u8(kind, 1 if on else 0))
    sock.request(RTM_SETLINK, body, flags=ACKED)


def _vlan_request(index: int, vid: int, flags: int) -> bytes:
    """The body of an AF_BRIDGE RTM_SETLINK (add) or RTM_DELLINK (delete) of one port VLAN."""
    return ifinfomsg(family=_AF_BRIDGE, index=index) + nested(
        IFLA_AF_SPEC, _attr(_IFLA_BRIDGE_VLAN_INFO, struct.pack("=HH", flags, vid)))


def set_port_vlans(sock: Rtnl, name: str, *, remove: tuple[int, ...] = (), add: tuple[PlainVlan, ...] = ()) -> None:
    """Remove VLANs ``remove`` (those the port has) from port ``name``, then add ``add`` (``(vid, pvid, untagged)``)."""
    index = port(sock, name).index
    present = {entry[0] for entry in port_vlans(sock, index)}
    for vid in remove:
        # The kernel answers ENOENT for a VLAN the port lacks: the port's contract makes that fine.
        if vid in present:
            sock.request(RTM_DELLINK, _vlan_request(index, vid, 0), flags=ACKED)
    for vid, pvid, untagged in add:
        flags = (_BRIDGE_VLAN_INFO_PVID if pvid else 0) | (_BRIDGE_VLAN_INFO_UNTAGGED if untagged else 0)
        sock.request(RTM_SETLINK, _vlan_request(index, vid, flags), flags=ACKED)


# -- addresses and routes -----------------------------------------------------------------------------


def change_address(sock: Rtnl, name: str, add: bool, ip: str, prefixlen: int) -> None:
    """Add (``add``) or delete address ``ip``/``prefixlen`` on link ``name`` (``ip`` canonical text)."""
    index = get_link(sock, name).index
    version = _version_of(ip)
    raw = _ip_bytes(version, ip)
    # As `ip address add` does: a 127/8 address gets host scope.
    scope = 254 if version == 4 and raw[0] == 127 else 0
    body = _ifaddrmsg(family=FAMILIES[version], prefixlen=prefixlen, scope=scope, index=index)
    body += _attr(_IFA_LOCAL, raw) + _attr(_IFA_ADDRESS, raw)
    if add and version == 4 and prefixlen < 31:
        # The broadcast address the reference (and `ip ... brd +`) sets.
        host_bits = (1 << (32 - prefixlen)) - 1
        body += _attr(_IFA_BROADCAST, (int.from_bytes(raw, "big") | host_bits).to_bytes(4, "big"))
    sock.request(RTM_NEWADDR if add else RTM_DELADDR, body, flags=CREATE if add else ACKED)


def route_request(sock: Rtnl, *, dst: str, dst_len: int, gateway: str | None, device: str | None,
                  metric: int | None, table: int = MAIN_TABLE, scope: str = "universe", source: str | None = None,
                  deleting: bool = False) -> bytes:
    """The body of an RTM_NEWROUTE (or, ``deleting``, RTM_DELROUTE) for a route; ``dst`` the network's address."""
    version = _version_of(dst)
    family = FAMILIES[version]
    compat = table if table < 256 else _RT_TABLE_COMPAT
    if deleting:
        # As `ip route del`: no type or protocol, and (IPv4) "no scope" matches a route of any scope.
        header = _rtmsg(family=family, dst_len=dst_len, scope=_RT_SCOPE_NOWHERE if version == 4 else 0,
                        table=compat)
    else:
        header = _rtmsg(family=family, dst_len=dst_len, scope=_SCOPE_NUMBERS[scope] if version == 4 else 0,
                        protocol=_RTPROT_BOOT, kind=_RTN_UNICAST, table=compat)
    body = header + _attr(_RTA_DST, _ip_bytes(version, dst)) + attr_u32(_RTA_TABLE, table)
    if device is not None:
        body += attr_u32(_RTA_OIF, get_link(sock, device).index)
    if gateway is not None:
        body += _attr(_RTA_GATEWAY, _ip_bytes(version, gateway))
    if metric is not None:
        body += attr_u32(_RTA_PRIORITY, metric)
    if source is not None and not deleting:
        body += _attr(_RTA_PREFSRC, _ip_bytes(version, source))
    return body


# -- the bridge engine's port -------------------------------------------------------------------------


def _split(address: str) -> tuple[str, int]:
    """``"ip/prefixlen"`` as canonical IP text and prefix length (``ValueError`` for anything else)."""
    ip, _, length = address.partition("/")
    version = _version_of(ip)
    canonical = ip_text(FAMILIES[version], _ip_bytes(version, ip))
    if not length.isascii() or not length.isdigit() or int(length) > (32 if version == 4 else 128):
        raise ValueError(f"bad prefix length in {address!r}")
    return canonical, int(length)


class PlainLinkPort:
    """The bridge engine's link port (:class:`~cnicore.plugins._bridgecore.LinkPort`) on rtnetlink, plain values.

    Namespace handles are paths (None: this process's namespace). Each method is
    the very function :class:`~cnicore.backends.NetlinkLinkBackend` calls for the
    same operation, on a socket opened for it; names and MACs come from the
    engine's checked configuration and environment. Sysctl keys are checked as
    every backend checks them (:mod:`cnicore._sysctlkey`). One socket per
    namespace serves every operation (see :class:`Session`): :meth:`close` closes them.
    """

    def __init__(self, *, peer_names: Callable[[], str] = random_peer_name) -> None:
        self._peer_names = peer_names
        self._sockets: dict[str | None, Rtnl] = {}

    def close(self) -> None:
        """Close the sockets kept open, one per namespace used. Idempotent."""
        sockets = self._sockets
        while sockets:
            sockets.popitem()[1].close()

    def host(self) -> str | None:
        """This process's namespace."""
        return None

    def open_namespace(self, path: str) -> str:
        """``path``, once it is known to be a namespace (:class:`~cnicore.NamespaceNotFoundError` if gone)."""
        os.close(open_netns(path))
        return path

    def ensure_bridge(self, ns: str | None, name: str, *, mtu: int | None, promiscuous: bool,
                      vlan_filtering: bool) -> LinkInfo:
        """See :meth:`~cnicore.links.LinkBackend.ensure_bridge`."""
        if mtu is not None:
            check_mtu(mtu)
        with Session(ns, f"ensure bridge {name}", pool=self._sockets) as sock:
            return link_info(sock, ensure_bridge(sock, name, mtu=mtu, promiscuous=promiscuous,
                                                 vlan_filtering=vlan_filtering))

    def create_veth(self, ns: str | None, ifname: str, host: str | None, *, mtu: int | None,
                    container_mac: str | None) -> tuple[LinkInfo, LinkInfo]:
        """See :meth:`~cnicore.links.LinkBackend.create_veth`: ``(host end, container end)``."""
        mac = None
        if container_mac is not None:
            from ._common import check_mac  # rare (a MAC asked for): the typed check, as every backend

            mac = check_mac(container_mac)
        if mtu is not None:
            check_mtu(mtu)
        host_fd = open_netns(host)
        try:
            with Session(ns, f"create veth {ifname}", pool=self._sockets) as sock:
                peer = add_veth(sock, ifname, host_fd, mtu=mtu, mac=mac, peer_names=self._peer_names)
                container = link_info(sock, get_link(sock, ifname))
        finally:
            os.close(host_fd)
        return self.get_link(host, peer), container

    def get_link(self, ns: str | None, name: str) -> LinkInfo:
        """See :meth:`~cnicore.links.LinkBackend.get_link`."""
        with Session(ns, f"get link {name}", pool=self._sockets) as sock:
            return link_info(sock, get_link(sock, name))

    def delete_link(self, ns: str | None, name: str) -> None:
        """See :meth:`~cnicore.links.LinkBackend.delete_link`."""
        with Session(ns, f"delete link {name}", pool=self._sockets) as sock:
            delete_link(sock, name)

    def set_link_up(self, ns: str | None, name: str, up: bool) -> None:
        """See :meth:`~cnicore.links.LinkBackend.set_link_up`."""
        with Session(ns, f"{'set up' if up else 'set down'} {name}", pool=self._sockets) as sock:
            set_link(sock, name, flags=IFF_UP if up else 0, change=IFF_UP)

    def set_master(self, ns: str | None, name: str, master: str) -> None:
        """See :meth:`~cnicore.links.LinkBackend.set_master`."""
        with Session(ns, f"set master of {name}", pool=self._sockets) as sock:
            set_master(sock, name, master)

    def set_hairpin(self, ns: str | None, name: str, on: bool) -> None:
        """See :meth:`~cnicore.links.LinkBackend.set_hairpin`."""
        with Session(ns, f"set hairpin on {name}", pool=self._sockets) as sock:
            set_port_flag(sock, name, IFLA_BRPORT_MODE, on)

    def set_port_isolation(self, ns: str | None, name: str, on: bool) -> None:
        """See :meth:`~cnicore.links.LinkBackend.set_port_isolation`."""
        with Session(ns, f"set isolation on {name}", pool=self._sockets) as sock:
            set_port_flag(sock, name, IFLA_BRPORT_ISOLATED, on)

    def set_port_vlans(self, ns: str | None, name: str, *, remove: tuple[int, ...] = (),
                       add: tuple[tuple[int, bool, bool], ...] = ()) -> None:
        """See :meth:`~cnicore.links.LinkBackend.set_port_vlans` (VLANs as ``(vid, pvid, untagged)``)."""
        with Session(ns, f"set VLANs of {name}", pool=self._sockets) as sock:
            set_port_vlans(sock, name, remove=remove, add=add)

    def set_mac(self, ns: str | None, name: str, mac: str) -> None:
        """See :meth:`~cnicore.links.LinkBackend.set_mac` (``mac`` as the kernel reported it)."""
        with Session(ns, f"set MAC of {name}", pool=self._sockets) as sock:
            set_link(sock, name, attrs=mac_attr(mac))

    def read_sysctl(self, ns: str | None, key: str) -> str:
        """See :meth:`~cnicore.links.LinkBackend.read_sysctl`."""
        from cnicore._sysctlkey import sysctl_key_parts

        return read_sysctl_path(ns, sysctl_key_parts(key)[0])

    def write_sysctl(self, ns: str | None, key: str, value: int) -> None:
        """See :meth:`~cnicore.links.LinkBackend.write_sysctl`."""
        from cnicore._sysctlkey import sysctl_key_parts, sysctl_value_text

        write_sysctl_path(ns, sysctl_key_parts(key)[0], sysctl_value_text(value))

    def _addresses(self, ns: str | None, name: str) -> list[tuple[tuple[int, int, int], str, int]]:
        with Session(ns, f"list addresses of {name}", pool=self._sockets) as sock:
            index = get_link(sock, name).index
            found = []
            for _link, version, ip, prefixlen, flags in address_dump(sock, index):
                key = _reported_sort_key(ip, version, prefixlen)
                if key is not None:
                    found.append((key, f"{ip}/{prefixlen}", flags))
        found.sort(key=lambda entry: entry[0])
        return found

    def list_addresses(self, ns: str | None, name: str) -> list[str]:
        """See :meth:`~cnicore.links.LinkBackend.list_addresses`: ``"ip/prefixlen"`` texts, the port's order."""
        return [text for _key, text, _flags in self._addresses(ns, name)]

    def list_address_states(self, ns: str | None, name: str) -> list[tuple[str, bool, bool]]:
        """See :meth:`~cnicore.links.LinkBackend.list_address_states`: ``(address, tentative, DAD failed)``."""
        return [(text, bool(flags & IFA_F_TENTATIVE), bool(flags & IFA_F_DADFAILED))
                for _key, text, flags in self._addresses(ns, name)]

    def add_address(self, ns: str | None, name: str, address: str) -> None:
        """See :meth:`~cnicore.links.LinkBackend.add_address`."""
        ip, prefixlen = _split(address)
        with Session(ns, f"add address {ip}/{prefixlen} on {name}", pool=self._sockets) as sock:
            change_address(sock, name, True, ip, prefixlen)

    def delete_address(self, ns: str | None, name: str, address: str) -> None:
        """See :meth:`~cnicore.links.LinkBackend.delete_address`."""
        ip, prefixlen = _split(address)
        with Session(ns, f"delete address {ip}/{prefixlen} on {name}", pool=self._sockets) as sock:
            change_address(sock, name, False, ip, prefixlen)

    def add_route(self, ns: str | None, dst: str, gateway: str | None, device: str, metric: int | None) -> None:
        """See :meth:`~cnicore.links.LinkBackend.add_route` (main table, universe scope)."""
        from cnicore.spec._goint import ip_value_text, parse_network

        # The destination's network address, as the typed Route computes it.
        version, value, prefix = parse_network(dst)
        network = ip_value_text(version, value)
        with Session(ns, f"add route to {network}/{prefix}", pool=self._sockets) as sock:
            sock.request(RTM_NEWROUTE, route_request(sock, dst=network,
                                                     dst_len=prefix, gateway=gateway, device=device,
                                                     metric=metric), flags=CREATE_ROUTE)

    def list_routes(self, ns: str | None) -> list[tuple[str, str | None]]:
        """See :meth:`~cnicore.links.LinkBackend.list_routes`: the main table's ``(dst, gateway)``."""
        with Session(ns, "list routes", pool=self._sockets) as sock:
            return [(f"{dst}/{dst_len}", gateway)
                    for version in (4, 6)
                    for _v, dst, dst_len, gateway, _oif, _metric, table, _scope, _source in route_dump(sock, version)
                    if table == MAIN_TABLE]

