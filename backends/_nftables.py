"""nftables, laid out as the reference plugins lay it out: masquerading and the MAC spoof check.

Masquerading (``ipMasqBackend: nftables``): one table ``inet
cni_plugins_masquerade``; a ``postrouting`` NAT chain skips multicast and jumps
to ``masq_checks``, where each attachment address has one rule whose comment
starts with a hash of (network, interface, container). Setup and teardown find
rules by that hash, so a DEL for one container never removes the rule of
another container that reuses the address; a setup replaces the rules an
earlier ADD of the same attachment left, so an attachment's addresses are set
up together (:meth:`NftablesFirewall.setup_masquerades`).

MAC spoof check (``macspoofchk``): the ``bridge nat`` table of
:mod:`cnicore.links._spoofcheck`, applied as nftables JSON (``nft -j -f -``),
which needs no quoting of interface names or comments.

Every change is one ``nft -f -`` script, which nftables applies as a single
transaction: a failure leaves the ruleset as it was. Each operation reads what
it needs first (one ``nft -j list``), so it runs two processes at most. Scripts
are fed on stdin to argv-list commands, never through a shell.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import netaddr

from cnicore.links import (
    HOST_NAMESPACE,
    NFT_MASQUERADE_CHAIN,
    NFT_MASQUERADE_TABLE,
    SPOOFCHECK_BASE_CHAIN,
    SPOOFCHECK_FAMILY,
    SPOOFCHECK_PRIORITY,
    SPOOFCHECK_TABLE,
    Namespace,
    spoof_check_plan,
)

from ._common import OneAddressMasquerade
from ._nftmasq import setup_masquerades, teardown_masquerades
from ._tools import NftTool

__all__ = ["NftablesFirewall"]



class NftablesFirewall(NftTool, OneAddressMasquerade):
    """:class:`~cnicore.links.NftFirewall` over the ``nft`` command.

    Args:
        namespace: where the rules go (default: the calling process's namespace).
        nft, nsenter: binary paths (default: found on ``PATH``).
    """

    name = "nftables"

    def __init__(self, *, namespace: Namespace = HOST_NAMESPACE, nft: str | None = None,
                 nsenter: str | None = None, timeout: float = 60.0) -> None:
        super().__init__(namespace_path=namespace.path, nft=nft, nsenter=nsenter, timeout=timeout)
        self._namespace = namespace

    def nftables(self) -> NftablesFirewall:
        """This firewall itself (it is the nftables one)."""
        return self

    # -- masquerade --------------------------------------------------------------------------------

    def _rules(self) -> list[dict[str, Any]]:
        """The rules of ``masq_checks`` as nft's JSON objects (none if the chain does not exist)."""
        return [item["rule"] for item in self._list("chain", "inet", NFT_MASQUERADE_TABLE, NFT_MASQUERADE_CHAIN)
                if "rule" in item]

    def setup_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str, *,
                          ifname: str = "") -> None:
        """See :meth:`Firewall.setup_masquerades` (:func:`._nftmasq.setup_masquerades` on the address texts)."""
        setup_masquerades(self, [str(address) for address in addresses], network_name, container_id, ifname)

    def teardown_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str,
                             *, ifname: str = "") -> None:
        """See :meth:`Firewall.teardown_masquerades`. The rules go by the attachment's hash, whatever their address."""
        teardown_masquerades(self, network_name, container_id, ifname)

    def list_rules(self) -> tuple[str, ...]:
        """``masq_checks``'s rule comments, in order, for inspection and tests. Idempotent (read-only)."""
        return tuple(str(rule.get("comment", "")) for rule in self._rules())

    def list_table(self) -> str:
        """``nft list table inet cni_plugins_masquerade`` ('' if there is none). Idempotent (read-only)."""
        done = self._run(["list", "table", "inet", NFT_MASQUERADE_TABLE])
        return done.stdout if done.returncode == 0 else ""

    # -- MAC spoof check ---------------------------------------------------------------------------

    def _spoof_table(self) -> list[dict[str, Any]]:
        return self._list("table", SPOOFCHECK_FAMILY, SPOOFCHECK_TABLE)

    @staticmethod
    def _where(chain: str) -> dict[str, Any]:
        return {"family": SPOOFCHECK_FAMILY, "table": SPOOFCHECK_TABLE, "name": chain}

    @staticmethod
    def _delete_base_rules(items: list[dict[str, Any]], comment: str) -> list[dict[str, Any]]:
        """The commands deleting the base-chain rules (of ``items``, the table's objects) carrying ``comment``."""
        return [{"delete": {"rule": {"family": SPOOFCHECK_FAMILY, "table": SPOOFCHECK_TABLE,
                                     "chain": SPOOFCHECK_BASE_CHAIN, "handle": int(item["rule"]["handle"])}}}
                for item in items
                if "rule" in item and item["rule"].get("chain") == SPOOFCHECK_BASE_CHAIN
                and item["rule"].get("comment") == comment]

    def setup_mac_spoof_check(self, host_ifname: str, mac: str, ref_id: str) -> None:
        """See :meth:`NftFirewall.setup_mac_spoof_check`."""
        plan = spoof_check_plan(host_ifname, mac, ref_id)
        stale = self._delete_base_rules(self._spoof_table(), plan.comment)
        commands: list[dict[str, Any]] = [
            {"add": {"table": {"family": SPOOFCHECK_FAMILY, "name": SPOOFCHECK_TABLE}}},
            {"add": {"chain": {**self._where(SPOOFCHECK_BASE_CHAIN), "type": "filter", "hook": "prerouting",
                               "prio": SPOOFCHECK_PRIORITY, "policy": "accept"}}},
        ]
        for chain in (plan.iface_chain, plan.mac_chain):
            commands.append({"add": {"chain": self._where(chain)}})
        for chain in (plan.iface_chain, plan.mac_chain):
            commands.append({"flush": {"chain": self._where(chain)}})
        # A jump an earlier ADD of the attachment left goes (the reference would keep adding copies).
        commands += stale
        commands += [{"add": {"rule": {"family": SPOOFCHECK_FAMILY, "table": SPOOFCHECK_TABLE, "chain": rule.chain,
                                       "expr": list(rule.expr), "comment": rule.comment}}} for rule in plan.rules]
        self._apply(json.dumps({"nftables": commands}), json_input=True)

    def teardown_mac_spoof_check(self, ref_id: str) -> None:
        """See :meth:`NftFirewall.teardown_mac_spoof_check`."""
        plan = spoof_check_plan("", "", ref_id)
        items = self._spoof_table()
        chains = {item["chain"]["name"] for item in items if "chain" in item}
        commands = self._delete_base_rules(items, plan.comment)
        present = [chain for chain in (plan.iface_chain, plan.mac_chain) if chain in chains]
        commands += [{"flush": {"chain": self._where(chain)}} for chain in present]
        commands += [{"delete": {"chain": self._where(chain)}} for chain in present]
        if commands:
            self._apply(json.dumps({"nftables": commands}), json_input=True)

    def list_spoof_check(self) -> list[dict[str, Any]]:
        """The ``bridge nat`` table as ``nft -j list`` objects (``[]`` without it). Idempotent (read-only)."""
        return self._spoof_table()
