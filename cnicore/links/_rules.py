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

#: The firewall plugin's chain in ``filter``, jumped to from ``FORWARD``.
FIREWALL_FORWARD_CHAIN: Final = "CNI-FORWARD"
#: Its default admin override chain.
FIREWALL_ADMIN_CHAIN: Final = "CNI-ADMIN"
#: The same-bridge ingress policy's chains.
ISOLATION_STAGE1_CHAIN: Final = "CNI-ISOLATION-STAGE-1"
ISOLATION_STAGE2_CHAIN: Final = "CNI-ISOLATION-STAGE-2"

_ISOLATION_COMMENT = "CNI firewall plugin rules (ingressPolicy: same-bridge)"


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


def firewall_forward_rule() -> tuple[str, ...]:
    """The rule in ``FORWARD`` that jumps to ``CNI-FORWARD``."""
    return ("-m", "comment", "--comment", "CNI firewall plugin rules", "-j", FIREWALL_FORWARD_CHAIN)


def firewall_admin_rule(admin_chain: str) -> tuple[str, ...]:
    """The first rule of ``CNI-FORWARD``: jump to the admin chain."""
    return ("-m", "comment", "--comment", "CNI firewall plugin admin overrides", "-j", admin_chain)


def firewall_address_rules(address: str) -> tuple[tuple[str, ...], ...]:
    """The two rules of one container address (``10.1.2.3/32`` or ``2001:db8::3/128``)."""
    return (("-d", address, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"),
            ("-s", address, "-j", "ACCEPT"))


def firewall_add_edits(addresses: dict[int, list[str]], admin_chain: str) -> list[RuleEdit]:
    """What the firewall plugin's ADD does, per address family with addresses (``{4: ["10.1.2.3/32"]}``)."""
    edits = []
    for version in (4, 6):
        if not addresses.get(version):
            continue
        ops = [RuleOp("insert", "FORWARD", firewall_forward_rule()),
               RuleOp("insert", FIREWALL_FORWARD_CHAIN, firewall_admin_rule(admin_chain))]
        ops += [RuleOp("append", FIREWALL_FORWARD_CHAIN, rule)
                for address in addresses[version] for rule in firewall_address_rules(address)]
        edits.append(RuleEdit(version=version, table="filter", chains=(FIREWALL_FORWARD_CHAIN, admin_chain),
                              ops=tuple(ops)))
    return edits


def firewall_del_edits(addresses: dict[int, list[str]]) -> list[RuleEdit]:
    """What the firewall plugin's DEL does: the address rules go; the chains and jumps stay."""
    return [RuleEdit(version=version, table="filter",
                     ops=tuple(RuleOp("delete", FIREWALL_FORWARD_CHAIN, rule)
                               for address in addresses[version] for rule in firewall_address_rules(address)))
            for version in (4, 6) if addresses.get(version)]


def isolation_edits(bridge: str, versions: list[int]) -> list[RuleEdit]:
    """The same-bridge ingress policy for ``bridge`` (per family; never removed: other containers share it)."""
    def tagged(*rule: str) -> tuple[str, ...]:
        return (*rule, "-m", "comment", "--comment", _ISOLATION_COMMENT)

    ops = (RuleOp("insert", "FORWARD", tagged("-j", ISOLATION_STAGE1_CHAIN)),
           RuleOp("insert", ISOLATION_STAGE1_CHAIN, tagged("-i", bridge, "!", "-o", bridge, "-j",
                                                           ISOLATION_STAGE2_CHAIN)),
           RuleOp("append", ISOLATION_STAGE1_CHAIN, tagged("-j", "RETURN")),
           RuleOp("insert", ISOLATION_STAGE2_CHAIN, tagged("-o", bridge, "-j", "DROP")),
           RuleOp("append", ISOLATION_STAGE2_CHAIN, tagged("-j", "RETURN")))
    return [RuleEdit(version=version, table="filter", chains=(ISOLATION_STAGE1_CHAIN, ISOLATION_STAGE2_CHAIN),
                     ops=ops) for version in dict.fromkeys(versions)]
