"""Range and range-set canonicalisation: the reference's range_test.go and range_set_test.go vectors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork

from cnicore._errors import InvalidConfigError
from cnicore.ipam import Range, RangeSet
from cnicore.stores import parse_cidr, parse_ip
from cnicore.testing._ipam import allocatable, range_sets


def make(subnet: str, start: str | None = None, end: str | None = None, gw: str | None = None) -> Range:
    return Range.canonical(parse_cidr(subnet), start and parse_ip(start), end and parse_ip(end), gw and parse_ip(gw),
                           key="ipam.ranges[0][0]")


@pytest.mark.parametrize(("subnet", "start", "end", "gw"), [
    ("192.0.2.0/24", "192.0.2.1", "192.0.2.254", "192.0.2.1"),
    ("192.0.2.0/25", "192.0.2.1", "192.0.2.126", "192.0.2.1"),
    ("2001:DB8:1::/64", "2001:db8:1::1", "2001:db8:1::ffff:ffff:ffff:ffff", "2001:db8:1::1"),
    ("10.0.0.0/30", "10.0.0.1", "10.0.0.2", "10.0.0.1"),
])
def test_defaults(subnet: str, start: str, end: str, gw: str) -> None:
    r = make(subnet)
    assert (r.range_start, r.range_end, r.gateway) == (parse_ip(start), parse_ip(end), parse_ip(gw))


@pytest.mark.parametrize(("subnet", "start", "end", "message", "key"), [
    ("192.0.2.0/31", None, None, "Network 192.0.2.0/31 too small to allocate from", "subnet"),
    ("10.0.0.12/31", None, None, "Network 10.0.0.12/31 too small to allocate from", "subnet"),
    ("192.0.2.0/32", None, None, "Network 192.0.2.0/32 too small to allocate from", "subnet"),
    ("2001:db8::/127", None, None, "Network 2001:db8::/127 too small to allocate from", "subnet"),
    ("192.0.2.12/24", None, None,
     "Network has host bits set. For a subnet mask of length 24 the network address is 192.0.2.0", "subnet"),
    ("2001:DB8:24:19ff::/63", None, None,
     "Network has host bits set. For a subnet mask of length 63 the network address is 2001:db8:24:19fe::",
     "subnet"),
    ("192.0.2.0/24", "192.0.3.1", None, "RangeStart 192.0.3.1 not in network 192.0.2.0/24", "rangeStart"),
    ("192.0.2.0/24", "192.0.2.50", "192.0.2.40", "RangeStart 192.0.2.50 not in network 192.0.2.0/24",
     "rangeStart"),
    ("192.0.2.0/24", None, "192.0.3.1", "RangeEnd 192.0.3.1 not in network 192.0.2.0/24", "rangeEnd"),
    ("2001:db8::/64", "10.0.0.5", None, "RangeStart 10.0.0.5 not in network 2001:db8::/64", "rangeStart"),
])
def test_errors(subnet: str, start: str | None, end: str | None, message: str, key: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        make(subnet, start, end)
    assert info.value.msg == message
    assert info.value.code == 7
    assert info.value.key == f"ipam.ranges[0][0].{key}"


def test_missing_subnet() -> None:
    with pytest.raises(InvalidConfigError, match="IP <nil> not v4 nor v6"):
        Range.canonical(None, key="ipam.ranges[0][0]")


def test_explicit_network_and_broadcast_are_allowed() -> None:
    r = make("10.0.0.0/24", "10.0.0.0", "10.0.0.255")
    assert r.contains(IPAddress("10.0.0.0")) and r.contains(IPAddress("10.0.0.255"))


def test_gateway_is_not_checked_against_the_subnet() -> None:
    assert str(make("10.0.0.0/24", gw="10.9.9.9").gateway) == "10.9.9.9"


@pytest.mark.parametrize(("a", "b", "overlap"), [
    (("10.0.0.0/24",), ("2001:db8::/64",), False),
    (("10.0.0.0/24",), ("10.0.0.0/24",), True),
    (("10.0.0.0/20",), ("10.0.1.0/24",), True),
    (("10.0.0.0/24", None, "10.0.0.127"), ("10.0.0.0/24", "10.0.0.128"), False),
    (("10.0.0.0/24", None, "10.0.0.127"), ("10.0.0.0/24", "10.0.0.127"), True),
])
def test_overlaps(a: tuple[str, ...], b: tuple[str, ...], overlap: bool) -> None:
    ra, rb = make(*a), make(*b)
    assert ra.overlaps(rb) is overlap and rb.overlaps(ra) is overlap


def test_range_set_vectors() -> None:
    rs = RangeSet.canonical([make("192.168.0.0/24"), make("172.16.1.0/24")])
    assert str(rs) == "192.168.0.1-192.168.0.254,172.16.1.1-172.16.1.254"
    assert not rs.contains(IPAddress("192.168.99.99"))
    assert rs.range_for(IPAddress("172.16.1.5")) == rs.ranges[1]
    cases = [
        ([make("192.168.0.0/20"), make("192.168.2.0/24")],
         "subnets 192.168.0.1-192.168.15.254 and 192.168.2.1-192.168.2.254 overlap"),
        ([make("192.168.0.0/24"), make("2001:db8::/64")], "mixed address families"),
        ([], "empty range set"),
    ]
    for ranges, message in cases:
        with pytest.raises(InvalidConfigError) as info:
            RangeSet.canonical(ranges)
        assert info.value.msg == message


def test_v4_mapped_addresses_count_as_ipv4() -> None:
    r = make("10.0.0.0/24")
    assert r.contains(IPAddress("::ffff:10.0.0.5"))


@given(range_sets(), st.integers(0, 2**32))
def test_contains_agrees_with_the_windows(rs: RangeSet, probe: int) -> None:
    ip = IPAddress(probe % (2**32), 4) if rs.version == 4 else IPAddress(probe, 6)
    expected = any(r.range_start.value <= ip.value <= r.range_end.value for r in rs.ranges)
    assert rs.contains(ip) is expected


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), range_sets(free=n))))
def test_range_sets_strategy_has_the_asked_size(case: tuple[int, RangeSet]) -> None:
    n, rs = case
    assert allocatable(rs) == n
    assert isinstance(rs.ranges[0].subnet, IPNetwork)


# ----------------------------------------------------------------------------- overlap checks in O(n log n)


def _naive_first_overlap(spans: list[tuple[int, int, int]]) -> tuple[int, int] | None:
    """The reference's nested loops, literally: the first i, then its first j > i."""
    for i, (fi, lo_i, hi_i) in enumerate(spans):
        for j in range(i + 1, len(spans)):
            fj, lo_j, hi_j = spans[j]
            if fi == fj and lo_j <= hi_i and lo_i <= hi_j:
                return i, j
    return None


_SPANS = st.lists(st.tuples(st.sampled_from([4, 6]), st.integers(0, 60), st.integers(0, 12)).map(
    lambda t: (t[0], t[1], t[1] + t[2])), max_size=12)


@given(_SPANS)
def test_the_sorted_overlap_search_finds_the_references_pair(spans: list[tuple[int, int, int]]) -> None:
    from cnicore.ipam._engine import first_overlap

    assert first_overlap(spans) == _naive_first_overlap(spans)


@given(st.lists(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5)), min_size=1, max_size=4), min_size=2,
                max_size=6))
def test_overlapping_range_sets_are_reported_as_the_reference_reports_them(sets: list[list[tuple[int, int]]]) -> None:
    # Range sets of /28 subnets at generated offsets: the first pair (i, j) of sets with overlapping ranges.
    from cnicore.ipam._engine import PlainRangeSet, _first_overlapping_sets, canonical_range

    plain: list[PlainRangeSet] = []
    for offsets in sets:
        ranges = []
        for base, width in offsets:
            r = canonical_range((4, 0x0A000000 + 16 * base, 28, 32), (4, 0x0A000000 + 16 * base + 1),
                                (4, 0x0A000000 + 16 * base + 1 + width))
            if all(not r.overlaps(other) for other in ranges):
                ranges.append(r)
        plain.append(PlainRangeSet(ranges))
    expected = next(((i, j) for i in range(len(plain)) for j in range(i + 1, len(plain))
                     if any(a.overlaps(b) for a in plain[i].ranges for b in plain[j].ranges)), None)
    assert _first_overlapping_sets(plain) == expected


def _many_ranges(n: int) -> list[dict[str, str]]:
    return [{"subnet": f"10.{i // 256}.{i % 256}.0/24"} for i in range(n)]


def test_three_thousand_ranges_are_checked_and_their_overlap_reported() -> None:
    from cnicore.ipam import load_ipam_config

    ranges = _many_ranges(3000)
    config = load_ipam_config({"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "host-local",
                                                                            "ranges": [ranges]}})
    assert len(config.range_sets[0].ranges) == 3000
    # One late duplicate: the reference's message names the first range involved and its first partner.
    clash = [*ranges, {"subnet": "10.11.183.0/24"}]
    with pytest.raises(InvalidConfigError) as caught:
        load_ipam_config({"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "host-local", "ranges": [clash]}})
    assert caught.value.msg == ("invalid range set 0: subnets 10.11.183.1-10.11.183.254 and "
                                "10.11.183.1-10.11.183.254 overlap")
    assert caught.value.key == "ipam.ranges[0][3000]"
    # Range sets: 3,000 sets of one range each, the last overlapping the 1,000th.
    sets = [[r] for r in ranges] + [[{"subnet": "10.3.0.0/16"}]]
    with pytest.raises(InvalidConfigError) as caught:
        load_ipam_config({"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "host-local", "ranges": sets}})
    assert caught.value.msg == "range set 768 overlaps with 3000"


def test_a_zero_network_address_allocates_nothing_as_the_reference() -> None:
    # The reference (Debian's build) computes a malformed start, printed "?01", for a network address of all zeros:
    # nothing is allocated from it, and it is of no family another range shares.
    r = make("0.0.0.0/0")
    assert str(r) == "?01-255.255.255.254"
    assert str(make("::/0")) == "?01-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    assert str(make("0.0.0.0/24", "0.0.0.5")) == "0.0.0.5-0.0.0.254"  # an explicit start is an address
    with pytest.raises(InvalidConfigError, match="mixed address families"):
        RangeSet.canonical([make("10.0.0.0/24"), make("0.0.0.0/24")])
