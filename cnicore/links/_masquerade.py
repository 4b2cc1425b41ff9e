"""The reference's masquerade layouts, as the link port's typed values.

The layouts themselves (chain names, comments, the iptables rules of one
address, the nftables rule and its comment) are decided on strings in
:mod:`cnicore._linkplan`, which the bridge engine uses directly; this module is
their typed face: :func:`masquerade_plan` takes a netaddr network and returns an
attrs :class:`MasqueradePlan`.
"""

from __future__ import annotations

import attrs
import netaddr

from cnicore._linkplan import (
    NFT_MASQUERADE_CHAIN,
    NFT_MASQUERADE_TABLE,
    masquerade_chain_name,
    masquerade_comment,
    masquerade_rules,
    nft_instance_hash,
    nft_masquerade_comment,
    nft_network_hash,
)
from cnicore._linkplan import nft_masquerade_rule as _nft_masquerade_rule

__all__ = [
    "NFT_MASQUERADE_CHAIN",
    "NFT_MASQUERADE_TABLE",
    "MasqueradePlan",
    "masquerade_chain_name",
    "masquerade_comment",
    "masquerade_plan",
    "nft_instance_hash",
    "nft_masquerade_comment",
    "nft_masquerade_rule",
    "nft_network_hash",
]


@attrs.frozen(kw_only=True)
class MasqueradePlan:
    """What to add (in order) to set masquerading up for one address, and what teardown removes.

    Rules are iptables rule specs without the ``-A``/``-D`` verb and chain:
    ``chain_rules`` go into ``chain``, ``jump_rule`` into ``POSTROUTING``;
    ``legacy_jump_rule`` is the ``-s ip/prefix`` form older plugins wrote, which
    teardown also deletes.
    """

    version: int
    table: str
    chain: str
    comment: str
    chain_rules: tuple[tuple[str, ...], ...]
    jump_rule: tuple[str, ...]
    legacy_jump_rule: tuple[str, ...]


def _text(address: netaddr.IPNetwork | str) -> str:
    network = netaddr.IPNetwork(address)
    return f"{network.ip}/{network.prefixlen}"


def masquerade_plan(address: netaddr.IPNetwork, network_name: str, container_id: str) -> MasqueradePlan:
    """The reference's rules for ``address`` (an interface address such as ``10.1.2.2/24``)."""
    rules = masquerade_rules(_text(address), network_name, container_id)
    return MasqueradePlan(version=rules.version, table=rules.table, chain=rules.chain, comment=rules.comment,
                          chain_rules=rules.chain_rules, jump_rule=rules.jump_rule,
                          legacy_jump_rule=rules.legacy_jump_rule)


def nft_masquerade_rule(address: netaddr.IPNetwork) -> str:
    """The per-address rule in ``masq_checks``: masquerade what leaves the address's own subnet."""
    return _nft_masquerade_rule(_text(address))
