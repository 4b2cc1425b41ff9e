"""Eight processes, eight hosts, one range: concurrent allocate/release never hands out an address twice.

Each process records, per address, when it held it (from the successful
reserve to just before its release) on the system-wide monotonic clock; no two
holders' intervals of one address may overlap. At the end, etcd holds exactly
what the processes believe they hold: nothing lost, nothing extra.
"""

from __future__ import annotations

import itertools
import multiprocessing
import random
import time
import uuid
from typing import Any

import pytest
from netaddr import IPAddress

from cnicore._errors import TryAgainLaterError
from cnicore.stores._etcd import EtcdStore, Owner
from cnicore.stores._etcd_config import EtcdStoreConfig

HOSTS = 8
STEPS = 40
LOW, HIGH = IPAddress("10.30.0.1"), IPAddress("10.30.0.100")  # 100 addresses for up to 8 x 20 wanted


def _worker(endpoints: list[str], prefix: str, host_index: int, affinity: bool, out: Any) -> None:
    rng = random.Random(host_index)
    host = f"host{host_index}"
    store = EtcdStore("conc", EtcdStoreConfig(endpoints=tuple(endpoints), prefix=prefix, host=host,
                                              block_size=28, block_affinity=affinity))
    held: dict[IPAddress, tuple[Owner, float]] = {}
    intervals: list[tuple[int, str, float, float]] = []
    exhausted = lost_races = 0
    try:
        for step in range(STEPS):
            if held and (rng.random() < 0.4 or len(held) >= 20):
                ip = rng.choice(sorted(held))
                owner, since = held.pop(ip)
                intervals.append((ip.value, host, since, time.monotonic()))
                assert store.release(ip, owner), f"{host} lost {ip}"
                continue
            owner = Owner.attachment(f"{host}-c{step}", "eth0")
            while True:
                ip = store.first_free(LOW, HIGH)
                if ip is None:
                    exhausted += 1
                    break
                if store.reserve(ip, owner, "0"):
                    held[ip] = (owner, time.monotonic())
                    break
                lost_races += 1
        out.put(("ok", host, intervals, [(ip.value, o.container_id, since) for ip, (o, since) in held.items()],
                 exhausted, lost_races))
    except (AssertionError, TryAgainLaterError) as exc:
        out.put(("error", host, repr(exc)))
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("affinity", [True, False], ids=["blocks", "no-blocks"])
def test_etcd_eight_hosts_concurrently(etcd_server, affinity: bool) -> None:  # type: ignore[no-untyped-def]
    prefix = f"/cnicore-conc/{uuid.uuid4().hex}"
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(etcd_server.endpoints, prefix, i, affinity, out))
             for i in range(HOSTS)]
    try:
        for proc in procs:
            proc.start()
        results = [out.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
    errors = [r for r in results if r[0] != "ok"]
    assert not errors, errors

    holdings: dict[int, str] = {}
    by_address: dict[int, list[tuple[float, float, str]]] = {}
    now = time.monotonic()
    for _, host, intervals, held, _exhausted, _races in results:
        for value, holder, start, end in intervals:
            by_address.setdefault(value, []).append((start, end, holder))
        for value, container_id, since in held:
            assert value not in holdings, f"{IPAddress(value, 4)} held by {holdings[value]} and {container_id}"
            holdings[value] = container_id
            by_address.setdefault(value, []).append((since, now, host))
    for value, spans in by_address.items():
        spans.sort()
        for (_, end, first), (start, _, second) in itertools.pairwise(spans):
            assert end <= start, f"{IPAddress(value, 4)} held by {first} and {second} at once"

    store = EtcdStore("conc", EtcdStoreConfig(endpoints=tuple(etcd_server.endpoints), prefix=prefix, host="check"))
    try:
        stored = {r.ip.value: r.owner.container_id for r in store.reservations() if r.owner is not None}
        assert stored == holdings
        assert sum(1 for _ in store.reservations()) == len(holdings)
        if affinity:
            assert len(set(store.blocks().values())) > 1
    finally:
        store.close()
