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

Exec'd, host-local runs as :class:`HostLocalExecHandler` (see
:mod:`cnicore._plugin_main`): the same calls on the decoded configuration, with
the result written by :func:`allocation_text` instead of the result types, whose
attrs classes cost an exec'd plugin milliseconds to create.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cnicore._errors import InvalidConfigError
from cnicore._gofmt import go_type_name
from cnicore._json import marshal_indent
from cnicore.ipam._hostlocal import Allocation, HostLocalIPAM
from cnicore.spec._goaddr import canonical_ip, canonical_network, go_cidr_text, go_ip_text
from cnicore.spec._version import ALL_VERSIONS, CURRENT_VERSION, result_family

if TYPE_CHECKING:
    from cnicore.ipam._config import Route as IPAMRoute
    from cnicore.ipam._dns import DNS as IPAMDNS
    from cnicore.plugins._api import PluginRequest
    from cnicore.spec._environ import CNIEnvironment
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


_FLOAT_EXACT = 2**53


def _dns_text(dns: IPAMDNS, *, sort: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key in ("nameservers", "domain", "search", "options"):
        value = getattr(dns, key)
        if value:
            obj[key] = value if isinstance(value, str) else list(value)
    return {key: obj[key] for key in sorted(obj)} if sort else obj


def _route_text(route: IPAMRoute, *, sort: bool, slim: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {"dst": go_cidr_text(canonical_network(route.dst))}
    if route.gw is not None:
        obj["gw"] = go_ip_text(canonical_ip(route.gw))
    if not slim:
        for key in ("mtu", "advmss", "priority"):
            if getattr(route, key):
                obj[key] = getattr(route, key)
        for key in ("table", "scope"):
            if getattr(route, key) is not None:
                obj[key] = getattr(route, key)
    return {key: obj[key] for key in sorted(obj)} if sort else obj


def allocation_text(allocation: Allocation, cni_version: str) -> str | None:
    """What the exec skeleton prints for :func:`allocation_result` at ``cni_version``, or None.

    Written without the result types, byte for byte as they print it (a test
    holds the two side by side): the 1.x shape with every key sorted, the
    0.3.x/0.4.0 shape with ``ips[].version``, or ``ip4``/``ip6`` with their
    family's routes for 0.1.0, 0.2.0 and no version. None where the result types
    must answer: no address to convert to 0.1.0/0.2.0, an unknown version, or a
    route number beyond 2**53 (1.x results print numbers through a float64).
    """
    if cni_version and cni_version not in ALL_VERSIONS:
        return None
    numbers = [getattr(route, key) or 0 for route in allocation.routes
               for key in ("mtu", "advmss", "priority", "table", "scope")]
    if any(isinstance(n, bool) or not -_FLOAT_EXACT <= n <= _FLOAT_EXACT for n in numbers):
        return None
    ips = [(canonical_network(ip.address), None if ip.gateway is None else canonical_ip(ip.gateway))
           for ip in allocation.ips]
    family = result_family(cni_version)
    obj: dict[str, Any] = {"cniVersion": cni_version or "0.1.0"}
    if family == "100":
        if not allocation.dns.empty:
            obj["dns"] = _dns_text(allocation.dns, sort=True)
        if ips:
            obj["ips"] = [{"address": go_cidr_text(address), **({} if gateway is None else
                                                                 {"gateway": go_ip_text(gateway)})}
                          for address, gateway in ips]
        if allocation.routes:
            obj["routes"] = [_route_text(route, sort=True) for route in allocation.routes]
        return marshal_indent(obj)
    if family == "040":
        if ips:
            obj["ips"] = [{"version": "4" if address.version == 4 else "6", "address": go_cidr_text(address),
                           **({} if gateway is None else {"gateway": go_ip_text(gateway)})}
                          for address, gateway in ips]
        if allocation.routes:
            obj["routes"] = [_route_text(route, sort=False) for route in allocation.routes]
        obj["dns"] = _dns_text(allocation.dns, sort=False)
        return marshal_indent(obj)
    # 0.1.0/0.2.0: the first address of each family, with the routes of that family (dst and gw only).
    firsts = {version: next(((a, g) for a, g in ips if a.version == version), None) for version in (4, 6)}
    if firsts[4] is None and firsts[6] is None:
        return None
    for version, key in ((4, "ip4"), (6, "ip6")):
        first = firsts[version]
        if first is None:
            continue
        address, gateway = first
        entry: dict[str, Any] = {"ip": go_cidr_text(address)}
        if gateway is not None:
            entry["gateway"] = go_ip_text(gateway)
        routes = [_route_text(route, sort=False, slim=True) for route in allocation.routes
                  if canonical_network(route.dst).version == version]
        if routes:
            entry["routes"] = routes
        obj[key] = entry
    obj["dns"] = _dns_text(allocation.dns, sort=False)
    return marshal_indent(obj)


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


class HostLocalExecHandler(HostLocalPlugin):
    """host-local as the exec skeleton runs it (:func:`~cnicore.plugins._skel.run_exec`).

    The same calls as :class:`HostLocalPlugin`, made on the decoded configuration;
    ADD's result is written by :func:`allocation_text` (the result types where it cannot).
    """

    def handle(self, command: str, env: CNIEnvironment, config: dict[str, Any], config_bytes: bytes,
               cni_version: str) -> str | None:
        """See :class:`~cnicore.plugins._skel.ExecHandler`."""
        if command == "ADD":
            allocation = self._ipam.add(config, env.container_id, env.ifname, env.args)
            text = allocation_text(allocation, cni_version)
            if text is None:
                text = allocation_result(allocation).as_version(cni_version).to_json()
            return text
        if command == "DEL":
            self._ipam.delete(config, env.container_id, env.ifname, env.args)
        elif command == "CHECK":
            self._ipam.check(config, env.container_id, env.ifname, env.args)
        elif command == "GC":
            self._ipam.gc(config, valid_attachments(config))
        return None  # STATUS: host-local has no handler, so nothing to do
