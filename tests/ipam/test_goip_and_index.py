"""Address text as Go writes it, the run-based free-address index against a plain set, the persisted index."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPAddress

from cnicore.stores import Owner, ip_from_file_name, ip_text, owner_from_text, parse_cidr, parse_ip
from cnicore.stores._index import V6_TAG, ReservationIndex, Runs, ip_key, key_owner, owner_key, owner_key_from_text
from cnicore.stores._indexfile import Signatures, Tip, encode_record, encode_snapshot, follow, parse_index


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


OWNER_TEXT = st.lists(st.sampled_from(["a", "b", "\r\n", "\r", "\n", " ", "\t", "\u2028", "\x85", "é", "\0"]),
                      max_size=8).map("".join)


@given(OWNER_TEXT)
def test_owner_keys_follow_the_owner_rule(text: str) -> None:
    owner = owner_from_text(text)
    key = owner_key_from_text(text)
    assert (key is None) == (owner is None)
    if owner is not None:
        assert key == owner_key(owner) and key_owner(key) == owner


KEYS = st.one_of(st.integers(0, 40).map(lambda v: 0x0A000000 + v),
                 st.integers(0, 40).map(lambda v: (0x20010DB8 << 96) + v + V6_TAG),
                 st.sampled_from([0, 2**32 - 1, V6_TAG, V6_TAG + 2**128 - 1, V6_TAG + (2**64 - 1), V6_TAG + 2**64]))
OWNERS = st.one_of(st.none(), st.sampled_from(["a eth0", "a", "b eth1", "c\udcff eth0"]))


@given(st.lists(st.tuples(KEYS, OWNERS, st.booleans()), max_size=60), st.integers(0, 3))
def test_index_keys_agree_with_a_dict_before_and_after_a_bulk_load(ops: list[tuple[int, str | None, bool]],
                                                                  reload_at: int) -> None:
    index, model = ReservationIndex(), {}
    for step, (key, owner, insert) in enumerate(ops):
        if step == reload_at:
            keys, texts, starts, ends = index.export()
            index = ReservationIndex.load(dict(zip(keys, texts, strict=True)), Runs.from_bounds(starts, ends))
        if insert:
            index.put_key(key, owner)
            model[key] = owner
        else:
            index.discard_key(key)
            model.pop(key, None)
        for text in ("a eth0", "a", "b eth1"):
            assert index.keys_held_by(text) == sorted(k for k, o in model.items() if o == text)
    for low in (0x0A000000, V6_TAG + (0x20010DB8 << 96)):
        expected = next((v for v in range(low, low + 50) if v not in model), None)
        assert index.first_free_key(low, low + 49) == expected
    assert sorted(index.keys()) == sorted(model) and len(index) == len(model)


def _state(n: int) -> tuple[int, int, int, int]:
    return (7, 11, 1000 + n, 2000 + n)


@given(st.dictionaries(KEYS, OWNERS, max_size=40),
       st.lists(st.lists(st.tuples(KEYS, OWNERS, st.booleans()), max_size=4), max_size=5))
def test_persisted_index_round_trips(start: dict[int, str | None],
                                     records: list[list[tuple[int, str | None, bool]]]) -> None:
    index = ReservationIndex()
    sigs = Signatures()
    for key, owner in start.items():
        index.put_key(key, owner)
        sigs.set(key, (key & 0xFFFF, key >> 100))
    data = snapshot = encode_snapshot(Tip(_state(0), 5), index, sigs)
    model = dict(start)
    total = 0
    for n, changes in enumerate(records, start=1):
        encoded: list[tuple[int, tuple[int, int] | None, str | None]] = []
        for key, owner, present in changes:
            if present:
                model[key] = owner
                encoded.append((key, (n, n), owner))
            else:
                model.pop(key, None)
                encoded.append((key, None, None))
        total += len(encoded)
        data += encode_record(_state(n - 1), Tip(_state(n), 5 + n, n, total), encoded)
    loaded = parse_index(data, (7, 11), ReservationIndex)
    tip = Tip(_state(len(records)), 5 + len(records), len(records), total)
    assert loaded is not None and loaded.tip == tip and loaded.size == len(data)
    assert {key_of(r) : r.owner for r in loaded.index.items()} == {k: None if o is None else key_owner(o)
                                                                     for k, o in model.items()}
    for key in start:
        if key in model and all(key != k for changes in records for k, _, _ in changes):
            assert loaded.sigs.get(key) == (key & 0xFFFF, key >> 100)
    assert parse_index(data, (7, 12)) is None  # bound to its directory
    # What another writer appended after the snapshot: where it ends and every key it touched.
    assert follow(data[len(snapshot):], Tip(_state(0), 5)) == (tip, {k for changes in records for k, _, _ in changes})
    elsewhere = Tip(_state(9), 5)
    assert follow(data[len(snapshot):], elsewhere) == (None if records else (elsewhere, set()))  # from its start only
    if records:
        assert follow(data[len(snapshot):-1], Tip(_state(0), 5)) is None  # a torn end


def key_of(reservation: object) -> int:
    return ip_key(reservation.ip)  # type: ignore[attr-defined]


@given(st.one_of(st.text(alphabet="0123456789.:abcdefx %\0", max_size=20),
                 st.integers(0, 2**32 - 1).map(lambda v: ip_text(IPAddress(v, 4))),
                 st.integers(0, 2**128 - 1).map(lambda v: ip_text(IPAddress(v, 6)))))
def test_file_store_reads_names_as_the_reference_writes_them(name: str) -> None:
    from cnicore.stores._file import _key_from_name

    ip = ip_from_file_name(name)
    assert _key_from_name(name) == (None if ip is None else ip_key(ip))
