"""Several processes on one file store: concurrent ADD/DEL, and processes killed at random instants."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import support
from netaddr import IPAddress

from cnicore.ipam import HostLocalIPAM, load_ipam_config
from cnicore.stores import FileStore, owner_from_text, parse_ip

WORKER = r"""
import json, sys
from cnicore.ipam import HostLocalIPAM
data_dir, worker, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
conf = {"cniVersion": "1.0.0", "name": "mp", "ipam": {"dataDir": data_dir, "ranges": [
    [{"subnet": "10.10.0.0/24"}], [{"subnet": "2001:db8:10::/64", "rangeEnd": "2001:db8:10::400"}]]}}
held = []
log = []
with HostLocalIPAM() as ipam:
    for i in range(rounds):
        cid = f"w{worker}-{i}"
        got = ipam.add(conf, cid, "eth0")
        log.append(("add", cid, [str(x.ip) for x in got.ips]))
        held.append(cid)
        if i % 3 == 2:
            victim = held.pop(0)
            ipam.delete(conf, victim, "eth0")
            log.append(("del", victim, []))
print(json.dumps({"held": held, "log": log}))
"""


def reservations(net: Path) -> dict[str, str]:
    return {p.name: p.read_bytes().decode() for p in net.iterdir() if parse_ip(p.name) is not None}


@pytest.mark.slow
def test_eight_processes_allocate_and_release(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(n), "24"], stdout=subprocess.PIPE,
                              text=True) for n in range(8)]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        results.append(json.loads(out))
    # Replay every worker's log: at no point did two live attachments hold one address.
    files = reservations(tmp_path / "mp")
    expected_live = {cid for r in results for cid in r["held"]}
    owners = {owner_from_text(text) for text in files.values()}
    assert {o.container_id for o in owners if o} == expected_live
    assert len(files) == 2 * len(expected_live)  # one v4 + one v6 each, nothing lost, nothing leaked
    handed_out: dict[str, str] = {}
    for r in results:
        for op, cid, ips in r["log"]:
            if op == "add":
                for ip in ips:
                    if ip in handed_out and handed_out[ip] in expected_live and cid in expected_live:
                        raise AssertionError(f"{ip} handed to {handed_out[ip]} and {cid}")
                    handed_out[ip] = cid
    for r in results:
        for cid in r["held"]:
            addrs = [ip for op, c, ips in r["log"] if op == "add" and c == cid for ip in ips]
            assert all(files[ip] == f"{cid}\r\neth0" for ip in addrs)
    with FileStore(tmp_path, "mp", watch=False) as store:
        assert len(list(store.reservations())) == len(files)


CRASH_CONF = {"cniVersion": "1.0.0", "name": "crash", "ipam": {"ranges": [
    [{"subnet": "10.20.0.0/16"}], [{"subnet": "2001:db8:20::/64"}]]}}


def _crasher(data_dir: str, tag: str, ready: int) -> None:
    """Child body: ADD and DEL forever until killed."""
    conf = {**CRASH_CONF, "ipam": {**CRASH_CONF["ipam"], "dataDir": data_dir}}  # type: ignore[dict-item]
    with HostLocalIPAM() as ipam:
        os.write(ready, b"r")
        i = 0
        while True:
            ipam.add(json.dumps(conf), f"{tag}-{i}", "eth0")
            if i % 2:
                ipam.delete(json.dumps(conf), f"{tag}-{i - 1}", "eth0")
            i += 1


def _spawn(data_dir: str, tag: str) -> tuple[int, int]:
    """Fork a warmed-up child (cnicore already imported) that allocates until killed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            os.close(read_end)
            _crasher(data_dir, tag, write_end)
        finally:
            os._exit(1)
    os.close(write_end)
    return pid, read_end


@pytest.fixture(scope="module")
def crashed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory left behind by 200+ processes killed at random instants while allocating.
    Tests copy it before touching it."""
    tmp_path = tmp_path_factory.mktemp("crashed")
    rng = random.Random(1234)
    killed = 0
    live: list[tuple[int, int]] = []
    n = 0
    # The count matters, not the time: on an idle machine 200 kills take under 10 s; the deadline is only a
    # guard against a hang, generous enough for a machine loaded many times over.
    deadline = time.monotonic() + 240
    while killed < 200 and time.monotonic() < deadline:
        while len(live) < 3:
            live.append(_spawn(str(tmp_path), f"k{n}"))
            n += 1
        pid, ready = live.pop(0)
        if rng.random() < 0.8:
            os.read(ready, 1)  # store open, about to allocate
            time.sleep(rng.uniform(0, 0.02))
        else:
            time.sleep(rng.uniform(0, 0.005))  # while opening the store (or even before)
        os.close(ready)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        killed += 1
    for pid, ready in live:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready)
    assert killed >= 200
    return tmp_path


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(source, target)
    return target


@pytest.mark.slow
def test_processes_killed_at_random_instants(crashed_store: Path, tmp_path: Path) -> None:
    tmp_path = _copy(crashed_store, tmp_path)
    net = tmp_path / "crash"
    files = reservations(net)
    assert files  # killed ADDs leave reservations behind: the checks below are not vacuous
    # Every reservation is complete and well formed; no torn or empty file survived a kill.
    for name, text in files.items():
        owner = owner_from_text(text)
        assert owner is not None and owner.ifname == "eth0" and text == owner.text(), (name, text)
    for name in ("last_reserved_ip.0", "last_reserved_ip.1"):
        if (net / name).exists():
            assert parse_ip((net / name).read_text()) is not None
    # No attachment holds two addresses of one family (an ADD is all or nothing only while it runs; a kill
    # may leave one family of an ADD behind, never a duplicate).
    seen: dict[tuple[str, int], str] = {}
    for name, text in files.items():
        owner = owner_from_text(text)
        assert owner is not None
        key = (owner.container_id, IPAddress(name).version)
        assert key not in seen, f"{owner} holds {seen.get(key)} and {name}"
        seen[key] = name
    # Our store reads it all back and sweeps the debris; the reference plugin (if installed) works on it.
    with FileStore(tmp_path, "crash") as store:
        assert len(list(store.reservations())) == len(files)
        assert not [p for p in net.iterdir() if p.name.startswith(".cnicore-")]
    conf = load_ipam_config({"cniVersion": "1.0.0", "name": "crash", "ipam": {"dataDir": str(tmp_path), "ranges": [
        [{"subnet": "10.20.0.0/16"}], [{"subnet": "2001:db8:20::/64"}]]}})
    with HostLocalIPAM() as ipam:
        got = ipam.add(conf, "after", "eth0")
        assert all(str(ip.ip) not in files for ip in got.ips)
        released = ipam.gc(conf, [("after", "eth0")])
        assert len(released) == len(files)


@pytest.mark.slow
@pytest.mark.reference
def test_reference_allocates_around_a_crashed_store(crashed_store: Path, tmp_path: Path) -> None:
    """The reference host-local works on what the killed processes left: it hands out none of their addresses."""
    plugin = support.reference_plugin("host-local")
    tmp_path = _copy(crashed_store, tmp_path)
    files = reservations(tmp_path / "crash")
    env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "go-after", "CNI_NETNS": "x", "CNI_IFNAME": "eth0",
           "CNI_PATH": str(plugin.parent)}
    raw = {"cniVersion": "0.4.0", "name": "crash", "ipam": {"type": "host-local", "dataDir": str(tmp_path),
                                                            "ranges": [[{"subnet": "10.20.0.0/16"}]]}}
    out = subprocess.run([str(plugin)], input=json.dumps(raw).encode(), env=env, capture_output=True, check=True)
    go_ip = json.loads(out.stdout)["ips"][0]["address"].split("/")[0]
    assert go_ip not in files
    assert (tmp_path / "crash" / go_ip).read_bytes() == b"go-after\r\neth0"
