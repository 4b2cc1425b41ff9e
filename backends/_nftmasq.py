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

import os

from cnicore._errors import InternalError, PermissionDeniedError
from cnicore._linkplan import (
    NFT_MASQUERADE_CHAIN,
    NFT_MASQUERADE_TABLE,
    nft_instance_hash,
    nft_masquerade_comment,
    nft_masquerade_rule,
)

from ._kernel import ToolRun, find_program, run_tool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["NftMasquerader", "NftTool", "setup_masquerades", "teardown_masquerades"]

_TABLE = f"inet {NFT_MASQUERADE_TABLE}"
_TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
_CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"
_MISSING = ("No such file or directory", "does not exist")


class NftTool:
    """The ``nft`` command in one namespace (``namespace_path`` None: the calling process's)."""

    def __init__(self, *, namespace_path: str | None = None, nft: str | None = None, nsenter: str | None = None,
                 timeout: float = 60.0) -> None:
        self.namespace_path = namespace_path
        self.nft = nft or find_program("nft") or "/usr/sbin/nft"
        found = nsenter or (find_program("nsenter") if namespace_path is not None else None)
        self.nsenter = found or "/usr/bin/nsenter"
        self.timeout = timeout

    def available(self) -> bool:
        """Whether ``nft`` can be run here (the binary exists and is executable)."""
        return os.access(self.nft, os.X_OK)

    def run(self, args: Sequence[str], script: str | None = None) -> ToolRun:
        """Run ``nft args`` in the namespace, ``script`` on stdin."""
        return run_tool([self.nft, *args], namespace_path=self.namespace_path, nsenter=self.nsenter,
                        timeout=self.timeout, stdin=script)

    def apply(self, script: str, *, json_input: bool = False) -> None:
        """Run ``script`` with ``nft -f -`` (``-j``: JSON): one transaction. Errors: the ``nft`` message."""
        done = self.run(["-j", "-f", "-"] if json_input else ["-f", "-"], script)
        if done.returncode != 0:
            message = done.stderr.strip()
            if "Operation not permitted" in message:
                raise PermissionDeniedError(f"nft: {message}")
            raise InternalError(f"nft: {message or done.returncode}")

    def list_objects(self, *what: str) -> list[dict[str, Any]]:
        """``nft -j list <what>``'s objects; none if the table or chain does not exist."""
        import json

        done = self.run(["-j", "list", *what])
        if done.returncode != 0:
            if any(text in done.stderr for text in _MISSING):
                return []
            raise InternalError(f"nft list {' '.join(what)}: {done.stderr.strip()}")
        try:
            items = json.loads(done.stdout).get("nftables", [])
        except (json.JSONDecodeError, AttributeError) as exc:
            raise InternalError("nft -j printed something that is not its JSON") from exc
        return [item for item in items if isinstance(item, dict)]

    def masquerade_rules(self) -> list[dict[str, Any]]:
        """The rules of ``masq_checks`` as nft's JSON objects (none if the chain does not exist)."""
        return [item["rule"] for item in self.list_objects("chain", "inet", NFT_MASQUERADE_TABLE, NFT_MASQUERADE_CHAIN)
                if "rule" in item]

    def handles(self, prefix: str) -> list[int]:
        """The handles of the ``masq_checks`` rules whose comment starts with ``prefix``."""
        return [int(rule["handle"]) for rule in self.masquerade_rules()
                if str(rule.get("comment", "")).startswith(prefix)]


def setup_masquerades(tool: NftTool, addresses: Sequence[str], network_name: str, container_id: str,
                      ifname: str) -> None:
    """The attachment's rules (``"ip/prefixlen"`` addresses), replacing what an earlier ADD of it left."""
    stale = tool.handles(nft_instance_hash(network_name, ifname, container_id))
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
    tool.apply("\n".join(lines) + "\n")


def teardown_masquerades(tool: NftTool, network_name: str, container_id: str, ifname: str) -> None:
    """Delete the attachment's rules, found by its hash whatever their address. Idempotent."""
    handles = tool.handles(nft_instance_hash(network_name, ifname, container_id))
    if handles:
        tool.apply("".join(f"delete rule {_TABLE} {NFT_MASQUERADE_CHAIN} handle {h}\n" for h in handles))


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
