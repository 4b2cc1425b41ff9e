"""Range size (figure 3) and exec latency (figure 4).

Range size: a fresh interpreter imports host-local, parses a configuration
with a /8 (or an IPv6 /64) and makes the first allocation on a file store; the
child reports its own wall time for that work and its peak RSS (VmHWM). The anchors
are the target values themselves (50 ms, 60 MiB), so a ratio <= 1 passes. The
child runs on the non-editable install (:mod:`benchmarks._install`).

Exec latency: the wall time of executing our installed ``loopback`` and
``host-local`` (the non-editable install's ``cnicore install-plugins``) for
ADD, against the floor of any Python plugin that reads its JSON configuration
(``python -IS -c "import json"`` on the install's interpreter) and against the
reference Go binaries, all timed interleaved in one run. Information rows also
time host-local's ADD through exec on a store already holding 16,000
reservations (ours, and the reference on a store holding as many), where the
reference reads every file and ours opens its persisted index.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from benchmarks._harness import Row, interleave
from benchmarks._install import InstallUnavailable, bare_start, installed, json_floor

__all__ = ["exec_rows", "range_rows", "run"]

WALL_TARGET = 0.050
RSS_TARGET_MIB = 60.0

_CHILD = r"""
import json, resource, sys, time
start = time.perf_counter()
from cnicore.ipam import add, load_ipam_config
from cnicore.stores import FileStore
subnet, data_dir = sys.argv[1], sys.argv[2]
work = time.perf_counter()
conf = {"cniVersion": "1.0.0", "name": "big", "type": "bridge",
        "ipam": {"type": "host-local", "subnet": subnet, "dataDir": data_dir}}
config = load_ipam_config(conf)
store = FileStore(data_dir, "big")
allocation = add(config, store, "c1", "eth0")
store.close()
end = time.perf_counter()
# VmHWM belongs to this image; ru_maxrss would carry the forking parent's peak across exec.
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1])
print(json.dumps({"wall": end - start, "work": end - work, "rss_kib": peak, "ip": str(allocation.ips[0].address)}))
"""


def _range_once(python: str, subnet: str) -> tuple[float, float, float]:
    base = tempfile.mkdtemp(prefix="cnicore-bench-range-")
    try:
        # The data directory sits inside ``base`` so that the store's index, kept beside it, goes too.
        proc = subprocess.run([python, "-c", _CHILD, subnet, os.path.join(base, "data")], cwd=base,
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"range benchmark child failed: {proc.stderr.decode(errors='replace')}")
        got = json.loads(proc.stdout)
        return float(got["work"]), float(got["wall"]), float(got["rss_kib"]) / 1024
    finally:
        shutil.rmtree(base, ignore_errors=True)


def range_rows(quick: bool) -> list[Row]:
    """Figure 3: parse + first allocation on a huge range, in a fresh interpreter."""
    repeat = 1 if quick else 5
    try:
        install = installed(quick)
    except InstallUnavailable as exc:
        return [_skipped("range figures", str(exc))]
    rows: list[Row] = []
    for label, subnet in (("IPv4 /8", "10.0.0.0/8"), ("IPv6 /64", "fd00:be::/64")):
        samples = [_range_once(install.python, subnet) for _ in range(repeat)]
        work = statistics.median(s[0] for s in samples)
        wall = statistics.median(s[1] for s in samples)
        rss = statistics.median(s[2] for s in samples)
        rows.append(Row(figure=f"{label}: parse + first ADD, wall", ours=work, anchor=WALL_TARGET, unit="s",
                        anchor_name="target", target=1.0, higher_is_better=False,
                        note=f"fresh process, imports done; {install.label}"))
        rows.append(Row(figure=f"{label}: imports + parse + first ADD, wall", ours=wall, anchor=WALL_TARGET,
                        unit="s", anchor_name="target", target=None, higher_is_better=False,
                        note=f"interpreter start excluded; {install.label}"))
        rows.append(Row(figure=f"{label}: parse + first ADD, peak RSS", ours=rss, anchor=RSS_TARGET_MIB,
                        unit="MiB", anchor_name="target", target=1.0, higher_is_better=False,
                        note=f"whole child process; {install.label}"))
    return rows


@contextmanager
def _netns() -> Iterator[str]:
    """A network namespace path for loopback: a real throwaway one as root, else a fake path."""
    if os.geteuid() == 0 and shutil.which("ip"):
        name = f"cnt-bench-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        try:
            yield f"/var/run/netns/{name}"
        finally:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
    else:
        yield "/var/run/netns/cnt-bench-fake"


def _timed(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stdout!r} {proc.stderr!r}")
    return elapsed


def _skipped(figure: str, reason: str) -> Row:
    return Row(figure=figure, ours=0.0, anchor=0.0, unit="s", anchor_name="absent", target=None,
               higher_is_better=False, note=f"skipped: {reason}")


def exec_rows(quick: bool) -> list[Row]:
    """Figure 4: exec latency of our installed loopback and host-local ADD."""
    try:
        install = installed(quick)
    except InstallUnavailable as exc:
        return [_skipped("loopback and host-local ADD, exec", str(exc))]
    rounds = 3 if quick else 9
    reference_dir = "/usr/lib/cni"
    work = tempfile.mkdtemp(prefix="cnicore-bench-exec-")
    rows: list[Row] = []
    try:
        bin_dir = install.plugins
        data_dir = os.path.join(work, "data")
        base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_IFNAME": "eth0"}
        fake = os.geteuid() != 0
        ours_env = dict(base_env)
        if fake:
            ours_env.update({"CNICORE_BACKEND": "fake", "CNICORE_FAKE_STATE": os.path.join(work, "fake.state")})
        with _netns() as netns:
            lo_conf = json.dumps({"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}).encode()
            hl_conf = json.dumps({"cniVersion": "1.0.0", "name": "benchexec", "type": "bridge",
                                  "ipam": {"type": "host-local", "subnet": "10.130.0.0/16",
                                           "dataDir": data_dir}}).encode()
            counter = iter(range(1_000_000))

            def plugin_add(path: str, conf: bytes, env: dict[str, str], ifname: str, cni_path: str,
                           clean: bool) -> Callable[[], float]:
                def measure() -> float:
                    cid = f"bench-{next(counter)}"
                    call_env = dict(env, CNI_COMMAND="ADD", CNI_CONTAINERID=cid, CNI_NETNS=netns,
                                    CNI_IFNAME=ifname, CNI_PATH=cni_path)
                    elapsed = _timed([path], call_env, conf)
                    if clean:  # release the address untimed, so occupancy stays flat
                        _timed([path], dict(call_env, CNI_COMMAND="DEL"), conf)
                    return elapsed
                return measure

            floor, bare = json_floor(install), bare_start(install)
            fns: dict[str, Callable[[], float]] = {
                "json": lambda: _timed(floor, base_env),
                "bare": lambda: _timed(bare, base_env),
                "ours lo": plugin_add(install.plugin("loopback"), lo_conf, ours_env, "lo", bin_dir, False),
                "ours hl": plugin_add(install.plugin("host-local"), hl_conf, ours_env, "eth0", bin_dir, True),
            }
            have_ref = os.access(os.path.join(reference_dir, "loopback"), os.X_OK) and not fake
            if have_ref:
                fns["ref lo"] = plugin_add(os.path.join(reference_dir, "loopback"), lo_conf, base_env, "lo",
                                           reference_dir, False)
            if os.access(os.path.join(reference_dir, "host-local"), os.X_OK):
                fns["ref hl"] = plugin_add(os.path.join(reference_dir, "host-local"), hl_conf, base_env, "eth0",
                                           reference_dir, True)
            got = interleave(fns, rounds=rounds)
            scale = 1000 if quick else 16000
            full: dict[str, Callable[[], float]] = {
                "ours hl full": plugin_add(install.plugin("host-local"), _filled(work, "ours", scale),
                                           ours_env, "eth0", bin_dir, True),
                "ours hl empty": plugin_add(install.plugin("host-local"), hl_conf, ours_env, "eth0", bin_dir,
                                            True)}
            if "ref hl" in fns:
                full["ref hl full"] = plugin_add(os.path.join(reference_dir, "host-local"),
                                                 _filled(work, "reference", scale), base_env, "eth0",
                                                 reference_dir, True)
            got.update(interleave(full, rounds=rounds))
        how = " (fake backend)" if fake else ""
        floor_name = '`python -IS -c "import json"`, same interpreter'
        for key, label, target in (("ours lo", f"loopback ADD, exec{how}", None),
                                   ("ours hl", "host-local ADD, exec", 1.25)):
            rows.append(Row(figure=label, ours=got[key], anchor=got["json"], unit="s", anchor_name=floor_name,
                            target=target, higher_is_better=False, note=install.label))
            rows.append(Row(figure=f"{label}, vs the bare interpreter start", ours=got[key], anchor=got["bare"],
                            unit="s", anchor_name='`python -IS -c "pass"`, same interpreter', target=None,
                            higher_is_better=False,
                            note=f"{install.label}; no Python plugin can go below this anchor: ours reads JSON "
                                 "without the json package, so it can beat the json floor"))
            ref = "ref lo" if key == "ours lo" else "ref hl"
            if ref in got:
                rows.append(Row(figure=f"{label} vs the reference, exec", ours=got[key], anchor=got[ref], unit="s",
                                anchor_name="reference Go binary, exec", target=None, higher_is_better=False,
                                note=install.label))
        if "ref hl full" in got:
            rows.append(Row(figure=f"host-local ADD, exec, {scale:,} reservations, vs the reference",
                            ours=got["ours hl full"], anchor=got["ref hl full"], unit="s",
                            anchor_name="reference Go binary, exec, as many reservations",
                            target=None, higher_is_better=False, note=install.label))
        rows.append(Row(figure=f"host-local ADD, exec, {scale:,} reservations, vs an empty store",
                        ours=got["ours hl full"], anchor=got["ours hl empty"], unit="s",
                        anchor_name="ours, exec, empty store", target=None, higher_is_better=False,
                        note=install.label))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _filled(work: str, name: str, count: int) -> bytes:
    """A host-local configuration whose store already holds ``count`` reservations (written by our file store,
    byte for byte what either plugin writes); its data directory is ``work/<name>``."""
    from netaddr import IPAddress

    from cnicore.stores import FileStore, Owner

    data_dir = os.path.join(work, name)
    with FileStore(data_dir, "benchfull") as store, store.transaction():
        base = 10 << 24 | 131 << 16
        for i in range(count):
            store.reserve(IPAddress(base + 2 + i, 4), Owner(container_id=f"fill{i}", ifname="eth0"), "0")
    os.sync()
    return json.dumps({"cniVersion": "1.0.0", "name": "benchfull", "type": "bridge",
                       "ipam": {"type": "host-local", "subnet": "10.131.0.0/16", "dataDir": data_dir}}).encode()


def run(quick: bool) -> list[Row]:
    """Figures 3 and 4."""
    return range_rows(quick) + exec_rows(quick)
