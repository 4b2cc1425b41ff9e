"""The part of the link-setup benchmark that runs inside the namespace playing the host.

Started by :mod:`benchmarks.links` as ``ip netns exec <host ns> python -m
benchmarks._links_child <json>``; prints one JSON object: for each variant of
the network (``seed``: the Mesos example's bridge network with ``ipMasq``;
``links``: the same without masquerading) and each mode, the total seconds each
contender's ADDs and DELs took. Contenders run interleaved chunk by chunk:
cnicore's :class:`BridgePlugin` in process on each real backend (long-lived:
backend and store stay open; masquerading through the iptables firewall, in
this namespace, as the reference's), and the reference Go ``bridge`` executed
per operation (it executes its host-local and runs iptables itself).

Modes: ``sequential`` (one container at a time; every contender, the
``sequential_backends`` too); ``threads`` (``parallel``
containers at once on as many threads of this process sharing one plugin, as a
server would; the reference: as many concurrent execs); ``processes``
(cnicore: as many long-lived worker processes, one plugin each, forked
before any thread exists; the reference: as many concurrent execs again,
measured in this mode's own groups, interleaved with cnicore's).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cnicore.plugins import BridgePlugin, PluginRequest

#: The variants measured: name -> whether the network masquerades.
VARIANTS = {"seed": True, "links": False}


def _conf(data_dir: str, bridge: str, masq: bool) -> dict[str, Any]:
    # The seed's bridge network (mybridge0 on a bridge of its own, host-local 10.23.0.0/24, gateway).
    conf: dict[str, Any] = {
        "cniVersion": "1.0.0", "name": "mybridge0", "type": "bridge", "bridge": bridge, "isGateway": True,
        "ipam": {"type": "host-local", "subnet": "10.23.0.0/24", "routes": [{"dst": "0.0.0.0/0"}],
                 "dataDir": data_dir}}
    if masq:
        conf["ipMasq"] = True
    return conf


def _request(command: str, netns: str, cid: str, conf: dict[str, Any]) -> PluginRequest:
    return PluginRequest(command=command, container_id=cid, netns=netns, ifname="eth0", config=conf,
                         config_bytes=json.dumps(conf).encode(), cni_version="1.0.0")


_WORKER_PLUGINS: dict[str, BridgePlugin] = {}


def _init_worker(names: list[str]) -> None:
    """A worker process: one plugin per backend, kept for the whole run."""
    import importlib

    backends = importlib.import_module("cnicore.backends")
    for name in names:
        _WORKER_PLUGINS[name] = BridgePlugin(backends.select_backend(name), backends.IptablesFirewall())


def _worker_one(task: tuple[str, str, str, str, dict[str, Any]]) -> float:
    name, command, netns, cid, conf = task
    plugin = _WORKER_PLUGINS[name]
    start = time.perf_counter()
    request = _request(command, netns, cid, conf)
    if command == "ADD":
        plugin.add(request)
    else:
        plugin.delete(request)
    return time.perf_counter() - start


def main() -> int:
    spec = json.loads(sys.argv[1])
    namespaces: list[str] = spec["namespaces"]
    chunk: int = spec["chunk"]
    bridge: str = spec["bridge"]
    reference: str = spec["reference"]
    work: str = spec["work"]
    parallel: int = spec["parallel"]
    # The worker processes are forked first, while this process runs no other thread.
    pool = (multiprocessing.get_context("fork").Pool(parallel, initializer=_init_worker,
                                                     initargs=(spec["backends"],))
            if parallel > 1 else None)
    import importlib

    backends = importlib.import_module("cnicore.backends")
    # One plugin per backend, shared by the threads. The firewall works in this process's namespace:
    # the one playing the host.
    sequential_only: list[str] = spec.get("sequential_backends", [])
    contenders: dict[str, Any] = {name: BridgePlugin(backends.select_backend(name), backends.IptablesFirewall())
                                  for name in [*spec["backends"], *sequential_only]}
    if reference:
        contenders["reference"] = reference
    concurrent = [name for name in contenders if name not in sequential_only]

    result: dict[str, Any] = {}
    try:
        for variant in spec["variants"]:
            masq = VARIANTS[variant]

            def conf_of(name: str, variant: str = variant, masq: bool = masq) -> dict[str, Any]:
                return _conf(os.path.join(work, f"data-{variant}-{name}"), bridge, masq)

            def one(name: str, command: str, netns: str, cid: str,
                    conf_of: Callable[[str], dict[str, Any]] = conf_of) -> float:
                conf = conf_of(name)
                target = contenders[name]
                start = time.perf_counter()
                if isinstance(target, str):
                    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
                           "CNI_PATH": os.path.dirname(target), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
                    proc = subprocess.run([target], input=json.dumps(conf).encode(), env=env, capture_output=True,
                                          check=False)
                    if proc.returncode != 0:
                        raise RuntimeError(f"reference bridge {command} failed: {proc.stdout!r} {proc.stderr!r}")
                elif command == "ADD":
                    target.add(_request(command, netns, cid, conf))
                else:
                    target.delete(_request(command, netns, cid, conf))
                return time.perf_counter() - start

            result[variant] = _sequential(list(contenders), namespaces, chunk, variant, one)
            if pool is not None:
                result[f"{variant}-threads"] = _threads(concurrent, namespaces, parallel, variant, one)
                result[f"{variant}-processes"] = _processes(pool, spec["backends"], namespaces, parallel, variant,
                                                            conf_of, one if reference else None)
    finally:
        if pool is not None:
            pool.terminate()
    print(json.dumps(result))
    return 0


def _sequential(names: list[str], namespaces: list[str], chunk: int, variant: str,
                one: Callable[..., float]) -> dict[str, float]:
    """Per contender, the summed time of its ADDs and DELs, one container at a time, chunks interleaved."""
    totals = {name: 0.0 for name in names}
    # Warm-up, untimed: each contender's first ADD creates or finds the bridge and opens its store.
    for name in names:
        one(name, "ADD", f"/var/run/netns/{namespaces[0]}", f"warm-{variant}-{name}")
        one(name, "DEL", f"/var/run/netns/{namespaces[0]}", f"warm-{variant}-{name}")
    for low in range(0, len(namespaces), chunk):
        group = namespaces[low:low + chunk]
        for name in names:
            for ns in group:
                totals[name] += one(name, "ADD", f"/var/run/netns/{ns}", f"{variant}-{name}-{ns}")
            for ns in group:
                totals[name] += one(name, "DEL", f"/var/run/netns/{ns}", f"{variant}-{name}-{ns}")
    return totals


def _threads(names: list[str], namespaces: list[str], width: int, variant: str,
             one: Callable[..., float]) -> dict[str, float]:
    """Wall time of ADDing (then DELing) ``width`` containers at once, summed over the groups.

    cnicore runs them on ``width`` threads sharing its plugin; the reference as
    ``width`` concurrent processes.
    """
    walls = {name: 0.0 for name in names}
    with ThreadPoolExecutor(max_workers=width) as pool:
        for low in range(0, len(namespaces), width):
            group = namespaces[low:low + width]
            for name in names:
                for command in ("ADD", "DEL"):
                    start = time.perf_counter()
                    futures = [pool.submit(one, name, command, f"/var/run/netns/{ns}", f"t-{variant}-{name}-{ns}")
                               for ns in group]
                    for future in futures:
                        future.result()
                    walls[name] += time.perf_counter() - start
    return walls


def _processes(pool: Any, names: list[str], namespaces: list[str], width: int, variant: str,
               conf_of: Callable[[str], dict[str, Any]], one: Callable[..., float] | None) -> dict[str, float]:
    """As :func:`_threads`, for cnicore on ``width`` worker processes with a plugin each.

    With ``one``, the reference runs too, group by group: ``width`` concurrent execs, as in :func:`_threads`.
    """
    walls = {name: 0.0 for name in [*names, *(["reference"] if one is not None else [])]}
    threads = ThreadPoolExecutor(max_workers=width) if one is not None else None
    for name in names:
        # Warm-up, untimed: every worker opens its store.
        tasks = [(name, command, f"/var/run/netns/{ns}", f"pw-{variant}-{name}-{ns}", conf_of(name))
                 for ns in namespaces[:width] for command in ("ADD",)]
        pool.map(_worker_one, tasks, chunksize=1)
        pool.map(_worker_one, [(t[0], "DEL", *t[2:]) for t in tasks], chunksize=1)
    for low in range(0, len(namespaces), width):
        group = namespaces[low:low + width]
        for name in names:
            for command in ("ADD", "DEL"):
                tasks = [(name, command, f"/var/run/netns/{ns}", f"p-{variant}-{name}-{ns}", conf_of(name))
                         for ns in group]
                start = time.perf_counter()
                pool.map(_worker_one, tasks, chunksize=1)
                walls[name] += time.perf_counter() - start
        if threads is not None and one is not None:
            for command in ("ADD", "DEL"):
                start = time.perf_counter()
                futures = [threads.submit(one, "reference", command, f"/var/run/netns/{ns}",
                                          f"p-{variant}-reference-{ns}") for ns in group]
                for future in futures:
                    future.result()
                walls["reference"] += time.perf_counter() - start
    if threads is not None:
        threads.shutdown()
    return walls


if __name__ == "__main__":
    sys.exit(main())
