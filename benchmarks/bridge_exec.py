"""The executed bridge against the reference's, paired: ADD, DEL and VERSION as a runtime runs them.

Run as root, with plugins installed as users install them (non-editable)::

    python -m venv /tmp/bl && /tmp/bl/bin/pip install .
    /tmp/bl/bin/cnicore install-plugins /tmp/bl-plugins
    python -m benchmarks.bridge_exec /tmp/bl-plugins [--count N]

Everything happens in throwaway namespaces: one plays the host (our bridge
``cnt-bxo<tag>`` on 10.23.0.0/24 and the reference's ``cnt-bxr<tag>`` on
10.24.0.0/24, their NAT rules), one per container and contender. The network is
the seed's bridge network: host-local IPAM with a default route, ``isGateway``,
``ipMasq``. Each round executes ours and the reference back to back (the order
alternating between rounds): VERSION, ADD into a fresh namespace, DEL of it.
The interpreter's floor, ``<plugin interpreter> -IS -c "import json"``, is
timed in the same rounds. Prints the medians and the ratios.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REFERENCE = "/usr/lib/cni"


def _conf(bridge: str, subnet: str, data_dir: str) -> bytes:
    return json.dumps({
        "cniVersion": "1.0.0", "name": "mybridge0", "type": "bridge", "bridge": bridge, "isGateway": True,
        "ipMasq": True,
        "ipam": {"type": "host-local", "subnet": subnet, "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir},
    }).encode()


def _timed(argv: list[str], env: dict[str, str], stdin: bytes) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} {env.get('CNI_COMMAND')} failed: {done.stdout!r} {done.stderr!r}")
    return elapsed


def _child(plugins: str, count: int, tag: str, work: str) -> dict[str, list[float]]:
    """Inside the host namespace: the paired rounds."""
    with open(os.path.join(plugins, "bridge"), encoding="utf-8") as script:
        interpreter = script.readline()[2:].split()[0]  # the shebang's interpreter: the floor's
    sides = {
        "ours": (os.path.join(plugins, "bridge"), plugins, _conf(f"cnt-bxo{tag}", "10.23.0.0/24", f"{work}/o")),
        "reference": (os.path.join(REFERENCE, "bridge"), REFERENCE,
                      _conf(f"cnt-bxr{tag}", "10.24.0.0/24", f"{work}/r")),
    }
    times: dict[str, list[float]] = {f"{side} {what}": [] for side in sides for what in ("VERSION", "ADD", "DEL")}
    times["floor"] = []
    base = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    for round_ in range(count):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        times["floor"].append(_timed([interpreter, "-IS", "-c", "import json"], base, b""))
        for what in ("VERSION", "ADD", "DEL"):
            for side in order:
                path, cni_path, conf = sides[side]
                netns = f"/var/run/netns/cnt-bx{tag}-{side[0]}{round_}"
                env = {**base, "CNI_COMMAND": what, "CNI_CONTAINERID": f"c{tag}{side[0]}{round_}", "CNI_NETNS": netns,
                       "CNI_IFNAME": "eth0", "CNI_PATH": cni_path}
                times[f"{side} {what}"].append(_timed([path], env, b"" if what == "VERSION" else conf))
    return times


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        spec = json.loads(sys.argv[2])
        print(json.dumps(_child(spec["plugins"], spec["count"], spec["tag"], spec["work"])))
        return 0
    plugins = os.path.abspath(sys.argv[1])
    count = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--count" else 30
    tag = uuid.uuid4().hex[:5]
    host = f"cnt-bxh{tag}"
    made: list[str] = []
    work = tempfile.mkdtemp(prefix="cnicore-bridge-exec-")
    try:
        for ns in [host] + [f"cnt-bx{tag}-{s}{i}" for i in range(count) for s in "or"]:
            subprocess.run(["ip", "netns", "add", ns], check=True)
            made.append(ns)
        subprocess.run(["ip", "-n", host, "link", "set", "lo", "up"], check=True)
        spec = json.dumps({"plugins": plugins, "count": count, "tag": tag, "work": work})
        done = subprocess.run(["ip", "netns", "exec", host, sys.executable, "-m", "benchmarks.bridge_exec",
                               "--child", spec], check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr or done.stdout)
        times = json.loads(done.stdout)
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "delete", ns], check=False)
        subprocess.run(["rm", "-rf", work], check=False)
    med = {name: statistics.median(values) * 1000 for name, values in times.items()}
    for what in ("VERSION", "ADD", "DEL"):
        ours, ref = med[f"ours {what}"], med[f"reference {what}"]
        print(f"bridge {what:7} ours {ours:7.1f} ms  reference {ref:7.1f} ms  ratio {ours / ref:5.2f}x")
    print(f"bridge VERSION ours {med['ours VERSION']:7.1f} ms  python -IS -c 'import json' {med['floor']:7.1f} ms  "
          f"ratio {med['ours VERSION'] / med['floor']:5.2f}x   (median of {count} paired rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
