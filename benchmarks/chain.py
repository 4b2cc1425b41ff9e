"""Podman's default chain (root only): attach+detach of bridge, portmap, firewall and tuning per container.

cnicore's :class:`~cnicore.runtime.Runtime` runs the whole chain in process
(our four plugin types, host-local in process too); the anchor is the same
runtime executing the reference Go plugins from ``/usr/lib/cni``
(``in_process=False``), so both sides do the same libcni work (result cache,
``prevResult`` chaining, capabilities) and differ only in how the plugins run.
Each side has its own conflist (its own bridge, subnet and store) in one
throwaway namespace playing the host, where a child process
(``python -m benchmarks.chain SPEC``) runs both; containers are throwaway
namespaces too, each publishing one host port. The two sides alternate in
chunks of containers (paired), sequentially and then 8 at a time on threads
(the reference's execs then run concurrently). Every namespace is deleted
afterwards, even on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks._harness import Row, host_namespace_refusal, host_namespaces, run_in_namespace

__all__ = ["run"]

REFERENCE_DIR = "/usr/lib/cni"
REFERENCE_TYPES = ("bridge", "host-local", "portmap", "firewall", "tuning")
FIGURE = "podman default chain attach+detach per container"


def _skip(reason: str) -> list[Row]:
    return [Row(figure=FIGURE, ours=0.0, anchor=0.0, unit="s", anchor_name="absent", target=None,
                higher_is_better=False, note=f"skipped: {reason}")]


def run(quick: bool) -> list[Row]:
    """The figure's rows: per-container attach+detach, sequential and 8 at a time."""
    refusal = host_namespace_refusal()
    if refusal:
        return _skip(refusal)
    missing = [t for t in REFERENCE_TYPES if not os.access(os.path.join(REFERENCE_DIR, t), os.X_OK)]
    if missing or shutil.which("iptables-restore") is None:
        return _skip(f"reference plugins or iptables missing: {missing or ['iptables-restore']}")
    count, chunk, parallel = (2, 2, 2) if quick else (40, 8, 8)
    tag = uuid.uuid4().hex[:6]
    host = f"cnt-ch{tag}"
    containers = [f"cnt-c{tag}-{i}" for i in range(count)]
    with host_namespaces(host, containers, work_prefix="cnicore-bench-chain-") as work:
        spec = {"namespaces": containers, "chunk": chunk, "parallel": parallel, "work": work, "tag": tag}
        got: dict[str, dict[str, float]] = run_in_namespace(
            host, [sys.executable, "-m", "benchmarks.chain", json.dumps(spec)], "chain benchmark")
    rows = []
    for mode, label in (("sequential", f"sequential, chunks of {chunk}"),
                        ("parallel", f"{parallel} at a time on threads, wall time / containers")):
        times = got[mode]
        rows.append(Row(figure=f"{FIGURE}, in process, {mode if mode == 'sequential' else f'{parallel} at a time'}",
                        ours=times["ours"] / count, anchor=times["reference"] / count, unit="s",
                        anchor_name="reference chain exec", target=1.0, higher_is_better=False,
                        note=f"{count} containers, {label}"))
    return rows


# -- the child, inside the namespace playing the host -----------------------------------------------

def _conflist(directory: str, name: str, bridge: str, subnet: str, data: str) -> None:
    os.makedirs(directory, exist_ok=True)
    config = {"cniVersion": "1.0.0", "name": name, "plugins": [
        {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True, "hairpinMode": True,
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}], "ranges": [[{"subnet": subnet}]],
                  "dataDir": data}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
        {"type": "firewall"},
        {"type": "tuning", "dataDir": data + "-tuning"}]}
    with open(os.path.join(directory, f"{name}.conflist"), "w", encoding="utf-8") as handle:
        json.dump(config, handle)


def _child(spec: dict[str, Any]) -> dict[str, dict[str, float]]:
    from cnicore.plugins import install_plugins
    from cnicore.runtime import Runtime

    work, tag = spec["work"], spec["tag"]
    ours_bin = os.path.join(work, "bin")
    install_plugins(ours_bin)
    _conflist(os.path.join(work, "ours"), "chainours", f"cnt-co{tag}", "10.97.0.0/16", os.path.join(work, "d-ours"))
    _conflist(os.path.join(work, "ref"), "chainref", f"cnt-cr{tag}", "10.96.0.0/16", os.path.join(work, "d-ref"))
    ours = Runtime(config_dir=os.path.join(work, "ours"), plugin_path=[ours_bin],
                   cache_dir=os.path.join(work, "cache-ours"))
    reference = Runtime(config_dir=os.path.join(work, "ref"), plugin_path=[REFERENCE_DIR],
                        cache_dir=os.path.join(work, "cache-ref"), in_process=False)
    sides = {"ours": (ours, "chainours"), "reference": (reference, "chainref")}
    namespaces = [f"/var/run/netns/{name}" for name in spec["namespaces"]]

    def cycle(side: str, index: int) -> None:
        runtime, network = sides[side]
        container = f"cnt-bench-{index}"
        runtime.attach(container, network, namespaces[index], capability_args={
            "portMappings": [{"hostPort": 20000 + index, "containerPort": 80, "protocol": "tcp"}]})
        runtime.detach(container, network)

    totals: dict[str, dict[str, float]] = {"sequential": {"ours": 0.0, "reference": 0.0},
                                           "parallel": {"ours": 0.0, "reference": 0.0}}
    chunk, parallel = spec["chunk"], spec["parallel"]
    try:
        for start in range(0, len(namespaces), chunk):
            indexes = range(start, min(start + chunk, len(namespaces)))
            for side in ("ours", "reference") if start % (2 * chunk) == 0 else ("reference", "ours"):
                began = time.perf_counter()
                for index in indexes:
                    cycle(side, index)
                totals["sequential"][side] += time.perf_counter() - began
        with ThreadPoolExecutor(parallel) as pool:
            for start in range(0, len(namespaces), chunk):
                indexes = range(start, min(start + chunk, len(namespaces)))
                for side in ("ours", "reference") if start % (2 * chunk) == 0 else ("reference", "ours"):
                    began = time.perf_counter()
                    list(pool.map(lambda i, s=side: cycle(s, i), indexes))
                    totals["parallel"][side] += time.perf_counter() - began
    finally:
        ours.close()
        reference.close()
    return totals


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
