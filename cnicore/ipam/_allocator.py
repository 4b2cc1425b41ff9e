"""The host-local allocator as typed values: the engine's allocator over any store port.

The rules (round robin after ``last_reserved_ip.<idx>``, gateways skipped,
requested addresses, the duplicate check, the bounded retry after lost races)
are the engine's: :func:`cnicore.ipam._engine.allocate`, whose notes describe
them. This module converts netaddr addresses and owners at the edge.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore.ipam import _engine
from cnicore.ipam._keyport import key_port
from cnicore.ipam._range import Range, RangeSet, ip_value
from cnicore.stores._port import IPStore, Owner

__all__ = ["AllocatedIP", "allocate", "candidate_spans"]

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

    @classmethod
    def from_plain(cls, allocated: _engine.Allocated) -> AllocatedIP:
        """The typed value of what the engine allocated."""
        index, version, value, prefix, (gw_version, gw_value) = allocated
        return cls(address=IPNetwork((value, prefix), version=version), gateway=IPAddress(gw_value, gw_version),
                   range_set_index=index)


def candidate_spans(range_set: RangeSet, last: IPAddress | None) -> Iterator[tuple[Range, int, int]]:
    """The reference's visiting order as spans ``(range, low, high)`` of integer addresses.

    Starts after ``last`` when some range holds it (that address itself comes
    last), else at the first range's start. Gateways are left to the caller.
    """
    for index, low, high in _engine.candidate_spans(range_set.plain, None if last is None else ip_value(last)):
        yield range_set.ranges[index], low, high


def allocate(store: IPStore, range_set: RangeSet, index: int, owner: Owner,
             requested: IPAddress | None = None) -> AllocatedIP:
    """Reserve one address of ``range_set`` (range set number ``index``) for ``owner``.

    Call inside ``store.transaction()`` to make a multi-set ADD atomic.

    Raises:
        InvalidConfigError: ``requested`` is outside the set or is its range's gateway.
        AddressConflictError: ``requested`` is taken, or ``owner`` already holds an address in the set.
        AddressExhaustedError: ``no IP addresses available in range set: <set>``.
        TryAgainLaterError: the store kept offering addresses others took first.
    """
    allocated = _engine.allocate(key_port(store), range_set.plain, index, (owner.container_id, owner.ifname),
                                 None if requested is None else ip_value(requested))
    return AllocatedIP.from_plain(allocated)
