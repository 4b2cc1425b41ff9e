"""The host-local IPAM plugin: :class:`~cnicore.ipam.HostLocalIPAM` behind the plugin interface.

ADD returns the IPAM result the reference prints: one ``ips`` entry per range
set (address with its range's prefix length, and the range's gateway; no
interface index), ``ipam.routes`` as given and the DNS of ``ipam.resolvConf``,
built as a 1.1.0 result that the caller converts to the configuration's
version. DEL releases what the attachment holds (unknown attachments succeed).
CHECK fails with ``host-local: Failed to find address added by container <id>``
when the attachment holds nothing. GC (spec 1.1.0, which the reference leaves
as a no-op) releases every reservation of the network that belongs to none of
``cni.dev/valid-attachments``.

Reservations are shared with the reference plugin byte for byte (same files,
same lock), so either plugin can release what the other reserved.

Exec'd, host-local runs as :class:`~cnicore.plugins._hostlocal_exec.HostLocalExecHandler`
(see :mod:`cnicore._plugin_main`): the common configurations on the standard
library alone, everything else through this plugin, with the result written by
:func:`allocation_text` instead of the result types, whose attrs classes cost an
exec'd plugin milliseconds to create.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cnicore._errors import InvalidConfigError
from cnicore._gofmt import go_type_name
from cnicore.ipam._hostlocal import Allocation, HostLocalIPAM
from cnicore.plugins._hostlocal_exec import HostLocalExecHandler, result_text
from cnicore.spec._version import ALL_VERSIONS, CURRENT_VERSION

if TYPE_CHECKING:
    from cnicore.ipam._config import Route as IPAMRoute
    from cnicore.ipam._dns import DNS as IPAMDNS
    from cnicore.plugins._api import PluginRequest
    from cnicore.spec._result import DNS, Result, Route

__all__ = ["VALID_ATTACHMENTS_KEY", "HostLocalExecHandler", "HostLocalPlugin", "allocation_result",
           "allocation_text", "valid_attachments"]

#: The GC request key listing the attachments that are still in use.
VALID_ATTACHMENTS_KEY = "cni.dev/valid-attachments"


def _route(route: IPAMRoute) -> Route:
    from cnicore.spec._result import Route

    return Route(dst=route.dst, gw=route.gw, mtu=route.mtu or 0, advmss=route.advmss or 0,
                 priority=route.priority or 0, table=route.table, scope=route.scope)


def _dns(dns: IPAMDNS) -> DNS:
    from cnicore.spec._result import DNS

    return DNS(nameservers=dns.nameservers, domain=dns.domain, search=dns.search, options=dns.options)


def allocation_result(allocation: Allocation) -> Result:
    """The 1.1.0 IPAM result of an allocation, as the reference host-local builds it."""
    from cnicore.spec._result import IPConfig, Result

    return Result(
        cni_version=CURRENT_VERSION,
        ips=tuple(IPConfig(address=ip.address, gateway=ip.gateway) for ip in allocation.ips),
        routes=tuple(_route(r) for r in allocation.routes),
        dns=_dns(allocation.dns),
    )


def allocation_text(allocation: Allocation, cni_version: str) -> str | None:
    """What the exec skeleton prints for :func:`allocation_result` at ``cni_version``, or None.

    Written without the result types by :func:`~cnicore.plugins._hostlocal_exec.result_text`
    (the writer the exec'd plugin's standard-library path uses too), byte for byte
    as the result types print it; None where the result types must answer.
    """
    ips = [((ip.address.version, int(ip.address.ip), ip.address.prefixlen),
            None if ip.gateway is None else (ip.gateway.version, int(ip.gateway))) for ip in allocation.ips]
    routes = [((r.dst.version, int(r.dst.ip), r.dst.prefixlen), None if r.gw is None else (r.gw.version, int(r.gw)),
               r.mtu, r.advmss, r.priority, r.table, r.scope) for r in allocation.routes]
    dns = allocation.dns
    return result_text(ips, routes, (dns.nameservers, dns.domain, dns.search, dns.options), cni_version)


def valid_attachments(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``(containerID, ifname)`` pairs of a GC request's ``cni.dev/valid-attachments``.

    Raises :class:`~cnicore.InvalidConfigError` naming the key path for anything
    that is not a list of objects with string ``containerID`` and ``ifname``.
    """
    raw = config.get(VALID_ATTACHMENTS_KEY)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidConfigError(f"{VALID_ATTACHMENTS_KEY} must be a list, not {go_type_name(raw)}",
                                 key=VALID_ATTACHMENTS_KEY, value=raw)
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        key = f"{VALID_ATTACHMENTS_KEY}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidConfigError(f"{key} must be an object", key=key, value=item)
        cid, ifname = item.get("containerID"), item.get("ifname")
        if not isinstance(cid, str) or not isinstance(ifname, str):
            raise InvalidConfigError(f"{key} needs string containerID and ifname", key=key, value=item)
        pairs.append((cid, ifname))
    return pairs


class HostLocalPlugin:
    """host-local as a plugin (IPAM: its ADD result has no interfaces).

    Args:
        ipam: the facade to use; by default one with file stores under each
            configuration's ``dataDir``. A long-lived caller passes one it keeps,
            so stores (and their indexes) stay open between calls.
    """

    name = "host-local"
    supported_versions = ALL_VERSIONS

    def __init__(self, ipam: HostLocalIPAM | None = None) -> None:
        self._ipam = ipam if ipam is not None else HostLocalIPAM()

    def add(self, request: PluginRequest) -> Result:
        """ADD: reserve one address per range set; return them with routes and DNS."""
        allocation = self._ipam.add(request.config, request.container_id, request.ifname, request.args)
        return allocation_result(allocation)

    def delete(self, request: PluginRequest) -> None:
        """DEL: release the attachment's addresses. Idempotent."""
        self._ipam.delete(request.config, request.container_id, request.ifname, request.args)

    def check(self, request: PluginRequest) -> None:
        """CHECK: the attachment must hold an address. Read-only."""
        self._ipam.check(request.config, request.container_id, request.ifname, request.args)

    def gc(self, request: PluginRequest) -> None:
        """GC: release reservations of attachments not listed as valid. Idempotent."""
        self._ipam.gc(request.config, valid_attachments(request.config))

    def close(self) -> None:
        """Close the stores this plugin opened. Idempotent."""
        self._ipam.close()
