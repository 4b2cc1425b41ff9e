"""A container's network lifecycle as podman drives it: ``podman run --rm --network NET IMAGE true``.

The whole command, timed from outside: podman creates the container and its namespace, libcni asks each
plugin of the network's conflist VERSION and runs ADD (bridge with host-local, then the reference's
portmap, firewall and tuning), the container runs ``true``, and the same again for DEL. Ours is our
plugin directory first, the anchor the reference plugins alone, on one private podman host (see
``tests/e2e/podman_host.py``, the end-to-end suite's) whose ``cni_plugin_dirs`` switches between the two
before each run: pairs run back to back, in alternating order, and the figure is the median over the
pairs. Needs root and podman (``make sysdeps``); otherwise the row says why it was skipped.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import Row

__all__ = ["lifecycle_rows", "lifecycle_times"]

REFERENCE_DIR = Path("/usr/lib/cni")
_FIGURE = "podman run --rm (bridge + host-local)"


def _podman_host() -> tuple[Any, Any, Any]:
    # The end-to-end suite's host (one implementation of the private podman setup), by path.
    suite = str(Path(__file__).resolve().parent.parent / "tests" / "e2e")
    if suite not in sys.path:
        sys.path.insert(0, suite)
    import podman_host

    return podman_host.PodmanHost, podman_host.PodmanRefused, podman_host.missing_tools


def lifecycle_times(pairs: int) -> tuple[list[float], list[float]]:
    """Wall times (s) of ``pairs`` paired ``podman run --rm`` lifecycles: (ours, reference's)."""
    host_class, _refused, _missing = _podman_host()
    from cnicore.plugins import install_plugins

    ours_dir = Path(tempfile.mkdtemp(prefix="cnt-bench-plugins-"))
    install_plugins(ours_dir)
    host = host_class("bench", [ours_dir, REFERENCE_DIR])
    try:
        host.start()
        host.network_create("bench-net", "cnt-bench-br", "--subnet", "10.89.40.0/24")
        setups = {"ours": [ours_dir, REFERENCE_DIR], "reference": [REFERENCE_DIR]}
        times: dict[str, list[float]] = {"ours": [], "reference": []}
        for name in setups:  # one untimed run each: caches warm, the bridge made
            host.use_plugins(setups[name])
            host.podman("run", "--rm", "--network", "bench-net", "localhost/cnt-busybox:latest", "true")
        for pair in range(pairs):
            order = ("ours", "reference") if pair % 2 == 0 else ("reference", "ours")
            for name in order:
                host.use_plugins(setups[name])
                start = time.perf_counter()
                host.podman("run", "--rm", "--network", "bench-net", "localhost/cnt-busybox:latest", "true")
                times[name].append(time.perf_counter() - start)
        return times["ours"], times["reference"]
    finally:
        host.close()
        for path in sorted(ours_dir.iterdir()):
            path.unlink()
        ours_dir.rmdir()


def lifecycle_rows(quick: bool) -> list[Row]:
    """The row: median seconds per lifecycle, ours against the reference's (10 pairs; 2 with ``quick``)."""
    import os
    import shutil

    _host, refused, missing_tools = _podman_host()
    why = None
    if os.geteuid() != 0:
        why = "needs root"
    elif missing_tools():
        why = f"{', '.join(missing_tools())} not installed (make sysdeps)"
    elif shutil.which("bridge", path=str(REFERENCE_DIR)) is None:
        why = f"no reference plugins in {REFERENCE_DIR}"
    if why is None:
        try:
            ours, reference = lifecycle_times(2 if quick else 10)
        except refused as exc:
            why = f"podman cannot run containers here: {exc}"
    if why is not None:
        return [Row(figure=_FIGURE, ours=0.0, anchor=0.0, unit="s", anchor_name="absent", target=None,
                    higher_is_better=False, note=f"skipped: {why}")]
    ratios = [a / b for a, b in zip(ours, reference, strict=True)]
    return [Row(figure=_FIGURE, ours=statistics.median(ours), anchor=statistics.median(reference), unit="s",
                anchor_name="reference plugins", target=None, higher_is_better=False,
                note=f"median of {len(ours)} paired runs; median pair ratio {statistics.median(ratios):.2f}",
                extra={"pair_ratio": statistics.median(ratios)})]
