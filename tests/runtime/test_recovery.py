"""Crash safety and concurrency: a runtime killed between plugins, stale and live journals, many processes."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import clean_env, records, reservations, write_conflist

from cnicore import IOFailureError
from cnicore._plugin_main import FakeState
from cnicore.plugins import install_plugins
from cnicore.runtime import Runtime, _journal, encode_cache_entry, list_cache_entries
from cnicore.runtime._cache import CACHE_TEMP_STALE_SECONDS
from cnicore.runtime._journal import PendingAttachment, create_pending

NS = "/var/run/netns/cnt-crash"

ATTACH_SCRIPT = """
import json, sys
from cnicore.runtime import Runtime
settings = json.loads(sys.argv[1])
with Runtime(**settings["runtime"]) as rt:
    rt.attach(*settings["attach"])
"""


def _wait_for(path: Path, process: subprocess.Popen[bytes], limit: float = 120.0) -> None:
    """Wait until ``path`` exists (the test plugin is running); fail if the runtime exits first."""
    deadline = time.monotonic() + limit
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the runtime exited early: {process.stderr.read().decode() if process.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail("the test plugin never started")
        time.sleep(0.02)


def _links(state: Path) -> tuple[list[str], list[str]]:
    with FakeState(str(state)) as kernel:
        backend = kernel.backend
        container = sorted(link.name for link in backend.list_links(backend.open_namespace(NS)) if link.name != "lo")
        veths = sorted(link.name for link in backend.list_links(backend.host_namespace()) if link.kind == "veth")
    return container, veths


def _kill_runtime_and_plugin(process: subprocess.Popen[bytes], signal_file: Path) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # The plugin runs in a session of its own (so that a timeout can kill its whole group): kill it too.
    if signal_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(signal_file.read_text()), signal.SIGKILL)


def test_a_runtime_killed_between_plugins_is_recovered(tmp_path: Path, dirs: dict[str, Path]) -> None:
    install_plugins(dirs["bin"])
    state = tmp_path / "kernel.state"
    with FakeState(str(state)) as kernel:
        kernel.backend.add_namespace(NS)
    signal_file = tmp_path / "plugin-running"
    log = tmp_path / "calls.jsonl"
    bridge = {"type": "bridge", "bridge": "cnt-br0", "isGateway": True,
              "ipam": {"type": "host-local", "subnet": "10.7.0.0/24", "dataDir": str(dirs["data"])}}
    write_conflist(dirs["net.d"], "crashnet", [
        bridge, {"type": "noop", "signal": str(signal_file), "sleep": 120, "record": str(log)},
        {"type": "second", "record": str(log)}])
    env = {**clean_env(), "CNICORE_BACKEND": "fake", "CNICORE_FAKE_STATE": str(state)}
    settings = {"runtime": {"config_dir": str(dirs["net.d"]), "plugin_path": [str(dirs["bin"])],
                            "cache_dir": str(dirs["cache"]), "in_process": False, "environ": env},
                "attach": ["crashed", "crashnet", NS]}
    process = subprocess.Popen([sys.executable, "-c", ATTACH_SCRIPT, json.dumps(settings)], start_new_session=True,
                               stderr=subprocess.PIPE)
    try:
        _wait_for(signal_file, process)
    finally:
        _kill_runtime_and_plugin(process, signal_file)

    # What the killed ADD left: an address, a link, a journal entry; no cache entry.
    assert list(reservations(dirs["data"], "crashnet").values()) == ["crashed\r\neth0"]
    assert _links(state)[0] == ["eth0"]
    assert list_cache_entries(dirs["cache"]) == []
    runtime_settings: dict[str, Any] = settings["runtime"]  # type: ignore[assignment]
    with Runtime(**runtime_settings) as rt:
        report = rt.recover()
        assert [(p.container_id, p.ifname, p.netns) for p in report.released] == [("crashed", "eth0", NS)]
        assert report.errors == () and report.in_progress == ()
        assert rt.recover().released == ()
    assert reservations(dirs["data"], "crashnet") == {}
    assert _links(state) == ([], [])
    assert list_cache_entries(dirs["cache"]) == []
    assert list((dirs["cache"] / "cnicore" / "pending").iterdir()) == []
    # DEL ran on every plugin of the list, in reverse, without a prevResult.
    dels = [c for c in records(log) if c["command"] == "DEL"]
    assert [c["type"] for c in dels] == ["second", "noop"]
    assert all("prevResult" not in json.loads(c["stdin"]) for c in dels)


def test_a_journal_whose_add_was_committed_is_just_removed(dirs: dict[str, Path]) -> None:
    log = dirs["cache"].parent / "calls.jsonl"
    path = write_conflist(dirs["net.d"], "net", [{"type": "noop", "record": str(log)}])
    entry = PendingAttachment(network="net", container_id="c1", ifname="eth0", netns="/x", config=path.read_bytes())
    create_pending(dirs["cache"], entry).release()  # its writer is gone
    cache = dirs["cache"] / "results" / "net-c1-eth0"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(encode_cache_entry(network="net", container_id="c1", ifname="eth0", config=path.read_bytes()))
    with Runtime(config_dir=dirs["net.d"], plugin_path=[str(dirs["bin"])], cache_dir=dirs["cache"]) as rt:
        report = rt.recover()
    assert [p.key for p in report.stale] == [("net", "c1", "eth0")] and report.released == ()
    assert records(log) == [] and cache.exists()


def test_recover_removes_the_temporary_file_of_a_journal_writer_that_died(dirs: dict[str, Path]) -> None:
    log = dirs["cache"].parent / "calls.jsonl"
    write_conflist(dirs["net.d"], "net", [{"type": "noop", "record": str(log)}])
    writer = subprocess.Popen(["true"])
    writer.wait()
    debris = Path(_journal.own_dir(dirs["cache"])) / "pending" / f".tmp.{writer.pid}-0123456789abcdef"
    debris.parent.mkdir(parents=True)
    debris.write_bytes(b'{"kind": "cnicorePendingV1"')  # died while writing
    with Runtime(config_dir=dirs["net.d"], plugin_path=[str(dirs["bin"])], cache_dir=dirs["cache"]) as rt:
        report = rt.recover()
    assert report.released == report.stale == () and report.errors == ()
    assert os.listdir(debris.parent) == [] and records(log) == []


CRASHED_CACHE_WRITER = """
import os, sys
from cnicore.runtime import _cache
def crash(src, dst):
    os._exit(9)  # killed after the temporary file was written, before the rename
os.replace = crash
_cache.write_file_atomically(sys.argv[1], b'{"kind": "cniCacheV1"}')
"""


def _crashed_cache_write(dirs: dict[str, Path]) -> Path:
    """A cache write killed between its temporary file and the rename: the debris it leaves."""
    results = dirs["cache"] / "results"
    target = results / "net-c1-eth0"
    died = subprocess.run([sys.executable, "-c", CRASHED_CACHE_WRITER, str(target)], capture_output=True, check=False)
    assert died.returncode == 9, died.stderr
    assert not target.exists()
    (debris,) = [p for p in results.iterdir() if p.name.startswith(".tmp.")]
    return debris


@pytest.mark.parametrize("how", ["recover", "gc"])
def test_recover_and_gc_remove_what_a_crashed_cache_write_left_once_it_is_old(dirs: dict[str, Path], how: str) -> None:
    write_conflist(dirs["net.d"], "net", [{"type": "noop"}])
    debris = _crashed_cache_write(dirs)
    results = debris.parent
    entry = results / "net-c2-eth0"
    entry.write_bytes(encode_cache_entry(network="net", container_id="c2", ifname="eth0", config=b"{}"))
    others = [results / ".tmp.fresh", results / ".hidden"]
    for path in others:
        path.write_bytes(b"")
    (results / ".tmp.directory").mkdir()
    old = time.time() - CACHE_TEMP_STALE_SECONDS - 1  # no writer holds a temporary file that long
    for path in (debris, results / ".hidden", results / ".tmp.directory"):
        os.utime(path, (old, old))
    with Runtime(config_dir=dirs["net.d"], plugin_path=[str(dirs["bin"])], cache_dir=dirs["cache"]) as rt:
        if how == "recover":
            assert rt.recover().errors == ()
        else:
            rt.gc(live=["c2"])
    # The debris went; a fresh temporary file (a write in progress, for all anyone knows), other dot files, a
    # directory and the entries stayed.
    assert sorted(p.name for p in results.iterdir()) == [".hidden", ".tmp.directory", ".tmp.fresh", "net-c2-eth0"]
    assert len(list_cache_entries(dirs["cache"])) == 1


def test_a_young_temporary_file_of_a_cache_write_is_left_alone(dirs: dict[str, Path]) -> None:
    # Its writer may be alive in another pid namespace: only age tells (the name holds no pid).
    from cnicore.runtime._cache import sweep_cache_temporaries

    debris = _crashed_cache_write(dirs)
    assert sweep_cache_temporaries(dirs["cache"]) == 0
    assert debris.exists()
    old = time.time() - CACHE_TEMP_STALE_SECONDS + 60  # a write stalled for minutes keeps its file
    os.utime(debris, (old, old))
    assert sweep_cache_temporaries(dirs["cache"]) == 0
    old = time.time() - CACHE_TEMP_STALE_SECONDS - 1
    os.utime(debris, (old, old))
    assert sweep_cache_temporaries(dirs["cache"]) == 1
    assert not debris.exists()
    assert sweep_cache_temporaries(dirs["cache"] / "none") == 0  # no directory: nothing to do


def test_the_cache_sweep_counts_what_it_removed_goes_past_failures_and_keeps_links(
        dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnicore.runtime import _cache

    results = dirs["cache"] / "results"
    results.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.write_bytes(b"kept")
    names = [".tmp.stuck", ".tmp.link", ".tmp.a", ".tmp.b"]
    for name in names:
        if name == ".tmp.link":
            (results / name).symlink_to(outside)  # judged by itself, not by what it points to: no debris of ours
        else:
            (results / name).write_bytes(b"")
    old = time.time() - CACHE_TEMP_STALE_SECONDS - 1
    for path in (outside, *(results / n for n in names if n != ".tmp.link")):
        os.utime(path, (old, old))
    real_unlink = os.unlink

    def stuck(path: str, *args: object, **kwargs: object) -> None:
        if path.endswith(".tmp.stuck"):
            raise PermissionError(1, "Operation not permitted", path)
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "unlink", stuck)
    monkeypatch.setattr(os, "listdir", lambda directory: list(names))  # the one that cannot go comes first
    assert _cache.sweep_cache_temporaries(dirs["cache"]) == 2
    monkeypatch.undo()
    assert sorted(p.name for p in results.iterdir()) == [".tmp.link", ".tmp.stuck"]
    assert outside.read_bytes() == b"kept"


def test_a_journal_entry_that_cannot_be_made_durable_is_not_left_behind(
        dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    entry = PendingAttachment(network="net", container_id="c1", ifname="eth0")

    def failing_fsync(directory: str) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(_journal, "fsync_directory", failing_fsync)
    with pytest.raises(IOFailureError, match="failed to write journal entry"):
        create_pending(dirs["cache"], entry)
    pending = Path(_journal.pending_path(dirs["cache"], "net", "c1", "eth0"))
    assert not pending.exists() and os.listdir(pending.parent) == []
    monkeypatch.undo()
    create_pending(dirs["cache"], entry).release()  # the interface name is not blocked
    assert pending.exists()


def test_a_running_attach_is_left_alone_by_recover_detach_and_gc(dirs: dict[str, Path]) -> None:
    log = dirs["cache"].parent / "calls.jsonl"
    path = write_conflist(dirs["net.d"], "net", [{"type": "noop", "record": str(log)}], version="1.1.0")
    entry = PendingAttachment(network="net", container_id="c1", ifname="eth0", config=path.read_bytes())
    held = create_pending(dirs["cache"], entry)  # as an attach in progress holds it
    try:
        with Runtime(config_dir=dirs["net.d"], plugin_path=[str(dirs["bin"])], cache_dir=dirs["cache"]) as rt:
            report = rt.recover()
            assert report.in_progress == (held.path,) and report.released == ()
            with pytest.raises(Exception, match="is in progress") as caught:
                rt.detach("c1", "net", ifname="eth0")
            assert getattr(caught.value, "code", None) == 11
            # Its interface name is taken; GC counts it as valid.
            assert rt.attach("c1", "net", "/x") is not None
            assert [a.ifname for a in rt.attachments("c1")] == ["eth1"]
            assert rt.gc([]).valid == {"net": (("c1", "eth0"),)}
    finally:
        held.release()
    assert [c["command"] for c in records(log)] == ["ADD", "DEL", "GC"]


WORKER = """
import json, os, sys, time
from cnicore.runtime import Runtime
settings = json.loads(sys.argv[1])
out = []
with Runtime(**settings["runtime"]) as rt:
    for cid in settings["containers"]:
        entry = rt.attach_entry(cid, "pool", "/var/run/netns/none")
        out.append({"cid": cid, "ifname": entry.ifname, "ip": str(entry.result.ips[0].address.ip)})
    with open(sys.argv[2] + ".tmp", "w") as handle:
        json.dump(out, handle)
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    while not os.path.exists(settings["go"]):  # every worker finished phase one
        time.sleep(0.01)
    for item in out[::2]:
        rt.detach(item["cid"], "pool", ifname=item["ifname"])
    for cid in settings["containers"][1::2]:
        rt.attach(cid, "pool", "/var/run/netns/none")
"""


@pytest.mark.slow
def test_many_processes_attach_and_detach_without_duplicates(tmp_path: Path, dirs: dict[str, Path]) -> None:
    ipam = {"type": "host-local", "subnet": "10.6.0.0/22", "dataDir": str(dirs["data"])}
    write_conflist(dirs["net.d"], "pool", [{"type": "host-local", "ipam": ipam}])
    containers = [f"c{i}" for i in range(12)]
    go = tmp_path / "go"
    settings = {"runtime": {"config_dir": str(dirs["net.d"]), "plugin_path": [str(dirs["bin"])],
                            "cache_dir": str(dirs["cache"])}, "containers": containers, "go": str(go)}
    results = [tmp_path / f"phase-one-{n}.json" for n in range(4)]
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(settings), str(path)],
                                stderr=subprocess.PIPE) for path in results]
    try:
        for worker, path in zip(workers, results, strict=True):
            _wait_for(path, worker, limit=600)
        # Phase one (all attaches at once): one interface per worker and container, no address twice.
        outputs = [item for path in results for item in json.loads(path.read_text())]
        assert len(outputs) == 4 * len(containers)
        assert len({(o["cid"], o["ifname"]) for o in outputs}) == len(outputs)
        assert len({o["ip"] for o in outputs}) == len(outputs)
        for cid in containers:
            assert sorted(o["ifname"] for o in outputs if o["cid"] == cid) == ["eth0", "eth1", "eth2", "eth3"]
    finally:
        go.touch()
        for worker in workers:
            _, err = worker.communicate(timeout=600)
            assert worker.returncode == 0, err.decode()
    # Phase two (detaches and attaches at once): the cache and host-local's reservations describe exactly the
    # same attachments, and no container has an interface name twice.
    cached = list_cache_entries(dirs["cache"], network="pool")
    by_ip = {str(a.result.ips[0].address.ip): f"{a.container_id}\r\n{a.ifname}" for a in cached if a.result}
    assert len(by_ip) == len(cached) == 4 * len(containers) - 2 * len(containers) + 4 * len(containers[1::2])
    assert reservations(dirs["data"], "pool") == by_ip
    assert list((dirs["cache"] / "cnicore" / "pending").iterdir()) == []
