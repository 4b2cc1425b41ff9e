"""Loading host-local's IPAM configuration from the full plugin configuration.

The reference decodes the whole network configuration (``name``, ``cniVersion``,
``ipam``, ``runtimeConfig.ipRanges``, ``runtimeConfig.ips``, ``args.cni.ips``)
plus ``CNI_ARGS`` (key ``IP``) and then checks, in this order: the ``ipam`` key,
``CNI_ARGS``, requested IPs, that some range exists, each range set, the
per-family limit of old versions, and overlaps between range sets. This module
does the same, with the same messages, and raises :class:`~cnicore.InvalidConfigError`
(code 7) naming the key path and value. (The reference plugin reports all of
these as code 999; the exec layer decides which code it prints.)

Range sets come out in the reference's order: ``runtimeConfig.ipRanges`` first,
then the legacy single range at the top of ``ipam``, then ``ipam.ranges``.
JSON keys are matched like Go's decoder does it: exact or case-insensitive,
the last matching key winning. ``null`` is what it is to Go: absent for
pointers, slices and addresses, no change for strings, numbers and structs,
and ``invalid CIDR address: `` for a subnet or a route's ``dst``.

One key goes beyond the reference: ``ipam.store`` chooses where reservations
live. Absent (or ``null``), they are files under ``ipam.dataDir`` exactly as the
reference keeps them. ``{"type": "etcd", ...}`` selects the etcd store, shared by
every host of the network (see :func:`~cnicore.stores.parse_etcd_store_config`
for its keys); any other ``type`` is rejected. The reference plugin ignores keys
it does not know, so it still reads such a configuration without error, but it
would keep its reservations in ``dataDir``, apart from the etcd ones: every host
of a network using the etcd store must run cnicore. The store object is checked
after everything the reference checks, so a configuration with several faults
reports the reference's error first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore._errors import DecodingError, InvalidConfigError
from cnicore._gofmt import go_field as _field
from cnicore._gofmt import go_type_name
from cnicore._json import decode
from cnicore.ipam._range import Range, RangeSet
from cnicore.spec._args import parse_cni_args
from cnicore.spec._version import compare_versions
from cnicore.stores._goip import parse_cidr, parse_ip

if TYPE_CHECKING:
    # Loaded with ipam.store only: an exec'd host-local on the file store does without it.
    from cnicore.stores._etcd_config import EtcdStoreConfig

__all__ = ["DEFAULT_DATA_DIR", "STORE_TYPES", "IPAMConfig", "Route", "load_ipam_config", "parse_requested_ip"]

#: Where reservations live when ``ipam.dataDir`` is not set.
DEFAULT_DATA_DIR = "/var/lib/cni/networks"

#: The values ``ipam.store.type`` may take.
STORE_TYPES = ("etcd",)


@attrs.frozen(slots=True, kw_only=True)
class Route:
    """A route from ``ipam.routes``, copied into results as given (``dst`` keeps host bits)."""

    dst: IPNetwork = attrs.field(eq=False)
    gw: IPAddress | None = None
    mtu: int | None = None
    advmss: int | None = None
    priority: int | None = None
    table: int | None = None
    scope: int | None = None
    _dst_key: tuple[int, int, int] = attrs.field(init=False, repr=False)

    @_dst_key.default
    def _key(self) -> tuple[int, int, int]:
        return (self.dst.version, int(self.dst.ip), self.dst.prefixlen)


@attrs.frozen(slots=True, kw_only=True)
class IPAMConfig:
    """host-local's configuration, canonical and checked.

    Attributes:
        name: the network name (also the store directory's name).
        cni_version: the configuration's ``cniVersion`` ("" when absent).
        type: ``ipam.type``.
        range_sets: one address is allocated from each, in this order.
        requested_ips: addresses asked for by ``CNI_ARGS`` ``IP``, ``args.cni.ips`` and
            ``runtimeConfig.ips``, in that order, duplicates removed.
        routes: ``ipam.routes``.
        data_dir: ``ipam.dataDir`` or ``/var/lib/cni/networks``.
        resolv_conf: ``ipam.resolvConf`` ("" when absent).
        store: the etcd store's settings from ``ipam.store``, or None (absent): the
            file store under ``data_dir``. The reference plugin ignores ``ipam.store``.
    """

    name: str
    cni_version: str
    type: str = "host-local"
    range_sets: tuple[RangeSet, ...]
    requested_ips: tuple[IPAddress, ...] = ()
    routes: tuple[Route, ...] = ()
    data_dir: str = DEFAULT_DATA_DIR
    resolv_conf: str = ""
    store: EtcdStoreConfig | None = None


# ----------------------------------------------------------------------------- Go-like decoding


def _type_error(value: Any, where: str, go_type: str, key: str) -> InvalidConfigError:
    return InvalidConfigError(f"json: cannot unmarshal {go_type_name(value)} into Go struct field {where} of type "
                              f"{go_type}", key=key, value=value)


# A types.IPNet field absent from its object (null is not absence there: it fails to parse, as in the reference).
_ABSENT: Any = object()


def _string(obj: Mapping[str, Any], name: str, where: str, key: str) -> str:
    # A null leaves a Go string as it was.
    actual, value = _field(obj, name, null_keeps=True)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _type_error(value, where, "string", f"{key}{actual}")
    return value


def _object(value: Any, where: str, go_type: str, key: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _type_error(value, where, go_type, key)
    return value


def _list(value: Any, where: str, go_type: str, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(value, where, go_type, key)
    return value


def _net_ip(value: Any, where: str, key: str) -> IPAddress | None:
    """A ``net.IP`` field: "" and null mean absent; a bad string is ``invalid IP address: <s>``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _type_error(value, where, "net.IP", key)
    if value == "":
        return None
    ip = parse_ip(value)
    if ip is None:
        raise InvalidConfigError(f"invalid IP address: {value}", key=key, value=value)
    return ip


def _ip_net(value: Any, where: str, key: str) -> IPNetwork | None:
    """A ``types.IPNet`` field (looked up with ``missing=_ABSENT``): a CIDR string keeping host bits.

    Absent is None. A null is parsed as the empty string, as the reference's
    ``IPNet.UnmarshalJSON`` does: ``invalid CIDR address: ``.
    """
    if value is _ABSENT:
        return None
    if value is None:
        raise InvalidConfigError("invalid CIDR address: ", key=key, value=None)
    if not isinstance(value, str):
        raise _type_error(value, where, "string", key)
    net = parse_cidr(value)
    if net is None:
        raise InvalidConfigError(f"invalid CIDR address: {value}", key=key, value=value)
    return net


def parse_requested_ip(text: str) -> IPAddress:
    """An ``ip.IP`` value (``CNI_ARGS`` ``IP``, ``args.cni.ips``, ``runtimeConfig.ips``): an address or a CIDR.

    The prefix of a CIDR is ignored, as in the reference.

    Raises:
        ValueError: ``invalid IP address <text>``.
    """
    ip = parse_ip(text)
    if ip is None:
        net = parse_cidr(text)
        if net is None:
            raise ValueError(f"invalid IP address {text}")
        ip = IPAddress(int(net.ip), net.version)
    return ip


def _requested_list(value: Any, where: str, key: str) -> list[IPAddress]:
    found: list[IPAddress] = []
    for i, item in enumerate(_list(value, where, "[]*ip.IP", key)):
        item_key = f"{key}[{i}]"
        if item is None:
            raise InvalidConfigError("cannot understand ip: IP <nil> not v4 nor v6", key=item_key, value=None)
        if not isinstance(item, str):
            raise _type_error(item, where, "ip.IP", item_key)
        try:
            found.append(parse_requested_ip(item))
        except ValueError as exc:
            raise InvalidConfigError(str(exc), key=item_key, value=item) from exc
    return found


def _range_spec(value: Any, path: str, key: str) -> tuple[str, IPNetwork | None, IPAddress | None,
                                                          IPAddress | None, IPAddress | None]:
    obj = _object(value, f"RangeSet.{path}", "allocator.Range", key) or {}
    where = f"Range.{path}"
    k, v = _field(obj, "subnet", missing=_ABSENT)
    subnet = _ip_net(v, f"{where}.subnet", f"{key}.{k}")
    k, v = _field(obj, "rangeStart")
    start = _net_ip(v, f"{where}.rangeStart", f"{key}.{k}")
    k, v = _field(obj, "rangeEnd")
    end = _net_ip(v, f"{where}.rangeEnd", f"{key}.{k}")
    k, v = _field(obj, "gateway")
    gateway = _net_ip(v, f"{where}.gateway", f"{key}.{k}")
    return key, subnet, start, end, gateway


_RangeSpec = tuple[str, IPNetwork | None, IPAddress | None, IPAddress | None, IPAddress | None]


def _range_sets(value: Any, where: str, path: str, key: str) -> list[tuple[str, list[_RangeSpec]]]:
    sets: list[tuple[str, list[_RangeSpec]]] = []
    for i, raw_set in enumerate(_list(value, where, "[]allocator.RangeSet", key)):
        set_key = f"{key}[{i}]"
        specs = [_range_spec(r, path, f"{set_key}[{j}]")
                 for j, r in enumerate(_list(raw_set, where, "allocator.RangeSet", set_key))]
        sets.append((set_key, specs))
    return sets


def _routes(value: Any) -> list[Route]:
    routes: list[Route] = []
    for i, raw in enumerate(_list(value, "IPAMConfig.ipam.routes", "[]*types.Route", "ipam.routes")):
        key = f"ipam.routes[{i}]"
        obj = _object(raw, "IPAMConfig.ipam.routes", "types.Route", key)
        if obj is None:
            continue  # a null *types.Route: the reference keeps a nil entry, which prints as null
        k, v = _field(obj, "dst", missing=_ABSENT)
        dst = _ip_net(v, "Route.ipam.routes.dst", f"{key}.{k}")
        if dst is None:
            dst = IPNetwork("0.0.0.0/0")  # a zero net.IPNet; the reference would print "<nil>"
        k, v = _field(obj, "gw")
        gw = _net_ip(v, "Route.ipam.routes.gw", f"{key}.{k}")
        extras: dict[str, int | None] = {}
        for name in ("mtu", "advmss", "priority", "table", "scope"):
            # mtu, advmss and priority are Go ints (a null leaves them); table and scope pointers (a null clears).
            k, v = _field(obj, name, null_keeps=name in ("mtu", "advmss", "priority"))
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise _type_error(v, f"Route.ipam.routes.{name}", "int", f"{key}.{k}")
            extras[name] = v
        routes.append(Route(dst=dst, gw=gw, **extras))
    return routes


def load_ipam_config(config: str | bytes | bytearray | Mapping[str, Any], cni_args: str = "") -> IPAMConfig:
    """Load host-local's configuration from the full plugin configuration and ``CNI_ARGS``.

    Args:
        config: the plugin's stdin (JSON text) or an already decoded object.
        cni_args: the ``CNI_ARGS`` value; only ``IP`` (and ``IgnoreUnknown``) are understood.

    Raises:
        DecodingError: the JSON text is invalid (code 6).
        InvalidConfigError: anything the reference rejects, with its message (code 7).
    """
    net = decode(config, what="network config") if isinstance(config, str | bytes | bytearray) else config
    if not isinstance(net, Mapping):
        raise InvalidConfigError(f"json: cannot unmarshal {go_type_name(net)} into Go value of type allocator.Net",
                                 key="", value=net)
    name = _string(net, "name", "Net.name", "")
    cni_version = _string(net, "cniVersion", "Net.cniVersion", "")
    ipam_key, ipam_raw = _field(net, "ipam")
    ipam = _object(ipam_raw, "Net.ipam", "allocator.IPAMConfig", ipam_key)

    runtime_key, runtime_raw = _field(net, "runtimeConfig", null_keeps=True)  # a struct, not a pointer
    runtime = _object(runtime_raw, "Net.runtimeConfig", "struct", runtime_key) or {}
    k, v = _field(runtime, "ipRanges")
    runtime_sets = _range_sets(v, "Net.runtimeConfig.ipRanges", "runtimeConfig.ipRanges", f"{runtime_key}.{k}")
    k, v = _field(runtime, "ips")
    runtime_ips = _requested_list(v, "Net.runtimeConfig.ips", f"{runtime_key}.{k}")

    args_key, args_raw = _field(net, "args")
    args = _object(args_raw, "Net.args", "struct", args_key) or {}
    cni_key, cni_raw = _field(args, "cni")
    cni = _object(cni_raw, "Net.args.cni", "allocator.IPAMArgs", f"{args_key}.{cni_key}") or {}
    k, v = _field(cni, "ips")
    args_ips = _requested_list(v, "IPAMArgs.args.cni.ips", f"{args_key}.{cni_key}.{k}")

    if ipam is None:
        raise InvalidConfigError("IPAM config missing 'ipam' key", key="ipam", value=None)
    ipam_type = _string(ipam, "type", "IPAMConfig.ipam.type", "ipam.")
    data_dir = _string(ipam, "dataDir", "IPAMConfig.ipam.dataDir", "ipam.") or DEFAULT_DATA_DIR
    resolv_conf = _string(ipam, "resolvConf", "IPAMConfig.ipam.resolvConf", "ipam.")
    k, v = _field(ipam, "routes")
    routes = _routes(v)
    legacy = _range_spec(ipam, "ipam", "ipam")
    k, v = _field(ipam, "ranges")
    ranges = _range_sets(v, "IPAMConfig.ipam.ranges", "ipam.ranges", f"ipam.{k}")
    store_key, store_raw = _field(ipam, "store")

    requested: list[IPAddress] = []
    if cni_args:
        parsed = parse_cni_args(cni_args, {"IP": parse_requested_ip})
        if "IP" in parsed:
            requested.append(parsed["IP"])
    requested += args_ips + runtime_ips
    # The reference keys requested addresses by their text: a repeated address is one request.
    unique = list(dict.fromkeys(requested))

    specs: list[tuple[str, list[_RangeSpec]]] = list(runtime_sets)
    if legacy[1] is not None:
        specs.append(("ipam", [legacy]))
    specs += ranges
    if not specs:
        raise InvalidConfigError("no IP ranges specified", key="ipam.ranges", value=None)

    range_sets: list[RangeSet] = []
    for idx, (set_key, set_specs) in enumerate(specs):
        try:
            range_sets.append(_canonical_set(set_key, set_specs))
        except InvalidConfigError as exc:
            raise InvalidConfigError(f"invalid range set {idx}: {exc.msg}", key=exc.key,
                                     value=exc.value if exc.has_value else None) from exc

    v4 = sum(1 for s in range_sets if s.version == 4)
    v6 = len(range_sets) - v4
    if (v4 > 1 or v6 > 1) and _older_than_030(cni_version):
        raise InvalidConfigError(f"CNI version {cni_version} does not support more than 1 address per family",
                                 key="cniVersion", value=cni_version)
    for i, first in enumerate(range_sets[:-1]):
        for j in range(i + 1, len(range_sets)):
            if first.overlaps(range_sets[j]):
                raise InvalidConfigError(f"range set {i} overlaps with {j}", key=specs[j][0], value=str(range_sets[j]))
    store = _store(store_raw, f"ipam.{store_key}")
    return IPAMConfig(name=name, cni_version=cni_version, type=ipam_type, range_sets=tuple(range_sets),
                      requested_ips=tuple(unique), routes=tuple(routes), data_dir=data_dir, resolv_conf=resolv_conf,
                      store=store)


def _store(value: Any, key: str) -> EtcdStoreConfig | None:
    """``ipam.store``: None (the file store) when absent or null, else a checked store configuration."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidConfigError(f"{key} must be an object", key=key, value=value)
    known = ", ".join(STORE_TYPES)
    if "type" not in value:
        raise InvalidConfigError(f"{key}.type is missing (known store types: {known})", key=f"{key}.type",
                                 value=None)
    store_type = value["type"]
    if not isinstance(store_type, str) or store_type not in STORE_TYPES:
        raise InvalidConfigError(f"unknown store type {json.dumps(store_type)} in {key}.type (known store types: "
                                 f"{known})", key=f"{key}.type", value=store_type)
    from cnicore.stores._etcd_config import parse_etcd_store_config

    return parse_etcd_store_config(value, key=key)


def _older_than_030(version: str) -> bool:
    # The reference's GreaterThanOrEqualTo fails (so "not >= 0.3.0") for unparsable versions too.
    try:
        return compare_versions(version, "0.3.0") < 0
    except DecodingError:
        return True


def _canonical_set(set_key: str, specs: list[_RangeSpec]) -> RangeSet:
    """Canonicalise ranges one by one, checking the family as each comes (the reference's order)."""
    if not specs:
        raise InvalidConfigError("empty range set", key=set_key, value=[])
    ranges: list[Range] = []
    for key, subnet, start, end, gateway in specs:
        r = Range.canonical(subnet, start, end, gateway, key=key)
        if ranges and r.version != ranges[0].version:
            raise InvalidConfigError("mixed address families", key=key, value=str(r))
        ranges.append(r)
    return RangeSet.canonical(ranges, key=set_key)
