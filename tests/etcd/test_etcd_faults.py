"""A 3-member etcd cluster losing members under the store: no duplicates, code 11 without quorum, recovery."""

from __future__ import annotations

import threading
import time

import pytest
from netaddr import IPAddress

from cnicore._errors import TryAgainLaterError
from cnicore.stores._etcd import EtcdStore, Owner
from cnicore.stores._etcd_config import EtcdStoreConfig

LOW, HIGH = IPAddress("10.40.0.1"), IPAddress("10.40.0.254")


def allocate(store: EtcdStore, owner: Owner, *, patience: float = 20.0) -> IPAddress:
    """Allocate, retrying on code 11 for up to ``patience`` seconds (a leader election in progress)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            # DEL before retrying an ADD, as a runtime does: an ambiguous failure may have reserved already.
            store.release_owner(owner)
            while True:
                ip = store.first_free(LOW, HIGH)
                assert ip is not None
                if store.reserve(ip, owner, "0"):
                    return ip
        except TryAgainLaterError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def check_no_duplicates(store: EtcdStore, expected: dict[IPAddress, Owner]) -> None:
    stored = [(r.ip, r.owner) for r in store.reservations()]
    assert len({ip for ip, _ in stored}) == len(stored)
    assert dict(stored) == expected


@pytest.mark.slow
def test_etcd_member_loss_and_quorum_loss(etcd_cluster3, etcd_prefix: str) -> None:  # type: ignore[no-untyped-def]
    cluster = etcd_cluster3
    config = EtcdStoreConfig(endpoints=tuple(cluster.endpoints), prefix=etcd_prefix, host="h1", block_size=28,
                             timeout=2.0)
    other = EtcdStoreConfig(endpoints=tuple(reversed(cluster.endpoints)), prefix=etcd_prefix, host="h2",
                            block_size=28, timeout=2.0)
    stores = [EtcdStore("faults", config), EtcdStore("faults", other)]
    held: dict[IPAddress, Owner] = {}
    try:
        def run(count: int, tag: str) -> None:
            for i in range(count):
                store = stores[i % 2]
                owner = Owner.attachment(f"{tag}-{i}", "eth0")
                ip = allocate(store, owner)
                assert ip not in held, f"{ip} handed out twice"
                held[ip] = owner

        run(20, "before")
        # The leader dies in the middle of a run: the run goes on once the other two elect a new one.
        during: dict[IPAddress, Owner] = {}
        stop = threading.Event()
        failures: list[BaseException] = []

        def background() -> None:
            try:
                i = 0
                while not stop.is_set() or i < 20:
                    owner = Owner.attachment(f"during-{i}", "eth0")
                    during[allocate(stores[1], owner)] = owner
                    i += 1
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        thread = threading.Thread(target=background)
        thread.start()
        try:
            time.sleep(0.2)
            victim = cluster.leader()
            victim.kill()
            run(20, "one-down")
        finally:
            stop.set()
            thread.join(timeout=60)
        assert not failures, failures
        assert not set(during) & set(held), "an address was handed out twice"
        held.update(during)
        victim.start()
        cluster.wait_healthy(cluster.members)
        run(10, "restored")
        check_no_duplicates(stores[0], held)

        # Two of three gone: no quorum. The store must say "try again later" (code 11), not hang or corrupt.
        gone = [m for m in cluster.members if m is not cluster.members[0]]
        for member in gone:
            member.kill()
        with pytest.raises(TryAgainLaterError) as info:
            stores[0].reserve(IPAddress("10.40.0.250"), Owner.attachment("noquorum", "eth0"), "0")
        assert info.value.code == 11
        assert info.value.__cause__ is not None
        with pytest.raises(TryAgainLaterError):
            stores[1].reservations()  # a linearizable read needs a quorum too
        with pytest.raises(TryAgainLaterError):
            stores[1].release_owner(Owner.attachment("before-1", "eth0"))

        for member in gone:
            member.start()
        cluster.wait_healthy(cluster.members)
        # The write sent without quorum may or may not have been committed later; it must be whole if it was.
        late = stores[0].reservation(IPAddress("10.40.0.250"))
        if late is not None:
            assert late.owner == Owner.attachment("noquorum", "eth0")
            held[IPAddress("10.40.0.250")] = Owner.attachment("noquorum", "eth0")
        run(10, "after")
        check_no_duplicates(stores[1], held)
        assert len(held) >= 60
    finally:
        for store in stores:
            store.close()
