"""Masquerading with iptables (and ip6tables) on address strings: the one implementation.

The reference's layout (:func:`cnicore._linkplan.masquerade_rules`): a chain per
attachment in table ``nat``, jumped to from ``POSTROUTING``. Each setup or
teardown reads the ``nat`` table once (``iptables-save -t nat``) and applies
what is missing (or present, for teardown) in one ``iptables-restore --noflush``
transaction: two processes per address family instead of a check and an append
per rule. The restore script adds rules without flushing anything: an existing
chain is never re-declared (which would flush it), so rules of other addresses
in a shared chain stay. Commands are argv lists, run with ``-w`` (wait for the
xtables lock rather than fail when another process holds it); the script goes
to the process's stdin; a namespace path runs them there through ``nsenter``.

:class:`~cnicore.backends.IptablesFirewall` (typed addresses) and the executed
bridge's :class:`IptablesMasquerader` (the engine's ``Masquerader``) both run
:func:`setup_masquerades` and :func:`teardown_masquerades` on the plain
:class:`._tools.IptablesTables`; nothing here imports attrs, netaddr or :mod:`cnicore.links`.
"""

from __future__ import annotations

from cnicore._linkplan import masquerade_rules
from cnicore._ruleplan import iptables_rule_text

from ._tools import IptablesTables

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from cnicore._linkplan import MasqueradeRules

__all__ = ["IptablesMasquerader", "setup_masquerades", "teardown_masquerades"]


def _plans(addresses: Sequence[str], network_name: str, container_id: str) -> dict[int, list[MasqueradeRules]]:
    plans: dict[int, list[MasqueradeRules]] = {}
    for address in addresses:
        plan = masquerade_rules(address, network_name, container_id)
        plans.setdefault(plan.version, []).append(plan)
    return plans


def setup_masquerades(tool: IptablesTables, addresses: Sequence[str], network_name: str, container_id: str) -> None:
    """Masquerade the attachment's ``addresses`` (``"ip/prefixlen"``): what is missing is added. Idempotent."""
    for version, plans in _plans(addresses, network_name, container_id).items():
        state = tool._save(version)  # (the tables' own save and restore, from their package)
        present = set(state.rules)
        lines: list[str] = []
        for plan in plans:
            if plan.chain not in state.chains:
                lines.append(f":{plan.chain} - [0:0]")
                state.chains.add(plan.chain)
            wanted = [*((plan.chain, rule) for rule in plan.chain_rules), ("POSTROUTING", plan.jump_rule)]
            for chain, rule in wanted:
                text = iptables_rule_text(chain, rule)
                if text not in present:
                    lines.append(text)
                    present.add(text)
        if lines:
            tool._restore(version, lines)


def teardown_masquerades(tool: IptablesTables, addresses: Sequence[str], network_name: str, container_id: str) -> None:
    """Remove the attachment's jumps (every copy, legacy form too) and chains. Idempotent."""
    for version, plans in _plans(addresses, network_name, container_id).items():
        state = tool._save(version)  # (the tables' own save and restore, from their package)
        lines: list[str] = []
        for plan in plans:
            for rule in (plan.jump_rule, plan.legacy_jump_rule):
                # Every copy goes (each -D removes one).
                text = iptables_rule_text("POSTROUTING", rule)
                copies = state.rules.count(text)
                lines += ["-D" + text[2:]] * copies
                state.rules = [line for line in state.rules if line != text]
        for chain in dict.fromkeys(plan.chain for plan in plans):
            if chain in state.chains:
                lines += [f"-F {chain}", f"-X {chain}"]
        if lines:
            tool._restore(version, lines)


class IptablesMasquerader:
    """The bridge engine's iptables ``Masquerader`` on address strings (this process's namespace by default)."""

    def __init__(self, tool: IptablesTables | None = None) -> None:
        self.tool = tool if tool is not None else IptablesTables()

    def available(self) -> bool:
        """Whether ``iptables`` can be run here."""
        return self.tool.available()

    def setup(self, addresses: list[str], network_name: str, container_id: str, ifname: str) -> None:
        """See :func:`setup_masquerades` (``ifname`` is not part of the iptables layout)."""
        setup_masquerades(self.tool, addresses, network_name, container_id)

    def teardown(self, addresses: list[str], network_name: str, container_id: str, ifname: str) -> None:
        """See :func:`teardown_masquerades`."""
        teardown_masquerades(self.tool, addresses, network_name, container_id)
