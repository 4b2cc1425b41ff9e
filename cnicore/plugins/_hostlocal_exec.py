"""host-local as an executed plugin: the common configurations on the standard library alone.

A runtime executes host-local once per container and command, so what the
process imports is most of what an ADD costs: netaddr and attrs, on which the
configuration, range and allocator types are built, take several times the
interpreter's own start. So :class:`HostLocalExecHandler` first tries a path
that needs neither, on plain integers:

* :func:`quick_config` reads the configuration with the reference's rules
  (Go's case-insensitive keys, ``null`` as absent, the range defaults and
  checks of ``Range.Canonicalize``, the order of range sets) and returns None
  for anything it does not take on: a configuration the full path would
  reject, requested addresses (``CNI_ARGS`` ``IP``, ``args.cni.ips``,
  ``runtimeConfig.ips``), ``resolvConf``, ``ipam.store`` (etcd), an identifier
  the store would refuse, a result number a float64 would round;
* ADD, DEL and CHECK then run on :class:`~cnicore.stores._filecore.FileStoreCore`
  (the file store without its netaddr port: same files, same lock, same
  persisted index) with the allocator's rules step for step: the duplicate
  check, the round-robin after ``last_reserved_ip.<n>``, gateways skipped, all
  or nothing across range sets, the reference's DEL rule once per range set;
* the result is written by :func:`result_text`, the one writer of host-local's
  results (:func:`cnicore.plugins._hostlocal.allocation_text` converts to it).

Everything else (and GC) goes to the full plugin,
:class:`~cnicore.plugins.HostLocalPlugin`, imported then. The decision is made
before anything is touched, so a configuration is never half handled by one
path and finished by the other. A test holds the two paths side by side over
generated configurations and stores: same output, same files, same errors.
"""

from __future__ import annotations

from cnicore._errors import AddressConflictError, AddressExhaustedError, CNIError, NotFoundError
from cnicore._gofmt import go_field
from cnicore._json import marshal_indent
from cnicore.spec._goint import (
    canonical_cidr_value,
    canonical_value,
    cidr_value_text,
    ip_value_text,
    parse_cidr_value,
    parse_ip_value,
)
from cnicore.spec._version import ALL_VERSIONS, compare_versions, result_family
from cnicore.stores._keyindex import _GO_SPACE, MAX_OWNER_BYTES, _has_space, key_value, value_key

TYPE_CHECKING = False  # typing is left to type checkers: it slows the start of every exec
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from cnicore.ipam import HostLocalIPAM
    from cnicore.spec._environ import CNIEnvironment
    from cnicore.stores._filecore import FileStoreCore

    #: ``(version, value)`` of an address; ``(version, value, prefix)`` of a CIDR.
    IPValue = tuple[int, int]
    CIDRValue = tuple[int, int, int]
    #: A result address: ``(version, value, prefix)`` and the gateway (or None).
    ResultIP = tuple[CIDRValue, IPValue | None]
    #: A route: dst, gw, then mtu, advmss, priority, table, scope (None when absent).
    ResultRoute = tuple[CIDRValue, IPValue | None, int | None, int | None, int | None, int | None, int | None]
    #: DNS: nameservers, domain, search, options.
    ResultDNS = tuple[Sequence[str], str, Sequence[str], Sequence[str]]

__all__ = ["HostLocalExecHandler", "QuickConfig", "QuickRange", "quick_config", "result_text"]

_DEFAULT_DATA_DIR = "/var/lib/cni/networks"
_FLOAT_EXACT = 2**53
_ROUTE_NUMBERS = ("mtu", "advmss", "priority", "table", "scope")
_ABSENT: Any = object()
_NO_DNS: ResultDNS = ((), "", (), ())

# ----------------------------------------------------------------------------- the result writer


def _dns_obj(dns: ResultDNS, *, sort: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in zip(("nameservers", "domain", "search", "options"), dns, strict=True):
        if value:
            obj[key] = value if isinstance(value, str) else list(value)
    return {key: obj[key] for key in sorted(obj)} if sort else obj


def _route_obj(route: ResultRoute, *, sort: bool, slim: bool = False) -> dict[str, Any]:
    dst, gw = route[0], route[1]
    obj: dict[str, Any] = {"dst": cidr_value_text(*dst)}
    if gw is not None:
        obj["gw"] = ip_value_text(*gw)
    if not slim:
        mtu, advmss, priority, table, scope = route[2:]
        for key, value in (("mtu", mtu), ("advmss", advmss), ("priority", priority)):
            if value:
                obj[key] = value
        for key, value in (("table", table), ("scope", scope)):
            if value is not None:
                obj[key] = value
    return {key: obj[key] for key in sorted(obj)} if sort else obj


def result_text(ips: Sequence[ResultIP], routes: Sequence[ResultRoute], dns: ResultDNS, cni_version: str) -> str | None:
    """The text the reference's host-local prints for an ADD at ``cni_version``, or None.

    ``ips`` are the allocated addresses with their range's prefix length and
    gateway, ``routes`` and ``dns`` as configured. Byte for byte the result
    types' output (a test holds the two side by side): the 1.x shape with every
    key sorted, the 0.3.x/0.4.0 shape with ``ips[].version``, or ``ip4``/``ip6``
    with their family's routes for 0.1.0, 0.2.0 and no version. None where the
    result types must answer: no address to convert to 0.1.0/0.2.0, an unknown
    version, or a route number beyond 2**53 (1.x results print numbers through a
    float64).
    """
    if cni_version and cni_version not in ALL_VERSIONS:
        return None
    for route in routes:
        for n in route[2:]:
            n = n or 0
            if isinstance(n, bool) or not -_FLOAT_EXACT <= n <= _FLOAT_EXACT:
                return None
    canonical = [(canonical_cidr_value(*address), None if gateway is None else canonical_value(*gateway))
                 for address, gateway in ips]
    family = result_family(cni_version)
    obj: dict[str, Any] = {"cniVersion": cni_version or "0.1.0"}
    if family == "100":
        if any(dns):
            obj["dns"] = _dns_obj(dns, sort=True)
        if canonical:
            obj["ips"] = [{"address": cidr_value_text(*address),
                           **({} if gateway is None else {"gateway": ip_value_text(*gateway)})}
                          for address, gateway in canonical]
        if routes:
            obj["routes"] = [_route_obj(route, sort=True) for route in routes]
        return marshal_indent(obj)
    if family == "040":
        if canonical:
            obj["ips"] = [{"version": "4" if address[0] == 4 else "6", "address": cidr_value_text(*address),
                           **({} if gateway is None else {"gateway": ip_value_text(*gateway)})}
                          for address, gateway in canonical]
        if routes:
            obj["routes"] = [_route_obj(route, sort=False) for route in routes]
        obj["dns"] = _dns_obj(dns, sort=False)
        return marshal_indent(obj)
    # 0.1.0/0.2.0: the first address of each family, with the routes of that family (dst and gw only).
    firsts = {version: next(((a, g) for a, g in canonical if a[0] == version), None) for version in (4, 6)}
    if firsts[4] is None and firsts[6] is None:
        return None
    for version, key in ((4, "ip4"), (6, "ip6")):
        first = firsts[version]
        if first is None:
            continue
        address, gateway = first
        entry: dict[str, Any] = {"ip": cidr_value_text(*address)}
        if gateway is not None:
            entry["gateway"] = ip_value_text(*gateway)
        family_routes = [_route_obj(route, sort=False, slim=True) for route in routes
                         if canonical_cidr_value(*route[0])[0] == version]
        if family_routes:
            entry["routes"] = family_routes
        obj[key] = entry
    obj["dns"] = _dns_obj(dns, sort=False)
    return marshal_indent(obj)


# ----------------------------------------------------------------------------- reading the configuration


class _NotQuick(Exception):
    """The configuration is not one the quick path takes on: the full path decides (and reports any error)."""


class QuickRange:
    """One canonical range on integers: ``[start, end]`` of ``version``'s values, the subnet's prefix, the gateway."""

    __slots__ = ("end", "gateway", "prefix", "start", "version")

    def __init__(self, version: int, prefix: int, start: int, end: int, gateway: IPValue) -> None:
        self.version = version
        self.prefix = prefix
        self.start = start
        self.end = end
        self.gateway = gateway

    def contains(self, version: int, value: int) -> bool:
        """The reference's ``Range.Contains`` (the address canonical)."""
        return version == self.version and self.start <= value <= self.end

    def overlaps(self, other: QuickRange) -> bool:
        """The reference's ``Range.Overlaps``."""
        if self.version != other.version:
            return False
        v = self.version
        return (self.contains(v, other.start) or self.contains(v, other.end) or other.contains(v, self.start)
                or other.contains(v, self.end))

    def __str__(self) -> str:
        return f"{ip_value_text(self.version, self.start)}-{ip_value_text(self.version, self.end)}"


class QuickConfig:
    """What the quick path needs of a configuration: network, data directory, range sets, routes, version."""

    __slots__ = ("cni_version", "data_dir", "name", "range_sets", "routes")

    def __init__(self, name: str, cni_version: str, data_dir: str, range_sets: list[list[QuickRange]],
                 routes: list[ResultRoute]) -> None:
        self.name = name
        self.cni_version = cni_version
        self.data_dir = data_dir
        self.range_sets = range_sets
        self.routes = routes


def _field(obj: Mapping[str, Any], name: str, *, null_keeps: bool = False, missing: Any = None) -> Any:
    """Go's field lookup, as the full path makes it (:func:`~cnicore._gofmt.go_field`); the value only."""
    return go_field(obj, name, null_keeps=null_keeps, missing=missing)[1]


def _string(obj: Mapping[str, Any], name: str) -> str:
    value = _field(obj, name, null_keeps=True)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _NotQuick
    return value


def _object(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _NotQuick
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _NotQuick
    return value


def _net_ip(value: Any) -> IPValue | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _NotQuick
    parsed = parse_ip_value(value)
    if parsed is None:
        raise _NotQuick
    return parsed


def _ip_net(value: Any) -> CIDRValue | None:
    """A ``types.IPNet`` field looked up with ``missing=_ABSENT`` (a null fails to parse in the full path)."""
    if value is _ABSENT:
        return None
    if not isinstance(value, str):
        raise _NotQuick
    parsed = parse_cidr_value(value)
    if parsed is None:
        raise _NotQuick
    address, _, mask = value.partition("/")
    if (":" in address and parsed[0] == 4) or len(mask) > 3 or (len(mask) > 1 and mask[0] == "0"):
        # An IPv4-mapped subnet or a padded prefix: spellings the full path reads its own way.
        raise _NotQuick
    return parsed


def _no_requests(value: Any) -> None:
    if _list(value):
        raise _NotQuick  # requested addresses: the full path


def _range(obj: Mapping[str, Any]) -> QuickRange | None:
    """``Range.Canonicalize`` on integers; None for a legacy range without a subnet."""
    subnet = _ip_net(_field(obj, "subnet", missing=_ABSENT))
    given_start = _net_ip(_field(obj, "rangeStart"))
    given_end = _net_ip(_field(obj, "rangeEnd"))
    gateway = _net_ip(_field(obj, "gateway"))
    if subnet is None:
        return None
    version, value, prefix = subnet
    bits = 32 if version == 4 else 128
    if prefix > bits - 2:
        raise _NotQuick
    host = (1 << (bits - prefix)) - 1
    first = value & ~host
    if first != value:
        raise _NotQuick  # host bits set
    last = first | host
    start = first + 1
    if given_start is not None:
        # As the reference checks it: against the end as given (even of another family).
        if (given_start[0] != version or not first <= given_start[1] <= last
                or (given_end is not None and given_start[1] > given_end[1])):
            raise _NotQuick
        start = given_start[1]
    end = last - 1 if version == 4 else last
    if given_end is not None:
        if given_end[0] != version or not first <= given_end[1] <= last or given_end[1] < start:
            raise _NotQuick
        end = given_end[1]
    return QuickRange(version, prefix, start, end, gateway if gateway is not None else (version, first + 1))


def _range_set(raw: Any) -> list[QuickRange]:
    ranges: list[QuickRange] = []
    for item in _list(raw):
        r = _range(_object(item))
        if r is None or (ranges and r.version != ranges[0].version):
            raise _NotQuick  # no subnet, or mixed families
        ranges.append(r)
    if not ranges:
        raise _NotQuick
    for i, first in enumerate(ranges[:-1]):
        if any(first.overlaps(second) for second in ranges[i + 1:]):
            raise _NotQuick
    return ranges


def _route(raw: Mapping[str, Any]) -> ResultRoute:
    dst = _ip_net(_field(raw, "dst", missing=_ABSENT)) or (4, 0, 0)  # a zero IPNet, as the full path reads it
    gw = _net_ip(_field(raw, "gw"))
    numbers: list[int | None] = []
    for name in _ROUTE_NUMBERS:
        value = _field(raw, name, null_keeps=name in ("mtu", "advmss", "priority"))
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not -_FLOAT_EXACT <= value <= _FLOAT_EXACT):
            raise _NotQuick
        numbers.append(value)
    mtu, advmss, priority, table, scope = numbers
    return dst, gw, mtu, advmss, priority, table, scope


def _check_args(cni_args: str) -> None:
    if not cni_args:
        return
    from cnicore.spec._args import parse_cni_args

    try:
        parsed = parse_cni_args(cni_args, {"IP": str})
    except CNIError:
        raise _NotQuick from None
    if "IP" in parsed:
        raise _NotQuick


def quick_config(config: Mapping[str, Any], cni_args: str = "") -> QuickConfig | None:
    """The configuration as the quick path runs it, or None when the full path must (see the module notes).

    Never raises for a bad configuration: the full path reports it.
    """
    try:
        return _quick_config(config, cni_args)
    except _NotQuick:
        return None


def _quick_config(net: Mapping[str, Any], cni_args: str) -> QuickConfig:
    if not isinstance(net, dict):
        raise _NotQuick
    name = _string(net, "name")
    cni_version = _string(net, "cniVersion")
    if cni_version and cni_version not in ALL_VERSIONS:
        raise _NotQuick
    runtime = _object(_field(net, "runtimeConfig", null_keeps=True))
    runtime_sets = [_range_set(raw) for raw in _list(_field(runtime, "ipRanges"))]
    _no_requests(_field(runtime, "ips"))
    cni = _object(_field(_object(_field(net, "args")), "cni"))
    _no_requests(_field(cni, "ips"))
    ipam = _field(net, "ipam")
    if not isinstance(ipam, dict):
        raise _NotQuick
    _string(ipam, "type")
    data_dir = _string(ipam, "dataDir") or _DEFAULT_DATA_DIR
    if _string(ipam, "resolvConf"):
        raise _NotQuick
    # A null entry is skipped, as the full path skips it.
    routes = [_route(_object(raw)) for raw in _list(_field(ipam, "routes")) if raw is not None]
    legacy = _range(ipam)
    sets = runtime_sets + ([[legacy]] if legacy is not None else [])
    sets += [_range_set(raw) for raw in _list(_field(ipam, "ranges"))]
    if _field(ipam, "store") is not None:
        raise _NotQuick  # etcd, or a store type the full path rejects
    _check_args(cni_args)
    if not sets:
        raise _NotQuick
    v4 = sum(1 for s in sets if s[0].version == 4)
    if (v4 > 1 or len(sets) - v4 > 1) and (not cni_version or compare_versions(cni_version, "0.3.0") < 0):
        raise _NotQuick
    for i, first in enumerate(sets[:-1]):
        for second in sets[i + 1:]:
            if any(a.overlaps(b) for a in first for b in second):
                raise _NotQuick
    from cnicore.spec._validate import validate_network_name

    try:
        validate_network_name(name)
    except CNIError:
        raise _NotQuick from None
    return QuickConfig(name, cni_version, data_dir, sets, routes)


def _owner(container_id: str, ifname: str) -> tuple[str, str] | None:
    """``(trimmed container ID, ifname)`` as the store records them, or None when it would refuse them."""
    trimmed = container_id.strip(_GO_SPACE)
    if (not trimmed or not ifname or _has_space(trimmed) or _has_space(ifname)
            or len(trimmed) + len(ifname) + 2 > MAX_OWNER_BYTES):  # (too long: the library path says why)
        return None
    return trimmed, ifname


# ----------------------------------------------------------------------------- the operations


def _set_text(ranges: list[QuickRange]) -> str:
    return ",".join(str(r) for r in ranges)


def _spans(ranges: list[QuickRange], last: IPValue | None) -> list[tuple[QuickRange, int, int]]:
    """The allocator's visiting order (:func:`cnicore.ipam.candidate_spans`) on integers."""
    start_idx = None
    if last is not None:
        start_idx = next((i for i, r in enumerate(ranges) if r.contains(*last)), None)
    if start_idx is None or last is None:
        return [(r, r.start, r.end) for r in ranges]
    first = ranges[start_idx]
    value = last[1]
    spans = [(first, value + 1, first.end)] if value < first.end else []
    n = len(ranges)
    for step in range(1, n):
        r = ranges[(start_idx + step) % n]
        spans.append((r, r.start, r.end))
    spans.append((first, first.start, value))
    return spans


def _allocate(store: FileStoreCore, ranges: list[QuickRange], index: int, owner: str, legacy: str,
              container_id: str) -> ResultIP:
    """One address of a range set: :func:`cnicore.ipam.allocate` without a requested address, on integers."""
    range_id = str(index)
    for held in store.find_owner_keys(owner, legacy):
        version, value = key_value(held)
        if any(r.contains(version, value) for r in ranges):
            raise AddressConflictError(f"{ip_value_text(version, value)} has been allocated to {container_id}, "
                                       "duplicate allocation is not allowed")
    version = ranges[0].version
    last_key = store.last_reserved_key(range_id)
    for r, low, high in _spans(ranges, None if last_key is None else key_value(last_key)):
        gateway = r.gateway[1] if r.gateway[0] == version else -1
        while low <= high:
            found_key = store.first_free_key(value_key(version, low), value_key(version, high))
            if found_key is None:
                break
            found = key_value(found_key)[1]
            if found == gateway:
                low = gateway + 1
                continue
            if store.reserve_key(found_key, owner, range_id):
                return (version, found, r.prefix), r.gateway
            low = found + 1  # taken behind the index's back: go on
    raise AddressExhaustedError(f"no IP addresses available in range set: {_set_text(ranges)}")


def _rewrapped(exc: CNIError, msg: str) -> CNIError:
    return type(exc)(msg, code=exc.code, key=exc.key, **({"value": exc.value} if exc.has_value else {}))


def quick_add(store: FileStoreCore, config: QuickConfig, container_id: str, ifname: str) -> list[ResultIP]:
    """ADD on the quick path: one address per range set, all or nothing (the full path's :func:`~cnicore.ipam.add`)."""
    owner = _owner(container_id, ifname)
    assert owner is not None, "checked before the quick path was chosen"
    trimmed, _ = owner
    exact = f"{trimmed} {ifname}"
    allocated: list[ResultIP] = []
    with store.transaction():
        try:
            for idx, ranges in enumerate(config.range_sets):
                try:
                    allocated.append(_allocate(store, ranges, idx, exact, trimmed, trimmed))
                except CNIError as exc:
                    raise _rewrapped(exc, f"failed to allocate for range {idx}: {exc.msg}") from exc
        except BaseException:
            import contextlib

            for (version, value, _), _gateway in allocated:
                # Keep the original error; a failed rollback leaves a leak that GC reclaims.
                with contextlib.suppress(CNIError):
                    store.release_key(value_key(version, value), exact)
            raise
    return allocated


class HostLocalExecHandler:
    """host-local as the exec skeleton runs it (:func:`~cnicore.plugins._skel.run_exec`).

    ADD, DEL and CHECK of configurations :func:`quick_config` takes run on the
    standard library; everything else on :class:`~cnicore.plugins.HostLocalPlugin`
    (its result written by :func:`result_text` too, through ``allocation_text``).
    """

    name = "host-local"
    supported_versions = ALL_VERSIONS

    def __init__(self) -> None:
        self._ipam: HostLocalIPAM | None = None
        self._stores: list[FileStoreCore] = []

    def handle(self, command: str, env: CNIEnvironment, config: dict[str, Any], config_bytes: bytes,
               cni_version: str) -> str | None:
        """See :class:`~cnicore.plugins._skel.ExecHandler`."""
        if command == "STATUS":
            return None  # host-local has no STATUS handler: nothing to check, nothing to load
        if command in ("ADD", "DEL", "CHECK") and _owner(env.container_id, env.ifname) is not None:
            quick = quick_config(config, env.args)
            if quick is not None:
                return self._quick(command, quick, env, cni_version)
        return self._full(command, env, config, cni_version)

    def _store(self, config: QuickConfig) -> FileStoreCore:
        from cnicore.stores._filecore import FileStoreCore

        store = FileStoreCore(config.data_dir, config.name)
        self._stores.append(store)
        return store

    def _quick(self, command: str, config: QuickConfig, env: CNIEnvironment, cni_version: str) -> str | None:
        store = self._store(config)
        owner = _owner(env.container_id, env.ifname)
        assert owner is not None
        trimmed, ifname = owner
        exact = f"{trimmed} {ifname}"
        if command == "ADD":
            ips = quick_add(store, config, env.container_id, env.ifname)
            text = result_text(ips, config.routes, _NO_DNS, cni_version)
            assert text is not None, "every version and number was checked by quick_config"
            return text
        if command == "DEL":
            with store.transaction():
                for _ in config.range_sets:
                    store.release_owner_keys(exact, trimmed)
            return None
        with store.transaction():
            found = store.find_owner_keys(exact, trimmed)
        if not found:
            raise NotFoundError(f"host-local: Failed to find address added by container {env.container_id}")
        return None

    def _full(self, command: str, env: CNIEnvironment, config: dict[str, Any], cni_version: str) -> str | None:
        from cnicore.ipam import HostLocalIPAM
        from cnicore.plugins._hostlocal import allocation_result, allocation_text, valid_attachments

        ipam = self._ipam
        if ipam is None:
            ipam = self._ipam = HostLocalIPAM()
        if command == "ADD":
            allocation = ipam.add(config, env.container_id, env.ifname, env.args)
            text = allocation_text(allocation, cni_version)
            if text is None:
                text = allocation_result(allocation).as_version(cni_version).to_json()
            return text
        if command == "DEL":
            ipam.delete(config, env.container_id, env.ifname, env.args)
        elif command == "CHECK":
            ipam.check(config, env.container_id, env.ifname, env.args)
        elif command == "GC":
            ipam.gc(config, valid_attachments(config))
        return None

    def close(self) -> None:
        """Close the stores opened here (saving what the persisted index lacks). Idempotent."""
        stores, self._stores = self._stores, []
        for store in stores:
            store.close()
        ipam, self._ipam = self._ipam, None
        if ipam is not None:
            ipam.close()
