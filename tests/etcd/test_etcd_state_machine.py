"""The etcd store and the memory store side by side: same answers, same reservations, nothing owned twice.

One etcd server serves every example; each example gets its own key prefix.
With block affinity the etcd store may offer a different address than the
memory store's lowest free one (its own block's), or a taken one from a stale
view of its blocks; so an allocation checks that the offered address is in the
window, that reserve() succeeds exactly when the reference has it free (the
reference then takes the same address), and that "full" is said only when the
reference is full. Without affinity the two must offer the very same address.
"""

from __future__ import annotations

import uuid

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from netaddr import IPAddress
from support import examples

from cnicore.stores._etcd import EtcdStore, Owner
from cnicore.stores._etcd_config import EtcdStoreConfig
from cnicore.stores._memory import MemoryStore

WINDOWS = {
    4: (IPAddress("10.20.0.1"), IPAddress("10.20.0.22")),
    6: (IPAddress("fd00:20::1"), IPAddress("fd00:20::16")),
}
CONTAINERS = ["c0", "c1", "c2", "c3"]
IFNAMES = ["eth0", "net1", None]
OTHER = "h-other"

owners = st.builds(lambda cid, ifname: Owner(container_id=cid, ifname=ifname),
                   st.sampled_from(CONTAINERS), st.sampled_from(IFNAMES))
foreign_owners = st.builds(lambda cid: Owner(container_id=cid, ifname="eth0"), st.sampled_from(["o0", "o1"]))
families = st.sampled_from([4, 6])


def addresses(family: int) -> st.SearchStrategy[IPAddress]:
    low, high = WINDOWS[family]
    # A little outside the window too: reserve() must not care about windows.
    return st.integers(low.value - 1, high.value + 1).map(lambda v: IPAddress(v, family))


any_address = families.flatmap(addresses)


class EtcdAgainstMemory(RuleBasedStateMachine):
    affinity = True

    def __init__(self, endpoints: list[str]) -> None:
        super().__init__()
        prefix = f"/cnicore-sm/{uuid.uuid4().hex}"
        self.configs = {
            host: EtcdStoreConfig(endpoints=tuple(endpoints), prefix=prefix, host=host, block_size=29,
                                  block_size6=125, block_affinity=self.affinity)
            for host in ("h-main", OTHER)
        }
        self.store = EtcdStore("sm", self.configs["h-main"])
        self.other = EtcdStore("sm", self.configs[OTHER])
        self.model = MemoryStore()
        self.foreign: set[Owner] = set()  # owners whose reservations the other host made
        self.last: dict[str, IPAddress] = {}

    def teardown(self) -> None:
        self.store.close()
        self.other.close()

    def _allocate(self, store: EtcdStore, owner: Owner, family: int, range_id: str) -> IPAddress | None:
        low, high = WINDOWS[family]
        for _ in range(64):
            offered = store.first_free(low, high)
            expected = self.model.first_free(low, high)
            if offered is None:
                assert expected is None, "etcd store says full, the reference has room"
                return None
            assert low <= offered <= high
            if not self.affinity:
                assert offered == expected
            # With blocks, a stale local view may offer a taken address: reserve() must then refuse it.
            free = self.model.reservation(offered) is None
            if store.reserve(offered, owner, range_id):
                assert free, f"{offered} was reserved twice"
                assert self.model.reserve(offered, owner, range_id)
                if store is self.store:
                    self.last[range_id] = offered
                return offered
            assert not free, f"reserve() refused the free address {offered}"
        raise AssertionError("no progress")

    @rule(owner=owners, family=families)
    def allocate(self, owner: Owner, family: int) -> None:
        self._allocate(self.store, owner, family, "0")

    @rule(owner=foreign_owners, family=families)
    def allocate_on_other_host(self, owner: Owner, family: int) -> None:
        if self._allocate(self.other, owner, family, "x") is not None:
            self.foreign.add(owner)

    @rule(owner=owners, ip=any_address)
    def request_specific(self, owner: Owner, ip: IPAddress) -> None:
        ours = self.store.reserve(ip, owner, "1")
        assert ours == self.model.reserve(ip, owner, "1")
        if ours:
            self.last["1"] = ip

    @rule(owner=owners | foreign_owners, ip=any_address)
    def release(self, owner: Owner, ip: IPAddress) -> None:
        assert self.store.release(ip, owner) == self.model.release(ip, owner)

    @rule(owner=owners)
    def release_owner(self, owner: Owner) -> None:
        assert sorted(self.store.release_owner(owner)) == sorted(self.model.release_owner(owner))

    @rule(owner=owners)
    def find_owner(self, owner: Owner) -> None:
        assert list(self.store.find_owner(owner)) == list(self.model.find_owner(owner))

    @rule(valid=st.sets(owners, max_size=4))
    def gc(self, valid: set[Owner]) -> None:
        released = self.store.gc(valid)
        containers = {o.container_id for o in valid}
        expected = []
        for reservation in self.model.reservations():
            owner = reservation.owner
            if owner is None or owner in self.foreign:
                continue
            alive = owner.container_id in containers if owner.legacy else owner in valid
            if not alive:
                assert self.model.release(reservation.ip, owner)
                expected.append(reservation.ip)
        assert sorted(released) == sorted(expected)

    @rule()
    def release_other_host(self) -> None:
        released = self.store.release_host(OTHER)
        expected = 0
        for reservation in self.model.reservations():
            if reservation.owner in self.foreign:
                assert reservation.owner is not None
                assert self.model.release(reservation.ip, reservation.owner)
                expected += 1
        assert released == expected
        self.foreign.clear()
        assert OTHER not in self.store.blocks().values()

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = EtcdStore("sm", self.configs["h-main"])

    @precondition(lambda self: len(self.model) < 30)
    @rule(owner=owners, family=families)
    def exhaust(self, owner: Owner, family: int) -> None:
        while self._allocate(self.store, owner, family, "0") is not None:
            pass
        low, high = WINDOWS[family]
        assert self.model.first_free(low, high) is None

    @invariant()
    def same_reservations(self) -> None:
        ours = [(r.ip, r.owner) for r in self.store.reservations()]
        assert len({ip for ip, _ in ours}) == len(ours), "an address is reserved twice"
        assert sorted(ours) == sorted((r.ip, r.owner) for r in self.model.reservations())

    @invariant()
    def same_last_reserved(self) -> None:
        for range_id in ("0", "1"):
            assert self.store.last_reserved(range_id) == self.last.get(range_id)


class EtcdAgainstMemoryNoAffinity(EtcdAgainstMemory):
    affinity = False


# Every step is a few etcd round trips: a fifth of the profile's examples under "ci" (12), all of them under
# "thorough".
SETTINGS = settings(max_examples=examples(scale=1 / 5), stateful_step_count=25, deadline=None)


def test_etcd_store_state_machine_with_blocks(etcd_server) -> None:  # type: ignore[no-untyped-def]
    run_state_machine_as_test(lambda: EtcdAgainstMemory(etcd_server.endpoints),  # type: ignore[arg-type]
                               settings=SETTINGS)


def test_etcd_store_state_machine_without_blocks(etcd_server) -> None:  # type: ignore[no-untyped-def]
    run_state_machine_as_test(lambda: EtcdAgainstMemoryNoAffinity(etcd_server.endpoints),  # type: ignore[arg-type]
                               settings=SETTINGS)
