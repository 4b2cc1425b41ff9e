"""The in-memory firewall: the reference's masquerade layout in a model of the nat table.

It stores rules as ``iptables -S`` prints them (matches before the target,
``-d``/``-s`` as networks, comments quoted), so tests compare it with the
real tables line by line.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import netaddr

from cnicore.links import masquerade_plan

__all__ = ["FakeFirewall"]

_BUILTIN_NAT_CHAINS = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")


def _render(chain: str, rule: Sequence[str]) -> str:
    """One rule as ``iptables -S`` prints it."""
    words = list(rule)
    negate = False
    matches: list[str] = []
    target: list[str] = []
    comment: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "!":
            negate = True
            i += 1
            continue
        if word in ("-d", "-s"):
            net = netaddr.IPNetwork(words[i + 1])
            matches += (["!"] if negate else []) + [word, str(net.cidr)]
            negate = False
            i += 2
        elif word == "-j":
            target = ["-j", words[i + 1]]
            i += 2
        elif word == "-m" and words[i + 1] == "comment":
            # iptables -S escapes backslashes and double quotes inside the quoted comment.
            text = words[i + 3].replace("\\", "\\\\").replace('"', '\\"')
            comment = ["-m", "comment", "--comment", f'"{text}"']
            i += 4
        else:
            matches.append(word)
            i += 1
    return " ".join(["-A", chain, *matches, *comment, *target])


class FakeFirewall:
    """:class:`~cnicore.links.Firewall` that keeps the nat tables (IPv4 and IPv6) in memory."""

    name = "fake"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chains: dict[int, dict[str, list[str]]] = {
            version: {chain: [] for chain in _BUILTIN_NAT_CHAINS} for version in (4, 6)
        }

    def setup_masquerade(self, address: netaddr.IPNetwork, network_name: str, container_id: str, *,
                         ifname: str = "") -> None:
        """See :meth:`Firewall.setup_masquerade`."""
        plan = masquerade_plan(address, network_name, container_id)
        with self._lock:
            chains = self._chains[plan.version]
            chains.setdefault(plan.chain, [])
            for chain, rule in [*((plan.chain, r) for r in plan.chain_rules), ("POSTROUTING", plan.jump_rule)]:
                line = _render(chain, rule)
                if line not in chains[chain]:
                    chains[chain].append(line)

    def teardown_masquerade(self, address: netaddr.IPNetwork, network_name: str, container_id: str, *,
                            ifname: str = "") -> None:
        """See :meth:`Firewall.teardown_masquerade`."""
        plan = masquerade_plan(address, network_name, container_id)
        with self._lock:
            chains = self._chains[plan.version]
            gone = {_render("POSTROUTING", plan.jump_rule), _render("POSTROUTING", plan.legacy_jump_rule)}
            chains["POSTROUTING"] = [line for line in chains["POSTROUTING"] if line not in gone]
            chains.pop(plan.chain, None)

    def list_rules(self, version: int = 4, table: str = "nat") -> tuple[str, ...]:
        """The table as ``iptables -t nat -S`` would print it. Idempotent (read-only)."""
        with self._lock:
            chains = self._chains[version] if table == "nat" else {}
            lines = [f"-P {chain} ACCEPT" for chain in _BUILTIN_NAT_CHAINS if chain in chains]
            lines += [f"-N {chain}" for chain in chains if chain not in _BUILTIN_NAT_CHAINS]
            for rules in chains.values():
                lines += rules
            return tuple(lines)
