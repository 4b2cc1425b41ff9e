"""The part of the link-setup benchmark that runs inside the namespace playing the host.

Started by :mod:`benchmarks.links` as ``ip netns exec <host ns> python -m
benchmarks._links_child <json>``; prints one JSON object: for each contender,
the total seconds its ADDs and DELs took. Every contender runs in this one
process, interleaved chunk by chunk: cnicore's :class:`BridgePlugin` in process
on each real backend (a long-lived process: backend and store stay open), and
the reference Go ``bridge`` executed per operation (it executes its host-local).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from cnicore.plugins import BridgePlugin, PluginRequest


def _conf(data_dir: str, bridge: str) -> dict[str, Any]:
    # The seed's bridge network, without ipMasq (keeps the firewall out of the figure).
    return {"cniVersion": "1.0.0", "name": "mybridge0", "type": "bridge", "bridge": bridge, "isGateway": True,
            "ipam": {"type": "host-local", "subnet": "10.23.0.0/24", "routes": [{"dst": "0.0.0.0/0"}],
                     "dataDir": data_dir}}


def main() -> int:
    spec = json.loads(sys.argv[1])
    namespaces: list[str] = spec["namespaces"]
    chunk: int = spec["chunk"]
    bridge: str = spec["bridge"]
    reference: str = spec["reference"]
    work: str = spec["work"]
    parallel: int = spec["parallel"]
    import importlib

    backends = importlib.import_module("cnicore.backends")
    # One plugin (own backend, own store handle) per concurrent worker; worker 0 does the sequential part.
    contenders: dict[str, list[Any]] = {}
    for name in spec["backends"]:
        contenders[name] = [BridgePlugin(backends.select_backend(name), backends.FakeFirewall())
                            for _ in range(max(1, parallel))]
    if reference:
        contenders["reference"] = [reference] * max(1, parallel)
    totals = {name: 0.0 for name in contenders}

    def one(name: str, command: str, netns: str, cid: str, worker: int = 0) -> float:
        conf = _conf(os.path.join(work, f"data-{name}"), bridge)
        raw = json.dumps(conf).encode()
        target = contenders[name][worker]
        start = time.perf_counter()
        if isinstance(target, str):
            env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
                   "CNI_PATH": os.path.dirname(target), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            proc = subprocess.run([target], input=raw, env=env, capture_output=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"reference bridge {command} failed: {proc.stdout!r} {proc.stderr!r}")
        else:
            request = PluginRequest(command=command, container_id=cid, netns=netns, ifname="eth0",
                                    config=conf, config_bytes=raw, cni_version="1.0.0")
            if command == "ADD":
                target.add(request)
            else:
                target.delete(request)
        return time.perf_counter() - start

    # Warm-up, untimed: each contender's first ADD creates or finds the bridge and opens its store.
    for name in contenders:
        one(name, "ADD", f"/var/run/netns/{namespaces[0]}", f"warm-{name}")
        one(name, "DEL", f"/var/run/netns/{namespaces[0]}", f"warm-{name}")
    for low in range(0, len(namespaces), chunk):
        group = namespaces[low:low + chunk]
        for name in contenders:
            for ns in group:
                totals[name] += one(name, "ADD", f"/var/run/netns/{ns}", f"{name}-{ns}")
            for ns in group:
                totals[name] += one(name, "DEL", f"/var/run/netns/{ns}", f"{name}-{ns}")
    result: dict[str, Any] = {"sequential": totals}
    if parallel > 1:
        result["parallel"] = _parallel(contenders, namespaces, parallel, one)
    print(json.dumps(result))
    return 0


def _parallel(contenders: dict[str, list[Any]], namespaces: list[str], width: int,
              one: Callable[[str, str, str, str, int], float]) -> dict[str, float]:
    """Wall time of ADDing (then DELing) ``width`` containers at once, summed over the groups."""
    from concurrent.futures import ThreadPoolExecutor

    walls = {name: 0.0 for name in contenders}
    with ThreadPoolExecutor(max_workers=width) as pool:
        for low in range(0, len(namespaces), width):
            group = namespaces[low:low + width]
            for name in contenders:
                for command in ("ADD", "DEL"):
                    start = time.perf_counter()
                    futures = [pool.submit(one, name, command, f"/var/run/netns/{ns}", f"p-{name}-{ns}", k)
                               for k, ns in enumerate(group)]
                    for future in futures:
                        future.result()
                    walls[name] += time.perf_counter() - start
    return walls


if __name__ == "__main__":
    sys.exit(main())
