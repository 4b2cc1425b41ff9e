"""Masquerading with iptables (and ip6tables), laid out exactly as the reference plugins do.

The typed face of :mod:`._iptmasq`, which holds the one implementation (the
executed bridge runs it on strings): the rules are the reference's, so a
container set up by the reference bridge plugin can be torn down by us and the
other way round. Each setup or teardown is one ``iptables-save`` and one
``iptables-restore --noflush`` per address family; ``namespace`` runs them in
another network namespace through ``nsenter``, which is how the tests keep
rules out of the host's tables.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING

import netaddr

from cnicore._errors import InternalError
from cnicore.links import HOST_NAMESPACE, Namespace, RuleEdit

from ._common import OneAddressMasquerade, apply_rule_edit
from ._iptmasq import IptablesTool, TableState, setup_masquerades, teardown_masquerades
from ._kernel import ToolRun

if TYPE_CHECKING:
    from ._nftables import NftablesFirewall

__all__ = ["IptablesFirewall"]

_TABLE = "nat"


class IptablesFirewall(OneAddressMasquerade):
    """:class:`~cnicore.links.Firewall` over ``iptables``/``ip6tables`` (their save and restore commands).

    Args:
        namespace: where the rules go (default: the calling process's namespace).
        iptables, ip6tables: paths of the binaries (default: found on ``PATH``);
            ``<path>-save`` and ``<path>-restore`` beside them are used.
        nsenter: path of ``nsenter`` for ``namespace``.
    """

    name = "iptables"

    def __init__(self, *, namespace: Namespace = HOST_NAMESPACE, iptables: str | None = None,
                 ip6tables: str | None = None, nsenter: str | None = None, timeout: float = 60.0) -> None:
        self._namespace = namespace
        self._tool = IptablesTool(namespace_path=namespace.path, iptables=iptables, ip6tables=ip6tables,
                                  nsenter=nsenter or shutil.which("nsenter") or "/usr/bin/nsenter", timeout=timeout)
        self._binaries = self._tool.binaries
        self._nsenter = self._tool.nsenter
        self._timeout = timeout

    def available(self) -> bool:
        """Whether ``iptables`` can be run here (the binary exists and is executable).

        The bridge plugin's default ``ipMasqBackend`` is iptables unless only nftables is available.
        """
        return self._tool.available()

    def nftables(self) -> NftablesFirewall:
        """The nftables firewall for the same namespace (``macspoofchk``, ``ipMasqBackend: nftables``)."""
        from ._nftables import NftablesFirewall

        return NftablesFirewall(namespace=self._namespace, nsenter=self._nsenter, timeout=self._timeout)

    def _run(self, argv: Sequence[str], stdin: str | None = None) -> ToolRun:
        return self._tool.run(argv, stdin)

    def _save(self, version: int, table: str = _TABLE) -> TableState:
        return self._tool.save(version, table)

    def _restore(self, version: int, lines: list[str], table: str = _TABLE) -> None:
        self._tool.restore(version, lines, table)

    # -- the port ----------------------------------------------------------------------------------

    def setup_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str, *,
                          ifname: str = "") -> None:
        """See :meth:`Firewall.setup_masquerades`."""
        setup_masquerades(self._tool, [str(address) for address in addresses], network_name, container_id)

    def teardown_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str,
                             *, ifname: str = "") -> None:
        """See :meth:`Firewall.teardown_masquerades`."""
        teardown_masquerades(self._tool, [str(address) for address in addresses], network_name, container_id)

    # -- the meta plugins' tables (RuleTables) -----------------------------------------------------

    def edit_rules(self, edits: Sequence[RuleEdit]) -> None:
        """See :meth:`RuleTables.edit_rules`: one save and one restore per table and family."""
        grouped: dict[tuple[int, str], list[RuleEdit]] = {}
        for edit in edits:
            grouped.setdefault((edit.version, edit.table), []).append(edit)
        for (version, table), group in grouped.items():
            model = self._save(version, table).by_chain
            lines = [line for edit in group for line in apply_rule_edit(model, edit)]
            if lines:
                self._restore(version, lines, table)

    def table_rules(self, version: int, table: str) -> dict[str, tuple[str, ...]]:
        """See :meth:`RuleTables.table_rules`."""
        return {chain: tuple(rules) for chain, rules in self._save(version, table).by_chain.items()}

    def list_rules(self, version: int = 4, table: str = "nat") -> tuple[str, ...]:
        """``iptables -t TABLE -S`` lines, for inspection and tests. Idempotent (read-only)."""
        done = self._run([self._binaries[version], "-w", "-t", table, "-S"])
        if done.returncode != 0:
            raise InternalError(f"iptables -S: {done.stderr.strip()}")
        return tuple(line for line in done.stdout.splitlines() if line)
