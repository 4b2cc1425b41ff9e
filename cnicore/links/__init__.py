"""The link port: what plugins ask of the kernel, as typed protocols and plain data.

Plugins never touch the kernel themselves. They hold a :class:`LinkBackend`
(links, addresses, routes, sysctls in network namespaces), a :class:`Firewall`
(masquerading), for the nftables-only features a :class:`NftFirewall` (MAC
spoof check), and, for the meta plugins (firewall, portmap), :class:`RuleTables`
(iptables tables edited through plain :class:`RuleEdit` values, laid out as the
reference plugins lay them out), and speak to them in the values defined here. Implementations
live in ``cnicore.backends``: ``netlink`` (rtnetlink), ``iproute2`` (the ``ip``
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
from ._port import Firewall, LinkBackend, NftFirewall, RuleTables
from ._portmap import (
    PORTMAP_DNAT_CHAIN,
    PORTMAP_MASQ_CHAIN,
    PORTMAP_SETMARK_CHAIN,
    PortMapping,
    portmap_add_edit,
    portmap_chain_name,
    portmap_del_edit,
    portmap_dnat_rules,
)
from ._rules import (
    FIREWALL_ADMIN_CHAIN,
    FIREWALL_FORWARD_CHAIN,
    ISOLATION_STAGE1_CHAIN,
    ISOLATION_STAGE2_CHAIN,
    RuleEdit,
    RuleOp,
    firewall_add_edits,
    firewall_address_rules,
    firewall_admin_rule,
    firewall_del_edits,
    firewall_forward_rule,
    iptables_rule_text,
    isolation_edits,
)
from ._spoofcheck import (
    SPOOFCHECK_BASE_CHAIN,
    SPOOFCHECK_FAMILY,
    SPOOFCHECK_PRIORITY,
    SPOOFCHECK_TABLE,
    SpoofCheckPlan,
    SpoofCheckRule,
    spoof_check_comment,
    spoof_check_plan,
    spoof_check_ref_id,
)
from ._sysctl import (
    IPV4_CONF_SETTINGS,
    IPV6_CONF_SETTINGS,
    SysctlKey,
    check_net_sysctl_path,
    check_sysctl_key,
    check_sysctl_value,
)
from ._types import (
    HOST_NAMESPACE,
    MAIN_TABLE,
    Address,
    AddressState,
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
    "FIREWALL_ADMIN_CHAIN",
    "FIREWALL_FORWARD_CHAIN",
    "HOST_NAMESPACE",
    "IPV4_CONF_SETTINGS",
    "IPV6_CONF_SETTINGS",
    "ISOLATION_STAGE1_CHAIN",
    "ISOLATION_STAGE2_CHAIN",
    "MAIN_TABLE",
    "NFT_MASQUERADE_CHAIN",
    "NFT_MASQUERADE_TABLE",
    "PORTMAP_DNAT_CHAIN",
    "PORTMAP_MASQ_CHAIN",
    "PORTMAP_SETMARK_CHAIN",
    "SPOOFCHECK_BASE_CHAIN",
    "SPOOFCHECK_FAMILY",
    "SPOOFCHECK_PRIORITY",
    "SPOOFCHECK_TABLE",
    "Address",
    "AddressState",
    "BridgeSpec",
    "Firewall",
    "Link",
    "LinkBackend",
    "MasqueradePlan",
    "Namespace",
    "NftFirewall",
    "PortMapping",
    "PortVlan",
    "Route",
    "RouteScope",
    "RuleEdit",
    "RuleOp",
    "RuleTables",
    "SpoofCheckPlan",
    "SpoofCheckRule",
    "SysctlKey",
    "VethPair",
    "check_net_sysctl_path",
    "check_sysctl_key",
    "check_sysctl_value",
    "firewall_add_edits",
    "firewall_address_rules",
    "firewall_admin_rule",
    "firewall_del_edits",
    "firewall_forward_rule",
    "iptables_rule_text",
    "isolation_edits",
    "masquerade_chain_name",
    "masquerade_comment",
    "masquerade_plan",
    "nft_instance_hash",
    "nft_masquerade_comment",
    "nft_masquerade_rule",
    "nft_network_hash",
    "normalize_mac",
    "portmap_add_edit",
    "portmap_chain_name",
    "portmap_del_edit",
    "portmap_dnat_rules",
    "spoof_check_comment",
    "spoof_check_plan",
    "spoof_check_ref_id",
]
