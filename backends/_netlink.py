"""The netlink link backend: rtnetlink requests over a raw socket (standard library only).

Every operation opens one rtnetlink socket in the target namespace, sends its
few requests and closes the socket before returning, so thousands of
operations leave no descriptor behind and no socket keeps a deleted namespace
alive. For another namespace the socket is opened by a short-lived thread that
joined it (see :mod:`._setns`: nothing forks and no other thread moves); a
netlink socket stays in the namespace it was opened in, so the requests
themselves are sent from the calling thread, through the one request/reply
loop, :class:`._rtnl.Rtnl`.

This class is the typed face of the operations: each is the plain function of
:mod:`._linkops` (which the executed bridge's plain link port calls too), with
the port's argument checks before it and its typed values after. Requests name
links directly where the kernel allows it (set, delete), so most operations are
one or two round trips of a few tens of microseconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable

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

from . import _linkops as ops
from . import _nsenter
from ._common import (
    address_sort_key,
    check_link_options,
    check_mac,
    check_mtu,
    check_name,
    check_veth_request,
    links_by_index,
    random_peer_name,
    sorted_addresses,
    sorted_routes,
)
from ._linkops import LinkMessage, Session
from ._rtnl import Rtnl

__all__ = ["NetlinkLinkBackend"]


class NetlinkLinkBackend(_nsenter.KernelNamespaces):
    """:class:`~cnicore.links.LinkBackend` over rtnetlink.

    Thread-safe: operations share no socket. Needs no third-party package.
    """

    name = "netlink"

    def __init__(self, *, peer_names: Callable[[], str] | None = None) -> None:
        self._peer_names = peer_names or random_peer_name

    # -- plumbing -----------------------------------------------------------------------------------

    @staticmethod
    def _socket(ns: Namespace, what: str) -> Session:
        """A socket in ``ns``, closed afterwards; kernel refusals become cnicore errors about ``what``."""
        return Session(ns.path, what)

    @staticmethod
    def _addresses(sock: Rtnl, index: int = 0) -> list[tuple[int, Address, int]]:
        """(link index, address, IFA flags) of every address (of link ``index`` if not 0)."""
        return [(link, Address(ip=ip, prefixlen=prefixlen), flags)
                for link, _version, ip, prefixlen, flags in ops.address_dump(sock, index)]

    def _link(self, sock: Rtnl, msg: LinkMessage) -> Link:
        addresses = [address for _link, address, _flags in self._addresses(sock, msg.index)]
        return _link_of(msg, ops.master_name(sock, msg), addresses)

    # -- reading ------------------------------------------------------------------------------------

    def get_link(self, ns: Namespace, name: str) -> Link:
        """See :meth:`LinkBackend.get_link`."""
        check_name(name)
        with self._socket(ns, f"get link {name}") as sock:
            return self._link(sock, ops.get_link(sock, name))

    def list_links(self, ns: Namespace) -> tuple[Link, ...]:
        """See :meth:`LinkBackend.list_links`."""
        with self._socket(ns, "list links") as sock:
            messages = ops.link_dump(sock)
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
            index = ops.get_link(sock, name).index
            return sorted_addresses(address for _link, address, _flags in self._addresses(sock, index))

    def list_address_states(self, ns: Namespace, name: str) -> tuple[AddressState, ...]:
        """See :meth:`LinkBackend.list_address_states`."""
        check_name(name)
        with self._socket(ns, f"list addresses of {name}") as sock:
            index = ops.get_link(sock, name).index
            states = [AddressState(address=address, tentative=bool(flags & ops.IFA_F_TENTATIVE),
                                   dad_failed=bool(flags & ops.IFA_F_DADFAILED))
                      for _link, address, flags in self._addresses(sock, index)]
        return tuple(sorted(states, key=lambda state: address_sort_key(state.address)))

    def list_routes(self, ns: Namespace, *, version: int | None = None, table: int = MAIN_TABLE) -> tuple[Route, ...]:
        """See :meth:`LinkBackend.list_routes`."""
        with self._socket(ns, "list routes") as sock:
            names = {msg.index: msg.name for msg in ops.link_dump(sock)}
            routes = [Route(dst=f"{dst}/{dst_len}", gateway=gateway, device=names.get(oif) if oif is not None else None,
                            metric=metric, table=route_table, scope=scope, source=source)  # type: ignore[arg-type]
                      for family_version in ([4, 6] if version is None else [version])
                      for _v, dst, dst_len, gateway, oif, metric, route_table, scope, source
                      in ops.route_dump(sock, family_version)
                      if route_table == table]
            return sorted_routes(routes)

    # -- links --------------------------------------------------------------------------------------

    def ensure_bridge(self, ns: Namespace, spec: BridgeSpec) -> Link:
        """See :meth:`LinkBackend.ensure_bridge`."""
        if spec.mtu is not None:
            check_mtu(spec.mtu)
        with self._socket(ns, f"ensure bridge {spec.name}") as sock:
            return self._link(sock, ops.ensure_bridge(sock, spec.name, mtu=spec.mtu, promiscuous=spec.promiscuous,
                                                      vlan_filtering=spec.vlan_filtering))

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
            with self._socket(container_ns, f"create veth {name}") as sock:
                peer_name = ops.add_veth(sock, name, host_fd, mtu=mtu, mac=mac, peer_names=self._peer_names,
                                         check_name=check_name)
                container = self._link(sock, ops.get_link(sock, name))
        finally:
            os.close(host_fd)
        return VethPair(container=container, host=self.get_link(host_ns, peer_name))

    def delete_link(self, ns: Namespace, name: str) -> None:
        """See :meth:`LinkBackend.delete_link`."""
        check_name(name)
        with self._socket(ns, f"delete link {name}") as sock:
            ops.delete_link(sock, name)

    def _set(self, ns: Namespace, name: str, what: str, *, flags: int = 0, change: int = 0,
             attrs: bytes = b"") -> None:
        check_name(name)
        with self._socket(ns, f"{what} {name}") as sock:
            ops.set_link(sock, name, flags=flags, change=change, attrs=attrs)

    def set_link_up(self, ns: Namespace, name: str, up: bool = True) -> None:
        """See :meth:`LinkBackend.set_link_up`."""
        self._set(ns, name, "set up" if up else "set down", flags=ops.IFF_UP if up else 0, change=ops.IFF_UP)

    def set_master(self, ns: Namespace, name: str, master: str | None) -> None:
        """See :meth:`LinkBackend.set_master`."""
        check_name(name)
        with self._socket(ns, f"set master of {name}") as sock:
            ops.set_master(sock, name, master)

    def _set_port_flag(self, ns: Namespace, name: str, what: str, kind: int, on: bool) -> None:
        check_name(name)
        with self._socket(ns, f"{what} {name}") as sock:
            ops.set_port_flag(sock, name, kind, on)

    def set_hairpin(self, ns: Namespace, name: str, on: bool) -> None:
        """See :meth:`LinkBackend.set_hairpin`."""
        self._set_port_flag(ns, name, "set hairpin on", ops.IFLA_BRPORT_MODE, on)

    def set_port_isolation(self, ns: Namespace, name: str, on: bool) -> None:
        """See :meth:`LinkBackend.set_port_isolation`."""
        self._set_port_flag(ns, name, "set isolation on", ops.IFLA_BRPORT_ISOLATED, on)

    def set_port_vlans(self, ns: Namespace, name: str, *, remove: tuple[int, ...] = (),
                       add: tuple[PortVlan, ...] = ()) -> None:
        """See :meth:`LinkBackend.set_port_vlans`."""
        check_name(name)
        for vid in remove:
            PortVlan(vid=vid)
        with self._socket(ns, f"set VLANs of {name}") as sock:
            ops.set_port_vlans(sock, name, remove=remove,
                               add=tuple((entry.vid, entry.pvid, entry.untagged) for entry in add))

    def list_port_vlans(self, ns: Namespace, name: str) -> tuple[PortVlan, ...]:
        """See :meth:`LinkBackend.list_port_vlans`."""
        check_name(name)
        with self._socket(ns, f"list VLANs of {name}") as sock:
            return tuple(PortVlan(vid=vid, pvid=pvid, untagged=untagged)
                         for vid, pvid, untagged in ops.port_vlans(sock, ops.port(sock, name).index))

    def set_mac(self, ns: Namespace, name: str, mac: str) -> None:
        """See :meth:`LinkBackend.set_mac`."""
        self._set(ns, name, "set MAC of", attrs=ops.mac_attr(check_mac(mac)))

    def set_mtu(self, ns: Namespace, name: str, mtu: int) -> None:
        """See :meth:`LinkBackend.set_mtu`."""
        check_name(name)
        with self._socket(ns, f"set MTU of {name}") as sock:
            ops.set_mtu(sock, name, mtu)

    def set_link_options(self, ns: Namespace, name: str, *, promiscuous: bool | None = None,
                         allmulti: bool | None = None, txqueuelen: int | None = None,
                         alias: str | None = None) -> None:
        """See :meth:`LinkBackend.set_link_options` (one RTM_SETLINK for everything given)."""
        check_link_options(txqueuelen, alias)
        check_name(name)
        with self._socket(ns, f"set options of {name}") as sock:
            ops.set_link_options(sock, name, promiscuous=promiscuous, allmulti=allmulti, txqueuelen=txqueuelen,
                                 alias=alias)

    # -- addresses and routes -----------------------------------------------------------------------

    def _address(self, ns: Namespace, name: str, add: bool, address: Address) -> None:
        check_name(name)
        with self._socket(ns, f"{'add' if add else 'delete'} address {address} on {name}") as sock:
            ops.change_address(sock, name, add, str(address.ip), address.prefixlen)

    def add_address(self, ns: Namespace, name: str, address: Address) -> None:
        """See :meth:`LinkBackend.add_address`."""
        self._address(ns, name, True, address)

    def delete_address(self, ns: Namespace, name: str, address: Address) -> None:
        """See :meth:`LinkBackend.delete_address`."""
        self._address(ns, name, False, address)

    @staticmethod
    def _route_body(sock: Rtnl, route: Route, deleting: bool) -> bytes:
        return ops.route_request(sock, dst=str(route.dst.network), dst_len=route.dst.prefixlen,
                                 gateway=None if route.gateway is None else str(route.gateway), device=route.device,
                                 metric=route.metric, table=route.table, scope=route.scope,
                                 source=None if route.source is None else str(route.source), deleting=deleting)

    def add_route(self, ns: Namespace, route: Route) -> None:
        """See :meth:`LinkBackend.add_route`."""
        with self._socket(ns, f"add route to {route.dst}") as sock:
            sock.request(ops.RTM_NEWROUTE, self._route_body(sock, route, deleting=False), flags=ops.CREATE_ROUTE)

    def delete_route(self, ns: Namespace, route: Route) -> None:
        """See :meth:`LinkBackend.delete_route`."""
        with self._socket(ns, f"delete route to {route.dst}") as sock:
            sock.request(ops.RTM_DELROUTE, self._route_body(sock, route, deleting=True), flags=ops.ACKED)



def _link_of(msg: LinkMessage, master: str | None, addresses: list[Address]) -> Link:
    info = msg.info()
    data = ops.parse_attrs(info[ops.IFLA_INFO_DATA]) if ops.IFLA_INFO_DATA in info else {}
    slave = ops.parse_attrs(info[ops.IFLA_INFO_SLAVE_DATA]) if ops.IFLA_INFO_SLAVE_DATA in info else {}
    kind = msg.kind
    return Link(
        index=msg.index,
        name=msg.name,
        kind=kind,
        mac=msg.mac,
        mtu=msg.mtu,
        admin_up=bool(msg.flags & ops.IFF_UP),
        carrier=bool(msg.flags & ops.IFF_LOWER_UP),
        oper_state=msg.oper_state,
        master=master,
        promiscuous=msg.promiscuous,
        allmulti=msg.allmulti,
        txqueuelen=msg.txqueuelen,
        alias=msg.alias,
        vlan_filtering=kind == "bridge" and bool(ops.u8_of(data.get(ops.IFLA_BR_VLAN_FILTERING))),
        hairpin=bool(ops.u8_of(slave.get(ops.IFLA_BRPORT_MODE))),
        isolated=bool(ops.u8_of(slave.get(ops.IFLA_BRPORT_ISOLATED))),
        addresses=sorted_addresses(addresses),
    )

