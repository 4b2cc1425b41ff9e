"""The etcd store against a real etcd: atomic reservations, owner checks, blocks, borrowing, GC, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from netaddr import IPAddress, IPNetwork

from cnicore._errors import TryAgainLaterError
from cnicore.stores._etcd import EtcdStore, Owner, _Gateway
from cnicore.stores._etcd_config import EtcdStoreConfig

Factory = Callable[..., EtcdStore]

LOW, HIGH = IPAddress("10.9.0.1"), IPAddress("10.9.0.30")


@pytest.fixture
def make_store(etcd_server, etcd_prefix: str) -> Iterator[Factory]:  # type: ignore[no-untyped-def]
    stores: list[EtcdStore] = []

    def make(host: str = "h1", **kw: Any) -> EtcdStore:
        config = EtcdStoreConfig(endpoints=tuple(etcd_server.endpoints), prefix=etcd_prefix, host=host,
                                 block_size=kw.pop("block_size", 29), **kw)
        store = EtcdStore("net1", config)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def allocate(store: EtcdStore, owner: Owner, low: IPAddress = LOW, high: IPAddress = HIGH) -> IPAddress | None:
    """What an allocator does: ask for a candidate, reserve it, retry on a lost race."""
    for _ in range(100):
        ip = store.first_free(low, high)
        if ip is None:
            return None
        assert low <= ip <= high
        if store.reserve(ip, owner, "0"):
            return ip
    raise AssertionError("allocation kept losing races in a single-threaded test")


def raw_get(store: EtcdStore, key: bytes) -> bytes | None:
    found = store._gateway.range(key)
    return found[0].value if found else None


def test_etcd_reserve_is_create_if_absent_and_records_host(make_store: Factory) -> None:
    store = make_store()
    owner = Owner.attachment("c1", "eth0")
    ip = IPAddress("10.9.0.5")
    assert store.reserve(ip, owner, "0")
    assert not store.reserve(ip, owner, "0")
    assert not store.reserve(ip, Owner.attachment("c2", "eth0"), "0")
    value = raw_get(store, store._ip_key(ip))
    assert value is not None
    decoded = json.loads(value)
    assert len(decoded.pop("nonce")) == 16
    assert decoded == {"containerID": "c1", "ifname": "eth0", "host": "h1", "ip": "10.9.0.5"}
    assert store.reservation(ip) is not None
    assert store.reservation(ip).owner == owner  # type: ignore[union-attr]
    assert store.last_reserved("0") == ip
    assert store.find_owner(owner) == [ip]


def test_etcd_release_compares_owner(make_store: Factory) -> None:
    store = make_store()
    owner, other = Owner.attachment("c1", "eth0"), Owner.attachment("c1", "eth1")
    ip = IPAddress("10.9.0.7")
    assert store.reserve(ip, owner, "0")
    assert not store.release(ip, other)
    assert store.reservation(ip) is not None
    assert store.release(ip, owner)
    assert not store.release(ip, owner)
    assert store.reservation(ip) is None
    assert store.find_owner(owner) == []


def test_etcd_release_owner_exact_then_legacy(make_store: Factory) -> None:
    store = make_store()
    legacy = Owner(container_id="c9")
    exact = Owner.attachment("c9", "eth0")
    assert store.reserve(IPAddress("10.9.0.2"), legacy, "0")
    assert store.reserve(IPAddress("10.9.0.3"), exact, "0")
    assert store.find_owner(exact) == [IPAddress("10.9.0.2"), IPAddress("10.9.0.3")]
    assert store.release_owner(exact) == [IPAddress("10.9.0.3")]
    assert store.release_owner(exact) == [IPAddress("10.9.0.2")]
    assert store.release_owner(exact) == []
    assert list(store.reservations()) == []


def test_etcd_last_reserved_is_per_host(make_store: Factory) -> None:
    one, two = make_store("h1"), make_store("h2")
    assert one.reserve(IPAddress("10.9.0.4"), Owner.attachment("a", "eth0"), "0")
    assert two.reserve(IPAddress("10.9.0.20"), Owner.attachment("b", "eth0"), "0")
    assert one.last_reserved("0") == IPAddress("10.9.0.4")
    assert two.last_reserved("0") == IPAddress("10.9.0.20")
    assert one.last_reserved("1") is None


def test_etcd_blocks_are_claimed_then_borrowed(make_store: Factory) -> None:
    one, two = make_store("h1"), make_store("h2")
    first = [allocate(one, Owner.attachment(f"a{i}", "eth0")) for i in range(3)]
    # h1 claimed the first /29 (10.9.0.0-7: .1-.7 usable in the window); h2 starts in the next block.
    assert first == [IPAddress("10.9.0.1"), IPAddress("10.9.0.2"), IPAddress("10.9.0.3")]
    got = allocate(two, Owner.attachment("b0", "eth0"))
    assert got == IPAddress("10.9.0.8")
    assert one.blocks() == {IPNetwork("10.9.0.0/29"): "h1", IPNetwork("10.9.0.8/29"): "h2"}
    # h2 fills everything else: it claims the remaining blocks, then borrows h1's free addresses.
    held = [got]
    while (ip := allocate(two, Owner.attachment(f"b{len(held)}", "eth0"))) is not None:
        held.append(ip)
    assert len(held) + len(first) == 30
    assert set(one.blocks().values()) == {"h1", "h2"}
    assert IPAddress("10.9.0.4") in held  # borrowed from h1's block
    # h1's view of its block is stale (it still thinks .4 is free): that costs a retry, never a duplicate.
    assert one.first_free(LOW, HIGH) == IPAddress("10.9.0.4")
    assert not one.reserve(IPAddress("10.9.0.4"), Owner.attachment("late", "eth0"), "0")
    assert allocate(one, Owner.attachment("late", "eth0")) is None
    reserved = [r.ip for r in one.reservations()]
    assert len(reserved) == len(set(reserved)) == 30


def test_etcd_without_affinity_gives_lowest_free(make_store: Factory) -> None:
    store = make_store(block_affinity=False)
    assert store.reserve(IPAddress("10.9.0.1"), Owner.attachment("x", "eth0"), "0")
    assert store.reserve(IPAddress("10.9.0.3"), Owner.attachment("y", "eth0"), "0")
    assert store.first_free(LOW, HIGH) == IPAddress("10.9.0.2")
    assert store.blocks() == {}


def test_etcd_ipv6_blocks(make_store: Factory) -> None:
    store = make_store(block_size6=125)
    low, high = IPAddress("fd00::1"), IPAddress("fd00::ffff")
    ips = [allocate(store, Owner.attachment(f"v{i}", "eth0"), low, high) for i in range(9)]
    assert ips[0] == IPAddress("fd00::1")
    assert ips[-1] == IPAddress("fd00::9")
    assert set(store.blocks()) == {IPNetwork("fd00::/125"), IPNetwork("fd00::8/125")}


def test_etcd_gc_only_touches_this_host(make_store: Factory) -> None:
    one, two = make_store("h1"), make_store("h2")
    keep, leak = Owner.attachment("k", "eth0"), Owner.attachment("l", "eth0")
    legacy = Owner(container_id="k")
    ip_keep = allocate(one, keep)
    ip_leak = allocate(one, leak)
    ip_legacy = allocate(one, legacy)
    ip_other = allocate(two, Owner.attachment("o", "eth0"))
    assert one.gc([keep]) == [ip_leak]
    remaining = {r.ip for r in one.reservations()}
    assert remaining == {ip_keep, ip_legacy, ip_other}
    assert one.gc([keep]) == []


def test_etcd_release_host_reclaims_everything(make_store: Factory) -> None:
    one, two = make_store("h1"), make_store("h2")
    for i in range(10):
        allocate(one, Owner.attachment(f"a{i}", "eth0"))
    theirs = allocate(two, Owner.attachment("b", "eth0"))
    assert one.blocks()
    assert two.release_host("h1") == 10
    assert {r.ip for r in two.reservations()} == {theirs}
    assert set(two.blocks().values()) == {"h2"}
    assert one.last_reserved("0") is None
    # The departed host's blocks are free again for anyone.
    assert allocate(make_store("h3"), Owner.attachment("c", "eth0")) == IPAddress("10.9.0.1")


def test_etcd_unreadable_values_stay_occupied(make_store: Factory) -> None:
    store = make_store(block_affinity=False)
    ip = IPAddress("10.9.0.1")
    store._gateway.txn([], [{"request_put": {"key": _b64(store._ip_key(ip)), "value": _b64(b"{not json")}}])
    store._gateway.txn([], [{"request_put": {"key": _b64(store._root + b"ips/4/zz"), "value": _b64(b"x")}}])
    reservation = store.reservation(ip)
    assert reservation is not None and reservation.owner is None
    assert store.first_free(LOW, HIGH) == IPAddress("10.9.0.2")
    assert not store.reserve(ip, Owner.attachment("a", "eth0"), "0")
    assert store.gc([]) == []
    assert [r.ip for r in store.reservations()] == [ip]
    assert raw_get(store, store._ip_key(ip)) == b"{not json"


def test_etcd_sweep_removes_orphan_index_keys(make_store: Factory) -> None:
    store = make_store()
    owner = Owner.attachment("c", "eth0")
    ip = IPAddress("10.9.0.9")
    orphan = store._owner_key(owner, ip)
    store._gateway.txn([], [{"request_put": {"key": _b64(orphan), "value": ""}}])
    assert store.find_owner(owner) == [ip]
    assert store.sweep() == 1
    assert store.find_owner(owner) == []
    assert store.sweep() == 0


def test_etcd_release_cleans_lone_index_key(make_store: Factory) -> None:
    store = make_store()
    owner = Owner.attachment("c", "eth0")
    ip = IPAddress("10.9.0.9")
    store._gateway.txn([], [{"request_put": {"key": _b64(store._owner_key(owner, ip)), "value": ""}}])
    assert store.release_owner(owner) == []
    assert store.find_owner(owner) == []


def test_etcd_unreachable_is_try_again_later(etcd_prefix: str) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        store = EtcdStore("net1", EtcdStoreConfig(endpoints=(f"http://127.0.0.1:{port}",), prefix=etcd_prefix,
                                                  host="h", timeout=1))
        with pytest.raises(TryAgainLaterError) as info:
            store.reserve(IPAddress("10.0.0.1"), Owner.attachment("a", "eth0"), "0")
    assert info.value.code == 11
    assert info.value.__cause__ is not None
    store.close()


def test_etcd_fails_over_to_a_live_endpoint(etcd_server, etcd_prefix: str) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
        store = EtcdStore("net1", EtcdStoreConfig(endpoints=(dead, *etcd_server.endpoints), prefix=etcd_prefix,
                                                  host="h"))
        assert store.reserve(IPAddress("10.0.0.1"), Owner.attachment("a", "eth0"), "0")
    store.close()


def test_etcd_import_is_lazy() -> None:
    code = ("import sys, cnicore.stores, cnicore.stores._etcd, cnicore.stores._etcd_config; "
            "from cnicore.stores._etcd import EtcdStore; assert 'etcd3gw' not in sys.modules, 'eager'; "
            "assert 'requests' not in sys.modules, 'eager requests'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_etcd_gateway_translates_malformed_responses() -> None:
    from cnicore._errors import IOFailureError
    from cnicore.stores._etcd import _kvs

    with pytest.raises(IOFailureError):
        _kvs({"kvs": [{"key": "!!notbase64", "value": ""}]})
    with pytest.raises(IOFailureError):
        _kvs({"kvs": "nope"})
    assert isinstance(_Gateway, type)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def test_etcd_resent_reservation_recognises_its_own_write(make_store: Factory) -> None:
    store = make_store()
    gateway = store._gateway
    real_call = gateway.call
    calls = []

    def call_then_lose_the_answer(path: str, payload: dict[str, object]) -> dict[str, object]:
        result = real_call(path, payload)
        calls.append(path)
        if path == "kv/txn" and len(calls) == 1:
            # Committed, but the answer is lost: what the failover loop then does is send it again.
            return real_call(path, payload)
        return result

    gateway.call = call_then_lose_the_answer  # type: ignore[method-assign]
    assert store.reserve(IPAddress("10.9.0.6"), Owner.attachment("a", "eth0"), "0")
    assert not store.reserve(IPAddress("10.9.0.6"), Owner.attachment("a", "eth0"), "0")


@pytest.mark.parametrize(("raised", "expected", "code"), [
    ("InternalServerError", TryAgainLaterError, 11),
    ("ConnectionTimeoutError", TryAgainLaterError, 11),
    ("Etcd3Exception", "IOFailureError", 5),
    ("ValueError", "IOFailureError", 5),
    ("ConnectionFailedError", TryAgainLaterError, 11),
])
def test_etcd_gateway_error_translation(raised: str, expected: Any, code: int) -> None:
    from etcd3gw import exceptions

    from cnicore._errors import IOFailureError

    expected = IOFailureError if expected == "IOFailureError" else expected
    gateway = _Gateway(EtcdStoreConfig(endpoints=("http://127.0.0.1:1", "http://127.0.0.1:2")))
    calls = []

    def post(url: str, json: object = None) -> object:
        calls.append(url)
        if raised == "ValueError":
            raise ValueError("Expecting value: line 1 column 1")
        if raised == "InternalServerError":
            raise exceptions.InternalServerError('{"error":"etcdserver: request timed out","code":14}')
        if raised == "Etcd3Exception":
            raise exceptions.Etcd3Exception('{"error":"etcdserver: key is not provided","code":3}')
        raise getattr(exceptions, raised)("boom")

    for client in gateway._clients:
        client.post = post
    with pytest.raises(expected) as info:
        gateway.call("kv/range", {})
    assert info.value.code == code
    assert info.value.__cause__ is not None
    # Only a refused connection is worth another endpoint; anything else is answered at once.
    assert len(calls) == (2 if raised == "ConnectionFailedError" else 1)
    gateway.close()


def test_etcd_open_from_ipam_store_config(etcd_server, etcd_prefix: str) -> None:  # type: ignore[no-untyped-def]
    from cnicore._errors import InvalidConfigError
    from cnicore.stores._etcd import open_etcd_store

    value = {"type": "etcd", "endpoints": etcd_server.endpoints, "prefix": etcd_prefix, "host": "node-1",
             "blockSize": 28}
    with open_etcd_store(value, "net1") as store:
        assert (store.host, store.config.block_size) == ("node-1", 28)
        assert allocate(store, Owner.attachment("a", "eth0")) == LOW
        assert store.blocks() == {IPNetwork("10.9.0.0/28"): "node-1"}
    with pytest.raises(InvalidConfigError) as info:
        open_etcd_store({**value, "blockSize": 40}, "net1", key="plugins[1].ipam.store")
    assert info.value.key == "plugins[1].ipam.store.blockSize"
    with pytest.raises(InvalidConfigError):
        open_etcd_store(value, "bad/name")
