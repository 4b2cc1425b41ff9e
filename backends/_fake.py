"""The in-memory link backend: a model of the kernel that defines the port's semantics.

:class:`FakeLinkBackend` keeps namespaces, links (loopback, bridge, veth),
addresses, routes and sysctls in memory and raises the errors the kernel would
(name taken, no such device, namespace gone, unreachable gateway...). The real
backends are tested against it operation by operation, so what it does here is
what a plugin may rely on. It is the default where the process lacks
CAP_NET_ADMIN, and the backend of choice for plugin tests.

What is modelled, and why it matters to plugins:

- every namespace has ``lo`` (down, no address); bringing it up adds
  ``127.0.0.1/8`` and ``::1/128``; taking it down drops ``::1``;
- an IPv4 address on an up link brings the kernel's subnet route (scope link,
  ``src`` = the address, metric 0), an IPv6 one a metric-256 route; taking a link
  down drops every route through it and, unless ``keep_addr_on_down``, its IPv6
  addresses; deleting a link drops its addresses and routes, a veth takes its
  peer along and a bridge releases its ports;
- a port that joins a bridge gets the kernel's default VLAN entry (1, PVID,
  untagged) and loses its VLAN table, hairpin and isolation flags on leaving;
- a veth end has carrier when both ends are up; a bridge when one of its ports
  has; a bridge whose MTU was never set follows the smallest MTU of its ports
  (1500 without ports);
- a route is refused only when the very same one (destination, table, metric,
  gateway and device) exists: a second default route through another interface
  is accepted (IPv6 merges such routes into one multipath route, which the port
  lists as one route per next hop);
- a route through a gateway needs a link-scope route to the gateway (an IPv4
  gateway may be one of the namespace's own addresses: the link that got it
  first must then be up); a route straight to a device needs the device up, and
  an IPv6 one IPv6 enabled there;
- per-namespace sysctls with the kernel's defaults; ``ip_forward`` and IPv6
  ``all/forwarding`` propagate to every interface as the kernel's do.

- IPv6 duplicate address detection: an IPv6 address added while DAD is on
  (``accept_dad`` above 0 for the link or ``all``) is tentative until time
  passes, which tests say with :meth:`FakeLinkBackend.complete_dad` (DAD then
  ends on every link with carrier); :meth:`FakeLinkBackend.fail_dad` makes it
  find a duplicate.

Not modelled: IPv6 link-local addresses (the port does not report them),
bridge MAC inheritance, VLAN filtering on the data path (the per-port VLAN
tables are kept, as the kernel keeps them, but no frames flow), IPv4 secondary addresses
(two addresses of one subnet on one link), and routes straight to the loopback
device (the kernel turns some into reject routes).

All methods are thread-safe (one lock for the whole model).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnicore._errors import (
    AlreadyExistsError,
    InternalError,
    InvalidConfigError,
    NotFoundError,
    PermissionDeniedError,
)
from cnicore._gofmt import go_quote
from cnicore.links import (
    HOST_NAMESPACE,
    MAIN_TABLE,
    Address,
    AddressState,
    BridgeSpec,
    Link,
    Namespace,
    PortVlan,
    Route,
    VethPair,
    check_net_sysctl_path,
    check_sysctl_key,
    check_sysctl_value,
)

from ._common import (
    PEER_NAME_ATTEMPTS,
    VETH_TXQUEUELEN,
    check_link_options,
    check_mac,
    check_mtu,
    check_name,
    check_veth_request,
    namespace_gone,
    not_a_bridge,
    random_peer_name,
    sorted_addresses,
    sorted_routes,
    veth_exists,
)

__all__ = ["FakeLinkBackend"]

_DEFAULT_MTU = 1500
_LOOPBACK_MTU = 65536
_IPV6_DEFAULTS = {
    "forwarding": "0",
    "accept_ra": "1",
    "accept_dad": "1",
    "enhanced_dad": "1",
    "disable_ipv6": "0",
    "keep_addr_on_down": "0",
}
_IPV4_DEFAULTS = {"arp_notify": "0", "forwarding": "0", "route_localnet": "0"}
_DEFAULT_TXQUEUELEN = 1000
# Namespace-wide network sysctls beyond the plugins' own, with a new namespace's values: what
# read_net_sysctl/write_net_sysctl know (the kernel has many more; the fake only these few).
_NET_DEFAULTS = {
    "net/core/somaxconn": "4096",
    "net/ipv4/ping_group_range": "1\t0",
    "net/ipv4/ip_local_port_range": "32768\t60999",
}
_LOOPBACK_V4 = Address.parse("127.0.0.1/8")
_LOOPBACK_V6 = Address.parse("::1/128")


@dataclass
class _FakeLink:
    index: int
    name: str
    kind: str
    mac: str
    mtu: int
    admin_up: bool = False
    master: int | None = None
    promiscuous: bool = False
    allmulti: bool = False
    txqueuelen: int = _DEFAULT_TXQUEUELEN
    alias: str = ""
    vlan_filtering: bool = False
    hairpin: bool = False
    isolated: bool = False
    # A bridge port's VLAN table: vid -> (pvid, untagged).
    vlans: dict[int, tuple[bool, bool]] = field(default_factory=dict)
    addresses: list[Address] = field(default_factory=list)
    # IPv6 addresses still in duplicate address detection, and those DAD failed for.
    tentative: set[Address] = field(default_factory=set)
    dad_failed: set[Address] = field(default_factory=set)
    # (namespace key, index) of a veth's other end.
    peer: tuple[str | None, int] | None = None
    mtu_set_by_user: bool = False


@dataclass
class _FakeNamespace:
    key: str | None
    links: dict[int, _FakeLink] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    next_index: int = 1
    # When each (link index, address) was added: the kernel's local routes keep that order.
    address_stamps: dict[tuple[int, Address], int] = field(default_factory=dict)
    next_stamp: int = 0


def _random_mac() -> str:
    # Locally administered, unicast: what the kernel's eth_random_addr gives.
    octets = bytearray(secrets.token_bytes(6))
    octets[0] = (octets[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in octets)


class FakeLinkBackend:
    """An in-memory kernel: namespaces, links, addresses, routes, sysctls.

    The host namespace (``HOST_NAMESPACE``) exists from the start. Other
    namespaces are made with :meth:`add_namespace` (the fake's ``ip netns add``)
    and removed with :meth:`remove_namespace`; a link whose namespace goes away
    disappears with it (and a veth's peer with it, as in the kernel).

    Args:
        peer_names: where host-end names come from (default: ``veth`` + 8 random
            hex digits); tests pass a sequence to force clashes.
    """

    name = "fake"

    def __init__(self, *, peer_names: Callable[[], str] | None = None) -> None:
        self._lock = threading.RLock()
        self._namespaces: dict[str | None, _FakeNamespace] = {}
        self._peer_names = peer_names or random_peer_name
        self._new_namespace(None)

    def export_state(self) -> dict[str, Any]:
        """The whole model as JSON data (lists, dicts, strings, numbers): what :meth:`import_state` takes back."""
        return _export_links(self)

    @classmethod
    def import_state(cls, data: Any) -> FakeLinkBackend:
        """A backend holding the model :meth:`export_state` gave (with the default peer names).

        Raises ValueError (or KeyError, TypeError, a :class:`~cnicore.CNIError` from a value's
        validator) for data that is not such a model.
        """
        return _import_links(data)

    # -- namespaces ---------------------------------------------------------------------------------

    def add_namespace(self, path: str) -> Namespace:
        """Create a namespace reachable at ``path`` (the fake's ``ip netns add``).

        :class:`AlreadyExistsError` if one exists at that path. Not idempotent.
        """
        with self._lock:
            if path in self._namespaces:
                raise AlreadyExistsError(f"namespace {go_quote(path)} already exists")
            self._new_namespace(path)
            return Namespace(path=path)

    def remove_namespace(self, path: str) -> None:
        """Remove the namespace at ``path`` and everything in it (veth peers elsewhere go too).

        :class:`NamespaceNotFoundError` if there is none. Not idempotent.
        """
        with self._lock:
            fns = self._ns(Namespace(path=path))
            for link in list(fns.links.values()):
                if link.index in fns.links:
                    self._delete(fns, link)
            del self._namespaces[path]

    def namespaces(self) -> tuple[str, ...]:
        """Paths of the namespaces other than the host's. Idempotent (read-only)."""
        with self._lock:
            return tuple(sorted(k for k in self._namespaces if k is not None))

    def _new_namespace(self, key: str | None) -> None:
        fns = _FakeNamespace(key=key)
        fns.sysctls["net/ipv4/ip_forward"] = "0"
        fns.sysctls.update(_NET_DEFAULTS)
        for conf in ("all", "default"):
            self._add_conf(fns, conf, from_default=False)
        fns.sysctls["net/ipv6/conf/all/accept_dad"] = "0"
        self._namespaces[key] = fns
        lo = self._add_link(fns, "lo", "loopback", mtu=_LOOPBACK_MTU, mac="00:00:00:00:00:00")
        fns.sysctls["net/ipv6/conf/lo/accept_dad"] = "-1"
        assert lo.index == 1

    def _add_conf(self, fns: _FakeNamespace, conf: str, *, from_default: bool = True) -> None:
        for family, defaults in (("ipv6", _IPV6_DEFAULTS), ("ipv4", _IPV4_DEFAULTS)):
            for setting, value in defaults.items():
                source = f"net/{family}/conf/default/{setting}"
                fns.sysctls[f"net/{family}/conf/{conf}/{setting}"] = (
                    fns.sysctls[source] if from_default else value
                )

    def _ns(self, ns: Namespace) -> _FakeNamespace:
        fns = self._namespaces.get(ns.path)
        if fns is None:
            raise namespace_gone(str(ns.path))
        return fns

    def open_namespace(self, path: str) -> Namespace:
        """See :meth:`LinkBackend.open_namespace`."""
        with self._lock:
            if path not in self._namespaces:
                raise namespace_gone(path)
            return Namespace(path=path)

    def host_namespace(self) -> Namespace:
        """See :meth:`LinkBackend.host_namespace`."""
        return HOST_NAMESPACE

    # -- links --------------------------------------------------------------------------------------

    def _add_link(self, fns: _FakeNamespace, name: str, kind: str, *, mtu: int, mac: str | None = None) -> _FakeLink:
        link = _FakeLink(index=fns.next_index, name=name, kind=kind, mac=mac or _random_mac(), mtu=mtu)
        fns.next_index += 1
        fns.links[link.index] = link
        self._add_conf(fns, name)
        return link

    def _find(self, fns: _FakeNamespace, name: str) -> _FakeLink | None:
        check_name(name)
        for link in fns.links.values():
            if link.name == name:
                return link
        return None

    def _get(self, fns: _FakeNamespace, name: str) -> _FakeLink:
        link = self._find(fns, name)
        if link is None:
            raise NotFoundError(f"link {go_quote(name)} not found in {fns.key or '<host>'}")
        return link

    def _peer(self, link: _FakeLink) -> _FakeLink | None:
        if link.peer is None:
            return None
        key, index = link.peer
        other = self._namespaces.get(key)
        return None if other is None else other.links.get(index)

    def _carrier(self, fns: _FakeNamespace, link: _FakeLink) -> bool:
        if not link.admin_up:
            return False
        if link.kind == "veth":
            peer = self._peer(link)
            return peer is not None and peer.admin_up
        if link.kind == "bridge":
            return any(self._carrier(fns, port) for port in fns.links.values() if port.master == link.index)
        return True

    def _view(self, fns: _FakeNamespace, link: _FakeLink) -> Link:
        carrier = self._carrier(fns, link)
        if not link.admin_up:
            oper = "down"
        elif link.kind == "loopback":
            oper = "unknown"
        elif carrier:
            oper = "up"
        else:
            oper = "lowerlayerdown" if link.kind == "veth" else "down"
        master = fns.links[link.master].name if link.master is not None else None
        return Link(
            index=link.index,
            name=link.name,
            kind=link.kind,
            mac=link.mac,
            mtu=link.mtu,
            admin_up=link.admin_up,
            carrier=carrier,
            oper_state=oper,
            master=master,
            promiscuous=link.promiscuous,
            allmulti=link.allmulti,
            txqueuelen=link.txqueuelen,
            alias=link.alias,
            vlan_filtering=link.vlan_filtering,
            hairpin=link.hairpin,
            isolated=link.isolated,
            addresses=sorted_addresses(link.addresses),
        )

    def ensure_bridge(self, ns: Namespace, spec: BridgeSpec) -> Link:
        """See :meth:`LinkBackend.ensure_bridge`."""
        with self._lock:
            fns = self._ns(ns)
            if spec.mtu is not None:
                check_mtu(spec.mtu)
            link = self._find(fns, spec.name)
            if link is None:
                link = self._add_link(fns, spec.name, "bridge", mtu=spec.mtu or _DEFAULT_MTU)
                link.vlan_filtering = spec.vlan_filtering
            elif link.kind != "bridge":
                raise not_a_bridge(spec.name)
            if spec.promiscuous:
                link.promiscuous = True
            self._set_up(fns, link, True)
            return self._view(fns, link)

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
        with self._lock:
            mac = check_veth_request(name, mtu, container_mac)
            cns = self._ns(container_ns)
            hns = self._ns(host_ns)
            peer_name = ""
            for _ in range(PEER_NAME_ATTEMPTS):
                peer_name = check_name(self._peer_names())
                if self._find(cns, name) is not None:
                    raise veth_exists(name, peer_name)
                if self._find(hns, peer_name) is None:
                    break
            else:
                raise veth_exists(name, peer_name)
            # The kernel registers the peer first, then the container end.
            host = self._add_link(hns, peer_name, "veth", mtu=mtu or _DEFAULT_MTU)
            cont = self._add_link(cns, name, "veth", mtu=mtu or _DEFAULT_MTU, mac=mac)
            host.txqueuelen = cont.txqueuelen = VETH_TXQUEUELEN  # as the real backends make the pair
            host.peer = (cns.key, cont.index)
            cont.peer = (hns.key, host.index)
            return VethPair(container=self._view(cns, cont), host=self._view(hns, host))

    def get_link(self, ns: Namespace, name: str) -> Link:
        """See :meth:`LinkBackend.get_link`."""
        with self._lock:
            fns = self._ns(ns)
            return self._view(fns, self._get(fns, name))

    def list_links(self, ns: Namespace) -> tuple[Link, ...]:
        """See :meth:`LinkBackend.list_links`."""
        with self._lock:
            fns = self._ns(ns)
            return tuple(self._view(fns, fns.links[i]) for i in sorted(fns.links))

    def delete_link(self, ns: Namespace, name: str) -> None:
        """See :meth:`LinkBackend.delete_link`."""
        with self._lock:
            fns = self._ns(ns)
            link = self._get(fns, name)
            if link.kind == "loopback":
                raise InternalError(f"cannot delete {go_quote(name)}: operation not supported")
            self._delete(fns, link)

    def _delete(self, fns: _FakeNamespace, link: _FakeLink) -> None:
        peer = self._peer(link)
        self._drop_link(fns, link)
        if peer is not None and link.peer is not None:
            self._drop_link(self._namespaces[link.peer[0]], peer)

    def _drop_link(self, fns: _FakeNamespace, link: _FakeLink) -> None:
        del fns.links[link.index]
        fns.routes = [r for r in fns.routes if r.device != link.name]
        for key in [k for k in fns.sysctls if f"/conf/{link.name}/" in k]:
            del fns.sysctls[key]
        for port in fns.links.values():
            if port.master == link.index:
                port.master = None
                self._reset_port(port)
        if link.master is not None and link.master in fns.links:
            self._adjust_bridge_mtu(fns, fns.links[link.master])

    def set_link_up(self, ns: Namespace, name: str, up: bool = True) -> None:
        """See :meth:`LinkBackend.set_link_up`."""
        with self._lock:
            fns = self._ns(ns)
            self._set_up(fns, self._get(fns, name), up)

    def _set_up(self, fns: _FakeNamespace, link: _FakeLink, up: bool) -> None:
        if link.admin_up == up:
            return
        link.admin_up = up
        if up:
            if link.kind == "loopback":
                if _LOOPBACK_V4 not in link.addresses:
                    link.addresses.append(_LOOPBACK_V4)
                if _LOOPBACK_V6 not in link.addresses and not self._ipv6_disabled(fns, link):
                    link.addresses.append(_LOOPBACK_V6)
            for address in link.addresses:
                self._add_prefix_route(fns, link, address)
            return
        fns.routes = [r for r in fns.routes if r.device != link.name]
        keep = self._keeps_addresses(fns, link)
        # keep_addr_on_down never keeps ::1: the kernel drops loopback addresses regardless.
        link.addresses = [a for a in link.addresses if a.version == 4 or (keep and a != _LOOPBACK_V6)]

    def _ipv6_disabled(self, fns: _FakeNamespace, link: _FakeLink) -> bool:
        return fns.sysctls.get(f"net/ipv6/conf/{link.name}/disable_ipv6", "0") != "0"

    def _keeps_addresses(self, fns: _FakeNamespace, link: _FakeLink) -> bool:
        # The kernel keeps IPv6 addresses on down when either the link's or "all"'s setting says so.
        return any(
            int(fns.sysctls.get(f"net/ipv6/conf/{conf}/keep_addr_on_down", "0")) > 0 for conf in (link.name, "all")
        )

    def set_master(self, ns: Namespace, name: str, master: str | None) -> None:
        """See :meth:`LinkBackend.set_master`."""
        with self._lock:
            fns = self._ns(ns)
            link = self._get(fns, name)
            if master is None:
                if link.master is not None:
                    bridge = fns.links[link.master]
                    link.master = None
                    self._reset_port(link)
                    self._adjust_bridge_mtu(fns, bridge)
                return
            bridge = self._get(fns, master)
            if link.master == bridge.index:
                return
            if bridge.kind != "bridge":
                raise InternalError(f"cannot attach {go_quote(name)} to {go_quote(master)}: not a bridge")
            if link.kind in ("loopback", "bridge") or link is bridge:
                raise InternalError(f"cannot attach {go_quote(name)} to a bridge: invalid argument")
            if link.master is not None:
                old = fns.links[link.master]
                link.master = None
                self._adjust_bridge_mtu(fns, old)
            link.master = bridge.index
            self._reset_port(link)
            # The kernel's default_pvid: every new port starts in VLAN 1, untagged.
            link.vlans = {1: (True, True)}
            self._adjust_bridge_mtu(fns, bridge)

    @staticmethod
    def _reset_port(link: _FakeLink) -> None:
        link.hairpin = False
        link.isolated = False
        link.vlans = {}

    def _adjust_bridge_mtu(self, fns: _FakeNamespace, bridge: _FakeLink) -> None:
        # A bridge whose MTU nobody set follows its smallest port (1500 with none).
        if bridge.mtu_set_by_user:
            return
        ports = [p.mtu for p in fns.links.values() if p.master == bridge.index]
        bridge.mtu = min(ports) if ports else _DEFAULT_MTU

    def set_hairpin(self, ns: Namespace, name: str, on: bool) -> None:
        """See :meth:`LinkBackend.set_hairpin`."""
        with self._lock:
            fns = self._ns(ns)
            link = self._get(fns, name)
            if link.master is None:
                raise NotFoundError(f"link {go_quote(name)} is not a bridge port")
            link.hairpin = on

    def _port(self, fns: _FakeNamespace, name: str) -> _FakeLink:
        link = self._get(fns, name)
        if link.master is None:
            raise NotFoundError(f"link {go_quote(name)} is not a bridge port")
        return link

    def set_port_isolation(self, ns: Namespace, name: str, on: bool) -> None:
        """See :meth:`LinkBackend.set_port_isolation`."""
        with self._lock:
            self._port(self._ns(ns), name).isolated = on

    def set_port_vlans(self, ns: Namespace, name: str, *, remove: tuple[int, ...] = (),
                       add: tuple[PortVlan, ...] = ()) -> None:
        """See :meth:`LinkBackend.set_port_vlans`."""
        for vid in remove:
            PortVlan(vid=vid)  # the same range check as for additions, before anything changes
        with self._lock:
            link = self._port(self._ns(ns), name)
            vlans = dict(link.vlans)
            for vid in remove:
                vlans.pop(vid, None)
            for entry in add:
                if entry.pvid:
                    # One PVID per port: it moves to the VLAN added last with the flag.
                    vlans = {vid: (False, untagged) for vid, (_pvid, untagged) in vlans.items()}
                vlans[entry.vid] = (entry.pvid, entry.untagged)
            link.vlans = vlans

    def list_port_vlans(self, ns: Namespace, name: str) -> tuple[PortVlan, ...]:
        """See :meth:`LinkBackend.list_port_vlans`."""
        with self._lock:
            link = self._port(self._ns(ns), name)
            return tuple(PortVlan(vid=vid, pvid=pvid, untagged=untagged)
                         for vid, (pvid, untagged) in sorted(link.vlans.items()))

    def set_mac(self, ns: Namespace, name: str, mac: str) -> None:
        """See :meth:`LinkBackend.set_mac`."""
        with self._lock:
            mac = check_mac(mac)
            fns = self._ns(ns)
            link = self._get(fns, name)
            if link.kind == "loopback":
                raise InternalError(f"cannot set the MAC address of {go_quote(name)}")
            link.mac = mac

    def set_link_options(self, ns: Namespace, name: str, *, promiscuous: bool | None = None,
                         allmulti: bool | None = None, txqueuelen: int | None = None,
                         alias: str | None = None) -> None:
        """See :meth:`LinkBackend.set_link_options`."""
        check_link_options(txqueuelen, alias)
        with self._lock:
            link = self._get(self._ns(ns), name)
            if promiscuous is not None:
                link.promiscuous = promiscuous
            if allmulti is not None:
                link.allmulti = allmulti
            if txqueuelen is not None:
                link.txqueuelen = txqueuelen
            if alias is not None:
                link.alias = alias

    def set_mtu(self, ns: Namespace, name: str, mtu: int) -> None:
        """See :meth:`LinkBackend.set_mtu`."""
        with self._lock:
            check_mtu(mtu)
            fns = self._ns(ns)
            link = self._get(fns, name)
            # The kernel skips a change to the MTU a link already has: a bridge does not count it as set.
            if link.kind == "bridge" and mtu != link.mtu:
                link.mtu_set_by_user = True
            link.mtu = mtu
            if link.master is not None:
                self._adjust_bridge_mtu(fns, fns.links[link.master])

    # -- addresses ----------------------------------------------------------------------------------

    def _add_prefix_route(self, fns: _FakeNamespace, link: _FakeLink, address: Address) -> None:
        # An IPv4 subnet on the loopback is routed as local (in the local table, which the port
        # does not list); IPv6 subnets get a main-table route on every link.
        if not link.admin_up or address.prefixlen == (32 if address.version == 4 else 128):
            return
        if link.kind == "loopback" and address.version == 4:
            return
        if address.version == 4:
            route = Route(dst=address.network, device=link.name, scope="link", source=address.ip, metric=0)
        else:
            route = Route(dst=address.network, device=link.name, metric=256)
        if not any(r.dst == route.dst and r.device == link.name and r.metric == route.metric for r in fns.routes):
            fns.routes.append(route)

    def add_address(self, ns: Namespace, name: str, address: Address) -> None:
        """See :meth:`LinkBackend.add_address`."""
        with self._lock:
            fns = self._ns(ns)
            link = self._get(fns, name)
            for existing in link.addresses:
                same = existing.ip == address.ip and (address.version == 6 or existing.prefixlen == address.prefixlen)
                if same:
                    raise AlreadyExistsError(f"address {address} already on {go_quote(name)}")
            if address.version == 6 and self._ipv6_disabled(fns, link):
                raise PermissionDeniedError(f"cannot add {address} to {go_quote(name)}: IPv6 is disabled there")
            link.addresses.append(address)
            fns.next_stamp += 1
            fns.address_stamps[(link.index, address)] = fns.next_stamp
            link.dad_failed.discard(address)
            link.tentative.discard(address)
            if address.version == 6 and link.kind != "loopback" and self._dad_enabled(fns, link):
                link.tentative.add(address)
            self._add_prefix_route(fns, link, address)

    def delete_address(self, ns: Namespace, name: str, address: Address) -> None:
        """See :meth:`LinkBackend.delete_address`."""
        with self._lock:
            fns = self._ns(ns)
            link = self._get(fns, name)
            if address not in link.addresses:
                raise NotFoundError(f"address {address} not on {go_quote(name)}")
            link.addresses.remove(address)
            link.tentative.discard(address)
            link.dad_failed.discard(address)
            if address.version == 4 and not any(a.ip == address.ip for other in fns.links.values()
                                                 for a in other.addresses):
                # Gone from the whole namespace: routes that used it as their source die with it.
                fns.routes = [r for r in fns.routes if r.source != address.ip]
            if address.version == 4 and not any(a.version == 4 for a in link.addresses):
                # The link's last IPv4 address: the kernel flushes every IPv4 route through it.
                fns.routes = [r for r in fns.routes if not (r.device == link.name and r.version == 4)]
                return
            if any(a.version == address.version and a.network == address.network for a in link.addresses):
                return
            fns.routes = [
                r for r in fns.routes
                if not (r.device == link.name and r.dst == address.network and r.gateway is None
                        and r.metric == (0 if address.version == 4 else 256))
            ]

    def list_addresses(self, ns: Namespace, name: str) -> tuple[Address, ...]:
        """See :meth:`LinkBackend.list_addresses`."""
        with self._lock:
            fns = self._ns(ns)
            return sorted_addresses(self._get(fns, name).addresses)

    def list_address_states(self, ns: Namespace, name: str) -> tuple[AddressState, ...]:
        """See :meth:`LinkBackend.list_address_states`."""
        with self._lock:
            link = self._get(self._ns(ns), name)
            return tuple(AddressState(address=a, tentative=a in link.tentative or a in link.dad_failed,
                                      dad_failed=a in link.dad_failed) for a in sorted_addresses(link.addresses))

    def _dad_enabled(self, fns: _FakeNamespace, link: _FakeLink) -> bool:
        return any(int(fns.sysctls.get(f"net/ipv6/conf/{conf}/accept_dad", "0")) > 0 for conf in (link.name, "all"))

    def complete_dad(self) -> None:
        """Let time pass for DAD: tentative addresses on links with carrier become usable.

        (The fake's stand-in for the second or so the kernel takes.) Addresses
        :meth:`fail_dad` marked stay tentative.
        """
        with self._lock:
            for fns in self._namespaces.values():
                for link in fns.links.values():
                    if link.tentative and self._carrier(fns, link):
                        link.tentative &= link.dad_failed

    def fail_dad(self, ns: Namespace, name: str, address: Address) -> None:
        """Make DAD find ``address`` (an IPv6 address of the link) in use elsewhere.

        :class:`NotFoundError` if the link does not have it. Idempotent.
        """
        with self._lock:
            link = self._get(self._ns(ns), name)
            if address not in link.addresses:
                raise NotFoundError(f"address {address} not on {go_quote(name)}")
            link.tentative.add(address)
            link.dad_failed.add(address)

    # -- routes -------------------------------------------------------------------------------------

    def add_route(self, ns: Namespace, route: Route) -> None:
        """See :meth:`LinkBackend.add_route`."""
        with self._lock:
            fns = self._ns(ns)
            metric = route.metric if route.metric is not None else (0 if route.version == 4 else 1024)
            device = self._get(fns, route.device) if route.device is not None else None
            if device is not None and route.gateway is None and route.version == 6 and self._ipv6_disabled(fns,
                                                                                                           device):
                # The kernel's "IPv6 is disabled on nexthop device" (EACCES).
                raise PermissionDeniedError(f"route to {route.dst}: IPv6 is disabled on {go_quote(device.name)}")
            if device is not None and not device.admin_up:
                raise InternalError(f"route to {route.dst}: network is down")
            if route.gateway is not None:
                device = self._gateway_device(fns, route, device)
            assert device is not None  # a Route has a device or a gateway
            # Added without NLM_F_EXCL, as the reference adds routes: only the very same route (destination,
            # table, metric and next hop) is refused; another next hop to the destination joins it.
            for existing in fns.routes:
                if (existing.dst == route.dst and existing.table == route.table and existing.metric == metric
                        and existing.gateway == route.gateway and existing.device == device.name):
                    raise AlreadyExistsError(f"route to {route.dst} (metric {metric}) via {route.gateway} dev "
                                             f"{device.name} already exists")
            fns.routes.append(Route(
                dst=route.dst, gateway=route.gateway, device=device.name, metric=metric, table=route.table,
                scope=route.scope, source=route.source,
            ))

    def _gateway_device(self, fns: _FakeNamespace, route: Route, device: _FakeLink | None) -> _FakeLink:
        gateway = route.gateway
        assert gateway is not None
        # IPv4 accepts one of our own addresses as a gateway; IPv6 refuses it.
        for link in fns.links.values():
            if gateway.version == 6 and any(a.ip == gateway for a in link.addresses):
                raise InternalError(f"route to {route.dst}: gateway {gateway} is a local address")
        if route.scope == "link" and device is not None:
            return device
        if gateway.version == 4 and device is None:
            # One of our own addresses: the kernel finds its local route first, and there may be several
            # (a local route is made for every address, on an up link or not): the oldest one's link it is.
            holders = [(fns.address_stamps.get((link.index, a), 0), link) for link in fns.links.values()
                       for a in link.addresses if a.ip == gateway]
            if holders:
                first = min(holders, key=lambda held: held[0])[1]
                if not first.admin_up:
                    raise InternalError(f"route to {route.dst}: network is down")
                if first.kind != "loopback":
                    return first
        if gateway.version == 4:
            # A gateway inside a subnet of an up loopback resolves to a local route: accepted.
            for link in fns.links.values():
                if (link.kind == "loopback" and link.admin_up and (device is None or device is link)
                        and any(a.version == 4 and gateway in a.network for a in link.addresses)):
                    return link
        for candidate in fns.routes:
            if (candidate.table == MAIN_TABLE and candidate.gateway is None and candidate.scope != "host"
                    and candidate.version == gateway.version and gateway in candidate.dst
                    and (device is None or candidate.device == device.name)):
                found = fns.links[self._index_of(fns, str(candidate.device))]
                if found.kind == "loopback" and gateway.version == 6:
                    raise InternalError(f"route to {route.dst}: egress device can not be the loopback")
                return found
        raise InternalError(f"route to {route.dst}: gateway {gateway} is unreachable")

    @staticmethod
    def _index_of(fns: _FakeNamespace, name: str) -> int:
        return next(i for i, link in fns.links.items() if link.name == name)

    def delete_route(self, ns: Namespace, route: Route) -> None:
        """See :meth:`LinkBackend.delete_route`."""
        with self._lock:
            fns = self._ns(ns)
            if route.device is not None:
                self._get(fns, route.device)
            matches = [existing for existing in fns.routes
                       if (existing.dst == route.dst and existing.table == route.table
                           and (route.gateway is None or existing.gateway == route.gateway)
                           and (route.device is None or existing.device == route.device)
                           and (route.metric is None or existing.metric == route.metric))]
            if not matches:
                raise NotFoundError(f"no route to {route.dst} matches")
            # The kernel keeps a prefix's routes in metric order and deletes the first that matches: with
            # no metric given, the lowest-metric one goes. Among routes of one metric, IPv4 puts the newest
            # first (routes are added without NLM_F_APPEND, as `ip route prepend` does) and IPv6 the oldest.
            lowest = min(existing.metric or 0 for existing in matches)
            tied = [existing for existing in matches if (existing.metric or 0) == lowest]
            fns.routes.remove(tied[-1] if route.version == 4 else tied[0])

    def list_routes(self, ns: Namespace, *, version: int | None = None, table: int = MAIN_TABLE) -> tuple[Route, ...]:
        """See :meth:`LinkBackend.list_routes`."""
        with self._lock:
            fns = self._ns(ns)
            return sorted_routes(
                r for r in fns.routes if r.table == table and (version is None or r.version == version)
            )

    # -- sysctls ------------------------------------------------------------------------------------

    def read_sysctl(self, ns: Namespace, key: str) -> str:
        """See :meth:`LinkBackend.read_sysctl`."""
        checked = check_sysctl_key(key)
        with self._lock:
            fns = self._ns(ns)
            value = fns.sysctls.get(checked.path)
            if value is None:
                raise NotFoundError(f"sysctl {checked.path}: no such interface {checked.interface}")
            return value

    def write_sysctl(self, ns: Namespace, key: str, value: str | int) -> None:
        """See :meth:`LinkBackend.write_sysctl`."""
        checked = check_sysctl_key(key)
        text = check_sysctl_value(value)
        with self._lock:
            fns = self._ns(ns)
            if checked.path not in fns.sysctls:
                raise NotFoundError(f"sysctl {checked.path}: no such interface {checked.interface}")
            fns.sysctls[checked.path] = text
            self._sysctl_effects(fns, checked.path, checked.interface, checked.setting, text)

    def read_net_sysctl(self, ns: Namespace, path: str) -> str:
        """See :meth:`LinkBackend.read_net_sysctl` (the fake knows the plugins' sysctls and a few more)."""
        checked = check_net_sysctl_path(path)
        with self._lock:
            value = self._ns(ns).sysctls.get(checked)
            if value is None:
                raise NotFoundError(f"sysctl /proc/sys/{checked}: no such file or directory")
            return value

    def write_net_sysctl(self, ns: Namespace, path: str, value: str) -> None:
        """See :meth:`LinkBackend.write_net_sysctl`.

        The plugins' own sysctls take integers (the kernel's parser ignores
        surrounding blanks); the few others are stored as written.
        """
        checked = check_net_sysctl_path(path)
        with self._lock:
            fns = self._ns(ns)
            if checked not in fns.sysctls:
                raise NotFoundError(f"sysctl /proc/sys/{checked}: no such file or directory")
            if checked in _NET_DEFAULTS:
                fns.sysctls[checked] = value
                return
        try:
            text = check_sysctl_value(value)
        except InvalidConfigError as exc:
            raise InternalError(f"sysctl /proc/sys/{checked}: invalid value") from exc
        self.write_sysctl(ns, checked, text)

    def _sysctl_effects(self, fns: _FakeNamespace, path: str, interface: str | None, setting: str,
                        value: str) -> None:
        # The kernel fans the global forwarding switches out to every interface.
        if path == "net/ipv4/ip_forward":
            for key in list(fns.sysctls):
                if key.startswith("net/ipv4/conf/") and key.endswith("/forwarding"):
                    fns.sysctls[key] = "1" if value != "0" else "0"
        elif path == "net/ipv6/conf/all/forwarding":
            for key in list(fns.sysctls):
                if key.startswith("net/ipv6/conf/") and key.endswith("/forwarding"):
                    fns.sysctls[key] = "1" if value != "0" else "0"
        elif path == "net/ipv4/conf/all/forwarding":
            fns.sysctls["net/ipv4/ip_forward"] = "1" if value != "0" else "0"
            self._sysctl_effects(fns, "net/ipv4/ip_forward", None, "ip_forward", value)
        elif setting == "disable_ipv6" and interface not in (None, "all", "default"):
            link = self._find(fns, str(interface))
            if link is None:
                return
            if value != "0":
                link.addresses = [a for a in link.addresses if a.version == 4]
                fns.routes = [r for r in fns.routes if not (r.device == link.name and r.version == 6)]
            elif link.kind == "loopback" and link.admin_up and _LOOPBACK_V6 not in link.addresses:
                # Re-enabling IPv6 on an up loopback brings ::1 back, as bringing it up does.
                link.addresses.append(_LOOPBACK_V6)


# -- persisting the model as data ---------------------------------------------------------------------
# The fake kernel of executed plugins lives in a file between execs (CNICORE_FAKE_STATE): it is stored as plain
# JSON data, rebuilt through the value classes' validators, so that the file can describe a kernel and nothing
# else (never code to run).

_STATE_FORMAT = "cnicore-fake-links/1"


def _address_text(address: Address) -> str:
    return f"{address.ip}/{address.prefixlen}"


def _route_data(route: Route) -> dict[str, Any]:
    return {"dst": str(route.dst), "gateway": None if route.gateway is None else str(route.gateway),
            "device": route.device, "metric": route.metric, "table": route.table, "scope": route.scope,
            "source": None if route.source is None else str(route.source)}


def _link_data(link: _FakeLink) -> dict[str, Any]:
    return {
        "index": link.index, "name": link.name, "kind": link.kind, "mac": link.mac, "mtu": link.mtu,
        "admin_up": link.admin_up, "master": link.master, "promiscuous": link.promiscuous,
        "vlan_filtering": link.vlan_filtering, "hairpin": link.hairpin, "isolated": link.isolated,
        "vlans": [[vid, pvid, untagged] for vid, (pvid, untagged) in sorted(link.vlans.items())],
        "addresses": [_address_text(a) for a in link.addresses],
        "tentative": sorted(_address_text(a) for a in link.tentative),
        "dad_failed": sorted(_address_text(a) for a in link.dad_failed),
        "peer": None if link.peer is None else [link.peer[0], link.peer[1]],
        "mtu_set_by_user": link.mtu_set_by_user,
        "allmulti": link.allmulti, "txqueuelen": link.txqueuelen, "alias": link.alias,
    }


def _namespace_data(fns: _FakeNamespace) -> dict[str, Any]:
    return {
        "key": fns.key,
        "links": [_link_data(link) for _, link in sorted(fns.links.items())],
        "routes": [_route_data(route) for route in fns.routes],
        "sysctls": dict(fns.sysctls),
        "next_index": fns.next_index,
        "address_stamps": [[index, _address_text(address), stamp]
                           for (index, address), stamp in fns.address_stamps.items()],
        "next_stamp": fns.next_stamp,
    }


def _typed(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    # bool is an int to Python, never to the model.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ValueError(f"{what}: {value!r} is not {kind}")
    return value


def _optional(value: Any, kind: type, what: str) -> Any:
    return None if value is None else _typed(value, kind, what)


def _link_from(data: dict[str, Any]) -> _FakeLink:
    peer = data["peer"]
    vlans: dict[int, tuple[bool, bool]] = {}
    for vid, pvid, untagged in data["vlans"]:
        vlans[_typed(vid, int, "vid")] = (_typed(pvid, bool, "pvid"), _typed(untagged, bool, "untagged"))
    return _FakeLink(
        index=_typed(data["index"], int, "index"), name=_typed(data["name"], str, "name"),
        kind=_typed(data["kind"], str, "kind"), mac=_typed(data["mac"], str, "mac"),
        mtu=_typed(data["mtu"], int, "mtu"),
        admin_up=_typed(data["admin_up"], bool, "admin_up"), master=_optional(data["master"], int, "master"),
        promiscuous=_typed(data["promiscuous"], bool, "promiscuous"),
        vlan_filtering=_typed(data["vlan_filtering"], bool, "vlan_filtering"),
        hairpin=_typed(data["hairpin"], bool, "hairpin"), isolated=_typed(data["isolated"], bool, "isolated"),
        vlans=vlans,
        addresses=[Address.parse(_typed(a, str, "address")) for a in data["addresses"]],
        tentative={Address.parse(_typed(a, str, "address")) for a in data["tentative"]},
        dad_failed={Address.parse(_typed(a, str, "address")) for a in data["dad_failed"]},
        peer=None if peer is None else (_optional(peer[0], str, "peer"), _typed(peer[1], int, "peer")),
        mtu_set_by_user=_typed(data["mtu_set_by_user"], bool, "mtu_set_by_user"),
        allmulti=_typed(data["allmulti"], bool, "allmulti"), txqueuelen=_typed(data["txqueuelen"], int, "txqueuelen"),
        alias=_typed(data["alias"], str, "alias"),
    )


def _route_from(data: dict[str, Any]) -> Route:
    return Route(dst=_typed(data["dst"], str, "dst"), gateway=_optional(data["gateway"], str, "gateway"),
                 device=_optional(data["device"], str, "device"), metric=_optional(data["metric"], int, "metric"),
                 table=_typed(data["table"], int, "table"), scope=_typed(data["scope"], str, "scope"),
                 source=_optional(data["source"], str, "source"))


def _namespace_from(data: dict[str, Any]) -> _FakeNamespace:
    links = [_link_from(link) for link in data["links"]]
    sysctls = _typed(data["sysctls"], dict, "sysctls")
    for key, value in sysctls.items():
        _typed(key, str, "sysctl")
        _typed(value, str, "sysctl value")
    stamps = {}
    for index, address, stamp in data["address_stamps"]:
        stamps[(_typed(index, int, "index"), Address.parse(_typed(address, str, "address")))] = _typed(
            stamp, int, "stamp")
    return _FakeNamespace(key=_optional(data["key"], str, "namespace"), links={link.index: link for link in links},
                          routes=[_route_from(route) for route in data["routes"]], sysctls=dict(sysctls),
                          next_index=_typed(data["next_index"], int, "next_index"), address_stamps=stamps,
                          next_stamp=_typed(data["next_stamp"], int, "next_stamp"))


def _export_links(backend: FakeLinkBackend) -> dict[str, Any]:
    with backend._lock:
        return {"format": _STATE_FORMAT,
                "namespaces": [_namespace_data(fns) for _, fns in
                               sorted(backend._namespaces.items(), key=lambda item: item[0] or "")]}


def _import_links(data: Any) -> FakeLinkBackend:
    if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT:
        raise ValueError(f"not a fake kernel's links (format {_STATE_FORMAT})")
    backend = FakeLinkBackend()
    namespaces = [_namespace_from(fns) for fns in data["namespaces"]]
    backend._namespaces = {fns.key: fns for fns in namespaces}
    if None not in backend._namespaces:
        raise ValueError("no host namespace")
    return backend
