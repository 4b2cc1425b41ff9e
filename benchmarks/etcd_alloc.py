"""Cluster-wide allocation on etcd: allocations per second for 1, 4 and 16 hosts, with and without blocks.

Each simulated host is a thread with its own store object (its own connection
and local view), all allocating from one /16 at once. The anchor is the file
store with the same number of threads sharing one directory (one host's
store, serialised by its flock), measured interleaved in the same run. The
etcd server is a single member on loopback with its data in /dev/shm when
possible: the figures measure the store's design (round trips, contention,
retries), not a disk.

"blocks" is the default design (per-host /26 blocks, local view, per-address
create-if-absent); "no blocks" offers every host the lowest free address of
the whole range, read from etcd each time, so hosts collide on the same
address and retry.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from netaddr import IPAddress

from benchmarks._harness import Row, interleave, machine_summary, render_markdown
from cnicore.stores._etcd import EtcdStore, Owner
from cnicore.stores._etcd_config import EtcdStoreConfig
from cnicore.stores._file import FileStore

__all__ = ["run"]

ETCD = "/usr/bin/etcd"
LOW, HIGH = IPAddress("10.200.0.1"), IPAddress("10.200.255.254")
HOSTS = (1, 4, 16)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _etcd_server() -> Iterator[str]:
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    base = tempfile.mkdtemp(prefix="cnicore-bench-etcd-", dir=shm)
    client, peer = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
    proc = subprocess.Popen(
        [ETCD, "--name", "b0", "--data-dir", os.path.join(base, "data"), "--listen-client-urls", client,
         "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"b0={peer}", "--logger", "zap", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(client + "/health", timeout=1) as resp:
                    if b'"true"' in resp.read():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("etcd did not start")
            time.sleep(0.05)
        yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.allocated = 0
        self.lost_races = 0


def _allocate_loop(store: EtcdStore | FileStore, host: str, count: int, counters: _Counters) -> None:
    allocated = lost = 0
    for i in range(count):
        owner = Owner.attachment(f"{host}-{i}", "eth0")
        with store.transaction():
            while True:
                ip = store.first_free(LOW, HIGH)
                if ip is None:
                    raise RuntimeError("range exhausted in the benchmark")
                if store.reserve(ip, owner, "0"):
                    allocated += 1
                    break
                lost += 1
    with counters.lock:
        counters.allocated += allocated
        counters.lost_races += lost


def _timed_threads(stores: list[EtcdStore | FileStore], per_host: int) -> tuple[float, _Counters]:
    counters = _Counters()
    threads = [threading.Thread(target=_allocate_loop, args=(store, f"h{i}", per_host, counters))
               for i, store in enumerate(stores)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for store in stores:
        store.close()
    return counters.allocated / elapsed, counters


def _etcd_rate(endpoint: str, hosts: int, per_host: int, affinity: bool, races: list[int]) -> Callable[[], float]:
    def measure() -> float:
        prefix = f"/cnicore-bench/{uuid.uuid4().hex}"
        stores: list[EtcdStore | FileStore] = [
            EtcdStore("bench", EtcdStoreConfig(endpoints=(endpoint,), prefix=prefix, host=f"h{i}",
                                               block_affinity=affinity, timeout=30))
            for i in range(hosts)]
        rate, counters = _timed_threads(stores, per_host)
        races.append(counters.lost_races)
        return rate
    return measure


def _file_rate(hosts: int, per_host: int) -> Callable[[], float]:
    def measure() -> float:
        base = tempfile.mkdtemp(prefix="cnicore-bench-file-")
        data_dir = os.path.join(base, "data")  # the store's index goes beside it, inside base
        try:
            stores: list[EtcdStore | FileStore] = [FileStore(data_dir, "bench") for _ in range(hosts)]
            rate, _ = _timed_threads(stores, per_host)
            return rate
        finally:
            shutil.rmtree(base, ignore_errors=True)
    return measure


def run(quick: bool) -> list[Row]:
    """Measure; returns one row per (hosts, blocks/no blocks). Empty when etcd is not installed."""
    if not os.access(ETCD, os.X_OK):
        return []
    total = 240 if quick else 320  # allocations per measurement, split over the hosts
    rounds = 1 if quick else 2
    rows: list[Row] = []
    with _etcd_server() as endpoint:
        for hosts in HOSTS:
            per_host = max(1, total // hosts)
            races: dict[str, list[int]] = {"blocks": [], "no blocks": []}
            results = interleave({
                "file": _file_rate(hosts, per_host),
                "blocks": _etcd_rate(endpoint, hosts, per_host, True, races["blocks"]),
                "no blocks": _etcd_rate(endpoint, hosts, per_host, False, races["no blocks"]),
            }, rounds=rounds)
            for design in ("blocks", "no blocks"):
                lost = races[design]
                rows.append(Row(
                    figure=f"etcd store allocations/s, {hosts} host{'s' if hosts > 1 else ''}, {design}",
                    ours=results[design], anchor=results["file"], unit="allocs/s",
                    anchor_name=f"file store, {hosts} thread{'s' if hosts > 1 else ''}",
                    target=None, higher_is_better=True,
                    note=f"in process, {per_host * hosts} allocations, lost races per run {sorted(lost)}",
                    extra={"lost_races": float(sum(lost)) / max(1, len(lost))},
                ))
    return rows


if __name__ == "__main__":
    import sys

    print(render_markdown(run("--quick" in sys.argv), title="etcd store allocation", machine=machine_summary()))
