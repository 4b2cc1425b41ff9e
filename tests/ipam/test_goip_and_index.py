"""Address text as Go writes it, and the run-based free-address index against a plain set."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPAddress

from cnicore.stores import Owner, ip_from_file_name, ip_text, owner_from_text, parse_cidr, parse_ip
from cnicore.stores._index import ReservationIndex, Runs


@given(st.one_of(st.integers(0, 2**32 - 1).map(lambda v: IPAddress(v, 4)),
                 st.integers(0, 2**128 - 1).map(lambda v: IPAddress(v, 6))))
def test_file_names_round_trip(ip: IPAddress) -> None:
    name = ip_text(ip)
    back = ip_from_file_name(name)
    assert back is not None and ip_text(back) == name
    if not (ip.version == 6 and ip.value >> 32 == 0xFFFF):
        assert back == ip


@given(st.text(alphabet="0123456789abcdefABCDEF.:x/% ", max_size=24))
def test_only_canonical_names_are_reservations(name: str) -> None:
    ip = ip_from_file_name(name)
    if ip is not None:
        assert ip_text(ip) == name
        assert ipaddress.ip_address(name)


def test_go_spellings() -> None:
    assert ip_text(IPAddress("2001:db8:1:0:ffff:ffff:ffff:ffff")) == "2001:db8:1:0:ffff:ffff:ffff:ffff"
    assert ip_text(IPAddress("1:0:0:1:0:0:0:1")) == "1:0:0:1::1"
    assert ip_text(IPAddress("::ffff:10.1.2.3")) == "10.1.2.3"
    assert parse_ip("010.0.0.1") is None and parse_ip("fe80::1%eth0") is None and parse_ip(" 1.2.3.4") is None
    assert str(parse_cidr("10.0.0.12/24")) == "10.0.0.12/24" and parse_cidr("10.0.0.0/33") is None


def test_owner_text_rules() -> None:
    assert owner_from_text("  a\r\neth0\n") == Owner.attachment("a", "eth0")
    assert owner_from_text("a") == Owner(container_id="a")
    assert owner_from_text("a b") is None and owner_from_text("a\r\n") == Owner(container_id="a")
    assert owner_from_text("a\r\neth0\r\nx") is None and owner_from_text("") is None


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=120), st.integers(0, 60), st.integers(0, 60))
def test_runs_agree_with_a_set(ops: list[tuple[bool, int]], low: int, high: int) -> None:
    runs, model = Runs(), set()
    for insert, value in ops:
        if insert:
            runs.add(value)
            model.add(value)
        else:
            runs.remove(value)
            model.discard(value)
        assert all((v in runs) == (v in model) for v in range(-1, 62))
    expected = next((v for v in range(low, high + 1) if v not in model), None)
    assert runs.first_absent(low, high) == expected
    starts = runs._starts  # maximal runs: never adjacent
    assert all(runs._ends[i] + 1 < starts[i + 1] for i in range(len(starts) - 1))


def test_index_views_stay_in_step() -> None:
    index = ReservationIndex()
    a, b = Owner.attachment("a", "eth0"), Owner.attachment("b", "eth0")
    index.put(IPAddress("10.0.0.2"), a)
    index.put(IPAddress("10.0.0.3"), a)
    index.put(IPAddress("10.0.0.3"), b)  # replaced
    assert index.held_by(a) == [IPAddress("10.0.0.2")] and index.held_by(b) == [IPAddress("10.0.0.3")]
    assert index.first_free(IPAddress("10.0.0.2"), IPAddress("10.0.0.9")) == IPAddress("10.0.0.4")
    assert index.discard(IPAddress("10.0.0.2")) == a and index.held_by(a) == []
    assert index.first_free(IPAddress("10.0.0.2"), IPAddress("10.0.0.9")) == IPAddress("10.0.0.2")
