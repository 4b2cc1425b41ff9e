"""The host-local IPAM plugin, in process (:class:`HostLocalPlugin`) and executed (:class:`HostLocalExecHandler`).

ADD returns the IPAM result the reference prints: one ``ips`` entry per range
set (address with its range's prefix length, and the range's gateway; no
interface index), ``ipam.routes`` as given and the DNS of ``ipam.resolvConf``.
DEL releases what the attachment holds (unknown attachments succeed). CHECK
fails with ``host-local: Failed to find address added by container <id>`` when
the attachment holds nothing. GC (spec 1.1.0, which the reference leaves as a
no-op) releases every reservation of the network that belongs to none of
``cni.dev/valid-attachments``.

Reservations are shared with the reference plugin byte for byte (same files,
same lock), so either plugin can release what the other reserved.

Both faces run the same code: the engine's functions
(:mod:`cnicore.ipam._engine`). In process, :class:`HostLocalPlugin` goes
through :class:`~cnicore.ipam.HostLocalIPAM` (typed values, any store) and
returns a 1.1.0 result for the caller to convert. Executed, a runtime runs one
process per container and command, so :class:`HostLocalExecHandler` calls the
engine straight on the file store's core
(:class:`~cnicore.stores._filecore.FileStoreCore`) and prints with
:func:`result_text` through the one result writer
(:mod:`cnicore.spec._resultobj`): no attrs, netaddr or ``typing`` is loaded.
Only what needs the typed world loads it: the etcd store (``ipam.store``), and
a result the plain values cannot give (see :func:`result_text`).
"""

from __future__ import annotations

from cnicore._errors import InvalidConfigError
from cnicore._gofmt import go_type_name
from cnicore._json import marshal_indent
from cnicore.ipam import _engine
from cnicore.spec import _resultobj as writer
from cnicore.spec._goint import canonical_cidr_value, canonical_value, cidr_value_text, ip_value_text
from cnicore.spec._version import ALL_VERSIONS, CURRENT_VERSION, result_family

TYPE_CHECKING = False  # typing is left to type checkers: it slows the start of every exec
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from cnicore.ipam import Allocation, HostLocalIPAM
    from cnicore.ipam._engine import DNSValue, KeyStore, PlainConfig, RouteValue
    from cnicore.plugins._api import PluginRequest
    from cnicore.spec._environ import CNIEnvironment
    from cnicore.spec._result import Result

    #: A result address: ``(version, value, prefix)`` and the gateway (or None).
    ResultIP = tuple[tuple[int, int, int], tuple[int, int] | None]

__all__ = ["VALID_ATTACHMENTS_KEY", "HostLocalExecHandler", "HostLocalPlugin", "allocation_result",
           "allocation_text", "result_text", "valid_attachments"]

#: The GC request key listing the attachments that are still in use.
VALID_ATTACHMENTS_KEY = "cni.dev/valid-attachments"

# ----------------------------------------------------------------------------- the result, on plain values


def _dns_object(dns: DNSValue, *, sort: bool) -> dict[str, Any]:
    nameservers, domain, search, options = dns
    return writer.dns_object(nameservers, domain, search, options, sort=sort)


def _route_object(route: RouteValue, *, sort: bool, slim: bool = False) -> dict[str, Any]:
    dst, gw, mtu, advmss, priority, table, scope = route
    gateway = None if gw is None else ip_value_text(*gw)
    if slim:  # 0.1.0/0.2.0 routes have a destination and a gateway only
        return writer.route_object(cidr_value_text(*dst), gateway, sort=sort)
    return writer.route_object(cidr_value_text(*dst), gateway, mtu=mtu or 0, advmss=advmss or 0,
                               priority=priority or 0, table=table, scope=scope, sort=sort)


def result_text(ips: Sequence[ResultIP], routes: Sequence[RouteValue], dns: DNSValue, cni_version: str) -> str | None:
    """The text the reference's host-local prints for an ADD at ``cni_version``, or None.

    ``ips`` are the allocated addresses with their range's prefix length and
    gateway, ``routes`` and ``dns`` as configured. The objects come from the
    one result writer (:mod:`cnicore.spec._resultobj`, which the result types
    print through too), on the reference's text of each value: the 1.x shape
    with every key sorted, the 0.3.x/0.4.0 shape with ``ips[].version``, or
    ``ip4``/``ip6`` with their family's routes for 0.1.0, 0.2.0 and no version.
    None where the result types must answer: an unknown version, or no address
    to convert to 0.1.0/0.2.0 (the conversion's error is theirs).
    """
    if cni_version and cni_version not in ALL_VERSIONS:
        return None
    canonical = [(canonical_cidr_value(*address), None if gateway is None else canonical_value(*gateway))
                 for address, gateway in ips]
    family = result_family(cni_version)
    if family == "100":
        return marshal_indent(writer.result_object_100(
            cni_version,
            ips=[writer.ip_object_100(cidr_value_text(*address), None if gateway is None else ip_value_text(*gateway))
                 for address, gateway in canonical],
            routes=[_route_object(route, sort=True) for route in routes],
            dns=_dns_object(dns, sort=True)))
    if family == "040":
        return marshal_indent(writer.result_object_040(
            cni_version,
            ips=[writer.ip_object_040("4" if address[0] == 4 else "6", cidr_value_text(*address),
                                      None if gateway is None else ip_value_text(*gateway))
                 for address, gateway in canonical],
            routes=[_route_object(route, sort=False) for route in routes],
            dns=_dns_object(dns, sort=False)))
    # 0.1.0/0.2.0: the first address of each family, with the routes of that family (dst and gw only).
    firsts: list[dict[str, Any] | None] = []
    for version in (4, 6):
        first = next(((a, g) for a, g in canonical if a[0] == version), None)
        if first is None:
            firsts.append(None)
            continue
        address, gateway = first
        family_routes = [_route_object(route, sort=False, slim=True) for route in routes
                         if canonical_cidr_value(*route[0])[0] == version]
        firsts.append(writer.ip_object_020(cidr_value_text(*address),
                                           None if gateway is None else ip_value_text(*gateway), family_routes))
    if firsts == [None, None]:
        return None
    return marshal_indent(writer.result_object_020(cni_version or "0.1.0", firsts[0], firsts[1],
                                                   _dns_object(dns, sort=False)))


def _result_ips(allocated: Sequence[_engine.Allocated]) -> list[ResultIP]:
    return [((version, value, prefix), gateway) for _, version, value, prefix, gateway in allocated]


def allocation_result(allocation: Allocation) -> Result:
    """The 1.1.0 IPAM result of an allocation, as the reference host-local builds it."""
    from cnicore.spec._result import DNS, IPConfig, Result, Route

    dns = allocation.dns
    return Result(
        cni_version=CURRENT_VERSION,
        ips=tuple(IPConfig(address=ip.address, gateway=ip.gateway) for ip in allocation.ips),
        routes=tuple(Route(dst=r.dst, gw=r.gw, mtu=r.mtu or 0, advmss=r.advmss or 0, priority=r.priority or 0,
                           table=r.table, scope=r.scope) for r in allocation.routes),
        dns=DNS(nameservers=dns.nameservers, domain=dns.domain, search=dns.search, options=dns.options),
    )


def allocation_text(allocation: Allocation, cni_version: str) -> str | None:
    """What the exec skeleton prints for :func:`allocation_result` at ``cni_version``, or None.

    Written without the result types by :func:`result_text`, byte for byte as
    the result types print it; None where the result types must answer.
    """
    ips = [((ip.address.version, int(ip.address.ip), ip.address.prefixlen),
            None if ip.gateway is None else (ip.gateway.version, int(ip.gateway))) for ip in allocation.ips]
    return result_text(ips, [r.plain() for r in allocation.routes], allocation.dns.plain(), cni_version)


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
        if not isinstance(item, dict):
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
        if ipam is None:
            from cnicore.ipam import HostLocalIPAM

            ipam = HostLocalIPAM()
        self._ipam = ipam

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


class HostLocalExecHandler:
    """host-local as the exec skeleton runs it (:func:`~cnicore.plugins._skel.run_exec`): the engine, directly.

    The configuration is decoded by the engine and each command is the
    engine's function, on :class:`~cnicore.stores._filecore.FileStoreCore` for
    the file store (the etcd store, ``ipam.store``, is opened as the library
    opens it and seen through the same key-level port). Errors and their order
    are the library's, as both run the same functions.
    """

    name = "host-local"
    supported_versions = ALL_VERSIONS

    def __init__(self) -> None:
        self._stores: list[Any] = []

    def handle(self, command: str, env: CNIEnvironment, config: dict[str, Any], config_bytes: bytes,
               cni_version: str) -> str | None:
        """See :class:`~cnicore.plugins._skel.ExecHandler`."""
        if command == "STATUS":
            return None  # host-local has no STATUS handler: nothing to check, nothing to load
        if command == "GC":
            valid = valid_attachments(config)
            plain = _engine.decode_config(config)
            _engine.gc(self._store(plain), valid)
            return None
        plain = _engine.decode_config(config, env.args)
        if command == "ADD":
            allocated, dns = _engine.add(plain, lambda: self._store(plain), env.container_id, env.ifname)
            text = result_text(_result_ips(allocated), plain.routes, dns, cni_version)
            if text is None:  # no address for a 0.1.0/0.2.0 result: the result types' conversion error
                from cnicore.ipam import Allocation

                allocation = Allocation.from_plain(allocated, plain.routes, dns)
                text = allocation_result(allocation).as_version(cni_version).to_json()
            return text
        if command == "DEL":
            _engine.delete(plain, self._store(plain), env.container_id, env.ifname)
        elif command == "CHECK":
            _engine.check(self._store(plain), env.container_id, env.ifname)
        return None

    def _store(self, config: PlainConfig) -> KeyStore:
        if config.store is None:
            from cnicore.stores._filecore import FileStoreCore

            core = FileStoreCore(config.data_dir, config.name)
            self._stores.append(core)
            return core
        # The etcd store: opened as the library opens it (it needs its client, and the typed values, anyway).
        from cnicore.ipam import IPAMConfig
        from cnicore.ipam._hostlocal import _default_store
        from cnicore.ipam._keyport import key_port

        opened = _default_store(IPAMConfig.from_plain(config))
        self._stores.append(opened)
        return key_port(opened)

    def close(self) -> None:
        """Close the stores opened here (saving what the persisted index lacks). Idempotent."""
        stores, self._stores = self._stores, []
        for store in stores:
            store.close()
