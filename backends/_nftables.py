"""Masquerading with nftables, laid out as the reference plugins' ``ipMasqBackend: nftables``.

One table ``inet cni_plugins_masquerade``: a ``postrouting`` NAT chain that skips
multicast and jumps to ``masq_checks``, where each attachment address has one
rule whose comment starts with a hash of (network, interface, container). Setup
and teardown find rules by that hash, so a DEL for one container never removes
the rule of another container that reuses the address.

Changes go to ``nft -f -`` as one script, which nftables applies as a single
transaction: a failure leaves the ruleset as it was. The script is fed on stdin
to an argv-list command, never through a shell.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

import netaddr

from cnicore._errors import InternalError, PermissionDeniedError
from cnicore.links import (
    HOST_NAMESPACE,
    NFT_MASQUERADE_CHAIN,
    NFT_MASQUERADE_TABLE,
    Namespace,
    nft_instance_hash,
    nft_masquerade_comment,
    nft_masquerade_rule,
)

from ._common import error_from_errno, namespace_gone

__all__ = ["NftablesFirewall"]

_TABLE = f"inet {NFT_MASQUERADE_TABLE}"
_TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
_CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"


class NftablesFirewall:
    """:class:`~cnicore.links.Firewall` over the ``nft`` command.

    Args:
        namespace: where the rules go (default: the calling process's namespace).
        nft, nsenter: binary paths (default: found on ``PATH``).
    """

    name = "nftables"

    def __init__(self, *, namespace: Namespace = HOST_NAMESPACE, nft: str | None = None,
                 nsenter: str | None = None, timeout: float = 60.0) -> None:
        self._namespace = namespace
        self._nft = nft or shutil.which("nft") or "/usr/sbin/nft"
        self._nsenter = nsenter or shutil.which("nsenter") or "/usr/bin/nsenter"
        self._timeout = timeout

    def _run(self, args: Sequence[str], script: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [self._nft, *args]
        path = self._namespace.path
        if path is not None:
            if not os.path.exists(path):
                raise namespace_gone(path)
            argv = [self._nsenter, f"--net={path}", "--", *argv]
        try:
            return subprocess.run(argv, input=script, capture_output=True, text=True, timeout=self._timeout,
                                  check=False)
        except OSError as exc:
            raise error_from_errno(exc.errno, f"cannot run {argv[0]}") from exc
        except subprocess.TimeoutExpired as exc:
            raise InternalError(f"{argv[0]} did not finish in {self._timeout}s") from exc

    def _apply(self, script: str) -> None:
        done = self._run(["-f", "-"], script)
        if done.returncode != 0:
            message = done.stderr.strip()
            if "Operation not permitted" in message:
                raise PermissionDeniedError(f"nft: {message}")
            raise InternalError(f"nft: {message or done.returncode}")

    def _rules(self) -> list[dict[str, Any]]:
        """The rules of ``masq_checks`` as nft's JSON objects (none if the chain does not exist)."""
        done = self._run(["-j", "list", "chain", "inet", NFT_MASQUERADE_TABLE, NFT_MASQUERADE_CHAIN])
        if done.returncode != 0:
            if "No such file or directory" in done.stderr or "does not exist" in done.stderr:
                return []
            raise InternalError(f"nft list chain: {done.stderr.strip()}")
        try:
            items = json.loads(done.stdout).get("nftables", [])
        except (json.JSONDecodeError, AttributeError) as exc:
            raise InternalError("nft -j printed something that is not its JSON") from exc
        return [item["rule"] for item in items if isinstance(item, dict) and "rule" in item]

    def _handles(self, prefix: str) -> list[int]:
        return [int(rule["handle"]) for rule in self._rules() if str(rule.get("comment", "")).startswith(prefix)]

    def setup_masquerade(self, address: netaddr.IPNetwork, network_name: str, container_id: str, *,
                         ifname: str = "") -> None:
        """See :meth:`Firewall.setup_masquerade`."""
        stale = self._handles(nft_instance_hash(network_name, ifname, container_id))
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
            f'add rule {_TABLE} {NFT_MASQUERADE_CHAIN} {nft_masquerade_rule(address)} comment "{comment}"',
        ]
        self._apply("\n".join(lines) + "\n")

    def teardown_masquerade(self, address: netaddr.IPNetwork, network_name: str, container_id: str, *,
                            ifname: str = "") -> None:
        """See :meth:`Firewall.teardown_masquerade`."""
        handles = self._handles(nft_instance_hash(network_name, ifname, container_id))
        if handles:
            self._apply("".join(f"delete rule {_TABLE} {NFT_MASQUERADE_CHAIN} handle {h}\n" for h in handles))

    def list_rules(self) -> tuple[str, ...]:
        """``masq_checks``'s rule comments, in order, for inspection and tests. Idempotent (read-only)."""
        return tuple(str(rule.get("comment", "")) for rule in self._rules())

    def list_table(self) -> str:
        """``nft list table inet cni_plugins_masquerade`` ('' if there is none). Idempotent (read-only)."""
        done = self._run(["list", "table", "inet", NFT_MASQUERADE_TABLE])
        return done.stdout if done.returncode == 0 else ""
