"""The iproute2 link backend: the ``ip`` command, run as a subprocess.

Reads use ``ip -json``; writes use plain ``ip`` commands. Commands are argv
lists (never a shell), and every interface name is checked with the CNI rules
before it is placed in one, so no name can smuggle an option or a keyword in.
A namespace under ``/var/run/netns`` (or ``/run/netns``) is reached with
``ip -n NAME``; any other path (``/proc/PID/ns/net``) through
``nsenter --net=PATH``. Sysctls are read and written in ``/proc/sys`` from a
thread that joined the namespace (see :mod:`._nsenter`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

import netaddr

from cnicore._errors import (
    AlreadyExistsError,
    CNIError,
    InternalError,
    NotFoundError,
    PermissionDeniedError,
)
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

__all__ = ["IPRoute2LinkBackend"]

_NETNS_DIRS = ("/var/run/netns/", "/run/netns/")
# How `ip` reports kernel errors on stderr, and what each means at the port.
_STDERR_ERRORS: tuple[tuple[re.Pattern[str], type[CNIError]], ...] = (
    (re.compile(r"File exists|already assigned"), AlreadyExistsError),
    (re.compile(r"Cannot find device|does not exist|No such device|No such process|"
                r"Cannot assign requested address|not found"), NotFoundError),
    (re.compile(r"Operation not permitted|Permission denied|IPv6 is disabled"), PermissionDeniedError),
)


class IPRoute2LinkBackend(_nsenter.KernelNamespaces):
    """:class:`~cnicore.links.LinkBackend` that runs ``ip`` (iproute2).

    Args:
        ip: path of the ``ip`` binary (default: found on ``PATH``).
        nsenter: path of ``nsenter`` for namespaces outside ``/var/run/netns``.
        timeout: seconds one command may take.
    """

    name = "iproute2"

    def __init__(self, *, ip: str | None = None, nsenter: str | None = None, timeout: float = 30.0,
                 peer_names: Callable[[], str] | None = None) -> None:
        found = ip or shutil.which("ip") or "/usr/sbin/ip"
        self._ip = found
        # `bridge` ships with `ip` in iproute2: look beside it first.
        beside = os.path.join(os.path.dirname(found), "bridge")
        self._bridge = beside if os.path.exists(beside) else shutil.which("bridge") or "/usr/sbin/bridge"
        self._nsenter = nsenter or shutil.which("nsenter") or "/usr/bin/nsenter"
        self._timeout = timeout
        self._peer_names = peer_names or random_peer_name

    # -- plumbing -----------------------------------------------------------------------------------

    def _prefix(self, ns: Namespace, tool: str | None = None) -> list[str]:
        program = tool or self._ip
        if ns.path is None:
            return [program]
        if not os.path.exists(ns.path):
            raise namespace_gone(ns.path)
        for folder in _NETNS_DIRS:
            name = ns.path[len(folder):]
            # A name that could pass for an option goes the nsenter way instead.
            if ns.path.startswith(folder) and name and "/" not in name and not name.startswith("-"):
                return [program, "-n", name]
        return [self._nsenter, f"--net={ns.path}", "--", program]

    def _ip_run(self, ns: Namespace, args: Sequence[str], what: str, *, tool: str | None = None) -> str:
        argv = [*self._prefix(ns, tool), *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self._timeout, check=False)
        except OSError as exc:
            raise error_from_errno(exc.errno, f"{what}: cannot run {argv[0]}") from exc
        except subprocess.TimeoutExpired as exc:
            raise InternalError(f"{what}: {argv[0]} did not finish in {self._timeout}s") from exc
        if done.returncode != 0:
            message = done.stderr.strip() or f"exit status {done.returncode}"
            if ns.path is not None and not os.path.exists(ns.path):
                raise namespace_gone(ns.path)
            for pattern, error in _STDERR_ERRORS:
                if pattern.search(message):
                    raise error(f"{what}: {message}")
            raise InternalError(f"{what}: {message}")
        return done.stdout

    def _json(self, ns: Namespace, args: Sequence[str], what: str) -> list[dict[str, Any]]:
        out = self._ip_run(ns, ["-json", *args], what)
        try:
            data = json.loads(out) if out.strip() else []
        except json.JSONDecodeError as exc:
            raise InternalError(f"{what}: cannot read the output of ip -json") from exc
        if not isinstance(data, list):
            raise InternalError(f"{what}: unexpected output of ip -json")
        return data

    # -- reading ------------------------------------------------------------------------------------

    def _read_links(self, ns: Namespace, name: str | None) -> tuple[Link, ...]:
        # `ip -details address show` gives each link's attributes and its addresses: one process.
        args = ["-details", "address", "show"] + (["dev", name] if name is not None else [])
        what = f"get link {name}" if name is not None else "list links"
        links = []
        for entry in self._json(ns, args, what):
            addresses = [Address(ip=info["local"], prefixlen=int(info["prefixlen"]))
                         for info in entry.get("addr_info", [])
                         if info.get("family") in ("inet", "inet6") and "local" in info]
            links.append(_link_of(entry, addresses))
        return links_by_index(links)

    def get_link(self, ns: Namespace, name: str) -> Link:
        """See :meth:`LinkBackend.get_link`."""
        check_name(name)
        found = self._read_links(ns, name)
        if not found:
            raise NotFoundError(f"link {go_quote(name)} not found")
        return found[0]

    def list_links(self, ns: Namespace) -> tuple[Link, ...]:
        """See :meth:`LinkBackend.list_links`."""
        return self._read_links(ns, None)

    def list_addresses(self, ns: Namespace, name: str) -> tuple[Address, ...]:
        """See :meth:`LinkBackend.list_addresses`."""
        return self.get_link(ns, name).addresses

    def list_address_states(self, ns: Namespace, name: str) -> tuple[AddressState, ...]:
        """See :meth:`LinkBackend.list_address_states`."""
        check_name(name)
        what = f"list addresses of {name}"
        states = []
        for entry in self._json(ns, ["address", "show", "dev", name], what):
            for info in entry.get("addr_info", []):
                if info.get("family") in ("inet", "inet6") and "local" in info:
                    failed = bool(info.get("dadfailed", False))
                    states.append(AddressState(address=Address(ip=info["local"], prefixlen=int(info["prefixlen"])),
                                               tentative=bool(info.get("tentative", False)) or failed,
                                               dad_failed=failed))
        return tuple(sorted(states, key=lambda state: address_sort_key(state.address)))

    def list_routes(self, ns: Namespace, *, version: int | None = None, table: int = MAIN_TABLE) -> tuple[Route, ...]:
        """See :meth:`LinkBackend.list_routes`."""
        routes = []
        for family in ([4, 6] if version is None else [version]):
            try:
                entries = self._json(ns, [f"-{family}", "route", "show", "table", str(table)], "list routes")
            except NotFoundError as exc:
                if "table does not exist" not in str(exc):
                    raise
                entries = []  # a table nobody has put a route in yet is an empty table
            for entry in entries:
                routes.extend(_routes_of(entry, family, table))
        return sorted_routes(routes)

    # -- links --------------------------------------------------------------------------------------

    def ensure_bridge(self, ns: Namespace, spec: BridgeSpec) -> Link:
        """See :meth:`LinkBackend.ensure_bridge`."""
        if spec.mtu is not None:
            check_mtu(spec.mtu)
        what = f"ensure bridge {spec.name}"
        try:
            link = self.get_link(ns, spec.name)
        except NotFoundError:
            args = ["link", "add", "name", spec.name]
            if spec.mtu is not None:
                args += ["mtu", str(spec.mtu)]
            args += ["type", "bridge"]
            if spec.vlan_filtering:
                args += ["vlan_filtering", "1"]
            # Made by someone else meanwhile: fine, it is checked just below.
            with contextlib.suppress(AlreadyExistsError):
                self._ip_run(ns, args, what)
            link = self.get_link(ns, spec.name)
        if link.kind != "bridge":
            raise not_a_bridge(spec.name)
        if spec.promiscuous and not link.promiscuous:
            self._ip_run(ns, ["link", "set", "dev", spec.name, "promisc", "on"], what)
        self._ip_run(ns, ["link", "set", "dev", spec.name, "up"], what)
        return self.get_link(ns, spec.name)

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
        # A pair inside one namespace (both ends in the host: the bridge plugin's VLAN gateway) needs no
        # `netns`; otherwise the container namespace must be named by path.
        same = container_ns == host_ns
        if container_ns.path is None and not same:
            raise InternalError("create_veth needs the container namespace by path")
        if not same:
            self._prefix(container_ns)  # the container namespace must exist
        peer_name = ""
        for _ in range(PEER_NAME_ATTEMPTS):
            peer_name = check_name(self._peer_names())
            # Run in the host namespace: `netns PATH` makes the kernel create the container
            # end directly in its namespace (IFLA_NET_NS_FD), the peer stays here.
            args = ["link", "add", "name", name]
            if not same:
                args += ["netns", str(container_ns.path)]
            if mtu is not None:
                args += ["mtu", str(mtu)]
            if mac is not None:
                args += ["address", mac]
            args += ["txqueuelen", str(VETH_TXQUEUELEN), "type", "veth", "peer", "name", peer_name,
                     "txqueuelen", str(VETH_TXQUEUELEN)]
            if mtu is not None:
                args += ["mtu", str(mtu)]
            try:
                self._ip_run(host_ns, args, f"create veth {name}")
                break
            except AlreadyExistsError as exc:
                try:
                    self.get_link(container_ns, name)
                except NotFoundError:
                    continue  # the host name was taken: draw another, as the reference does
                raise veth_exists(name, peer_name) from exc
        else:
            raise veth_exists(name, peer_name)
        return VethPair(container=self.get_link(container_ns, name), host=self.get_link(host_ns, peer_name))

    def delete_link(self, ns: Namespace, name: str) -> None:
        """See :meth:`LinkBackend.delete_link`."""
        self._ip_run(ns, ["link", "delete", "dev", check_name(name)], f"delete link {name}")

    def set_link_up(self, ns: Namespace, name: str, up: bool = True) -> None:
        """See :meth:`LinkBackend.set_link_up`."""
        self._ip_run(ns, ["link", "set", "dev", check_name(name), "up" if up else "down"], f"set state of {name}")

    def set_master(self, ns: Namespace, name: str, master: str | None) -> None:
        """See :meth:`LinkBackend.set_master`."""
        check_name(name)
        args = ["master", check_name(master)] if master is not None else ["nomaster"]
        self._ip_run(ns, ["link", "set", "dev", name, *args], f"set master of {name}")

    def set_hairpin(self, ns: Namespace, name: str, on: bool) -> None:
        """See :meth:`LinkBackend.set_hairpin`."""
        if self.get_link(ns, name).master is None:
            raise NotFoundError(f"link {go_quote(name)} is not a bridge port")
        self._ip_run(ns, ["link", "set", "dev", name, "type", "bridge_slave", "hairpin", "on" if on else "off"],
                     f"set hairpin on {name}")

    def _check_port(self, ns: Namespace, name: str) -> None:
        if self.get_link(ns, name).master is None:
            raise NotFoundError(f"link {go_quote(name)} is not a bridge port")

    def set_port_isolation(self, ns: Namespace, name: str, on: bool) -> None:
        """See :meth:`LinkBackend.set_port_isolation`."""
        self._check_port(ns, name)
        self._ip_run(ns, ["link", "set", "dev", name, "type", "bridge_slave", "isolated", "on" if on else "off"],
                     f"set isolation on {name}")

    def set_port_vlans(self, ns: Namespace, name: str, *, remove: tuple[int, ...] = (),
                       add: tuple[PortVlan, ...] = ()) -> None:
        """See :meth:`LinkBackend.set_port_vlans`."""
        for vid in remove:
            PortVlan(vid=vid)
        present = {entry.vid for entry in self.list_port_vlans(ns, name)}
        for vid in remove:
            # `bridge vlan del` fails for a VLAN the port lacks: the port's contract makes that fine.
            if vid in present:
                self._ip_run(ns, ["vlan", "del", "dev", name, "vid", str(vid)], f"delete VLAN {vid} of {name}",
                             tool=self._bridge)
        for entry in add:
            flags = (["pvid"] if entry.pvid else []) + (["untagged"] if entry.untagged else [])
            self._ip_run(ns, ["vlan", "add", "dev", name, "vid", str(entry.vid), *flags],
                         f"add VLAN {entry.vid} to {name}", tool=self._bridge)

    def list_port_vlans(self, ns: Namespace, name: str) -> tuple[PortVlan, ...]:
        """See :meth:`LinkBackend.list_port_vlans`."""
        self._check_port(ns, name)
        what = f"list VLANs of {name}"
        out = self._ip_run(ns, ["-json", "vlan", "show", "dev", name], what, tool=self._bridge)
        try:
            data = json.loads(out) if out.strip() else []
        except json.JSONDecodeError as exc:
            raise InternalError(f"{what}: cannot read the output of bridge -json") from exc
        return _port_vlans_of(data, name, what)

    def set_mac(self, ns: Namespace, name: str, mac: str) -> None:
        """See :meth:`LinkBackend.set_mac`."""
        self._ip_run(ns, ["link", "set", "dev", check_name(name), "address", check_mac(mac)], f"set MAC of {name}")

    def set_mtu(self, ns: Namespace, name: str, mtu: int) -> None:
        """See :meth:`LinkBackend.set_mtu`."""
        self._ip_run(ns, ["link", "set", "dev", check_name(name), "mtu", str(check_mtu(mtu))], f"set MTU of {name}")

    def set_link_options(self, ns: Namespace, name: str, *, promiscuous: bool | None = None,
                         allmulti: bool | None = None, txqueuelen: int | None = None,
                         alias: str | None = None) -> None:
        """See :meth:`LinkBackend.set_link_options` (one ``ip link set`` for everything given)."""
        check_link_options(txqueuelen, alias)
        argv: list[str] = []
        if promiscuous is not None:
            argv += ["promisc", "on" if promiscuous else "off"]
        if allmulti is not None:
            argv += ["allmulticast", "on" if allmulti else "off"]
        if txqueuelen is not None:
            argv += ["txqueuelen", str(txqueuelen)]
        if alias is not None:
            argv += ["alias", alias]  # ip sends the alias without a NUL: "" drops it
        if argv:
            self._ip_run(ns, ["link", "set", "dev", check_name(name), *argv], f"set options of {name}")
        else:
            self.get_link(ns, name)  # nothing to change, but a missing link is still an error

    # -- addresses and routes -----------------------------------------------------------------------

    def add_address(self, ns: Namespace, name: str, address: Address) -> None:
        """See :meth:`LinkBackend.add_address`."""
        # IPv4 gets the broadcast address the reference sets (`brd +`: all host bits set).
        brd = ["broadcast", "+"] if address.version == 4 and address.prefixlen < 31 else []
        self._ip_run(ns, ["address", "add", str(address), *brd, "dev", check_name(name)], f"add address {address}")

    def delete_address(self, ns: Namespace, name: str, address: Address) -> None:
        """See :meth:`LinkBackend.delete_address`."""
        self._ip_run(ns, ["address", "delete", str(address), "dev", check_name(name)],
                     f"delete address {address}")

    def _route_args(self, route: Route, deleting: bool) -> list[str]:
        # `prepend` sends NLM_F_CREATE without NLM_F_EXCL (`add` sends both): the reference adds routes that way
        # (netlink.RouteAddEcmp), so a second route to a destination through another gateway or device is accepted.
        args = [f"-{route.version}", "route", "delete" if deleting else "prepend", str(route.dst)]
        if route.gateway is not None:
            args += ["via", str(route.gateway)]
        if route.device is not None:
            args += ["dev", check_name(route.device)]
        if route.metric is not None:
            args += ["metric", str(route.metric)]
        args += ["table", str(route.table)]
        if not deleting:
            if route.version == 4:
                # Always explicit: `ip` would otherwise pick "link" for routes without a gateway.
                args += ["scope", "global" if route.scope == "universe" else route.scope]
            if route.source is not None:
                args += ["src", str(route.source)]
            args += ["proto", "boot"]  # the reference's (vishvananda/netlink's default)
        return args

    def add_route(self, ns: Namespace, route: Route) -> None:
        """See :meth:`LinkBackend.add_route`."""
        self._ip_run(ns, self._route_args(route, deleting=False), f"add route to {route.dst}")

    def delete_route(self, ns: Namespace, route: Route) -> None:
        """See :meth:`LinkBackend.delete_route`."""
        self._ip_run(ns, self._route_args(route, deleting=True), f"delete route to {route.dst}")


def _port_vlans_of(data: Any, name: str, what: str) -> tuple[PortVlan, ...]:
    """Read ``bridge -json vlan show``: a list of ``{"ifname", "vlans"}`` (older iproute2: a dict by name)."""
    if isinstance(data, dict):
        data = [{"ifname": key, "vlans": value} for key, value in data.items()]
    if not isinstance(data, list):
        raise InternalError(f"{what}: unexpected output of bridge -json")
    entries: dict[int, PortVlan] = {}
    try:
        for port in data:
            if port.get("ifname") != name:
                continue
            for vlan in port.get("vlans", []):
                flags = vlan.get("flags", [])
                first = int(vlan["vlan"])
                # A range is reported once, as vlan..vlanEnd with common flags.
                for vid in range(first, int(vlan.get("vlanEnd", first)) + 1):
                    entries[vid] = PortVlan(vid=vid, pvid="PVID" in flags, untagged="Egress Untagged" in flags)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InternalError(f"{what}: unexpected output of bridge -json") from exc
    return tuple(entries[vid] for vid in sorted(entries))


def _link_of(entry: dict[str, Any], addresses: list[Address]) -> Link:
    flags = set(entry.get("flags", []))
    info = entry.get("linkinfo", {})
    kind = "loopback" if entry.get("link_type") == "loopback" else info.get("info_kind") or "device"
    slave = info.get("info_slave_data", {}) if info.get("info_slave_kind") == "bridge" else {}
    data = info.get("info_data", {}) if kind == "bridge" else {}
    return Link(
        index=int(entry["ifindex"]),
        name=entry["ifname"],
        kind=kind,
        mac=entry.get("address") or "00:00:00:00:00:00",
        mtu=int(entry["mtu"]),
        admin_up="UP" in flags,
        carrier="LOWER_UP" in flags,
        oper_state=str(entry.get("operstate", "unknown")).lower(),
        master=entry.get("master"),
        promiscuous="PROMISC" in flags,
        allmulti="ALLMULTI" in flags,
        txqueuelen=int(entry.get("txqlen", 0)),
        alias=str(entry.get("ifalias", "")),
        vlan_filtering=bool(data.get("vlan_filtering", 0)),
        hairpin=bool(slave.get("hairpin", False)),
        isolated=bool(slave.get("isolated", False)),
        addresses=sorted_addresses(addresses),
    )


def _routes_of(entry: dict[str, Any], family: int, table: int) -> list[Route]:
    """A unicast route of ``ip -j route``: one per nexthop of a multipath route (see the netlink backend)."""
    if entry.get("type", "unicast") != "unicast":
        return []
    hops = entry.get("nexthops", [entry])
    if any("dev" not in hop for hop in hops):
        return []
    dst = entry["dst"]
    if dst == "default":
        dst = "0.0.0.0/0" if family == 4 else "::/0"
    return [Route(
        dst=netaddr.IPNetwork(dst),
        gateway=hop.get("gateway"),
        device=hop.get("dev"),
        metric=int(entry.get("metric", 0)),
        table=table,
        scope=entry.get("scope", "universe") if family == 4 else "universe",
        source=entry.get("prefsrc"),
    ) for hop in hops]
