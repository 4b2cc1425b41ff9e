"""What every backend shares: argument checks, errno translation, veth peer names, sort orders;
and what every firewall shares: the iptables rule text, the one-address masquerade methods.

Checks that run before anything reaches the kernel live here so that all
backends refuse bad input with the very same error.
"""

from __future__ import annotations

from collections.abc import Iterable

import netaddr

from cnicore._ruleplan import edit_lines
from cnicore.links import Address, Link, Route, RuleEdit, iptables_rule_text, normalize_mac
from cnicore.spec._validate import validate_interface_name

# The tool runner and errno translation live with the plain runners (their users need no typed value).
from ._kernel import (
    MAX_ALIAS_BYTES,
    MAX_MTU,
    MIN_MTU,
    PEER_NAME_ATTEMPTS,
    VETH_TXQUEUELEN,
    check_link_options,
    check_mtu,
    check_unicast_mac,
    not_a_bridge,
    random_peer_name,
    veth_exists,
)
from ._tools import error_from_errno, namespace_gone, run_tool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cnicore.links import Firewall

__all__ = [
    "MAX_ALIAS_BYTES",
    "MAX_MTU",
    "MIN_MTU",
    "PEER_NAME_ATTEMPTS",
    "VETH_TXQUEUELEN",
    "OneAddressMasquerade",
    "address_sort_key",
    "check_mac",
    "check_mtu",
    "apply_rule_edit",
    "check_link_options",
    "check_name",
    "check_veth_request",
    "error_from_errno",
    "iptables_rule_text",
    "is_reported_address",
    "is_reported_route",
    "links_by_index",
    "namespace_gone",
    "not_a_bridge",
    "random_peer_name",
    "run_tool",
    "route_sort_key",
    "sorted_addresses",
    "sorted_routes",
    "veth_exists",
]


_LINK_LOCAL_V6 = netaddr.IPNetwork("fe80::/10")
_MULTICAST_V6 = netaddr.IPNetwork("ff00::/8")


def check_name(name: str) -> str:
    """Refuse an interface name the kernel would refuse, with the CNI rules' error."""
    validate_interface_name(name)
    return name


def check_mac(mac: str) -> str:
    """The MAC normalised; refuse multicast and all-zero ones (the kernel would)."""
    return check_unicast_mac(normalize_mac(mac), mac)


def check_veth_request(name: str, mtu: int | None, container_mac: str | None) -> str | None:
    """Refuse a veth pair the kernel would refuse (the container end's name, the MTU, the container end's MAC),
    before anything is made; the MAC normalised (None when none was asked for)."""
    check_name(name)
    mac = check_mac(container_mac) if container_mac is not None else None
    if mtu is not None:
        check_mtu(mtu)
    return mac


def is_reported_address(address: Address) -> bool:
    """Addresses the port reports: all but the IPv6 link-local ones the kernel makes itself."""
    return not (address.version == 6 and address.ip in _LINK_LOCAL_V6)


def is_reported_route(route: Route) -> bool:
    """Routes the port reports: unicast ones, without the kernel's IPv6 link-local routes."""
    if route.version == 6:
        first = netaddr.IPAddress(route.dst.first, 6)
        if route.dst.prefixlen >= 10 and first in _LINK_LOCAL_V6:
            return False
        if route.dst.prefixlen >= 8 and first in _MULTICAST_V6:
            return False
    return True


def address_sort_key(address: Address) -> tuple[int, int, int]:
    """IPv4 first, then by IP and prefix length."""
    return (address.version, int(address.ip), address.prefixlen)


def route_sort_key(route: Route) -> tuple[int, int, int, int, str, int]:
    """By family, destination, metric, device and gateway."""
    return (
        route.version,
        int(route.dst.first),
        route.dst.prefixlen,
        route.metric if route.metric is not None else -1,
        route.device or "",
        int(route.gateway) if route.gateway is not None else -1,
    )


def sorted_addresses(addresses: Iterable[Address]) -> tuple[Address, ...]:
    """Reported addresses in port order."""
    return tuple(sorted((a for a in addresses if is_reported_address(a)), key=address_sort_key))


def sorted_routes(routes: Iterable[Route]) -> tuple[Route, ...]:
    """Reported routes in port order."""
    return tuple(sorted((r for r in routes if is_reported_route(r)), key=route_sort_key))


def links_by_index(links: Iterable[Link]) -> tuple[Link, ...]:
    """Links in port order (by index)."""
    return tuple(sorted(links, key=lambda link: link.index))


def apply_rule_edit(chains: dict[str, list[str]], edit: RuleEdit) -> list[str]:
    """Carry ``edit`` out on a model of one table: see :func:`cnicore._ruleplan.edit_lines` (the one implementation)."""
    return edit_lines(chains, edit)


class OneAddressMasquerade:
    """Mixin of the firewalls: the one-address masquerade methods are the attachment ones with one address.

    A firewall implements :meth:`~cnicore.links.Firewall.setup_masquerades` and
    :meth:`~cnicore.links.Firewall.teardown_masquerades`; these two follow.
    """

    def setup_masquerade(self: Firewall, address: netaddr.IPNetwork, network_name: str, container_id: str, *,
                         ifname: str = "") -> None:
        """See :meth:`Firewall.setup_masquerade` (the attachment's only address: see :meth:`setup_masquerades`)."""
        self.setup_masquerades([address], network_name, container_id, ifname=ifname)

    def teardown_masquerade(self: Firewall, address: netaddr.IPNetwork, network_name: str, container_id: str, *,
                            ifname: str = "") -> None:
        """See :meth:`Firewall.teardown_masquerade`."""
        self.teardown_masquerades([address], network_name, container_id, ifname=ifname)


