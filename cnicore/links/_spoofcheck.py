"""The reference's MAC spoof check (``macspoofchk``) as plain data: nftables tables, chains and rules.

For one attachment (``refID`` = container ID + ``-`` + interface name) the
reference bridge plugin keeps, in the ``bridge`` family table ``nat``:

- the base chain ``PREROUTING`` (filter, hook prerouting, priority -300, policy
  accept), shared by every attachment and never deleted;
- in it, a rule sending frames that enter through the host veth to the
  attachment's chain: ``iifname "<veth>" jump cni-br-iface-<refID>``;
- the chain ``cni-br-iface-<refID>``, which jumps to ``cni-br-iface-<refID>-mac``;
- that chain, which lets the container's MAC through (``ether saddr <mac>
  return``) and drops everything else.

Every rule carries the comment ``macspoofchk-<refID>``: teardown finds the
``PREROUTING`` rule by it (it needs neither the veth nor the MAC), then deletes
the two chains. Rules are given here as nftables JSON expressions, in the very
form ``nft -j list`` prints them, so a firewall can apply them with ``nft -j -f``
and tests can compare what the kernel holds with what was planned.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from cnicore._linkplan import spoof_check_ref_id

__all__ = [
    "SPOOFCHECK_BASE_CHAIN",
    "SPOOFCHECK_FAMILY",
    "SPOOFCHECK_PRIORITY",
    "SPOOFCHECK_TABLE",
    "SpoofCheckPlan",
    "SpoofCheckRule",
    "spoof_check_comment",
    "spoof_check_plan",
    "spoof_check_ref_id",
]

#: The nftables family of the spoof-check table.
SPOOFCHECK_FAMILY: Final = "bridge"
#: The spoof-check table (family ``bridge``).
SPOOFCHECK_TABLE: Final = "nat"
#: The base chain every attachment's jump rule lives in.
SPOOFCHECK_BASE_CHAIN: Final = "PREROUTING"
#: The base chain's priority (``dstnat`` in the bridge family).
SPOOFCHECK_PRIORITY: Final = -300
_CHAIN_PREFIX: Final = "cni-br-iface-"
_COMMENT_PREFIX: Final = "macspoofchk-"


def spoof_check_comment(ref_id: str) -> str:
    """The comment on every rule of the attachment: ``macspoofchk-<refID>``."""
    return _COMMENT_PREFIX + ref_id


@attrs.frozen(kw_only=True)
class SpoofCheckRule:
    """One rule: the chain it goes into, its nftables JSON expressions and its comment."""

    chain: str
    expr: tuple[dict[str, Any], ...]
    comment: str


@attrs.frozen(kw_only=True)
class SpoofCheckPlan:
    """The attachment's chains and rules, in the order the reference adds them.

    ``iface_chain`` and ``mac_chain`` are the attachment's own chains; ``rules``
    holds the base-chain jump first, then the two chains' rules.
    """

    ref_id: str
    comment: str
    iface_chain: str
    mac_chain: str
    rules: tuple[SpoofCheckRule, ...]


def spoof_check_plan(host_ifname: str, mac: str, ref_id: str) -> SpoofCheckPlan:
    """The rules letting only ``mac`` in through ``host_ifname`` for the attachment ``ref_id``.

    ``host_ifname`` and ``mac`` may be empty when only the names are wanted (teardown).
    """
    comment = spoof_check_comment(ref_id)
    iface_chain = _CHAIN_PREFIX + ref_id
    mac_chain = iface_chain + "-mac"
    rules = (
        SpoofCheckRule(chain=SPOOFCHECK_BASE_CHAIN, comment=comment, expr=(
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": host_ifname}},
            {"jump": {"target": iface_chain}},
        )),
        SpoofCheckRule(chain=iface_chain, comment=comment, expr=({"jump": {"target": mac_chain}},)),
        SpoofCheckRule(chain=mac_chain, comment=comment, expr=(
            {"match": {"op": "==", "left": {"payload": {"protocol": "ether", "field": "saddr"}}, "right": mac}},
            {"return": None},
        )),
        SpoofCheckRule(chain=mac_chain, comment=comment, expr=({"drop": None},)),
    )
    return SpoofCheckPlan(ref_id=ref_id, comment=comment, iface_chain=iface_chain, mac_chain=mac_chain,
                          rules=rules)
