"""Edits of iptables tables as plain data, and the firewall plugin's layout in them.

A :class:`RuleEdit` is what a meta plugin asks of a table: chains that must
exist, then rules to insert first, append or delete, each only when needed
(inserting or appending a rule already there, or deleting one that is not, does
nothing), in order. A :class:`~cnicore.links.RuleTables` firewall carries it
out (iptables: one ``iptables-restore --noflush`` transaction) and lists a
table back as ``iptables-save`` prints it, for CHECK.

The firewall plugin's layout (the reference's, so either can undo what the other
did): in table ``filter``, chain ``CNI-FORWARD`` jumped to first from
``FORWARD`` (comment ``CNI firewall plugin rules``); its first rule jumps to the
admin chain (``CNI-ADMIN`` unless ``iptablesAdminChainName``; comment ``CNI
firewall plugin admin overrides``), where an administrator puts overrides; then
two rules per container address: accept replies to it (``-d ip/32 -m conntrack
--ctstate RELATED,ESTABLISHED``) and anything from it (``-s ip/32``). With
``ingressPolicy: same-bridge``, chains ``CNI-ISOLATION-STAGE-1`` (jumped to first
from ``FORWARD``) and ``CNI-ISOLATION-STAGE-2`` drop traffic entering the
bridge from any other interface.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

from cnicore import _ruleplan as _plan
from cnicore._ruleplan import iptables_rule_text

__all__ = [
    "FIREWALL_ADMIN_CHAIN",
    "FIREWALL_FORWARD_CHAIN",
    "ISOLATION_STAGE1_CHAIN",
    "ISOLATION_STAGE2_CHAIN",
    "RuleEdit",
    "RuleOp",
    "firewall_add_edits",
    "firewall_admin_rule",
    "firewall_del_edits",
    "firewall_forward_rule",
    "firewall_address_rules",
    "iptables_rule_text",
    "isolation_edits",
]

# The layout is cnicore._ruleplan's, on strings; the edits are adapted to the typed RuleEdit here.
#: The firewall plugin's chain in ``filter``, jumped to from ``FORWARD``.
FIREWALL_FORWARD_CHAIN: Final = _plan.FIREWALL_FORWARD_CHAIN
#: Its default admin override chain.
FIREWALL_ADMIN_CHAIN: Final = _plan.FIREWALL_ADMIN_CHAIN
#: The same-bridge ingress policy's chains.
ISOLATION_STAGE1_CHAIN: Final = _plan.ISOLATION_STAGE1_CHAIN
ISOLATION_STAGE2_CHAIN: Final = _plan.ISOLATION_STAGE2_CHAIN
firewall_forward_rule = _plan.firewall_forward_rule
firewall_admin_rule = _plan.firewall_admin_rule
firewall_address_rules = _plan.firewall_address_rules


@attrs.frozen
class RuleOp:
    """One step of an edit: ``insert`` (first in the chain), ``append`` or ``delete`` (one copy) a rule.

    ``rule`` is the rule's iptables arguments without the verb and chain.
    """

    op: Literal["insert", "append", "delete"]
    chain: str
    rule: tuple[str, ...]


@attrs.frozen(kw_only=True)
class RuleEdit:
    """Changes to one table of one address family, carried out in order (see the module docstring).

    ``drop_chains`` go first: every rule of the table that jumps to one of them
    is deleted, then the chain is flushed and deleted (a chain that does not
    exist is fine). Then ``chains`` are created where missing, then ``ops`` run.
    """

    version: int
    table: str
    chains: tuple[str, ...] = ()
    ops: tuple[RuleOp, ...] = ()
    drop_chains: tuple[str, ...] = ()


def typed_edit(edit: _plan.TableEdit) -> RuleEdit:
    """A plain :class:`cnicore._ruleplan.TableEdit` as a :class:`RuleEdit`."""
    return RuleEdit(version=edit.version, table=edit.table, chains=edit.chains, drop_chains=edit.drop_chains,
                    ops=tuple(RuleOp(step.op, step.chain, step.rule) for step in edit.ops))  # type: ignore[arg-type]


def firewall_add_edits(addresses: dict[int, list[str]], admin_chain: str) -> list[RuleEdit]:
    """What the firewall plugin's ADD does, per address family with addresses (``{4: ["10.1.2.3/32"]}``)."""
    return [typed_edit(edit) for edit in _plan.firewall_add_edits(addresses, admin_chain)]


def firewall_del_edits(addresses: dict[int, list[str]]) -> list[RuleEdit]:
    """What the firewall plugin's DEL does: the address rules go; the chains and jumps stay."""
    return [typed_edit(edit) for edit in _plan.firewall_del_edits(addresses)]


def isolation_edits(bridge: str, versions: list[int]) -> list[RuleEdit]:
    """The same-bridge ingress policy for ``bridge`` (per family; never removed: other containers share it)."""
    return [typed_edit(edit) for edit in _plan.isolation_edits(bridge, versions)]
