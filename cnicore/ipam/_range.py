"""Ranges and range sets: host-local's address pools, canonicalised exactly as the reference does.

A :class:`Range` is one subnet with an inclusive ``[range_start, range_end]``
window and a gateway; a :class:`RangeSet` is an ordered pool of disjoint ranges
of one family from which one address is taken per ADD. Values that exist are
valid: build them with :meth:`Range.canonical` / :meth:`RangeSet.canonical`,
which apply the reference's defaults and checks in its order and with its
messages (``Network 10.0.0.0/31 too small to allocate from``...).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore._errors import InvalidConfigError
from cnicore.stores._goip import canonical_ip, ip_text

__all__ = ["Range", "RangeSet", "network_text"]


def network_text(net: IPNetwork) -> str:
    """Go's ``(*net.IPNet).String()``: the address as given (host bits kept) and the prefix length."""
    return f"{ip_text(net.ip)}/{net.prefixlen}"


def _bits(version: int) -> int:
    return 32 if version == 4 else 128


@attrs.frozen(slots=True, kw_only=True)
class Range:
    """One canonical range. ``contains`` follows the reference's ``Range.Contains``."""

    subnet: IPNetwork = attrs.field(eq=False)
    range_start: IPAddress
    range_end: IPAddress
    gateway: IPAddress
    _subnet_key: tuple[int, int, int] = attrs.field(init=False, repr=False)

    @_subnet_key.default
    def _key(self) -> tuple[int, int, int]:
        return (self.subnet.version, self.subnet.value, self.subnet.prefixlen)

    @property
    def version(self) -> int:
        """4 or 6."""
        return int(self.subnet.version)

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
        if subnet is None:
            raise InvalidConfigError("IP <nil> not v4 nor v6", key=f"{key}.subnet", value=None)
        bits = _bits(subnet.version)
        if subnet.prefixlen > bits - 2:
            raise InvalidConfigError(f"Network {network_text(subnet)} too small to allocate from",
                                     key=f"{key}.subnet", value=network_text(subnet))
        network = IPAddress(subnet.value & ~((1 << (bits - subnet.prefixlen)) - 1), subnet.version)
        if network != subnet.ip:
            raise InvalidConfigError(
                "Network has host bits set. For a subnet mask of length "
                f"{subnet.prefixlen} the network address is {ip_text(network)}",
                key=f"{key}.subnet", value=network_text(subnet))
        canonical_net = IPNetwork((network.value, subnet.prefixlen), version=subnet.version)
        first = network.value
        last = first | ((1 << (bits - subnet.prefixlen)) - 1)
        # The gateway is not checked against the subnet (the reference does not either).
        gw = canonical_ip(gateway) if gateway is not None else IPAddress(first + 1, subnet.version)

        def inside(ip: IPAddress, lo: IPAddress | None, hi: IPAddress | None) -> bool:
            if ip.version != subnet.version or not first <= ip.value <= last:
                return False
            if lo is not None and ip.value < lo.value:
                return False
            return not (hi is not None and ip.value > hi.value)

        start = canonical_ip(range_start) if range_start is not None else None
        end = canonical_ip(range_end) if range_end is not None else None
        if start is not None:
            # As in the reference, start is checked against the given end, so start > end reports start.
            if not inside(start, None, end):
                raise InvalidConfigError(f"RangeStart {ip_text(start)} not in network {network_text(canonical_net)}",
                                         key=f"{key}.rangeStart", value=ip_text(start))
        else:
            start = IPAddress(first + 1, subnet.version)
        if end is not None:
            if not inside(end, start, None):
                raise InvalidConfigError(f"RangeEnd {ip_text(end)} not in network {network_text(canonical_net)}",
                                         key=f"{key}.rangeEnd", value=ip_text(end))
        else:
            # IPv4 leaves out the broadcast address; IPv6 has none.
            end = IPAddress(last - 1 if subnet.version == 4 else last, subnet.version)
        return cls(subnet=canonical_net, range_start=start, range_end=end, gateway=gw)

    def contains(self, ip: IPAddress) -> bool:
        """Whether ``ip`` lies in the subnet and in ``[range_start, range_end]``."""
        ip = canonical_ip(ip)
        return bool(ip.version == self.subnet.version and self.range_start.value <= ip.value <= self.range_end.value)

    def overlaps(self, other: Range) -> bool:
        """The reference's ``Range.Overlaps`` (same family and one contains an end of the other)."""
        if self.version != other.version:
            return False
        return (self.contains(other.range_start) or self.contains(other.range_end)
                or other.contains(self.range_start) or other.contains(self.range_end))

    def __str__(self) -> str:
        return f"{ip_text(self.range_start)}-{ip_text(self.range_end)}"


@attrs.frozen(slots=True, kw_only=True)
class RangeSet:
    """A canonical, non-empty, single-family pool of disjoint ranges (one address per ADD)."""

    ranges: tuple[Range, ...]

    @classmethod
    def canonical(cls, ranges: Sequence[Range], *, key: str = "range set") -> RangeSet:
        """Apply the reference's ``RangeSet.Canonicalize`` checks to already canonical ranges.

        Raises:
            InvalidConfigError: ``empty range set``, ``mixed address families`` or
                ``subnets A and B overlap`` (ranges printed ``start-end``).
        """
        if not ranges:
            raise InvalidConfigError("empty range set", key=key, value=[])
        family = ranges[0].version
        for i, r in enumerate(ranges):
            if r.version != family:
                raise InvalidConfigError("mixed address families", key=f"{key}[{i}]", value=str(r))
        for i, first in enumerate(ranges[:-1]):
            for j, second in enumerate(ranges[i + 1:], start=i + 1):
                if first.overlaps(second):
                    raise InvalidConfigError(f"subnets {first} and {second} overlap", key=f"{key}[{j}]",
                                             value=str(second))
        return cls(ranges=tuple(ranges))

    @property
    def version(self) -> int:
        """The family of every range in the set."""
        return self.ranges[0].version

    def range_for(self, ip: IPAddress) -> Range | None:
        """The range containing ``ip``, or None."""
        for r in self.ranges:
            if r.contains(ip):
                return r
        return None

    def contains(self, ip: IPAddress) -> bool:
        """Whether some range of the set contains ``ip``."""
        return self.range_for(ip) is not None

    def overlaps(self, other: RangeSet) -> bool:
        """Whether any range of this set overlaps any range of ``other``."""
        return any(a.overlaps(b) for a in self.ranges for b in other.ranges)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)
