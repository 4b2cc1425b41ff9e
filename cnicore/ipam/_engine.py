"""host-local's engine: configuration, ranges, range sets, the allocator and ADD/DEL/CHECK/GC on plain values.

This is the one implementation of host-local's semantics. The library's typed
API (:class:`~cnicore.ipam.Range`, :class:`~cnicore.ipam.RangeSet`,
:class:`~cnicore.ipam.IPAMConfig`, :class:`~cnicore.ipam.HostLocalIPAM`: attrs
values with netaddr addresses) adapts it at the edge, and the executed
host-local plugin calls it directly, so that a process executed per container
and command loads neither attrs nor netaddr (nor ``typing``).

What it may use: the standard library, cnicore's error tree and Go helpers
(:mod:`cnicore._errors`, :mod:`cnicore._gofmt`), and the spec's integer Go
address module (:mod:`cnicore.spec._goint`). Never a store module, never
netaddr or attrs (the architecture test checks it).

Values. An address is ``(version, value)``; a CIDR ``(version, value,
prefix)``; a store key is :func:`~cnicore.spec._goint.value_key` of an
address. An owner is ``(container ID, ifname)`` (``ifname`` None for the
legacy ID-only form) and is given to stores as key texts: ``"<id> <ifname>"``
and, for lookups that also match the legacy form, ``"<id>"``.

The store port (:class:`KeyStore`) is the key-level face of a store: the file
store's core (:class:`~cnicore.stores._filecore.FileStoreCore`) has it as is;
the typed adapter gives it to any :class:`~cnicore.stores.IPStore`.

Allocation (per range set ``idx``, under the store's transaction): a requested
address must lie in the set, not be its range's gateway, and be free;
otherwise the attachment must not already hold an address of the set, and the
candidates are visited in the reference's order: right after
``last_reserved_ip.<idx>`` when that lies in the set (else from the first
range's start), each range to its end, on to the next, wrapping around, the
gateways skipped, the last reserved address itself last. The store answers
"first free address in [low, high]" so the cost does not grow with how many
are taken. A store that picks its own order (``picks_own_order``, the etcd
store) is asked range by range instead. Either way, an address someone else
took first is a lost race: the allocator asks again, and after
:data:`MAX_LOST_RACES` of them in one allocation answers code 11 (try again
later) instead of spinning.
"""

from __future__ import annotations

from cnicore._errors import (
    AddressConflictError,
    AddressExhaustedError,
    CNIError,
    DecodingError,
    InternalError,
    InvalidConfigError,
    InvalidEnvironmentError,
    NotFoundError,
    TryAgainLaterError,
    UnknownContainerError,
)
from cnicore._gofmt import GO_SPACE, go_field, go_has_space, go_type_name
from cnicore._readfile import MAX_DOCUMENT_BYTES, read_regular
from cnicore.spec._goint import (
    canonical_value,
    ip_value_text,
    key_value,
    parse_cidr_parts,
    parse_cidr_value,
    parse_ip_value,
    value_key,
)
from cnicore.spec._validate import MAX_OWNER_BYTES

TYPE_CHECKING = False  # typing is left to type checkers: the exec'd plugin must not pay for it
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from contextlib import AbstractContextManager
    from typing import Any, Protocol

    #: ``(version, value)`` of an address.
    IPValue = tuple[int, int]
    #: A route: dst ``(version, value, prefix)``, gw, then mtu, advmss, priority, table, scope (None when absent).
    RouteValue = tuple[tuple[int, int, int], IPValue | None, int | None, int | None, int | None, int | None,
                       int | None]
    #: DNS: nameservers, domain, search, options.
    DNSValue = tuple[tuple[str, ...], str, tuple[str, ...], tuple[str, ...]]
    #: One allocated address: range set index, version, value, the range's prefix length, the range's gateway.
    Allocated = tuple[int, int, int, int, IPValue]
    #: An attachment: (container ID as stored, ifname); ifname None for the legacy ID-only owner.
    OwnerValue = tuple[str, str | None]

    #: A range as configured: key path, subnet (parse_cidr_parts), rangeStart, rangeEnd, gateway.
    _RangeSpec = tuple[str, tuple[int, int, int, int] | None, IPValue | None, IPValue | None, IPValue | None]

    class KeyStore(Protocol):
        """The store port on keys and owner key texts (see the module notes); every method its own transaction."""

        def transaction(self) -> AbstractContextManager[None]: ...
        def reserve_key(self, key: int, owner_text: str, range_id: str) -> bool: ...
        def release_key(self, key: int, owner_text: str) -> bool: ...
        def release_owner_keys(self, exact_text: str, legacy_text: str | None) -> list[int]: ...
        def find_owner_keys(self, exact_text: str, legacy_text: str | None) -> list[int]: ...
        def first_free_key(self, low: int, high: int) -> int | None: ...
        def last_reserved_key(self, range_id: str) -> int | None: ...
        def reservation_keys(self) -> list[tuple[int, str | None]]: ...
        def sweep(self) -> int: ...

__all__ = ["DEFAULT_DATA_DIR", "MAX_LOST_RACES", "NO_DNS", "STORE_TYPES", "PlainConfig", "PlainRange", "PlainRangeSet",
           "add", "allocate", "attachment_owner", "candidate_spans", "canonical_range", "canonical_range_set", "check",
           "decode_config", "delete", "first_overlap", "gc", "load_resolv_conf", "owner_texts", "parse_requested_ip",
           "parse_resolv_conf"]

#: Where reservations live when ``ipam.dataDir`` is not set.
DEFAULT_DATA_DIR = "/var/lib/cni/networks"
#: The values ``ipam.store.type`` may take.
STORE_TYPES = ("etcd",)
#: Lost races (an offered address someone else reserved first) after which one allocation gives up with code 11.
MAX_LOST_RACES = 1000
#: No DNS settings.
NO_DNS: DNSValue = ((), "", (), ())

# How Go prints the malformed one-byte address the reference computes as the first address of a network whose
# address is all zeros (see PlainRange).
_MALFORMED_START = "?01"


# ----------------------------------------------------------------------------- ranges and range sets


class PlainRange:
    """One canonical range on integers: the reference's ``Range`` after ``Canonicalize``.

    ``network``/``prefix`` the subnet (host bits clear), ``[start, end]`` the
    window, ``gateway`` an address (of any family: the reference does not check
    it). ``malformed_start``: the subnet's address is all zeros and no
    ``rangeStart`` was given. The reference (Debian's 1.1.1 build, whose
    ``ip.NextIP`` does not pad big.Int bytes) then computes a one-byte start it
    prints as ``?01``, which no address equals: nothing is ever allocated from
    such a range (``no IP addresses available in range set: ?01-...``), while its
    ``Contains`` still compares addresses with that start as zero. ``start``
    holds the first host address for the typed API's sake.
    """

    __slots__ = ("end", "gateway", "malformed_start", "network", "prefix", "start", "version")

    def __init__(self, version: int, network: int, prefix: int, start: int, end: int, gateway: IPValue,
                 malformed_start: bool = False) -> None:
        self.version = version
        self.network = network
        self.prefix = prefix
        self.start = start
        self.end = end
        self.gateway = gateway
        self.malformed_start = malformed_start

    @property
    def low(self) -> int:
        """The lowest address :meth:`contains` accepts."""
        return self.network if self.malformed_start else self.start

    @property
    def family(self) -> int:
        """What the reference compares as the family (the length of the start): 0 for a malformed start."""
        return 0 if self.malformed_start else self.version

    def contains(self, version: int, value: int) -> bool:
        """The reference's ``Range.Contains`` (the address canonical)."""
        return version == self.version and self.low <= value <= self.end

    def overlaps(self, other: PlainRange) -> bool:
        """The reference's ``Range.Overlaps``: same family, and one holds an end of the other."""
        return self.family == other.family and self.low <= other.end and other.low <= self.end

    def __str__(self) -> str:
        start = _MALFORMED_START if self.malformed_start else ip_value_text(self.version, self.start)
        return f"{start}-{ip_value_text(self.version, self.end)}"

    def __repr__(self) -> str:
        return f"PlainRange({self}/{self.prefix} gw {ip_value_text(*self.gateway)})"


class PlainRangeSet:
    """A canonical, non-empty, single-family pool of disjoint ranges (one address per ADD)."""

    __slots__ = ("ranges", "version")

    def __init__(self, ranges: Sequence[PlainRange]) -> None:
        self.ranges = tuple(ranges)
        self.version = self.ranges[0].version if self.ranges else 0

    def index_for(self, version: int, value: int) -> int | None:
        """The index of the range containing the address, or None."""
        for i, r in enumerate(self.ranges):
            if r.contains(version, value):
                return i
        return None

    def range_for(self, version: int, value: int) -> PlainRange | None:
        """The range containing the address, or None."""
        index = self.index_for(version, value)
        return None if index is None else self.ranges[index]

    def contains(self, version: int, value: int) -> bool:
        """Whether some range of the set contains the address."""
        return self.index_for(version, value) is not None

    def overlaps(self, other: PlainRangeSet) -> bool:
        """Whether any range of this set overlaps any range of ``other`` (the reference's ``RangeSet.Overlaps``)."""
        return _first_overlapping_sets([self, other]) is not None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)


def _cidr_text(version: int, value: int, prefix: int) -> str:
    """Go's ``(*net.IPNet).String()`` of a parsed subnet: the address as given and the prefix length."""
    return f"{ip_value_text(version, value)}/{prefix}"


def canonical_range(subnet: tuple[int, int, int, int] | None, range_start: IPValue | None = None,
                    range_end: IPValue | None = None, gateway: IPValue | None = None, *,
                    key: str = "range") -> PlainRange:
    """The reference's ``Range.Canonicalize``: its checks and defaults, in its order, with its messages.

    Args:
        subnet: :func:`~cnicore.spec._goint.parse_cidr_parts` of the ``subnet`` (host bits may be set: that is
            an error reported here), or None when absent.
        range_start, range_end, gateway: optional bounds and gateway.
        key: the configuration key path of this range, for errors.

    Raises:
        InvalidConfigError: with the reference's message and the key path of the field.
    """
    if subnet is None:
        raise InvalidConfigError("IP <nil> not v4 nor v6", key=f"{key}.subnet", value=None)
    version, value, prefix, mask_bits = subnet
    bits = 32 if version == 4 else 128
    if prefix > mask_bits - 2 or mask_bits != bits:
        # An IPv4 address written as IPv6 keeps Go's 16-byte mask: the size check counts it, then the mismatch fails.
        given = _cidr_text(version, value, max(prefix - 96, 0) if mask_bits != bits else prefix)
        if prefix > mask_bits - 2:
            raise InvalidConfigError(f"Network {given} too small to allocate from", key=f"{key}.subnet", value=given)
        raise InvalidConfigError("IPNet IP and Mask version mismatch", key=f"{key}.subnet", value=given)
    host = (1 << (bits - prefix)) - 1
    first = value & ~host
    if first != value:
        raise InvalidConfigError(
            "Network has host bits set. For a subnet mask of length "
            f"{prefix} the network address is {ip_value_text(version, first)}", key=f"{key}.subnet",
            value=_cidr_text(version, value, prefix))
    last = first | host
    malformed = first == 0 and range_start is None
    gw = canonical_value(*gateway) if gateway is not None else (version, first + 1)
    if range_start is not None:
        start_version, start = canonical_value(*range_start)
        # As in the reference: checked against the end as given, so a start past the end reports the start.
        if (start_version != version or not first <= start <= last
                or (range_end is not None and start > canonical_value(*range_end)[1])):
            text = ip_value_text(start_version, start)
            raise InvalidConfigError(f"RangeStart {text} not in network {_cidr_text(version, first, prefix)}",
                                     key=f"{key}.rangeStart", value=text)
    else:
        start = first + 1
    if range_end is not None:
        end_version, end = canonical_value(*range_end)
        if end_version != version or not first <= end <= last or end < (first if malformed else start):
            text = ip_value_text(end_version, end)
            raise InvalidConfigError(f"RangeEnd {text} not in network {_cidr_text(version, first, prefix)}",
                                     key=f"{key}.rangeEnd", value=text)
    else:
        # IPv4 leaves out the broadcast address; IPv6 has none.
        end = last - 1 if version == 4 else last
    return PlainRange(version, first, prefix, start, end, gw, malformed)


def first_overlap(spans: Sequence[tuple[int, int, int]]) -> tuple[int, int] | None:
    """The first overlapping pair ``(i, j)``, ``i < j``, in the order of the reference's nested loops, or None.

    ``spans`` are ``(family, low, high)`` intervals; intervals of different
    families never overlap. The reference compares every pair (O(n²): seconds for
    a few thousand ranges); this sorts once. An interval overlaps another iff,
    in start order, it starts before the furthest end so far (then it overlaps
    the interval holding that end) or the next interval starts before its own
    end: marking both sides of every such meeting marks exactly the intervals
    that overlap some other. The smallest marked index is the reference's ``i``
    (every interval it overlaps is marked too, so has a larger index), and its
    first partner is found by one pass.
    """
    n = len(spans)
    marked = _overlapping(spans)
    i = next((k for k in range(n) if marked[k]), None)
    if i is None:
        return None
    family, low, high = spans[i]
    for j in range(i + 1, n):
        other_family, other_low, other_high = spans[j]
        if other_family == family and other_low <= high and low <= other_high:
            return i, j
    raise InternalError("overlap search lost its pair")  # pragma: no cover - the marking guarantees a partner


def _span(r: PlainRange) -> tuple[int, int, int]:
    # The reference's Overlaps compares families by the start's length, then containment of either end.
    return r.family, r.low, r.end


def canonical_range_set(ranges: Sequence[PlainRange], *, key: str = "range set") -> PlainRangeSet:
    """The reference's ``RangeSet.Canonicalize`` checks on canonical ranges, in O(n log n).

    Raises:
        InvalidConfigError: ``empty range set``, ``mixed address families`` or
            ``subnets A and B overlap`` (ranges printed ``start-end``; the pair the reference reports).
    """
    if not ranges:
        raise InvalidConfigError("empty range set", key=key, value=[])
    family = ranges[0].family
    for i, r in enumerate(ranges):
        if r.family != family:
            raise InvalidConfigError("mixed address families", key=f"{key}[{i}]", value=str(r))
    pair = first_overlap([_span(r) for r in ranges])
    if pair is not None:
        first, second = ranges[pair[0]], ranges[pair[1]]
        raise InvalidConfigError(f"subnets {first} and {second} overlap", key=f"{key}[{pair[1]}]", value=str(second))
    return PlainRangeSet(ranges)


def _first_overlapping_sets(range_sets: Sequence[PlainRangeSet]) -> tuple[int, int] | None:
    """The reference's first pair ``(i, j)`` of range sets with overlapping ranges, or None, in O(n log n).

    Ranges within a set are disjoint, so any overlap is between sets: the first
    set with an overlapping range is ``i``; ``j`` is the lowest set with a range
    meeting one of ``i``'s, found by a binary search in ``i``'s sorted ranges.
    """
    spans: list[tuple[int, int, int]] = []
    owners: list[int] = []
    for index, range_set in enumerate(range_sets):
        for r in range_set.ranges:
            spans.append(_span(r))
            owners.append(index)
    marked = _overlapping(spans)
    if not any(marked):
        return None
    from bisect import bisect_right

    i = min(owners[k] for k in range(len(spans)) if marked[k])
    mine = sorted(_span(r) for r in range_sets[i].ranges)
    candidates: set[int] = set()
    for k, (family, low, high) in enumerate(spans):
        if owners[k] == i:
            continue
        pos = bisect_right(mine, (family, high, 1 << 130)) - 1
        if pos >= 0 and mine[pos][0] == family and mine[pos][2] >= low:
            candidates.add(owners[k])
    j = min(c for c in candidates if c > i)
    return i, j


def _overlapping(spans: Sequence[tuple[int, int, int]]) -> list[bool]:
    """For each interval, whether it overlaps another (see :func:`first_overlap`)."""
    marked = [False] * len(spans)
    reach_family, reach, reach_index = -1, -1, -1
    for k in sorted(range(len(spans)), key=spans.__getitem__):
        family, low, high = spans[k]
        if family == reach_family and low <= reach:
            marked[k] = marked[reach_index] = True
        if family != reach_family or high > reach:
            reach_family, reach, reach_index = family, high, k
    return marked


# ----------------------------------------------------------------------------- the configuration


class PlainConfig:
    """host-local's configuration, canonical and checked (the typed :class:`~cnicore.ipam.IPAMConfig`'s fields).

    ``store`` is the raw ``ipam.store`` object (its type checked; None for the
    file store under ``data_dir``) and ``store_key`` its key path: reading the
    etcd settings is the store's business.
    """

    __slots__ = ("cni_version", "data_dir", "name", "range_sets", "requested", "resolv_conf", "routes", "store",
                 "store_key", "type")

    def __init__(self, name: str, cni_version: str, type: str, range_sets: Sequence[PlainRangeSet],
                 requested: Sequence[IPValue] = (), routes: Sequence[RouteValue] = (),
                 data_dir: str = DEFAULT_DATA_DIR, resolv_conf: str = "", store: Mapping[str, Any] | None = None,
                 store_key: str = "ipam.store") -> None:
        self.name = name
        self.cni_version = cni_version
        self.type = type
        self.range_sets = tuple(range_sets)
        self.requested = tuple(requested)
        self.routes = tuple(routes)
        self.data_dir = data_dir
        self.resolv_conf = resolv_conf
        self.store = store
        self.store_key = store_key


def _type_error(value: Any, where: str, go_type: str, key: str) -> InvalidConfigError:
    return InvalidConfigError(f"json: cannot unmarshal {go_type_name(value)} into Go struct field {where} of type "
                              f"{go_type}", key=key, value=value)


# A types.IPNet field absent from its object (null is not absence there: it fails to parse, as in the reference).
_ABSENT: Any = object()


def _string(obj: Mapping[str, Any], name: str, where: str, key: str) -> str:
    # A null leaves a Go string as it was.
    actual, value = go_field(obj, name, null_keeps=True)
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


def _net_ip(value: Any, where: str, key: str) -> IPValue | None:
    """A ``net.IP`` field: "" and null mean absent; a bad string is ``invalid IP address: <s>``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _type_error(value, where, "net.IP", key)
    if value == "":
        return None
    ip = parse_ip_value(value)
    if ip is None:
        raise InvalidConfigError(f"invalid IP address: {value}", key=key, value=value)
    return ip


def _ip_net_parts(value: Any, where: str, key: str) -> tuple[int, int, int, int] | None:
    """A ``types.IPNet`` field (looked up with ``missing=_ABSENT``): absent is None; null parses as ""."""
    if value is _ABSENT:
        return None
    if value is None:
        raise InvalidConfigError("invalid CIDR address: ", key=key, value=None)
    if not isinstance(value, str):
        raise _type_error(value, where, "string", key)
    parts = parse_cidr_parts(value)
    if parts is None:
        raise InvalidConfigError(f"invalid CIDR address: {value}", key=key, value=value)
    return parts


def parse_requested_ip(text: str) -> IPValue:
    """An ``ip.IP`` value (``CNI_ARGS`` ``IP``, ``args.cni.ips``, ``runtimeConfig.ips``): an address or a CIDR.

    The prefix of a CIDR is ignored, as in the reference.

    Raises:
        ValueError: ``invalid IP address <text>``.
    """
    ip = parse_ip_value(text)
    if ip is None:
        net = parse_cidr_value(text)
        if net is None:
            raise ValueError(f"invalid IP address {text}")
        ip = net[0], net[1]
    return ip


def _requested_list(value: Any, where: str, key: str) -> list[IPValue]:
    found: list[IPValue] = []
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


def _range_spec(value: Any, path: str, key: str) -> _RangeSpec:
    obj = _object(value, f"RangeSet.{path}", "allocator.Range", key) or {}
    where = f"Range.{path}"
    k, v = go_field(obj, "subnet", missing=_ABSENT)
    subnet = _ip_net_parts(v, f"{where}.subnet", f"{key}.{k}")
    k, v = go_field(obj, "rangeStart")
    start = _net_ip(v, f"{where}.rangeStart", f"{key}.{k}")
    k, v = go_field(obj, "rangeEnd")
    end = _net_ip(v, f"{where}.rangeEnd", f"{key}.{k}")
    k, v = go_field(obj, "gateway")
    gateway = _net_ip(v, f"{where}.gateway", f"{key}.{k}")
    return key, subnet, start, end, gateway


def _range_sets(value: Any, where: str, path: str, key: str) -> list[tuple[str, list[_RangeSpec]]]:
    sets: list[tuple[str, list[_RangeSpec]]] = []
    for i, raw_set in enumerate(_list(value, where, "[]allocator.RangeSet", key)):
        set_key = f"{key}[{i}]"
        specs = [_range_spec(r, path, f"{set_key}[{j}]")
                 for j, r in enumerate(_list(raw_set, where, "allocator.RangeSet", set_key))]
        sets.append((set_key, specs))
    return sets


_ROUTE_NUMBERS = ("mtu", "advmss", "priority", "table", "scope")


def _routes(value: Any) -> list[RouteValue]:
    routes: list[RouteValue] = []
    for i, raw in enumerate(_list(value, "IPAMConfig.ipam.routes", "[]*types.Route", "ipam.routes")):
        key = f"ipam.routes[{i}]"
        obj = _object(raw, "IPAMConfig.ipam.routes", "types.Route", key)
        if obj is None:
            continue  # a null *types.Route: the reference keeps a nil entry, which prints as null
        k, v = go_field(obj, "dst", missing=_ABSENT)
        parts = _ip_net_parts(v, "Route.ipam.routes.dst", f"{key}.{k}")
        # No dst: a zero net.IPNet, which the reference would print "<nil>"; ours is the default route.
        dst = (4, 0, 0) if parts is None else parse_cidr_value(v)
        assert dst is not None
        k, v = go_field(obj, "gw")
        gw = _net_ip(v, "Route.ipam.routes.gw", f"{key}.{k}")
        numbers: list[int | None] = []
        for name in _ROUTE_NUMBERS:
            # mtu, advmss and priority are Go ints (a null leaves them); table and scope pointers (a null clears).
            k, v = go_field(obj, name, null_keeps=name in ("mtu", "advmss", "priority"))
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise _type_error(v, f"Route.ipam.routes.{name}", "int", f"{key}.{k}")
            numbers.append(v)
        mtu, advmss, priority, table, scope = numbers
        routes.append((dst, gw, mtu, advmss, priority, table, scope))
    return routes


def _older_than_030(version: str) -> bool:
    # The reference's GreaterThanOrEqualTo fails (so "not >= 0.3.0") for unparsable versions too.
    from cnicore.spec._version import compare_versions

    try:
        return compare_versions(version, "0.3.0") < 0
    except DecodingError:
        return True


def _canonical_set(set_key: str, specs: list[_RangeSpec]) -> PlainRangeSet:
    """Canonicalise ranges one by one, checking the family as each comes (the reference's order)."""
    if not specs:
        raise InvalidConfigError("empty range set", key=set_key, value=[])
    ranges: list[PlainRange] = []
    for key, subnet, start, end, gateway in specs:
        r = canonical_range(subnet, start, end, gateway, key=key)
        if ranges and r.family != ranges[0].family:
            raise InvalidConfigError("mixed address families", key=key, value=str(r))
        ranges.append(r)
    return canonical_range_set(ranges, key=set_key)


def _store(value: Any, key: str) -> Mapping[str, Any] | None:
    """``ipam.store``: None (the file store) when absent or null, else the object with its type checked."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidConfigError(f"{key} must be an object", key=key, value=value)
    known = ", ".join(STORE_TYPES)
    if "type" not in value:
        raise InvalidConfigError(f"{key}.type is missing (known store types: {known})", key=f"{key}.type",
                                 value=None)
    store_type = value["type"]
    if not isinstance(store_type, str) or store_type not in STORE_TYPES:
        import json

        raise InvalidConfigError(f"unknown store type {json.dumps(store_type)} in {key}.type (known store types: "
                                 f"{known})", key=f"{key}.type", value=store_type)
    return value


def decode_config(config: str | bytes | bytearray | Mapping[str, Any], cni_args: str = "") -> PlainConfig:
    """host-local's configuration from the full plugin configuration and ``CNI_ARGS``, as the reference reads it.

    The reference decodes the whole network configuration (``name``,
    ``cniVersion``, ``ipam``, ``runtimeConfig.ipRanges``, ``runtimeConfig.ips``,
    ``args.cni.ips``) plus ``CNI_ARGS`` (key ``IP``) and then checks, in this
    order: the ``ipam`` key, ``CNI_ARGS``, requested IPs, that some range exists,
    each range set, the per-family limit of old versions, and overlaps between
    range sets. So does this, with the same messages. Range sets come out in the
    reference's order: ``runtimeConfig.ipRanges``, the legacy single range at the
    top of ``ipam``, then ``ipam.ranges``. Keys match as Go's decoder matches
    them (:func:`~cnicore._gofmt.go_field`). ``ipam.store`` (beyond the
    reference, which ignores it) is checked last.

    Raises:
        DecodingError: the JSON text is invalid (code 6).
        InvalidConfigError: anything the reference rejects, with its message and the key path (code 7).
    """
    if isinstance(config, str | bytes | bytearray):
        from cnicore._json import decode

        net = decode(config, what="network config")
    else:
        net = config
    if not isinstance(net, dict):
        raise InvalidConfigError(f"json: cannot unmarshal {go_type_name(net)} into Go value of type allocator.Net",
                                 key="", value=net)
    name = _string(net, "name", "Net.name", "")
    cni_version = _string(net, "cniVersion", "Net.cniVersion", "")
    ipam_key, ipam_raw = go_field(net, "ipam")
    ipam = _object(ipam_raw, "Net.ipam", "allocator.IPAMConfig", ipam_key)

    runtime_key, runtime_raw = go_field(net, "runtimeConfig", null_keeps=True)  # a struct, not a pointer
    runtime = _object(runtime_raw, "Net.runtimeConfig", "struct", runtime_key) or {}
    k, v = go_field(runtime, "ipRanges")
    runtime_sets = _range_sets(v, "Net.runtimeConfig.ipRanges", "runtimeConfig.ipRanges", f"{runtime_key}.{k}")
    k, v = go_field(runtime, "ips")
    runtime_ips = _requested_list(v, "Net.runtimeConfig.ips", f"{runtime_key}.{k}")

    args_key, args_raw = go_field(net, "args")
    args = _object(args_raw, "Net.args", "struct", args_key) or {}
    cni_key, cni_raw = go_field(args, "cni")
    cni = _object(cni_raw, "Net.args.cni", "allocator.IPAMArgs", f"{args_key}.{cni_key}") or {}
    k, v = go_field(cni, "ips")
    args_ips = _requested_list(v, "IPAMArgs.args.cni.ips", f"{args_key}.{cni_key}.{k}")

    if ipam is None:
        raise InvalidConfigError("IPAM config missing 'ipam' key", key="ipam", value=None)
    ipam_type = _string(ipam, "type", "IPAMConfig.ipam.type", "ipam.")
    data_dir = _string(ipam, "dataDir", "IPAMConfig.ipam.dataDir", "ipam.") or DEFAULT_DATA_DIR
    resolv_conf = _string(ipam, "resolvConf", "IPAMConfig.ipam.resolvConf", "ipam.")
    routes = _routes(go_field(ipam, "routes")[1])
    legacy = _range_spec(ipam, "ipam", "ipam")
    k, v = go_field(ipam, "ranges")
    ranges = _range_sets(v, "IPAMConfig.ipam.ranges", "ipam.ranges", f"ipam.{k}")
    store_key, store_raw = go_field(ipam, "store")

    requested: list[IPValue] = []
    if cni_args:
        from cnicore.spec._args import parse_cni_args

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

    range_sets: list[PlainRangeSet] = []
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
    pair = _first_overlapping_sets(range_sets) if len(range_sets) > 1 else None
    if pair is not None:
        i, j = pair
        raise InvalidConfigError(f"range set {i} overlaps with {j}", key=specs[j][0], value=str(range_sets[j]))
    store = _store(store_raw, f"ipam.{store_key}")
    return PlainConfig(name, cni_version, ipam_type, range_sets, unique, routes, data_dir, resolv_conf, store,
                       f"ipam.{store_key}")


# ----------------------------------------------------------------------------- resolv.conf


def parse_resolv_conf(text: str) -> DNSValue:
    """resolv.conf text as the reference's host-local reads it: ``(nameservers, domain, search, options)``.

    ``nameserver`` appends, ``domain`` sets (last wins), ``search`` and
    ``options`` append all their words; blank lines, lines starting with ``#``
    or ``;`` and lines with fewer than two words are skipped.
    """
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    domain = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        if fields[0] == "nameserver":
            nameservers.append(fields[1])
        elif fields[0] == "domain":
            domain = fields[1]
        elif fields[0] == "search":
            search.extend(fields[1:])
        elif fields[0] == "options":
            options.extend(fields[1:])
    return tuple(nameservers), domain, tuple(search), tuple(options)


def load_resolv_conf(path: str) -> DNSValue:
    """Read and parse a resolv.conf file.

    Raises:
        InvalidConfigError: the file cannot be read (``open <path>: <reason>``, key ``ipam.resolvConf``).
    """
    try:
        # Never blocking on a FIFO, never reading without bound.
        text = read_regular(path, MAX_DOCUMENT_BYTES).decode("utf-8", "surrogateescape")
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise InvalidConfigError(f"open {path}: {reason}", key="ipam.resolvConf", value=path) from exc
    return parse_resolv_conf(text)


# ----------------------------------------------------------------------------- owners


def attachment_owner(container_id: str, ifname: str) -> OwnerValue:
    """The owner an ADD records for ``(container_id, ifname)``: the ID trimmed as the reference stores it.

    Raises:
        UnknownContainerError: the ID is empty or blank (``missing containerID``).
        InvalidEnvironmentError: an ID or interface name holding whitespace, which a reservation file could not
            give back unambiguously.
    """
    if not container_id.strip():
        raise UnknownContainerError("missing containerID")
    trimmed = container_id.strip(GO_SPACE)
    problem = None
    if not trimmed or go_has_space(trimmed):
        problem = f"invalid container ID for a reservation: {trimmed!r}"
    elif not ifname or go_has_space(ifname):
        problem = f"invalid interface name for a reservation: {ifname!r}"
    elif len(trimmed.encode()) + 2 + len(ifname.encode("utf-8", "surrogatepass")) > MAX_OWNER_BYTES:
        problem = f"owner too long for a reservation (at most {MAX_OWNER_BYTES} bytes)"
        container_id = container_id[:64] + "..."  # (the message names it; not all of it)
    if problem is not None:
        raise InvalidEnvironmentError(f"cannot record a reservation for container {container_id!r} interface "
                                      f"{ifname!r}: {problem}")
    return trimmed, ifname


def owner_texts(owner: OwnerValue) -> tuple[str, str | None]:
    """The key texts DEL and lookups of ``owner`` match: its own, and its container's legacy one (None if legacy)."""
    container_id, ifname = owner
    if ifname is None:
        return container_id, None
    return f"{container_id} {ifname}", container_id


# ----------------------------------------------------------------------------- the allocator


def candidate_spans(range_set: PlainRangeSet, last: IPValue | None) -> Iterator[tuple[int, int, int]]:
    """The reference's visiting order as spans ``(range index, low, high)`` of addresses.

    Starts after ``last`` when some range holds it (that address itself comes
    last), else at the first range's start. Gateways are left to the caller; a
    range with a malformed start (see :class:`PlainRange`) yields nothing.
    """
    ranges = range_set.ranges
    start_idx = None
    if last is not None:
        last = canonical_value(*last)
        start_idx = next((i for i, r in enumerate(ranges) if r.contains(*last)), None)
    if start_idx is None or last is None:
        for i, r in enumerate(ranges):
            if not r.malformed_start:
                yield i, r.start, r.end
        return
    first = ranges[start_idx]
    value = last[1]
    if value < first.end and not first.malformed_start:
        yield start_idx, value + 1, first.end
    n = len(ranges)
    for step in range(1, n):
        i = (start_idx + step) % n
        r = ranges[i]
        if not r.malformed_start:
            yield i, r.start, r.end
    if not first.malformed_start:
        yield start_idx, first.start, value


def _store_order_spans(range_set: PlainRangeSet) -> Iterator[tuple[int, int, int]]:
    """Each range as whole spans ``(range index, low, high)``, its gateway cut out (for stores picking their order).

    The store never sees the gateway as a candidate, so it cannot keep offering it.
    """
    for i, r in enumerate(range_set.ranges):
        if r.malformed_start:
            continue
        low, high = r.start, r.end
        gateway = r.gateway[1] if r.gateway[0] == r.version else -1
        if low <= gateway <= high:
            if low < gateway:
                yield i, low, gateway - 1
            if gateway < high:
                yield i, gateway + 1, high
        else:
            yield i, low, high


def allocate(store: KeyStore, range_set: PlainRangeSet, index: int, owner: OwnerValue,
             requested: IPValue | None = None) -> Allocated:
    """Reserve one address of ``range_set`` (range set number ``index``) for ``owner``.

    Call inside ``store.transaction()`` to make a multi-set ADD atomic.

    Raises:
        InvalidConfigError: ``requested`` is outside the set or is its range's gateway.
        AddressConflictError: ``requested`` is taken, or ``owner`` already holds an address in the set.
        AddressExhaustedError: ``no IP addresses available in range set: <set>``.
        TryAgainLaterError: addresses kept being taken by others first (:data:`MAX_LOST_RACES`).
    """
    range_id = str(index)
    exact, legacy = owner_texts(owner)
    if requested is not None:
        version, value = canonical_value(*requested)
        text = ip_value_text(version, value)
        r = range_set.range_for(version, value)
        if r is None:
            raise InvalidConfigError(f"{text} not in range set {range_set}", key="ips", value=text)
        if (version, value) == r.gateway:
            raise InvalidConfigError(f"requested ip {text} is subnet's gateway", key="ips", value=text)
        if not store.reserve_key(value_key(version, value), exact, range_id):
            raise AddressConflictError(f"requested IP address {text} is not available in range set {range_set}")
        return index, version, value, r.prefix, r.gateway

    for held in store.find_owner_keys(exact, legacy):
        held_ip = canonical_value(*key_value(held))
        if range_set.contains(*held_ip):
            raise AddressConflictError(f"{ip_value_text(*held_ip)} has been allocated to {owner[0]}, "
                                       "duplicate allocation is not allowed")

    version = range_set.version
    store_order = getattr(store, "picks_own_order", False)
    if store_order:
        spans = _store_order_spans(range_set)
    else:
        last_key = store.last_reserved_key(range_id)
        spans = candidate_spans(range_set, None if last_key is None else key_value(last_key))
    lost = 0
    for i, low, high in spans:
        r = range_set.ranges[i]
        gateway = r.gateway[1] if r.gateway[0] == version else -1
        while low <= high:
            found_key = store.first_free_key(value_key(version, low), value_key(version, high))
            if found_key is None:
                break
            found_version, found = key_value(found_key)
            if found_version != version or not low <= found <= high:
                raise InternalError(f"the store offered {ip_value_text(found_version, found)} outside "
                                    f"[{ip_value_text(version, low)}, {ip_value_text(version, high)}]")
            if found == gateway:
                low = gateway + 1
                continue
            if store.reserve_key(found_key, exact, range_id):
                return index, version, found, r.prefix, r.gateway
            # Lost a race: someone reserved it behind the store's view. A store picking its own order is asked
            # the same window again (it knows better now); otherwise the search moves on past the address.
            lost += 1
            if lost >= MAX_LOST_RACES:
                raise TryAgainLaterError(f"lost {lost} races for an address in range set {range_set}; "
                                         "the store is too contended")
            if not store_order:
                low = found + 1
    raise AddressExhaustedError(f"no IP addresses available in range set: {range_set}")


# ----------------------------------------------------------------------------- ADD, DEL, CHECK, GC


def _rewrap(exc: CNIError, msg: str) -> CNIError:
    """The same kind of error with the reference's wrapping message."""
    return type(exc)(msg, code=exc.code, key=exc.key, **({"value": exc.value} if exc.has_value else {}))


def add(config: PlainConfig, open_store: Callable[[], KeyStore], container_id: str,
        ifname: str) -> tuple[list[Allocated], DNSValue]:
    """Allocate one address per range set for ``(container_id, ifname)``, all or nothing.

    Returns the allocated addresses (in range set order) and the DNS of
    ``resolvConf``. A failed ADD releases exactly what it reserved (the
    reference releases everything the attachment holds, older reservations too).
    ``open_store`` is called for the store once ``resolvConf`` has been read:
    as in the reference, an unreadable one fails the ADD before the store is
    opened, so nothing (not even the network's directory and lock) is created.

    Raises:
        InvalidConfigError: unreadable resolvConf, requested address unusable or left over.
        AddressConflictError / AddressExhaustedError: wrapped ``failed to allocate for range N: ...``.
    """
    owner = attachment_owner(container_id, ifname)
    exact = owner_texts(owner)[0]
    dns = load_resolv_conf(config.resolv_conf) if config.resolv_conf else NO_DNS
    store = open_store()
    pending = list(config.requested)
    allocated: list[Allocated] = []
    with store.transaction():
        try:
            for idx, range_set in enumerate(config.range_sets):
                requested = next((ip for ip in pending if range_set.contains(*ip)), None)
                if requested is not None:
                    pending.remove(requested)
                try:
                    allocated.append(allocate(store, range_set, idx, owner, requested))
                except CNIError as exc:
                    raise _rewrap(exc, f"failed to allocate for range {idx}: {exc.msg}") from exc
            if pending:
                texts = [ip_value_text(*ip) for ip in pending]
                raise InvalidConfigError("failed to allocate all requested IPs: " + " ".join(texts), key="ips",
                                         value=texts)
        except BaseException:
            for _, version, value, _, _ in allocated:
                # Keep the original error; a failing rollback leaves a leak that GC reclaims.
                try:  # noqa: SIM105 - contextlib is not loaded on the exec'd plugin's path
                    store.release_key(value_key(version, value), exact)
                except CNIError:
                    pass
            raise
    return allocated, dns


def delete(config: PlainConfig, store: KeyStore, container_id: str, ifname: str) -> list[int]:
    """Release what ``(container_id, ifname)`` holds; unknown attachments succeed. Idempotent.

    As in the reference, the release runs once per range set: exact matches go
    first, and a container's legacy ID-only reservations go when no exact match
    is left (so with two range sets, one DEL frees the attachment's own
    reservations and then its container's legacy ones). Returns the released keys.
    """
    exact, legacy = owner_texts(attachment_owner(container_id, ifname))
    released: list[int] = []
    with store.transaction():
        for _ in config.range_sets:
            released.extend(store.release_owner_keys(exact, legacy))
    return released


def check(store: KeyStore, container_id: str, ifname: str) -> list[int]:
    """Succeed when ``(container_id, ifname)`` (or its container's legacy form) holds an address.

    Any address counts, whatever the configured ranges: the reference's CHECK
    (``FindByID``) looks only at the owner, so the configuration only says
    where the store is. Returns the keys found. Raises :class:`NotFoundError`
    (``host-local: Failed to find address added by container <id>``) otherwise.
    """
    exact, legacy = owner_texts(attachment_owner(container_id, ifname))
    with store.transaction():
        found = store.find_owner_keys(exact, legacy)
    if not found:
        raise NotFoundError(f"host-local: Failed to find address added by container {container_id}")
    return found


def gc(store: KeyStore, valid_attachments: Iterable[tuple[str, str]]) -> list[tuple[int, str | None]]:
    """Release every reservation that belongs to no valid attachment; returns ``(key, owner text)`` by key.

    A legacy (ID-only) reservation survives when its container ID appears in any
    valid attachment: such a file cannot say which interface it was for.
    Unreadable reservations are never released. The store's own debris is swept
    first. A store shared by several hosts (one with ``collect_garbage_keys``,
    the etcd store) decides itself which reservations are this host's to
    release; the owners reported are those read just before it ran. Idempotent.
    """
    valid = [attachment_owner(cid, ifname) for cid, ifname in valid_attachments]
    valid_exact = {owner_texts(owner)[0] for owner in valid}
    valid_ids = {owner[0] for owner in valid}
    released: list[tuple[int, str | None]] = []
    with store.transaction():
        store.sweep()
        collect = getattr(store, "collect_garbage_keys", None)
        if collect is not None:
            # Other hosts' attachments are not in this host's list: the generic rule would release them all.
            owners = dict(store.reservation_keys())
            released = [(key, owners.get(key)) for key in collect(valid)]
            return sorted(released)
        for key, text in store.reservation_keys():
            if text is None:
                continue
            container_id, sep, _ = text.partition(" ")
            keep = text in valid_exact if sep else container_id in valid_ids
            if not keep and store.release_key(key, text):
                released.append((key, text))
    return sorted(released)
