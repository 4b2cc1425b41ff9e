"""The link port: the few kernel operations the plugins need, and nothing more.

Plugins (bridge, loopback, ptp) never touch the kernel: they call a
:class:`LinkBackend`. Implementations live in ``cnicore.backends`` (netlink via
rtnetlink, pyroute2, iproute2 via subprocess, and the in-memory fake that defines the
semantics). Every implementation raises only cnicore errors:

- :class:`~cnicore.NamespaceNotFoundError`: the namespace path does not exist (any more);
- :class:`~cnicore.NotFoundError`: no such link, address or route;
- :class:`~cnicore.AlreadyExistsError`: a link name, address or route is taken;
- :class:`~cnicore.PermissionDeniedError`: the process lacks CAP_NET_ADMIN (or the
  kernel refused, e.g. an IPv6 address on a link with IPv6 disabled);
- :class:`~cnicore.InvalidEnvironmentError`: an interface name the kernel would refuse
  (checked before anything is sent, with the CNI rules: at most 15 bytes, ...);
- :class:`~cnicore.InternalError`: anything else the kernel refused (unreachable gateway...).

Each method says whether it is idempotent: calling an idempotent method twice
leaves the same state and does not fail the second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import netaddr

from ._rules import RuleEdit
from ._types import Address, AddressState, BridgeSpec, Link, Namespace, PortVlan, Route, VethPair

__all__ = ["Firewall", "LinkBackend", "NftFirewall", "RuleTables"]


@runtime_checkable
class LinkBackend(Protocol):
    """Links, addresses, routes and sysctls in network namespaces."""

    #: Short name of the implementation ("netlink", "iproute2", "fake", ...).
    name: str

    def open_namespace(self, path: str) -> Namespace:
        """Check that the namespace at ``path`` exists and return its handle.

        Raises :class:`NamespaceNotFoundError` if it does not. Never creates one.
        Idempotent (read-only). Later calls with the handle raise
        :class:`NamespaceNotFoundError` if the namespace has gone since.
        """
        ...

    def host_namespace(self) -> Namespace:
        """The namespace of the calling process. Idempotent (read-only)."""
        ...

    def ensure_bridge(self, ns: Namespace, spec: BridgeSpec) -> Link:
        """Create the bridge unless it exists, switch promiscuous mode on if asked, bring it up.

        An existing link of that name that is not a bridge raises
        :class:`AlreadyExistsError` ``"%q already exists but is not a bridge"``.
        Idempotent.
        """
        ...

    def create_veth(
        self,
        container_ns: Namespace,
        name: str,
        host_ns: Namespace,
        *,
        mtu: int | None = None,
        container_mac: str | None = None,
    ) -> VethPair:
        """Create a veth pair: ``name`` born inside ``container_ns``, its peer in ``host_ns``.

        The container end is created directly in its namespace (never created
        elsewhere and moved), so a half-made pair is never visible under the
        container's name in the host. The host end is named ``veth`` + 8 random
        lowercase hex digits, drawn again when the name is taken. Both ends are
        left down, with a transmit queue length of 0 as the reference makes them.
        If ``name`` exists in the container namespace, raises
        :class:`AlreadyExistsError` ``container veth name (%q) peer provided (%q)
        already exists``. Not idempotent.
        """
        ...

    def get_link(self, ns: Namespace, name: str) -> Link:
        """The link called ``name``, or :class:`NotFoundError`. Idempotent (read-only)."""
        ...

    def list_links(self, ns: Namespace) -> tuple[Link, ...]:
        """Every link in the namespace, by index. Idempotent (read-only)."""
        ...

    def delete_link(self, ns: Namespace, name: str) -> None:
        """Delete the link (a veth takes its peer along); :class:`NotFoundError` if missing.

        Routes through the link and its addresses go with it. Not idempotent.
        """
        ...

    def set_link_up(self, ns: Namespace, name: str, up: bool = True) -> None:
        """Bring the link up (or down with ``up=False``). Idempotent.

        Going down drops the routes through the link and, unless
        ``keep_addr_on_down``, its IPv6 addresses; going up adds the kernel's
        subnet routes for the addresses it has.
        """
        ...

    def set_master(self, ns: Namespace, name: str, master: str | None) -> None:
        """Attach the link to the bridge ``master`` (or detach with ``None``). Idempotent."""
        ...

    def set_hairpin(self, ns: Namespace, name: str, on: bool) -> None:
        """Set hairpin mode on a bridge port; :class:`NotFoundError` if it is no port. Idempotent."""
        ...

    def set_port_isolation(self, ns: Namespace, name: str, on: bool) -> None:
        """Set (or clear) the bridge port's isolation flag (``Link.isolated``).

        :class:`NotFoundError` if the link is no bridge port. Idempotent.
        """
        ...

    def set_port_vlans(self, ns: Namespace, name: str, *, remove: tuple[int, ...] = (),
                       add: tuple[PortVlan, ...] = ()) -> None:
        """Edit the bridge port's VLAN table: drop the VLAN IDs in ``remove``, then add ``add``.

        A port joins its bridge with the kernel's default entry (VLAN 1, PVID,
        untagged). Adding a VLAN the port has replaces its flags, as the kernel
        does: the PVID moves to the last entry added with ``pvid`` and is lost by
        its VLAN when re-added without. Removing a VLAN the port lacks is not an
        error. :class:`NotFoundError` if the link is no bridge port;
        :class:`InternalError` if the kernel has no VLAN filtering support.
        Idempotent.
        """
        ...

    def list_port_vlans(self, ns: Namespace, name: str) -> tuple[PortVlan, ...]:
        """The bridge port's VLAN table, by VLAN ID.

        :class:`NotFoundError` if the link is no bridge port. Idempotent (read-only).
        """
        ...

    def set_mac(self, ns: Namespace, name: str, mac: str) -> None:
        """Set the link's MAC address. Idempotent."""
        ...

    def set_mtu(self, ns: Namespace, name: str, mtu: int) -> None:
        """Set the link's MTU. Idempotent."""
        ...

    def set_link_options(self, ns: Namespace, name: str, *, promiscuous: bool | None = None,
                         allmulti: bool | None = None, txqueuelen: int | None = None,
                         alias: str | None = None) -> None:
        """Set the link's flags and attributes given (``None`` leaves one as it is). Idempotent.

        ``promiscuous`` and ``allmulti`` switch the IFF_PROMISC and IFF_ALLMULTI
        flags; ``txqueuelen`` (0 or more) sets the transmit queue length;
        ``alias`` the interface alias (``""`` removes it; at most 127 bytes).
        :class:`NotFoundError` if there is no such link.
        """
        ...

    def add_address(self, ns: Namespace, name: str, address: Address) -> None:
        """Add an address; :class:`AlreadyExistsError` if the link has it. Not idempotent.

        On an up link the kernel also adds the route to the address's subnet.
        """
        ...

    def delete_address(self, ns: Namespace, name: str, address: Address) -> None:
        """Remove an address; :class:`NotFoundError` if the link does not have it. Not idempotent."""
        ...

    def list_addresses(self, ns: Namespace, name: str) -> tuple[Address, ...]:
        """The link's addresses, sorted (IPv4 first), without kernel-made IPv6 link-local ones.

        Idempotent (read-only).
        """
        ...

    def list_address_states(self, ns: Namespace, name: str) -> tuple[AddressState, ...]:
        """Every address of the link, the kernel's IPv6 link-local ones included, with its DAD state.

        Sorted as :meth:`list_addresses` sorts. An IPv6 address added while DAD is
        on (``accept_dad`` above 0 for the link or ``all``) stays ``tentative``
        until DAD has run on the up link; with DAD off it never is. Plugins poll
        this to wait for DAD. Idempotent (read-only).
        """
        ...

    def add_route(self, ns: Namespace, route: Route) -> None:
        """Add a route as the reference plugins do (``proto boot``, no ``NLM_F_EXCL``).

        A route to a destination that already has one with the same table and
        metric through another gateway or device is added beside it (a container
        on two networks gets a default route on each interface; IPv6 merges them
        into one multipath route). :class:`AlreadyExistsError` if the very same
        route (destination, table, metric, gateway, device) exists. Not idempotent.
        """
        ...

    def delete_route(self, ns: Namespace, route: Route) -> None:
        """Delete the first route matching ``route`` (fields left ``None`` match anything);
        :class:`NotFoundError` if none does. Not idempotent.
        """
        ...

    def list_routes(self, ns: Namespace, *, version: int | None = None, table: int = 254) -> tuple[Route, ...]:
        """Unicast routes of one table (the main table by default), sorted, without IPv6 link-local ones.

        Includes the routes the kernel adds by itself for the subnets of the
        addresses on up links (IPv4: scope link, ``source`` the address, metric 0;
        IPv6: metric 256). Each next hop of a multipath route is listed as a route.

        Idempotent (read-only).
        """
        ...

    def read_sysctl(self, ns: Namespace, key: str) -> str:
        """Read one of the sysctls plugins use (see :func:`check_sysctl_key`) in the namespace.

        :class:`NotFoundError` if it names an interface that does not exist.
        Idempotent (read-only).
        """
        ...

    def write_sysctl(self, ns: Namespace, key: str, value: str | int) -> None:
        """Write one of the sysctls plugins use in the namespace. Idempotent."""
        ...

    def read_net_sysctl(self, ns: Namespace, path: str) -> str:
        """Read any network sysctl: ``path`` below ``/proc/sys`` (see :func:`check_net_sysctl_path`).

        The text as the kernel prints it, without the trailing newline.
        :class:`NotFoundError` when the kernel has no such sysctl in the namespace.
        Idempotent (read-only).
        """
        ...

    def write_net_sysctl(self, ns: Namespace, path: str, value: str) -> None:
        """Write ``value`` as it is into any network sysctl (the tuning plugin's ``sysctl``).

        :class:`NotFoundError` when there is no such sysctl; :class:`InternalError`
        when the kernel refuses the value. Idempotent.
        """
        ...


@runtime_checkable
class Firewall(Protocol):
    """Source NAT (masquerade) for a container's address, as the reference plugins lay it out."""

    #: Short name of the implementation ("iptables", "fake", ...).
    name: str

    def setup_masquerade(self, address: netaddr.IPNetwork, network_name: str, container_id: str, *,
                         ifname: str = "") -> None:
        """Masquerade traffic from ``address.ip`` leaving its subnet (``address`` keeps its host part).

        Lays the rules out as the reference does (iptables: :func:`masquerade_plan`;
        nftables: :func:`nft_masquerade_rule`). ``ifname`` (the container's interface)
        is part of the nftables layout's key and ignored by iptables'; plugins pass it.
        Idempotent (rules already there are not added twice).
        """
        ...

    def teardown_masquerade(self, address: netaddr.IPNetwork, network_name: str, container_id: str, *,
                            ifname: str = "") -> None:
        """Remove what :meth:`setup_masquerade` made. Idempotent (missing rules and chains are fine)."""
        ...

    def setup_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str, *,
                          ifname: str = "") -> None:
        """Masquerade every one of an attachment's addresses, in as few steps as the layout allows.

        What plugins call (once per ADD). The nftables layout also drops rules a
        previous ADD of the same attachment left behind, as the reference does,
        which is why the addresses must come together. Idempotent.
        """
        ...

    def teardown_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str,
                             *, ifname: str = "") -> None:
        """Remove what :meth:`setup_masquerades` made for the attachment. Idempotent."""
        ...


@runtime_checkable
class NftFirewall(Firewall, Protocol):
    """A firewall speaking nftables: the reference's nftables masquerade layout and MAC spoof check.

    The masquerade methods lay the rules out as ``ipMasqBackend: nftables`` does
    (:func:`nft_masquerade_rule`); the spoof-check methods as ``macspoofchk`` does
    (:func:`spoof_check_plan`).
    """

    def setup_mac_spoof_check(self, host_ifname: str, mac: str, ref_id: str) -> None:
        """Let only frames from ``mac`` in through ``host_ifname`` (table ``bridge nat``).

        ``ref_id`` names the attachment (:func:`spoof_check_ref_id`). The table and
        base chain are created when missing; the attachment's chains are rewritten,
        so calling it again with a new veth or MAC replaces the old rules. Idempotent.
        """
        ...

    def teardown_mac_spoof_check(self, ref_id: str) -> None:
        """Remove the attachment's jump rule and chains; the table and base chain stay.

        Idempotent (nothing to remove is fine).
        """
        ...


@runtime_checkable
class RuleTables(Protocol):
    """iptables tables edited by the meta plugins (firewall, portmap) as plain :class:`RuleEdit` values."""

    def edit_rules(self, edits: Sequence[RuleEdit]) -> None:
        """Carry the edits out, each in order (see :class:`RuleEdit`): one transaction per table and family.

        Missing chains are created; a rule to insert or append that is there
        already, or to delete that is not, is skipped. Idempotent.
        """
        ...

    def table_rules(self, version: int, table: str) -> dict[str, tuple[str, ...]]:
        """Every chain of the table with its rules as ``iptables-save`` prints them (``-A CHAIN ...``).

        Idempotent (read-only).
        """
        ...
