"""The file store's key-level core: its API on a real directory, its name parsing, and its import cost."""

from __future__ import annotations

import gc
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPAddress

import cnicore
from cnicore._errors import InvalidConfigError, TryAgainLaterError
from cnicore.stores import FileStore, Owner, ip_from_file_name, ip_text, parse_ip
from cnicore.stores._file import index_path
from cnicore.stores._filecore import FileStoreCore, _key_from_name, index_file_path
from cnicore.stores._index import ReservationIndex, ip_key
from cnicore.stores._keyindex import V6_TAG, KeyIndex

# Where cnicore is imported from (the checkout, or wherever it is installed): the -I -S child gets it by hand.
PACKAGE_PARENT = Path(cnicore.__file__).resolve().parent.parent


def key(text: str) -> int:
    return ip_key(IPAddress(text))


def files(net: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(net.iterdir()) if p.is_file()}


def test_reserve_and_release_keys(tmp_path: Path) -> None:
    net = tmp_path / "net"
    with FileStoreCore(tmp_path, "net") as store:
        assert store.reserve_key(key("10.0.0.2"), "ctr-a eth0", "0") is True
        assert store.reserve_key(key("10.0.0.2"), "ctr-b eth0", "0") is False  # taken, by anyone
        assert store.reserve_key(key("10.0.0.3"), "ctr-old", "0") is True  # a legacy owner: the ID alone
        assert store.reserve_key(key("2001:db8::a"), "ctr-a eth1", "1") is True
        # An IPv4-mapped IPv6 key stands for its IPv4 address, as the port's canonical_ip.
        assert store.reserve_key(key("::ffff:10.0.0.4"), "ctr-a eth2", "0") is True
        assert store.has_key(key("10.0.0.4")) and store.has_key(key("::ffff:10.0.0.4"))
        assert len(store) == 4
        assert files(net) == {
            "10.0.0.2": b"ctr-a\r\neth0", "10.0.0.3": b"ctr-old", "10.0.0.4": b"ctr-a\r\neth2",
            "2001:db8::a": b"ctr-a\r\neth1", "last_reserved_ip.0": b"10.0.0.4", "last_reserved_ip.1": b"2001:db8::a",
            "lock": b"",
        }
        assert store.release_key(key("10.0.0.2"), "ctr-b eth0") is False  # not the holder
        assert store.release_key(key("10.0.0.2"), "ctr-a") is False  # nor is its container's legacy form
        assert store.release_key(key("10.0.0.2"), "ctr-a eth0") is True
        assert store.release_key(key("10.0.0.2"), "ctr-a eth0") is False  # idempotent
        assert store.release_key(key("10.0.0.3"), "ctr-old") is True
        assert not (net / "10.0.0.2").exists() and not (net / "10.0.0.3").exists()
        assert not store.has_key(key("10.0.0.2"))


@pytest.mark.parametrize("owner", ["", " ", "a  b", "a b c", "a\tb", " a b", "a b ", "a\r\nb"])
def test_owner_texts_that_do_not_read_back_are_refused(tmp_path: Path, owner: str) -> None:
    with FileStoreCore(tmp_path, "net") as store, pytest.raises(ValueError):
        store.reserve_key(key("10.0.0.2"), owner, "0")
    assert not (tmp_path / "net" / "10.0.0.2").exists()


def test_bad_keys_and_range_ids_are_refused(tmp_path: Path) -> None:
    with FileStoreCore(tmp_path, "net") as store:
        for bad in (-1, 1 << 32, V6_TAG - 1, V6_TAG << 1):
            with pytest.raises(ValueError):
                store.reserve_key(bad, "a eth0", "0")
        for range_id in ("", ".", "..", "a/b", "a\0"):
            with pytest.raises(InvalidConfigError):
                store.reserve_key(key("10.0.0.2"), "a eth0", range_id)
            with pytest.raises(InvalidConfigError):
                store.last_reserved_key(range_id)
        assert len(store) == 0


def test_release_owner_keys_follows_the_reference_rule(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    (net / "10.0.0.2").write_bytes(b"c1\r\neth0")
    (net / "10.0.0.3").write_bytes(b"c1")  # legacy, written before v0.8.0
    (net / "10.0.0.4").write_bytes(b"c1\r\neth1")
    (net / "2001:db8::2").write_bytes(b"c1")
    (net / "10.0.0.5").write_bytes(b"  c1\r\neth0\n")  # surrounding whitespace is ignored
    with FileStoreCore(tmp_path, "net", watch=False) as store:
        exact = [key("10.0.0.2"), key("10.0.0.5")]
        legacy = [key("10.0.0.3"), key("2001:db8::2")]
        assert store.find_owner_keys("c1 eth0", "c1") == sorted(exact + legacy)
        assert store.find_owner_keys("c1 eth0", None) == exact
        assert store.find_owner_keys("c9 eth0", "c9") == []
        # Exact matches first; the legacy ones only once there are none.
        assert store.release_owner_keys("c1 eth0", "c1") == exact
        assert store.release_owner_keys("c1 eth0", "c1") == legacy
        assert store.release_owner_keys("c1 eth0", "c1") == []
        assert sorted(p.name for p in net.iterdir()) == ["10.0.0.4", "lock"]
        # A legacy owner (no legacy text) releases its exact matches only.
        assert store.reserve_key(key("10.0.0.3"), "c1", "0")
        assert store.release_owner_keys("c1", None) == [key("10.0.0.3")]
        assert store.release_owner_keys("c1 eth1", None) == [key("10.0.0.4")]
        assert len(store) == 0


def test_v4_keys_sort_before_v6_keys(tmp_path: Path) -> None:
    with FileStoreCore(tmp_path, "net") as store:
        for i, ip in enumerate(["2001:db8::1", "10.0.0.9", "::1", "0.0.0.1"]):
            assert store.reserve_key(key(ip), "c eth0", str(i))
        found = store.find_owner_keys("c eth0", "c")
        assert found == [key("0.0.0.1"), key("10.0.0.9"), key("::1"), key("2001:db8::1")]
        assert found[1] < V6_TAG <= found[2]


def test_first_free_key(tmp_path: Path) -> None:
    with FileStoreCore(tmp_path, "net") as store:
        low, high = key("10.0.0.2"), key("10.0.0.5")
        assert store.first_free_key(low, high) == low
        for value in range(low, high):
            assert store.reserve_key(value, "c eth0", "0")
        assert store.first_free_key(low, high) == high
        assert store.reserve_key(high, "c eth0", "0")
        assert store.first_free_key(low, high) is None
        assert store.release_key(key("10.0.0.3"), "c eth0")
        assert store.first_free_key(low, high) == key("10.0.0.3")
        v6 = key("2001:db8::")
        assert store.first_free_key(v6, v6 + 10) == v6  # the IPv4 runs never reach IPv6 keys


@pytest.mark.parametrize(("content", "expected"), [
    (b"10.0.0.9", "10.0.0.9"),
    (b"::ffff:10.0.0.7", "10.0.0.7"),  # Go's ParseIP: a mapped address is IPv4
    (b"2001:db8::5", "2001:db8::5"),
    (b"2001:DB8:0:0::5", "2001:db8::5"),  # any spelling ParseIP takes
    (b"10.0.0.9\n", None),  # no trimming, as the reference
    (b" 10.0.0.9", None),
    (b"010.0.0.9", None),
    (b"fe80::1%eth0", None),
    (b"\xff", None),
    (b"", None),
])
def test_last_reserved_key_parses_as_the_reference(tmp_path: Path, content: bytes, expected: str | None) -> None:
    net = tmp_path / "net"
    net.mkdir()
    (net / "last_reserved_ip.0").write_bytes(content)
    with FileStoreCore(tmp_path, "net") as store:
        found = store.last_reserved_key("0")
        assert found == (None if expected is None else key(expected))
        assert store.last_reserved_key("1") is None  # no file
    with FileStore(tmp_path, "net") as port:  # the port method is the same answer as an address
        assert port.last_reserved("0") == (None if expected is None else IPAddress(expected))


def test_the_cursor_follows_reservations_and_outside_writes(tmp_path: Path) -> None:
    net = tmp_path / "net"
    with FileStoreCore(tmp_path, "net", watch=False) as store:
        assert store.reserve_key(key("2001:db8::1:99"), "c eth0", "0")
        assert store.last_reserved_key("0") == key("2001:db8::1:99")
        assert store.reserve_key(key("10.0.0.7"), "c eth0", "0")  # shorter: replaced
        assert store.last_reserved_key("0") == key("10.0.0.7")
        assert (net / "last_reserved_ip.0").read_bytes() == b"10.0.0.7"
        (net / "last_reserved_ip.0").write_bytes(b"::ffff:10.0.0.50")  # rewritten in place by another writer
        assert store.last_reserved_key("0") == key("10.0.0.50")


def test_only_canonical_names_are_reservations(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    canonical = ["2001:db8::1", "10.0.0.1", "::", "::1", "1:0:0:1::", "2001:db8:0:1:1:1:1:1"]
    other = ["2001:DB8::2", "2001:db8:0:0::3", "2001:0db8::4", "::ffff:10.0.0.5", "010.0.0.6", "10.0.0.07",
             "2001:db8::0:5", "1::2:0:0:0:0:3"]
    for name in canonical + other:
        (net / name).write_bytes(b"c\r\neth0")
    with FileStoreCore(tmp_path, "net") as store:
        assert store.find_owner_keys("c eth0", "c") == sorted(key(name) for name in canonical)
        assert len(store) == len(canonical)
        for name in other:
            if ":" in name:  # (netaddr, like Go, takes no IPv4 octet with a leading zero)
                assert not store.has_key(key(name))  # (the mapped one stands for 10.0.0.5: no such file)
        # Reserving writes the canonical name (and finds the non-canonical one no obstacle).
        assert store.reserve_key(key("2001:db8::2"), "d eth0", "0")
        assert (net / "2001:db8::2").read_bytes() == b"d\r\neth0"
        assert (net / "2001:DB8::2").read_bytes() == b"c\r\neth0"


def test_a_file_created_behind_the_store_is_seen(tmp_path: Path) -> None:
    net = tmp_path / "net"
    with FileStoreCore(tmp_path, "net", watch=False) as store:
        assert not store.has_key(key("10.0.0.2"))
        (net / "10.0.0.2").write_bytes(b"other\r\neth0")
        assert store.has_key(key("10.0.0.2"))
        assert store.reserve_key(key("10.0.0.3"), "c eth0", "0")
        (net / "10.0.0.4").write_bytes(b"other\r\neth0")
        assert store.reserve_key(key("10.0.0.4"), "c eth0", "0") is False  # EEXIST: learnt, not overwritten
        assert store.find_owner_keys("other eth0", "other") == [key("10.0.0.2"), key("10.0.0.4")]
        assert (net / "10.0.0.4").read_bytes() == b"other\r\neth0"


def test_core_and_port_share_one_directory_and_one_persisted_index(tmp_path: Path) -> None:
    net = tmp_path / "net"
    with FileStore(tmp_path, "net") as port:
        assert port.reserve(IPAddress("10.0.0.2"), Owner.attachment("a", "eth0"), "0")
        assert port.reserve(IPAddress("2001:db8::2"), Owner(container_id="b"), "1")
        assert isinstance(port._index, ReservationIndex)
    assert index_path(tmp_path, "net") == Path(index_file_path(tmp_path, "net") or "")
    assert os.path.exists(index_file_path(tmp_path, "net") or "")
    with FileStoreCore(tmp_path, "net") as core:  # loads the index the port saved, as plain keys
        assert type(core._index) is KeyIndex
        assert core.find_owner_keys("a eth0", "a") == [key("10.0.0.2")]
        assert core.find_owner_keys("b eth0", "b") == [key("2001:db8::2")]
        assert core.release_owner_keys("b eth0", "b") == [key("2001:db8::2")]
        assert core.reserve_key(key("10.0.0.3"), "c eth0", "0")
    with FileStore(tmp_path, "net") as port:  # and the other way round
        assert sorted((str(r.ip), r.owner) for r in port.reservations()) == [
            ("10.0.0.2", Owner.attachment("a", "eth0")), ("10.0.0.3", Owner.attachment("c", "eth0"))]
        assert port.last_reserved("0") == IPAddress("10.0.0.3")
    assert files(net)["10.0.0.3"] == b"c\r\neth0"


def _same_operations(store: FileStoreCore, port: bool) -> None:
    a, legacy = Owner.attachment("a", "eth0"), Owner(container_id="a")
    steps = [("10.0.0.2", a, "0"), ("10.0.0.3", legacy, "0"), ("2001:db8::7", a, "1"), ("10.0.0.10", a, "0")]
    for ip, owner, range_id in steps:
        if isinstance(store, FileStore) and port:
            assert store.reserve(IPAddress(ip), owner, range_id)
        else:
            text = owner.container_id if owner.ifname is None else f"{owner.container_id} {owner.ifname}"
            assert store.reserve_key(key(ip), text, range_id)
    if isinstance(store, FileStore) and port:
        assert store.release(IPAddress("10.0.0.10"), a)
        assert store.release_owner(a) == [IPAddress("10.0.0.2"), IPAddress("2001:db8::7")]
    else:
        assert store.release_key(key("10.0.0.10"), "a eth0")
        assert store.release_owner_keys("a eth0", "a") == [key("10.0.0.2"), key("2001:db8::7")]


def test_the_core_writes_what_the_port_writes(tmp_path: Path) -> None:
    with FileStore(tmp_path / "port", "net") as port:
        _same_operations(port, port=True)
    with FileStoreCore(tmp_path / "core", "net") as core:
        _same_operations(core, port=False)
    assert files(tmp_path / "port" / "net") == files(tmp_path / "core" / "net")
    assert files(tmp_path / "core" / "net")["last_reserved_ip.1"] == b"2001:db8::7"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_store_dropped_without_close_closes_its_descriptors(tmp_path: Path) -> None:
    gc.collect()  # stores earlier tests dropped are not counted, nor closed during this test
    before = _open_fds()
    store = FileStoreCore(tmp_path, "net")
    assert store.reserve_key(key("10.0.0.2"), "a eth0", "0")
    assert _open_fds() > before
    del store
    gc.collect()
    assert _open_fds() == before


def test_repr_names_the_class(tmp_path: Path) -> None:
    with FileStoreCore(tmp_path, "net") as core, FileStore(tmp_path, "net") as port:
        assert repr(core) == f"FileStoreCore({str(tmp_path)!r}, 'net')"
        assert repr(port) == f"FileStore({str(tmp_path)!r}, 'net')"


# Reservation file names: arbitrary text, every address spelt canonically, and spellings that are close.
_V4 = st.integers(0, 2**32 - 1).map(lambda v: ip_text(IPAddress(v, 4)))
_V6 = st.one_of(
    st.integers(0, 2**128 - 1),
    st.integers(0, 2**16 - 1).map(lambda v: v << 112),  # long zero runs
    st.integers(0, 2**32 - 1).map(lambda v: 0xFFFF << 32 | v),  # mapped
    st.tuples(st.integers(0, 7), st.integers(0, 2**16 - 1)).map(lambda t: t[1] << (16 * t[0])),
).map(lambda v: ip_text(IPAddress(v, 6)))


def _respell(name: str, how: int) -> str:
    if how == 0:
        return name.upper()
    if how == 1:
        return "0" + name
    if how == 2:
        return name.replace("::", ":0::", 1)
    if how == 3:  # IPv4 as mapped IPv6; IPv6 with every group written out
        return "::ffff:" + name if ":" not in name else ipaddress.IPv6Address(name).exploded
    return name + "%eth0"


_NAMES = st.one_of(
    st.text(alphabet="0123456789.:abcdefABCDEFx %\0", max_size=24),
    st.text(max_size=12),
    _V4,
    _V6,
    st.tuples(st.one_of(_V4, _V6), st.integers(0, 4)).map(lambda t: _respell(*t)),
)


@given(_NAMES)
def test_a_name_is_a_reservation_exactly_when_it_is_gos_spelling_of_an_address(name: str) -> None:
    ip = parse_ip(name)
    expected = ip if ip is not None and ip_text(ip) == name else None
    assert ip_from_file_name(name) == expected
    assert _key_from_name(name) == (None if expected is None else ip_key(expected))


@given(st.one_of(_V4, _V6))
def test_every_canonical_name_is_a_reservation(name: str) -> None:
    found = _key_from_name(name)
    assert found is not None and found == ip_key(IPAddress(name))


_FORBIDDEN = ("netaddr", "attr", "attrs", "typing", "pathlib", "socket", "secrets", "threading", "weakref",
              "contextlib")


def test_importing_the_core_loads_no_costly_module() -> None:
    site = [p for p in sys.path if p.endswith("site-packages")]
    code = (
        "import sys\n"
        f"sys.path[:0] = {[str(PACKAGE_PARENT), *site]!r}\n"
        "preloaded = set(sys.modules)\n"
        "import cnicore.stores._filecore\n"
        f"print(sorted(m for m in set(sys.modules) - preloaded if m.split('.')[0] in {_FORBIDDEN!r}))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _lock_holder(lock: Path) -> subprocess.Popen[str]:
    """Another process holding the network's lock until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys\n"
         f"fd = os.open({str(lock)!r}, os.O_RDONLY)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\nsys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_waiter_gets_the_lock_when_it_is_freed_and_one_that_gave_up_holds_nothing(tmp_path: Path) -> None:
    import threading

    with FileStoreCore(tmp_path, "net") as store:
        assert store.reserve_key(key("10.0.0.2"), "a eth0", "0")
    impatient = FileStoreCore(tmp_path, "net", lock_timeout=0.2)
    patient = FileStoreCore(tmp_path, "net", lock_timeout=60)
    holder = _lock_holder(tmp_path / "net" / "lock")
    try:
        # Gives up at its timeout...
        with pytest.raises(TryAgainLaterError):
            impatient.reserve_key(key("10.0.0.3"), "b eth0", "0")
        # ...while a patient one waits, and gets the lock when the holder frees it.
        results: list[bool] = []
        waiter = threading.Thread(target=lambda: results.append(patient.reserve_key(key("10.0.0.4"), "c eth0", "0")))
        waiter.start()
    finally:
        holder.communicate("")
    waiter.join(60)
    assert results == [True]
    patient.close()
    # Neither the store that gave up nor the patient one kept the lock: another process takes it.
    check = subprocess.run(
        [sys.executable, "-c",
         "import fcntl, os\n"
         f"fd = os.open({str(tmp_path / 'net' / 'lock')!r}, os.O_RDONLY)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked')\n"],
        capture_output=True, text=True, timeout=60)
    assert check.stdout.strip() == "locked"
    impatient.close()
    assert sorted((tmp_path / "net").iterdir()) == sorted(
        tmp_path / "net" / name for name in ("10.0.0.2", "10.0.0.4", "last_reserved_ip.0", "lock"))
