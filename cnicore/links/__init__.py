"""The link port: what plugins ask of the kernel, as typed protocols and plain data.

Plugins never touch the kernel themselves. They hold a :class:`LinkBackend`
(links, addresses, routes, sysctls in network namespaces) and a :class:`Firewall`
(masquerading), and speak to them in the values defined here. Implementations
live in ``cnicore.backends``: ``netlink`` (pyroute2), ``iproute2`` (the ``ip``
command), ``fake`` (in memory; it defines the semantics the others are tested
against); ``iptables`` and ``nftables`` (and an in-memory fake) for the firewall.

This package is pure: it imports only the standard library, netaddr and attrs.
"""

from ._masquerade import (
    NFT_MASQUERADE_CHAIN,
    NFT_MASQUERADE_TABLE,
    MasqueradePlan,
    masquerade_chain_name,
    masquerade_comment,
    masquerade_plan,
    nft_instance_hash,
    nft_masquerade_comment,
    nft_masquerade_rule,
    nft_network_hash,
)
from ._port import Firewall, LinkBackend
from ._sysctl import IPV4_CONF_SETTINGS, IPV6_CONF_SETTINGS, SysctlKey, check_sysctl_key, check_sysctl_value
from ._types import (
    HOST_NAMESPACE,
    MAIN_TABLE,
    Address,
    BridgeSpec,
    Link,
    Namespace,
    PortVlan,
    Route,
    RouteScope,
    VethPair,
    normalize_mac,
)

__all__ = [
    "HOST_NAMESPACE",
    "IPV4_CONF_SETTINGS",
    "IPV6_CONF_SETTINGS",
    "MAIN_TABLE",
    "NFT_MASQUERADE_CHAIN",
    "NFT_MASQUERADE_TABLE",
    "Address",
    "BridgeSpec",
    "Firewall",
    "Link",
    "LinkBackend",
    "MasqueradePlan",
    "Namespace",
    "PortVlan",
    "Route",
    "RouteScope",
    "SysctlKey",
    "VethPair",
    "check_sysctl_key",
    "check_sysctl_value",
    "masquerade_chain_name",
    "masquerade_comment",
    "masquerade_plan",
    "nft_instance_hash",
    "nft_masquerade_comment",
    "nft_masquerade_rule",
    "nft_network_hash",
    "normalize_mac",
]
