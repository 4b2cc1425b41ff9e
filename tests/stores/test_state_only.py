"""A long-lived file store that follows its directory by the directory's state alone (``watch=None``, the default).

On a file system that gives every change made after a stat a later ctime than the stat saw (Linux's multigrain
timestamps), a store in steady use on a small directory keeps no inotify watch: one ``fstat`` per operation
tells whether anyone changed an entry since it last sealed the state. These tests pin what that mode sees at
once, what it sees later (a renamed ancestor, within ``_PATH_CHECK_EVERY``), how it leaves the mode as the
directory grows, and the probe that decides whether the mode is sound here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import NO_FINE_CTIME, fine_ctime

from cnicore.stores import _filecore as core
from cnicore.stores._filecore import FileStoreCore

NETWORK = "statenet"
BASE = 10 << 24 | 43 << 16


def _key(host: int) -> int:
    return BASE | host


def _name(host: int) -> str:
    return f"10.43.0.{host}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FileStoreCore]:
    """A store in steady use following its directory by state (skips where the file system cannot stamp finely)."""
    if not fine_ctime(tmp_path):
        pytest.skip(NO_FINE_CTIME)
    opened = FileStoreCore(tmp_path, NETWORK)
    try:
        for _ in range(3):
            opened.has_key(_key(1))
        assert opened._state_only and opened._handles.watch is None
        yield opened
    finally:
        opened.close()


def _recreated_after_removal(monkeypatch: pytest.MonkeyPatch, net: Path, host: int) -> None:
    """From now on, removing the reservation of ``host`` makes a writer that ignores the lock create it again at
    once, as its own (``intruder eth0``)."""
    real_unlink = os.unlink

    def unlink_then_recreate(name: Any, **kwargs: Any) -> None:
        real_unlink(name, **kwargs)
        if os.path.basename(os.fsdecode(name)) == _name(host):
            (net / _name(host)).write_bytes(b"intruder\r\neth0")

    monkeypatch.setattr(os, "unlink", unlink_then_recreate)


def _calls_of(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[Any, ...]]:
    """The arguments of every call of the store method ``name`` from now on."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(FileStoreCore, name)

    def recorded(self: FileStoreCore, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FileStoreCore, name, recorded)
    return calls


def _write_in_place(path: Path, data: bytes) -> None:
    inode = path.stat().st_ino
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate()
    assert path.stat().st_ino == inode


def test_changes_of_entries_by_others_are_seen_at_once(store: FileStoreCore, tmp_path: Path) -> None:
    net = tmp_path / NETWORK
    assert store.reserve_key(_key(2), "a eth0", "0")
    for _ in range(3):  # several changes within one tick of the coarse clock
        (net / _name(3)).write_bytes(b"b\r\neth0")
        assert store.has_key(_key(3))
        assert store.find_owner_keys("b eth0", None) == [_key(3)]
        assert store.first_free_key(_key(2), _key(9)) == _key(4)
        (net / _name(3)).unlink()
        (net / _name(2)).unlink()
        (net / _name(2)).write_bytes(b"c\r\neth1")
        assert store.find_owner_keys("a eth0", None) == []
        assert store.find_owner_keys("c eth1", None) == [_key(2)]
        (net / _name(2)).unlink()
        (net / _name(2)).write_bytes(b"a\r\neth0")
        assert store.find_owner_keys("a eth0", None) == [_key(2)]
    assert store._state_only


def test_content_rewritten_in_place_is_seen_by_the_next_lookup(store: FileStoreCore, tmp_path: Path) -> None:
    # Rewriting a file in place changes nothing in the directory's state: each lookup by owner compares every
    # entry's signature (inode, ctime), which the rewrite changed.
    assert store.reserve_key(_key(2), "a eth0", "0")
    assert store.reserve_key(_key(3), "a eth1", "0")
    _write_in_place(tmp_path / NETWORK / _name(2), b"b\r\neth0")
    assert store.find_owner_keys("b eth0", None) == [_key(2)]
    assert store.find_owner_keys("a eth0", None) == []
    _write_in_place(tmp_path / NETWORK / _name(3), b"b\r\neth0")
    assert store.release_owner_keys("b eth0", None) == [_key(2), _key(3)]
    assert not (tmp_path / NETWORK / _name(3)).exists()


def test_the_cursor_kept_open_never_writes_a_replaced_or_longer_file(store: FileStoreCore, tmp_path: Path) -> None:
    cursor = tmp_path / NETWORK / "last_reserved_ip.0"
    assert store.reserve_key(_key(2), "a eth0", "0")  # (made: replaced into place)
    assert store.reserve_key(_key(3), "a eth1", "0")  # (written in place)
    assert "0" in store._handles.cursor_fds  # kept open between transactions
    # The reference's ADD: a reservation file created, then the cursor rewritten in place (here longer). The new
    # file changed the directory's state, so the cursor is read again, and its size before writing over it.
    (tmp_path / NETWORK / _name(100)).write_bytes(b"ref\r\neth0")
    _write_in_place(cursor, b"10.43.0.100")
    assert store.last_reserved_key("0") == _key(100)
    assert store.reserve_key(_key(4), "a eth2", "0")
    assert cursor.read_bytes() == _name(4).encode()
    # Replaced (a new inode): the directory's state changed, so the kept descriptor is closed, not written.
    assert store.reserve_key(_key(5), "a eth3", "0")
    kept = store._handles.cursor_fds["0"]
    (tmp_path / NETWORK / "new-cursor").write_bytes(b"10.43.0.7")
    os.rename(tmp_path / NETWORK / "new-cursor", cursor)
    assert store.last_reserved_key("0") == _key(7)
    with pytest.raises(OSError):
        os.fstat(kept)
    assert store.reserve_key(_key(6), "a eth4", "0")
    assert cursor.read_bytes() == _name(6).encode()


def test_a_cursor_edited_by_hand_alone_is_seen_at_the_next_change(store: FileStoreCore, tmp_path: Path) -> None:
    # Both plugins rewrite a cursor only in the lock hold of a successful reserve (reference: "rewritten on every
    # successful Reserve"), which changes the directory. A cursor edited by hand, and nothing else, changes
    # nothing the store looks at: its cached cursor holds until anyone's next change of an entry. (A cursor only
    # says where the next search starts.)
    cursor = tmp_path / NETWORK / "last_reserved_ip.0"
    assert store.reserve_key(_key(2), "a eth0", "0")
    assert store.reserve_key(_key(3), "a eth1", "0")
    _write_in_place(cursor, b"10.43.0.7")
    assert store.last_reserved_key("0") == _key(3)
    (tmp_path / NETWORK / _name(50)).write_bytes(b"b\r\neth0")
    assert store.last_reserved_key("0") == _key(7)
    assert store.reserve_key(_key(4), "a eth2", "0")
    assert cursor.read_bytes() == _name(4).encode()


def test_a_replaced_lock_file_is_noticed(store: FileStoreCore, tmp_path: Path) -> None:
    lock = tmp_path / NETWORK / "lock"
    held = store._lock_ident
    lock.unlink()
    lock.write_bytes(b"")
    assert store.reserve_key(_key(2), "a eth0", "0")
    assert store._lock_ident == ((st := lock.stat()).st_dev, st.st_ino) != held


def test_the_path_is_checked_at_once_when_the_directory_itself_moves(
        store: FileStoreCore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Renaming the directory stamps it a new ctime: the state differs, and the path is checked at once.
    monkeypatch.setattr(core, "_PATH_CHECK_EVERY", 3600.0)
    assert store.reserve_key(_key(2), "a eth0", "0")
    (tmp_path / NETWORK).rename(tmp_path / "moved")
    assert store.reserve_key(_key(3), "a eth1", "0")
    assert sorted(p.name for p in (tmp_path / NETWORK).iterdir()) == [_name(3), "last_reserved_ip.0", "lock"]
    assert not (tmp_path / "moved" / _name(3)).exists()


def test_a_renamed_ancestor_is_noticed_within_the_path_check_interval(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An ancestor renamed leaves the directory's state as it was: the store goes on in the moved directory until
    # its next look at the path, at most _PATH_CHECK_EVERY seconds later.
    if not fine_ctime(tmp_path):
        pytest.skip(NO_FINE_CTIME)
    data = tmp_path / "data"
    with FileStoreCore(data, NETWORK) as store:
        for host in range(2, 5):
            assert store.reserve_key(_key(host), f"c{host} eth0", "0")
        assert store._state_only
        monkeypatch.setattr(core, "_PATH_CHECK_EVERY", 3600.0)
        data.rename(tmp_path / "data.old")
        data.mkdir()
        assert store.reserve_key(_key(5), "c5 eth0", "0")
        assert (tmp_path / "data.old" / NETWORK / _name(5)).exists()  # not looked at the path yet
        monkeypatch.setattr(core, "_PATH_CHECK_EVERY", 0.0)
        assert store.reserve_key(_key(6), "c6 eth0", "0")
        assert sorted(p.name for p in (data / NETWORK).iterdir()) == [_name(6), "last_reserved_ip.0", "lock"]


def test_a_growing_directory_is_watched_from_then_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fine_ctime(tmp_path):
        pytest.skip(NO_FINE_CTIME)
    monkeypatch.setattr(core, "_STATE_ONLY_UP_TO", 3)
    net = tmp_path / NETWORK
    with FileStoreCore(tmp_path, NETWORK) as store:
        for host in range(2, 5):
            assert store.reserve_key(_key(host), f"c{host} eth0", "0")
        assert store._state_only and "0" in store._handles.cursor_fds
        assert store.reserve_key(_key(5), "c5 eth0", "0")  # the fourth: past the limit
        assert not store._state_only and store._handles.cursor_fds == {}
        assert store.has_key(_key(5))
        assert store._handles.watch is not None
        _write_in_place(net / _name(2), b"x\r\neth0")  # now told by the watch
        assert store.find_owner_keys("x eth0", None) == [_key(2)]
        assert store.release_owner_keys("c3 eth0", None) == [_key(3)]
    assert sorted(p.name for p in net.iterdir()) == [_name(2), _name(4), _name(5), "last_reserved_ip.0", "lock"]


def test_a_store_following_by_state_saves_its_index_for_the_next_opener(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Saved at most every _SAVE_EVERY seconds (here: only the first time, then when closed): the next store opens
    # from the index without reading a reservation file, and sees the same reservations.
    if not fine_ctime(tmp_path):
        pytest.skip(NO_FINE_CTIME)
    monkeypatch.setattr(core, "_SAVE_EVERY", 3600.0)
    with FileStoreCore(tmp_path, NETWORK) as store:
        for host in range(2, 8):
            assert store.reserve_key(_key(host), f"c{host} eth0", "0")
        assert store.release_owner_keys("c3 eth0", None) == [_key(3)]
        assert store._state_only
    read = _calls_of(monkeypatch, "_refresh")
    with FileStoreCore(tmp_path, NETWORK) as again:
        assert again.has_key(_key(2)) and not again.has_key(_key(3))
        assert [name for name, _ in read] == [_name(2)]  # only the content acted on is read again
        assert sorted(key for key, _ in again.reservation_keys()) == [_key(h) for h in (2, 4, 5, 6, 7)]


def test_a_name_made_without_the_lock_inside_a_transaction_is_learnt_when_taken(
        store: FileStoreCore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A writer that ignores the lock and creates a name in the middle of one of the store's own transactions
    # changes the directory between the store's changes, so the state sealed after them includes it. Following by
    # state cannot tell (a watching store reads the event: see test_lost_creation_race). It is never handed out
    # twice: the create-if-absent fails, and the address is learnt as taken, by that writer.
    assert store.reserve_key(_key(3), "first eth0", "0")
    _recreated_after_removal(monkeypatch, tmp_path / NETWORK, 3)
    with store.transaction():
        assert store.release_key(_key(3), "first eth0")
        assert store.reserve_key(_key(2), "second eth0", "0")
    monkeypatch.undo()
    assert not store.has_key(_key(3))  # (the limit of this mode)
    assert store.reserve_key(_key(3), "third eth0", "0") is False
    assert store.find_owner_keys("intruder eth0", None) == [_key(3)]
    assert (tmp_path / NETWORK / _name(3)).read_bytes() == b"intruder\r\neth0"


class _Clock:
    """``os.fstat`` of the probed directory with a ctime that moves only on a coarse tick (every 4 ms)."""

    def __init__(self, dir_fd: int) -> None:
        self.dir_fd = dir_fd
        self.real = os.fstat

    def __call__(self, fd: int) -> Any:
        st = self.real(fd)
        if fd != self.dir_fd:
            return st
        coarse = st.st_ctime_ns - st.st_ctime_ns % 4_000_000
        return os.stat_result((*st[:10], st.st_atime, st.st_mtime, st.st_ctime, st.st_atime_ns, st.st_mtime_ns,
                               coarse))


class _LastRepeats(_Clock):
    """``os.fstat`` of the probed directory that shows the fifth change with the ctime of the fourth."""

    def __init__(self, dir_fd: int) -> None:
        super().__init__(dir_fd)
        self.seen: list[int] = []

    def __call__(self, fd: int) -> Any:
        st = self.real(fd)
        if fd != self.dir_fd:
            return st
        self.seen.append(st.st_ctime_ns)
        ctime = self.seen[4] if len(self.seen) == 6 else st.st_ctime_ns
        return os.stat_result((*st[:10], st.st_atime, st.st_mtime, st.st_ctime, st.st_atime_ns, st.st_mtime_ns,
                               ctime))


def test_the_probe_runs_once_per_file_system_and_its_change_is_sealed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fine_ctime(tmp_path):
        pytest.skip(NO_FINE_CTIME)
    monkeypatch.setattr(core, "_fine_ctime_by_dev", {})
    probes = [0]
    real_probe = core._stamps_every_change

    def probe(dir_fd: int) -> bool:
        probes[0] += 1
        return real_probe(dir_fd)

    monkeypatch.setattr(core, "_stamps_every_change", probe)
    rescans = _calls_of(monkeypatch, "_rescan")
    with FileStoreCore(tmp_path, NETWORK) as first, FileStoreCore(tmp_path, "other") as second:
        for store in (first, second):
            for _ in range(2):
                assert not store.has_key(_key(2))
            before = len(rescans)
            assert not store.has_key(_key(2))  # the third operation: steady use, by state (probed if unknown)
            assert store._state_only
            assert not store.has_key(_key(2))
            assert store.reserve_key(_key(2), "c2 eth0", "0")
            assert len(rescans) == before  # the probe's own changes were sealed: nothing to compare again
        assert probes == [1]  # one file system: one probe


def test_the_probe_accepts_only_a_ctime_that_moves_with_every_change(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fine = core._stamps_every_change(fd)
        assert fine is fine_ctime(tmp_path)
        assert os.listdir(tmp_path) == []  # nothing left behind
        monkeypatch.setattr(os, "fstat", _Clock(fd))
        assert core._stamps_every_change(fd) is False  # changes within one tick share a ctime
        monkeypatch.undo()
        monkeypatch.setattr(os, "fstat", _LastRepeats(fd))
        assert core._stamps_every_change(fd) is False  # the last change too must move the ctime
        monkeypatch.undo()
        real_rename = os.rename

        def refused(*args: Any, **kwargs: Any) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "rename", refused)
        assert core._stamps_every_change(fd) is False
        monkeypatch.setattr(os, "rename", real_rename)
        assert os.listdir(tmp_path) == []  # cleaned up after a failure too
    finally:
        os.close(fd)


def test_a_file_system_that_cannot_stamp_finely_is_watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "_stamps_every_change", lambda dir_fd: False)
    monkeypatch.setattr(core, "_fine_ctime_by_dev", {})
    with FileStoreCore(tmp_path, NETWORK) as store:
        for host in range(2, 5):
            assert store.reserve_key(_key(host), f"c{host} eth0", "0")
        assert not store._state_only and store._handles.watch is not None


class _Counting:
    """Wraps a function of ``os``: counts the calls whose first argument passes ``which``."""

    def __init__(self, real: Any, which: Any = lambda *args: True) -> None:
        self.real, self.which, self.calls = real, which, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.which(*args):
            self.calls += 1
        return self.real(*args, **kwargs)


def test_nothing_is_read_or_sealed_again_while_nothing_changed(
        store: FileStoreCore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The compare of the entries takes their signatures as the files' own (an entry that is a symlink included:
    # its own lstat, not its target's), and a transaction that changed nothing seals nothing.
    monkeypatch.setattr(core, "_PATH_CHECK_EVERY", 3600.0)  # (no look at the path among the counted calls)
    for host in range(2, 5):
        assert store.reserve_key(_key(host), f"c{host} eth0", "0")
    (tmp_path / "target").write_bytes(b"x\r\neth0")
    (tmp_path / NETWORK / _name(9)).symlink_to(tmp_path / "target")
    assert store.has_key(_key(9))  # (the change seen, and the link's identity recorded)
    refresh = _calls_of(monkeypatch, "_refresh")
    dir_fd = store._handles.dir_fd
    fstat = _Counting(os.fstat, lambda fd: fd == dir_fd)
    monkeypatch.setattr(os, "fstat", fstat)
    stat = _Counting(os.stat)
    monkeypatch.setattr(os, "stat", stat)
    for _ in range(3):
        assert store.find_owner_keys("c3 eth0", None) == [_key(3)]
    assert refresh == []
    assert fstat.calls == 3  # one per transaction: the state is read, not sealed again
    with store.transaction():  # two lookups in one transaction compare the entries once
        assert store.find_owner_keys("c2 eth0", None) == [_key(2)]
        assert store.find_owner_keys("c4 eth0", None) == [_key(4)]
    assert stat.calls == 3 * 4 + 4
    assert refresh == []


def test_an_entry_that_cannot_be_compared_is_read_again(
        store: FileStoreCore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for host in range(2, 5):
        assert store.reserve_key(_key(host), f"c{host} eth0", "0")
    real_stat = os.stat

    def failing(name: Any, *args: Any, **kwargs: Any) -> Any:
        if name == _name(3):
            raise OSError(5, "Input/output error")
        return real_stat(name, *args, **kwargs)

    _write_in_place(tmp_path / NETWORK / _name(4), b"d\r\neth0")
    refresh = _calls_of(monkeypatch, "_refresh")
    monkeypatch.setattr(os, "stat", failing)
    assert store.find_owner_keys("c3 eth0", None) == [_key(3)]
    assert store.find_owner_keys("d eth0", None) == [_key(4)]  # (the entries after it compared too)
    assert len(refresh) == 3  # 3 twice (it cannot be compared), 4 once (rewritten)


def test_the_index_is_saved_at_most_every_save_interval_and_not_again_after_a_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fine_ctime(tmp_path):
        pytest.skip(NO_FINE_CTIME)
    monkeypatch.setattr(core, "_SAVE_EVERY", 3600.0)
    saves = _calls_of(monkeypatch, "_save")
    store = FileStoreCore(tmp_path, NETWORK)
    try:
        for host in range(2, 6):
            assert store.reserve_key(_key(host), f"c{host} eth0", "0")
        assert store._state_only
        made = len(saves)
        for host in range(6, 9):
            assert store.reserve_key(_key(host), f"c{host} eth0", "0")
            assert store.has_key(_key(host))
        assert len(saves) == made  # within the interval: nothing saved
    finally:
        store.close()
    assert len(saves) == made + 1  # and once when closed
    # Saved is saved: operations that change nothing save nothing, however short the interval.
    monkeypatch.setattr(core, "_SAVE_EVERY", 0.0)
    with FileStoreCore(tmp_path, NETWORK) as reader:
        for _ in range(3):
            assert reader.has_key(_key(2))
        assert reader._state_only
        made = len(saves)
        assert reader.reserve_key(_key(20), "c20 eth0", "0")
        assert len(saves) == made + 1
        for _ in range(3):
            assert reader.has_key(_key(2))
    assert len(saves) == made + 1
    # A failing save is not tried again before _SAVE_RETRY_AFTER, however often the interval comes round.
    monkeypatch.setattr(core, "_SAVE_EVERY", 0.0)
    broken = [0]

    def refuse(self: FileStoreCore) -> bool:
        broken[0] += 1
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileStoreCore, "_append", refuse)
    monkeypatch.setattr(FileStoreCore, "_write_snapshot", refuse)
    with FileStoreCore(tmp_path, NETWORK) as again:
        for host in range(10, 16):
            assert again.reserve_key(_key(host), f"c{host} eth0", "0")
        assert again._state_only
        tried = broken[0]
        assert tried >= 1
        for host in range(16, 20):
            assert again.reserve_key(_key(host), f"c{host} eth0", "0")
        assert broken[0] == tried


def test_a_store_that_never_watches_sees_a_name_made_without_the_lock_inside_its_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # watch=False lists the directory before each lookup by owner, so it sees what following by state cannot
    # (see test_a_name_made_without_the_lock_inside_a_transaction_is_learnt_when_taken).
    with FileStoreCore(tmp_path, NETWORK, watch=False) as never:
        for host in range(2, 5):
            assert never.reserve_key(_key(host), f"c{host} eth0", "0")
        _recreated_after_removal(monkeypatch, tmp_path / NETWORK, 3)
        with never.transaction():
            assert never.release_key(_key(3), "c3 eth0")
            assert never.reserve_key(_key(5), "c5 eth0", "0")
        monkeypatch.undo()
        assert never.find_owner_keys("intruder eth0", None) == [_key(3)]
