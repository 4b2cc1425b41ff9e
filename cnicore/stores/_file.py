"""The file store: host-local's on-disk layout, byte for byte, made crash-safe and fast.

Theory of operation
===================

Layout (shared with the reference plugin, which may use the same directory at the
same time)::

    <dataDir>/<network>/lock                  empty; flock(LOCK_EX) on it is THE lock
    <dataDir>/<network>/<ip>                  "<containerID>\\r\\n<ifname>" (no newline), mode 0600
    <dataDir>/<network>/last_reserved_ip.<n>  "<ip>" (no newline), one per range set index n

``<ip>`` is Go's ``net.IP.String()`` of the address. Legacy reservation files hold
just ``<containerID>``.

What is locked. Every operation runs with ``flock(LOCK_EX)`` held on ``lock``,
the very lock the reference takes (go-filemutex), so the two implementations
exclude each other. The lock file is never unlinked: unlinking it would let two
processes lock two different inodes. After taking the lock the store checks that
the path still names the inode it locked (and the directory it opened) and
reopens otherwise. A thread lock makes one store object safe to share between
threads; a pid check reopens the descriptors after ``fork`` (a forked child would
otherwise share the parent's lock). Waiting longer than ``lock_timeout`` raises
:class:`~cnicore.TryAgainLaterError` (code 11).

What is atomic. A reservation file appears complete or not at all: the content is
written to a temp file ``.cnicore-<pid>-<random>.tmp`` in the same directory
(in durable mode: fsync'ed), then ``link()``-ed to the address's name, which
fails with EEXIST when the address is taken (the create-if-absent), and the temp
name is unlinked. ``last_reserved_ip.<n>`` is written as a temp file and renamed into place
(the old one is unlinked first except in durable mode: see ``_write_last_reserved``; a
crash in between leaves no cursor, which restarts round-robin at the range start).
Release is one ``unlink()``. In durable mode the directory is fsync'ed after each
link, unlink and rename.

What a crash can leave. A process killed at any instant leaves at worst:
a stray temp file (before or after the link; after it, the reservation itself is
complete), or a reservation whose ADD never returned (a leaked address). Never a
torn or empty reservation file, never a half-written ``last_reserved_ip``. The
reference ignores temp files (their names are not addresses) and, being
dot-files, they stay out of the way of people listing the directory.

Who cleans up. Temp files are created and removed within one lock hold, so one
seen while holding the lock is debris; :meth:`FileStore.sweep` (run when a store
opens and by GC) removes those whose creating process is gone or that are older
than ``STALE_TEMP_SECONDS``. Leaked reservations are reclaimed by GC with the
runtime's list of valid attachments.

Foreign content. Nothing in the directory is followed if it is a symlink (all
opens use ``O_NOFOLLOW`` relative to a directory descriptor opened with
``O_NOFOLLOW``). A name that is an address but is not a regular file, or whose
content is not a form either implementation writes, keeps its address occupied
and is never released (the reference could not match it either); GC leaves it.
Names that are not canonical addresses are ignored, like subdirectories.

Why it is fast. The reference reads every file on each ADD and DEL. This store
keeps an in-memory index (address -> owner, owner -> addresses, runs of taken
addresses for "first free") and keeps it exact while others write: an inotify
watch on the directory reports which names changed, and they are re-read under
the lock before each operation (events are queued synchronously by the kernel,
so everything the previous lock holder did is in the queue once we hold the
lock). A queue overflow or a replaced directory causes a full rescan. Without
inotify, the directory's mtime is compared; because file timestamps come from a
coarse clock, a recorded mtime that is not older than the coarse clock at the
time it was recorded is treated as unverified and forces a rescan (of directory
entries and their lstat signatures; only changed or recently changed files are
read). For large directories the store instead waits, still holding the lock,
for the clock to tick before releasing the lock, so that the mtime it records
is trustworthy: O(1) per operation at the price of up to one clock tick.
Opening a store reads the directory once (O(n)): a long-lived process pays that
once, a process that opens a store per operation pays it every time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from netaddr import IPAddress  # type: ignore[import-untyped, unused-ignore]

from cnicore._errors import InvalidConfigError, IOFailureError, TryAgainLaterError
from cnicore.spec._validate import validate_network_name
from cnicore.stores._goip import canonical_ip, ip_from_file_name, ip_text, parse_ip
from cnicore.stores._index import ReservationIndex
from cnicore.stores._memory import find_owner_in_index, release_owner_in_index
from cnicore.stores._port import Owner, Reservation, owner_from_text

__all__ = ["DEFAULT_DATA_DIR", "LAST_RESERVED_PREFIX", "LOCK_NAME", "STALE_TEMP_SECONDS", "FileStore"]

#: The reference's default ``ipam.dataDir``.
DEFAULT_DATA_DIR = "/var/lib/cni/networks"
#: Name of the lock file inside the network directory.
LOCK_NAME = "lock"
#: Prefix of the per-range-set round-robin cursor files.
LAST_RESERVED_PREFIX = "last_reserved_ip."
#: A temp file older than this is debris even if a process with its pid exists.
STALE_TEMP_SECONDS = 30.0

_TEMP_PREFIX = ".cnicore-"
_TEMP_SUFFIX = ".tmp"
_MAX_CONTENT = 4096
_FILE_MODE = 0o600
_DIR_MODE = 0o755
_CLOCK_REALTIME_COARSE = getattr(time, "CLOCK_REALTIME_COARSE", 5)
# Without inotify: directories with more reservations than this wait for the clock tick (see _finish).
_WAIT_FOR_TICK_ABOVE = 256
_NOFOLLOW_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _io_error(action: str, path: str, exc: OSError) -> IOFailureError:
    return IOFailureError(f"{action} {path}: {exc.strerror or exc}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Handles:
    """The descriptors a store holds, closable from a finalizer without the store."""

    __slots__ = ("dir_fd", "lock_fd", "watch")

    def __init__(self) -> None:
        self.dir_fd = -1
        self.lock_fd = -1
        self.watch: object | None = None

    def close(self) -> None:
        watch, self.watch = self.watch, None
        if watch is not None:
            watch.close()  # type: ignore[attr-defined]
        for attr in ("lock_fd", "dir_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                setattr(self, attr, -1)
                with contextlib.suppress(OSError):
                    os.close(fd)


class FileStore:
    """Reservations as files in ``<data_dir>/<network>``, interoperable with the reference plugin.

    Args:
        data_dir: ``ipam.dataDir`` (created if missing; default ``/var/lib/cni/networks``).
        network: the network name; validated so that it cannot leave ``data_dir``.
        durable: fsync files and the directory so that a power loss keeps every
            completed operation (slower; a process crash is safe either way).
        lock_timeout: seconds to wait for the lock before ``TryAgainLaterError``; None waits forever.
        watch: use inotify to follow changes made by others (falls back to mtime checks when False
            or unavailable).

    Raises:
        InvalidConfigError: bad network name, or ``data_dir`` is not a directory (code 7).
        IOFailureError: the directory cannot be created or opened (code 5).
    """

    def __init__(self, data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR, network: str = "", *,
                 durable: bool = False, lock_timeout: float | None = 60.0, watch: bool = True) -> None:
        validate_network_name(network)
        self.data_dir = os.fspath(data_dir) or DEFAULT_DATA_DIR
        self.network = network
        self.path = os.path.join(self.data_dir, network)
        self.durable = durable
        self.lock_timeout = lock_timeout
        self._want_watch = watch
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._index = ReservationIndex()
        self._signatures: dict[str, tuple[int, int, int, int]] = {}
        self._touched: set[str] = set()
        self._stale = True
        self._dir_mtime = -1
        self._dir_verified = False
        self._clock_mark = 0
        self._pid = -1
        self._handles = _Handles()
        self._finalizer = weakref.finalize(self, self._handles.close)
        self._open()
        self.sweep()

    # ----------------------------------------------------------------- opening and locking

    def _open(self) -> None:
        handles = self._handles
        handles.close()
        data_dir = self.data_dir
        if os.path.exists(data_dir) and not os.path.isdir(data_dir):
            raise InvalidConfigError(f"dataDir {data_dir} is not a directory", key="ipam.dataDir", value=data_dir)
        try:
            os.makedirs(data_dir, _DIR_MODE, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidConfigError(f"dataDir {data_dir} is not a directory", key="ipam.dataDir",
                                     value=data_dir) from exc
        except OSError as exc:
            raise _io_error("cannot create", data_dir, exc) from exc
        try:
            os.mkdir(self.path, _DIR_MODE)
        except FileExistsError:
            pass
        except OSError as exc:
            raise _io_error("cannot create", self.path, exc) from exc
        try:
            handles.dir_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise IOFailureError(f"network directory {self.path} is not a directory (symlinks are not "
                                     "followed)") from exc
            raise _io_error("cannot open", self.path, exc) from exc
        try:
            handles.lock_fd = os.open(LOCK_NAME, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                      _FILE_MODE, dir_fd=handles.dir_fd)
        except OSError as exc:
            handles.close()
            raise _io_error("cannot open lock file", os.path.join(self.path, LOCK_NAME), exc) from exc
        if self._want_watch:
            try:
                from cnicore.stores._inotify import DirectoryWatch

                handles.watch = DirectoryWatch(f"/proc/self/fd/{handles.dir_fd}")
            except OSError:
                handles.watch = None  # inotify unavailable or out of instances: mtime fallback
        self._pid = os.getpid()
        self._stale = True

    def _same_files(self) -> bool:
        """Whether the path still names the directory and lock file we hold open."""
        try:
            on_disk = os.stat(self.path, follow_symlinks=False)
            held = os.fstat(self._handles.dir_fd)
            if (on_disk.st_dev, on_disk.st_ino) != (held.st_dev, held.st_ino):
                return False
            lock_disk = os.stat(LOCK_NAME, dir_fd=self._handles.dir_fd, follow_symlinks=False)
            lock_held = os.fstat(self._handles.lock_fd)
            return (lock_disk.st_dev, lock_disk.st_ino) == (lock_held.st_dev, lock_held.st_ino)
        except OSError:
            return False

    def _acquire(self) -> None:
        if self._pid != os.getpid() or self._handles.lock_fd < 0:
            self._open()
        deadline = None if self.lock_timeout is None else time.monotonic() + self.lock_timeout
        delay = 0.0005
        while True:
            try:
                fcntl.flock(self._handles.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TryAgainLaterError(
                        f"timed out after {self.lock_timeout}s waiting for the lock on "
                        f"{os.path.join(self.path, LOCK_NAME)}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
                continue
            except OSError as exc:
                raise _io_error("cannot lock", os.path.join(self.path, LOCK_NAME), exc) from exc
            if self._same_files():
                return
            # Someone removed or replaced the directory or the lock file: what we locked excludes nobody.
            fcntl.flock(self._handles.lock_fd, fcntl.LOCK_UN)
            self._open()

    def _release_lock(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._handles.lock_fd, fcntl.LOCK_UN)

    def transaction(self) -> AbstractContextManager[None]:
        """Hold the store's lock (thread lock + flock on ``lock``). Re-entrant in one thread."""
        return self._transaction()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._pid != os.getpid():
            # A forked child inherits the parent's thread-lock state and transaction depth (and shares its
            # lock's open file description): start afresh so that it really takes the lock.
            self._thread_lock = threading.RLock()
            self._depth = 0
        with self._thread_lock:
            if self._depth == 0:
                self._acquire()
                try:
                    self._sync()
                except BaseException:
                    self._release_lock()
                    raise
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    try:
                        self._finish()
                    finally:
                        self._release_lock()

    # ----------------------------------------------------------------- keeping the index exact

    def _sync(self) -> None:
        """Bring the index up to date with the directory (called with the lock held)."""
        self._touched.clear()
        watch = self._handles.watch
        if self._stale:
            if watch is not None:
                watch.drain()  # type: ignore[attr-defined]
            self._rescan(full=True)
            return
        if watch is not None:
            try:
                names, rebuild = watch.drain()  # type: ignore[attr-defined]
            except OSError:
                names, rebuild = set(), True
            if rebuild:
                self._rescan(full=True)
            else:
                for name in names:
                    self._refresh(name)
            return
        try:
            mtime = os.fstat(self._handles.dir_fd).st_mtime_ns
        except OSError as exc:
            raise _io_error("cannot stat", self.path, exc) from exc
        if not self._dir_verified or mtime != self._dir_mtime:
            self._rescan(full=False)

    def _finish(self) -> None:
        """End of a transaction: account for events we did not cause, record the directory mtime."""
        watch = self._handles.watch
        if watch is not None:
            try:
                names, rebuild = watch.drain()  # type: ignore[attr-defined]
            except OSError:
                names, rebuild = set(), True
            if rebuild:
                self._stale = True
            for name in names - self._touched:
                self._refresh(name)
        else:
            try:
                mtime = os.fstat(self._handles.dir_fd).st_mtime_ns
            except OSError:
                self._dir_verified = False
                return
            now = time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)
            if mtime >= now and len(self._signatures) > _WAIT_FOR_TICK_ABOVE:
                # Nobody else writes while we hold the lock, so waiting here for the clock to tick makes the
                # mtime trustworthy; for a big directory one tick (a few ms at most) is cheaper than the
                # rescan the next operation would otherwise need.
                deadline = time.monotonic() + 0.05
                while now <= mtime and time.monotonic() < deadline:
                    time.sleep(0.0005)
                    now = time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)
                try:
                    mtime = os.fstat(self._handles.dir_fd).st_mtime_ns
                except OSError:
                    self._dir_verified = False
                    return
            self._dir_mtime = mtime
            # A change later in the same clock tick would keep this mtime: trust it only if the tick has passed.
            self._dir_verified = mtime < now
            self._clock_mark = now
        self._touched.clear()

    def _rescan(self, *, full: bool) -> None:
        if full:
            self._index.clear()
            self._signatures.clear()
        seen: set[str] = set()
        # Files changed since the last look have a ctime at or after this mark, even when a delete and
        # re-create reused the inode number and kept the size (the lstat signature alone would miss that).
        mark = self._clock_mark
        self._clock_mark = time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)
        try:
            with os.scandir(self._handles.dir_fd) as entries:
                for entry in entries:
                    name = entry.name
                    ip = ip_from_file_name(name)
                    if ip is None:
                        continue
                    seen.add(name)
                    if full:
                        self._refresh(name, ip)
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        self._refresh(name, ip)
                        continue
                    if (st.st_ctime_ns >= mark
                            or self._signatures.get(name) != (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)):
                        self._refresh(name, ip)
        except OSError as exc:
            raise _io_error("cannot list", self.path, exc) from exc
        for name in [n for n in self._signatures if n not in seen]:
            self._refresh(name)
        self._stale = False
        self._dir_verified = False

    def _refresh(self, name: str, ip: IPAddress | None = None) -> None:
        """Re-read one directory entry into the index."""
        if ip is None:
            ip = ip_from_file_name(name)
            if ip is None:
                return
        # One open (never following a link, never blocking on a FIFO) then fstat: the entry cannot change
        # between the check and the read.
        try:
            fd = os.open(name, _NOFOLLOW_READ, dir_fd=self._handles.dir_fd)
        except FileNotFoundError:
            self._index.discard(ip)
            self._signatures.pop(name, None)
            return
        except OSError:
            # A symlink (ELOOP), a socket, no permission...: keep the address occupied, touch nothing.
            self._index.put(ip, None)
            self._note_signature(name)
            return
        try:
            st = os.fstat(fd)
            self._signatures[name] = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
            if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_CONTENT:
                self._index.put(ip, None)
                return
            data = os.read(fd, _MAX_CONTENT + 1)
        except OSError:
            self._index.put(ip, None)
            return
        finally:
            os.close(fd)
        try:
            owner = owner_from_text(data.decode("utf-8"))
        except UnicodeDecodeError:
            owner = None
        self._index.put(ip, owner)

    # ----------------------------------------------------------------- writing

    def _write_temp(self, data: bytes) -> str:
        name = f"{_TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}{_TEMP_SUFFIX}"
        dir_fd = self._handles.dir_fd
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _FILE_MODE,
                     dir_fd=dir_fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.durable:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dir_fd)
            raise
        os.close(fd)
        return name

    def _sync_dir(self) -> None:
        if self.durable:
            os.fsync(self._handles.dir_fd)

    def _write_last_reserved(self, range_id: str, ip: IPAddress) -> None:
        dir_fd = self._handles.dir_fd
        name = LAST_RESERVED_PREFIX + range_id
        temp = self._write_temp(ip_text(ip).encode())
        try:
            if not self.durable:
                # Renaming over an existing file makes ext4 flush the new file's data first (auto_da_alloc),
                # which costs several times the rest of the ADD. Without that replacement there is a moment
                # with no cursor file; a crash there only restarts round-robin at the range start, as on the
                # very first ADD. Durable mode fsyncs anyway and keeps the atomic replacement.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dir_fd)
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dir_fd)
            raise
        self._sync_dir()

    @staticmethod
    def _check_range_id(range_id: str) -> None:
        if not range_id or "/" in range_id or "\0" in range_id or range_id in (".", ".."):
            raise InvalidConfigError(f"invalid range set id {range_id!r}", key="range_id", value=range_id)

    # ----------------------------------------------------------------- the port

    def reserve(self, ip: IPAddress, owner: Owner, range_id: str) -> bool:
        """Create-if-absent the file for ``ip``; update ``last_reserved_ip.<range_id>``. Not idempotent."""
        self._check_range_id(range_id)
        ip = canonical_ip(ip)
        name = ip_text(ip)
        with self.transaction():
            if ip in self._index:
                return False
            dir_fd = self._handles.dir_fd
            try:
                temp = self._write_temp(owner.text().encode())
            except OSError as exc:
                raise _io_error("cannot write a reservation in", self.path, exc) from exc
            try:
                os.link(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            except FileExistsError:
                # Taken by a writer our index had not heard of yet: learn it, report "not free".
                self._refresh(name)
                if ip not in self._index:
                    self._index.put(ip, None)
                return False
            except OSError as exc:
                raise _io_error("cannot create", os.path.join(self.path, name), exc) from exc
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=dir_fd)
            self._touched.add(name)
            self._index.put(ip, owner)
            self._note_signature(name)
            try:
                self._sync_dir()
                self._write_last_reserved(range_id, ip)
            except OSError as exc:
                # Keep the pair consistent: no reservation that the caller believes failed.
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=dir_fd)
                self._index.discard(ip)
                self._signatures.pop(name, None)
                raise _io_error("cannot record the last reserved address in", self.path, exc) from exc
            return True

    def _note_signature(self, name: str) -> None:
        try:
            st = os.stat(name, dir_fd=self._handles.dir_fd, follow_symlinks=False)
        except OSError:
            return
        self._signatures[name] = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)

    def _unlink(self, ip: IPAddress) -> None:
        name = ip_text(ip)
        try:
            os.unlink(name, dir_fd=self._handles.dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _io_error("cannot remove", os.path.join(self.path, name), exc) from exc
        self._touched.add(name)
        self._index.discard(ip)
        self._signatures.pop(name, None)

    def release(self, ip: IPAddress, owner: Owner) -> bool:
        """Remove ``ip``'s file if ``owner`` holds it. Idempotent."""
        ip = canonical_ip(ip)
        with self.transaction():
            current = self._index.get(ip)
            if current is None or current.owner != owner:
                return False
            self._unlink(ip)
            self._sync_dir()
            return True

    def release_owner(self, owner: Owner) -> Sequence[IPAddress]:
        """Remove every file of ``owner`` (legacy fallback as in the reference). Idempotent."""
        with self.transaction():
            released = release_owner_in_index(self._index, owner)
            for ip in released:
                self._unlink(ip)
            if released:
                self._sync_dir()
            return released

    def find_owner(self, owner: Owner) -> Sequence[IPAddress]:
        """Addresses held by ``owner`` or its container's legacy form. Read-only."""
        with self.transaction():
            return find_owner_in_index(self._index, owner)

    def reservation(self, ip: IPAddress) -> Reservation | None:
        """The reservation of ``ip`` or None. Read-only."""
        with self.transaction():
            return self._index.get(canonical_ip(ip))

    def first_free(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        """Lowest address in ``[low, high]`` without a file. Read-only."""
        with self.transaction():
            return self._index.first_free(low, high)

    def last_reserved(self, range_id: str) -> IPAddress | None:
        """Parse ``last_reserved_ip.<range_id>`` exactly as the reference (no trimming). Read-only."""
        self._check_range_id(range_id)
        with self.transaction():
            try:
                fd = os.open(LAST_RESERVED_PREFIX + range_id, _NOFOLLOW_READ, dir_fd=self._handles.dir_fd)
            except OSError:
                return None
            try:
                data = os.read(fd, 64)
            except OSError:
                return None
            finally:
                os.close(fd)
            try:
                return parse_ip(data.decode("ascii"))
            except UnicodeDecodeError:
                return None

    def reservations(self) -> Iterator[Reservation]:
        """Snapshot of all reservations. Read-only."""
        with self.transaction():
            return self._index.items()

    def sweep(self) -> int:
        """Remove temp files left by crashed writers (dead pid, or older than ``STALE_TEMP_SECONDS``).

        Idempotent. Returns the number removed.
        """
        removed = 0
        with self.transaction():
            dir_fd = self._handles.dir_fd
            now = time.time()
            try:
                names = os.listdir(dir_fd)
            except OSError as exc:
                raise _io_error("cannot list", self.path, exc) from exc
            for name in names:
                if not (name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX)):
                    continue
                pid_text = name[len(_TEMP_PREFIX):].split("-", 1)[0]
                try:
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError:
                    continue
                stale = now - st.st_mtime > STALE_TEMP_SECONDS
                if not stale and pid_text.isdigit() and int(pid_text) != os.getpid():
                    stale = not _pid_alive(int(pid_text))
                if stale:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(name, dir_fd=dir_fd)
                    removed += 1
            if removed:
                self._sync_dir()
        return removed

    def close(self) -> None:
        """Close the descriptors (the lock is released with them). Idempotent."""
        with self._thread_lock:
            self._handles.close()

    def __enter__(self) -> FileStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        with self.transaction():
            return len(self._index)

    def __repr__(self) -> str:
        return f"FileStore({self.data_dir!r}, {self.network!r})"

    @property
    def watching(self) -> bool:
        """Whether changes by others are followed with inotify (else by directory mtime)."""
        return self._handles.watch is not None


def network_dir(data_dir: str | os.PathLike[str], network: str) -> Path:
    """The directory a network's reservations live in (validating the name)."""
    validate_network_name(network)
    return Path(os.fspath(data_dir) or DEFAULT_DATA_DIR) / network
