"""Masquerading with iptables (and ip6tables), laid out exactly as the reference plugins do.

The rules come from :func:`cnicore.links.masquerade_plan`, so a container set up
by the reference bridge plugin can be torn down by us and the other way round.

Each setup or teardown reads the ``nat`` table once (``iptables-save -t nat``)
and applies what is missing (or present, for teardown) in one
``iptables-restore --noflush`` transaction: two processes per address family
instead of a check and an append per rule. The restore script adds rules
without flushing anything: an existing chain is never re-declared (which would
flush it), so rules of other addresses in a shared chain stay. Commands are
argv lists, run with ``-w`` (wait for the xtables lock rather than fail when
another process holds it); the script goes to the process's stdin.
``namespace`` runs them in another network namespace through ``nsenter``,
which is how the tests keep rules out of the host's tables. Running the tools,
editing a table (the meta plugins' ``edit_rules``) and listing it are
:class:`~backends._tools.IptablesTables`', which this firewall extends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import netaddr

from cnicore._errors import InternalError
from cnicore.links import HOST_NAMESPACE, Namespace

from ._common import OneAddressMasquerade
from ._iptmasq import setup_masquerades, teardown_masquerades
from ._tools import IptablesTables

if TYPE_CHECKING:
    from ._nftables import NftablesFirewall

__all__ = ["IptablesFirewall"]


class IptablesFirewall(IptablesTables, OneAddressMasquerade):
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
        super().__init__(namespace_path=namespace.path, iptables=iptables, ip6tables=ip6tables, nsenter=nsenter,
                         timeout=timeout)
        self._namespace = namespace

    def available(self) -> bool:
        """Whether ``iptables`` can be run here (the binary exists and is executable).

        The bridge plugin's default ``ipMasqBackend`` is iptables unless only nftables is available.
        """
        return super().available()

    def nftables(self) -> NftablesFirewall:
        """The nftables firewall for the same namespace (``macspoofchk``, ``ipMasqBackend: nftables``)."""
        from ._nftables import NftablesFirewall

        return NftablesFirewall(namespace=self._namespace, nsenter=self._nsenter, timeout=self._timeout)

    # -- the port ----------------------------------------------------------------------------------

    def setup_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str, *,
                          ifname: str = "") -> None:
        """See :meth:`Firewall.setup_masquerades` (:func:`._iptmasq.setup_masquerades` on the address texts)."""
        setup_masquerades(self, [str(address) for address in addresses], network_name, container_id)

    def teardown_masquerades(self, addresses: Sequence[netaddr.IPNetwork], network_name: str, container_id: str,
                             *, ifname: str = "") -> None:
        """See :meth:`Firewall.teardown_masquerades` (:func:`._iptmasq.teardown_masquerades`)."""
        teardown_masquerades(self, [str(address) for address in addresses], network_name, container_id)

    def list_rules(self, version: int = 4, table: str = "nat") -> tuple[str, ...]:
        """``iptables -t TABLE -S`` lines, for inspection and tests. Idempotent (read-only)."""
        done = self._run([self._binaries[version], "-w", "-t", table, "-S"])
        if done.returncode != 0:
            raise InternalError(f"iptables -S: {done.stderr.strip()}")
        return tuple(line for line in done.stdout.splitlines() if line)
