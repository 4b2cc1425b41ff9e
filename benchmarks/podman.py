"""A container's network lifecycle as podman drives it: ``podman run --rm --network NET IMAGE true``.

The whole command, timed from outside: podman creates the container and its namespace, libcni asks each
plugin of the network's conflist VERSION and runs ADD (bridge with host-local, then portmap, firewall and
tuning), the container runs ``true``, and the same again for DEL. The anchor is the reference plugins
alone. Ours comes in two rows, both the run's install (:mod:`benchmarks._install`: non-editable, as users
install it): our ``bridge`` and ``host-local`` with the reference's ``portmap``, ``firewall`` and
``tuning`` (the figure the lifecycle target is about), and our whole default chain. All run on one
private podman host (see ``tests/e2e/podman_host.py``, the end-to-end suite's) whose ``cni_plugin_dirs``
switches before each run (the first directory with a plugin of a type wins): the three setups run back
to back, in rotating order, and each figure is the median over the rounds. Needs root and podman (``make
sysdeps``); otherwise the row says why it was skipped.
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
_FIGURE = "podman run --rm, our bridge + host-local (the reference's portmap, firewall, tuning)"
_CHAIN_FIGURE = "podman run --rm, our whole default chain (bridge, host-local, portmap, firewall, tuning)"
#: The issue's target for the lifecycle with our bridge and host-local.
_TARGET = 1.1


def _podman_host() -> tuple[Any, Any, Any]:
    # The end-to-end suite's host (one implementation of the private podman setup), by path.
    suite = str(Path(__file__).resolve().parent.parent / "tests" / "e2e")
    if suite not in sys.path:
        sys.path.insert(0, suite)
    import podman_host

    return podman_host.PodmanHost, podman_host.PodmanRefused, podman_host.missing_tools


#: Our plugins in the bridge + host-local setup; podman finds the rest of its chain in the reference's directory.
_BRIDGE_ONLY = ("bridge", "host-local")


def lifecycle_times(rounds: int, quick: bool = False) -> dict[str, list[float]]:
    """Wall times (s) of ``rounds`` rotating rounds of ``podman run --rm`` lifecycles, per setup.

    The setups: ``"bridge"`` (our bridge and host-local, the reference's portmap, firewall and tuning),
    ``"chain"`` (our whole default chain) and ``"reference"`` (the reference plugins alone).
    """
    import shutil

    from benchmarks._install import installed

    host_class, _refused, _missing = _podman_host()
    install = installed(quick)
    bridge_dir = Path(tempfile.mkdtemp(prefix="cnt-bench-plugins-"))
    for name in _BRIDGE_ONLY:
        shutil.copy2(install.plugin(name), bridge_dir / name)
    chain_dir = Path(install.plugins)
    host = host_class("bench", [bridge_dir, REFERENCE_DIR])
    try:
        host.start()
        host.network_create("bench-net", "cnt-bench-br", "--subnet", "10.89.40.0/24")
        setups = {"bridge": [bridge_dir, REFERENCE_DIR], "chain": [chain_dir, REFERENCE_DIR],
                  "reference": [REFERENCE_DIR]}
        times: dict[str, list[float]] = {name: [] for name in setups}
        for name in setups:  # one untimed run each: caches warm, the bridge made
            host.use_plugins(setups[name])
            host.podman("run", "--rm", "--network", "bench-net", "localhost/cnt-busybox:latest", "true")
        names = list(setups)
        for index in range(rounds):
            for name in names[index % len(names):] + names[:index % len(names)]:
                host.use_plugins(setups[name])
                start = time.perf_counter()
                host.podman("run", "--rm", "--network", "bench-net", "localhost/cnt-busybox:latest", "true")
                times[name].append(time.perf_counter() - start)
        return times
    finally:
        host.close()
        shutil.rmtree(bridge_dir, ignore_errors=True)


def lifecycle_rows(quick: bool) -> list[Row]:
    """The rows: median seconds per lifecycle, ours against the reference's (10 rounds; 2 with ``quick``)."""
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
    times: dict[str, list[float]] = {}
    if why is None:
        from benchmarks._install import InstallUnavailable

        try:
            times = lifecycle_times(2 if quick else 10, quick)
        except refused as exc:
            why = f"podman cannot run containers here: {exc}"
        except InstallUnavailable as exc:
            why = str(exc)
    if why is not None:
        return [Row(figure=_FIGURE, ours=0.0, anchor=0.0, unit="s", anchor_name="absent", target=None,
                    higher_is_better=False, note=f"skipped: {why}")]
    reference = times["reference"]
    rows = []
    for name, figure, target in (("bridge", _FIGURE, _TARGET), ("chain", _CHAIN_FIGURE, None)):
        ratios = [a / b for a, b in zip(times[name], reference, strict=True)]
        rows.append(Row(figure=figure, ours=statistics.median(times[name]), anchor=statistics.median(reference),
                        unit="s", anchor_name="reference plugins", target=target, higher_is_better=False,
                        note=f"median of {len(reference)} rotating rounds; median round ratio "
                             f"{statistics.median(ratios):.2f}",
                        extra={"pair_ratio": statistics.median(ratios)}))
    return rows
