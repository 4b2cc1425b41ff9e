"""Reading a network's reservation files without opening a store: the read-only view ``cnicore ls`` shows.

Opening a :class:`~cnicore.stores.FileStore` creates the directory and its lock file and takes the lock
exclusively for every operation. A listing must do neither: it must not change what it looks at, and must not
hold up allocations for as long as a large directory takes to read. Files the file store writes appear whole
(they are linked into place), so they are read without the lock. A file the reference plugin is writing can be
seen empty for a moment; only such unreadable files are read again, holding the lock shared (never created) for
that short re-read, and only for up to ``lock_wait`` seconds.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cnicore._errors import IOFailureError
from cnicore._readfile import open_regular
from cnicore.stores._file import LOCK_NAME, network_dir
from cnicore.stores._goip import ip_from_file_name
from cnicore.stores._keyindex import MAX_OWNER_BYTES
from cnicore.stores._port import Owner, Reservation, owner_from_text

__all__ = ["read_reservations"]


def read_reservations(data_dir: str | os.PathLike[str], network: str, *, lock_wait: float = 1.0,
                      sleep: Callable[[float], None] = time.sleep) -> list[tuple[Reservation, float | None]]:
    """Every reservation file of ``<data_dir>/<network>``, with its modification time, by file name.

    Read-only: creates nothing (a missing directory has no reservations) and takes no lock, except a shared
    one for up to ``lock_wait`` seconds (polling with ``sleep``) to read again the files that looked mid-write.
    Content no implementation writes, and names that are addresses but not regular files, give a reservation
    whose owner is None (the address stays occupied); symlinks are never followed.

    Raises:
        IOFailureError: the directory cannot be opened or listed (code 5).
    """
    path = str(network_dir(data_dir, network))
    try:
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise IOFailureError(f"cannot open the store directory {path}: {exc.strerror or exc}", key="ipam.dataDir",
                             value=os.fspath(data_dir)) from exc
    try:
        found: dict[str, tuple[Reservation, float | None]] = {}
        suspicious: list[str] = []
        for name in sorted(os.listdir(dir_fd)):
            ip = ip_from_file_name(name)
            if ip is None:
                continue
            try:
                owner, mtime, regular = _read(dir_fd, name)
            except FileNotFoundError:
                continue  # released while we listed
            found[name] = (Reservation(ip=ip, owner=owner), mtime)
            if owner is None and regular:
                suspicious.append(name)
        if suspicious:
            with _shared_lock(dir_fd, lock_wait, sleep):
                for name in suspicious:
                    try:
                        owner, mtime, _ = _read(dir_fd, name)
                    except FileNotFoundError:
                        del found[name]
                        continue
                    found[name] = (Reservation(ip=found[name][0].ip, owner=owner), mtime)
    except OSError as exc:
        raise IOFailureError(f"cannot list the store directory {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(dir_fd)
    return list(found.values())


def _read(dir_fd: int, name: str) -> tuple[Owner | None, float | None, bool]:
    """(owner or None, mtime, whether the file is regular) of one reservation file, never following links.

    FileNotFoundError when the file is gone (released since the directory was listed).
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return None, None, False
        return None, st.st_mtime, False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, st.st_mtime, False
        data = os.read(fd, min(st.st_size, MAX_OWNER_BYTES) + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_OWNER_BYTES:
        return None, st.st_mtime, True
    try:
        return owner_from_text(data.decode("utf-8")), st.st_mtime, True
    except UnicodeDecodeError:
        return None, st.st_mtime, True


@contextmanager
def _shared_lock(dir_fd: int, wait: float, sleep: Callable[[float], None]) -> Iterator[bool]:
    """Hold the store's lock shared for a moment (True), or give up after ``wait`` seconds (False).

    The lock file is only opened, never created: a directory without one has no writer to wait for.
    """
    try:
        fd, _ = open_regular(LOCK_NAME, dir_fd=dir_fd, follow_symlinks=False)  # (a FIFO there must not hang ls)
    except OSError:
        yield False
        return
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                sleep(0.01)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
