"""Allocator throughput (figure 1) and the occupancy sweep (figure 2).

Throughput: allocate+release cycles per second through cnicore's host-local
(``add``/``delete`` on a long-lived :class:`~cnicore.stores.FileStore`), with
1, 2, 4 and 8 processes sharing one network directory, against the floor
(:mod:`benchmarks._floor`, the same process counts, the same directory layout)
and against executing the reference ``host-local`` once for ADD and once for
DEL per cycle. The :class:`~cnicore.stores.MemoryStore` row is the upper bound
(no disk at all).

Occupancy: the cost of one ADD and one DEL when a /16 is 0..98% full. The
store is filled by writing reservation files directly, in the reference's
format, from the start of the range: the worst case for an allocator that
scans for a free address, which the reference does.

Opening (figure 1b): what a store opened for each operation pays, as an executed
plugin does, with 0, 1k, 16k and 64k reservations: opening a store from its
persisted index, against opening it by reading every reservation file (no index)
and against opening one on an empty directory; opening after another writer
changed the directory (the index checked entry by entry); and one ADD and one
DEL each on a freshly opened store (imports done, interpreter start excluded:
see the exec figure for that) against executing the reference for them at the
same occupancy.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

from netaddr import IPAddress, IPNetwork

from benchmarks._floor import floor_cycles
from benchmarks._harness import Row, interleave
from cnicore.ipam import IPAMConfig, add, delete, load_ipam_config
from cnicore.stores import FileStore, MemoryStore
from cnicore.stores._file import index_path

__all__ = ["REFERENCE_HOST_LOCAL", "occupancy_rows", "open_rows", "run", "throughput_rows"]

REFERENCE_HOST_LOCAL = "/usr/lib/cni/host-local"
NETWORK = "benchnet"
PROCESS_COUNTS = (1, 2, 4, 8)


def _scratch(prefix: str) -> str:
    """A fresh data directory, alone in a temp directory that also receives the store's index beside it."""
    data_dir = os.path.join(tempfile.mkdtemp(prefix=prefix), "networks")
    os.mkdir(data_dir)
    return data_dir


def _remove_scratch(data_dir: str) -> None:
    """Remove a :func:`_scratch` directory with the persisted indexes beside it."""
    shutil.rmtree(os.path.dirname(data_dir), ignore_errors=True)


def _netconf(data_dir: str, subnet: str) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": NETWORK, "type": "bridge",
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": data_dir}}


def _config(data_dir: str, subnet: str) -> IPAMConfig:
    return load_ipam_config(_netconf(data_dir, subnet))


def _ours_cycles(data_dir: str, count: int, tag: str) -> None:
    config = _config(data_dir, "10.128.0.0/16")
    store = FileStore(data_dir, NETWORK)
    try:
        for i in range(count):
            cid = f"{tag}-{i}"
            add(config, store, cid, "eth0")
            delete(config, store, cid, "eth0")
    finally:
        store.close()


def _floor_worker(data_dir: str, count: int, tag: str) -> None:
    # Each process walks its own stretch of the range, like the allocator's distinct picks.
    offset = int(tag.rsplit("-", 1)[1]) * 4096
    floor_cycles(os.path.join(data_dir, NETWORK), count,
                 first_ip=str(IPAddress("10.128.0.2") + offset), owner=tag)


def _run_procs(target: Callable[[str, int, str], None], procs: int, count: int) -> float:
    """Cycles per second of ``procs`` processes each running ``target`` for ``count`` cycles."""
    base = _scratch("cnicore-bench-alloc-")
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()

    def body(tag: str) -> None:
        go.wait()
        target(base, count, tag)

    try:
        if procs == 1:
            start = time.perf_counter()
            target(base, count, "p-0")
            return count / (time.perf_counter() - start)
        workers = [ctx.Process(target=body, args=(f"p-{i}",)) for i in range(procs)]
        for worker in workers:
            worker.start()
        time.sleep(0.05)  # let every worker reach the start line
        start = time.perf_counter()
        go.set()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        if any(worker.exitcode != 0 for worker in workers):
            raise RuntimeError(f"a benchmark worker failed ({target.__name__}, {procs} processes)")
        return procs * count / elapsed
    finally:
        _remove_scratch(base)


def _memory_rate(count: int) -> float:
    config = _config("/nonexistent", "10.128.0.0/16")
    store = MemoryStore()
    start = time.perf_counter()
    for i in range(count):
        add(config, store, f"m-{i}", "eth0")
        delete(config, store, f"m-{i}", "eth0")
    return count / (time.perf_counter() - start)


def _exec_reference(command: str, stdin: bytes, cid: str) -> float:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/unused",
           "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    start = time.perf_counter()
    proc = subprocess.run([REFERENCE_HOST_LOCAL], input=stdin, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"reference host-local {command} failed: {proc.stdout!r} {proc.stderr!r}")
    return elapsed


def _reference_rate(count: int) -> float:
    import json

    base = tempfile.mkdtemp(prefix="cnicore-bench-ref-")
    stdin = json.dumps(_netconf(base, "10.128.0.0/16")).encode()
    try:
        total = 0.0
        for i in range(count):
            total += _exec_reference("ADD", stdin, f"r-{i}")
            total += _exec_reference("DEL", stdin, f"r-{i}")
        return count / total
    finally:
        shutil.rmtree(base, ignore_errors=True)


def throughput_rows(quick: bool) -> list[Row]:
    """Figure 1: allocate+release cycles per second; then figure 1b (:func:`open_rows`)."""
    return _cycle_rows(quick) + open_rows(quick)


def _cycle_rows(quick: bool) -> list[Row]:
    count = 100 if quick else 1500
    rounds = 1 if quick else 5
    counts = (1, 2) if quick else PROCESS_COUNTS
    rows: list[Row] = []
    have_reference = os.access(REFERENCE_HOST_LOCAL, os.X_OK)
    for procs in counts:
        per_proc = max(10, count // procs)
        fns: dict[str, Callable[[], float]] = {
            "ours": functools.partial(_run_procs, _ours_cycles, procs, per_proc),
            "floor": functools.partial(_run_procs, _floor_worker, procs, per_proc),
        }
        if procs == 1:
            fns["memory"] = lambda: _memory_rate(count)
            if have_reference:
                fns["reference"] = lambda: _reference_rate(3 if quick else 20)
        got = interleave(fns, rounds=rounds)
        plural = "es" if procs > 1 else ""
        rows.append(Row(figure=f"file store allocate+release/s, {procs} process{plural}", ours=got["ours"],
                        anchor=got["floor"], unit="cycles/s", anchor_name=f"floor, {procs} process{plural}",
                        target=0.7, higher_is_better=True, note=f"{per_proc * procs} cycles"))
        if procs == 1:
            if have_reference:
                rows.append(Row(figure="file store allocate+release/s vs exec", ours=got["ours"],
                                anchor=got["reference"], unit="cycles/s",
                                anchor_name="reference host-local exec ADD+DEL", target=50.0,
                                higher_is_better=True))
            rows.append(Row(figure="memory store allocate+release/s (upper bound)", ours=got["memory"],
                            anchor=got["ours"], unit="cycles/s", anchor_name="file store, 1 process",
                            target=None, higher_is_better=True))
    if not have_reference:
        rows.append(Row(figure="file store vs reference exec", ours=0.0, anchor=0.0, unit="cycles/s",
                        anchor_name="absent", target=None, higher_is_better=True,
                        note=f"skipped: {REFERENCE_HOST_LOCAL} not installed"))
    return rows


def _fill(net_dir: str, hosts: list[IPAddress] | range, start: int, stop: int) -> None:
    for i in range(start, stop):
        name = str(IPAddress(hosts[i], 4)) if isinstance(hosts, range) else str(hosts[i])
        fd = os.open(os.path.join(net_dir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, f"fill-{i}\r\neth0".encode())
        finally:
            os.close(fd)


def _ours_ops(data_dir: str, subnet: str, reps: int, tag: str) -> tuple[float, float]:
    """Median seconds of one ADD and of one DEL on a store opened on the filled directory."""
    config = _config(data_dir, subnet)
    store = FileStore(data_dir, NETWORK)
    adds: list[float] = []
    dels: list[float] = []
    try:
        add(config, store, f"{tag}-warm", "eth0")  # the open and first sync are not per-operation costs
        delete(config, store, f"{tag}-warm", "eth0")
        for i in range(reps):
            cid = f"{tag}-{i}"
            start = time.perf_counter()
            add(config, store, cid, "eth0")
            mid = time.perf_counter()
            delete(config, store, cid, "eth0")
            adds.append(mid - start)
            dels.append(time.perf_counter() - mid)
    finally:
        store.close()
    return statistics.median(adds), statistics.median(dels)


def _reference_ops(data_dir: str, subnet: str, reps: int, tag: str) -> tuple[float, float]:
    import json

    stdin = json.dumps(_netconf(data_dir, subnet)).encode()
    adds, dels = [], []
    for i in range(reps):
        adds.append(_exec_reference("ADD", stdin, f"{tag}-{i}"))
        dels.append(_exec_reference("DEL", stdin, f"{tag}-{i}"))
    return statistics.median(adds), statistics.median(dels)


def _chart(points: list[tuple[int, float, float, float, float]], path: str) -> None:
    import importlib

    try:  # optional (the ``bench`` extra): no chart without it
        importlib.import_module("matplotlib").use("Agg")
        plt: Any = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    pct = [p[0] for p in points]
    ax.plot(pct, [p[1] * 1e3 for p in points], "o-", label="cnicore ADD (in-process)")
    ax.plot(pct, [p[2] * 1e3 for p in points], "o--", label="cnicore DEL (in-process)")
    if any(p[3] for p in points):
        ax.plot(pct, [p[3] * 1e3 for p in points], "s-", label="reference ADD (exec)")
        ax.plot(pct, [p[4] * 1e3 for p in points], "s--", label="reference DEL (exec)")
    ax.set_yscale("log")
    ax.set_xlabel("occupancy (%)")
    ax.set_ylabel("time per operation (ms)")
    ax.set_title("host-local cost vs occupancy")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def occupancy_rows(quick: bool, chart_path: str | None = None) -> list[Row]:
    """Figure 2: ADD and DEL cost at rising occupancy, ours vs our empty-store cost and vs the reference."""
    subnet = "10.129.0.0/22" if quick else "10.129.0.0/16"
    percents = (0, 50, 90) if quick else (0, 25, 50, 75, 90, 98)
    reps_ours, reps_ref = (20, 2) if quick else (200, 3)
    have_reference = os.access(REFERENCE_HOST_LOCAL, os.X_OK)
    network = IPNetwork(subnet)
    # The range host-local uses by default: network+1 .. broadcast-1, the gateway (.1) excluded.
    hosts = [IPAddress(v) for v in range(network.first + 2, network.last)]
    base = _scratch("cnicore-bench-occ-")
    net_dir = os.path.join(base, NETWORK)
    os.makedirs(net_dir)
    filled = 0
    points: list[tuple[int, float, float, float, float]] = []
    try:
        for pct in percents:
            want = len(hosts) * pct // 100
            _fill(net_dir, hosts, filled, want)
            filled = want
            # Flush the fill's writeback first: otherwise the journal commit it triggers lands in the
            # measurement (every create waits on it) and one point reads 3-5x for reasons not its own.
            os.sync()
            ours_add, ours_del = _ours_ops(base, subnet, reps_ours, f"o{pct}")
            ref_add = ref_del = 0.0
            if have_reference:
                ref_add, ref_del = _reference_ops(base, subnet, reps_ref, f"r{pct}")
            points.append((pct, ours_add, ours_del, ref_add, ref_del))
    finally:
        _remove_scratch(base)
    _, empty_add, empty_del, _, _ = points[0]
    rows: list[Row] = []
    for pct, ours_add, ours_del, ref_add, ref_del in points:
        rows.append(Row(figure=f"occupancy {pct}% of {subnet}: ADD", ours=ours_add, anchor=empty_add, unit="s",
                        anchor_name="ours, empty", target=2.0, higher_is_better=False))
        rows.append(Row(figure=f"occupancy {pct}% of {subnet}: DEL", ours=ours_del, anchor=empty_del, unit="s",
                        anchor_name="ours, empty", target=2.0, higher_is_better=False))
        if have_reference:
            rows.append(Row(figure=f"occupancy {pct}% of {subnet}: ADD+DEL vs exec", ours=ours_add + ours_del,
                            anchor=ref_add + ref_del, unit="s", anchor_name="reference exec", target=None,
                            higher_is_better=False))
    if chart_path is not None:
        _chart(points, chart_path)
    return rows


def _open_time(data_dir: str, repeat: int) -> float:
    """Median seconds to open (and close) a store on ``data_dir``'s network."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        FileStore(data_dir, NETWORK).close()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _per_operation(data_dir: str, subnet: str, reps: int, tag: str) -> float:
    """Median seconds of an ADD plus a DEL, each on a store opened for it (as an executed plugin does)."""
    config = _config(data_dir, subnet)
    samples = []
    for i in range(reps):
        start = time.perf_counter()
        with FileStore(data_dir, NETWORK) as store:
            add(config, store, f"{tag}-{i}", "eth0")
        with FileStore(data_dir, NETWORK) as store:
            delete(config, store, f"{tag}-{i}", "eth0")
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def open_rows(quick: bool) -> list[Row]:
    """Figure 1b: opening a store per operation, at 0 .. 64k reservations."""
    subnet = "10.130.0.0/16"
    counts = (0, 1000) if quick else (0, 1000, 16000, 64000)
    reps, reps_ref = (5, 2) if quick else (15, 3)
    have_reference = os.access(REFERENCE_HOST_LOCAL, os.X_OK)
    network = IPNetwork(subnet)
    # Integers, not address objects: a benchmark process holding 64k objects would make every collection of the
    # garbage collector (which a large load triggers) cost what a plugin process never pays.
    hosts = range(network.first + 2, network.last)
    base = _scratch("cnicore-bench-open-")
    net_dir = os.path.join(base, NETWORK)
    os.makedirs(net_dir)
    rows: list[Row] = []
    filled = 0
    empty_open = 0.0
    try:
        for count in counts:
            _fill(net_dir, hosts, filled, count)
            filled = count
            os.sync()  # the fill's writeback is not the open's cost (see occupancy_rows)
            saved = index_path(base, NETWORK)
            if saved is not None:
                with contextlib.suppress(FileNotFoundError):
                    saved.unlink()
            start = time.perf_counter()
            FileStore(base, NETWORK).close()  # no persisted index: every file is read (and the index written)
            full = time.perf_counter() - start
            got = interleave({"open": functools.partial(_open_time, base, reps),
                              "ops": functools.partial(_per_operation, base, subnet, reps, f"x{count}")}, rounds=3)
            if count == 0:
                empty_open = got["open"]
            # Someone else (the reference) adds a file: the next open checks the index entry by entry.
            _fill(net_dir, hosts, filled, filled + 1)
            filled += 1
            start = time.perf_counter()
            FileStore(base, NETWORK).close()
            after_change = time.perf_counter() - start
            note = f"{count} reservations"
            rows.append(Row(figure="file store open: persisted index vs reading every file", ours=got["open"],
                            anchor=full, unit="s", anchor_name="open reading every file",
                            target=None if count == 0 else 0.1, higher_is_better=False, note=note))
            rows.append(Row(figure="file store open (persisted index) vs empty", ours=got["open"], anchor=empty_open,
                            unit="s", anchor_name="open, empty", target=None, higher_is_better=False, note=note))
            rows.append(Row(figure="file store open after another writer's change", ours=after_change, anchor=full,
                            unit="s", anchor_name="open reading every file", target=None, higher_is_better=False,
                            note=note + "; entries checked, changed ones read"))
            if have_reference:
                ref_add, ref_del = _reference_ops(base, subnet, reps_ref, f"r{count}")
                rows.append(Row(figure="ADD+DEL, store opened per operation, vs exec", ours=got["ops"],
                                anchor=ref_add + ref_del, unit="s", anchor_name="reference host-local exec",
                                target=None, higher_is_better=False,
                                note=note + "; interpreter start and imports excluded"))
    finally:
        _remove_scratch(base)
    return rows


def run(quick: bool) -> list[Row]:
    """Figures 1, 1b and 2."""
    return throughput_rows(quick) + occupancy_rows(quick)
