"""The allocator: the reference's allocator_test.go vectors, on every store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPAddress

from cnicore._errors import AddressConflictError, AddressExhaustedError, InvalidConfigError
from cnicore.ipam import Range, RangeSet, allocate, candidate_spans
from cnicore.stores import IPStore, MemoryStore, Owner, parse_cidr
from cnicore.testing._ipam import allocatable, range_sets

StoreFactory = Callable[[], IPStore]
ME = Owner.attachment("ID", "eth0")
OTHER = Owner.attachment("other", "eth0")


def rangeset(*subnets: str) -> RangeSet:
    return RangeSet.canonical([Range.canonical(parse_cidr(s)) for s in subnets])


def prepare(store: IPStore, used: list[str], last: str | None) -> None:
    if last is not None:
        scratch = Owner.attachment("scratch", "eth9")
        was_free = store.reservation(IPAddress(last)) is None
        if was_free:
            assert store.reserve(IPAddress(last), scratch, "0")
            assert store.release(IPAddress(last), scratch)
    for ip in used:
        assert store.reserve(IPAddress(ip), OTHER, "other")
    if last is not None and not was_free:
        raise AssertionError("lastIP must be free when prepared")


@pytest.mark.parametrize(("subnets", "used", "last", "expected"), [
    (["10.0.0.0/29"], [], None, "10.0.0.2"),
    (["2001:db8:1::0/64"], [], None, "2001:db8:1::2"),
    (["10.0.0.0/30"], [], None, "10.0.0.2"),
    (["10.0.0.0/29"], ["10.0.0.2"], None, "10.0.0.3"),
    (["10.0.0.0/29"], [], "10.0.0.5", "10.0.0.6"),
    (["10.0.0.0/29"], ["10.0.0.4", "10.0.0.5"], "10.0.0.3", "10.0.0.6"),
    (["10.0.0.0/29"], ["10.0.0.6"], "10.0.0.5", "10.0.0.2"),
    (["10.0.0.0/29"], ["10.0.0.2"], "10.0.0.128", "10.0.0.3"),
    (["10.0.0.0/29"], ["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"], "10.0.0.3", "10.0.0.3"),
    (["10.0.0.0/30", "10.0.1.0/30"], [], None, "10.0.0.2"),
    (["10.0.0.0/30", "10.0.1.0/30"], [], "10.0.0.2", "10.0.1.2"),
    (["10.0.0.0/30", "10.0.1.0/30", "10.0.2.0/30"], [], "10.0.2.2", "10.0.0.2"),
])
def test_vectors(make_store: StoreFactory, subnets: list[str], used: list[str], last: str | None,
                 expected: str) -> None:
    store = make_store()
    prepare(store, used, last)
    got = allocate(store, rangeset(*subnets), 0, ME)
    assert got.ip == IPAddress(expected)
    assert got.address.prefixlen == parse_cidr(subnets[0]).prefixlen
    assert store.last_reserved("0") == IPAddress(expected)


def drain(store: IPStore, rs: RangeSet) -> list[str]:
    got = []
    for i in range(300):
        try:
            got.append(str(allocate(store, rs, 0, Owner.attachment(f"c{i}", "eth0")).ip))
        except AddressExhaustedError:
            return got
    raise AssertionError("never exhausted")


def test_iteration_orders(make_store: StoreFactory) -> None:
    rs = rangeset("192.168.1.0/29")
    store = make_store()
    assert drain(store, rs) == [f"192.168.1.{i}" for i in (2, 3, 4, 5, 6)]
    store = make_store()
    assert store.reserve(IPAddress("192.168.1.3"), OTHER, "0") and store.release(IPAddress("192.168.1.3"), OTHER)
    assert drain(store, rs) == [f"192.168.1.{i}" for i in (4, 5, 6, 2, 3)]


def test_round_robin_and_exhaustion(make_store: StoreFactory) -> None:
    rs = rangeset("192.168.1.0/29")
    store = make_store()
    first = allocate(store, rs, 0, ME)
    assert str(first.address) == "192.168.1.2/29" and str(first.gateway) == "192.168.1.1"
    store.release_owner(ME)
    assert str(allocate(store, rs, 0, ME).address) == "192.168.1.3/29"


@pytest.mark.parametrize(("subnets", "used"), [
    (["10.0.0.0/30"], ["10.0.0.2"]),
    (["10.0.0.0/29"], ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]),
    (["10.0.0.0/30", "10.0.1.0/30"], ["10.0.0.2", "10.0.1.2"]),
])
def test_out_of_addresses(make_store: StoreFactory, subnets: list[str], used: list[str]) -> None:
    store = make_store()
    prepare(store, used, None)
    rs = rangeset(*subnets)
    with pytest.raises(AddressExhaustedError) as info:
        allocate(store, rs, 0, ME)
    assert info.value.msg == f"no IP addresses available in range set: {rs}"


def test_requested_ips(make_store: StoreFactory) -> None:
    store = make_store()
    rs = RangeSet.canonical([Range.canonical(parse_cidr("192.168.1.0/29"), None, IPAddress("192.168.1.6"))])
    assert allocate(store, rs, 0, ME, IPAddress("192.168.1.5")).ip == IPAddress("192.168.1.5")
    with pytest.raises(AddressConflictError) as conflict:
        allocate(store, rs, 0, OTHER, IPAddress("192.168.1.5"))
    assert conflict.value.msg == \
        "requested IP address 192.168.1.5 is not available in range set 192.168.1.1-192.168.1.6"
    with pytest.raises(InvalidConfigError, match=r"requested ip 192\.168\.1\.1 is subnet's gateway"):
        allocate(store, rs, 0, OTHER, IPAddress("192.168.1.1"))
    with pytest.raises(InvalidConfigError, match=r"10\.9\.9\.9 not in range set 192\.168\.1\.1-192\.168\.1\.6"):
        allocate(store, rs, 0, OTHER, IPAddress("10.9.9.9"))
    # A requested address skips the duplicate guard (as in the reference) and moves the round-robin cursor.
    assert allocate(store, rs, 0, ME, IPAddress("192.168.1.3")).ip == IPAddress("192.168.1.3")
    assert store.last_reserved("0") == IPAddress("192.168.1.3")


def test_duplicate_guard_includes_legacy(make_store: StoreFactory) -> None:
    store = make_store()
    rs = rangeset("10.0.0.0/24")
    assert store.reserve(IPAddress("10.0.0.9"), Owner(container_id="ID"), "x")
    with pytest.raises(AddressConflictError, match=r"^10\.0\.0\.9 has been allocated to ID, duplicate allocation "
                                                   r"is not allowed$"):
        allocate(store, rs, 0, ME)
    # Another range set is not guarded by this one's reservation.
    assert allocate(store, rangeset("10.1.0.0/24"), 1, ME).ip == IPAddress("10.1.0.2")


def test_gateway_inside_a_custom_window_is_skipped() -> None:
    r = Range.canonical(parse_cidr("10.0.0.0/24"), IPAddress("10.0.0.10"), IPAddress("10.0.0.12"),
                        IPAddress("10.0.0.11"))
    assert drain(MemoryStore(), RangeSet.canonical([r])) == ["10.0.0.10", "10.0.0.12"]


def reference_order(rs: RangeSet, last: IPAddress | None) -> list[int]:
    """The reference's RangeIter, transcribed step by step, as an oracle for the span-based search."""
    ranges = rs.ranges
    idx, cur, start = 0, None, None
    if last is not None and rs.contains(last):
        idx = next(i for i, r in enumerate(ranges) if r.contains(last))
        cur = last.value
    else:
        start = ranges[0].range_start.value
    out: list[int] = []
    while True:
        r = ranges[idx]
        if cur is None:
            cur = start = r.range_start.value
            if cur != r.gateway.value:
                out.append(cur)
            continue
        if cur == r.range_end.value:
            idx = (idx + 1) % len(ranges)
            r = ranges[idx]
            cur = r.range_start.value
        else:
            cur += 1
        if start is None:
            start = cur
        elif cur == start:
            return out
        if cur != r.gateway.value:
            out.append(cur)


@settings(max_examples=40)
@given(range_sets(max_ranges=3), st.data())
def test_visiting_order_matches_the_reference_iterator(rs: RangeSet, data: st.DataObject) -> None:
    candidates = [ip.value for r in rs.ranges for ip in (r.range_start, r.range_end)]
    last_value = data.draw(st.one_of(st.none(), st.sampled_from(candidates),
                                     st.integers(min(candidates) - 2, max(candidates) + 2)))
    last = None if last_value is None else IPAddress(last_value, rs.version)
    expected = reference_order(rs, last)
    spans = [(r, v) for r, lo, hi in candidate_spans(rs, last) for v in range(lo, hi + 1) if v != r.gateway.value]
    assert [v for _, v in spans] == expected
    assert len(expected) == allocatable(rs)
    # And the allocator hands out exactly that order on an empty store.
    store = MemoryStore()
    if last is not None:
        store.reserve(last, OTHER, "0")
        store.release(last, OTHER)
    got = [allocate(store, rs, 0, Owner.attachment(f"c{i}", "eth0")).ip.value for i in range(len(expected))]
    assert got == expected
    with pytest.raises(AddressExhaustedError):
        allocate(store, rs, 0, ME)


class _StaleKeys:
    """A key-level store whose view is empty while every address is taken behind its back."""

    def __init__(self) -> None:
        self.attempts = 0

    def transaction(self) -> Any:
        import contextlib

        return contextlib.nullcontext()

    def reserve_key(self, key: int, owner_text: str, range_id: str) -> bool:
        self.attempts += 1
        return False

    def find_owner_keys(self, exact_text: str, legacy_text: str | None) -> list[int]:
        return []

    def first_free_key(self, low: int, high: int) -> int | None:
        return low

    def last_reserved_key(self, range_id: str) -> int | None:
        return None

    def release_key(self, key: int, owner_text: str) -> bool:
        return False


def test_lost_races_are_bounded_in_the_round_robin_order_too() -> None:
    # The one allocator: whatever order it visits, after MAX_LOST_RACES lost races it answers code 11 (try again
    # later) rather than walking a whole /16 one lost race at a time.
    from cnicore._errors import TryAgainLaterError
    from cnicore.ipam import _engine

    big = _engine.decode_config({"name": "n", "cniVersion": "1.0.0", "ipam": {"subnet": "10.9.0.0/16"}})
    store = _StaleKeys()
    with pytest.raises(TryAgainLaterError) as info:
        _engine.allocate(store, big.range_sets[0], 0, ("c1", "eth0"))  # type: ignore[arg-type]
    assert info.value.code == 11 and store.attempts == _engine.MAX_LOST_RACES
    # A window smaller than the bound is exhausted, not "try again".
    small = _engine.decode_config({"name": "n", "cniVersion": "1.0.0", "ipam": {"subnet": "10.9.0.0/29"}})
    with pytest.raises(AddressExhaustedError):
        _engine.allocate(_StaleKeys(), small.range_sets[0], 0, ("c1", "eth0"))  # type: ignore[arg-type]
