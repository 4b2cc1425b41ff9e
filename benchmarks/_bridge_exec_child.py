"""The part of the exec'd bridge benchmark that runs inside the namespace playing the host.

Started by :mod:`benchmarks.bridge_exec` as ``ip netns exec <host ns> python
benchmarks/_bridge_exec_child.py <json>``; standard library only (it only times
executables). Prints one JSON object: for ADD, DEL and VERSION, each
contender's wall times, one per pair.

Pairs: container ``i`` gets one namespace for ours and one for the reference;
ADD runs ours then the reference for even ``i`` and the reverse for odd ``i``,
so that neither always goes first (a warm page cache, a just-released lock);
all DELs follow the same way. VERSION runs ours, the reference and the Python
floor in turn, the order rotating each round.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any


def _timed(argv: list[str], env: dict[str, str], stdin: bytes, what: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {proc.stdout!r} {proc.stderr!r}")
    return elapsed


def main() -> int:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    contenders: dict[str, dict[str, Any]] = spec["contenders"]  # name -> {plugin, cni_path, conf, netns: [...]}
    pairs: int = spec["pairs"]
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result: dict[str, dict[str, list[float]]] = {"ADD": {}, "DEL": {}, "VERSION": {}}

    def call(name: str, command: str, index: int) -> float:
        who = contenders[name]
        env = dict(base_env, CNI_COMMAND=command, CNI_CONTAINERID=f"bx-{name}-{index}",
                   CNI_NETNS=f"/var/run/netns/{who['netns'][index]}", CNI_IFNAME="eth0", CNI_PATH=who["cni_path"])
        return _timed([who["plugin"]], env, json.dumps(who["conf"]).encode(), f"{name} bridge {command}")

    names = list(contenders)
    # Warm-up, untimed, in the last pair's namespaces: the bridge, its address and the NAT chain exist afterwards,
    # as on a host already running containers.
    for name in names:
        call(name, "ADD", pairs)
        call(name, "DEL", pairs)
    for command in ("ADD", "DEL"):
        for name in names:
            result[command][name] = []
        for index in range(pairs):
            for name in (names if index % 2 == 0 else names[::-1]):
                result[command][name].append(call(name, command, index))
    version_env = dict(base_env, CNI_COMMAND="VERSION")
    version_runs: dict[str, list[str]] = {name: [contenders[name]["plugin"]] for name in names}
    version_runs["json"] = spec["json_floor"]
    order = list(version_runs)
    for name in order:
        result["VERSION"][name] = []
    for round_number in range(spec["version_rounds"]):
        shift = round_number % len(order)
        for name in order[shift:] + order[:shift]:
            stdin = json.dumps(contenders[name]["conf"]).encode() if name in contenders else b""
            result["VERSION"][name].append(_timed(version_runs[name], version_env, stdin, f"{name} VERSION"))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
