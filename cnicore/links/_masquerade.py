"""The reference's iptables masquerade layout, as plain data.

For one container address the reference bridge and ptp plugins make, in table
``nat``, a chain named ``CNI-`` + the first 24 hex digits of
``sha512(network name + container ID)`` holding two rules (accept traffic to the
container's own subnet, masquerade the rest except multicast), and a jump to it
from ``POSTROUTING`` for traffic from the address. Every rule carries the comment
``name: "<net>" id: "<cid>"``. Building the same argv as the reference makes our
rules interoperate with its plugins: either can tear down what the other set up.

The reference's nftables layout (newer plugins, ``ipMasqBackend: nftables``) is a
table ``inet cni_plugins_masquerade`` whose ``postrouting`` chain skips multicast
and jumps to ``masq_checks``, which holds one rule per attachment address, found
again by the hash at the start of its comment (see :func:`nft_masquerade_comment`).
"""

from __future__ import annotations

import hashlib

import attrs
import netaddr

from cnicore._gofmt import go_quote

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

_CHAIN_PREFIX = "CNI-"
# iptables chain names are at most 28 characters: the prefix plus 24 hex digits.
_CHAIN_NAME_MAX = 28


def masquerade_chain_name(network_name: str, container_id: str, prefix: str = "") -> str:
    """``CNI-`` + ``prefix`` + hex digits of ``sha512(network_name + container_id)``, 28 characters."""
    digest = hashlib.sha512((network_name + container_id).encode("utf-8")).hexdigest()
    head = _CHAIN_PREFIX + prefix
    return head + digest[: _CHAIN_NAME_MAX - len(head)]


def masquerade_comment(network_name: str, container_id: str) -> str:
    """``name: "<net>" id: "<cid>"`` with Go's ``%q`` quoting."""
    return f"name: {go_quote(network_name)} id: {go_quote(container_id)}"


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


def masquerade_plan(address: netaddr.IPNetwork, network_name: str, container_id: str) -> MasqueradePlan:
    """The reference's rules for ``address`` (an interface address such as ``10.1.2.2/24``)."""
    address = netaddr.IPNetwork(address)
    chain = masquerade_chain_name(network_name, container_id)
    comment = masquerade_comment(network_name, container_id)
    tag = ("-m", "comment", "--comment", comment)
    multicast = "224.0.0.0/4" if address.version == 4 else "ff00::/8"
    interface = f"{address.ip}/{address.prefixlen}"
    return MasqueradePlan(
        version=int(address.version),
        table="nat",
        chain=chain,
        comment=comment,
        chain_rules=(
            ("-d", interface, "-j", "ACCEPT", *tag),
            ("!", "-d", multicast, "-j", "MASQUERADE", *tag),
        ),
        jump_rule=("-s", str(address.ip), "-j", chain, *tag),
        legacy_jump_rule=("-s", interface, "-j", chain, *tag),
    )


#: The nftables table the reference's ``ipMasqBackend: nftables`` uses (family ``inet``).
NFT_MASQUERADE_TABLE = "cni_plugins_masquerade"
#: Its per-attachment chain; ``postrouting`` jumps to it.
NFT_MASQUERADE_CHAIN = "masq_checks"
# nftables keeps at most 128 bytes of a comment.
_NFT_COMMENT_MAX = 128


def _hash16(text: str) -> str:
    return hashlib.sha512(text.encode("utf-8")).hexdigest()[:16]


def nft_network_hash(network_name: str) -> str:
    """The first 16 hex digits of ``sha512(network_name)``: the prefix of a network's rule comments."""
    return _hash16(network_name)


def nft_instance_hash(network_name: str, ifname: str, container_id: str) -> str:
    """``<hash16(net)>-<hash16(ifname:containerID)>``: the prefix of one attachment's rule comment."""
    return f"{_hash16(network_name)}-{_hash16(ifname + ':' + container_id)}"


def nft_masquerade_comment(network_name: str, ifname: str, container_id: str) -> str:
    """The nftables rule comment: the instance hash, then a readable (quote-free, truncated) description."""
    def clean(text: str) -> str:
        return text.replace('"', "")

    comment = (f"{nft_instance_hash(network_name, ifname, container_id)}, net: {clean(network_name)}, "
               f"if: {clean(ifname)}, id: {clean(container_id)}")
    return comment[:_NFT_COMMENT_MAX]


def nft_masquerade_rule(address: netaddr.IPNetwork) -> str:
    """The per-address rule in ``masq_checks``: masquerade what leaves the address's own subnet."""
    address = netaddr.IPNetwork(address)
    family = "ip" if address.version == 4 else "ip6"
    return f"{family} saddr == {address.ip} {family} daddr != {address.cidr} masquerade"
