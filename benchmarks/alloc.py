"""Allocator throughput (figure 1), the system calls behind it, and the occupancy sweep (figure 2).

Throughput, all in process: allocate+release cycles per second with 1 and 8
processes sharing one network directory, on a file system of its own made for
the run (:func:`benchmarks._harness.fresh_filesystem`), each contender after a
``sync``, in an order that rotates each round. Ours is the file store through its key
API (:class:`~cnicore.stores._filecore.FileStoreCore`: ``reserve_key`` then
``release_owner_keys``, the store's work for one ADD and one DEL), each process
walking its own stretch of the range as the floors do. Its anchors, measured
interleaved in the same run with the same process count and layout, are the
floors of :mod:`benchmarks._floor`: the crash-safe floor (the target, since the
store is crash-safe), the minimal layout floor, and, as information only, the
floor mirroring the reference's writes (cursor with ``O_TRUNC``). Beside them,
as information, the store's own system calls run without its bookkeeping
(:func:`benchmarks._floor.store_calls_cycles`, or where the store watches its
directory with inotify, :func:`~benchmarks._floor.watching_calls_cycles`: see
:func:`store_ceiling`): the most the store's design can reach, against the
crash-safe floor, and the store against it (what its Python costs). Where the
store follows its directory by state, a bound as well: those calls plus only the
bookkeeping a store cannot do without, done by the store's own functions
(:func:`benchmarks._floor.index_bound_cycles`), against the floor, and the store
against it (what its transaction, persisted index and cursor cache cost). Information
rows set against the crash-safe floor what host-local costs through the
library's typed API (``cnicore.ipam.add``/``delete``: configuration, search for
a free address, netaddr and attrs values on top of the store), and, for one
process, the memory store (no disk: an upper bound) and the reference plugin
executed for its ADD and its DEL (exec against in process: unlike work, said in
the row).

System calls: each contender runs under ``strace`` (when installed); after a
warm-up (a long-lived store is in steady use from its third operation),
the calls made while doing 200 cycles are counted and split into ADD and DEL at
the lock: everything from the end of one lock hold to the end of the next
belongs to the next operation.

Occupancy: the cost of one ADD and one DEL when a /16 is 0..98% full, each
against the same on an empty store measured in alternating rounds at that
level. The store is filled by writing reservation files directly, in the
reference's format, from the start of the range: the worst case for an
allocator that scans for a free address, which the reference does.

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
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from netaddr import IPAddress, IPNetwork

from benchmarks._floor import CEILINGS, FLOORS, SYSCALLS_PER_CYCLE
from benchmarks._harness import Row, fresh_filesystem, interleave
from cnicore.ipam import IPAMConfig, add, delete, load_ipam_config
from cnicore.stores import FileStore, MemoryStore
from cnicore.stores._file import index_path
from cnicore.stores._filecore import FileStoreCore

__all__ = ["REFERENCE_HOST_LOCAL", "occupancy_rows", "open_rows", "run", "syscall_rows", "throughput_rows"]

REFERENCE_HOST_LOCAL = "/usr/lib/cni/host-local"
#: The bound beside the ceiling (see benchmarks._floor.index_bound_cycles).
BOUND = "store calls + index"
NETWORK = "benchnet"
PROCESS_COUNTS = (1, 8)
#: Where each process's stretch of the range starts: 10.128.0.2 + 4096 * its number.
FIRST_KEY = 10 << 24 | 128 << 16 | 2
STRETCH = 4096
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _scratch(prefix: str, where: str | None = None) -> str:
    """A fresh data directory, alone in a temp directory (in ``where``, else the system's) that also receives the
    store's index beside it."""
    data_dir = os.path.join(tempfile.mkdtemp(prefix=prefix, dir=where), "networks")
    os.mkdir(data_dir)
    return data_dir


def store_ceiling(where: str | None = None) -> str:
    """The ceiling (a name in ``CEILINGS``) mirroring what a long-lived store does on the file system of ``where``
    (the system's temp directory when None): following its small directory by state where that file system stamps
    every change at fine grain, else watching it with inotify."""
    from cnicore.stores._filecore import stamps_every_change_under

    fine = stamps_every_change_under(tempfile.gettempdir() if where is None else where)
    return "store calls" if fine else "store calls, watching"


def _remove_scratch(data_dir: str) -> None:
    """Remove a :func:`_scratch` directory with the persisted indexes beside it."""
    shutil.rmtree(os.path.dirname(data_dir), ignore_errors=True)


def _netconf(data_dir: str, subnet: str) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": NETWORK, "type": "bridge",
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": data_dir}}


def _config(data_dir: str, subnet: str) -> IPAMConfig:
    return load_ipam_config(_netconf(data_dir, subnet))


def _worker_number(tag: str) -> int:
    return int(tag.rsplit("-", 1)[1])


def _store_cycles(data_dir: str, count: int, tag: str) -> None:
    """The file store's work for ``count`` ADD+DEL cycles, through its key API, on this process's stretch."""
    first = FIRST_KEY + _worker_number(tag) * STRETCH
    store = FileStoreCore(data_dir, NETWORK)
    try:
        for i in range(count):
            owner = f"{tag}-{i} eth0"
            if not store.reserve_key(first + i, owner, "0"):
                raise RuntimeError(f"address {first + i} unexpectedly taken")
            store.release_owner_keys(owner, f"{tag}-{i}")
    finally:
        store.close()


def _hostlocal_cycles(data_dir: str, count: int, tag: str) -> None:
    """``count`` host-local ADD+DEL cycles through the library's typed API (allocator and store)."""
    config = _config(data_dir, "10.128.0.0/16")
    store = FileStore(data_dir, NETWORK)
    try:
        for i in range(count):
            cid = f"{tag}-{i}"
            add(config, store, cid, "eth0")
            delete(config, store, cid, "eth0")
    finally:
        store.close()


def _floor_worker(floor: str) -> Callable[[str, int, str], None]:
    def work(data_dir: str, count: int, tag: str) -> None:
        first = FIRST_KEY + _worker_number(tag) * STRETCH
        {**FLOORS, **CEILINGS}[floor](os.path.join(data_dir, NETWORK), count,
                      first_ip=str(IPAddress(first, 4)), owner=tag)
    work.__name__ = f"floor_{floor}"
    return work


def _run_procs(target: Callable[[str, int, str], None], procs: int, count: int, where: str | None = None) -> float:
    """Cycles per second of ``procs`` processes each running ``target`` for ``count`` cycles (in ``where``)."""
    base = _scratch("cnicore-bench-alloc-", where)
    # Untimed: every contender starts on a filesystem with nothing dirty, so that what the previous one left
    # (inode-table blocks dirtied by its deletions, which ext4 without a journal makes later creations avoid)
    # is not charged to whoever runs next.
    os.sync()
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
    """Figure 1: allocate+release cycles per second and their system calls; then figure 1b (:func:`open_rows`)."""
    return _cycle_rows(quick) + syscall_rows(quick) + open_rows(quick)


def _cycle_rows(quick: bool) -> list[Row]:
    count = 100 if quick else 1200
    rounds = 1 if quick else 9  # as many as the contenders with one process: each runs once in each position
    counts = (1, 2) if quick else PROCESS_COUNTS
    rows: list[Row] = []
    have_reference = os.access(REFERENCE_HOST_LOCAL, os.X_OK)
    for procs in counts:
        per_proc = max(10, count // procs)
        with fresh_filesystem() as (where, place):
            fns: dict[str, Callable[[], float]] = {
                "store": functools.partial(_run_procs, _store_cycles, procs, per_proc, where),
                "host-local": functools.partial(_run_procs, _hostlocal_cycles, procs, per_proc, where),
            }
            ceiling = store_ceiling(where)
            # The bound mirrors a store following its directory by state; where the store watches, none is run.
            bound = BOUND if ceiling == "store calls" else None
            for floor in (*FLOORS, ceiling, *([bound] if bound else [])):
                fns[floor] = functools.partial(_run_procs, _floor_worker(floor), procs, per_proc, where)
            if procs == 1:
                fns["memory"] = lambda: _memory_rate(count)
                if have_reference:
                    fns["reference exec"] = lambda: _reference_rate(3 if quick else 20)
            got = interleave(fns, rounds=rounds)
        plural = "es" if procs > 1 else ""
        who = f"{procs} process{plural}"
        note = f"{per_proc * procs} cycles, in process, {place}"
        rows.append(Row(figure=f"file store allocate+release/s (key API), {who}", ours=got["store"],
                        anchor=got["crash-safe"], unit="cycles/s", anchor_name=f"crash-safe floor, {who}",
                        target=0.7, higher_is_better=True, note=note))
        rows.append(Row(figure=f"file store allocate+release/s (key API), {who}", ours=got["store"],
                        anchor=got["minimal"], unit="cycles/s", anchor_name=f"minimal layout floor, {who}",
                        target=None, higher_is_better=True, note=note + "; that floor is not crash-safe"))
        how = "following its directory by state" if ceiling == "store calls" else "watching its directory"
        rows.append(Row(figure=f"file store's system calls alone (ceiling, info), {who}",
                        ours=got[ceiling], anchor=got["crash-safe"], unit="cycles/s",
                        anchor_name=f"crash-safe floor, {who}", target=None, higher_is_better=True,
                        note=note + f"; the store's calls ({how}) without its bookkeeping: the most its design "
                                    "can reach"))
        rows.append(Row(figure=f"file store allocate+release/s (key API), {who}", ours=got["store"],
                        anchor=got[ceiling], unit="cycles/s", anchor_name=f"its system calls alone, {who}",
                        target=None, higher_is_better=True, note=note + "; what its Python bookkeeping costs"))
        if bound is not None:
            rows.append(Row(figure=f"file store's calls and least bookkeeping (bound, info), {who}",
                            ours=got[bound], anchor=got["crash-safe"], unit="cycles/s",
                            anchor_name=f"crash-safe floor, {who}", target=None, higher_is_better=True,
                            note=note + "; the ceiling's calls plus only the bookkeeping a store cannot do without "
                                        "(owner checked, index and signatures kept, lookup by owner), done by the "
                                        "store's own functions: about the most a store in Python can reach"))
            rows.append(Row(figure=f"file store allocate+release/s (key API), {who}", ours=got["store"],
                            anchor=got[bound], unit="cycles/s", anchor_name=f"its calls and least bookkeeping, {who}",
                            target=None, higher_is_better=True,
                            note=note + "; what its transaction, persisted index and cursor cache cost"
                                        + (", and taking in the others' changes" if procs > 1 else "")))
        rows.append(Row(figure=f"host-local add+delete/s through the typed API, {who}", ours=got["host-local"],
                        anchor=got["crash-safe"], unit="cycles/s", anchor_name=f"crash-safe floor, {who}",
                        target=None, higher_is_better=True,
                        note=note + "; adds the allocator's search, netaddr and attrs values"))
        rows.append(Row(figure=f"floor mirroring the reference's writes (info), {who}", ours=got["reference"],
                        anchor=got["crash-safe"], unit="cycles/s", anchor_name=f"crash-safe floor, {who}",
                        target=None, higher_is_better=True,
                        note="cursor rewritten with O_TRUNC as the reference does: ext4 flushes it; no floor"))
        if procs == 1:
            rows.append(Row(figure="memory store add+delete/s through the typed API (upper bound)",
                            ours=got["memory"], anchor=got["host-local"], unit="cycles/s",
                            anchor_name="file store through the typed API, 1 process", target=None,
                            higher_is_better=True, note="in process, no disk"))
            if have_reference:
                rows.append(Row(figure="host-local add+delete/s in process vs the reference executed",
                                ours=got["host-local"], anchor=got["reference exec"], unit="cycles/s",
                                anchor_name="reference host-local exec, ADD+DEL per cycle", target=None,
                                higher_is_better=True, note="in process against exec: unlike work"))
    if not have_reference:
        rows.append(Row(figure="host-local in process vs the reference executed", ours=0.0, anchor=0.0,
                        unit="cycles/s", anchor_name="absent", target=None, higher_is_better=True,
                        note=f"skipped: {REFERENCE_HOST_LOCAL} not installed"))
    return rows


# ----------------------------------------------------------------------------------------------- system calls

_MARK = "/nonexistent-cnicore-bench-mark"

# Run under strace: a warm-up, a marker, ``cycles`` measured cycles, a marker. argv: repo, contender, dir, cycles.
_SYSCALL_CHILD = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from benchmarks import alloc
contender, data_dir, cycles = sys.argv[2], sys.argv[3], int(sys.argv[4])
mark = lambda: os.access(alloc._MARK, os.F_OK)
if contender == "store":
    run = alloc._store_cycles
elif contender == "host-local":
    run = alloc._hostlocal_cycles
else:
    run = alloc._floor_worker(contender)
if contender in ("store", "host-local"):
    # One long-lived store: warm it up in this process, then measure in the same one.
    from cnicore.ipam import add, delete
    from cnicore.stores import FileStore
    from cnicore.stores._filecore import FileStoreCore
    first = alloc.FIRST_KEY
    if contender == "store":
        store = FileStoreCore(data_dir, alloc.NETWORK)
        def cycle(i):
            owner = f"c-{i} eth0"
            store.reserve_key(first + i, owner, "0")
            store.release_owner_keys(owner, f"c-{i}")
    else:
        store = FileStore(data_dir, alloc.NETWORK)
        config = alloc._config(data_dir, "10.128.0.0/16")
        def cycle(i):
            add(config, store, f"c-{i}", "eth0")
            delete(config, store, f"c-{i}", "eth0")
    for i in range(50):
        cycle(i)
    mark()
    for i in range(50, 50 + cycles):
        cycle(i)
    mark()
    store.close()
else:
    # A floor holds its lock and directory for its whole run: open them (the warm-up), then the cycles.
    from benchmarks import _floor
    import fcntl
    real_flock = fcntl.flock
    takes = [0]
    def flock(fd, op):
        if op == fcntl.LOCK_EX:
            if takes[0] == 100:  # the ADD of the first measured cycle
                mark()
            takes[0] += 1
        return real_flock(fd, op)
    _floor.fcntl.flock = flock
    run(data_dir, 50 + cycles, "p-0")
    mark()
"""


def _strace_counts(contender: str, cycles: int) -> tuple[float, float]:
    """Mean system calls per ADD and per DEL of ``contender`` in steady state, counted with strace."""
    base = _scratch("cnicore-bench-strace-")
    trace = os.path.join(os.path.dirname(base), "trace")
    try:
        subprocess.run(["strace", "-f", "-qq", "-o", trace, sys.executable, "-c", _SYSCALL_CHILD, REPO,
                        contender, base, str(cycles)], check=True, capture_output=True)
        with open(trace, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    finally:
        _remove_scratch(base)
    marks = [i for i, line in enumerate(lines) if _MARK in line]
    if len(marks) != 2:
        raise RuntimeError(f"strace of {contender}: expected two markers, found {len(marks)}")
    window = [line for line in lines[marks[0] + 1:marks[1]] if "+++" not in line and "---" not in line]
    # Split at each release of the lock: the calls up to and including it are one operation's.
    ops: list[int] = []
    pending = 0
    for line in window:
        if "<... " in line:  # the second half of a call strace printed in two parts
            continue
        pending += 1
        if "flock(" in line and "LOCK_UN" in line:
            ops.append(pending)
            pending = 0
    if len(ops) != 2 * cycles:
        raise RuntimeError(f"strace of {contender}: {len(ops)} lock holds for {cycles} cycles")
    return statistics.fmean(ops[0::2]), statistics.fmean(ops[1::2])


def syscall_rows(quick: bool) -> list[Row]:
    """System calls per ADD and per DEL: the file store (key API) and host-local (typed API) beside the floors."""
    if shutil.which("strace") is None:
        return [Row(figure="system calls per ADD and per DEL", ours=0.0, anchor=0.0, unit="syscalls",
                    anchor_name="absent", target=None, higher_is_better=False,
                    note="skipped: strace not installed (make sysdeps installs it)")]
    cycles = 20 if quick else 200
    ceiling_name = store_ceiling()
    bound = [BOUND] if ceiling_name == "store calls" else []
    counts = {name: _strace_counts(name, cycles) for name in ("store", "host-local", *FLOORS, ceiling_name, *bound)}
    floors = ", ".join(f"{name} floor {counts[name][0]:.0f} / {counts[name][1]:.0f}" for name in FLOORS)
    for name, (adds, dels) in SYSCALLS_PER_CYCLE.items():
        if name in counts and (round(counts[name][0]), round(counts[name][1])) != (adds, dels):
            raise RuntimeError(f"{name} made {counts[name]} calls, not the documented {(adds, dels)}")
    ceiling = counts[ceiling_name]
    if (round(counts["store"][0]), round(counts["store"][1])) != SYSCALLS_PER_CYCLE[ceiling_name]:
        raise RuntimeError(f"the file store now makes {counts['store']} calls per ADD and DEL: its ceiling "
                           f"({CEILINGS[ceiling_name].__name__}) makes {SYSCALLS_PER_CYCLE[ceiling_name]}")
    rows: list[Row] = []
    for index, op in enumerate(("ADD", "DEL")):
        rows.append(Row(figure=f"system calls per {op}, file store (key API)", ours=counts["store"][index],
                        anchor=counts["crash-safe"][index], unit="syscalls", anchor_name="crash-safe floor",
                        target=None, higher_is_better=False,
                        note=f"strace, mean of {cycles} in steady state; ADD / DEL: {floors}; "
                             f"the store's calls alone (ceiling) {ceiling[0]:.0f} / {ceiling[1]:.0f}"))
        rows.append(Row(figure=f"system calls per {op}, host-local through the typed API",
                        ours=counts["host-local"][index], anchor=counts["crash-safe"][index], unit="syscalls",
                        anchor_name="crash-safe floor", target=None, higher_is_better=False,
                        note=f"strace, mean of {cycles} in steady state"))
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
    """Figure 2: ADD and DEL cost at rising occupancy, ours vs our empty-store cost and vs the reference.

    The empty-store anchor is measured at every level, alternating with the filled store in rounds: the file
    system's speed drifts on a shared machine (creates slow to a millisecond for seconds at a time while the
    journal commits others' work), and an anchor measured once, before the first fill, made a level measured
    in such a stretch read several times its cost (the floor slows alike there).
    """
    subnet = "10.129.0.0/22" if quick else "10.129.0.0/16"
    percents = (0, 50, 90) if quick else (0, 50, 90, 98)
    reps_ours, reps_ref = (20, 2) if quick else (200, 3)
    rounds = 5
    have_reference = os.access(REFERENCE_HOST_LOCAL, os.X_OK)
    network = IPNetwork(subnet)
    # The range host-local uses by default: network+1 .. broadcast-1, the gateway (.1) excluded.
    hosts = [IPAddress(v) for v in range(network.first + 2, network.last)]
    base = _scratch("cnicore-bench-occ-")
    empty_base = _scratch("cnicore-bench-occ-empty-")
    net_dir = os.path.join(base, NETWORK)
    os.makedirs(net_dir)
    filled = 0
    # (occupancy, ours ADD, ours DEL, empty ADD, empty DEL, reference ADD, reference DEL)
    points: list[tuple[int, float, float, float, float, float, float]] = []
    try:
        for pct in percents:
            want = len(hosts) * pct // 100
            _fill(net_dir, hosts, filled, want)
            filled = want
            # Flush the fill's writeback first: otherwise the journal commit it triggers lands in the
            # measurement (every create waits on it).
            os.sync()
            samples: dict[str, list[float]] = {"add": [], "del": [], "empty add": [], "empty del": []}
            for r in range(rounds):
                ours_add, ours_del = _ours_ops(base, subnet, reps_ours // rounds, f"o{pct}-{r}")
                empty_add, empty_del = _ours_ops(empty_base, subnet, reps_ours // rounds, f"e{pct}-{r}")
                for name, value in (("add", ours_add), ("del", ours_del), ("empty add", empty_add),
                                    ("empty del", empty_del)):
                    samples[name].append(value)
            got = {name: statistics.median(values) for name, values in samples.items()}
            ref_add = ref_del = 0.0
            if have_reference:
                ref_add, ref_del = _reference_ops(base, subnet, reps_ref, f"r{pct}")
            points.append((pct, got["add"], got["del"], got["empty add"], got["empty del"], ref_add, ref_del))
    finally:
        _remove_scratch(base)
        _remove_scratch(empty_base)
    rows: list[Row] = []
    anchor_name = "ours, empty, alternating with this level"
    for pct, ours_add, ours_del, empty_add, empty_del, ref_add, ref_del in points:
        rows.append(Row(figure=f"occupancy {pct}% of {subnet}: ADD", ours=ours_add, anchor=empty_add, unit="s",
                        anchor_name=anchor_name, target=2.0, higher_is_better=False, note="in process"))
        rows.append(Row(figure=f"occupancy {pct}% of {subnet}: DEL", ours=ours_del, anchor=empty_del, unit="s",
                        anchor_name=anchor_name, target=2.0, higher_is_better=False, note="in process"))
        if have_reference:
            rows.append(Row(figure=f"occupancy {pct}% of {subnet}: ADD+DEL in process vs the reference executed",
                            ours=ours_add + ours_del, anchor=ref_add + ref_del, unit="s",
                            anchor_name="reference host-local, exec ADD + exec DEL", target=None,
                            higher_is_better=False, note="unlike work: an exec costs a process start"))
    if chart_path is not None:
        _chart([(pct, a, d, ra, rd) for pct, a, d, _, _, ra, rd in points], chart_path)
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
            note = f"{count} reservations; in process"
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
                rows.append(Row(figure="ADD+DEL in process, store opened per operation, vs the reference executed",
                                ours=got["ops"], anchor=ref_add + ref_del, unit="s",
                                anchor_name="reference host-local, exec ADD + exec DEL",
                                target=None, higher_is_better=False,
                                note=note + "; interpreter start and imports excluded"))
    finally:
        _remove_scratch(base)
    return rows


def run(quick: bool) -> list[Row]:
    """Figures 1, 1b and 2."""
    return throughput_rows(quick) + occupancy_rows(quick)
