"""Masquerading with iptables (and ip6tables), laid out exactly as the reference plugins do.

The rules come from :func:`cnicore.links.masquerade_plan`, so a container set up
by the reference bridge plugin can be torn down by us and the other way round.
Commands are argv lists run with ``-w`` (wait for the xtables lock rather than
fail when another process holds it). ``namespace`` runs them in another network
namespace through ``nsenter``, which is how the tests keep rules out of the
host's tables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

import netaddr

from cnicore._errors import InternalError, PermissionDeniedError
from cnicore.links import HOST_NAMESPACE, MasqueradePlan, Namespace, masquerade_plan

from ._common import error_from_errno, namespace_gone

__all__ = ["IptablesFirewall"]


class IptablesFirewall:
    """:class:`~cnicore.links.Firewall` over ``iptables``/``ip6tables``.

    Args:
        namespace: where the rules go (default: the calling process's namespace).
        iptables, ip6tables, nsenter: binary paths (default: found on ``PATH``).
    """

    name = "iptables"

    def __init__(self, *, namespace: Namespace = HOST_NAMESPACE, iptables: str | None = None,
                 ip6tables: str | None = None, nsenter: str | None = None, timeout: float = 60.0) -> None:
        self._namespace = namespace
        self._binaries = {
            4: iptables or shutil.which("iptables") or "/usr/sbin/iptables",
            6: ip6tables or shutil.which("ip6tables") or "/usr/sbin/ip6tables",
        }
        self._nsenter = nsenter or shutil.which("nsenter") or "/usr/bin/nsenter"
        self._timeout = timeout

    def _run(self, version: int, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = [self._binaries[version], "-w", *args]
        path = self._namespace.path
        if path is not None:
            if not os.path.exists(path):
                raise namespace_gone(path)
            argv = [self._nsenter, f"--net={path}", "--", *argv]
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=self._timeout, check=False)
        except OSError as exc:
            raise error_from_errno(exc.errno, f"cannot run {argv[0]}") from exc
        except subprocess.TimeoutExpired as exc:
            raise InternalError(f"{argv[0]} did not finish in {self._timeout}s") from exc

    def _must(self, version: int, args: Sequence[str]) -> None:
        done = self._run(version, args)
        if done.returncode != 0:
            message = done.stderr.strip()
            if "Permission denied" in message or "you must be root" in message:
                raise PermissionDeniedError(f"iptables {' '.join(args)}: {message}")
            raise InternalError(f"iptables {' '.join(args)}: {message or done.returncode}")

    def _exists(self, version: int, table: str, chain: str, rule: Sequence[str]) -> bool:
        # `-C` exits 1 when the rule (or the chain) is missing; anything else is a real failure.
        done = self._run(version, ["-t", table, "-C", chain, *rule])
        if done.returncode == 0:
            return True
        if done.returncode == 1 or "does not exist" in done.stderr or "No chain" in done.stderr:
            return False
        raise InternalError(f"iptables -C {chain}: {done.stderr.strip()}")

    def _chain_exists(self, version: int, table: str, chain: str) -> bool:
        return self._run(version, ["-t", table, "-n", "-L", chain]).returncode == 0

    def setup_masquerade(self, address: netaddr.IPNetwork, network_name: str, container_id: str, *,
                         ifname: str = "") -> None:
        """See :meth:`Firewall.setup_masquerade`."""
        plan = masquerade_plan(address, network_name, container_id)
        if not self._chain_exists(plan.version, plan.table, plan.chain):
            done = self._run(plan.version, ["-t", plan.table, "-N", plan.chain])
            if done.returncode != 0 and not self._chain_exists(plan.version, plan.table, plan.chain):
                raise InternalError(f"iptables -N {plan.chain}: {done.stderr.strip()}")
        for rule in plan.chain_rules:
            self._append_unique(plan, plan.chain, rule)
        self._append_unique(plan, "POSTROUTING", plan.jump_rule)

    def _append_unique(self, plan: MasqueradePlan, chain: str, rule: Sequence[str]) -> None:
        if not self._exists(plan.version, plan.table, chain, rule):
            self._must(plan.version, ["-t", plan.table, "-A", chain, *rule])

    def teardown_masquerade(self, address: netaddr.IPNetwork, network_name: str, container_id: str, *,
                            ifname: str = "") -> None:
        """See :meth:`Firewall.teardown_masquerade`."""
        plan = masquerade_plan(address, network_name, container_id)
        for rule in (plan.jump_rule, plan.legacy_jump_rule):
            # Delete every copy; a missing rule just ends the loop.
            while self._exists(plan.version, plan.table, "POSTROUTING", rule):
                self._must(plan.version, ["-t", plan.table, "-D", "POSTROUTING", *rule])
        if self._chain_exists(plan.version, plan.table, plan.chain):
            self._must(plan.version, ["-t", plan.table, "-F", plan.chain])
            self._must(plan.version, ["-t", plan.table, "-X", plan.chain])

    def list_rules(self, version: int = 4, table: str = "nat") -> tuple[str, ...]:
        """``iptables -t TABLE -S`` lines, for inspection and tests. Idempotent (read-only)."""
        done = self._run(version, ["-t", table, "-S"])
        if done.returncode != 0:
            raise InternalError(f"iptables -S: {done.stderr.strip()}")
        return tuple(line for line in done.stdout.splitlines() if line)
