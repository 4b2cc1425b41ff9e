"""The loopback plugin: bring ``lo`` up in the container's namespace (and down on DEL).

It behaves as the reference plugin does, message for message:

* ADD ignores ``CNI_IFNAME`` (it is always ``lo``), sets ``lo`` up and refuses a
  loopback interface that carries any non-loopback address
  (``loopback interface found with non-loopback address "10.0.0.1"``). With a
  ``prevResult`` it returns that result unchanged; otherwise a result with the
  interface ``lo`` (MAC ``00:00:00:00:00:00``, sandbox = the namespace path) and
  the first IPv4 and first IPv6 address of ``lo`` (families present only), tied
  to interface 0.
* The result is stamped with the configuration's version but keeps the 1.x
  shape for every declared version, as the reference prints it (it hits the
  "same version" shortcut when printing). With no ``cniVersion`` at all it is
  converted to 0.1.0: ``{"cniVersion":"0.1.0","ip4":{"ip":"127.0.0.1/8"},
  "ip6":{"ip":"::1/128"},"dns":{}}``.
* DEL sets ``lo`` down; an empty ``CNI_NETNS`` or a namespace that no longer
  exists is a success (DEL must be repeatable).
* CHECK fails with ``loopback interface is down`` when ``lo`` is down.

One deliberate deviation, in the exec path only (see :func:`cnicore._plugin_main.main`):
a configuration with neither ``name`` nor ``cniVersion`` (the Mesos documentation's
``{"type": "loopback"}``) is accepted with 0.1.0 semantics, where today's
reference refuses it with code 7 ``missing network name``. With any declared
version the reference's rule applies.
"""

from __future__ import annotations

import netaddr  # type: ignore[import-untyped, unused-ignore]

from cnicore._errors import InternalError, NamespaceNotFoundError
from cnicore.links import Address, LinkBackend, Namespace
from cnicore.plugins._api import PluginRequest
from cnicore.spec._result import AnyResult, Interface, IPConfig, Result, parse_prev_result
from cnicore.spec._version import ALL_VERSIONS, CURRENT_VERSION

__all__ = ["LOOPBACK_MAC", "LoopbackPlugin"]

#: The MAC address the loopback interface reports.
LOOPBACK_MAC = "00:00:00:00:00:00"
_LO = "lo"


def _is_loopback(address: Address) -> bool:
    # Go's net.IP.IsLoopback: 127.0.0.0/8 or ::1 (IPv4-mapped loopback counts as IPv4).
    ip = address.ip
    if ip.version == 6 and ip.is_ipv4_mapped():
        ip = ip.ipv4()
    if ip.version == 4:
        return bool(ip in netaddr.IPNetwork("127.0.0.0/8"))
    return bool(ip == netaddr.IPAddress("::1"))


class LoopbackPlugin:
    """The loopback plugin over a :class:`~cnicore.links.LinkBackend`.

    Args:
        backend: where ``lo`` lives; the plugin never touches the kernel itself.
    """

    name = "loopback"
    supported_versions = ALL_VERSIONS

    def __init__(self, backend: LinkBackend) -> None:
        self._backend = backend

    def add(self, request: PluginRequest) -> AnyResult:
        """ADD: set ``lo`` up; return the prevResult or ``lo`` with its addresses.

        Raises :class:`~cnicore.InternalError` for a non-loopback address on ``lo``,
        :class:`~cnicore.NamespaceNotFoundError` when the namespace does not exist.
        """
        ns = self._backend.open_namespace(request.netns)
        self._backend.set_link_up(ns, _LO, True)
        addresses = self._backend.list_addresses(ns, _LO)
        first: dict[int, Address] = {}
        for version in (4, 6):
            for address in (a for a in addresses if a.version == version):
                if not _is_loopback(address):
                    raise InternalError(f'loopback interface found with non-loopback address "{address.ip}"')
                first.setdefault(version, address)
        prev = parse_prev_result(request.config)
        if prev is not None:
            # The reference converts prevResult to the current version and prints it at the
            # configuration's version; doing the same keeps every quirk of that round trip.
            return prev.as_version(CURRENT_VERSION)
        # An absent version stays absent: printing then converts to 0.1.0, as the reference does.
        stamped = request.cni_version or CURRENT_VERSION
        return Result(
            cni_version=stamped,
            interfaces=(Interface(name=_LO, mac=LOOPBACK_MAC, sandbox=request.netns),),
            ips=tuple(IPConfig(address=first[v].interface, interface=0) for v in (4, 6) if v in first),
        )

    def delete(self, request: PluginRequest) -> None:
        """DEL: set ``lo`` down. Idempotent; a missing or empty namespace succeeds."""
        if not request.netns:
            return
        try:
            ns = self._backend.open_namespace(request.netns)
            self._backend.set_link_up(ns, _LO, False)
        except NamespaceNotFoundError:
            return

    def check(self, request: PluginRequest) -> None:
        """CHECK: ``lo`` must be up (``loopback interface is down`` otherwise). Read-only."""
        ns: Namespace = self._backend.open_namespace(request.netns)
        if not self._backend.get_link(ns, _LO).admin_up:
            raise InternalError("loopback interface is down")
