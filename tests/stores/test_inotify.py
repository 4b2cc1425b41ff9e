"""The directory watch on a real directory: what it reports, and the events a writer announces as its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnicore.stores._inotify import IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_MODIFY, DirectoryWatch


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, DirectoryWatch]]:
    watch = DirectoryWatch(str(tmp_path))
    try:
        yield tmp_path, watch
    finally:
        watch.close()


def _unnamed_add(directory: Path, name: str, data: bytes) -> list[tuple[int, bytes]]:
    """Do what the file store's ADD does (unnamed file written and linked, cursor written, unnamed file closed
    last); the events it announces (those of the unnamed file, ``#<inode>``, are passed over)."""
    cursor_name = b"last_reserved_ip.0"
    events = [] if (directory / "last_reserved_ip.0").exists() else [(IN_CREATE, cursor_name)]
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        cursor = os.open(cursor_name, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
        fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o600, dir_fd=dir_fd)
        os.write(fd, data)
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd)
        os.pwrite(cursor, name.encode(), 0)
        os.close(cursor)
        os.close(fd)
    finally:
        os.close(dir_fd)
    return [*events, (IN_CREATE, name.encode()), (IN_MODIFY, cursor_name), (IN_CLOSE_WRITE, cursor_name)]


def test_names_and_removals_are_reported_and_unnamed_files_left_out(watched: tuple[Path, DirectoryWatch]) -> None:
    directory, watch = watched
    assert watch.drain() == ({}, False)
    _unnamed_add(directory, "10.0.0.2", b"a\r\neth0")
    (directory / "10.0.0.3").write_bytes(b"b")
    (directory / "10.0.0.3").unlink()
    assert watch.drain() == ({b"10.0.0.2": False, b"last_reserved_ip.0": False, b"10.0.0.3": True}, False)
    assert watch.drain() == ({}, False)


def test_announced_events_heading_the_queue_are_left_out(watched: tuple[Path, DirectoryWatch]) -> None:
    directory, watch = watched
    own = _unnamed_add(directory, "10.0.0.2", b"a\r\neth0")
    watch.expect(own)
    (directory / "10.0.0.9").write_bytes(b"b")  # someone else, after them
    assert watch.drain() == ({b"10.0.0.9": False}, False)
    os.unlink(directory / "10.0.0.2")
    watch.expect([(IN_DELETE, b"10.0.0.2")])
    assert watch.drain() == ({}, False)
    watch.expect([(IN_DELETE, b"10.0.0.2")])  # an announcement holds for one look only
    assert watch.drain() == ({}, False)
    (directory / "10.0.0.9").unlink()
    assert watch.drain() == ({b"10.0.0.9": True}, False)


@pytest.mark.parametrize("wrong", ["mask", "name", "order", "more than happened", "someone else first",
                                   "an unnamed file's event listed"])
def test_an_announcement_that_does_not_match_reports_everything(watched: tuple[Path, DirectoryWatch],
                                                                 wrong: str) -> None:
    directory, watch = watched
    if wrong == "someone else first":
        (directory / "10.0.0.9").write_bytes(b"b")
    own = _unnamed_add(directory, "10.0.0.2", b"a\r\neth0")
    if wrong == "mask":
        own[-2] = (IN_CREATE, own[-2][1])
    elif wrong == "name":
        own[-3] = (IN_CREATE, b"10.0.0.3")
    elif wrong == "order":
        own[0], own[1] = own[1], own[0]
    elif wrong == "more than happened":
        own.append((IN_MODIFY, b"last_reserved_ip.0"))
    elif wrong == "an unnamed file's event listed":
        own.insert(0, (IN_MODIFY, b"#1"))
    watch.expect(own)
    names, rebuild = watch.drain()
    assert not rebuild
    assert b"10.0.0.2" in names
    if wrong == "someone else first":
        assert names[b"10.0.0.9"] is False


def test_a_closed_watch_asks_for_a_rescan(tmp_path: Path) -> None:
    watch = DirectoryWatch(str(tmp_path))
    watch.close()
    watch.close()
    assert watch.fileno() == -1
    assert watch.drain() == ({}, True)
