"""The host-local allocator: one address per range set, round-robin, over any store port.

For each range set (index ``idx``), under the store's transaction:

* a requested address must lie in the set and not be its range's gateway, and
  must be free (``requested IP address X is not available in range set S``);
* otherwise the attachment must not already hold an address in the set
  (``X has been allocated to ID, duplicate allocation is not allowed``), and
  the candidates are visited in the reference's order: starting right after
  ``last_reserved_ip.<idx>`` when that lies in the set (else at the first
  range's start), through each range to its end, on to the next range, wrapping
  around, each range's gateway skipped, the last reserved address itself last.

The first candidate the store reserves wins. Instead of trying candidates one
by one, the allocator asks the store for the first free address of each span
(:meth:`IPStore.first_free`), so the cost does not grow with how many
addresses are taken. The result is the address with its range's prefix length
and gateway.

A store that picks its own order (``picks_own_order = True``, the etcd store)
is asked for each range of the set in turn, as a whole (minus the gateway), and
the round-robin hint is not used: such a store prefers addresses from this
host's blocks, and splitting the window at the last reserved address would
make it claim new blocks needlessly. Its answer may be an address someone else
has just taken; the allocator then asks again, and moves to the next range
only when the store says the range is full.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore._errors import (
    AddressConflictError,
    AddressExhaustedError,
    InternalError,
    InvalidConfigError,
    TryAgainLaterError,
)
from cnicore.ipam._range import Range, RangeSet
from cnicore.stores._goip import canonical_ip, ip_text
from cnicore.stores._port import IPStore, Owner

__all__ = ["AllocatedIP", "allocate", "candidate_spans"]

# A store picking its own order can keep offering addresses that others take first; past this many lost races
# in one allocation, the caller is told to come back (code 11) rather than spin.
_MAX_LOST_RACES = 1000


@attrs.frozen(slots=True, kw_only=True)
class AllocatedIP:
    """One allocated address: ``address`` carries the range's prefix length; ``gateway`` the range's."""

    address: IPNetwork = attrs.field(eq=False)
    gateway: IPAddress
    range_set_index: int
    _address_key: tuple[int, int, int] = attrs.field(init=False, repr=False)

    @_address_key.default
    def _key(self) -> tuple[int, int, int]:
        return (self.address.version, int(self.address.ip), self.address.prefixlen)

    @property
    def ip(self) -> IPAddress:
        """The bare address."""
        return IPAddress(int(self.address.ip), self.address.version)


def _with_prefix(ip: IPAddress, r: Range) -> IPNetwork:
    return IPNetwork((ip.value, r.subnet.prefixlen), version=ip.version)


def candidate_spans(range_set: RangeSet, last: IPAddress | None) -> Iterator[tuple[Range, int, int]]:
    """The reference's visiting order as spans ``(range, low, high)`` of integer addresses.

    Starts after ``last`` when some range holds it (that address itself comes
    last), else at the first range's start. Gateways are left to the caller.
    """
    ranges = range_set.ranges
    start_idx = None
    if last is not None:
        for i, r in enumerate(ranges):
            if r.contains(last):
                start_idx = i
                break
    if start_idx is None:
        for r in ranges:
            yield r, r.range_start.value, r.range_end.value
        return
    assert last is not None
    first = ranges[start_idx]
    last_value = canonical_ip(last).value
    if last_value < first.range_end.value:
        yield first, last_value + 1, first.range_end.value
    n = len(ranges)
    for step in range(1, n):
        r = ranges[(start_idx + step) % n]
        yield r, r.range_start.value, r.range_end.value
    yield first, first.range_start.value, last_value


def _range_spans(range_set: RangeSet) -> Iterator[tuple[Range, int, int]]:
    """Each range of the set as whole spans ``(range, low, high)`` of integer addresses, its gateway cut out.

    The order for stores that pick their own order: range by range, in the set's order. The store never
    sees the gateway as a candidate, so it cannot keep offering it.
    """
    for r in range_set.ranges:
        low, high = r.range_start.value, r.range_end.value
        gateway = r.gateway.value if r.gateway.version == r.version else -1
        if low <= gateway <= high:
            if low < gateway:
                yield r, low, gateway - 1
            if gateway < high:
                yield r, gateway + 1, high
        else:
            yield r, low, high


def _allocate_in_store_order(store: IPStore, range_set: RangeSet, index: int, owner: Owner) -> AllocatedIP:
    version = range_set.version
    range_id = str(index)
    lost = 0
    for r, low, high in _range_spans(range_set):
        first, last = IPAddress(low, version), IPAddress(high, version)
        while (found := store.first_free(first, last)) is not None:
            if found.version != version or not low <= found.value <= high:
                raise InternalError(f"the store offered {ip_text(found)} outside [{ip_text(first)}, {ip_text(last)}]")
            if store.reserve(found, owner, range_id):
                return AllocatedIP(address=_with_prefix(found, r), gateway=r.gateway, range_set_index=index)
            lost += 1  # a stale view: someone else reserved it first; the store knows better now
            if lost >= _MAX_LOST_RACES:
                raise TryAgainLaterError(f"lost {lost} races for an address in range set {range_set}; "
                                         "the store is too contended")
    raise AddressExhaustedError(f"no IP addresses available in range set: {range_set}")


def allocate(store: IPStore, range_set: RangeSet, index: int, owner: Owner,
             requested: IPAddress | None = None) -> AllocatedIP:
    """Reserve one address of ``range_set`` (range set number ``index``) for ``owner``.

    Call inside ``store.transaction()`` to make a multi-set ADD atomic.

    Raises:
        InvalidConfigError: ``requested`` is outside the set or is its range's gateway.
        AddressConflictError: ``requested`` is taken, or ``owner`` already holds an address in the set.
        AddressExhaustedError: ``no IP addresses available in range set: <set>``.
        TryAgainLaterError: a store that picks its own order kept offering addresses others took first.
    """
    range_id = str(index)
    if requested is not None:
        requested = canonical_ip(requested)
        r = range_set.range_for(requested)
        if r is None:
            raise InvalidConfigError(f"{ip_text(requested)} not in range set {range_set}", key="ips",
                                     value=ip_text(requested))
        if requested == r.gateway:
            raise InvalidConfigError(f"requested ip {ip_text(requested)} is subnet's gateway", key="ips",
                                     value=ip_text(requested))
        if not store.reserve(requested, owner, range_id):
            raise AddressConflictError(
                f"requested IP address {ip_text(requested)} is not available in range set {range_set}")
        return AllocatedIP(address=_with_prefix(requested, r), gateway=r.gateway, range_set_index=index)

    for held in store.find_owner(owner):
        if range_set.contains(held):
            raise AddressConflictError(
                f"{ip_text(held)} has been allocated to {owner.container_id}, duplicate allocation is not allowed")

    if getattr(store, "picks_own_order", False):
        return _allocate_in_store_order(store, range_set, index, owner)

    version = range_set.version
    for r, low, high in candidate_spans(range_set, store.last_reserved(range_id)):
        gateway = r.gateway.value if r.gateway.version == version else -1
        while low <= high:
            found = store.first_free(IPAddress(low, version), IPAddress(high, version))
            if found is None:
                break
            if found.value == gateway:
                low = gateway + 1
                continue
            if store.reserve(found, owner, range_id):
                return AllocatedIP(address=_with_prefix(found, r), gateway=r.gateway, range_set_index=index)
            low = found.value + 1  # taken behind the index's back (a store without a lock): go on
    raise AddressExhaustedError(f"no IP addresses available in range set: {range_set}")
