"""Ranges and range sets as typed values: the engine's canonical ranges with netaddr addresses.

A :class:`Range` is one subnet with an inclusive ``[range_start, range_end]``
window and a gateway; a :class:`RangeSet` is an ordered pool of disjoint ranges
of one family from which one address is taken per ADD. Values that exist are
valid: build them with :meth:`Range.canonical` / :meth:`RangeSet.canonical`,
which apply the reference's defaults and checks in its order and with its
messages (``Network 10.0.0.0/31 too small to allocate from``...). The checks
and the predicates are the engine's (:mod:`cnicore.ipam._engine`): each value
carries its plain counterpart and asks it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore.ipam._engine import PlainRange, PlainRangeSet, canonical_range, canonical_range_set
from cnicore.spec._goaddr import canonical_ip, go_ip_text

__all__ = ["Range", "RangeSet", "network_text"]


def network_text(net: IPNetwork) -> str:
    """Go's ``(*net.IPNet).String()``: the address as given (host bits kept) and the prefix length."""
    return f"{go_ip_text(net.ip)}/{net.prefixlen}"


def ip_value(ip: IPAddress) -> tuple[int, int]:
    """``(version, value)`` of an address, canonical (an IPv4-mapped IPv6 address is IPv4)."""
    ip = canonical_ip(ip)
    return int(ip.version), int(ip)


def _plain_of_range(r: Range) -> PlainRange:
    subnet = r.subnet
    return PlainRange(int(subnet.version), int(subnet.value), int(subnet.prefixlen), int(r.range_start),
                      int(r.range_end), ip_value(r.gateway))


@attrs.frozen(slots=True, kw_only=True)
class Range:
    """One canonical range. ``contains`` follows the reference's ``Range.Contains``."""

    subnet: IPNetwork = attrs.field(eq=False)
    range_start: IPAddress
    range_end: IPAddress
    gateway: IPAddress
    _subnet_key: tuple[int, int, int] = attrs.field(init=False, repr=False)
    _plain: PlainRange = attrs.field(init=False, repr=False, eq=False)

    @_subnet_key.default
    def _key(self) -> tuple[int, int, int]:
        return (self.subnet.version, self.subnet.value, self.subnet.prefixlen)

    @_plain.default
    def _make_plain(self) -> PlainRange:
        return _plain_of_range(self)

    @property
    def version(self) -> int:
        """4 or 6."""
        return int(self.subnet.version)

    @property
    def plain(self) -> PlainRange:
        """The engine's value of this range."""
        return self._plain

    @classmethod
    def from_plain(cls, plain: PlainRange) -> Range:
        """The typed value of an engine range."""
        version = plain.version
        made = cls(subnet=IPNetwork((plain.network, plain.prefix), version=version),
                   range_start=IPAddress(plain.start, version), range_end=IPAddress(plain.end, version),
                   gateway=IPAddress(plain.gateway[1], plain.gateway[0]))
        # The engine's value may say more than the fields (a malformed start): keep it as made.
        object.__setattr__(made, "_plain", plain)
        return made

    @classmethod
    def canonical(cls, subnet: IPNetwork | None, range_start: IPAddress | None = None,
                  range_end: IPAddress | None = None, gateway: IPAddress | None = None, *,
                  key: str = "range") -> Range:
        """Apply the reference's ``Range.Canonicalize``: checks and defaults, in its order.

        Args:
            subnet: the ``subnet`` (host bits may be set: that is an error reported here).
            range_start, range_end, gateway: optional bounds and gateway.
            key: the configuration key path of this range, for errors.

        Raises:
            InvalidConfigError: with the reference's message and the key path of the field.
        """
        parts = None
        if subnet is not None:
            version, value = ip_value(subnet.ip)
            parts = (version, value, int(subnet.prefixlen), 32 if subnet.version == 4 else 128)
        plain = canonical_range(parts, None if range_start is None else ip_value(range_start),
                                None if range_end is None else ip_value(range_end),
                                None if gateway is None else ip_value(gateway), key=key)
        return cls.from_plain(plain)

    def contains(self, ip: IPAddress) -> bool:
        """Whether ``ip`` lies in the subnet and in ``[range_start, range_end]``."""
        return self._plain.contains(*ip_value(ip))

    def overlaps(self, other: Range) -> bool:
        """The reference's ``Range.Overlaps`` (same family and one contains an end of the other)."""
        return self._plain.overlaps(other._plain)

    def __str__(self) -> str:
        return str(self._plain)


@attrs.frozen(slots=True, kw_only=True)
class RangeSet:
    """A canonical, non-empty, single-family pool of disjoint ranges (one address per ADD)."""

    ranges: tuple[Range, ...]
    _plain: PlainRangeSet = attrs.field(init=False, repr=False, eq=False)

    @_plain.default
    def _make_plain(self) -> PlainRangeSet:
        return PlainRangeSet([r.plain for r in self.ranges])

    @property
    def plain(self) -> PlainRangeSet:
        """The engine's value of this range set."""
        return self._plain

    @classmethod
    def from_plain(cls, plain: PlainRangeSet) -> RangeSet:
        """The typed value of an engine range set."""
        made = cls(ranges=tuple(Range.from_plain(r) for r in plain.ranges))
        object.__setattr__(made, "_plain", plain)
        return made

    @classmethod
    def canonical(cls, ranges: Sequence[Range], *, key: str = "range set") -> RangeSet:
        """Apply the reference's ``RangeSet.Canonicalize`` checks to already canonical ranges.

        Raises:
            InvalidConfigError: ``empty range set``, ``mixed address families`` or
                ``subnets A and B overlap`` (ranges printed ``start-end``).
        """
        plain = canonical_range_set([r.plain for r in ranges], key=key)
        made = cls(ranges=tuple(ranges))
        object.__setattr__(made, "_plain", plain)
        return made

    @property
    def version(self) -> int:
        """The family of every range in the set."""
        return self.ranges[0].version

    def range_for(self, ip: IPAddress) -> Range | None:
        """The range containing ``ip``, or None."""
        index = self._plain.index_for(*ip_value(ip))
        return None if index is None else self.ranges[index]

    def contains(self, ip: IPAddress) -> bool:
        """Whether some range of the set contains ``ip``."""
        return self._plain.index_for(*ip_value(ip)) is not None

    def overlaps(self, other: RangeSet) -> bool:
        """Whether any range of this set overlaps any range of ``other``."""
        return self._plain.overlaps(other._plain)

    def __str__(self) -> str:
        return str(self._plain)
