"""Link setup (figure 5, root only): ADD then DEL of the seed's bridge network for N containers.

Everything happens in throwaway namespaces: one plays the host (bridge
``cnt-bbr0``, NAT rules, store in a temporary directory), one per container.
cnicore's :class:`~cnicore.plugins.BridgePlugin` runs in process on each real
backend (netlink, iproute2; pyroute2 too, sequentially only, as an information
row, when it is installed) and the reference Go ``bridge`` is executed per
operation, all from one process inside the host namespace (see
:mod:`benchmarks._links_child`), interleaved in chunks of containers: each
contender ADDs a chunk then DELs it, then the next contender does the same.

Two variants of the network: the seed's as written (``ipMasq``: both sides
run iptables in the host namespace, the reference ``iptables -w`` per rule,
cnicore one ``iptables-save`` and one ``iptables-restore`` per ADD or DEL, and
an ``nft`` listing per DEL for the nftables layout the current reference's
DEL also clears), and the same without masquerading (the links alone). The full run
also measures 8 at a time (see below): wall time per container. Every
namespace is deleted afterwards, even on failure (deleting the host namespace
deletes the bridge and its rules with it).

The 8-at-a-time figures come in two forms for cnicore: threads of one process
sharing one plugin, and worker processes with a plugin each; the reference
runs 8 concurrent execs in both, measured in each mode's own run.

Every row here sets cnicore in process against the reference executed: unlike
work (an exec costs a process start), said in each row. The exec'd bridge
against the exec'd reference is :mod:`benchmarks.bridge_exec`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import uuid

from benchmarks._harness import Row, host_namespace_refusal, host_namespaces, run_in_namespace

__all__ = ["REFERENCE_BRIDGE", "run"]

REFERENCE_BRIDGE = "/usr/lib/cni/bridge"
#: The network variants (see benchmarks._links_child.VARIANTS) and how the figures name them.
VARIANTS = {"seed": "seed network (ipMasq)", "links": "without ipMasq"}
BRIDGE = "cnt-bbr0"


def _skip(reason: str) -> list[Row]:
    return [Row(figure="bridge ADD+DEL per container", ours=0.0, anchor=0.0, unit="s", anchor_name="absent",
                target=None, higher_is_better=False, note=f"skipped: {reason}")]


def run(quick: bool) -> list[Row]:
    """Figure 5: per-container ADD+DEL time, in process per backend vs the reference exec path."""
    refusal = host_namespace_refusal()
    if refusal:
        return _skip(refusal)
    count, chunk, parallel = (3, 3, 1) if quick else (32, 8, 8)
    tag = uuid.uuid4().hex[:6]
    host = f"cnt-bh{tag}"
    containers = [f"cnt-b{tag}-{i}" for i in range(count)]
    with host_namespaces(host, containers, work_prefix="cnicore-bench-links-") as work:
        reference = REFERENCE_BRIDGE if os.access(REFERENCE_BRIDGE, os.X_OK) else ""
        spec = {"namespaces": containers, "chunk": chunk, "bridge": BRIDGE, "reference": reference, "work": work,
                "backends": ["netlink", "iproute2"], "parallel": parallel,
                # Measured one container at a time only, so that the suite stays fast.
                "sequential_backends": ["pyroute2"] if importlib.util.find_spec("pyroute2") else [],
                # Without iptables the seed network cannot masquerade: only the links are measured.
                "variants": [v for v in VARIANTS if v != "seed" or shutil.which("iptables-restore")]}
        got: dict[str, dict[str, float]] = run_in_namespace(
            host, [sys.executable, "-m", "benchmarks._links_child", json.dumps(spec)], "link benchmark")
    rows: list[Row] = []
    modes = (("", "sequential", f"sequential, chunks of {chunk}"),
             ("-threads", f"{parallel} threads", f"{parallel} at a time on threads sharing one plugin"),
             ("-processes", f"{parallel} processes", f"{parallel} at a time on worker processes"))
    for variant, label in VARIANTS.items():
        for suffix, mode, how in modes:
            key = variant + suffix
            if key not in got:
                continue
            per = {name: total / count for name, total in got[key].items()}
            anchor = got[key].get("reference")
            anchor = anchor / count if anchor is not None else None
            for name, target in (("netlink", 1.0), ("iproute2", None), ("pyroute2", None)):
                if name not in per:
                    continue
                figure = f"bridge ADD+DEL per container, {label}, {name} in process vs reference exec, {mode}"
                if anchor is None:
                    rows.append(Row(figure=figure, ours=per[name], anchor=0.0, unit="s",
                                    anchor_name="reference absent", target=None, higher_is_better=False))
                    continue
                rows.append(Row(figure=figure, ours=per[name], anchor=anchor, unit="s",
                                anchor_name="reference bridge, exec", target=target, higher_is_better=False,
                                note=f"{count} containers, {how}" + (", wall time / containers" if suffix else "")))
    return rows
