"""The file store's reserve and release when the file system says no: a reservation file created by someone
else at the instant the store links its own into place, and a reservation file that cannot be removed.

The store's index normally knows every reservation before it tries to create one (the lock, inotify or the
directory's state tell it). A writer that does not take the lock, or a change the store has not seen yet, can
still win the race for a name: the store's link then fails with EEXIST, and the address is taken. Reporting
that as a successful reservation would hand one address to two attachments. The race is injected at the
operating system boundary: just before the store links its file, the competitor's file appears.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Any

import pytest

from cnicore import IOFailureError
from cnicore.ipam import HostLocalIPAM
from cnicore.stores import FileStore, Owner, Reservation, parse_ip

NETWORK = "racenet"
WINNER = b"winner\r\neth0"


class LosingLink:
    """``os.link`` for the store under test: before the first link of a reservation file (a name that is an
    address), the competitor's file appears under that name. Records the names it raced for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, settle: float = 0.0) -> None:
        self.raced: list[str] = []
        self._link = os.link
        self._settle = settle
        monkeypatch.setattr(os, "link", self)

    def __call__(self, src: Any, dst: Any, **kwargs: Any) -> None:
        name = os.fsdecode(dst)
        if not self.raced and parse_ip(os.path.basename(name)) is not None:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=kwargs.get("dst_dir_fd"))
            try:
                os.write(fd, WINNER)
            finally:
                os.close(fd)
            self.raced.append(os.path.basename(name))
            if self._settle:
                # The winner's file is older than anything the loser records after: its ctime falls in an
                # earlier clock tick than the loser's transaction ends in.
                time.sleep(self._settle)
        self._link(src, dst, **kwargs)


@pytest.mark.parametrize("watch", [False, True])
def test_a_lost_creation_race_is_no_reservation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                watch: bool) -> None:
    ip, ours = parse_ip("10.40.0.2"), Owner.attachment("loser", "eth0")
    with FileStore(tmp_path, NETWORK, watch=watch) as store:
        assert store.reservation(ip) is None
        race = LosingLink(monkeypatch)
        assert store.reserve(ip, ours, "0") is False
        # The race happened where the store creates the file (else this test checks nothing).
        assert race.raced == ["10.40.0.2"]
        # The winner keeps the address, its file untouched; the store now knows it is taken.
        assert (tmp_path / NETWORK / "10.40.0.2").read_bytes() == WINNER
        assert store.reservation(ip) is not None
        assert store.reservation(ip).owner == Owner.attachment("winner", "eth0")  # type: ignore[union-attr]
        assert store.first_free(ip, ip) is None
        # Nothing of ours to release there, and the loser's DEL leaves the winner's file.
        assert store.release(ip, ours) is False
        assert list(store.release_owner(ours)) == []
        assert (tmp_path / NETWORK / "10.40.0.2").read_bytes() == WINNER
        # The cursor was not moved to an address the loser never got.
        assert store.last_reserved("0") is None
        # The next address is reserved normally.
        assert store.reserve(parse_ip("10.40.0.3"), ours, "0") is True
        assert [str(r.ip) for r in store.reservations()] == ["10.40.0.2", "10.40.0.3"]
        assert store.last_reserved("0") == parse_ip("10.40.0.3")


def test_add_that_loses_the_race_takes_the_next_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"cniVersion": "1.0.0", "name": NETWORK,
              "ipam": {"type": "host-local", "subnet": "10.40.0.0/24", "dataDir": str(tmp_path)}}
    race = LosingLink(monkeypatch)
    with HostLocalIPAM() as ipam:
        got = ipam.add(config, "loser", "eth0")
        assert race.raced == ["10.40.0.2"]
        assert [str(ip.ip) for ip in got.ips] == ["10.40.0.3"]
        # Both attachments hold one address each, never the same one.
        assert (tmp_path / NETWORK / "10.40.0.2").read_bytes() == WINNER
        assert (tmp_path / NETWORK / "10.40.0.3").read_bytes() == b"loser\r\neth0"
        assert [str(ip) for ip in ipam.check(config, "loser", "eth0")] == ["10.40.0.3"]
        assert [str(ip) for ip in ipam.delete(config, "loser", "eth0")] == ["10.40.0.3"]
        assert (tmp_path / NETWORK / "10.40.0.2").read_bytes() == WINNER


class FailingUnlink:
    """``os.unlink`` failing with ``errno`` for reservation files (a read-only or failing file system)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, error: int = errno.EACCES) -> None:
        self.failed: list[str] = []
        self._unlink = os.unlink
        self._error = error
        monkeypatch.setattr(os, "unlink", self)

    def __call__(self, path: Any, **kwargs: Any) -> None:
        name = os.path.basename(os.fsdecode(path))
        if parse_ip(name) is not None:
            self.failed.append(name)
            raise OSError(self._error, os.strerror(self._error), name)
        self._unlink(path, **kwargs)


@pytest.mark.parametrize("how", ["release", "release_owner"])
def test_a_release_the_file_system_refuses_fails_and_keeps_the_reservation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    ip, owner = parse_ip("10.40.0.2"), Owner.attachment("c1", "eth0")
    with FileStore(tmp_path, NETWORK) as store:
        assert store.reserve(ip, owner, "0")
        failing = FailingUnlink(monkeypatch)
        with pytest.raises(IOFailureError) as caught:
            if how == "release":
                store.release(ip, owner)
            else:
                store.release_owner(owner)
        assert failing.failed == ["10.40.0.2"]
        assert caught.value.code == 5
        assert caught.value.msg == f"cannot remove {tmp_path / NETWORK / '10.40.0.2'}: Permission denied"
        # Nothing is forgotten: the file and the store's view of it stay until a release succeeds.
        assert (tmp_path / NETWORK / "10.40.0.2").read_bytes() == b"c1\r\neth0"
        assert store.reservation(ip) == Reservation(ip=ip, owner=owner)
        monkeypatch.undo()
        assert store.release(ip, owner) is True
        assert not (tmp_path / NETWORK / "10.40.0.2").exists()


def test_a_release_removes_the_file_itself(tmp_path: Path) -> None:
    """Released means gone from the directory the reference reads, not only from the store's index."""
    ip, owner = parse_ip("10.40.0.2"), Owner.attachment("c1", "eth0")
    with FileStore(tmp_path, NETWORK) as store:
        assert store.reserve(ip, owner, "0")
        assert store.reserve(parse_ip("10.40.0.3"), owner, "0")
        assert store.release(ip, owner) is True
        assert sorted(p.name for p in (tmp_path / NETWORK).iterdir() if parse_ip(p.name)) == ["10.40.0.3"]
        assert [str(a) for a in store.release_owner(owner)] == ["10.40.0.3"]
    assert [p.name for p in (tmp_path / NETWORK).iterdir() if parse_ip(p.name)] == []
    with FileStore(tmp_path, NETWORK, persist_index=False) as reopened:
        assert list(reopened.reservations()) == []


@pytest.mark.parametrize("watch", [False, True])
def test_after_a_lost_race_the_store_knows_the_winner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      watch: bool) -> None:
    # The loser's store learns whose the address is, from the file: the store lists the winner's reservation
    # and the winner's DEL through that same store frees it. The winner's file is a few clock ticks older than
    # the loser's transaction, so nothing later makes the store read it again: what it learnt is what it keeps.
    ip, ours, winner = parse_ip("10.40.0.2"), Owner.attachment("loser", "eth0"), Owner.attachment("winner", "eth0")
    with FileStore(tmp_path, NETWORK, watch=watch) as store:
        for _ in range(4):  # past the point where a watching store starts its watch
            assert store.reservation(ip) is None
        race = LosingLink(monkeypatch, settle=0.05)
        assert store.reserve(ip, ours, "0") is False
        assert race.raced == ["10.40.0.2"]
        assert [(str(r.ip), r.owner) for r in store.reservations()] == [("10.40.0.2", winner)]
        assert [str(freed) for freed in store.release_owner(winner)] == ["10.40.0.2"]
        assert not (tmp_path / NETWORK / "10.40.0.2").exists()
        assert list(store.reservations()) == []


def test_a_name_recreated_by_another_writer_after_our_removal_is_seen(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # In one transaction the store removes a reservation and creates another (so it reads its watch before it
    # unlocks); a writer that ignores the lock creates the removed name again at once. The store's own removal
    # must not hide that creation: the address is taken, by that writer.
    from cnicore.stores._filecore import FileStoreCore

    net_ip, gone_ip = 10 << 24 | 41 << 16 | 2, 10 << 24 | 41 << 16 | 3
    store = FileStoreCore(tmp_path, NETWORK, watch=True)
    try:
        assert store.reserve_key(gone_ip, "first eth0", "0")
        for _ in range(4):  # a long-lived store: its watch is on
            assert store.find_owner_keys("first eth0", None) == [gone_ip]
        real_unlink = os.unlink

        def unlink_then_recreate(name: Any, **kwargs: Any) -> None:
            real_unlink(name, **kwargs)
            if os.path.basename(os.fsdecode(name)) == "10.41.0.3":
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=kwargs.get("dir_fd"))
                try:
                    os.write(fd, b"intruder\r\neth0")
                finally:
                    os.close(fd)

        monkeypatch.setattr(os, "unlink", unlink_then_recreate)
        with store.transaction():
            assert store.release_key(gone_ip, "first eth0")
            assert store.reserve_key(net_ip, "second eth0", "0")
        monkeypatch.undo()
        assert (tmp_path / NETWORK / "10.41.0.3").read_bytes() == b"intruder\r\neth0"
        assert store.watching
        assert store.find_owner_keys("intruder eth0", None) == [gone_ip]
        assert store.has_key(gone_ip)
    finally:
        store.close()


def test_a_reservation_removed_by_another_writer_right_after_its_creation_is_seen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A writer that ignores the lock removes the file the store has just linked into place, in the same
    # transaction. The store must not keep believing the address is held (it would stay taken until a restart):
    # the removal's event is read like anyone's.
    from cnicore.stores._filecore import FileStoreCore

    first, key = 10 << 24 | 42 << 16 | 2, 10 << 24 | 42 << 16 | 3
    store = FileStoreCore(tmp_path, NETWORK, watch=True)
    try:
        assert store.reserve_key(first, "first eth0", "0")
        for _ in range(4):  # a long-lived store: its watch is on
            assert store.has_key(first)
        assert store.watching
        real_link = os.link

        def link_then_lose(src: Any, dst: Any, **kwargs: Any) -> None:
            real_link(src, dst, **kwargs)
            if os.path.basename(os.fsdecode(dst)) == "10.42.0.3":
                os.unlink(dst, dir_fd=kwargs.get("dst_dir_fd"))

        monkeypatch.setattr(os, "link", link_then_lose)
        assert store.reserve_key(key, "second eth0", "0")  # (the store did reserve it: the file was there)
        monkeypatch.undo()
        assert not (tmp_path / NETWORK / "10.42.0.3").exists()
        assert not store.has_key(key)
        assert store.find_owner_keys("second eth0", None) == []
        assert store.reserve_key(key, "third eth0", "0")
    finally:
        store.close()
