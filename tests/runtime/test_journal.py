"""The ADD journal and the runtime's locks, file by file: what recover() relies on after a crash.

A journal entry must be whole and locked the moment anyone can see it, never replace another, never be taken from
a writer that is alive, and read back exactly what was written (DEL replays it); a torn or foreign file is an
error naming the file, never a half-read entry. The writer here is a real process killed at its crash point where
that matters; ``flock`` also conflicts between two ``open()`` calls of one process, which the rest rely on.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest

from cnicore import DecodingError, IOFailureError, TryAgainLaterError
from cnicore._atomicfile import STALE_TEMP_SECONDS, temp_abandoned, temp_writer_pid
from cnicore._readfile import open_regular
from cnicore.runtime import _journal
from cnicore.runtime._journal import (
    PENDING_KIND,
    PendingAttachment,
    PendingLock,
    RuntimeLocks,
    claim_pending,
    create_pending,
    is_pending_alive,
    list_pending,
    pending_path,
    read_pending,
)

ENTRY = PendingAttachment(
    network="net", container_id="c1", ifname="eth0", netns="/var/run/netns/x",
    cni_args=(("K8S_POD_NAME", "web"), ("IgnoreUnknown", "1")),
    capability_args={"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
                     "bandwidth": {"ingressRate": 1.5}},
    config=b'{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"noop"}]}',
    plugins=(b'{"type":"noop"}', b'{"type":"second","x":"\\u00e9"}'), pid=4242)

WRITER = """
import json, sys, time
from cnicore.runtime._journal import PendingAttachment, create_pending
settings = json.loads(sys.argv[1])
held = create_pending(settings["cache"], PendingAttachment(network="net", container_id=settings["cid"],
                                                            ifname="eth0", netns="/var/run/netns/w"))
print(held.path, flush=True)
time.sleep(600)  # killed here, between its first plugin and its commit
"""


def _fields(entry: PendingAttachment) -> tuple[object, ...]:
    return (entry.network, entry.container_id, entry.ifname, entry.netns, entry.cni_args,
            dict(entry.capability_args), entry.config, entry.plugins, entry.pid)


def _start_writer(cache: Path, cid: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", WRITER, json.dumps({"cache": str(cache), "cid": cid})],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line:
        process.wait()
        pytest.fail(f"the writer failed: {process.stderr.read() if process.stderr else ''}")
    return process, line


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.communicate()


def test_an_entry_is_written_whole_where_recovery_looks_and_read_back_exactly(tmp_path: Path) -> None:
    held = create_pending(tmp_path, ENTRY)
    try:
        path = tmp_path / "cnicore" / "pending" / "net-c1-eth0"
        assert held.path == str(path) == pending_path(tmp_path, "net", "c1", "eth0")
        assert held.entry is not None and held.entry.path == str(path) and _fields(held.entry) == _fields(ENTRY)
        assert sorted(os.listdir(path.parent)) == ["net-c1-eth0"]  # no temporary file left
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        document = json.loads(path.read_bytes())
        assert document["kind"] == PENDING_KIND
        assert base64.b64decode(document["plugins"][1]) == ENTRY.plugins[1]
        read = read_pending(str(path))
        assert read is not None and read.path == str(path) and _fields(read) == _fields(ENTRY)
    finally:
        held.release()
    claimed = claim_pending(str(path))
    assert claimed is not None and claimed.entry is not None and claimed.error is None
    with claimed:
        assert _fields(claimed.entry) == _fields(ENTRY) and claimed.entry.path == str(path)


def test_the_writer_pid_is_recorded_unless_given(tmp_path: Path) -> None:
    with create_pending(tmp_path, PendingAttachment(network="n", container_id="c", ifname="eth0")) as held:
        assert held.entry is not None and held.entry.pid == os.getpid()
    read = read_pending(held.path)
    assert read is not None and read.pid == os.getpid()
    with create_pending(tmp_path, PendingAttachment(network="n", container_id="c", ifname="eth1", pid=7)) as held:
        pass
    read = read_pending(held.path)
    assert read is not None and read.pid == 7


def test_an_empty_entry_reads_back_empty(tmp_path: Path) -> None:
    with create_pending(tmp_path, PendingAttachment(network="n", container_id="c", ifname="eth0", pid=1)) as held:
        pass
    read = read_pending(held.path)
    assert read is not None
    assert _fields(read) == ("n", "c", "eth0", "", (), {}, b"", (), 1)


def test_a_second_entry_for_the_attachment_never_replaces_the_first(tmp_path: Path) -> None:
    first = create_pending(tmp_path, ENTRY)
    try:
        other = PendingAttachment(network="net", container_id="c1", ifname="eth0", netns="/other")
        with pytest.raises(TryAgainLaterError) as caught:
            create_pending(tmp_path, other)
        assert caught.value.code == 11
        assert caught.value.msg == "an attach of c1 (eth0) to network net is already pending"
        assert caught.value.details == first.path
        read = read_pending(first.path)
        assert read is not None and read.netns == ENTRY.netns
        assert os.listdir(os.path.dirname(first.path)) == ["net-c1-eth0"]
        assert claim_pending(first.path) is None  # the first writer still holds its lock
    finally:
        first.release()
    # The failed attempt left no lock behind either: the entry is now abandoned, and claimed.
    claimed = claim_pending(first.path)
    assert claimed is not None
    claimed.release()


def test_a_failed_write_leaves_nothing_and_says_which_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(IOFailureError) as caught:
        create_pending(tmp_path, ENTRY)
    monkeypatch.setattr(os, "fsync", real_fsync)
    path = pending_path(tmp_path, "net", "c1", "eth0")
    assert caught.value.msg == f"failed to write journal entry {path}: Input/output error"
    assert os.listdir(os.path.dirname(path)) == []


def test_an_interrupted_write_is_not_turned_into_an_io_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(directory: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_journal, "fsync_directory", interrupted)
    with pytest.raises(KeyboardInterrupt):
        create_pending(tmp_path, ENTRY)
    monkeypatch.undo()
    path = pending_path(tmp_path, "net", "c1", "eth0")
    assert os.listdir(os.path.dirname(path)) == []  # linked, then unlinked again: no plugin ran
    create_pending(tmp_path, ENTRY).release()  # and no lock or entry blocks the attachment


def test_a_live_writer_keeps_its_entry_and_a_killed_one_gives_it_up(tmp_path: Path) -> None:
    process, path = _start_writer(tmp_path, "alive")
    try:
        assert list_pending(tmp_path) == [path]
        assert is_pending_alive(path)
        assert claim_pending(path) is None
        assert is_pending_alive(path)  # asking took no lock
    finally:
        _kill(process)
    assert not is_pending_alive(path)
    assert not is_pending_alive(path)  # asking took no lock
    claimed = claim_pending(path)
    assert claimed is not None and claimed.entry is not None
    with claimed:
        assert (claimed.entry.container_id, claimed.entry.netns, claimed.entry.pid) == \
            ("alive", "/var/run/netns/w", process.pid)
        assert claim_pending(path) is None  # one claimer at a time
        assert is_pending_alive(path)
        claimed.remove()
        assert not os.path.exists(path)
        claimed.remove()  # idempotent
        assert claim_pending(path) is None and not is_pending_alive(path)
    claimed.release()  # idempotent
    assert list_pending(tmp_path) == []


def test_a_torn_or_foreign_entry_is_claimed_with_the_error_never_half_read(tmp_path: Path) -> None:
    with create_pending(tmp_path, ENTRY) as held:
        pass
    whole = Path(held.path).read_bytes()
    variants = {
        "torn": whole[: len(whole) // 2],
        "empty": b"",
        "not a journal": whole.replace(PENDING_KIND.encode(), b"cniCacheV1"),
        "a list": b"[]",
        "no network": json.dumps({"kind": PENDING_KIND, "containerId": "c1", "ifName": "eth0"}).encode(),
        "bad config": whole.replace(base64.b64encode(ENTRY.config), b"e30=!"),  # b"{}" with a byte torn in
        "bad plugin": whole.replace(base64.b64encode(ENTRY.plugins[0]), b"e3!0="),
        "bad pid": whole.replace(b'"pid":4242', b'"pid":"x"'),
        "bad args": whole.replace(b'["IgnoreUnknown","1"]', b'["IgnoreUnknown"]'),
    }
    for what, data in variants.items():
        Path(held.path).write_bytes(data)
        assert read_pending(held.path) is None, what
        claimed = claim_pending(held.path)
        assert claimed is not None and claimed.entry is None, what
        with claimed:
            assert claimed.path == held.path, what
            assert isinstance(claimed.error, DecodingError), what
            assert claimed.error.msg.startswith(f"unreadable journal entry {held.path}: "), what
            assert (claimed.error.key, claimed.error.value, claimed.error.code) == ("journal", held.path, 6), what
            assert claim_pending(held.path) is None, what  # held, though unreadable
    # Torn inside a character (the netns below is not ASCII).
    with create_pending(tmp_path, PendingAttachment(network="n", container_id="c", ifname="eth0",
                                                    netns="/run/netns/é")) as held_utf8:
        pass
    data = Path(held_utf8.path).read_bytes()
    cut = data.index("é".encode()) + 1
    Path(held_utf8.path).write_bytes(data[:cut])
    claimed = claim_pending(held_utf8.path)
    assert claimed is not None and claimed.error is not None
    claimed.release()
    assert claimed.error.msg == (f"unreadable journal entry {held_utf8.path}: error decoding journal entry: "
                                 f"invalid UTF-8 at byte {cut - 1}")
    Path(held.path).write_bytes(variants["not a journal"])
    claimed = claim_pending(held.path)
    assert claimed is not None and claimed.error is not None
    claimed.release()
    assert claimed.error.msg == f"unreadable journal entry {held.path}: not a journal entry"


def test_null_fields_read_as_empty(tmp_path: Path) -> None:
    path = Path(pending_path(tmp_path, "n", "c", "eth0"))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"kind": PENDING_KIND, "networkName": "n", "containerId": "c", "ifName": "eth0",
                                "netns": None, "cniArgs": None, "capabilityArgs": None, "config": None,
                                "plugins": None, "pid": None}))
    read = read_pending(str(path))
    assert read is not None and _fields(read) == ("n", "c", "eth0", "", (), {}, b"", (), 0)


def test_claiming_gives_up_when_the_writer_removes_its_entry_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The writer commits (unlinks its entry) between the claimer's open and its lock: the lock is on an inode
    # nobody will see again, so it must not count as a claim, whether the name is gone or already reused.
    with create_pending(tmp_path, ENTRY) as held:
        pass
    real_open = open_regular

    def open_then_writer_commits(path: str) -> tuple[int, os.stat_result]:
        opened = real_open(path)
        os.unlink(path)
        return opened

    monkeypatch.setattr(_journal, "open_regular", open_then_writer_commits)
    assert claim_pending(held.path) is None
    assert not is_pending_alive(held.path)
    monkeypatch.undo()
    assert not os.path.exists(held.path)

    with create_pending(tmp_path, ENTRY) as held:
        pass
    replaced: list[PendingLock] = []

    def open_then_name_reused(path: str) -> tuple[int, os.stat_result]:
        opened = real_open(path)
        os.unlink(path)
        replaced.append(create_pending(tmp_path, ENTRY))  # a new attach of the same name, alive
        return opened

    monkeypatch.setattr(_journal, "open_regular", open_then_name_reused)
    try:
        assert claim_pending(held.path) is None
    finally:
        for lock in replaced:
            lock.release()

    def open_then_directory_replaced(path: str) -> tuple[int, os.stat_result]:
        opened = real_open(path)
        directory = os.path.dirname(path)
        os.rename(directory, directory + ".old")
        Path(directory).write_text("not a directory")
        return opened

    monkeypatch.setattr(_journal, "open_regular", open_then_directory_replaced)
    with pytest.raises(IOFailureError, match=f"failed to open journal entry {held.path}: Not a directory"):
        claim_pending(held.path)
    directory = os.path.dirname(held.path)
    os.unlink(directory)
    os.rename(directory + ".old", directory)
    monkeypatch.undo()
    # Every descriptor of the failed claims was closed: nothing holds the new entry now.
    claimed = claim_pending(held.path)
    assert claimed is not None
    claimed.release()


def test_journal_files_that_cannot_be_reached_are_io_errors(tmp_path: Path) -> None:
    own = tmp_path / "cnicore"
    own.mkdir()
    (own / "pending").write_text("not a directory")
    with pytest.raises(IOFailureError, match=r"failed to list journal directory .*/cnicore/pending: Not a directory"):
        list_pending(tmp_path)
    inside = str(own / "pending" / "net-c1-eth0")
    with pytest.raises(IOFailureError, match=f"failed to open journal entry {inside}: Not a directory"):
        claim_pending(inside)
    with pytest.raises(IOFailureError, match=f"failed to remove journal entry {inside}: Not a directory"):
        PendingLock(inside, -1, None).remove()
    assert read_pending(inside) is None
    with pytest.raises(IOFailureError) as caught:
        create_pending(tmp_path, ENTRY)
    assert caught.value.msg == f"failed to create directory {own / 'pending'}: File exists"
    # A directory where an entry should be is no entry, and no claim.
    (own / "pending").unlink()
    directory = own / "pending" / "net-c1-eth0"
    directory.mkdir(parents=True)
    with pytest.raises(IOFailureError, match=f"failed to open journal entry {directory}: Is a directory"):
        claim_pending(str(directory))
    assert read_pending(str(directory)) is None


def test_an_entry_too_large_to_read_is_an_io_error_and_stays_unclaimed(tmp_path: Path) -> None:
    with create_pending(tmp_path, ENTRY) as held:
        pass
    os.truncate(held.path, (64 << 20) + 1)  # sparse: larger than any document cnicore reads whole
    for _ in range(2):  # the first attempt dropped its lock: the second fails the same way
        with pytest.raises(IOFailureError, match=f"failed to read journal entry {held.path}: larger than"):
            claim_pending(held.path)
    assert read_pending(held.path) is None


def test_listing_keeps_entries_sorted_skips_temporaries_and_filters_by_container(tmp_path: Path) -> None:
    assert list_pending(tmp_path) == []  # no directory yet
    held = [create_pending(tmp_path, PendingAttachment(network=net, container_id=cid, ifname=ifname))
            for net, cid, ifname in [("b", "c1", "eth0"), ("a", "c2", "eth0"), ("a", "c1", "eth1"),
                                     ("a", "c10", "eth0")]]
    try:
        directory = tmp_path / "cnicore" / "pending"
        (directory / ".tmp.0123456789abcdef").write_bytes(b"")
        assert list_pending(tmp_path) == [str(directory / n) for n in ("a-c1-eth1", "a-c10-eth0", "a-c2-eth0",
                                                                      "b-c1-eth0")]
        assert list_pending(tmp_path, "c1") == [str(directory / n) for n in ("a-c1-eth1", "b-c1-eth0")]
        assert list_pending(tmp_path, "c3") == []
    finally:
        for lock in held:
            lock.release()


def test_a_shared_lock_admits_others_shared_and_an_exclusive_one_waits_then_times_out(tmp_path: Path) -> None:
    locks = RuntimeLocks(tmp_path, timeout=0.2)
    lock_file = tmp_path / "cnicore" / "locks" / "gc-net"
    with locks.gc_lock("net", exclusive=False), locks.gc_lock("net", exclusive=False):
        assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(lock_file.parent.stat().st_mode) == 0o700
        with pytest.raises(TryAgainLaterError) as caught:
            locks.gc_lock("net", exclusive=True).__enter__()
        assert caught.value.msg == "timed out after 0.2 s waiting for the GC lock of network net"
        assert (caught.value.code, caught.value.details) == (11, str(lock_file))
        with locks.gc_lock("other", exclusive=True):  # another network's lock is another file
            pass
    with locks.gc_lock("net", exclusive=True), pytest.raises(TryAgainLaterError):
        locks.gc_lock("net", exclusive=False).__enter__()
    with locks.gc_lock("net", exclusive=True):  # every lock was dropped, the timed-out ones included
        pass
    assert os.listdir(lock_file.parent) == ["gc-net", "gc-other"]  # lock files are never deleted


def test_a_waiting_lock_is_granted_once_the_holder_lets_go(tmp_path: Path) -> None:
    locks = RuntimeLocks(tmp_path, timeout=600)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from cnicore.runtime._journal import RuntimeLocks\n"
         "with RuntimeLocks(sys.argv[1], 10).gc_lock('net', exclusive=True):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(float(sys.argv[2]))\n", str(tmp_path), "0.5"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with locks.gc_lock("net", exclusive=True):  # waited for, not refused
            pass
    finally:
        _kill(holder)


def test_attach_stripes_are_32_lock_files_one_per_container_id(tmp_path: Path) -> None:
    locks = RuntimeLocks(tmp_path, timeout=0.05)
    for number in range(400):
        with locks.attach_stripe(f"container-{number}"):
            pass
    directory = tmp_path / "cnicore" / "locks"
    assert sorted(os.listdir(directory)) == [f"attach-{n:02d}" for n in range(32)]
    with locks.attach_stripe("container-1"):
        with pytest.raises(TryAgainLaterError) as caught:
            locks.attach_stripe("container-1").__enter__()
        assert caught.value.msg == ("timed out after 0.05 s waiting for the interface-name lock of container "
                                    "container-1")
    with locks.attach_stripe("c\udcff-é"):  # any container ID (undecodable bytes included) has a stripe
        pass


def test_a_lock_file_that_cannot_be_opened_is_an_io_error(tmp_path: Path) -> None:
    (tmp_path / "cnicore" / "locks" / "gc-net").mkdir(parents=True)
    with pytest.raises(IOFailureError, match=r"failed to open lock file .*/locks/gc-net: Is a directory"):
        RuntimeLocks(tmp_path, timeout=1).gc_lock("net", exclusive=True).__enter__()


def _failing_flush(directory: str) -> None:
    raise OSError(5, "Input/output error")


def _crash_in_child(crash: str, cache: Path, entry: PendingAttachment) -> None:
    """create_pending in a forked process that dies (no clean-up of any kind) when it reaches ``crash``."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into the test runner
        try:
            if crash == "before the entry is linked":
                os.fsync = lambda fd: os._exit(0)
            else:
                _journal.fsync_directory = lambda directory: os._exit(0)  # type: ignore[attr-defined]
            create_pending(cache, entry)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"the writer never reached its crash point {crash}"


def test_a_writer_that_dies_before_linking_leaves_no_entry(tmp_path: Path) -> None:
    _crash_in_child("before the entry is linked", tmp_path, ENTRY)
    directory = tmp_path / "cnicore" / "pending"
    left = os.listdir(directory)
    assert len(left) == 1 and left[0].startswith(".")  # its temporary file, a dot file beside the entries
    assert os.listdir(tmp_path) == ["cnicore"]
    assert list_pending(tmp_path) == []
    create_pending(tmp_path, ENTRY).release()  # the name is free


def test_a_writer_that_dies_after_linking_leaves_a_whole_entry_to_recover(tmp_path: Path) -> None:
    _crash_in_child("after the entry is linked", tmp_path, ENTRY)
    path = pending_path(tmp_path, "net", "c1", "eth0")
    assert list_pending(tmp_path) == [path] and not is_pending_alive(path)
    claimed = claim_pending(path)
    assert claimed is not None and claimed.entry is not None
    with claimed:
        assert _fields(claimed.entry) == _fields(ENTRY)


def test_locks_on_descriptor_zero_are_dropped_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A daemon may run with its standard input closed: then a lock gets descriptor 0.
    saved = os.dup(0)
    try:
        os.close(0)
        with monkeypatch.context() as patched:
            patched.setattr(_journal, "fsync_directory", _failing_flush)
            with pytest.raises(IOFailureError):
                create_pending(tmp_path, ENTRY)
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(0)  # the failed write closed its descriptor
        held = create_pending(tmp_path, ENTRY)
        held.release()
        claimed = claim_pending(held.path)  # the writer's lock is gone
        assert claimed is not None
        claimed.release()
        again = claim_pending(held.path)
        assert again is not None
        again.release()
        locks = RuntimeLocks(tmp_path, timeout=0.05)
        with locks.gc_lock("net", exclusive=True):
            pass
        with locks.gc_lock("net", exclusive=True):
            pass
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_out_of_descriptors_the_write_fails_cleanly(tmp_path: Path) -> None:
    import resource

    create_pending(tmp_path, PendingAttachment(network="n", container_id="c", ifname="eth0")).release()  # the dirs
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    before = sorted(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        with pytest.raises(IOFailureError) as caught:
            create_pending(tmp_path, ENTRY)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    path = pending_path(tmp_path, "net", "c1", "eth0")
    assert caught.value.msg == f"failed to write journal entry {path}: Too many open files"
    assert sorted(os.listdir("/proc/self/fd")) == before  # nothing of the caller's closed, nothing leaked
    assert list_pending(tmp_path) == [pending_path(tmp_path, "n", "c", "eth0")]


def test_descriptors_are_all_closed_again(tmp_path: Path) -> None:
    before = sorted(os.listdir("/proc/self/fd"))
    held = create_pending(tmp_path, ENTRY)
    held.release()
    held.release()
    claimed = claim_pending(held.path)
    assert claimed is not None and claimed.entry is not None
    with claimed:
        pass
    assert not is_pending_alive(held.path)
    with RuntimeLocks(tmp_path, timeout=1).attach_stripe("c1"):
        pass
    assert sorted(os.listdir("/proc/self/fd")) == before


# -- temporary files left by writers that died ---------------------------------------------------------------------

PAUSED_WRITER = """
import json, os, sys, time
from cnicore.runtime._journal import PendingAttachment, create_pending
settings = json.loads(sys.argv[1])
def pause(*args):
    print("paused", flush=True)
    time.sleep(600)
if settings["at"] == "before its lock":
    os.fchmod = pause  # called between creating the temporary file and locking it
else:
    os.fsync = pause  # called once the temporary file is written and locked, before it is linked
create_pending(settings["cache"], PendingAttachment(network="net", container_id="c1", ifname="eth0"))
"""


def _temporaries(cache: Path) -> list[str]:
    return sorted(n for n in os.listdir(cache / "cnicore" / "pending") if n.startswith(".tmp."))


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("crash", ["before the entry is linked", "after the entry is linked"])
def test_a_dead_writers_temporary_file_is_removed_by_the_next_full_listing(tmp_path: Path, crash: str) -> None:
    _crash_in_child(crash, tmp_path, ENTRY)
    left = _temporaries(tmp_path)
    assert len(left) == 1 and left[0].split(".")[2].partition("-")[0].isdigit()  # .tmp.<writer's pid>-<random>
    assert list_pending(tmp_path, "c1") in ([], [pending_path(tmp_path, "net", "c1", "eth0")])
    assert _temporaries(tmp_path) == left  # an attach's listing spends nothing on it
    entries = list_pending(tmp_path)
    assert _temporaries(tmp_path) == []
    if crash == "before the entry is linked":
        assert entries == [] and os.listdir(tmp_path / "cnicore" / "pending") == []
    else:  # the entry (the same file under its own name) stays for recovery, whole and claimable
        assert entries == [pending_path(tmp_path, "net", "c1", "eth0")]
        claimed = claim_pending(entries[0])
        assert claimed is not None and claimed.entry is not None
        with claimed:
            assert _fields(claimed.entry) == _fields(attrs.evolve(ENTRY, pid=claimed.entry.pid))
    assert list_pending(tmp_path) == entries  # idempotent


@pytest.mark.parametrize("at", ["before its lock", "after its lock"])
def test_a_live_writers_temporary_file_is_never_removed(tmp_path: Path, at: str) -> None:
    process = subprocess.Popen([sys.executable, "-c", PAUSED_WRITER, json.dumps({"cache": str(tmp_path), "at": at})],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "paused":
            process.wait()
            pytest.fail(f"the writer never paused: {process.stderr.read() if process.stderr else ''}")
        left = _temporaries(tmp_path)
        assert len(left) == 1 and left[0].startswith(f".tmp.{process.pid}-")
        assert list_pending(tmp_path) == [] and _temporaries(tmp_path) == left
        if at == "after its lock":  # its lock keeps it, however old it looks
            os.utime(tmp_path / "cnicore" / "pending" / left[0], (0, 0))
            assert list_pending(tmp_path) == [] and _temporaries(tmp_path) == left
    finally:
        _kill(process)
    assert list_pending(tmp_path) == [] and _temporaries(tmp_path) == []


def test_a_temporary_file_without_a_pid_is_removed_once_old_and_unlocked(tmp_path: Path) -> None:
    directory = tmp_path / "cnicore" / "pending"
    directory.mkdir(parents=True)
    old_style = directory / ".tmp.0123456789abcdef"  # the name before it carried the writer's pid
    old_style.write_bytes(b"")
    held = directory / f".tmp.{_dead_pid()}-0123456789abcdef"  # a dead pid, but someone holds its lock
    held.write_bytes(b"")
    fd, _ = open_regular(str(held))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert list_pending(tmp_path) == [] and _temporaries(tmp_path) == sorted([old_style.name, held.name])
        os.utime(old_style, (0, 0))
        assert list_pending(tmp_path) == [] and _temporaries(tmp_path) == [held.name]
    finally:
        os.close(fd)
    assert list_pending(tmp_path) == [] and _temporaries(tmp_path) == []


def test_temporary_files_are_abandoned_when_old_or_when_their_writer_is_gone() -> None:
    now = time.time()
    young, old = now - 1, now - STALE_TEMP_SECONDS - 1
    assert not temp_abandoned(None, young, now)
    assert temp_abandoned(None, old, now)
    assert not temp_abandoned(os.getpid(), young, now)
    assert temp_abandoned(os.getpid(), old, now)
    assert not temp_abandoned(1, young, now)  # alive (and not ours to signal when unprivileged)
    assert temp_abandoned(_dead_pid(), young, now)
    assert not temp_abandoned(0, young, now) and not temp_abandoned(-1, young, now)  # no pid of one process
    assert temp_abandoned(2**80, young, now)  # no such process anywhere
    assert not temp_abandoned(None, now - STALE_TEMP_SECONDS, now)  # the bound itself is still young


def test_a_sweep_goes_on_past_every_temporary_file_it_keeps(tmp_path: Path) -> None:
    # Each kept file (vanished, a live writer's, locked, not a regular file, a name that holds no pid) is passed
    # over, and what follows it is still examined; a symlink's own age counts, not its target's.
    directory = tmp_path / "pending"
    directory.mkdir()
    old = time.time() - 10 * STALE_TEMP_SECONDS
    live = directory / ".tmp.1-alive"  # pid 1 exists: a young file of it is a live writer's
    live.write_bytes(b"")
    locked = directory / ".tmp.2-locked"
    locked.write_bytes(b"")
    (directory / ".tmp.3-dir").mkdir()
    no_pid = directory / ".tmp.abc-def"
    no_pid.write_bytes(b"")
    target = directory / "target"
    target.write_bytes(b"")  # young
    link = directory / ".tmp.link"
    link.symlink_to(target)
    removable = directory / ".tmp.4-removable"
    removable.write_bytes(b"")
    for path in (locked, directory / ".tmp.3-dir", removable):
        os.utime(path, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    holder = os.open(locked, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        names = [".tmp.0-vanished", live.name, locked.name, ".tmp.3-dir", no_pid.name, link.name, removable.name]
        _journal.sweep_temporaries(str(directory), names)
    finally:
        os.close(holder)
    assert sorted(p.name for p in directory.iterdir()) == [".tmp.1-alive", ".tmp.2-locked", ".tmp.3-dir",
                                                           ".tmp.abc-def", "target"]


def test_a_temporary_names_pid_is_what_comes_before_its_first_dash() -> None:
    assert temp_writer_pid(".tmp.123-ab-cd") == 123
    assert temp_writer_pid(".tmp.123") is None  # an older writer's name: no pid in it
    assert temp_writer_pid(".tmp.abc-123") is None
    assert temp_writer_pid(".tmp.-123") is None
    # The file store's temporary names: the same rule after their own prefix.
    assert temp_writer_pid(".cnicore-77-0a1b.tmp", ".cnicore-") == 77
    assert temp_writer_pid(".cnicore-77.tmp", ".cnicore-") is None
