"""The file store's persisted index: opening without reading every reservation, and never believing a stale copy.

Reads of reservation files are counted by wrapping ``FileStore._refresh`` (the one
place a reservation file is read), so "opened without reading" is observed, not
timed.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netaddr import IPAddress

from cnicore.ipam import add, delete, gc, load_ipam_config
from cnicore.stores import FileStore, Owner, ip_text
from cnicore.stores import _file as file_module
from cnicore.stores import _filecore as core_module
from cnicore.stores._index import ReservationIndex
from cnicore.stores._indexfile import parse_index

IP = IPAddress
A = Owner.attachment("ctr-a", "eth0")
B = Owner.attachment("ctr-b", "eth0")


def conf(data_dir: Path, subnet: str = "10.0.0.0/16") -> object:
    return load_ipam_config({"cniVersion": "1.0.0", "name": "net",
                             "ipam": {"dataDir": str(data_dir), "ranges": [[{"subnet": subnet}]]}})


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the reservation files the stores read (re-read) from now on."""
    seen: list[str] = []
    original = FileStore._refresh

    def counting(self: FileStore, name: str, key: int) -> None:
        seen.append(name)
        original(self, name, key)

    monkeypatch.setattr(FileStore, "_refresh", counting)
    yield seen


def truth(data_dir: Path, network: str = "net") -> list[tuple[int, int, Owner | None]]:
    """The reservations as a store that reads every file sees them."""
    with FileStore(data_dir, network, persist_index=False, watch=False) as store:
        return sorted((r.ip.version, r.ip.value, r.owner) for r in store.reservations())


def seen_by(store: FileStore) -> list[tuple[int, int, Owner | None]]:
    return sorted((r.ip.version, r.ip.value, r.owner) for r in store.reservations())


def populate(data_dir: Path, count: int) -> None:
    """``count`` reservations made through a store, then one more operation a clock tick later."""
    c = conf(data_dir)
    with FileStore(data_dir, "net") as store:
        for i in range(count):
            add(c, store, f"c{i}", "eth0")  # type: ignore[arg-type]
        time.sleep(0.03)  # the files above are now older than the state sealed below
        add(c, store, "last", "eth0")  # type: ignore[arg-type]


def index_path(data_dir: Path, network: str = "net") -> Path:
    found = file_module.index_path(data_dir, network)
    assert found is not None
    return found


def test_index_lives_beside_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with FileStore(data, "net") as store:
        assert store.reserve(IP("10.0.0.2"), A, "0")
    # The data directory holds exactly what the reference would write there; the index is beside it.
    assert sorted(p.name for p in (data / "net").iterdir()) == ["10.0.0.2", "last_reserved_ip.0", "lock"]
    assert sorted(p.name for p in data.iterdir()) == ["net"]
    assert index_path(data) == tmp_path / ".cnicore" / "data" / "net.index"
    assert index_path(data).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / ".cnicore").stat().st_mode & 0o777 == 0o700
    assert file_module.index_path("/", "net") is None
    with FileStore(tmp_path / "other", "net") as store:  # another data directory beside it: its own index
        assert store.find_owner(A) == []
    assert sorted(p.name for p in (tmp_path / ".cnicore").iterdir()) == ["data", "other"]


def test_persist_index_false_writes_nothing_outside_the_network(tmp_path: Path) -> None:
    with FileStore(tmp_path / "data", "net", persist_index=False) as store:
        assert store.reserve(IP("10.0.0.2"), A, "0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_reopening_reads_no_reservation_file(tmp_path: Path, reads: list[str]) -> None:
    populate(tmp_path, 300)
    expected = truth(tmp_path)
    reads.clear()
    c = conf(tmp_path)
    with FileStore(tmp_path, "net") as store:
        assert reads == []
        assert len(store) == 301
        got = add(c, store, "new", "eth0").ips[0].ip  # type: ignore[arg-type]
        assert got == IP("10.0.1.47")  # round-robin continues after the last reservation (10.0.1.46)
        assert delete(c, store, "c7", "eth0") == (IP("10.0.0.9"),)  # type: ignore[arg-type]
        # Only what was acted on was read: the duplicate check found nothing, DEL re-read the one file it removes.
        # (Without a watch, the lookups by owner compared every entry's identity, lstat only: files changed in
        # the clock tick in which the last state was sealed - the last ADD's - are read again.)
        assert "10.0.0.9" in reads and set(reads) <= {"10.0.0.9", "10.0.1.46"}
    expected = [e for e in expected if e[2] != Owner.attachment("c7", "eth0")]
    expected.append((4, int(IP("10.0.1.47")), Owner.attachment("new", "eth0")))
    assert truth(tmp_path) == sorted(expected)


def test_changes_made_while_closed_are_found_reading_only_them(tmp_path: Path, reads: list[str]) -> None:
    populate(tmp_path, 300)
    net = tmp_path / "net"
    (net / "10.0.0.5").unlink()  # removed
    (net / "10.0.9.1").write_bytes(b"go-1\r\neth0")  # added, as the reference writes them
    (net / "10.0.9.2").write_bytes(b"go-2")  # a legacy one
    (net / "10.0.0.6").unlink()
    (net / "10.0.0.6").write_bytes(b"zz-9\r\neth0")  # same name, same size, another owner (and maybe the inode)
    expected = truth(tmp_path)
    reads.clear()
    with FileStore(tmp_path, "net") as store:
        # The directory changed, so the index was checked entry by entry: only new or changed files were read
        # (and those changed in the clock tick in which the last state was sealed: the last ADD's).
        assert {"10.0.0.6", "10.0.9.1", "10.0.9.2"} <= set(reads) <= {"10.0.0.6", "10.0.9.1", "10.0.9.2", "10.0.1.46"}
        assert seen_by(store) == expected
    reads.clear()
    with FileStore(tmp_path, "net") as store:
        assert len(store) == 302 and reads == []  # the scan above was recorded: back to no reads at all
        assert store.find_owner(Owner.attachment("zz-9", "eth0")) == [IP("10.0.0.6")]


def test_content_rewritten_in_place_is_never_acted_on(tmp_path: Path) -> None:
    # Neither plugin rewrites a reservation in place; if someone does while no store is open, the directory's
    # state does not change and the index is loaded as it was. The store still never releases or reports an
    # owner on the strength of the old content.
    with FileStore(tmp_path, "net") as store:
        assert store.reserve(IP("10.0.0.2"), A, "0")
        assert store.reserve(IP("10.0.0.3"), A, "0")
    path = tmp_path / "net" / "10.0.0.2"
    with open(path, "r+b") as handle:
        handle.write(b"ctr-b\r\neth0")  # same length, in place
    with FileStore(tmp_path, "net") as store:
        assert store.release(IP("10.0.0.2"), A) is False
        assert store.find_owner(A) == [IP("10.0.0.3")]
        assert store.reservation(IP("10.0.0.2")).owner == B  # type: ignore[union-attr]
        assert store.release_owner(A) == [IP("10.0.0.3")]
    assert path.read_bytes() == b"ctr-b\r\neth0"
    with open(path, "r+b") as handle:
        handle.write(b"ctr-c")
    with FileStore(tmp_path, "net") as store:
        # GC lists every owner: the listing re-reads what was loaded, so the valid owner's file stays (the stale
        # owner, ctr-b, is not in the list and would have had it released).
        released = gc(store, [("ctr-c", "eth0")])
        assert released == ()
        assert path.read_bytes() == b"ctr-c\r\neth0"
        assert store.reservation(IP("10.0.0.2")).owner == Owner.attachment("ctr-c", "eth0")  # type: ignore[union-attr]


def _small_history(tmp_path: Path) -> bytes:
    c = conf(tmp_path, "10.0.0.0/24")
    with FileStore(tmp_path, "net", watch=False) as store:  # one record per operation
        for i in range(6):
            add(c, store, f"c{i}", "eth0")  # type: ignore[arg-type]
        delete(c, store, "c2", "eth0")  # type: ignore[arg-type]
        assert store.reserve(IP("2001:db8::7"), A, "1")
    data = index_path(tmp_path).read_bytes()
    st = os.stat(tmp_path / "net")
    loaded = parse_index(data, (st.st_dev, st.st_ino))
    assert loaded is not None and loaded.tip.records >= 3 and loaded.size == len(data)
    assert loaded.tip.state == (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    return data


def test_a_torn_index_is_never_believed(tmp_path: Path) -> None:
    # Every prefix of the file: what a crash at any point of writing it could leave (appends and snapshots).
    data = _small_history(tmp_path)
    expected = truth(tmp_path)
    for cut in range(len(data) + 1):
        index_path(tmp_path).write_bytes(data[:cut])
        with FileStore(tmp_path, "net", watch=False) as store:
            assert seen_by(store) == expected, cut


def test_a_damaged_index_is_never_believed(tmp_path: Path) -> None:
    data = _small_history(tmp_path)
    expected = truth(tmp_path)
    rng = random.Random(7)
    for offset in sorted(rng.sample(range(len(data)), min(len(data), 150))):
        damaged = bytearray(data)
        damaged[offset] ^= 1 << rng.randrange(8)
        index_path(tmp_path).write_bytes(bytes(damaged))
        with FileStore(tmp_path, "net", watch=False) as store:
            assert seen_by(store) == expected, offset


def test_an_index_of_another_directory_is_ignored(tmp_path: Path, reads: list[str]) -> None:
    _small_history(tmp_path)
    index_path(tmp_path).rename(tmp_path / "saved")
    for child in (tmp_path / "net").iterdir():
        child.unlink()
    (tmp_path / "net").rmdir()
    (tmp_path / "net").mkdir()  # a new directory (maybe with the old inode number), whatever its content
    (tmp_path / "net" / "10.0.0.9").write_bytes(b"other\r\neth0")
    (tmp_path / "saved").rename(index_path(tmp_path))
    reads.clear()
    with FileStore(tmp_path, "net") as store:
        assert reads == ["10.0.0.9"]  # ignored, or checked entry by entry: either way only the new file is read
        assert seen_by(store) == [(4, int(IP("10.0.0.9")), Owner.attachment("other", "eth0"))]


def test_hostile_index_paths(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    index = index_path(tmp_path / "d1")
    index.parent.mkdir(parents=True)
    index.symlink_to(outside)
    with FileStore(tmp_path / "d1", "net") as store:
        assert store.reserve(IP("10.0.0.2"), A, "0")
    assert outside.read_bytes() == b"precious"
    assert not index.is_symlink()  # replaced, never followed
    # A file where the index directory would be: the store works without persisting anything.
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / ".cnicore").write_bytes(b"not a directory")
    with FileStore(tmp_path / "o" / "data", "net") as store:
        assert store.reserve(IP("10.0.0.2"), A, "0")
    with FileStore(tmp_path / "o" / "data", "net") as store:
        assert store.find_owner(A) == [IP("10.0.0.2")]
    assert (tmp_path / "o" / ".cnicore").read_bytes() == b"not a directory"
    # The index directories as symlinks are not followed either.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / ".cnicore").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with FileStore(tmp_path / "t" / "data", "net") as store:
        assert store.reserve(IP("10.0.0.2"), A, "0")
    (tmp_path / "u" / ".cnicore").mkdir(parents=True)
    (tmp_path / "u" / ".cnicore" / "data").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with FileStore(tmp_path / "u" / "data", "net") as store:
        assert store.reserve(IP("10.0.0.2"), A, "0")
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("watch", [False, True])
def test_stores_of_several_processes_share_one_log(tmp_path: Path, reads: list[str], watch: bool) -> None:
    c = conf(tmp_path, "10.0.0.0/24")
    first = FileStore(tmp_path, "net", watch=watch)
    second = FileStore(tmp_path, "net", watch=not watch)
    try:
        for i in range(12):
            store = first if i % 3 else second
            add(c, store, f"c{i}", "eth0")  # type: ignore[arg-type]
            if i % 4 == 3:
                delete(c, first if i % 2 else second, f"c{i - 2}", "eth0")  # type: ignore[arg-type]
    finally:
        first.close()
        second.close()
    expected = truth(tmp_path)
    reads.clear()
    with FileStore(tmp_path, "net") as store:
        assert reads == []
        assert seen_by(store) == expected
        assert sorted(reads) == sorted(ip_text(IP(value, version)) for version, value, _ in expected)  # the listing
    st = os.stat(tmp_path / "net")
    loaded = parse_index(index_path(tmp_path).read_bytes(), (st.st_dev, st.st_ino))
    assert loaded is not None and loaded.tip.state[2:] == (st.st_mtime_ns, st.st_ctime_ns)


def test_a_busy_watching_store_saves_a_few_times_a_second_and_when_closed(
        tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_module, "_SAVE_EVERY", 3600.0)  # "busy": every save after the first is deferred
    c = conf(tmp_path, "10.0.0.0/24")
    store = FileStore(tmp_path, "net", watch=True)
    for i in range(6):
        add(c, store, f"c{i}", "eth0")  # type: ignore[arg-type]
    assert store._handles.watch is not None
    add(c, store, "late", "eth0")  # type: ignore[arg-type]
    # Not saved yet: a store opened meanwhile checks the directory, and is right.
    reads.clear()
    with FileStore(tmp_path, "net", lock_timeout=5) as other:
        assert "10.0.0.8" in reads  # the unsaved reservation was read from its file
        assert other.find_owner(Owner.attachment("late", "eth0")) == [IP("10.0.0.8")]
        delete(c, other, "c0", "eth0")  # type: ignore[arg-type]
    assert store.find_owner(Owner.attachment("c0", "eth0")) == []
    add(c, store, "later", "eth0")  # type: ignore[arg-type]
    store.close()  # saves what is left, continuing the log the other store wrote to
    reads.clear()
    with FileStore(tmp_path, "net") as again:
        assert reads == []
        assert len(again) == 7 and again.find_owner(Owner.attachment("later", "eth0")) == [IP("10.0.0.9")]


def test_closing_never_waits_for_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl
    import threading

    monkeypatch.setattr(core_module, "_SAVE_EVERY", 3600.0)
    c = conf(tmp_path, "10.0.0.0/24")
    store = FileStore(tmp_path, "net", lock_timeout=None)  # operations would wait forever; closing must not
    for i in range(4):
        add(c, store, f"c{i}", "eth0")  # type: ignore[arg-type]
    fd = os.open(tmp_path / "net" / "lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        closing = threading.Thread(target=store.close)  # the lock is held elsewhere: the unsaved tail stays so
        closing.start()
        closing.join(60)
        assert not closing.is_alive()
        assert store.lock_timeout is None
    finally:
        os.close(fd)
    assert truth(tmp_path) == sorted((4, int(IP(f"10.0.0.{i + 2}")), Owner.attachment(f"c{i}", "eth0"))
                                     for i in range(4))


def test_the_log_is_compacted(tmp_path: Path) -> None:
    c = conf(tmp_path, "10.0.0.0/24")
    with FileStore(tmp_path, "net", watch=False) as store:
        for i in range(400):
            add(c, store, f"c{i}", "eth0")  # type: ignore[arg-type]
            delete(c, store, f"c{i}", "eth0")  # type: ignore[arg-type]
    st = os.stat(tmp_path / "net")
    loaded = parse_index(index_path(tmp_path).read_bytes(), (st.st_dev, st.st_ino))
    assert loaded is not None and loaded.tip.records <= core_module._RECORDS_BASE
    assert loaded.tip.state[2:] == (st.st_mtime_ns, st.st_ctime_ns) and len(loaded.index) == 0


@pytest.mark.parametrize("mode", ["unnamed", "no O_TMPFILE", "unsupported", "no /proc"])
def test_reservation_files_with_and_without_unnamed_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               mode: str) -> None:
    if mode == "no O_TMPFILE":
        monkeypatch.setattr(core_module, "_O_TMPFILE", 0)
    elif mode == "unsupported":
        monkeypatch.setattr(core_module, "_O_TMPFILE", os.O_DIRECTORY)  # open(2) then fails with EISDIR
    elif mode == "no /proc":
        monkeypatch.setattr(core_module, "_PROC_SELF_FD", str(tmp_path / "no-proc"))
    c = conf(tmp_path, "10.0.0.0/24")
    with FileStore(tmp_path, "net", durable=mode == "unsupported") as store:
        for i in range(3):
            add(c, store, f"c{i}", "eth0")  # type: ignore[arg-type]
        assert store.reserve(IP("10.0.0.2"), B, "0") is False  # taken: EEXIST on either path
        delete(c, store, "c1", "eth0")  # type: ignore[arg-type]
        assert store._tmpfile is (mode == "unnamed")
    net = tmp_path / "net"
    assert sorted(p.name for p in net.iterdir()) == ["10.0.0.2", "10.0.0.4", "last_reserved_ip.0", "lock"]
    assert (net / "10.0.0.4").read_bytes() == b"c2\r\neth0"
    assert (net / "10.0.0.2").stat().st_mode & 0o777 == 0o600


def test_states_are_sealed_even_where_mtimes_cannot_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(core_module.os, "utime", refuse)
    net = tmp_path / "net"
    with FileStore(tmp_path, "net", watch=False) as store:
        for i in range(4):
            assert store.reserve(IP(f"10.0.0.{i + 2}"), A, "0")
            (net / f"10.0.1.{i + 2}").write_bytes(b"ctr-b\r\neth0")  # right after our operation
            assert store.find_owner(B) == [IP(f"10.0.1.{j + 2}") for j in range(i + 1)]
    expected = truth(tmp_path)
    with FileStore(tmp_path, "net", watch=False) as store:
        assert seen_by(store) == expected


def test_the_last_reserved_address_is_rewritten_in_place_or_replaced(tmp_path: Path) -> None:
    net = tmp_path / "net"
    with FileStore(tmp_path, "net") as store:
        assert store.reserve(IP("10.0.0.99"), A, "0")
        inode = (net / "last_reserved_ip.0").stat().st_ino
        assert store.reserve(IP("10.0.0.100"), A, "0")  # longer: one pwrite over the old text
        assert (net / "last_reserved_ip.0").stat().st_ino == inode
        assert (net / "last_reserved_ip.0").read_bytes() == b"10.0.0.100"
        assert store.reserve(IP("10.0.0.7"), A, "0")  # shorter: a new file renamed into place
        assert (net / "last_reserved_ip.0").read_bytes() == b"10.0.0.7"
        assert store.last_reserved("0") == IP("10.0.0.7")
        # The reference's ADD: its reservation file, then the cursor rewritten in place.
        (net / "10.0.0.50").write_bytes(b"ctr-r\r\neth0")
        (net / "last_reserved_ip.0").write_bytes(b"10.0.0.50")
        assert store.last_reserved("0") == IP("10.0.0.50")
    assert not [p for p in net.iterdir() if p.name.startswith(".")]


def _churn(data_dir: str, tag: str, ready: int) -> None:  # pragma: no cover - runs in a child
    core_module._RECORDS_BASE = 3  # snapshots every few operations: kills land in them too
    c = conf(Path(data_dir), "10.0.0.0/20")
    store = FileStore(data_dir, "net", watch=tag.endswith("w"))
    os.write(ready, b"r")
    i = 0
    while True:
        add(c, store, f"{tag}-{i}", "eth0")  # type: ignore[arg-type]
        if i % 3:
            delete(c, store, f"{tag}-{i - 1}", "eth0")  # type: ignore[arg-type]
        i += 1


@pytest.mark.slow
def test_killed_writers_never_leave_a_believed_wrong_index(tmp_path: Path) -> None:
    rng = random.Random(99)
    for round_ in range(60):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                os.close(read_end)
                _churn(str(tmp_path), f"k{round_}{'w' if round_ % 2 else ''}", write_end)
            finally:
                os._exit(1)
        os.close(write_end)
        os.read(read_end, 1)
        time.sleep(rng.uniform(0, 0.02))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        # Whatever the kill interrupted (a reservation, an append, a snapshot), the next store sees the truth.
        expected = truth(tmp_path)
        with FileStore(tmp_path, "net", watch=False) as store:
            assert seen_by(store) == expected, round_
    st = os.stat(tmp_path / "net")
    loaded = parse_index(index_path(tmp_path).read_bytes(), (st.st_dev, st.st_ino), ReservationIndex)
    assert loaded is not None and loaded.tip.state[2:] == (st.st_mtime_ns, st.st_ctime_ns)
    assert sorted((r.ip.version, r.ip.value, r.owner) for r in loaded.index.items()) == truth(tmp_path)


def test_a_failed_save_is_tried_again_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            reads: list[str]) -> None:
    # A full disk (say) when the index is saved: the store goes on without it, and later saves it again whole.
    c = conf(tmp_path)
    original = core_module.FileStoreCore._write_snapshot
    failures = [OSError(28, "No space left on device")]

    def failing_once(self: core_module.FileStoreCore) -> None:
        if failures:
            raise failures.pop()
        original(self)

    monkeypatch.setattr(core_module.FileStoreCore, "_write_snapshot", failing_once)
    with FileStore(tmp_path, "net", watch=False) as store:
        add(c, store, "a", "eth0")  # type: ignore[arg-type]
        assert not failures and not index_path(tmp_path).exists()
        add(c, store, "b", "eth0")  # type: ignore[arg-type]
        assert not index_path(tmp_path).exists()  # still waiting before it tries again
        monkeypatch.setattr(core_module, "_SAVE_RETRY_AFTER", 0.0)
        add(c, store, "c", "eth0")  # type: ignore[arg-type]
        assert index_path(tmp_path).exists()
    expected = truth(tmp_path)
    reads.clear()
    with FileStore(tmp_path, "net") as reopened:
        assert len(reopened) == 3 and reads == []  # opened from the saved index
        assert seen_by(reopened) == expected


def _forge_empty_index(data_dir: Path) -> None:
    """Write an index that describes the network directory's current state as holding nothing."""
    from cnicore.stores._indexfile import Signatures, Tip, encode_snapshot
    from cnicore.stores._keyindex import KeyIndex

    st = os.stat(data_dir / "net")
    state = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    index_path(data_dir).write_bytes(encode_snapshot(Tip(state, time.time_ns()), KeyIndex(), Signatures()))


@pytest.mark.parametrize("how", ["foreign-top", "foreign-dir", "foreign-file", "open-top", "open-dir", "open-file"])
def test_an_index_others_could_have_written_is_not_believed(tmp_path: Path, how: str) -> None:
    # Someone made <parent>/.cnicore first (the parent is world-writable, as /tmp), or can write the index or
    # what holds it: the index could say anything (here: that every address is free), so it is never used.
    if how.startswith("foreign") and os.geteuid() != 0:
        pytest.skip("needs root to give files to another user")
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o1777)
    data = parent / "data"
    with FileStore(data, "net") as store:
        assert store.reserve(IP("10.0.0.2"), A, "0")
    _forge_empty_index(data)
    index = index_path(data)
    target = {"top": index.parent.parent, "dir": index.parent, "file": index}[how.split("-")[1]]
    if how.startswith("foreign"):
        os.chown(target, 65534, 65534)
    else:
        target.chmod(0o666 if target == index else 0o777)
    before = index.read_bytes()
    with FileStore(data, "net") as store:
        assert store.find_owner(A) == [IP("10.0.0.2")]
        assert add(conf(data), store, "ctr-b", "eth0").ips[0].ip == IP("10.0.0.3")  # type: ignore[arg-type]
        assert store.reservation(IP("10.0.0.2")).owner == A  # type: ignore[union-attr]
    if target == index:
        # In our own directory, the untrusted file is simply replaced by an index of ours.
        st = index.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (os.geteuid(), 0o600) and index.read_bytes() != before
    else:
        assert index.read_bytes() == before  # nothing written into what others control
    assert truth(data) == [(4, int(IP("10.0.0.2")), A), (4, int(IP("10.0.0.3")), B)]


def test_a_watching_store_notices_content_rewritten_in_place(tmp_path: Path) -> None:
    # A store in steady use follows the directory with inotify, which reports writes into files too: a file
    # rewritten in place (same inode) is re-read at its next operation, and the new owner is its owner for
    # every lookup (duplicate ADD refused, DEL frees it), as for the reference, which reads every file.
    c = conf(tmp_path, "10.0.0.0/24")
    with FileStore(tmp_path, "net", watch=True) as store:
        add(c, store, "ctr-a", "eth0")  # type: ignore[arg-type]
        for _ in range(3):
            store.find_owner(A)
        assert store.watching
        path = tmp_path / "net" / "10.0.0.2"
        inode = path.stat().st_ino
        with open(path, "r+b") as handle:
            handle.write(b"ctr-b\r\neth0")
        assert path.stat().st_ino == inode
        with pytest.raises(Exception, match="duplicate allocation is not allowed"):
            add(c, store, "ctr-b", "eth0")  # type: ignore[arg-type]
        assert store.find_owner(A) == []
        assert delete(c, store, "ctr-b", "eth0") == (IP("10.0.0.2"),)  # type: ignore[arg-type]
    assert not path.exists()


@pytest.mark.parametrize(("busy", "unnamed"), [(False, True), (True, True), (False, False)])
def test_a_watching_store_saves_the_signatures_of_what_it_created(
        tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch, busy: bool, unnamed: bool) -> None:
    # A watching store takes no signature (inode, ctime) when it creates a reservation file (unnamed and
    # linked, or through a named temp file): it takes the ones still held when it is about to save its index
    # (busy: only when closed). The saved index holds the files' real signatures, so a store opened after
    # another writer's change reads the changed file, not these.
    if busy:
        monkeypatch.setattr(core_module, "_SAVE_EVERY", 3600.0)
    if not unnamed:
        monkeypatch.setattr(core_module, "_O_TMPFILE", 0)
    c = conf(tmp_path, "10.0.0.0/24")
    store = FileStore(tmp_path, "net", watch=True)
    for _ in range(3):
        store.find_owner(A)
    assert store._handles.watch is not None
    for i in range(6):
        add(c, store, f"c{i}", "eth0")  # type: ignore[arg-type]
        time.sleep(0.01)  # each one in a clock tick of its own
    delete(c, store, "c2", "eth0")  # type: ignore[arg-type]
    store.close()
    net = tmp_path / "net"
    st = os.stat(net)
    loaded = parse_index(index_path(tmp_path).read_bytes(), (st.st_dev, st.st_ino))
    assert loaded is not None
    held = sorted(name for name in os.listdir(net) if name.startswith("10."))
    assert held == ["10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6", "10.0.0.7"]
    for name in held:
        file = os.lstat(net / name)
        assert loaded.sigs.get(int(IP(name))) == (file.st_ino, file.st_ctime_ns), name
    time.sleep(0.01)
    (net / "10.0.0.9").write_bytes(b"go-1\r\neth0")  # another writer
    reads.clear()
    with FileStore(tmp_path, "net") as again:
        assert len(again) == 6
        # Entry by entry: only the new file is read (and the last one written in the tick the state was sealed).
        assert "10.0.0.9" in reads and set(reads) <= {"10.0.0.9", "10.0.0.7"}
