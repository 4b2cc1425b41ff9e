"""The reference's masquerade layouts on strings (standard library only).

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

The bridge engine plans with these functions directly; the link port's typed
:class:`~cnicore.links.MasqueradePlan` and ``masquerade_plan`` adapt them.
"""

from __future__ import annotations

from cnicore._gofmt import go_quote
from cnicore.spec._goint import ip_value_text, mask_value, parse_interface


def _sha512_module() -> Any:
    # The C module alone: hashlib loads OpenSSL's bindings, milliseconds of an exec'd bridge's start.
    from cnicore._lazy import import_module

    for name in ("_sha512", "_sha2", "hashlib"):  # 3.11, 3.12+, an interpreter built without them
        try:
            return import_module(name)
        except ImportError:
            continue
    raise ImportError("no SHA-512 implementation")  # pragma: no cover


def _sha512_hex(data: bytes) -> str:
    global _SHA512
    if _SHA512 is None:  # loaded on first use: an exec'd tuning never hashes
        _SHA512 = _sha512_module()
    return str(_SHA512.sha512(data).hexdigest())

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

__all__ = ["NFT_MASQUERADE_CHAIN", "NFT_MASQUERADE_TABLE", "LinkInfo", "MasqueradeRules",
           "masquerade_chain_name", "masquerade_comment", "masquerade_rules", "nft_instance_hash",
           "nft_masquerade_comment", "nft_masquerade_rule", "nft_network_hash", "spoof_check_ref_id"]

_SHA512: Any = None
_CHAIN_PREFIX: Final = "CNI-"
# iptables chain names are at most 28 characters: the prefix plus 24 hex digits.
_CHAIN_NAME_MAX: Final = 28


def masquerade_chain_name(network_name: str, container_id: str, prefix: str = "") -> str:
    """``CNI-`` + ``prefix`` + hex digits of ``sha512(network_name + container_id)``, 28 characters."""
    digest = _sha512_hex((network_name + container_id).encode("utf-8"))
    head = _CHAIN_PREFIX + prefix
    return head + digest[: _CHAIN_NAME_MAX - len(head)]


def masquerade_comment(network_name: str, container_id: str) -> str:
    """``name: "<net>" id: "<cid>"`` with Go's ``%q`` quoting."""
    return f"name: {go_quote(network_name)} id: {go_quote(container_id)}"


class MasqueradeRules:
    """The iptables rules for one address: what to add (in order), and what teardown removes.

    Rules are iptables rule specs without the ``-A``/``-D`` verb and chain:
    ``chain_rules`` go into ``chain`` (table ``table``), ``jump_rule`` into
    ``POSTROUTING``; ``legacy_jump_rule`` is the ``-s ip/prefix`` form older
    plugins wrote, which teardown also deletes. ``version`` is 4 or 6 (iptables
    or ip6tables).
    """

    __slots__ = ("chain", "chain_rules", "comment", "jump_rule", "legacy_jump_rule", "table", "version")

    def __init__(self, *, version: int, table: str, chain: str, comment: str,
                 chain_rules: tuple[tuple[str, ...], ...], jump_rule: tuple[str, ...],
                 legacy_jump_rule: tuple[str, ...]) -> None:
        self.version = version
        self.table = table
        self.chain = chain
        self.comment = comment
        self.chain_rules = chain_rules
        self.jump_rule = jump_rule
        self.legacy_jump_rule = legacy_jump_rule


def masquerade_rules(address: str, network_name: str, container_id: str) -> MasqueradeRules:
    """The reference's rules for ``address``, an interface address such as ``"10.1.2.2/24"``."""
    version, value, prefix = parse_interface(address)
    ip = ip_value_text(version, value)
    chain = masquerade_chain_name(network_name, container_id)
    comment = masquerade_comment(network_name, container_id)
    tag = ("-m", "comment", "--comment", comment)
    multicast = "224.0.0.0/4" if version == 4 else "ff00::/8"
    text = f"{ip}/{prefix}"
    return MasqueradeRules(
        version=version,
        table="nat",
        chain=chain,
        comment=comment,
        chain_rules=(
            ("-d", text, "-j", "ACCEPT", *tag),
            ("!", "-d", multicast, "-j", "MASQUERADE", *tag),
        ),
        jump_rule=("-s", ip, "-j", chain, *tag),
        legacy_jump_rule=("-s", text, "-j", chain, *tag),
    )


#: The nftables table the reference's ``ipMasqBackend: nftables`` uses (family ``inet``).
NFT_MASQUERADE_TABLE: Final = "cni_plugins_masquerade"
#: Its per-attachment chain; ``postrouting`` jumps to it.
NFT_MASQUERADE_CHAIN: Final = "masq_checks"
# nftables keeps at most 128 bytes of a comment.
_NFT_COMMENT_MAX: Final = 128


def _hash16(text: str) -> str:
    return _sha512_hex(text.encode("utf-8"))[:16]


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


def nft_masquerade_rule(address: str) -> str:
    """The per-address rule in ``masq_checks``: masquerade what leaves the address's own subnet."""
    version, value, prefix = parse_interface(address)
    family = "ip" if version == 4 else "ip6"
    network = ip_value_text(version, value & mask_value(version, prefix))
    return f"{family} saddr == {ip_value_text(version, value)} {family} daddr != {network}/{prefix} masquerade"


def spoof_check_ref_id(container_id: str, ifname: str) -> str:
    """The MAC spoof check's attachment key: ``<containerID>-<ifname>`` (the reference's ``uniqueID``)."""
    return f"{container_id}-{ifname}"


class LinkInfo:
    """A link as the bridge engine reads it: name, kind (``bridge``, ``veth``...), MAC, MTU, master's name, state.

    What a plain link port (:class:`~cnicore.plugins._bridgecore.LinkPort`) answers.
    """

    __slots__ = ("kind", "mac", "master", "mtu", "name", "oper_state", "promiscuous")

    def __init__(self, *, name: str, kind: str, mac: str, mtu: int, master: str | None, oper_state: str,
                 promiscuous: bool) -> None:
        self.name = name
        self.kind = kind
        self.mac = mac
        self.mtu = mtu
        self.master = master
        self.oper_state = oper_state
        self.promiscuous = promiscuous
