"""Masquerading with nftables on address strings: the one implementation (standard library only).

The reference's ``ipMasqBackend: nftables`` layout (see
:mod:`._nftables`): one table ``inet cni_plugins_masquerade`` whose
``postrouting`` chain skips multicast and jumps to ``masq_checks``, holding one
rule per attachment address, found again by the attachment's hash at the start
of its comment. Every change is one ``nft -f -`` script (one transaction); each
operation reads what it needs first (one ``nft -j list``). The typed
:class:`~cnicore.backends.NftablesFirewall` and the executed bridge's
:class:`NftMasquerader` both run :func:`setup_masquerades` and
:func:`teardown_masquerades` on an :class:`NftTool`.
"""

from __future__ import annotations

from cnicore._linkplan import (
    NFT_MASQUERADE_CHAIN,
    NFT_MASQUERADE_TABLE,
    nft_instance_hash,
    nft_masquerade_comment,
    nft_masquerade_rule,
)

from ._tools import NftTool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["NftMasquerader", "setup_masquerades", "teardown_masquerades"]

_TABLE = f"inet {NFT_MASQUERADE_TABLE}"
_TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
_CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"


def _handles(tool: NftTool, prefix: str) -> list[int]:
    """The handles of the ``masq_checks`` rules whose comment starts with ``prefix``."""
    return [int(item["rule"]["handle"])
            for item in tool.list_objects("chain", "inet", NFT_MASQUERADE_TABLE, NFT_MASQUERADE_CHAIN)
            if "rule" in item and str(item["rule"].get("comment", "")).startswith(prefix)]


def setup_masquerades(tool: NftTool, addresses: Sequence[str], network_name: str, container_id: str,
                      ifname: str) -> None:
    """The attachment's rules (``"ip/prefixlen"`` addresses), replacing what an earlier ADD of it left."""
    stale = _handles(tool, nft_instance_hash(network_name, ifname, container_id))
    comment = nft_masquerade_comment(network_name, ifname, container_id)
    lines = [
        f'add table {_TABLE} {{ comment "{_TABLE_COMMENT}" ; }}',
        f'add chain {_TABLE} {NFT_MASQUERADE_CHAIN} {{ comment "{_CHAIN_COMMENT}" ; }}',
        f"add chain {_TABLE} postrouting {{ type nat hook postrouting priority 100 ; }}",
        # Rewritten every time so that a damaged postrouting chain heals.
        f"flush chain {_TABLE} postrouting",
        f"add rule {_TABLE} postrouting ip daddr == 224.0.0.0/4 return",
        f"add rule {_TABLE} postrouting ip6 daddr == ff00::/8 return",
        f"add rule {_TABLE} postrouting goto {NFT_MASQUERADE_CHAIN}",
        *(f"delete rule {_TABLE} {NFT_MASQUERADE_CHAIN} handle {handle}" for handle in stale),
        *(f'add rule {_TABLE} {NFT_MASQUERADE_CHAIN} {nft_masquerade_rule(address)} comment "{comment}"'
          for address in addresses),
    ]
    tool.apply_script("\n".join(lines) + "\n")


def teardown_masquerades(tool: NftTool, network_name: str, container_id: str, ifname: str) -> None:
    """Delete the attachment's rules, found by its hash whatever their address. Idempotent."""
    handles = _handles(tool, nft_instance_hash(network_name, ifname, container_id))
    if handles:
        tool.apply_script("".join(f"delete rule {_TABLE} {NFT_MASQUERADE_CHAIN} handle {h}\n" for h in handles))


class NftMasquerader:
    """The bridge engine's nftables port on strings (this process's namespace).

    Masquerading runs here; the MAC spoof check (``macspoofchk``, which the default
    podman and Mesos configurations never use) is the typed nftables firewall's,
    built on first use by ``spoof_check`` (a zero-argument callable).
    """

    def __init__(self, spoof_check: Any, tool: NftTool | None = None) -> None:
        self.tool = tool if tool is not None else NftTool()
        self._spoof_source = spoof_check
        self._spoof: Any = None

    def available(self) -> bool:
        """Whether ``nft`` can be run here."""
        return self.tool.available()

    def setup(self, addresses: list[str], network_name: str, container_id: str, ifname: str) -> None:
        """See :func:`setup_masquerades`."""
        setup_masquerades(self.tool, addresses, network_name, container_id, ifname)

    def teardown(self, addresses: list[str], network_name: str, container_id: str, ifname: str) -> None:
        """See :func:`teardown_masquerades`."""
        teardown_masquerades(self.tool, network_name, container_id, ifname)

    def _spoof_checker(self) -> Any:
        if self._spoof is None:
            self._spoof = self._spoof_source()
        return self._spoof

    def setup_mac_spoof_check(self, host_ifname: str, mac: str, ref_id: str) -> None:
        """See :meth:`~cnicore.links.NftFirewall.setup_mac_spoof_check`."""
        self._spoof_checker().setup_mac_spoof_check(host_ifname, mac, ref_id)

    def teardown_mac_spoof_check(self, ref_id: str) -> None:
        """See :meth:`~cnicore.links.NftFirewall.teardown_mac_spoof_check`."""
        self._spoof_checker().teardown_mac_spoof_check(ref_id)
