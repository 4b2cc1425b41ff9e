"""The netlink link backend: rtnetlink requests over a raw socket (standard library only).

Every operation opens one rtnetlink socket in the target namespace, sends its
few requests and closes the socket before returning, so thousands of
operations leave no descriptor behind and no socket keeps a deleted namespace
alive. For another namespace the socket is opened by a short-lived thread that
joined it (see :mod:`._setns`: nothing forks and no other thread moves); a
netlink socket stays in the namespace it was opened in, so the requests
themselves are sent from the calling thread, through the one request/reply
loop, :class:`._rtnl.Rtnl`.

The messages are built and read here (see the wire-format section). Requests name links
directly where the kernel allows it (set, delete), so most operations are one
or two round trips of a few tens of microseconds.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import netaddr

from cnicore._errors import CNIError, InternalError, NotFoundError
from cnicore._gofmt import go_quote
from cnicore.links import (
    MAIN_TABLE,
    Address,
    AddressState,
    BridgeSpec,
    Link,
    Namespace,
    PortVlan,
    Route,
    VethPair,
)

from . import _nsenter
from ._common import (
    PEER_NAME_ATTEMPTS,
    VETH_TXQUEUELEN,
    address_sort_key,
    check_link_options,
    check_mac,
    check_mtu,
    check_name,
    error_from_errno,
    links_by_index,
    not_a_bridge,
    random_peer_name,
    sorted_addresses,
    sorted_routes,
    veth_exists,
)
from ._rtnl import _ADDRESS, _LINK, Rtnl
from ._rtnl import _ATTRIBUTE as _ATTR
from ._rtnl import NetlinkError as _NetlinkError
from ._rtnl import _attribute as _attr
from ._rtnl import _attributes as _parse_attrs

__all__ = ["NetlinkLinkBackend"]


# -- the rtnetlink wire format --------------------------------------------------------------------------
#
# Just what the backend sends and reads, packed and parsed with struct: a request is a netlink header,
# a family header (_ifinfomsg, _ifaddrmsg, _rtmsg) and attributes (type-length-value, padded to 4 bytes,
# nested ones flagged NLA_F_NESTED). Replies are parsed lazily: an attribute's bytes are read only when
# the backend asks for them, which keeps a request in the tens of microseconds. The headers and the
# attribute codec are those of ._rtnl, whose Rtnl is the one request/reply loop.

_NLM_F_ACK: Final = 0x4
_NLM_F_DUMP: Final = 0x300
_NLM_F_EXCL: Final = 0x200
_NLM_F_CREATE: Final = 0x400
_NLA_F_NESTED: Final = 0x8000
_NLA_TYPE_MASK: Final = 0x3FFF


def _pad(length: int) -> int:
    return (length + 3) & ~3


def _attr_str(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _attr_u8(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=B", value))


def _attr_u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _nested(kind: int, *children: bytes) -> bytes:
    # Some kernel parsers (IFLA_PROTINFO of AF_BRIDGE) read an attribute as nested only with the flag.
    return _attr(kind | _NLA_F_NESTED, b"".join(children))


def _ifinfomsg(*, family: int = 0, index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _LINK.pack(family, 0, index, flags, change)


def _ifaddrmsg(*, family: int, prefixlen: int = 0, flags: int = 0, scope: int = 0, index: int = 0) -> bytes:
    return _ADDRESS.pack(family, prefixlen, flags, scope, index)


def _rtmsg(*, family: int, dst_len: int = 0, table: int = 0, protocol: int = 0, scope: int = 0,
           kind: int = 0) -> bytes:
    return struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, table, protocol, scope, kind, 0)


def _iter_attrs(data: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    end = len(data)
    while offset + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        yield kind & _NLA_TYPE_MASK, data[offset + _ATTR.size:offset + length]
        offset += _pad(length)


# Message types (include/uapi/linux/rtnetlink.h).
_RTM_NEWLINK: Final = 16
_RTM_DELLINK: Final = 17
_RTM_GETLINK: Final = 18
_RTM_SETLINK: Final = 19
_RTM_NEWADDR: Final = 20
_RTM_DELADDR: Final = 21
_RTM_GETADDR: Final = 22
_RTM_NEWROUTE: Final = 24
_RTM_DELROUTE: Final = 25
_RTM_GETROUTE: Final = 26
# Link attributes (include/uapi/linux/if_link.h).
_IFLA_ADDRESS: Final = 1
_IFLA_IFNAME: Final = 3
_IFLA_MTU: Final = 4
_IFLA_TXQLEN: Final = 13
_IFLA_MASTER: Final = 10
_IFLA_PROTINFO: Final = 12
_IFLA_OPERSTATE: Final = 16
_IFLA_LINKINFO: Final = 18
_IFLA_IFALIAS: Final = 20
_IFLA_AF_SPEC: Final = 26
_IFLA_NET_NS_FD: Final = 28
_IFLA_EXT_MASK: Final = 29
_IFLA_INFO_KIND: Final = 1
_IFLA_INFO_DATA: Final = 2
_IFLA_INFO_SLAVE_DATA: Final = 5
_IFLA_BR_VLAN_FILTERING: Final = 7
_IFLA_BRPORT_MODE: Final = 4
_IFLA_BRPORT_ISOLATED: Final = 33
_VETH_INFO_PEER: Final = 1
_IFLA_BRIDGE_VLAN_INFO: Final = 2
_RTEXT_FILTER_BRVLAN: Final = 1 << 1
_RTEXT_FILTER_SKIP_STATS: Final = 1 << 3
# Address attributes and flags (include/uapi/linux/if_addr.h).
_IFA_ADDRESS: Final = 1
_IFA_LOCAL: Final = 2
_IFA_BROADCAST: Final = 4
_IFA_FLAGS: Final = 8
_IFA_F_DADFAILED: Final = 0x08
_IFA_F_TENTATIVE: Final = 0x40
# Route attributes and values.
_RTA_DST: Final = 1
_RTA_OIF: Final = 4
_RTA_GATEWAY: Final = 5
_RTA_PRIORITY: Final = 6
_RTA_PREFSRC: Final = 7
_RTA_MULTIPATH: Final = 9
_RTNEXTHOP: Final = struct.Struct("=HBBi")  # rtnexthop: length, flags, hops, link index (then attributes)
_RTA_TABLE: Final = 15
_RTN_UNICAST: Final = 1
# What the reference's routes carry (vishvananda/netlink's default, `ip route` prints no proto).
_RTPROT_BOOT: Final = 3
_RT_TABLE_COMPAT: Final = 252
_RT_SCOPE_NOWHERE: Final = 255
_SCOPES: Final = {0: "universe", 253: "link", 254: "host"}
_SCOPE_NUMBERS: Final = {name: number for number, name in _SCOPES.items()}
# Link flags and types.
_IFF_UP: Final = 0x1
_IFF_PROMISC: Final = 0x100
_IFF_ALLMULTI: Final = 0x200
_IFF_LOWER_UP: Final = 0x10000
_ARPHRD_LOOPBACK: Final = 772
_OPER_STATES: Final = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")
# include/uapi/linux/if_bridge.h, struct bridge_vlan_info flags.
_BRIDGE_VLAN_INFO_PVID: Final = 0x2
_BRIDGE_VLAN_INFO_UNTAGGED: Final = 0x4
_AF_BRIDGE: Final = 7
_FAMILIES: Final = {4: socket.AF_INET, 6: socket.AF_INET6}
_VERSIONS: Final = {socket.AF_INET: 4, socket.AF_INET6: 6}
_NO_STATS: Final = _attr_u32(_IFLA_EXT_MASK, _RTEXT_FILTER_SKIP_STATS)
_ACKED: Final = _NLM_F_ACK
_CREATE: Final = _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
# Routes are added as the reference adds them (netlink.RouteAddEcmp): without NLM_F_EXCL, so a second
# route to a destination through another gateway or device is accepted (one container on two networks
# gets a default route per interface); only the very same route is refused (EEXIST).
_CREATE_ROUTE: Final = _NLM_F_ACK | _NLM_F_CREATE
_LOOPBACK_NET: Final = netaddr.IPNetwork("127.0.0.0/8")


class _LinkMessage:
    """An RTM_NEWLINK message, read lazily."""

    __slots__ = ("attrs", "flags", "index", "kind_type", "payload")

    def __init__(self, payload: bytes) -> None:
        _family, self.kind_type, self.index, self.flags, _change = _LINK.unpack_from(payload)
        self.payload = payload
        self.attrs = _parse_attrs(payload, _LINK.size)

    @property
    def name(self) -> str:
        return _text(self.attrs.get(_IFLA_IFNAME, b""))

    @property
    def master(self) -> int:
        raw = self.attrs.get(_IFLA_MASTER)
        return struct.unpack("=I", raw)[0] if raw else 0

    def info(self) -> dict[int, bytes]:
        raw = self.attrs.get(_IFLA_LINKINFO)
        return _parse_attrs(raw) if raw else {}


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _u8(raw: bytes | None) -> int:
    return raw[0] if raw else 0


def _u32(raw: bytes | None) -> int:
    return struct.unpack("=I", raw[:4])[0] if raw and len(raw) >= 4 else 0


def _mac_text(raw: bytes | None) -> str:
    if raw is None or len(raw) != 6:
        return "00:00:00:00:00:00"
    return ":".join(f"{b:02x}" for b in raw)


def _ip_text(family: int, raw: bytes) -> str:
    return socket.inet_ntop(family, raw)


def _ip_bytes(ip: netaddr.IPAddress) -> bytes:
    return socket.inet_pton(_FAMILIES[int(ip.version)], str(ip))


class NetlinkLinkBackend(_nsenter.KernelNamespaces):
    """:class:`~cnicore.links.LinkBackend` over rtnetlink.

    Thread-safe: operations share no socket. Needs no third-party package.
    """

    name = "netlink"

    def __init__(self, *, peer_names: Callable[[], str] | None = None) -> None:
        self._peer_names = peer_names or random_peer_name

    # -- plumbing -----------------------------------------------------------------------------------

    @contextmanager
    def _socket(self, ns: Namespace, what: str) -> Iterator[Rtnl]:
        """A socket in ``ns``, closed afterwards; kernel refusals become cnicore errors about ``what``."""
        try:
            sock = Rtnl.open(ns.path)
        except CNIError:
            raise
        except OSError as exc:
            raise error_from_errno(exc.errno, what) from exc
        try:
            yield sock
        except CNIError:
            raise
        except OSError as exc:
            raise error_from_errno(exc.errno, what) from exc
        except (struct.error, ValueError, IndexError) as exc:
            raise InternalError(f"{what}: cannot read the kernel's answer: {exc}") from exc
        finally:
            sock.close()

    @staticmethod
    def _get(sock: Rtnl, name: str) -> _LinkMessage:
        try:
            replies = sock.request(_RTM_GETLINK, _ifinfomsg() + _attr_str(_IFLA_IFNAME, name) + _NO_STATS)
        except _NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                raise NotFoundError(f"link {go_quote(name)} not found") from exc
            raise
        if not replies:
            raise NotFoundError(f"link {go_quote(name)} not found")
        return _LinkMessage(replies[0][1])

    @staticmethod
    def _get_index(sock: Rtnl, index: int) -> _LinkMessage | None:
        try:
            replies = sock.request(_RTM_GETLINK, _ifinfomsg(index=index) + _NO_STATS)
        except _NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        return _LinkMessage(replies[0][1]) if replies else None

    @staticmethod
    def _addresses(sock: Rtnl, index: int = 0) -> list[tuple[int, Address, int]]:
        """(link index, address, IFA flags) of every address (of link ``index`` if not 0)."""
        found = []
        # With strict checking the kernel filters by index itself; older kernels send everything.
        for _kind, payload in sock.request(_RTM_GETADDR, _ifaddrmsg(family=0, index=index), flags=_NLM_F_DUMP):
            family, prefixlen, flags, _scope, link = _ADDRESS.unpack_from(payload)
            if (index and link != index) or family not in _VERSIONS:
                continue
            attrs = _parse_attrs(payload, _ADDRESS.size)
            raw = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)
            if raw is None:
                continue
            if _IFA_FLAGS in attrs:
                flags = _u32(attrs[_IFA_FLAGS])
            found.append((link, Address(ip=_ip_text(family, raw), prefixlen=prefixlen), flags))
        return found

    def _link(self, sock: Rtnl, msg: _LinkMessage) -> Link:
        addresses = [address for _link, address, _flags in self._addresses(sock, msg.index)]
        master = None
        if msg.master:
            found = self._get_index(sock, msg.master)
            master = found.name if found is not None else None
        return _link_of(msg, master, addresses)

    # -- reading ------------------------------------------------------------------------------------

    def get_link(self, ns: Namespace, name: str) -> Link:
        """See :meth:`LinkBackend.get_link`."""
        check_name(name)
        with self._socket(ns, f"get link {name}") as sock:
            return self._link(sock, self._get(sock, name))

    def list_links(self, ns: Namespace) -> tuple[Link, ...]:
        """See :meth:`LinkBackend.list_links`."""
        with self._socket(ns, "list links") as sock:
            messages = [_LinkMessage(payload) for _kind, payload in
                        sock.request(_RTM_GETLINK, _ifinfomsg() + _NO_STATS, flags=_NLM_F_DUMP)]
            names = {msg.index: msg.name for msg in messages}
            addresses: dict[int, list[Address]] = {}
            for link, address, _flags in self._addresses(sock):
                addresses.setdefault(link, []).append(address)
            return links_by_index(_link_of(msg, names.get(msg.master) if msg.master else None,
                                           addresses.get(msg.index, [])) for msg in messages)

    def list_addresses(self, ns: Namespace, name: str) -> tuple[Address, ...]:
        """See :meth:`LinkBackend.list_addresses`."""
        check_name(name)
        with self._socket(ns, f"list addresses of {name}") as sock:
            index = self._get(sock, name).index
            return sorted_addresses(address for _link, address, _flags in self._addresses(sock, index))

    def list_address_states(self, ns: Namespace, name: str) -> tuple[AddressState, ...]:
        """See :meth:`LinkBackend.list_address_states`."""
        check_name(name)
        with self._socket(ns, f"list addresses of {name}") as sock:
            index = self._get(sock, name).index
            states = [AddressState(address=address, tentative=bool(flags & _IFA_F_TENTATIVE),
                                   dad_failed=bool(flags & _IFA_F_DADFAILED))
                      for _link, address, flags in self._addresses(sock, index)]
        return tuple(sorted(states, key=lambda state: address_sort_key(state.address)))

    def list_routes(self, ns: Namespace, *, version: int | None = None, table: int = MAIN_TABLE) -> tuple[Route, ...]:
        """See :meth:`LinkBackend.list_routes`."""
        with self._socket(ns, "list routes") as sock:
            names = {msg.index: msg.name for msg in (
                _LinkMessage(payload) for _kind, payload in
                sock.request(_RTM_GETLINK, _ifinfomsg() + _NO_STATS, flags=_NLM_F_DUMP))}
            routes: list[Route] = []
            for family_version in ([4, 6] if version is None else [version]):
                family = _FAMILIES[family_version]
                for _kind, payload in sock.request(_RTM_GETROUTE, _rtmsg(family=family), flags=_NLM_F_DUMP):
                    routes.extend(route for route in _routes_of(payload, names) if route.table == table)
            return sorted_routes(routes)

    # -- links --------------------------------------------------------------------------------------

    def ensure_bridge(self, ns: Namespace, spec: BridgeSpec) -> Link:
        """See :meth:`LinkBackend.ensure_bridge`."""
        if spec.mtu is not None:
            check_mtu(spec.mtu)
        with self._socket(ns, f"ensure bridge {spec.name}") as sock:
            try:
                msg = self._get(sock, spec.name)
            except NotFoundError:
                data = [_attr_str(_IFLA_INFO_KIND, "bridge")]
                if spec.vlan_filtering:
                    data.append(_nested(_IFLA_INFO_DATA, _attr_u8(_IFLA_BR_VLAN_FILTERING, 1)))
                body = _ifinfomsg() + _attr_str(_IFLA_IFNAME, spec.name) + _nested(_IFLA_LINKINFO, *data)
                if spec.mtu is not None:
                    body += _attr_u32(_IFLA_MTU, spec.mtu)
                try:
                    sock.request(_RTM_NEWLINK, body, flags=_CREATE)
                except _NetlinkError as exc:
                    # Someone else made it between our look and our add: fine, it is checked below.
                    if exc.errno != errno.EEXIST:
                        raise
                msg = self._get(sock, spec.name)
            if _kind_of(msg) != "bridge":
                raise not_a_bridge(spec.name)
            wanted = _IFF_UP | (_IFF_PROMISC if spec.promiscuous else 0)
            if msg.flags & wanted != wanted:
                sock.request(_RTM_SETLINK, _ifinfomsg(index=msg.index, flags=wanted, change=wanted), flags=_ACKED)
                msg = self._get(sock, spec.name)
            return self._link(sock, msg)

    def create_veth(
        self,
        container_ns: Namespace,
        name: str,
        host_ns: Namespace,
        *,
        mtu: int | None = None,
        container_mac: str | None = None,
    ) -> VethPair:
        """See :meth:`LinkBackend.create_veth`."""
        check_name(name)
        mac = check_mac(container_mac) if container_mac is not None else None
        if mtu is not None:
            check_mtu(mtu)
        host_fd = _nsenter.open_namespace_fd(host_ns)
        try:
            with self._socket(container_ns, f"create veth {name}") as sock:
                peer_name, container = self._add_veth(sock, name, host_fd, mtu, mac)
        finally:
            os.close(host_fd)
        return VethPair(container=container, host=self.get_link(host_ns, peer_name))

    def _add_veth(self, sock: Rtnl, name: str, host_fd: int, mtu: int | None,
                  mac: str | None) -> tuple[str, Link]:
        """Create the pair from inside the container namespace; the peer name and the container end."""
        peer_name = ""
        for _ in range(PEER_NAME_ATTEMPTS):
            peer_name = check_name(self._peer_names())
            # The peer is born in the host namespace (IFLA_NET_NS_FD on the peer) while the
            # container end is born here: nothing is created in one place and moved.
            peer = _ifinfomsg() + _attr_str(_IFLA_IFNAME, peer_name) + _attr_u32(_IFLA_NET_NS_FD, host_fd)
            body = _ifinfomsg() + _attr_str(_IFLA_IFNAME, name)
            # Both ends without a transmit queue length, as the reference makes them (see VETH_TXQUEUELEN).
            peer += _attr_u32(_IFLA_TXQLEN, VETH_TXQUEUELEN)
            body += _attr_u32(_IFLA_TXQLEN, VETH_TXQUEUELEN)
            if mtu is not None:
                peer += _attr_u32(_IFLA_MTU, mtu)
                body += _attr_u32(_IFLA_MTU, mtu)
            if mac is not None:
                body += _attr(_IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
            body += _nested(_IFLA_LINKINFO, _attr_str(_IFLA_INFO_KIND, "veth"),
                           _nested(_IFLA_INFO_DATA, _attr(_VETH_INFO_PEER, peer)))
            try:
                sock.request(_RTM_NEWLINK, body, flags=_CREATE)
                return peer_name, self._link(sock, self._get(sock, name))
            except _NetlinkError as exc:
                if exc.errno != errno.EEXIST:
                    raise
                try:
                    self._get(sock, name)
                except NotFoundError:
                    continue  # the host name was taken: draw another, as the reference does
                raise veth_exists(name, peer_name) from exc
        raise veth_exists(name, peer_name)

    def delete_link(self, ns: Namespace, name: str) -> None:
        """See :meth:`LinkBackend.delete_link`."""
        check_name(name)
        with self._socket(ns, f"delete link {name}") as sock:
            try:
                sock.request(_RTM_DELLINK, _ifinfomsg() + _attr_str(_IFLA_IFNAME, name), flags=_ACKED)
            except _NetlinkError as exc:
                if exc.errno == errno.ENODEV:
                    raise NotFoundError(f"link {go_quote(name)} not found") from exc
                raise

    def _set(self, ns: Namespace, name: str, what: str, *, flags: int = 0, change: int = 0,
             attrs: bytes = b"") -> None:
        check_name(name)
        with self._socket(ns, f"{what} {name}") as sock:
            body = _ifinfomsg(flags=flags, change=change) + _attr_str(_IFLA_IFNAME, name) + attrs
            try:
                sock.request(_RTM_SETLINK, body, flags=_ACKED)
            except _NetlinkError as exc:
                if exc.errno == errno.ENODEV:
                    raise NotFoundError(f"link {go_quote(name)} not found") from exc
                raise

    def set_link_up(self, ns: Namespace, name: str, up: bool = True) -> None:
        """See :meth:`LinkBackend.set_link_up`."""
        self._set(ns, name, "set up" if up else "set down", flags=_IFF_UP if up else 0, change=_IFF_UP)

    def set_master(self, ns: Namespace, name: str, master: str | None) -> None:
        """See :meth:`LinkBackend.set_master`."""
        check_name(name)
        with self._socket(ns, f"set master of {name}") as sock:
            index = self._get(sock, name).index
            master_index = self._get(sock, master).index if master is not None else 0
            sock.request(_RTM_SETLINK, _ifinfomsg(index=index) + _attr_u32(_IFLA_MASTER, master_index), flags=_ACKED)

    def _port(self, sock: Rtnl, name: str) -> _LinkMessage:
        msg = self._get(sock, name)
        if not msg.master:
            raise NotFoundError(f"link {go_quote(name)} is not a bridge port")
        return msg

    def _set_port_flag(self, ns: Namespace, name: str, what: str, kind: int, on: bool) -> None:
        check_name(name)
        with self._socket(ns, f"{what} {name}") as sock:
            index = self._port(sock, name).index
            body = _ifinfomsg(family=_AF_BRIDGE, index=index) + _nested(_IFLA_PROTINFO, _attr_u8(kind, 1 if on else 0))
            sock.request(_RTM_SETLINK, body, flags=_ACKED)

    def set_hairpin(self, ns: Namespace, name: str, on: bool) -> None:
        """See :meth:`LinkBackend.set_hairpin`."""
        self._set_port_flag(ns, name, "set hairpin on", _IFLA_BRPORT_MODE, on)

    def set_port_isolation(self, ns: Namespace, name: str, on: bool) -> None:
        """See :meth:`LinkBackend.set_port_isolation`."""
        self._set_port_flag(ns, name, "set isolation on", _IFLA_BRPORT_ISOLATED, on)

    def set_port_vlans(self, ns: Namespace, name: str, *, remove: tuple[int, ...] = (),
                       add: tuple[PortVlan, ...] = ()) -> None:
        """See :meth:`LinkBackend.set_port_vlans`."""
        check_name(name)
        for vid in remove:
            PortVlan(vid=vid)
        with self._socket(ns, f"set VLANs of {name}") as sock:
            index = self._port(sock, name).index
            present = {entry.vid for entry in _port_vlans(sock, index)}
            for vid in remove:
                # The kernel answers ENOENT for a VLAN the port lacks: the port's contract makes that fine.
                if vid in present:
                    sock.request(_RTM_DELLINK, _vlan_request(index, vid, 0), flags=_ACKED)
            for entry in add:
                flags = (_BRIDGE_VLAN_INFO_PVID if entry.pvid else 0) | (
                    _BRIDGE_VLAN_INFO_UNTAGGED if entry.untagged else 0)
                sock.request(_RTM_SETLINK, _vlan_request(index, entry.vid, flags), flags=_ACKED)

    def list_port_vlans(self, ns: Namespace, name: str) -> tuple[PortVlan, ...]:
        """See :meth:`LinkBackend.list_port_vlans`."""
        check_name(name)
        with self._socket(ns, f"list VLANs of {name}") as sock:
            return _port_vlans(sock, self._port(sock, name).index)

    def set_mac(self, ns: Namespace, name: str, mac: str) -> None:
        """See :meth:`LinkBackend.set_mac`."""
        raw = bytes.fromhex(check_mac(mac).replace(":", ""))
        self._set(ns, name, "set MAC of", attrs=_attr(_IFLA_ADDRESS, raw))

    def set_mtu(self, ns: Namespace, name: str, mtu: int) -> None:
        """See :meth:`LinkBackend.set_mtu`."""
        self._set(ns, name, "set MTU of", attrs=_attr_u32(_IFLA_MTU, check_mtu(mtu)))

    def set_link_options(self, ns: Namespace, name: str, *, promiscuous: bool | None = None,
                         allmulti: bool | None = None, txqueuelen: int | None = None,
                         alias: str | None = None) -> None:
        """See :meth:`LinkBackend.set_link_options` (one RTM_SETLINK for everything given)."""
        check_link_options(txqueuelen, alias)
        flags = change = 0
        for wanted, bit in ((promiscuous, _IFF_PROMISC), (allmulti, _IFF_ALLMULTI)):
            if wanted is not None:
                change |= bit
                flags |= bit if wanted else 0
        attrs = b""
        if txqueuelen is not None:
            attrs += _attr_u32(_IFLA_TXQLEN, txqueuelen)
        if alias is not None:
            # An empty alias (no NUL) is how the kernel is told to drop it.
            attrs += _attr(_IFLA_IFALIAS, alias.encode("utf-8", "surrogateescape"))
        if change or attrs:
            self._set(ns, name, "set options of", flags=flags, change=change, attrs=attrs)
        else:
            self.get_link(ns, name)  # nothing to change, but a missing link is still an error

    # -- addresses and routes -----------------------------------------------------------------------

    def _address(self, ns: Namespace, name: str, kind: int, address: Address) -> None:
        check_name(name)
        command = "add" if kind == _RTM_NEWADDR else "delete"
        with self._socket(ns, f"{command} address {address} on {name}") as sock:
            index = self._get(sock, name).index
            family = _FAMILIES[address.version]
            # As `ip address add` does: a 127/8 address gets host scope.
            scope = 254 if address.version == 4 and address.ip in _LOOPBACK_NET else 0
            raw = _ip_bytes(address.ip)
            body = _ifaddrmsg(family=family, prefixlen=address.prefixlen, scope=scope, index=index)
            body += _attr(_IFA_LOCAL, raw) + _attr(_IFA_ADDRESS, raw)
            if kind == _RTM_NEWADDR and address.version == 4 and address.prefixlen < 31:
                # The broadcast address the reference (and `ip ... brd +`) sets.
                broadcast = netaddr.IPNetwork(f"{address.ip}/{address.prefixlen}").broadcast
                body += _attr(_IFA_BROADCAST, _ip_bytes(broadcast))
            sock.request(kind, body, flags=_CREATE if kind == _RTM_NEWADDR else _ACKED)

    def add_address(self, ns: Namespace, name: str, address: Address) -> None:
        """See :meth:`LinkBackend.add_address`."""
        self._address(ns, name, _RTM_NEWADDR, address)

    def delete_address(self, ns: Namespace, name: str, address: Address) -> None:
        """See :meth:`LinkBackend.delete_address`."""
        self._address(ns, name, _RTM_DELADDR, address)

    def _route_body(self, sock: Rtnl, route: Route, deleting: bool) -> bytes:
        family = _FAMILIES[route.version]
        if deleting:
            # As `ip route del`: no type or protocol, and (IPv4) "no scope" matches a route of any scope.
            scope = _RT_SCOPE_NOWHERE if route.version == 4 else 0
            header = _rtmsg(family=family, dst_len=route.dst.prefixlen, scope=scope,
                           table=route.table if route.table < 256 else _RT_TABLE_COMPAT)
        else:
            scope = _SCOPE_NUMBERS[route.scope] if route.version == 4 else 0
            header = _rtmsg(family=family, dst_len=route.dst.prefixlen, scope=scope, protocol=_RTPROT_BOOT,
                           kind=_RTN_UNICAST, table=route.table if route.table < 256 else _RT_TABLE_COMPAT)
        body = header + _attr(_RTA_DST, _ip_bytes(route.dst.network)) + _attr_u32(_RTA_TABLE, route.table)
        if route.device is not None:
            body += _attr_u32(_RTA_OIF, self._get(sock, route.device).index)
        if route.gateway is not None:
            body += _attr(_RTA_GATEWAY, _ip_bytes(route.gateway))
        if route.metric is not None:
            body += _attr_u32(_RTA_PRIORITY, route.metric)
        if route.source is not None and not deleting:
            body += _attr(_RTA_PREFSRC, _ip_bytes(route.source))
        return body

    def add_route(self, ns: Namespace, route: Route) -> None:
        """See :meth:`LinkBackend.add_route`."""
        with self._socket(ns, f"add route to {route.dst}") as sock:
            sock.request(_RTM_NEWROUTE, self._route_body(sock, route, deleting=False), flags=_CREATE_ROUTE)

    def delete_route(self, ns: Namespace, route: Route) -> None:
        """See :meth:`LinkBackend.delete_route`."""
        with self._socket(ns, f"delete route to {route.dst}") as sock:
            sock.request(_RTM_DELROUTE, self._route_body(sock, route, deleting=True), flags=_ACKED)


def _vlan_request(index: int, vid: int, flags: int) -> bytes:
    """The body of an AF_BRIDGE RTM_SETLINK (add) or RTM_DELLINK (delete) of one port VLAN."""
    return _ifinfomsg(family=_AF_BRIDGE, index=index) + _nested(
        _IFLA_AF_SPEC, _attr(_IFLA_BRIDGE_VLAN_INFO, struct.pack("=HH", flags, vid)))


def _port_vlans(sock: Rtnl, index: int) -> tuple[PortVlan, ...]:
    # AF_BRIDGE dump with RTEXT_FILTER_BRVLAN: one message per port, VLANs in IFLA_AF_SPEC.
    entries: dict[int, PortVlan] = {}
    request = _ifinfomsg(family=_AF_BRIDGE) + _attr_u32(_IFLA_EXT_MASK, _RTEXT_FILTER_BRVLAN)
    for _kind, payload in sock.request(_RTM_GETLINK, request, flags=_NLM_F_DUMP):
        msg = _LinkMessage(payload)
        spec = msg.attrs.get(_IFLA_AF_SPEC)
        if msg.index != index or spec is None:
            continue
        for kind, info in _iter_attrs(spec):
            if kind == _IFLA_BRIDGE_VLAN_INFO:
                flags, vid = struct.unpack_from("=HH", info)
                entries[vid] = PortVlan(vid=vid, pvid=bool(flags & _BRIDGE_VLAN_INFO_PVID),
                                        untagged=bool(flags & _BRIDGE_VLAN_INFO_UNTAGGED))
    return tuple(entries[vid] for vid in sorted(entries))


def _kind_of(msg: _LinkMessage) -> str:
    if msg.kind_type == _ARPHRD_LOOPBACK:
        return "loopback"
    kind = msg.info().get(_IFLA_INFO_KIND)
    return _text(kind) if kind else "device"


def _link_of(msg: _LinkMessage, master: str | None, addresses: list[Address]) -> Link:
    info = msg.info()
    data = _parse_attrs(info[_IFLA_INFO_DATA]) if _IFLA_INFO_DATA in info else {}
    slave = _parse_attrs(info[_IFLA_INFO_SLAVE_DATA]) if _IFLA_INFO_SLAVE_DATA in info else {}
    kind = _kind_of(msg)
    oper = _u8(msg.attrs.get(_IFLA_OPERSTATE))
    return Link(
        index=msg.index,
        name=msg.name,
        kind=kind,
        mac=_mac_text(msg.attrs.get(_IFLA_ADDRESS)),
        mtu=_u32(msg.attrs.get(_IFLA_MTU)),
        admin_up=bool(msg.flags & _IFF_UP),
        carrier=bool(msg.flags & _IFF_LOWER_UP),
        oper_state=_OPER_STATES[oper] if oper < len(_OPER_STATES) else "unknown",
        master=master,
        promiscuous=bool(msg.flags & _IFF_PROMISC),
        allmulti=bool(msg.flags & _IFF_ALLMULTI),
        txqueuelen=_u32(msg.attrs.get(_IFLA_TXQLEN)),
        alias=_text(msg.attrs.get(_IFLA_IFALIAS) or b""),
        vlan_filtering=kind == "bridge" and bool(_u8(data.get(_IFLA_BR_VLAN_FILTERING))),
        hairpin=bool(_u8(slave.get(_IFLA_BRPORT_MODE))),
        isolated=bool(_u8(slave.get(_IFLA_BRPORT_ISOLATED))),
        addresses=sorted_addresses(addresses),
    )


def _routes_of(payload: bytes, names: dict[int, str]) -> list[Route]:
    """The unicast route in an RTM_NEWROUTE message: one per nexthop of a multipath route.

    The kernel merges IPv6 routes to one destination with one metric through different
    gateways into one multipath route (as for the default routes of a container on two
    networks); the port lists each nexthop as a route of its own.
    """
    family, dst_len, _src_len, _tos, table, _protocol, scope, kind, _flags = struct.unpack_from("=BBBBBBBBI", payload)
    attrs = _parse_attrs(payload, 12)
    if kind != _RTN_UNICAST or family not in _VERSIONS:
        return []
    version = _VERSIONS[family]
    dst = _ip_text(family, attrs[_RTA_DST]) if _RTA_DST in attrs else ("0.0.0.0" if version == 4 else "::")
    source = attrs.get(_RTA_PREFSRC)
    hops: list[tuple[int | None, bytes | None]] = []
    multipath = attrs.get(_RTA_MULTIPATH)
    if multipath is None:
        oif = attrs.get(_RTA_OIF)
        hops.append((_u32(oif) if oif is not None else None, attrs.get(_RTA_GATEWAY)))
    else:
        offset = 0
        while offset + _RTNEXTHOP.size <= len(multipath):
            length, _hop_flags, _hops, index = _RTNEXTHOP.unpack_from(multipath, offset)
            if length < _RTNEXTHOP.size:
                break
            hop_attrs = _parse_attrs(multipath[offset:offset + length], _RTNEXTHOP.size)
            hops.append((index, hop_attrs.get(_RTA_GATEWAY)))
            offset += _pad(length)
    return [Route(
        dst=netaddr.IPNetwork(f"{dst}/{dst_len}"),
        gateway=_ip_text(family, gateway) if gateway else None,
        device=names.get(oif) if oif is not None else None,
        metric=_u32(attrs.get(_RTA_PRIORITY)),
        table=_u32(attrs[_RTA_TABLE]) if _RTA_TABLE in attrs else table,
        scope=_SCOPES.get(scope, "universe") if version == 4 else "universe",  # type: ignore[arg-type]
        source=_ip_text(family, source) if source else None,
    ) for oif, gateway in hops]
