"""Hypothesis strategies for host-local IPAM: range sets of a known size and whole configurations.

Use them to fuzz code built on :mod:`cnicore.ipam`::

    from cnicore.testing._ipam import range_sets, allocatable

    @given(range_sets(free=5))
    def test_five(rs):
        assert allocatable(rs) == 5
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore.ipam._range import Range, RangeSet
from cnicore.stores._goip import ip_text, parse_cidr, parse_ip

__all__ = ["allocatable", "ipam_configs", "range_set_specs", "range_sets"]

_V4_BASE = int(IPAddress("10.0.0.0"))
_V6_BASE = int(IPAddress("2001:db8::"))


def allocatable(range_set: RangeSet) -> int:
    """How many addresses ``range_set`` can hand out (its windows minus gateways inside them)."""
    total = 0
    for r in range_set.ranges:
        size = r.range_end.value - r.range_start.value + 1
        if r.gateway.version == r.version and r.range_start.value <= r.gateway.value <= r.range_end.value:
            size -= 1
        total += size
    return total


@st.composite
def _split(draw: st.DrawFn, total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` positive integers."""
    if parts == 1:
        return [total]
    cuts = sorted(draw(st.lists(st.integers(1, total - 1), min_size=parts - 1, max_size=parts - 1, unique=True)))
    bounds = [0, *cuts, total]
    return [bounds[i + 1] - bounds[i] for i in range(parts)]


@st.composite
def range_set_specs(draw: st.DrawFn, *, free: int | None = None, family: int | None = None,
                    max_ranges: int = 3, slot: int = 0) -> list[dict[str, str]]:
    """A range set as configuration JSON (a list of range objects) with exactly ``free`` allocatable addresses.

    Each range lives in its own subnet (IPv4 ``10.<slot*8+i>.0.0/16``, IPv6 ``2001:db8:<slot*8+i>::/64``), so
    sets drawn with different ``slot`` values never overlap. The gateway sits inside the window or outside it.
    """
    version = family if family is not None else draw(st.sampled_from([4, 6]))
    if free is None:
        free = draw(st.integers(1, 40))
    count = draw(st.integers(1, max(1, min(max_ranges, free, 8))))
    sizes = draw(_split(free, count))
    specs: list[dict[str, str]] = []
    for i, size in enumerate(sizes):
        k = slot * 8 + i
        if version == 4:
            network = _V4_BASE + (k << 16)
            net = IPNetwork((network, 16), version=4)
            limit = (1 << 16) - 2
        else:
            network = _V6_BASE + (k << 80)
            net = IPNetwork((network, 64), version=6)
            limit = 1 << 20
        gateway_inside = draw(st.booleans())
        window = size + 1 if gateway_inside else size
        offset = draw(st.integers(2, max(2, min(limit - window, 5000))))
        start = network + offset
        end = start + window - 1
        spec = {"subnet": f"{ip_text(net.ip)}/{net.prefixlen}", "rangeStart": ip_text(IPAddress(start, version)),
                "rangeEnd": ip_text(IPAddress(end, version))}
        gateway = draw(st.integers(start, end)) if gateway_inside else network + 1
        spec["gateway"] = ip_text(IPAddress(gateway, version))
        specs.append(spec)
    return specs


def _to_range_set(specs: list[dict[str, str]]) -> RangeSet:
    ranges = [Range.canonical(parse_cidr(s["subnet"]), parse_ip(s["rangeStart"]), parse_ip(s["rangeEnd"]),
                              parse_ip(s["gateway"])) for s in specs]
    return RangeSet.canonical(ranges)


def range_sets(*, free: int | None = None, family: int | None = None, max_ranges: int = 3,
               slot: int = 0) -> st.SearchStrategy[RangeSet]:
    """Canonical :class:`RangeSet` values with exactly ``free`` allocatable addresses (see :func:`range_set_specs`)."""
    return range_set_specs(free=free, family=family, max_ranges=max_ranges, slot=slot).map(_to_range_set)


@st.composite
def ipam_configs(draw: st.DrawFn, *, data_dir: str = "/var/lib/cni/networks", max_sets: int = 2,
                 cni_version: str = "1.0.0", free: int | None = None) -> dict[str, Any]:
    """Valid host-local network configurations (decoded JSON) with 1..``max_sets`` range sets.

    Sets of one family never exceed what ``cni_version`` allows, and never overlap.
    """
    sets = draw(st.integers(1, max_sets))
    ranges = [draw(range_set_specs(free=free, slot=i, max_ranges=2)) for i in range(sets)]
    config: dict[str, Any] = {
        "cniVersion": cni_version,
        "name": draw(st.from_regex(r"[a-z][a-z0-9_.\-]{0,14}", fullmatch=True)),
        "ipam": {"type": "host-local", "dataDir": data_dir, "ranges": ranges},
    }
    if draw(st.booleans()):
        config["ipam"]["routes"] = [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.0.0.1"}]
    return config
