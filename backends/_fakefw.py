"""The in-memory firewalls: the reference's layouts in models of the kernel's tables.

:class:`FakeFirewall` stores the iptables masquerade rules as ``iptables -S``
prints them (matches before the target, ``-d``/``-s`` as networks, comments
quoted), so tests compare it with the real tables line by line. Its
:meth:`~FakeFirewall.nftables` is a :class:`FakeNftables`: the nftables side
(the ``inet cni_plugins_masquerade`` table and the ``bridge nat`` spoof-check
table), listed the way ``nft -j list`` lists them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import netaddr

from cnicore.links import (
    SPOOFCHECK_BASE_CHAIN,
    SPOOFCHECK_FAMILY,
    SPOOFCHECK_PRIORITY,
    SPOOFCHECK_TABLE,
    RuleEdit,
    masquerade_plan,
    nft_instance_hash,
    nft_masquerade_comment,
    nft_masquerade_rule,
    spoof_check_plan,
)

from ._common import OneAddressMasquerade, apply_rule_edit
from ._common import iptables_rule_text as _render

__all__ = ["FakeFirewall", "FakeNftables"]

_BUILTIN_NAT_CHAINS = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")
_BUILTIN_CHAINS = {"nat": _BUILTIN_NAT_CHAINS, "filter": ("INPUT", "FORWARD", "OUTPUT"),
                   "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")}
_STATE_FORMAT = "cnicore-fake-firewall/1"


def _check(value: Any, kind: type) -> Any:
    """``value`` if it is a ``kind`` (a bool is no int here), else ValueError: state files are data, checked."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{value!r} is not {kind.__name__}")
    return value


class FakeFirewall(OneAddressMasquerade):
    """:class:`~cnicore.links.Firewall` that keeps the nat tables (IPv4 and IPv6) in memory.

    Args:
        iptables_available: what :meth:`available` answers (False plays a host with only nftables).
    """

    name = "fake"

    def __init__(self, *, iptables_available: bool = True) -> None:
        self._iptables_available = iptables_available
        self._lock = threading.Lock()
        self._chains: dict[int, dict[str, list[str]]] = {
            version: {chain: [] for chain in _BUILTIN_NAT_CHAINS} for version in (4, 6)
        }
        # The other tables (filter, mangle...), made on first use.
        self._tables: dict[tuple[int, str], dict[str, list[str]]] = {}
        self._nft = FakeNftables()

    def available(self) -> bool:
        """Whether this fake plays a host where iptables can be run."""
        return self._iptables_available

    def export_state(self) -> dict[str, Any]:
        """Both tables as JSON data (lists, dicts, strings, numbers): what :meth:`import_state` takes back."""
        with self._lock, self._nft._lock:
            nft = self._nft
            return {
                "format": _STATE_FORMAT,
                "iptables_available": self._iptables_available,
                "chains": {str(version): {chain: list(rules) for chain, rules in chains.items()}
                           for version, chains in self._chains.items()},
                "tables": [[version, table, {chain: list(rules) for chain, rules in chains.items()}]
                           for (version, table), chains in sorted(self._tables.items())],
                "nft": {
                    "last_handle": nft._last_handle,
                    "masq": None if nft._masq is None else [list(rule) for rule in nft._masq],
                    "bridge_chains": None if nft._bridge_chains is None else {
                        name: [list(rule) for rule in rules] for name, rules in nft._bridge_chains.items()},
                    "bridge_chain_handles": dict(nft._bridge_chain_handles),
                },
            }

    @classmethod
    def import_state(cls, data: Any) -> FakeFirewall:
        """A firewall holding the tables :meth:`export_state` gave.

        Raises ValueError (or KeyError, TypeError) for data that is not such tables.
        """
        if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT:
            raise ValueError(f"not a fake kernel's firewall (format {_STATE_FORMAT})")
        firewall = cls(iptables_available=_check(data["iptables_available"], bool))
        firewall._chains = {
            int(version): {_check(chain, str): [_check(line, str) for line in rules] for chain, rules in chains.items()}
            for version, chains in _check(data["chains"], dict).items()}
        if sorted(firewall._chains) != [4, 6]:
            raise ValueError("firewall tables for IPv4 and IPv6 expected")
        for version, table, chains in _check(data["tables"], list):
            if _check(version, int) not in (4, 6):
                raise ValueError(f"firewall table for IP version {version!r}")
            firewall._tables[(version, _check(table, str))] = {
                _check(chain, str): [_check(line, str) for line in rules]
                for chain, rules in _check(chains, dict).items()}
        nft, saved = firewall._nft, _check(data["nft"], dict)
        nft._last_handle = _check(saved["last_handle"], int)
        masq = saved["masq"]
        nft._masq = None if masq is None else [
            (_check(handle, int), _check(comment, str), _check(text, str)) for handle, comment, text in masq]
        chains_saved = saved["bridge_chains"]
        nft._bridge_chains = None if chains_saved is None else {
            _check(name, str): [(_check(handle, int), _check(expr, list), _check(comment, str))
                                for handle, expr, comment in rules]
            for name, rules in _check(chains_saved, dict).items()}
        nft._bridge_chain_handles = {_check(name, str): _check(handle, int)
                                     for name, handle in _check(saved["bridge_chain_handles"], dict).items()}
        return firewall

    def nftables(self) -> FakeNftables:
        """The nftables side of the same fake kernel."""
        return self._nft

    def setup_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str, *,
                          ifname: str = "") -> None:
        """See :meth:`Firewall.setup_masquerades`."""
        plans = [masquerade_plan(address, network_name, container_id) for address in addresses]
        with self._lock:
            for plan in plans:
                chains = self._chains[plan.version]
                chains.setdefault(plan.chain, [])
                for chain, rule in [*((plan.chain, r) for r in plan.chain_rules), ("POSTROUTING", plan.jump_rule)]:
                    line = _render(chain, rule)
                    if line not in chains[chain]:
                        chains[chain].append(line)

    def teardown_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str,
                             *, ifname: str = "") -> None:
        """See :meth:`Firewall.teardown_masquerades`."""
        plans = [masquerade_plan(address, network_name, container_id) for address in addresses]
        with self._lock:
            for plan in plans:
                chains = self._chains[plan.version]
                gone = {_render("POSTROUTING", plan.jump_rule), _render("POSTROUTING", plan.legacy_jump_rule)}
                chains["POSTROUTING"] = [line for line in chains["POSTROUTING"] if line not in gone]
                chains.pop(plan.chain, None)

    def _table(self, version: int, table: str) -> dict[str, list[str]]:
        if table == "nat":
            return self._chains[version]
        return self._tables.setdefault((version, table), {chain: [] for chain in _BUILTIN_CHAINS.get(table, ())})

    def edit_rules(self, edits: Sequence[RuleEdit]) -> None:
        """See :meth:`~cnicore.links.RuleTables.edit_rules`."""
        with self._lock:
            for edit in edits:
                apply_rule_edit(self._table(edit.version, edit.table), edit)

    def table_rules(self, version: int, table: str) -> dict[str, tuple[str, ...]]:
        """See :meth:`~cnicore.links.RuleTables.table_rules`."""
        with self._lock:
            return {chain: tuple(rules) for chain, rules in self._table(version, table).items()}

    def list_rules(self, version: int = 4, table: str = "nat") -> tuple[str, ...]:
        """The table as ``iptables -t TABLE -S`` would print it. Idempotent (read-only)."""
        with self._lock:
            chains = self._table(version, table)
            builtin = _BUILTIN_CHAINS.get(table, ())
            lines = [f"-P {chain} ACCEPT" for chain in builtin if chain in chains]
            lines += [f"-N {chain}" for chain in chains if chain not in builtin]
            for rules in chains.values():
                lines += rules
            return tuple(lines)


class FakeNftables(OneAddressMasquerade):
    """:class:`~cnicore.links.NftFirewall` in memory: the nftables masquerade and spoof-check tables.

    Rules keep the nftables JSON form the real firewall sends, with handles
    numbered as the kernel numbers them (one counter per table), so
    :meth:`list_spoof_check` reads like ``nft -j list table bridge nat``.
    """

    name = "fake-nftables"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_handle = 0
        # masq_checks: (handle, comment, rule text), in order; None until the table exists.
        self._masq: list[tuple[int, str, str]] | None = None
        # bridge nat: chain name -> its rules (handle, expr, comment); None until the table exists.
        self._bridge_chains: dict[str, list[tuple[int, list[Any], str]]] | None = None
        self._bridge_chain_handles: dict[str, int] = {}

    def available(self) -> bool:
        """Always: the fake nftables side exists with the fake kernel."""
        return True

    def nftables(self) -> FakeNftables:
        """This firewall itself."""
        return self

    def _handle(self) -> int:
        # Handles as the kernel hands them out: one counter, never reused.
        self._last_handle += 1
        return self._last_handle

    # -- masquerade --------------------------------------------------------------------------------

    def setup_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str, *,
                          ifname: str = "") -> None:
        """See :meth:`Firewall.setup_masquerades`."""
        prefix = nft_instance_hash(network_name, ifname, container_id)
        comment = nft_masquerade_comment(network_name, ifname, container_id)
        with self._lock:
            rules = [rule for rule in (self._masq or []) if not rule[1].startswith(prefix)]
            rules += [(self._handle(), comment, nft_masquerade_rule(address)) for address in addresses]
            self._masq = rules

    def teardown_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str,
                             *, ifname: str = "") -> None:
        """See :meth:`Firewall.teardown_masquerades`."""
        prefix = nft_instance_hash(network_name, ifname, container_id)
        with self._lock:
            if self._masq is not None:
                self._masq = [rule for rule in self._masq if not rule[1].startswith(prefix)]

    def list_rules(self) -> tuple[str, ...]:
        """``masq_checks``'s rule comments, in order (as the real firewall's ``list_rules``). Read-only."""
        with self._lock:
            return tuple(comment for _handle, comment, _text in self._masq or [])

    def masquerade_rules(self) -> tuple[tuple[str, str], ...]:
        """``masq_checks``'s rules as (comment, rule text). Read-only."""
        with self._lock:
            return tuple((comment, text) for _handle, comment, text in self._masq or [])

    # -- MAC spoof check ---------------------------------------------------------------------------

    def setup_mac_spoof_check(self, host_ifname: str, mac: str, ref_id: str) -> None:
        """See :meth:`NftFirewall.setup_mac_spoof_check`."""
        plan = spoof_check_plan(host_ifname, mac, ref_id)
        with self._lock:
            if self._bridge_chains is None:
                self._bridge_chains = {}
                self._bridge_chain_handles = {}
            chains = self._bridge_chains
            for chain in (SPOOFCHECK_BASE_CHAIN, plan.iface_chain, plan.mac_chain):
                if chain not in chains:
                    chains[chain] = []
                    self._bridge_chain_handles[chain] = self._handle()
            chains[plan.iface_chain] = []
            chains[plan.mac_chain] = []
            base = chains[SPOOFCHECK_BASE_CHAIN]
            base[:] = [rule for rule in base if rule[2] != plan.comment]
            for rule in plan.rules:
                chains[rule.chain].append((self._handle(), list(rule.expr), rule.comment))

    def teardown_mac_spoof_check(self, ref_id: str) -> None:
        """See :meth:`NftFirewall.teardown_mac_spoof_check`."""
        plan = spoof_check_plan("", "", ref_id)
        with self._lock:
            chains = self._bridge_chains
            if chains is None:
                return
            base = chains.get(SPOOFCHECK_BASE_CHAIN, [])
            base[:] = [rule for rule in base if rule[2] != plan.comment]
            for chain in (plan.iface_chain, plan.mac_chain):
                chains.pop(chain, None)
                self._bridge_chain_handles.pop(chain, None)

    def list_spoof_check(self) -> list[dict[str, Any]]:
        """The ``bridge nat`` table as ``nft -j list table bridge nat`` objects (``[]`` without it). Read-only."""
        where = {"family": SPOOFCHECK_FAMILY, "table": SPOOFCHECK_TABLE}
        with self._lock:
            if self._bridge_chains is None:
                return []
            items: list[dict[str, Any]] = [{"table": {"family": SPOOFCHECK_FAMILY, "name": SPOOFCHECK_TABLE,
                                                      "handle": 0}}]
            for name in self._bridge_chains:
                chain: dict[str, Any] = {**where, "name": name, "handle": self._bridge_chain_handles[name]}
                if name == SPOOFCHECK_BASE_CHAIN:
                    chain.update(type="filter", hook="prerouting", prio=SPOOFCHECK_PRIORITY, policy="accept")
                items.append({"chain": chain})
            for name, rules in self._bridge_chains.items():
                items += [{"rule": {**where, "chain": name, "handle": handle, "comment": comment, "expr": expr}}
                          for handle, expr, comment in rules]
            return items
