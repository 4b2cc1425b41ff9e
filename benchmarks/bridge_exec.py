"""The bridge plugin executed as a runtime executes it (figure 6, root only): ADD, DEL and VERSION, paired.

Ours is the non-editable install's ``bridge`` (:mod:`benchmarks._install`,
``CNI_PATH`` its plugin directory: it finds our ``host-local`` there); the
reference is ``/usr/lib/cni/bridge`` (``CNI_PATH=/usr/lib/cni``: it executes
the reference ``host-local``). Both get the seed's bridge network as written
(``mybridge0``: host-local IPAM on 10.23.0.0/24 with a default route, gateway,
``ipMasq``), each with its own IPAM data directory, on one bridge (``cnt-bx0``)
in a throwaway namespace playing the host; every container is a throwaway
namespace of its own. Each ADD and DEL is timed from the exec to the exit, in
pairs (see :mod:`benchmarks._bridge_exec_child`); the figures are medians.

VERSION (which libcni asks before every ADD and DEL) is also set against
``python -IS -c "import json"`` on the install's interpreter: the floor of any
Python plugin that reads its configuration. Ours answers it from the
executable's shell part, without starting Python (:mod:`cnicore.plugins._install`),
which the rows say.

Every namespace is deleted afterwards, even on failure (deleting the host
namespace deletes the bridge and its rules with it).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import uuid
from typing import Any

from benchmarks._harness import Row, host_namespace_refusal, host_namespaces, run_in_namespace
from benchmarks._install import InstallUnavailable, installed, json_floor

__all__ = ["REFERENCE_BRIDGE", "run"]

REFERENCE_BRIDGE = "/usr/lib/cni/bridge"
BRIDGE = "cnt-bx0"
CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bridge_exec_child.py")


def seed_conf(data_dir: str, bridge: str = BRIDGE) -> dict[str, Any]:
    """The seed's bridge network (as the demo runs it), with its IPAM data in ``data_dir`` and on ``bridge``."""
    return {"cniVersion": "1.0.0", "name": "mybridge0", "type": "bridge", "bridge": bridge, "isGateway": True,
            "ipMasq": True,
            "ipam": {"type": "host-local", "subnet": "10.23.0.0/24", "routes": [{"dst": "0.0.0.0/0"}],
                     "dataDir": data_dir}}


def _skip(reason: str) -> list[Row]:
    return [Row(figure="bridge ADD, DEL and VERSION, exec", ours=0.0, anchor=0.0, unit="s", anchor_name="absent",
                target=None, higher_is_better=False, note=f"skipped: {reason}")]


def run(quick: bool) -> list[Row]:
    """Figure 6: the exec'd bridge against the reference's, paired; VERSION also against the Python floor."""
    refusal = host_namespace_refusal()
    if refusal:
        return _skip(refusal)
    if not os.access(REFERENCE_BRIDGE, os.X_OK):
        return _skip(f"{REFERENCE_BRIDGE} not installed")
    if shutil.which("iptables") is None:
        return _skip("iptables not installed (the seed network masquerades)")
    try:
        install = installed(quick)
    except InstallUnavailable as exc:
        return _skip(str(exc))
    pairs, version_rounds = (2, 3) if quick else (12, 15)
    tag = uuid.uuid4().hex[:6]
    host = f"cnt-bxh{tag}"
    spaces = {name: [f"cnt-bx{tag}{name[0]}{i}" for i in range(pairs + 1)] for name in ("ours", "reference")}
    with host_namespaces(host, [*spaces["ours"], *spaces["reference"]],
                         work_prefix="cnicore-bench-bridge-exec-") as work:
        spec = {
            "pairs": pairs, "version_rounds": version_rounds, "json_floor": json_floor(install),
            "contenders": {
                "ours": {"plugin": install.plugin("bridge"), "cni_path": install.plugins,
                         "conf": seed_conf(os.path.join(work, "data-ours")), "netns": spaces["ours"]},
                "reference": {"plugin": REFERENCE_BRIDGE, "cni_path": os.path.dirname(REFERENCE_BRIDGE),
                              "conf": seed_conf(os.path.join(work, "data-reference")), "netns": spaces["reference"]},
            },
        }
        got: dict[str, dict[str, list[float]]] = run_in_namespace(host, [sys.executable, CHILD, json.dumps(spec)],
                                                                   "bridge exec benchmark")
    med = {command: {name: statistics.median(times) for name, times in by_name.items()}
           for command, by_name in got.items()}
    note = f"seed network (host-local IPAM, ipMasq), {pairs} pairs, medians; {install.label}"
    rows = [
        Row(figure="bridge ADD, exec", ours=med["ADD"]["ours"], anchor=med["ADD"]["reference"], unit="s",
            anchor_name="reference bridge, exec (it execs its host-local)", target=1.5, higher_is_better=False,
            note=note + "; ours runs its host-local in process"),
        Row(figure="bridge DEL, exec", ours=med["DEL"]["ours"], anchor=med["DEL"]["reference"], unit="s",
            anchor_name="reference bridge, exec (it execs its host-local)", target=1.5, higher_is_better=False,
            note=note),
        Row(figure="bridge VERSION, exec", ours=med["VERSION"]["ours"], anchor=med["VERSION"]["json"], unit="s",
            anchor_name='`python -IS -c "import json"`, same interpreter', target=1.2, higher_is_better=False,
            note=f"{version_rounds} rounds, medians; {install.label}; ours answered by its shell part, no Python"),
        Row(figure="bridge VERSION, exec, vs the reference", ours=med["VERSION"]["ours"],
            anchor=med["VERSION"]["reference"], unit="s", anchor_name="reference bridge VERSION, exec",
            target=None, higher_is_better=False,
            note=f"{version_rounds} rounds, medians; {install.label}; ours answered by its shell part, no Python"),
    ]
    return rows
