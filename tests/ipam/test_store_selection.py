"""Choosing the store through ``ipam.store``, and the allocator's contract with stores that pick their own order.

Pure: no etcd here. The stores that pick their own order are small fakes over a
shared :class:`MemoryStore` that answer from a stale view, the way hosts sharing
an etcd store do; the etcd store itself is exercised in tests/etcd.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import support
from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPAddress

from cnicore._errors import AddressExhaustedError, InvalidConfigError, TryAgainLaterError
from cnicore.ipam import HostLocalIPAM, add, gc, load_ipam_config
from cnicore.ipam._allocator import allocate
from cnicore.stores import EtcdStoreConfig, MemoryStore, Owner, Reservation

ETCD = {"type": "etcd", "endpoints": ["http://127.0.0.1:2379"]}


def conf(**ipam: Any) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": "net1", "type": "bridge",
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.5.0.0/24"}]], **ipam}}


# ----------------------------------------------------------------------------- configuration


def test_no_store_key_means_the_file_store_in_data_dir() -> None:
    loaded = load_ipam_config(conf(dataDir="/tmp/somewhere"))
    assert loaded.store is None
    assert loaded.data_dir == "/tmp/somewhere"


def test_null_store_means_absent() -> None:
    assert load_ipam_config(conf(store=None)).store is None


def test_etcd_store_is_parsed_and_kept() -> None:
    store = {**ETCD, "endpoints": ["http://10.0.0.1:2379/", "https://etcd.example:2380"], "prefix": "/x/y",
             "host": "node-3", "blockSize": 28, "blockAffinity": False, "timeout": 2}
    loaded = load_ipam_config(conf(store=store, dataDir="/var/lib/x"))
    assert loaded.store == EtcdStoreConfig(endpoints=("http://10.0.0.1:2379", "https://etcd.example:2380"),
                                           prefix="/x/y", host="node-3", block_size=28, block_affinity=False,
                                           timeout=2.0)
    assert loaded.data_dir == "/var/lib/x"  # still read: it is what the reference plugin would use


def test_store_key_does_not_change_the_rest_of_the_config() -> None:
    without = load_ipam_config(conf(routes=[{"dst": "0.0.0.0/0"}]), "IP=10.5.0.9")
    with_store = load_ipam_config(conf(routes=[{"dst": "0.0.0.0/0"}], store=ETCD), "IP=10.5.0.9")
    assert with_store.range_sets == without.range_sets
    assert with_store.requested_ips == without.requested_ips
    assert with_store.routes == without.routes
    assert with_store.store is not None and without.store is None


@pytest.mark.parametrize(("store_type", "shown"), [("file", '"file"'), ("", '""'), ("ETCD", '"ETCD"'),
                                                   (3, "3"), ([], "[]"), (None, "null")])
def test_other_store_types_are_code_7_naming_the_key_and_value(store_type: Any, shown: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_ipam_config(conf(store={**ETCD, "type": store_type}))
    assert info.value.code == 7
    assert info.value.key == "ipam.store.type"
    assert info.value.value == store_type
    assert f"unknown store type {shown} in ipam.store.type" in info.value.msg


def test_missing_store_type_is_code_7() -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_ipam_config(conf(store={"endpoints": ["http://127.0.0.1:2379"]}))
    assert info.value.code == 7 and info.value.key == "ipam.store.type"
    assert "ipam.store.type is missing" in info.value.msg


@pytest.mark.parametrize("value", [3, "etcd", [ETCD], True])
def test_store_must_be_an_object(value: Any) -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_ipam_config(conf(store=value))
    assert info.value.code == 7 and info.value.key == "ipam.store" and info.value.value == value


@pytest.mark.parametrize(("change", "key"), [
    ({"endpoints": []}, "ipam.store.endpoints"),
    ({"endpoints": ["http://127.0.0.1:2379", "ftp://x:1"]}, "ipam.store.endpoints[1]"),
    ({"blockSize": 33}, "ipam.store.blockSize"),
    ({"host": "a/b"}, "ipam.store.host"),
    ({"timeout": 0}, "ipam.store.timeout"),
    ({"endpoint": "http://127.0.0.1:2379"}, "ipam.store.endpoint"),
])
def test_bad_etcd_settings_name_their_key_path(change: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_ipam_config(conf(store={**ETCD, **change}))
    assert info.value.code == 7
    assert info.value.key == key


def test_the_references_errors_come_before_the_store_error() -> None:
    bad = conf(store={"type": "file"})
    del bad["ipam"]["ranges"]
    with pytest.raises(InvalidConfigError) as info:
        load_ipam_config(bad)
    assert info.value.msg == "no IP ranges specified"


def test_store_key_is_matched_like_the_other_keys() -> None:
    # Go's decoder folds case; the same rule for every key keeps the config's reading predictable.
    with pytest.raises(InvalidConfigError) as info:
        load_ipam_config(conf(Store={"type": "file"}))
    assert info.value.key == "ipam.Store.type"


def test_facade_uses_the_factory_per_store_settings(tmp_path: Path) -> None:
    seen: list[EtcdStoreConfig | None] = []

    def factory(config: Any) -> MemoryStore:
        seen.append(config.store)
        return MemoryStore()

    with HostLocalIPAM(factory) as ipam:
        file_conf = conf(dataDir=str(tmp_path))
        a = ipam.store_for(ipam.load(file_conf))
        b = ipam.store_for(ipam.load(conf(store={**ETCD, "host": "h1"})))
        c = ipam.store_for(ipam.load(conf(store={**ETCD, "host": "h1"})))
        d = ipam.store_for(ipam.load(conf(store={**ETCD, "host": "h2"})))
        assert ipam.store_for(ipam.load(file_conf)) is a
        assert b is c and b is not a and d is not b
    assert seen[0] is None and [s.host for s in seen[1:] if s is not None] == ["h1", "h2"]


# ----------------------------------------------------------------------------- the reference ignores ipam.store


@pytest.mark.reference
def test_reference_plugin_reads_a_config_with_a_store_and_uses_data_dir(tmp_path: Path) -> None:
    plugin = support.reference_plugin("host-local")
    network = {**conf(dataDir=str(tmp_path), store=ETCD), "cniVersion": "0.4.0"}
    env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x",
           "CNI_IFNAME": "eth0", "CNI_PATH": str(plugin.parent), "CNI_ARGS": ""}
    out = subprocess.run([str(plugin)], input=json.dumps(network).encode(), env=env, capture_output=True,
                         check=False)
    assert out.returncode == 0, out.stdout
    assert [ip["address"] for ip in json.loads(out.stdout)["ips"]] == ["10.5.0.2/24"]
    assert (tmp_path / "net1" / "10.5.0.2").read_bytes() == b"c1\r\neth0"


# ----------------------------------------------------------------------------- stores that pick their own order


class StaleHost:
    """One host's view of a shared address space: offers the highest address it believes free.

    It learns of other hosts' reservations only when a reservation fails, as a host
    of the etcd store does when its view of a block is stale.
    """

    picks_own_order = True

    def __init__(self, shared: MemoryStore) -> None:
        self.shared = shared
        self.known: set[IPAddress] = set()
        self.windows: list[tuple[IPAddress, IPAddress]] = []
        self.lost = 0

    def transaction(self) -> AbstractContextManager[None]:
        return self.shared.transaction()

    def first_free(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        self.windows.append((low, high))
        for value in range(high.value, low.value - 1, -1):
            ip = IPAddress(value, low.version)
            if ip not in self.known:
                return ip
        return None

    def reserve(self, ip: IPAddress, owner: Owner, range_id: str) -> bool:
        self.known.add(ip)
        ok = self.shared.reserve(ip, owner, range_id)
        self.lost += not ok
        return ok

    def last_reserved(self, range_id: str) -> IPAddress | None:
        raise AssertionError("a store picking its own order is not asked for the round-robin hint")

    def release(self, ip: IPAddress, owner: Owner) -> bool:
        self.known.discard(ip)
        return self.shared.release(ip, owner)

    def release_owner(self, owner: Owner) -> Sequence[IPAddress]:
        return self.shared.release_owner(owner)

    def find_owner(self, owner: Owner) -> Sequence[IPAddress]:
        return self.shared.find_owner(owner)

    def reservation(self, ip: IPAddress) -> Reservation | None:
        return self.shared.reservation(ip)

    def reservations(self) -> Iterator[Reservation]:
        return self.shared.reservations()

    def sweep(self) -> int:
        return 0

    def close(self) -> None:
        pass


def small_conf(**ipam: Any) -> dict[str, Any]:
    return conf(ranges=[[{"subnet": "10.5.0.0/29"}, {"subnet": "10.6.0.0/30"}]], **ipam)


def test_own_order_is_followed_range_by_range_gateway_excluded() -> None:
    host = StaleHost(MemoryStore())
    loaded = load_ipam_config(small_conf())
    got = [str(add(loaded, host, f"c{i}", "eth0").ips[0].address) for i in range(6)]
    # The store's order (highest first), range by range; not the reference's round robin. Gateways never offered.
    assert got == ["10.5.0.6/29", "10.5.0.5/29", "10.5.0.4/29", "10.5.0.3/29", "10.5.0.2/29", "10.6.0.2/30"]
    windows = {(str(lo), str(hi)) for lo, hi in host.windows}
    assert windows == {("10.5.0.2", "10.5.0.6"), ("10.6.0.2", "10.6.0.2")}
    with pytest.raises(AddressExhaustedError) as info:
        add(loaded, host, "c9", "eth0")
    assert info.value.msg == ("failed to allocate for range 0: no IP addresses available in range set: "
                              "10.5.0.1-10.5.0.6,10.6.0.1-10.6.0.2")


def test_a_lost_race_makes_the_allocator_ask_again() -> None:
    shared = MemoryStore()
    a, b = StaleHost(shared), StaleHost(shared)
    loaded = load_ipam_config(small_conf())
    first = add(loaded, a, "ca", "eth0").ips[0].ip
    # b's view does not know about a's reservation: it offers the same address first, loses, and goes on.
    second = add(loaded, b, "cb", "eth0").ips[0].ip
    assert b.lost == 1
    assert first != second
    assert {r.ip for r in shared.reservations()} == {first, second}


def test_requested_addresses_do_not_ask_the_store_for_a_candidate() -> None:
    host = StaleHost(MemoryStore())
    loaded = load_ipam_config(small_conf(), "IP=10.5.0.3")
    assert str(add(loaded, host, "c1", "eth0").ips[0].address) == "10.5.0.3/29"
    assert host.windows == []


def test_duplicate_allocation_is_still_refused() -> None:
    host = StaleHost(MemoryStore())
    loaded = load_ipam_config(small_conf())
    add(loaded, host, "c1", "eth0")
    with pytest.raises(Exception, match="duplicate allocation is not allowed"):
        add(loaded, host, "c1", "eth0")


class AlwaysStale(StaleHost):
    """Keeps offering an address that is taken: the allocator must give up with code 11, not spin."""

    def first_free(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        return low


def test_a_store_that_keeps_offering_taken_addresses_gets_code_11() -> None:
    shared = MemoryStore()
    loaded = load_ipam_config(small_conf())
    shared.reserve(IPAddress("10.5.0.2"), Owner.attachment("other", "eth0"), "0")
    with pytest.raises(TryAgainLaterError) as info:
        allocate(AlwaysStale(shared), loaded.range_sets[0], 0, Owner.attachment("c1", "eth0"))
    assert info.value.code == 11


@given(st.lists(st.sampled_from("ab"), min_size=1, max_size=12))
def test_hosts_with_stale_views_never_share_an_address(turns: list[str]) -> None:
    shared = MemoryStore()
    hosts = {"a": StaleHost(shared), "b": StaleHost(shared)}
    loaded = load_ipam_config(small_conf())
    capacity = 6  # 10.5.0.2-6 and 10.6.0.2: the gateways (.1) are not allocatable
    got: list[IPAddress] = []
    for i, name in enumerate(turns):
        if len(got) == capacity:
            with pytest.raises(AddressExhaustedError):
                add(loaded, hosts[name], f"c{i}", "eth0")
            continue
        got.append(add(loaded, hosts[name], f"c{i}", "eth0").ips[0].ip)
    assert len(set(got)) == len(got) == min(len(turns), capacity)
    assert all(loaded.range_sets[0].contains(ip) for ip in got)
    assert {str(ip) for ip in got}.isdisjoint({"10.5.0.1", "10.6.0.1"})


# ----------------------------------------------------------------------------- GC delegation


class OwnGC(StaleHost):
    """A shared store whose own GC only looks at what this host reserved."""

    def __init__(self, shared: MemoryStore) -> None:
        super().__init__(shared)
        self.mine: set[IPAddress] = set()
        self.collected_with: list[set[Owner]] = []

    def reserve(self, ip: IPAddress, owner: Owner, range_id: str) -> bool:
        ok = super().reserve(ip, owner, range_id)
        if ok:
            self.mine.add(ip)
        return ok

    def gc(self, valid: Iterable[Owner]) -> list[IPAddress]:
        alive = set(valid)
        self.collected_with.append(alive)
        released = []
        for reservation in list(self.shared.reservations()):
            owner = reservation.owner
            if reservation.ip in self.mine and owner is not None and owner not in alive \
                    and self.shared.release(reservation.ip, owner):
                released.append(reservation.ip)
        return released


def test_gc_delegates_to_a_store_with_its_own_gc() -> None:
    shared = MemoryStore()
    here, there = OwnGC(shared), OwnGC(shared)
    loaded = load_ipam_config(small_conf())
    kept = add(loaded, here, "keep", "eth0").ips[0].ip
    gone = add(loaded, here, "gone", "eth0").ips[0].ip
    remote = add(loaded, there, "remote", "eth0").ips[0].ip
    released = gc(here, [("keep", "eth0")])
    assert released == (Reservation(ip=gone, owner=Owner.attachment("gone", "eth0")),)
    assert here.collected_with == [{Owner.attachment("keep", "eth0")}]
    # The other host's reservation is not among this host's valid attachments, and survives.
    assert {r.ip for r in shared.reservations()} == {kept, remote}
    assert gc(here, [("keep", "eth0")]) == ()


def test_gc_without_a_store_gc_uses_the_generic_rule() -> None:
    shared = MemoryStore()
    host = StaleHost(shared)
    loaded = load_ipam_config(small_conf())
    add(loaded, host, "keep", "eth0")
    gone = add(loaded, host, "gone", "eth0").ips[0].ip
    assert gc(host, [("keep", "eth0")]) == (Reservation(ip=gone, owner=Owner.attachment("gone", "eth0")),)
