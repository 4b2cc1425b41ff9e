"""The file store: exact layout, hostile directory contents, locking, and changes made behind its back."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netaddr import IPAddress
from support import fine_ctime

from cnicore._errors import InvalidConfigError, IOFailureError, TryAgainLaterError
from cnicore.ipam import HostLocalIPAM, add, load_ipam_config
from cnicore.stores import FileStore, Owner
from cnicore.stores import _filecore as core_module
from cnicore.stores._filecore import FileStoreCore
from cnicore.stores._keyindex import MAX_OWNER_BYTES

A = Owner.attachment("ctr-a", "eth0")
B = Owner.attachment("ctr-b", "eth0")
IP = IPAddress


def names(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def test_layout_is_the_reference_layout(tmp_path: Path) -> None:
    with FileStore(tmp_path, "net") as store:
        assert store.reserve(IP("10.0.0.2"), A, "0")
        assert store.reserve(IP("2001:db8:1:0:0:0:0:2"), A, "1")
        assert store.reserve(IP("::ffff:10.0.0.3"), B, "0")
    net = tmp_path / "net"
    assert names(net) == ["10.0.0.2", "10.0.0.3", "2001:db8:1::2", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]
    assert (net / "10.0.0.2").read_bytes() == b"ctr-a\r\neth0"
    assert (net / "last_reserved_ip.0").read_bytes() == b"10.0.0.3"
    assert (net / "last_reserved_ip.1").read_bytes() == b"2001:db8:1::2"
    assert {(net / n).stat().st_mode & 0o777 for n in ("10.0.0.2", "last_reserved_ip.0")} == {0o600}
    assert (net / "lock").read_bytes() == b""


def test_reopen_reads_existing_state(tmp_path: Path) -> None:
    with FileStore(tmp_path, "net") as store:
        store.reserve(IP("10.0.0.2"), A, "0")
    with FileStore(tmp_path, "net", watch=False) as store:
        assert store.reservation(IP("10.0.0.2")).owner == A
        assert store.find_owner(A) == [IP("10.0.0.2")]
        assert store.last_reserved("0") == IP("10.0.0.2")


@pytest.mark.parametrize("name", ["", "..", "../escape", "a/b", "-x", "with space"])
def test_network_name_cannot_escape(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidConfigError):
        FileStore(tmp_path / "data", name)
    assert not (tmp_path / "escape").exists()


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidConfigError) as info:
        FileStore(tmp_path / "file", "net")
    assert info.value.key == "ipam.dataDir" and "is not a directory" in info.value.msg
    with pytest.raises(InvalidConfigError):
        FileStore(tmp_path / "file" / "below", "net")


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    net = tmp_path / "data" / "net"
    net.mkdir(parents=True)
    (net / "10.0.0.2").symlink_to(outside)
    (net / "last_reserved_ip.0").symlink_to(outside)
    with FileStore(tmp_path / "data", "net") as store:
        # The planted link keeps its address occupied, is never read, written or removed.
        rs = load_ipam_config({"name": "net", "ipam": {"subnet": "10.0.0.0/24", "dataDir": str(tmp_path / "data")}})
        got = add(rs, store, "ctr-a", "eth0")
        assert got.ips[0].ip == IP("10.0.0.3")
        assert store.reservation(IP("10.0.0.2")).owner is None
        assert store.release_owner(Owner(container_id="precious")) == []
    assert outside.read_bytes() == b"precious"
    assert (net / "10.0.0.2").is_symlink()
    assert not (net / "last_reserved_ip.0").is_symlink()  # replaced by rename, the target untouched
    (tmp_path / "data2").mkdir()
    (tmp_path / "data2" / "net").symlink_to(tmp_path / "data", target_is_directory=True)
    with pytest.raises(IOFailureError, match="symlinks are not followed"):
        FileStore(tmp_path / "data2", "net")
    (tmp_path / "data3" / "net").mkdir(parents=True)
    (tmp_path / "data3" / "net" / "lock").symlink_to(outside)
    with pytest.raises(IOFailureError, match="lock"):
        FileStore(tmp_path / "data3", "net")


def test_garbage_is_skipped_and_kept(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    (net / "10.0.0.2").write_bytes(b"\xff\xfe not text")
    (net / "10.0.0.3").write_bytes(b"two words\r\neth0")
    (net / "10.0.0.4").write_bytes(b"x" * (MAX_OWNER_BYTES + 1))  # longer than any owner a plugin can be given
    (net / "10.0.0.5").mkdir()
    (net / "010.0.0.6").write_bytes(b"ctr-a\r\neth0")  # not a canonical name: not a reservation
    (net / "notes.txt").write_bytes(b"ctr-a\r\neth0")
    (net / "10.0.0.7").write_bytes(b"  ctr-a\r\neth0\n")  # whitespace around: the reference matches it
    conf = load_ipam_config({"cniVersion": "1.1.0", "name": "net",
                             "ipam": {"subnet": "10.0.0.0/24", "dataDir": str(tmp_path)}})
    with FileStore(tmp_path, "net") as store:
        assert store.find_owner(A) == [IP("10.0.0.7")]
        assert add(conf, store, "ctr-b", "eth0").ips[0].ip == IP("10.0.0.6")
        assert store.release_owner(A) == [IP("10.0.0.7")]
        from cnicore.ipam import gc

        gc(store, [])
    assert names(net) == ["010.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "last_reserved_ip.0",
                          "lock", "notes.txt"]


def test_lock_held_elsewhere_times_out_and_loses_nothing(tmp_path: Path) -> None:
    with FileStore(tmp_path, "net") as store:
        store.reserve(IP("10.0.0.2"), A, "0")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({str(tmp_path / 'net' / 'lock')!r}, os.O_RDONLY)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\nsys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with FileStore(tmp_path, "other") as unrelated:  # another network is not blocked
            assert unrelated.reserve(IP("10.0.0.2"), A, "0")
        with pytest.raises(TryAgainLaterError) as info:
            FileStore(tmp_path, "net", lock_timeout=0.3)
        assert info.value.code == 11
    finally:
        holder.communicate("")
    with FileStore(tmp_path, "net") as store:
        assert store.reservation(IP("10.0.0.2")).owner == A


@pytest.mark.parametrize("watch", [True, False, None])
def test_changes_behind_the_back_are_seen(tmp_path: Path, watch: bool | None) -> None:
    net = tmp_path / "net"
    with FileStore(tmp_path, "net", watch=watch) as store:
        assert store.watching is (watch is not False)
        store.reserve(IP("10.0.0.2"), A, "0")
        for _ in range(3):  # several changes within one clock tick must all be noticed
            (net / "10.0.0.3").write_bytes(b"ctr-b\r\neth0")
            assert store.first_free(IP("10.0.0.2"), IP("10.0.0.9")) == IP("10.0.0.4")
            assert store.find_owner(B) == [IP("10.0.0.3")]
            (net / "10.0.0.3").unlink()
            (net / "10.0.0.2").unlink()
            (net / "10.0.0.2").write_bytes(b"ctr-b\r\neth1")
            assert store.find_owner(A) == []
            assert store.reservation(IP("10.0.0.2")).owner == Owner.attachment("ctr-b", "eth1")
            assert store.first_free(IP("10.0.0.2"), IP("10.0.0.9")) == IP("10.0.0.3")
            (net / "10.0.0.2").unlink()
            (net / "10.0.0.2").write_bytes(b"ctr-a\r\neth0")
            assert store.reservation(IP("10.0.0.2")).owner == A


def test_directory_replaced_behind_the_back(tmp_path: Path) -> None:
    net = tmp_path / "net"
    with FileStore(tmp_path, "net") as store:
        store.reserve(IP("10.0.0.2"), A, "0")
        for child in net.iterdir():
            child.unlink()
        net.rmdir()
        net.mkdir()
        (net / "10.0.0.9").write_bytes(b"ctr-b\r\neth0")
        assert store.reservation(IP("10.0.0.2")) is None
        assert store.find_owner(B) == [IP("10.0.0.9")]
        assert store.reserve(IP("10.0.0.3"), A, "0")
    assert names(net) == ["10.0.0.3", "10.0.0.9", "last_reserved_ip.0", "lock"]


def test_stray_temp_files_are_swept(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (net / f".cnicore-{dead.pid}-abc.tmp").write_bytes(b"ctr-a\r\neth0")
    young = net / ".cnicore-1-def.tmp"  # pid 1 is alive: kept while young
    young.write_bytes(b"")
    old = net / ".cnicore-1-old.tmp"
    old.write_bytes(b"")
    past = time.time() - 3600
    os.utime(old, (past, past))
    with FileStore(tmp_path, "net") as store:
        assert names(net) == [".cnicore-1-def.tmp", "lock"]
        assert list(store.reservations()) == []


def test_durable_mode_and_last_reserved_parsing(tmp_path: Path) -> None:
    with FileStore(tmp_path, "net", durable=True) as store:
        assert store.reserve(IP("10.0.0.2"), A, "0")
        (tmp_path / "net" / "last_reserved_ip.0").write_bytes(b"10.0.0.2\n")  # unparsable for the reference too
        assert store.last_reserved("0") is None
        assert store.release(IP("10.0.0.2"), B) is False
        assert store.release(IP("10.0.0.2"), A) is True
        assert store.release(IP("10.0.0.2"), A) is False


def test_threads_share_one_store(tmp_path: Path) -> None:
    import threading

    conf = load_ipam_config({"cniVersion": "1.0.0", "name": "net",
                             "ipam": {"subnet": "10.0.0.0/24", "dataDir": str(tmp_path)}})
    got: list[IPAddress] = []
    with HostLocalIPAM() as ipam:

        def work(n: int) -> None:
            for i in range(20):
                got.append(ipam.add(conf, f"t{n}-{i}", "eth0").ips[0].ip)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(got) == len(set(got)) == 80
    assert len([p for p in (tmp_path / "net").iterdir() if p.name.startswith("10.")]) == 80


def test_mtime_fallback_with_a_large_directory(tmp_path: Path) -> None:
    # Above a few hundred entries the mtime fallback trusts the directory mtime (after letting the clock
    # tick while holding the lock) instead of rescanning: changes right after an operation must still show.
    net = tmp_path / "net"
    net.mkdir()
    for i in range(400):
        (net / f"10.0.{i // 200}.{i % 200 + 1}").write_bytes(f"pre{i}\r\neth0".encode())
    with FileStore(tmp_path, "net", watch=False) as store:
        assert len(store) == 400
        for i in range(5):
            assert store.reserve(IP(f"10.1.0.{i + 1}"), A, "0")
            (net / f"10.2.0.{i + 1}").write_bytes(b"ctr-b\r\neth0")  # right after our operation
            assert store.find_owner(B) == [IP(f"10.2.0.{j + 1}") for j in range(i + 1)]
            (net / "10.0.0.1").unlink()
            (net / "10.0.0.1").write_bytes(f"again{i}\r\neth0".encode())
            assert store.reservation(IP("10.0.0.1")).owner == Owner.attachment(f"again{i}", "eth0")


def test_a_forked_child_takes_the_lock_for_itself(tmp_path: Path) -> None:
    with FileStore(tmp_path, "net", lock_timeout=0.3) as store, store.transaction():
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 1
            try:
                store.reserve(IP("10.0.0.2"), A, "0")
            except TryAgainLaterError:
                code = 0  # the parent's lock excluded us, as it must
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.reservation(IP("10.0.0.2")) is None


def test_inotify_is_set_up_only_for_a_store_in_steady_use(tmp_path: Path) -> None:
    # An executed plugin opens a store for one operation: it never loads ctypes nor makes an inotify instance
    # (whose close alone costs milliseconds); a store kept open starts watching from its third operation.
    # (The watch's module itself is loaded, for its event masks: it imports ctypes only to make a watch.)
    code = ("import sys\n"
            "from netaddr import IPAddress\n"
            "from cnicore.stores import FileStore, Owner\n"
            f"store = FileStore({str(tmp_path)!r}, 'net')\n"
            "assert store.reserve(IPAddress('10.0.0.2'), Owner.attachment('a', 'eth0'), '0')\n"
            "watched = store._handles.watch is not None\n"
            "store.close()\n"
            "print(sorted(m for m in ('ctypes', '_ctypes') if m in sys.modules), watched)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] False"
    for watch in (True, False, None):
        with FileStore(tmp_path, f"net-{watch}", watch=watch) as store:
            assert store._handles.watch is None
            for i in range(3):
                store.reserve(IP(f"10.0.0.{i + 2}"), A, "0")
            # (None: a directory this small, on ext4 under Linux 6.13 or later, is followed by its state alone)
            assert (store._handles.watch is not None) is (watch is True or (watch is None and not fine_ctime(tmp_path)))
            assert store._state_only is (watch is None and fine_ctime(tmp_path))


def test_lost_inotify_events_forget_the_cached_cursor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A queue overflow loses events; the reference may have rewritten a cursor among them. The store must not
    # go on trusting what it cached about that file (its address, and its size, which decides an in-place write).
    cursor = tmp_path / "net" / "last_reserved_ip.0"
    with FileStore(tmp_path, "net", watch=True) as store:
        for i in range(3):
            assert store.reserve(IP(f"10.0.0.{i + 7}"), A, "0")
        watch = store._handles.watch
        assert watch is not None
        assert store.last_reserved("0") == IP("10.0.0.9")
        cursor.write_bytes(b"10.0.0.100")  # in place, as the reference writes it
        real_drain = watch.drain

        def overflowed() -> tuple[dict[bytes, bool], bool]:
            real_drain()  # the events are gone...
            monkeypatch.setattr(watch, "drain", real_drain)
            return {}, True  # ...and the kernel says so

        monkeypatch.setattr(watch, "drain", overflowed)
        assert store.last_reserved("0") == IP("10.0.0.100")
        assert store.reserve(IP("10.0.0.6"), A, "0")
    assert cursor.read_bytes() == b"10.0.0.6"


def _watching_store(tmp_path: Path) -> FileStore:
    store = FileStore(tmp_path, "net", watch=True)
    for i in range(3):
        assert store.reserve(IP(f"10.0.0.{i + 7}"), A, "0")
    assert store._handles.watch is not None
    return store


def test_a_watching_store_keeps_its_cursor_open_until_someone_else_writes_it(tmp_path: Path) -> None:
    # The descriptor kept between transactions must never outlive the file it names nor hide a write by another.
    cursor = tmp_path / "net" / "last_reserved_ip.0"
    with _watching_store(tmp_path) as store:
        assert "0" in store._handles.cursor_fds
        cursor.write_bytes(b"10.0.0.100")  # in place, as the reference writes it (O_TRUNC, same inode)
        assert store.last_reserved("0") == IP("10.0.0.100")
        assert "0" not in store._handles.cursor_fds
        assert store.reserve(IP("10.0.0.20"), A, "0")  # shorter than what is there: not written in place
        assert cursor.read_bytes() == b"10.0.0.20"
        # Replaced by another inode (renamed over): the kept descriptor names the old file and must go.
        assert store.reserve(IP("10.0.0.21"), A, "0")
        assert "0" in store._handles.cursor_fds
        replacement = tmp_path / "net" / "cursor.new"
        replacement.write_bytes(b"10.0.0.200")
        replacement.rename(cursor)
        assert store.last_reserved("0") == IP("10.0.0.200")
        assert store.reserve(IP("10.0.0.30"), A, "0")
        assert cursor.read_bytes() == b"10.0.0.30"
        # Removed: the next ADD writes a new file, not the unlinked inode.
        cursor.unlink()
        assert store.reserve(IP("10.0.0.31"), A, "0")
        assert cursor.read_bytes() == b"10.0.0.31"
    assert store._handles.cursor_fds == {}


def test_a_watching_store_notices_its_lock_file_replaced(tmp_path: Path) -> None:
    # While watching, the lock file is checked only when an event names it: replacing it must still make the
    # store lock the new file (the one the reference locks), not the unlinked one.
    lock = tmp_path / "net" / "lock"
    with _watching_store(tmp_path) as store:
        lock.unlink()
        lock.write_bytes(b"")
        assert store.reserve(IP("10.0.0.40"), A, "0")
        assert os.fstat(store._handles.lock_fd).st_ino == lock.stat().st_ino
        with store.transaction():
            # The reference's lock (flock on the file at the path) is now excluded by ours.
            fd = os.open(lock, os.O_RDONLY)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd)


@pytest.mark.parametrize("watch", [True, None])
def test_a_long_lived_store_notices_its_directory_path_moved_away(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watch: bool | None) -> None:
    # Renaming an ancestor leaves no event in the watched directory, nor any change in the directory's state:
    # a watching store checks the path every time, one following by state every _PATH_CHECK_EVERY seconds
    # (made 0 here; see the next test for the delay).
    monkeypatch.setattr(core_module, "_PATH_CHECK_EVERY", 0.0)
    data = tmp_path / "data"
    store = FileStore(data, "net", watch=watch)
    try:
        for i in range(3):
            assert store.reserve(IP(f"10.0.0.{i + 7}"), A, "0")
        assert (store._handles.watch is not None) is (not store._state_only)
        data.rename(tmp_path / "data.old")
        data.mkdir()
        assert store.reserve(IP("10.0.0.50"), A, "0")
        assert sorted(p.name for p in (data / "net").iterdir()) == ["10.0.0.50", "last_reserved_ip.0", "lock"]
    finally:
        store.close()


def test_a_watching_store_leaves_its_own_events_out_of_the_next_look(tmp_path: Path) -> None:
    # An ADD announces the events it made (its unnamed file's write, link and close, the cursor's write) and a
    # DEL its removals, so that the next transaction's look at the queue reads them without re-reading anything.
    with _watching_store(tmp_path) as store:
        watch = store._handles.watch
        assert watch is not None
        for i in range(3):
            assert store.reserve(IP(f"10.0.1.{i + 2}"), A, "0")
            assert watch.drain() == ({}, False)
            assert store.release_owner(A) == [IP("10.0.0.7"), IP("10.0.0.8"), IP("10.0.0.9"),
                                              IP(f"10.0.1.{i + 2}")][3 if i else 0:]
            assert watch.drain() == ({}, False)
        # Two reservations in one transaction (dual stack): both announced, in order.
        with store.transaction():
            assert store.reserve(IP("10.0.2.2"), A, "0")
            assert store.reserve(IP("2001:db8::2"), A, "1")
        assert watch.drain() == ({}, False)


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed file", "named temporary file"])
def test_a_watching_store_does_not_read_back_what_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           unnamed: bool) -> None:
    # Its own events are announced (unnamed files) or recognised by name at the end of the transaction (a named
    # temporary file, where O_TMPFILE is missing): either way nothing it wrote is read again.
    with _watching_store(tmp_path) as store:
        if not unnamed:
            store._tmpfile = False
        read: list[str] = []
        real_refresh = store._refresh

        def refresh(name: str, key: int) -> None:
            read.append(name)
            real_refresh(name, key)

        monkeypatch.setattr(store, "_refresh", refresh)
        for i in range(3):
            assert store.reserve(IP(f"10.0.1.{i + 2}"), A, "0")
            assert store.release_owner(A)
        assert read == []


@pytest.mark.parametrize("change", ["cursor rewritten", "file created", "file removed", "file rewritten",
                                    "file replaced"])
def test_what_others_do_right_after_an_add_is_seen(tmp_path: Path, change: str) -> None:
    # The ADD's own events wait, announced, at the head of the queue: anything anyone does next comes after them
    # and must be read, whatever it is (including the same kind of event on the same name as the ADD's own).
    net = tmp_path / "net"
    with _watching_store(tmp_path) as store:
        assert store.reserve(IP("10.0.0.20"), A, "0")
        if change == "cursor rewritten":
            (net / "last_reserved_ip.0").write_bytes(b"10.0.0.30")  # O_TRUNC in place, as the reference
            assert store.last_reserved("0") == IP("10.0.0.30")
        elif change == "file created":
            (net / "10.0.0.21").write_bytes(b"ctr-b\r\neth0")
            assert store.find_owner(B) == [IP("10.0.0.21")]
        elif change == "file removed":
            (net / "10.0.0.20").unlink()
            assert store.reservation(IP("10.0.0.20")) is None
        elif change == "file rewritten":
            with open(net / "10.0.0.20", "r+b") as f:  # in place, same inode
                f.write(b"ctr-b")
            assert store.find_owner(B) == [IP("10.0.0.20")]
            assert IP("10.0.0.20") not in store.find_owner(A)
        else:
            (net / "10.0.0.20").unlink()
            (net / "10.0.0.20").write_bytes(b"ctr-b\r\neth0")
            assert store.find_owner(B) == [IP("10.0.0.20")]


def test_a_writer_ignoring_the_lock_inside_an_add_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Events of someone else among the ADD's own: the queue no longer starts with exactly what was announced,
    # so every event is read, the ADD's own included.
    net = tmp_path / "net"
    with _watching_store(tmp_path) as store:
        real = store._write_last_reserved

        def meddled(range_id: str, key: int, text: bytes) -> None:
            (net / "10.0.0.21").write_bytes(b"ctr-b\r\neth0")
            real(range_id, key, text)

        monkeypatch.setattr(store, "_write_last_reserved", meddled)
        assert store.reserve(IP("10.0.0.20"), A, "0")
        monkeypatch.undo()
        assert store.find_owner(B) == [IP("10.0.0.21")]
        assert store.reservation(IP("10.0.0.20")).owner == A


def test_an_add_closes_its_unnamed_file_even_as_descriptor_0(tmp_path: Path) -> None:
    # A daemon may run with its standard input closed: the unnamed file then gets descriptor 0, which the ADD must
    # close like any other (a leaked descriptor would also hold back the close event that ends the ADD's own).
    saved = os.dup(0)
    try:
        with FileStoreCore(tmp_path, "net", watch=True) as store:
            for i in range(4):  # into steady use: watching, its persisted index open
                assert store.reserve_key(0x0A000012 + i, f"d{i} eth0", "0")
            assert store._handles.watch is not None
            for i in range(4):
                os.close(0)
                assert store.reserve_key(0x0A000002 + i, f"c{i} eth0", "0")
                with pytest.raises(OSError):
                    os.fstat(0)
                os.dup2(saved, 0)
            assert store.release_owner_keys("c3 eth0", "c3") == [0x0A000005]
            assert store._handles.watch.drain() == ({}, False)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
