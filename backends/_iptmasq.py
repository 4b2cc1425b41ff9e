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
:func:`setup_masquerades` and :func:`teardown_masquerades` on an
:class:`IptablesTool`; nothing here imports attrs, netaddr or :mod:`cnicore.links`.
"""

from __future__ import annotations

import os

from cnicore._errors import InternalError, PermissionDeniedError
from cnicore._linkplan import iptables_rule_text, masquerade_rules

from ._kernel import ToolRun, find_program, run_tool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from cnicore._linkplan import MasqueradeRules

__all__ = ["IptablesMasquerader", "IptablesTool", "TableState", "setup_masquerades", "teardown_masquerades"]

_TABLE = "nat"


class TableState:
    """The chains and rules of one table, as ``iptables-save`` printed them."""

    def __init__(self, text: str) -> None:
        self.chains: set[str] = set()
        self.rules: list[str] = []
        self.by_chain: dict[str, list[str]] = {}
        for line in text.splitlines():
            if line.startswith(":"):
                chain = line[1:].split(" ", 1)[0]
                self.chains.add(chain)
                self.by_chain.setdefault(chain, [])
            elif line.startswith("-A "):
                self.rules.append(line)
                self.by_chain.setdefault(line.split(" ", 2)[1], []).append(line)


class IptablesTool:
    """``iptables-save`` and ``iptables-restore`` (and the ip6tables ones) in one namespace.

    Args:
        namespace_path: where the rules go (None: the calling process's namespace).
        iptables, ip6tables: paths of the binaries (default: found on ``PATH``);
            ``<path>-save`` and ``<path>-restore`` beside them are used.
        nsenter: path of ``nsenter`` for ``namespace_path``.
    """

    def __init__(self, *, namespace_path: str | None = None, iptables: str | None = None,
                 ip6tables: str | None = None, nsenter: str | None = None, timeout: float = 60.0) -> None:
        self.namespace_path = namespace_path
        self.binaries = {
            4: iptables or find_program("iptables") or "/usr/sbin/iptables",
            6: ip6tables or find_program("ip6tables") or "/usr/sbin/ip6tables",
        }
        # nsenter is looked for only when a namespace needs it.
        found = nsenter or (find_program("nsenter") if namespace_path is not None else None)
        self.nsenter = found or "/usr/bin/nsenter"
        self.timeout = timeout

    def available(self) -> bool:
        """Whether ``iptables`` can be run here (the binary exists and is executable)."""
        return os.access(self.binaries[4], os.X_OK)

    def run(self, argv: Sequence[str], stdin: str | None = None) -> ToolRun:
        """Run one tool in the namespace; its completed process (see :func:`._kernel.run_tool`)."""
        return run_tool(argv, namespace_path=self.namespace_path, nsenter=self.nsenter, timeout=self.timeout,
                        stdin=stdin)

    @staticmethod
    def failed(what: str, done: ToolRun) -> InternalError:
        """The error for a tool that exited non-zero (permission problems apart)."""
        message = done.stderr.strip() or f"exit status {done.returncode}"
        if "Permission denied" in message or "you must be root" in message:
            return PermissionDeniedError(f"{what}: {message}")
        return InternalError(f"{what}: {message}")

    def save(self, version: int, table: str = _TABLE) -> TableState:
        """The table as ``iptables-save -t`` prints it."""
        tool = self.binaries[version] + "-save"
        done = self.run([tool, "-t", table])
        if done.returncode != 0:
            raise self.failed(f"{os.path.basename(tool)} -t {table}", done)
        return TableState(done.stdout)

    def restore(self, version: int, lines: list[str], table: str = _TABLE) -> None:
        """Apply ``lines`` to the table in one ``iptables-restore --noflush`` transaction."""
        tool = self.binaries[version] + "-restore"
        script = "\n".join([f"*{table}", *lines, "COMMIT", ""])
        done = self.run([tool, "--noflush", "-w"], script)
        if done.returncode != 0:
            raise self.failed(f"{os.path.basename(tool)} --noflush", done)


def _plans(addresses: Sequence[str], network_name: str, container_id: str) -> dict[int, list[MasqueradeRules]]:
    plans: dict[int, list[MasqueradeRules]] = {}
    for address in addresses:
        plan = masquerade_rules(address, network_name, container_id)
        plans.setdefault(plan.version, []).append(plan)
    return plans


def setup_masquerades(tool: IptablesTool, addresses: Sequence[str], network_name: str, container_id: str) -> None:
    """Masquerade the attachment's ``addresses`` (``"ip/prefixlen"``): what is missing is added. Idempotent."""
    for version, plans in _plans(addresses, network_name, container_id).items():
        state = tool.save(version)
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
            tool.restore(version, lines)


def teardown_masquerades(tool: IptablesTool, addresses: Sequence[str], network_name: str, container_id: str) -> None:
    """Remove the attachment's jumps (every copy, legacy form too) and chains. Idempotent."""
    for version, plans in _plans(addresses, network_name, container_id).items():
        state = tool.save(version)
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
            tool.restore(version, lines)


class IptablesMasquerader:
    """The bridge engine's iptables ``Masquerader`` on address strings (this process's namespace by default)."""

    def __init__(self, tool: IptablesTool | None = None) -> None:
        self.tool = tool if tool is not None else IptablesTool()

    def available(self) -> bool:
        """Whether ``iptables`` can be run here."""
        return self.tool.available()

    def setup(self, addresses: list[str], network_name: str, container_id: str, ifname: str) -> None:
        """See :func:`setup_masquerades` (``ifname`` is not part of the iptables layout)."""
        setup_masquerades(self.tool, addresses, network_name, container_id)

    def teardown(self, addresses: list[str], network_name: str, container_id: str, ifname: str) -> None:
        """See :func:`teardown_masquerades`."""
        teardown_masquerades(self.tool, addresses, network_name, container_id)
