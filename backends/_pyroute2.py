"""The pyroute2 link backend: rtnetlink through the pyroute2 library (the ``pyroute2`` extra).

The same operations as :mod:`._netlink`, with the messages built and read by
pyroute2 instead of by hand: a second implementation of the port over netlink,
useful where pyroute2 is already the way a deployment talks to the kernel (and
as a cross-check of the hand-made messages). It is slower: pyroute2 sets up an
event loop for every socket.

pyroute2 is imported when a backend object is made, never when
``cnicore.backends`` is imported: a plugin that is exec'd once per container
pays for it only if it uses it.

Sockets are kept, as pyroute2 intends: one ``IPRoute`` per namespace (and per
calling thread, since pyroute2 binds its transports to the thread that uses
them), made on first use and reused by every later operation there. A socket
holds its namespace alive, so before each operation the backend drops the
sockets of namespaces whose path is gone or now names another namespace (a
namespace deleted meanwhile lives on only until the backend's next operation or
:meth:`Pyroute2LinkBackend.close`), and it keeps a few at most (the least
recently used go first). The socket is made inside the namespace by the one
``setns`` helper (:mod:`._setns`: a short-lived thread joins the namespace) and
handed to ``IPRoute(use_socket=...)``: pyroute2's own ``netns=`` forks a process
per socket, which costs some 25 ms here where the thread costs well under one,
and it creates a namespace that does not exist unless told otherwise.

Requests name what they need (a link by name or index, the addresses of one
link) instead of dumping tables: pyroute2 takes about a millisecond per request.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

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
    check_veth_request,
    error_from_errno,
    links_by_index,
    namespace_gone,
    not_a_bridge,
    random_peer_name,
    sorted_addresses,
    sorted_routes,
    veth_exists,
)
from ._setns import run_in_netns

__all__ = ["Pyroute2LinkBackend"]

_T = TypeVar("_T")
_EEXIST = 17
_ENODEV = 19
_AF_INET = 2
_AF_INET6 = 10
_IFF_UP = 0x1
_IFF_PROMISC = 0x100
_IFF_ALLMULTI = 0x200
_IFF_LOWER_UP = 0x10000
_ARPHRD_LOOPBACK = 772
_RTN_UNICAST = 1
# What the reference's routes carry (vishvananda/netlink's default, `ip route` prints no proto).
_RTPROT_BOOT = 3
# RTM_NEWROUTE with NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE and no NLM_F_EXCL: how the reference adds routes
# (netlink.RouteAddEcmp), so a second route to a destination through another gateway or device is accepted.
# pyroute2's "add" would send NLM_F_EXCL; its "append" puts IPv4 routes after the existing ones instead.
_ADD_ROUTE = (24, 0x1 | 0x4 | 0x400)
_SCOPES = {0: "universe", 253: "link", 254: "host"}
_SCOPE_NUMBERS = {name: number for number, name in _SCOPES.items()}
_RT_SCOPE_HOST = 254
_RT_SCOPE_NOWHERE = 255
# include/uapi/linux/if_addr.h
_IFA_F_DADFAILED = 0x08
_IFA_F_TENTATIVE = 0x40
# include/uapi/linux/if_bridge.h, struct bridge_vlan_info flags.
_BRIDGE_VLAN_INFO_PVID = 0x2
_BRIDGE_VLAN_INFO_UNTAGGED = 0x4
_LOOPBACK_NET = netaddr.IPNetwork("127.0.0.0/8")
_OWN_NAMESPACE = "/proc/thread-self/ns/net"
#: How many sockets (namespace and thread) the backend keeps open at most.
MAX_SOCKETS = 8


def _identity(path: str) -> tuple[int, int]:
    """The namespace at ``path`` as (device, inode); NamespaceNotFoundError when the path is gone."""
    try:
        found = os.stat(path)
    except FileNotFoundError as exc:
        raise namespace_gone(path) from exc
    except OSError as exc:
        raise error_from_errno(exc.errno, f"open netns {path}") from exc
    return found.st_dev, found.st_ino


def _netlink_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)


class Pyroute2LinkBackend(_nsenter.KernelNamespaces):
    """:class:`~cnicore.links.LinkBackend` over rtnetlink with pyroute2.

    Thread-safe: each thread has sockets of its own. Raises :class:`InternalError` at
    construction if pyroute2 is not installed (``pip install cnicore[pyroute2]``).
    :meth:`close` closes the sockets kept (see the module docstring).
    """

    name = "pyroute2"

    def __init__(self, *, peer_names: Callable[[], str] | None = None) -> None:
        try:
            # Through import_module: pyroute2 ships no type information, and is optional.
            iproute_module = importlib.import_module("pyroute2.iproute")
            exceptions_module = importlib.import_module("pyroute2.netlink.exceptions")
        except ImportError as exc:
            raise InternalError("the pyroute2 backend needs pyroute2 (install cnicore[pyroute2])") from exc
        self._iproute_class: Any = iproute_module.IPRoute
        self._netlink_error: type[Exception] = exceptions_module.NetlinkError
        self._peer_names = peer_names or random_peer_name
        # (namespace identity, thread) -> (namespace path, IPRoute); most recently used last.
        self._sockets: OrderedDict[tuple[int, int, int], tuple[str, Any]] = OrderedDict()
        self._sockets_lock = threading.Lock()

    def close(self) -> None:
        """Close every socket the backend keeps. Idempotent; the backend stays usable."""
        with self._sockets_lock:
            kept = list(self._sockets.values())
            self._sockets.clear()
        for _path, ipr in kept:
            _close_quietly(ipr)

    def _socket_for(self, path: str | None) -> Any:
        """The thread's IPRoute in the namespace at ``path`` (None: the calling thread's), made if needed.

        Drops first the sockets whose namespace is gone or replaced, and the least
        recently used beyond :data:`MAX_SOCKETS`.
        """
        where = path if path is not None else _OWN_NAMESPACE
        device, inode = _identity(where)
        key = (device, inode, threading.get_ident())
        stale: list[Any] = []
        with self._sockets_lock:
            for other, (other_path, _ipr) in list(self._sockets.items()):
                if other == key:
                    continue
                try:
                    alive = _identity(other_path)[:2] == other[:2] if other_path != _OWN_NAMESPACE else True
                except CNIError:
                    alive = False
                if not alive:
                    stale.append(self._sockets.pop(other)[1])
            entry = self._sockets.get(key)
            if entry is not None:
                self._sockets.move_to_end(key)
        for ipr in stale:
            _close_quietly(ipr)
        if entry is not None:
            return entry[1]
        made = self._iproute_class(groups=0, use_socket=run_in_netns(path, _netlink_socket))
        evicted: list[Any] = []
        with self._sockets_lock:
            self._sockets[key] = (where, made)
            while len(self._sockets) > MAX_SOCKETS:
                evicted.append(self._sockets.popitem(last=False)[1][1])
        for ipr in evicted:
            _close_quietly(ipr)
        return made

    # -- plumbing -----------------------------------------------------------------------------------

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except CNIError:
            raise
        except self._netlink_error as exc:
            raise error_from_errno(getattr(exc, "code", None), what) from exc
        except OSError as exc:
            raise error_from_errno(exc.errno, what) from exc
        except Exception as exc:
            # pyroute2 has other failure types (dump interrupted, decoding errors...): none may cross the port.
            raise InternalError(f"{what}: {type(exc).__name__}: {exc}") from exc

    def _run(self, ns: Namespace, what: str, func: Callable[[Any], _T]) -> _T:
        """Run ``func(ipr)`` with the thread's socket in ``ns``; translate what it raises."""
        with self._translated(what):
            # groups=0: no multicast subscriptions, so no notifications queue up between requests.
            return func(self._socket_for(ns.path))

    def _get(self, ipr: Any, name: str) -> Any:
        """The link message of ``name`` (one request by name, no dump); NotFoundError if missing."""
        try:
            found = ipr.link("get", ifname=name)
        except self._netlink_error as exc:
            if getattr(exc, "code", None) == _ENODEV:
                raise NotFoundError(f"link {go_quote(name)} not found") from exc
            raise
        if not found:
            raise NotFoundError(f"link {go_quote(name)} not found")
        return found[0]

    def _index(self, ipr: Any, name: str) -> int:
        return int(self._get(ipr, name)["index"])

    def _port_index(self, ipr: Any, name: str) -> int:
        msg = self._get(ipr, name)
        if not msg.get_attr("IFLA_MASTER"):
            raise NotFoundError(f"link {go_quote(name)} is not a bridge port")
        return int(msg["index"])

    # -- reading ------------------------------------------------------------------------------------

    @staticmethod
    def _addresses(ipr: Any, index: int | None = None) -> list[tuple[int, Address, int]]:
        """(link index, address, IFA flags) of every address (of link ``index`` if given)."""
        found = []
        for msg in ipr.get_addr() if index is None else ipr.get_addr(index=index):
            if int(msg["family"]) not in (_AF_INET, _AF_INET6):
                continue
            # IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on point-to-point links).
            ip = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            if ip is None:
                continue
            flags = msg.get_attr("IFA_FLAGS")
            found.append((int(msg["index"]), Address(ip=ip, prefixlen=int(msg["prefixlen"])),
                          int(flags if flags is not None else msg["flags"])))
        return found

    def _link(self, ipr: Any, msg: Any) -> Link:
        """The port's view of one link message: its addresses and its master's name asked for alone."""
        index = int(msg["index"])
        addresses = [address for _link, address, _flags in self._addresses(ipr, index)]
        master = msg.get_attr("IFLA_MASTER")
        names: dict[int, str] = {}
        if master:
            with contextlib.suppress(self._netlink_error):  # the master went meanwhile
                names[int(master)] = ipr.get_links(int(master))[0].get_attr("IFLA_IFNAME")
        return _link_of(msg, names, addresses)

    def _links(self, ipr: Any, index: int | None = None) -> tuple[Link, ...]:
        every = list(ipr.get_links())
        names = {int(m["index"]): m.get_attr("IFLA_IFNAME") for m in every}
        messages = every if index is None else [m for m in every if int(m["index"]) == index]
        if index is not None and not messages:
            raise NotFoundError(f"link with index {index} not found")
        addresses: dict[int, list[Address]] = {}
        for link, address, _flags in self._addresses(ipr, index):
            addresses.setdefault(link, []).append(address)
        return links_by_index(_link_of(m, names, addresses.get(int(m["index"]), [])) for m in messages)

    def get_link(self, ns: Namespace, name: str) -> Link:
        """See :meth:`LinkBackend.get_link`."""
        check_name(name)
        return self._run(ns, f"get link {name}", lambda ipr: self._link(ipr, self._get(ipr, name)))

    def list_links(self, ns: Namespace) -> tuple[Link, ...]:
        """See :meth:`LinkBackend.list_links`."""
        return self._run(ns, "list links", self._links)

    def list_addresses(self, ns: Namespace, name: str) -> tuple[Address, ...]:
        """See :meth:`LinkBackend.list_addresses`."""
        check_name(name)
        return self._run(ns, f"list addresses of {name}", lambda ipr: sorted_addresses(
            address for _link, address, _flags in self._addresses(ipr, self._index(ipr, name))))

    def list_address_states(self, ns: Namespace, name: str) -> tuple[AddressState, ...]:
        """See :meth:`LinkBackend.list_address_states`."""
        check_name(name)

        def body(ipr: Any) -> tuple[AddressState, ...]:
            states = [AddressState(address=address, tentative=bool(flags & _IFA_F_TENTATIVE),
                                   dad_failed=bool(flags & _IFA_F_DADFAILED))
                      for _link, address, flags in self._addresses(ipr, self._index(ipr, name))]
            return tuple(sorted(states, key=lambda state: address_sort_key(state.address)))

        return self._run(ns, f"list addresses of {name}", body)

    def list_routes(self, ns: Namespace, *, version: int | None = None, table: int = MAIN_TABLE) -> tuple[Route, ...]:
        """See :meth:`LinkBackend.list_routes`."""

        def body(ipr: Any) -> tuple[Route, ...]:
            names = {int(m["index"]): m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
            families = [_AF_INET, _AF_INET6] if version is None else [_AF_INET if version == 4 else _AF_INET6]
            routes: list[Route] = []
            for family in families:
                for msg in ipr.get_routes(family=family):
                    routes.extend(route for route in _routes_of(msg, names) if route.table == table)
            return sorted_routes(routes)

        return self._run(ns, "list routes", body)

    # -- links --------------------------------------------------------------------------------------

    def ensure_bridge(self, ns: Namespace, spec: BridgeSpec) -> Link:
        """See :meth:`LinkBackend.ensure_bridge`."""
        if spec.mtu is not None:
            check_mtu(spec.mtu)

        def body(ipr: Any) -> Link:
            try:
                self._get(ipr, spec.name)
                missing = False
            except NotFoundError:
                missing = True
            if missing:
                options: dict[str, Any] = {"ifname": spec.name, "kind": "bridge"}
                if spec.mtu is not None:
                    options["mtu"] = spec.mtu
                if spec.vlan_filtering:
                    options["br_vlan_filtering"] = 1
                try:
                    ipr.link("add", **options)
                except self._netlink_error as exc:
                    # Someone else made it between our look and our add: fine, it is checked below.
                    if getattr(exc, "code", None) != _EEXIST:
                        raise
            msg = self._get(ipr, spec.name)
            index = int(msg["index"])
            if _kind_of(msg) != "bridge":
                raise not_a_bridge(spec.name)
            wanted = _IFF_UP | (_IFF_PROMISC if spec.promiscuous else 0)
            if int(msg["flags"]) & wanted != wanted:
                ipr.link("set", index=index, flags=wanted, change=wanted)
                msg = self._get(ipr, spec.name)
            return self._link(ipr, msg)

        return self._run(ns, f"ensure bridge {spec.name}", body)

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
        mac = check_veth_request(name, mtu, container_mac)
        host_fd = _nsenter.open_namespace_fd(host_ns)
        try:
            peer, container = self._run(container_ns, f"create veth {name}",
                                        lambda ipr: self._add_veth(ipr, name, host_fd, mtu, mac))
        finally:
            os.close(host_fd)
        return VethPair(container=container, host=self.get_link(host_ns, peer))

    def _add_veth(self, ipr: Any, name: str, host_fd: int, mtu: int | None, mac: str | None) -> tuple[str, Link]:
        """Create the pair from inside the container namespace; the peer name and the container end."""
        peer_name = ""
        for _ in range(PEER_NAME_ATTEMPTS):
            peer_name = check_name(self._peer_names())
            # The peer is born in the host namespace (IFLA_NET_NS_FD on the peer) while the
            # container end is born here: nothing is created in one place and moved.
            peer: dict[str, Any] = {"ifname": peer_name, "net_ns_fd": host_fd, "txqlen": VETH_TXQUEUELEN}
            options: dict[str, Any] = {"ifname": name, "kind": "veth", "peer": peer, "txqlen": VETH_TXQUEUELEN}
            if mtu is not None:
                options["mtu"] = mtu
                peer["mtu"] = mtu
            if mac is not None:
                options["address"] = mac
            try:
                ipr.link("add", **options)
                return peer_name, self._link(ipr, self._get(ipr, name))
            except self._netlink_error as exc:
                if getattr(exc, "code", None) != _EEXIST:
                    raise
                try:
                    self._get(ipr, name)
                except NotFoundError:
                    continue  # the host name was taken: draw another, as the reference does
                raise veth_exists(name, peer_name) from exc
        raise veth_exists(name, peer_name)

    def delete_link(self, ns: Namespace, name: str) -> None:
        """See :meth:`LinkBackend.delete_link`."""
        check_name(name)
        self._run(ns, f"delete link {name}", lambda ipr: ipr.link("del", index=self._index(ipr, name)))

    def _set(self, ns: Namespace, name: str, what: str, **changes: Any) -> None:
        check_name(name)
        self._run(ns, f"{what} {name}", lambda ipr: ipr.link("set", index=self._index(ipr, name), **changes))

    def set_link_up(self, ns: Namespace, name: str, up: bool = True) -> None:
        """See :meth:`LinkBackend.set_link_up`."""
        self._set(ns, name, "set up" if up else "set down", flags=_IFF_UP if up else 0, change=_IFF_UP)

    def set_master(self, ns: Namespace, name: str, master: str | None) -> None:
        """See :meth:`LinkBackend.set_master`."""
        check_name(name)

        def body(ipr: Any) -> None:
            index = self._index(ipr, name)
            master_index = self._index(ipr, master) if master is not None else 0
            ipr.link("set", index=index, master=master_index)

        self._run(ns, f"set master of {name}", body)

    def _set_port_flag(self, ns: Namespace, name: str, what: str, **flag: int) -> None:
        check_name(name)
        self._run(ns, f"{what} {name}", lambda ipr: ipr.brport("set", index=self._port_index(ipr, name), **flag))

    def set_hairpin(self, ns: Namespace, name: str, on: bool) -> None:
        """See :meth:`LinkBackend.set_hairpin`."""
        self._set_port_flag(ns, name, "set hairpin on", mode=1 if on else 0)

    def set_port_isolation(self, ns: Namespace, name: str, on: bool) -> None:
        """See :meth:`LinkBackend.set_port_isolation`."""
        self._set_port_flag(ns, name, "set isolation on", isolated=1 if on else 0)

    def set_port_vlans(self, ns: Namespace, name: str, *, remove: tuple[int, ...] = (),
                       add: tuple[PortVlan, ...] = ()) -> None:
        """See :meth:`LinkBackend.set_port_vlans`."""
        check_name(name)
        for vid in remove:
            PortVlan(vid=vid)

        def body(ipr: Any) -> None:
            index = self._port_index(ipr, name)
            present = {entry.vid for entry in _port_vlans(ipr, index)}
            for vid in remove:
                # The kernel answers ENOENT for a VLAN the port lacks: the port's contract makes that fine.
                if vid in present:
                    ipr.vlan_filter("del", index=index, vlan_info={"vid": vid})
            for entry in add:
                flags = (_BRIDGE_VLAN_INFO_PVID if entry.pvid else 0) | (
                    _BRIDGE_VLAN_INFO_UNTAGGED if entry.untagged else 0)
                ipr.vlan_filter("add", index=index, vlan_info={"vid": entry.vid, "flags": flags})

        self._run(ns, f"set VLANs of {name}", body)

    def list_port_vlans(self, ns: Namespace, name: str) -> tuple[PortVlan, ...]:
        """See :meth:`LinkBackend.list_port_vlans`."""
        check_name(name)
        return self._run(ns, f"list VLANs of {name}", lambda ipr: _port_vlans(ipr, self._port_index(ipr, name)))

    def set_mac(self, ns: Namespace, name: str, mac: str) -> None:
        """See :meth:`LinkBackend.set_mac`."""
        self._set(ns, name, "set MAC of", address=check_mac(mac))

    def set_mtu(self, ns: Namespace, name: str, mtu: int) -> None:
        """See :meth:`LinkBackend.set_mtu`."""
        self._set(ns, name, "set MTU of", mtu=check_mtu(mtu))

    def set_link_options(self, ns: Namespace, name: str, *, promiscuous: bool | None = None,
                         allmulti: bool | None = None, txqueuelen: int | None = None,
                         alias: str | None = None) -> None:
        """See :meth:`LinkBackend.set_link_options` (one request for everything given)."""
        check_link_options(txqueuelen, alias)
        changes: dict[str, Any] = {}
        flags = change = 0
        for wanted, bit in ((promiscuous, _IFF_PROMISC), (allmulti, _IFF_ALLMULTI)):
            if wanted is not None:
                change |= bit
                flags |= bit if wanted else 0
        if change:
            changes.update(flags=flags, change=change)
        if txqueuelen is not None:
            changes["txqlen"] = txqueuelen
        if alias is not None:
            changes["ifalias"] = alias
        if changes:
            self._set(ns, name, "set options of", **changes)
        else:
            self.get_link(ns, name)  # nothing to change, but a missing link is still an error

    # -- addresses and routes -----------------------------------------------------------------------

    def _address(self, ns: Namespace, name: str, command: str, address: Address) -> None:
        check_name(name)
        request: dict[str, Any] = {"address": str(address.ip), "prefixlen": address.prefixlen}
        if address.version == 4 and address.ip in _LOOPBACK_NET:
            request["scope"] = _RT_SCOPE_HOST  # as `ip address add` does for 127/8
        if command == "add" and address.version == 4 and address.prefixlen < 31:
            # The broadcast address the reference (and `ip ... brd +`) sets.
            request["broadcast"] = str(netaddr.IPNetwork(str(address)).broadcast)
        self._run(ns, f"{command} address {address} on {name}",
                  lambda ipr: ipr.addr(command, index=self._index(ipr, name), **request))

    def add_address(self, ns: Namespace, name: str, address: Address) -> None:
        """See :meth:`LinkBackend.add_address`."""
        self._address(ns, name, "add", address)

    def delete_address(self, ns: Namespace, name: str, address: Address) -> None:
        """See :meth:`LinkBackend.delete_address`."""
        self._address(ns, name, "del", address)

    def _route_request(self, ipr: Any, route: Route, deleting: bool) -> dict[str, Any]:
        request: dict[str, Any] = {
            "dst": str(route.dst.network),
            "dst_len": route.dst.prefixlen,
            "table": route.table,
            "family": _AF_INET if route.version == 4 else _AF_INET6,
        }
        if route.device is not None:
            request["oif"] = self._index(ipr, route.device)
        if route.gateway is not None:
            request["gateway"] = str(route.gateway)
        if route.metric is not None:
            request["priority"] = route.metric
        if route.source is not None and not deleting:
            request["prefsrc"] = str(route.source)
        if route.version == 4:
            # Deleting with "no scope" matches a route of any scope, as `ip route del` does.
            request["scope"] = _RT_SCOPE_NOWHERE if deleting else _SCOPE_NUMBERS[route.scope]
        if not deleting:
            request["proto"] = _RTPROT_BOOT
            request["type"] = _RTN_UNICAST
        return request

    def add_route(self, ns: Namespace, route: Route) -> None:
        """See :meth:`LinkBackend.add_route`."""
        self._run(ns, f"add route to {route.dst}",
                  lambda ipr: ipr.route(_ADD_ROUTE, **self._route_request(ipr, route, deleting=False)))

    def delete_route(self, ns: Namespace, route: Route) -> None:
        """See :meth:`LinkBackend.delete_route`."""
        self._run(ns, f"delete route to {route.dst}",
                  lambda ipr: ipr.route("del", **self._route_request(ipr, route, deleting=True)))


def _close_quietly(ipr: Any) -> None:
    # A socket of a namespace that is gone, or one too many: closing it must not fail the operation at hand.
    with contextlib.suppress(Exception):  # pyroute2's failure types vary; nothing is lost by ignoring them
        ipr.close()


def _nested(msg: Any, *path: str) -> Any:
    node = msg
    for name in path:
        if node is None:
            return None
        node = node.get_attr(name)
    return node


def _port_vlans(ipr: Any, index: int) -> tuple[PortVlan, ...]:
    # AF_BRIDGE dump with RTEXT_FILTER_BRVLAN: one message per port, VLANs in IFLA_AF_SPEC.
    entries: dict[int, PortVlan] = {}
    for msg in ipr.get_vlans():
        if int(msg["index"]) != index:
            continue
        spec = msg.get_attr("IFLA_AF_SPEC")
        if spec is None:
            continue
        for info in spec.get_attrs("IFLA_BRIDGE_VLAN_INFO"):
            flags = int(info["flags"])
            vid = int(info["vid"])
            entries[vid] = PortVlan(vid=vid, pvid=bool(flags & _BRIDGE_VLAN_INFO_PVID),
                                    untagged=bool(flags & _BRIDGE_VLAN_INFO_UNTAGGED))
    return tuple(entries[vid] for vid in sorted(entries))


def _kind_of(msg: Any) -> str:
    if int(msg["ifi_type"]) == _ARPHRD_LOOPBACK:
        return "loopback"
    return str(_nested(msg, "IFLA_LINKINFO", "IFLA_INFO_KIND") or "device")


def _link_of(msg: Any, names: dict[int, str], addresses: list[Address]) -> Link:
    flags = int(msg["flags"])
    kind = _kind_of(msg)
    master_index = msg.get_attr("IFLA_MASTER")
    hairpin = _nested(msg, "IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_MODE")
    isolated = _nested(msg, "IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_ISOLATED")
    vlan_filtering = _nested(msg, "IFLA_LINKINFO", "IFLA_INFO_DATA", "IFLA_BR_VLAN_FILTERING")
    return Link(
        index=int(msg["index"]),
        name=msg.get_attr("IFLA_IFNAME"),
        kind=kind,
        mac=msg.get_attr("IFLA_ADDRESS") or "00:00:00:00:00:00",
        mtu=int(msg.get_attr("IFLA_MTU")),
        admin_up=bool(flags & _IFF_UP),
        carrier=bool(flags & _IFF_LOWER_UP),
        oper_state=str(msg.get_attr("IFLA_OPERSTATE") or "unknown").lower(),
        master=names.get(int(master_index)) if master_index else None,
        promiscuous=bool(flags & _IFF_PROMISC),
        allmulti=bool(flags & _IFF_ALLMULTI),
        txqueuelen=int(msg.get_attr("IFLA_TXQLEN") or 0),
        alias=str(msg.get_attr("IFLA_IFALIAS") or "").split("\0", 1)[0],
        vlan_filtering=kind == "bridge" and bool(vlan_filtering),
        hairpin=bool(hairpin),
        isolated=bool(isolated),
        addresses=sorted_addresses(addresses),
    )


def _routes_of(msg: Any, names: dict[int, str]) -> list[Route]:
    """The unicast route in a route message: one per nexthop of a multipath route (see the netlink backend)."""
    if int(msg["type"]) != _RTN_UNICAST:
        return []
    family = 4 if int(msg["family"]) == _AF_INET else 6
    dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if family == 4 else "::")
    table = msg.get_attr("RTA_TABLE")
    multipath = msg.get_attr("RTA_MULTIPATH")
    hops = ([(msg.get_attr("RTA_OIF"), msg.get_attr("RTA_GATEWAY"))] if multipath is None else
            [(hop["oif"], hop.get_attr("RTA_GATEWAY")) for hop in multipath])
    return [Route(
        dst=netaddr.IPNetwork(f"{dst}/{int(msg['dst_len'])}"),
        gateway=gateway,
        device=names.get(int(oif)) if oif is not None else None,
        metric=int(msg.get_attr("RTA_PRIORITY") or 0),
        table=int(table if table is not None else msg["table"]),
        scope=_SCOPES.get(int(msg["scope"]), "universe") if family == 4 else "universe",  # type: ignore[arg-type]
        source=msg.get_attr("RTA_PREFSRC"),
    ) for oif, gateway in hops]
