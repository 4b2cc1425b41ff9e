"""The file store's core on integer keys and owner key texts: everything but the store port's types.

:class:`FileStoreCore` is the whole file store described in
:mod:`cnicore.stores._file` (layout, locking, atomic writes, the index kept exact
while others write, the persisted index) working on index keys (the IPv4 value,
or the IPv6 value with :data:`~cnicore.stores._keyindex.V6_TAG` set) and owner
key texts (``"<containerID> <ifname>"``, or ``"<containerID>"`` for the legacy
form). :class:`~cnicore.stores.FileStore` adds the store port on top, as thin
conversions from addresses and owners.

Import cost. An executed ``host-local`` opens a store, does one operation and
exits, so this module and everything it imports use the standard library's
cheap modules only: no netaddr, attrs, ``typing`` (annotations are for type
checkers), ``pathlib``, ``socket``, ``secrets``, ``threading`` or ``weakref``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from _thread import RLock, get_ident
from _weakref import ref as _weakref

from cnicore._atomicfile import STALE_TEMP_SECONDS, temp_abandoned, temp_writer_pid
from cnicore._errors import InvalidConfigError, IOFailureError, TryAgainLaterError
from cnicore._readfile import open_regular, read_open, untrusted_reason
from cnicore.spec._goint import ip_value_text, parse_ip_value
from cnicore.spec._validate import validate_network_name
from cnicore.stores._indexfile import (
    DirState,
    LoadedIndex,
    Signatures,
    Tip,
    encode_record,
    encode_snapshot,
    follow,
    parse_index,
)
from cnicore.stores._inotify import IN_CREATE, IN_DELETE, IN_MODIFY
from cnicore.stores._keyindex import (
    LINE_BREAK,
    MAX_OWNER_BYTES,
    V6_TAG,
    KeyIndex,
    find_owner_keys,
    owner_key_from_text,
    release_owner_keys,
    value_key,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from typing import Self

    # imported when first watching: an executed plugin never does
    from cnicore.stores._inotify import DirectoryWatch

__all__ = ["DEFAULT_DATA_DIR", "INDEX_DIR_NAME", "LAST_RESERVED_PREFIX", "LOCK_NAME", "STALE_TEMP_SECONDS",
           "FileStoreCore", "index_file_path"]

#: The reference's default ``ipam.dataDir``.
DEFAULT_DATA_DIR = "/var/lib/cni/networks"
#: Name of the lock file inside the network directory.
LOCK_NAME = "lock"
#: Prefix of the per-range-set round-robin cursor files.
LAST_RESERVED_PREFIX = "last_reserved_ip."
#: Directory beside ``dataDir`` (in its parent) holding the persisted indexes, one subdirectory per data directory.
INDEX_DIR_NAME = ".cnicore"

_TEMP_PREFIX = ".cnicore-"
_TEMP_SUFFIX = ".tmp"
_INDEX_SUFFIX = ".index"
_FILE_MODE = 0o600
# A persisted index larger than this is no index of ours (one of a million reservations is some 40 MB).
_MAX_INDEX_BYTES = 512 << 20
_DIR_MODE = 0o755
_INDEX_DIR_MODE = 0o700
_CLOCK_REALTIME_COARSE = getattr(time, "CLOCK_REALTIME_COARSE", 5)
_NOFOLLOW_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_PROC_SELF_FD = "/proc/self/fd"
_LOCK_NAME_BYTES = LOCK_NAME.encode()
# Errors of open(O_TMPFILE) that mean "not here" (file system or kernel without it), not "failed".
_NO_TMPFILE = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOTSUP})
# Outermost transactions a store runs before it is in steady use (follows the directory by its sealed state
# alone, or sets up inotify): an executed plugin (open + one operation) never pays for either; a long-lived
# store does from its third operation on.
_WATCH_AFTER = 2
# A store in steady use on a directory of at most this many reservations keeps no inotify watch when its file
# system gives every change made after a stat a later ctime than that stat saw (probed once per file system):
# one fstat then tells whether anyone changed an entry, and a lookup by owner compares the few entries (one
# lstat each). Every event a watched directory's writers make costs each watcher; above this size the watch is
# the cheaper way to stay exact.
_STATE_ONLY_UP_TO = 32
# Following by state: how often (seconds) a store whose directory is in its sealed state checks that the path
# still names it (a renamed ancestor is the one change that leaves the directory's state as it was).
_PATH_CHECK_EVERY = 1.0
# st_dev -> whether that file system stamps every change after a stat at fine grain (see _stamps_every_change)
_fine_ctime_by_dev: dict[int, bool] = {}
# Without a settable mtime: how long to wait, holding the lock, for the clock to tick so that a state is trusted;
# and the size below which a store that does not persist its index rescans (lstat only) rather than waits.
_TICK_WAIT = 0.05
_WAIT_FOR_TICK_ABOVE = 256
# The log of the persisted index is folded into a new snapshot once replaying it (per record, and per changed
# entry) would cost a good part of loading the snapshot; writing one costs about as much as loading it.
_RECORDS_BASE = 64
_RECORDS_PER_RESERVATION = 1 / 64
_CHANGES_BASE = 256
_CHANGES_PER_RESERVATION = 1 / 16
# A watching store (in steady use) saves its index at most this often (seconds), and when it is closed: until
# then, a store opened elsewhere checks the directory entry by entry instead of trusting the saved copy.
_SAVE_EVERY = 0.25
# After failing to save its index, a store works without saving for this long (seconds), then tries again.
_SAVE_RETRY_AFTER = 30.0

# The longest sleep between two tries of a busy lock (seconds): the lock is taken without blocking, so that
# waiting can time out; a waiter that sleeps long leaves a freed lock idle. (Waiting in a blocking flock in a
# helper thread, which can time out too, measured slower here with 8 processes on 2 cores: a thread per wait.)
_MAX_LOCK_WAIT_STEP = 0.005

_fork_generation = [0]


def _forked() -> None:
    _fork_generation[0] += 1


os.register_at_fork(after_in_child=_forked)

# Stores collected without being closed have their descriptors closed then (what weakref.finalize does, without
# importing weakref): each weak reference stays here until its callback runs.
_finalizers: set[_weakref[FileStoreCore]] = set()


def _close_when_collected(store: FileStoreCore, handles: _Handles) -> None:
    def collected(reference: _weakref[FileStoreCore]) -> None:
        _finalizers.discard(reference)
        handles.close()

    _finalizers.add(_weakref(store, collected))


def _index_location(data_dir: str | os.PathLike[str]) -> tuple[str, str] | None:
    """``(<dataDir>/../.cnicore, <basename of dataDir>)``: where the indexes of ``data_dir`` live, or None."""
    absolute = os.path.abspath(os.fspath(data_dir) or DEFAULT_DATA_DIR)
    parent, base = os.path.split(absolute)
    if not base:
        return None
    return os.path.join(parent, INDEX_DIR_NAME), base


def index_file_path(data_dir: str | os.PathLike[str], network: str) -> str | None:
    """Where a store keeps its persisted index: ``<dataDir>/../.cnicore/<basename of dataDir>/<network>.index``.

    None when ``data_dir`` has no parent to hold it (the root directory).
    """
    validate_network_name(network)
    location = _index_location(data_dir)
    if location is None:
        return None
    return os.path.join(location[0], location[1], network + _INDEX_SUFFIX)


def _io_error(action: str, path: str, exc: OSError) -> IOFailureError:
    return IOFailureError(f"{action} {path}: {exc.strerror or exc}")


def _state(st: os.stat_result) -> DirState:
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns


def _stamps_every_change(dir_fd: int) -> bool:
    """Whether the directory's file system gives each change of it made after a stat a later ctime than the stat
    saw, however soon it comes: Linux's multigrain timestamps (6.13 and later; ext4, xfs and btrfs then, not tmpfs).

    Probed with the changes stores make (create, link, rename, unlink) of temporary names, each followed by an
    ``fstat``: every ctime must be later than the one before. A clock that stamps changes at its coarse tick
    gives the same ctime to changes microseconds apart. Called with the lock held (others see only the state
    change); a crash midway leaves temporary files that the sweep removes.
    """
    stem = f"{_TEMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}-"
    first, second, third = (stem + tag + _TEMP_SUFFIX for tag in "abc")
    times = [os.fstat(dir_fd).st_ctime_ns]
    try:
        os.close(os.open(first, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _FILE_MODE,
                         dir_fd=dir_fd))
        times.append(os.fstat(dir_fd).st_ctime_ns)
        os.link(first, second, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        times.append(os.fstat(dir_fd).st_ctime_ns)
        os.rename(second, third, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        times.append(os.fstat(dir_fd).st_ctime_ns)
        os.unlink(first, dir_fd=dir_fd)
        times.append(os.fstat(dir_fd).st_ctime_ns)
        os.unlink(third, dir_fd=dir_fd)
        times.append(os.fstat(dir_fd).st_ctime_ns)
    except OSError:
        for name in (first, second, third):
            _unlink_quietly(name, dir_fd)
        return False
    return all(times[i] < times[i + 1] for i in range(len(times) - 1))


def stamps_every_change_under(directory: str | os.PathLike[str]) -> bool:
    """:func:`_stamps_every_change` for the file system holding ``directory``, probed in a subdirectory of its own
    (made, then removed)."""
    probe = os.path.join(directory, f"{_TEMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}-probe")
    os.mkdir(probe, 0o700)
    try:
        fd = os.open(probe, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            return _stamps_every_change(fd)
        finally:
            os.close(fd)
    finally:
        os.rmdir(probe)


def _key_from_name(name: str) -> int | None:
    """The index key of a reservation file name (canonical spelling only), or None.

    Agrees with :func:`~cnicore.stores.ip_from_file_name` on every text.
    """
    if not name or name[0] not in "0123456789abcdef:":
        return None
    if ":" in name:
        parsed = parse_ip_value(name)
        # Only the spelling Go prints names a reservation (a mapped address prints as IPv4: never a file name).
        if parsed is None or ip_value_text(*parsed) != name:
            return None
        return value_key(*parsed)
    try:
        # inet_pton takes exactly the canonical dotted quad: four decimal octets, no leading zeros, nothing else.
        return int.from_bytes(_inet_pton4(name), "big")
    except (OSError, ValueError):
        return None


_PTON: list[tuple[Callable[[int, str], bytes], int]] = []


def _inet_pton4(name: str) -> bytes:
    """``inet_pton(AF_INET, name)``; the socket module is loaded on the first IPv4 name (an exec'd plugin whose
    store opens from its persisted index never reads one)."""
    if not _PTON:
        try:
            from _socket import AF_INET, inet_pton
        except ImportError:  # pragma: no cover - an interpreter built without _socket
            from socket import AF_INET, inet_pton
        _PTON.append((inet_pton, AF_INET))
    pton, family = _PTON[0]
    return pton(family, name)


def _name(key: int) -> str:
    """The reservation file name of an index key (Go's ``net.IP.String()`` of its address)."""
    if key < 1 << 32:
        return f"{key >> 24}.{(key >> 16) & 255}.{(key >> 8) & 255}.{key & 255}"
    return ip_value_text(6, key ^ V6_TAG)


def _canonical_key(key: int) -> int:
    """``key`` as the store names it: an IPv4-mapped IPv6 key becomes the IPv4 one (Go's ``To4()`` first).

    Raises ValueError for an integer that is no index key.
    """
    if 0 <= key < 1 << 32:
        return key
    if not V6_TAG <= key < V6_TAG << 1:
        raise ValueError(f"not an address key: {key!r}")
    value = key ^ V6_TAG
    return value & 0xFFFFFFFF if value >> 32 == 0xFFFF else key


def _owner_content(owner_text: str) -> bytes:
    """The reservation file content of an owner key text: ``id\\r\\nifname`` (no newline), or ``id`` for legacy.

    Raises ValueError for a text that does not read back as itself (empty parts, whitespace, more parts, longer
    than ``MAX_OWNER_BYTES``).
    """
    container_id, sep, ifname = owner_text.partition(" ")
    content = container_id + LINE_BREAK + ifname if sep else container_id
    if owner_key_from_text(content) != owner_text:
        raise ValueError(f"invalid owner for a reservation: {owner_text!r}")
    data = content.encode()
    if len(data) > MAX_OWNER_BYTES:
        raise ValueError(f"owner too long for a reservation ({len(data)} bytes, at most {MAX_OWNER_BYTES})")
    return data


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (``os.write`` may write less than asked)."""
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view):]


def _is_temp(name: str) -> bool:
    return name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX)


# The helpers below spell out try/except where contextlib.suppress would do: contextlib is not imported here.


def _unlink_if_present(name: str, dir_fd: int) -> None:
    """``unlink`` where a missing file is no error."""
    try:  # noqa: SIM105
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def _unlink_quietly(name: str, dir_fd: int) -> None:
    """``unlink`` on a best-effort path (cleaning up after a failure): no error at all."""
    try:  # noqa: SIM105
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _mkdir_if_absent(name: str, mode: int, dir_fd: int | None = None) -> None:
    """``mkdir`` where an existing entry is no error."""
    try:  # noqa: SIM105
        os.mkdir(name, mode, dir_fd=dir_fd)
    except FileExistsError:
        pass


def _close_quietly(fd: int) -> None:
    """``close`` where a failure is no error (the descriptor is gone either way)."""
    try:  # noqa: SIM105
        os.close(fd)
    except OSError:
        pass


class _Handles:
    """The descriptors a store holds, closable from a finalizer without the store."""

    __slots__ = ("cursor_fds", "dir_fd", "index_dir_fd", "index_fd", "lock_fd", "watch")

    def __init__(self) -> None:
        self.dir_fd = -1
        self.lock_fd = -1
        self.index_dir_fd = -1
        self.index_fd = -1
        self.watch: DirectoryWatch | None = None
        # range id -> descriptor of its cursor file, kept open between transactions while the watch would
        # report the file being replaced or written by anyone else
        self.cursor_fds: dict[str, int] = {}

    def close_cursor(self, range_id: str | None = None) -> None:
        """Close the kept descriptor of one cursor file (all of them when ``range_id`` is None)."""
        if range_id is None:
            fds = list(self.cursor_fds.values())
            self.cursor_fds.clear()
        else:
            fd = self.cursor_fds.pop(range_id, -1)
            fds = [fd] if fd >= 0 else []
        for fd in fds:
            _close_quietly(fd)

    def close_index(self) -> None:
        fd, self.index_fd = self.index_fd, -1
        if fd >= 0:
            _close_quietly(fd)

    def close(self) -> None:
        watch, self.watch = self.watch, None
        if watch is not None:
            watch.close()
        self.close_cursor()
        for attr in ("index_fd", "index_dir_fd", "lock_fd", "dir_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                setattr(self, attr, -1)
                _close_quietly(fd)


class _Transaction:
    """The store's re-entrant exclusive section (made per use: a store holding one would be a reference cycle)."""

    __slots__ = ("_store",)

    def __init__(self, store: FileStoreCore) -> None:
        self._store = store

    def __enter__(self) -> None:
        self._store._begin()

    def __exit__(self, *exc: object) -> None:
        self._store._end()


class _IndexFile:
    """Where the persisted index stands: the file's inode and size, and where its log ends."""

    __slots__ = ("ino", "size", "tip")

    def __init__(self, ino: int, size: int, tip: Tip) -> None:
        self.ino = ino
        self.size = size
        self.tip = tip


class FileStoreCore:
    """Reservations as files in ``<data_dir>/<network>``, interoperable with the reference plugin, on keys.

    The file store (:class:`~cnicore.stores.FileStore`) without the store port:
    addresses are index keys (``ip_key``: the IPv4 value, or the IPv6 value with
    ``V6_TAG`` set; an IPv4-mapped IPv6 key stands for its IPv4 address) and
    owners are key texts (``"<containerID> <ifname>"``, or ``"<containerID>"`` for
    the legacy form). Each public method runs in the store's transaction and has
    the semantics of the port method it backs.

    Arguments, defaults and errors are :class:`~cnicore.stores.FileStore`'s (the
    persisted index lives at :func:`index_file_path`).
    """

    #: The index built and loaded (a subclass may ask for a richer :class:`~cnicore.stores._keyindex.KeyIndex`).
    _index_class: type[KeyIndex] = KeyIndex

    def __init__(self, data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR, network: str = "", *,
                 durable: bool = False, lock_timeout: float | None = 60.0, watch: bool | None = None,
                 persist_index: bool = True) -> None:
        validate_network_name(network)
        self.data_dir = os.fspath(data_dir) or DEFAULT_DATA_DIR
        self.network = network
        self.path = os.path.join(self.data_dir, network)
        self.durable = durable
        self.lock_timeout = lock_timeout
        self._want_watch = watch is not False
        self._may_follow_state = watch is None
        self._watch_failed = False
        self._persist = persist_index
        self._save_failed_at = -_SAVE_RETRY_AFTER  # when saving the index last failed
        self._index_name = network + _INDEX_SUFFIX
        self._index_location = _index_location(self.data_dir)
        self._thread_lock = RLock()
        self._depth = 0
        self._owner = -1  # the thread inside the transaction
        self._txns = 0
        self._rescanned = -1  # the transaction (by number) in which the whole directory was last compared
        self._index = self._index_class()
        self._sigs = Signatures()
        # Keys changed since the persisted index last caught up with this store; whether the directory changed
        # (entries, by anyone) since its state was last sealed; whether the file needs a whole new snapshot.
        self._dirty: set[int] = set()
        self._unsealed = False
        self._need_snapshot = True
        self._flush = False
        self._saved_at = -_SAVE_EVERY
        self._file: _IndexFile | None = None
        self._touched: set[bytes] = set()  # names this transaction changed (its own inotify events)
        self._drained: tuple[dict[bytes, bool], bool] | None = None  # the watch's events read while taking the lock
        self._wrote = False  # this transaction added or removed directory entries
        self._made = False  # this transaction created or wrote a file (not only removed some)
        # The inotify events this transaction caused, in order, while it knows them all (None once it does not):
        # announced to the watch at its end, so that the next look at the queue leaves them out.
        self._own_events: list[tuple[int, bytes]] | None = None
        # range id -> (address key, file size, whether this store wrote the file and nobody touched it since)
        self._cursors: dict[str, tuple[int | None, int, bool]] = {}
        # Contents loaded from the persisted index are read again before they are acted on.
        self._all_verified = True
        self._verified: set[int] = set()
        self._stale = True
        self._dir_state: DirState | None = None
        self._tau = 0
        # In steady use without a watch (see _STATE_ONLY_UP_TO): the sealed state alone says whether anyone
        # changed an entry; _reseal when it must be taken again at the end of the transaction; _looked the
        # state read while checking the lock file (taken over by _sync).
        self._state_only = False
        self._reseal = False
        self._looked: DirState | None = None
        self._path_checked_at = -_PATH_CHECK_EVERY
        self._can_utime = True
        self._tmpfile: bool | None = None if _O_TMPFILE else False
        self._dir_ident = (-1, -1)
        self._lock_ident = (-1, -1)
        self._generation = -1
        self._handles = _Handles()
        _close_when_collected(self, self._handles)
        self._open()
        with self.transaction():
            pass

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
            # Never through a symlink, never waiting on a FIFO someone put there (it would hang every ADD).
            handles.lock_fd, held_lock = open_regular(LOCK_NAME, dir_fd=handles.dir_fd, follow_symlinks=False,
                                                      create_mode=_FILE_MODE)
            held_dir = os.fstat(handles.dir_fd)
        except OSError as exc:
            handles.close()
            raise _io_error("cannot open lock file", os.path.join(self.path, LOCK_NAME), exc) from exc
        self._dir_ident = (held_dir.st_dev, held_dir.st_ino)
        self._lock_ident = (held_lock.st_dev, held_lock.st_ino)
        self._generation = _fork_generation[0]
        self._stale = True

    def _same_files(self) -> bool:
        """Whether the path still names the directory and lock file we hold open.

        A watching store drains its watch here (the events wait in ``_drained`` for :meth:`_sync`): when no
        event names the lock file and none says the directory itself went, the lock file in the directory is
        still the one we hold, and only the path needs checking (a renamed ancestor leaves no event).
        """
        watch = self._handles.watch
        checked_lock = False
        if watch is not None:
            names, rebuild = watch.drain()
            if self._drained is not None:  # (a retry after waiting for the lock: keep the earlier events)
                earlier = self._drained[0]
                earlier.update(names)  # (a later event of a name says more than an earlier one)
                names = earlier
                rebuild = rebuild or self._drained[1]
            self._drained = (names, rebuild)
            checked_lock = not rebuild and _LOCK_NAME_BYTES not in names
        try:
            if self._state_only:
                looked = self._looked = _state(os.fstat(self._handles.dir_fd))
                if looked == self._dir_state:
                    # No entry changed since the state was sealed, so the lock file is still the one held; nor
                    # was the directory itself renamed or removed (either stamps it a new ctime). Only a renamed
                    # ancestor leaves no trace: the path is checked at most every _PATH_CHECK_EVERY seconds.
                    now = time.monotonic()
                    if now - self._path_checked_at < _PATH_CHECK_EVERY:
                        return True
                    checked_lock = True
                    self._path_checked_at = now
            on_disk = os.stat(self.path, follow_symlinks=False)
            if (on_disk.st_dev, on_disk.st_ino) != self._dir_ident:
                return False
            if checked_lock:
                return True
            lock = os.stat(LOCK_NAME, dir_fd=self._handles.dir_fd, follow_symlinks=False)
            return (lock.st_dev, lock.st_ino) == self._lock_ident
        except OSError:
            return False

    def _acquire(self) -> None:
        if self._generation != _fork_generation[0] or self._handles.lock_fd < 0:
            self._open()
        deadline = -1.0  # set when the lock is first found busy: a free lock costs no clock reading
        delay = 0.0005
        while True:
            try:
                fcntl.flock(self._handles.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if deadline < 0:
                    deadline = float("inf") if self.lock_timeout is None else time.monotonic() + self.lock_timeout
                if time.monotonic() >= deadline:
                    raise self._timed_out() from None
                self._follow_while_waiting()
                time.sleep(delay)
                delay = min(delay * 2, _MAX_LOCK_WAIT_STEP)
                continue
            except OSError as exc:
                raise _io_error("cannot lock", os.path.join(self.path, LOCK_NAME), exc) from exc
            if self._same_files():
                return
            # Someone removed or replaced the directory or the lock file: what we locked excludes nobody.
            fcntl.flock(self._handles.lock_fd, fcntl.LOCK_UN)
            self._open()

    def _timed_out(self) -> TryAgainLaterError:
        return TryAgainLaterError(f"timed out after {self.lock_timeout}s waiting for the lock on "
                                  f"{os.path.join(self.path, LOCK_NAME)}")

    def _follow_while_waiting(self) -> None:
        """While another process holds the lock: take in the changes already reported, outside the lock.

        What others changed is learnt now instead of inside this store's next transaction, which then holds
        the lock that much shorter (with many processes on one network, the lock is what they queue for).
        Sound without the lock: each change was reported by its own event, files are created whole, and any
        later change of a name is a later event, taken in later (under the lock at the latest). A lost event
        is kept for the transaction, which starts again from a full scan. The waiter sleeps afterwards all the
        same: trying the lock again at once, with more processes than cores, takes the holder's processor.
        """
        watch = self._handles.watch
        if watch is None or self._stale:
            return
        names, rebuild = watch.drain()
        if rebuild or self._drained is not None:
            if self._drained is not None:
                earlier = self._drained[0]
                earlier.update(names)
                names = earlier
                rebuild = rebuild or self._drained[1]
            self._drained = (names, rebuild)
            return
        changed = self._changed_name
        for name, gone in names.items():
            changed(name, gone)

    def _release_lock(self) -> None:
        try:  # noqa: SIM105 - no contextlib here
            fcntl.flock(self._handles.lock_fd, fcntl.LOCK_UN)
        except OSError:
            pass

    def transaction(self) -> AbstractContextManager[None]:
        """Hold the store's lock (thread lock + flock on ``lock``). Re-entrant in one thread."""
        return _Transaction(self)

    def _begin(self) -> None:
        """Enter the transaction (the operations call this and :meth:`_end` directly: no context object)."""
        if self._depth and self._owner == get_ident() and self._generation == _fork_generation[0]:
            self._depth += 1  # nested in this thread's own transaction
            return
        if self._generation != _fork_generation[0]:
            # A forked child inherits the parent's thread-lock state and transaction depth (and shares its
            # lock's open file description): start afresh so that it really takes the lock.
            self._thread_lock = RLock()
            self._depth = 0
        self._thread_lock.acquire()
        if self._depth == 0:
            try:
                self._acquire()
                try:
                    self._txns += 1
                    self._sync()
                except BaseException:
                    self._release_lock()
                    raise
            except BaseException:
                self._thread_lock.release()
                raise
            self._owner = get_ident()
        self._depth += 1

    def _end(self) -> None:
        """Leave the transaction entered by :meth:`_begin`."""
        if self._depth > 1:
            self._depth -= 1
            return
        try:
            self._depth -= 1
            if self._depth == 0:
                self._owner = -1
                try:
                    if self._state_only:
                        self._finish_state_only()
                    else:
                        self._finish()
                finally:
                    self._release_lock()
        finally:
            self._thread_lock.release()

    # ----------------------------------------------------------------- keeping the index exact

    def _sync(self) -> None:
        """Bring the index up to date with the directory (called with the lock held)."""
        looked, self._looked = self._looked, None
        if self._state_only and looked == self._dir_state and looked is not None and not self._stale:
            # Following by state, and nobody changed an entry since: the index is exact, and so is what this
            # store knows of the cursor files. Both plugins rewrite a cursor (in place) only in the lock hold
            # of a successful reserve, whose new reservation file changed the state.
            self._wrote = self._made = False
            self._own_events = None  # (no watch to tell)
            return
        self._touched.clear()
        self._wrote = self._made = False
        self._own_events = []  # (the queue was just drained, with the lock held)
        watch = self._handles.watch
        if self._stale:
            self._drained = None
            self._load()
            self._reseal = True
        elif watch is not None:
            drained, self._drained = self._drained, None
            names, rebuild = watch.drain() if drained is None else drained
            if rebuild:
                self._rescan(full=True)
                self._unsealed = True
            else:
                changed = self._changed_name
                for name, gone in names.items():
                    changed(name, gone)
            return
        else:
            self._cursors.clear()  # rewritten in place by the reference: no state change tells
            state = looked
            if state is None:
                try:
                    state = _state(os.fstat(self._handles.dir_fd))
                except OSError as exc:
                    raise _io_error("cannot stat", self.path, exc) from exc
            if state != self._dir_state:
                if self._state_only:
                    # The cursor file kept open may have been replaced or removed since (no event says so).
                    self._handles.close_cursor()
                    self._reseal = True
                self._rescan(full=False)
                self._unsealed = True
        if (self._want_watch and not self._watch_failed and self._txns > _WATCH_AFTER
                and self._handles.watch is None):
            if self._may_follow_state and len(self._index) <= _STATE_ONLY_UP_TO and self._fine_ctime():
                if not self._state_only:
                    self._state_only = self._reseal = True
            else:
                self._state_only = False
                self._start_watch()

    def _fine_ctime(self) -> bool:
        """Whether this directory's file system stamps every change after a stat at fine grain (probed once)."""
        dev = self._dir_ident[0]
        known = _fine_ctime_by_dev.get(dev)
        if known is None:
            try:
                known = _stamps_every_change(self._handles.dir_fd)
            except OSError:
                known = False
            _fine_ctime_by_dev[dev] = known
            # The probe changed the directory (entering steady use seals the state it left; this saves it).
            self._own_events = None
            self._wrote = self._unsealed = True
        return known

    def _start_watch(self) -> None:
        # Called with the lock held: from here on the queue holds every change. What the directory's state
        # could not show before (a file rewritten in place) is compared once now, entry by entry (lstat only).
        try:
            from cnicore.stores._inotify import DirectoryWatch

            self._handles.watch = DirectoryWatch(f"{_PROC_SELF_FD}/{self._handles.dir_fd}")
        except OSError:
            self._watch_failed = True  # inotify unavailable or out of instances: directory states it is
            return
        if self._rescanned != self._txns:
            self._rescan(full=False)

    def _load(self) -> None:
        """First look at a directory: the persisted index if it matches, else a (partial) scan."""
        watch = self._handles.watch
        if watch is not None:
            watch.drain()
        self._forget_cursors()
        self._dirty.clear()
        self._unsealed = False
        self._verified = set()
        self._file = None
        self._need_snapshot = True
        try:
            now = _state(os.fstat(self._handles.dir_fd))
        except OSError as exc:
            raise _io_error("cannot stat", self.path, exc) from exc
        loaded = self._read_index_file() if self._persist else None
        if loaded is None:
            self._index = self._index_class()
            self._sigs = Signatures()
            self._rescan(full=True)
            self._unsealed = True
            self._dir_state = None
        else:
            self._index, self._sigs, self._tau = loaded.index, loaded.sigs, loaded.tip.tau
            self._all_verified = False
            self._need_snapshot = False
            self._dir_state = loaded.tip.state
            if loaded.tip.state != now:
                self._rescan(full=False)
                self._unsealed = True
                self._dir_state = None
        self._stale = False

    def _read_index_file(self) -> LoadedIndex | None:
        index_dir = self._index_dir(create=False)
        if index_dir < 0:
            return None
        try:
            fd, st = open_regular(self._index_name, dir_fd=index_dir, follow_symlinks=False)
        except OSError:
            return None
        try:
            if untrusted_reason(st):
                return None  # not written by us, or writable by others: as if absent
            data = read_open(fd, _MAX_INDEX_BYTES, size=st.st_size)
        except OSError:
            return None  # unreadable or implausibly large: a miss, the directory is the truth
        finally:
            os.close(fd)
        loaded = parse_index(data, self._dir_ident, self._index_class)
        if loaded is not None:
            self._file = _IndexFile(st.st_ino, loaded.size, loaded.tip)
        return loaded

    def _finish(self) -> None:
        """End of a transaction: account for events we did not cause, seal the state, persist the index."""
        watch = self._handles.watch
        rebuild = False
        if watch is not None:
            own, self._own_events = self._own_events, None
            if own:
                watch.expect(own)
            if ((own or not self._made) and not self._flush
                    and (not self._unsealed or time.monotonic() - self._saved_at < _SAVE_EVERY)):
                # Nothing to seal or save now, and this transaction's own events are known (left out of the
                # next look at the queue) or only removed files (they say "gone": taking them in again changes
                # nothing): they and anyone else's wait for the next transaction's look at the queue, which
                # has to read it anyway. (An ADD and a DEL each read it once.)
                self._touched.clear()
                return
            names, rebuild = watch.drain()
            if rebuild:
                self._stale = True
            else:
                touched = self._touched
                for raw, gone in names.items():
                    # A name this transaction made is its own while it is still there; gone, someone removed it
                    # since (a writer that ignores the lock), and that is read like anyone's change.
                    if gone or raw not in touched:
                        self._changed_name(raw, gone)
        self._touched.clear()
        if rebuild or not self._unsealed:
            return  # (after a lost event the index is not exact: nothing is sealed or saved; the next opens rescan)
        if watch is not None:
            if not self._persist:
                self._unsealed = False
                return  # the watch tells what changes; nobody needs the state
            if not self._flush and time.monotonic() - self._saved_at < _SAVE_EVERY:
                return  # a busy store saves a few times a second (and when closed); dirty keys wait
        self._unsealed = False
        try:
            self._seal()
        except OSError:
            self._dir_state = None
        if (self._persist and self._dir_state is not None
                and time.monotonic() - self._save_failed_at >= _SAVE_RETRY_AFTER):
            self._save()
            self._saved_at = time.monotonic()

    def _finish_state_only(self) -> None:
        """End of a transaction of a store following the directory by its state: seal it again if it changed;
        save the index at most every ``_SAVE_EVERY`` seconds (and when closed)."""
        if self._wrote or self._reseal:
            self._reseal = False
            if self._touched:
                self._touched.clear()
            if self._made and len(self._index) > _STATE_ONLY_UP_TO:  # (only creating grows it here)
                # Grown past what comparing entries one by one suits: the next transaction starts the watch. (The
                # cursor file kept open is closed: what the watch did not see cannot be vouched for.)
                self._state_only = False
                self._handles.close_cursor()
            tau = time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)
            try:
                # This stat itself makes the next change of the directory, by anyone, stamp a later ctime.
                self._dir_state, self._tau = _state(os.fstat(self._handles.dir_fd)), tau
            except OSError:
                self._dir_state = None  # (the next transaction rescans)
        if not self._unsealed:
            return
        if not self._persist:
            self._unsealed = False
            return
        now = time.monotonic()
        if (self._dir_state is not None and (self._flush or now - self._saved_at >= _SAVE_EVERY)
                and now - self._save_failed_at >= _SAVE_RETRY_AFTER):
            self._unsealed = False
            self._save()
            self._saved_at = time.monotonic()

    def _seal(self) -> None:
        """Record a directory state that any later change of its entries must alter (None if there is none)."""
        dir_fd = self._handles.dir_fd
        tau = time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)
        if not self._wrote:
            st = os.fstat(dir_fd)
            if st.st_ctime_ns < tau:
                # Changed in an earlier tick of the clock that stamps files: a later change gets a later time.
                self._dir_state, self._tau = _state(st), tau
                return
        if self._can_utime and self._persist:
            # Set the mtime ourselves, to a time the ctime (given by the kernel) is not: a later change sets both
            # to one time, so it cannot leave this state in place. (Only when persisting: other stores' persisted
            # states would no longer match.)
            stamp = time.time_ns()
            for _ in range(3):
                try:
                    os.utime(dir_fd, ns=(stamp, stamp))
                except OSError:
                    self._can_utime = False  # not the owner, read-only...: fall back to the clock
                    break
                st = os.fstat(dir_fd)
                if st.st_mtime_ns != st.st_ctime_ns:
                    self._dir_state, self._tau = _state(st), tau
                    return
                stamp -= 1
        if len(self._index) <= _WAIT_FOR_TICK_ABOVE and not self._persist:
            self._dir_state = None  # small: the next operation rescans (lstat only) instead of waiting here
            return
        st = os.fstat(dir_fd)
        # Nobody else changes the directory while we hold the lock: once the clock has passed its ctime, any later
        # change gets a later one.
        deadline = time.monotonic() + _TICK_WAIT
        now = time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)
        while now <= st.st_ctime_ns and time.monotonic() < deadline:
            time.sleep(0.0005)
            now = time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)
        st = os.fstat(dir_fd)
        self._dir_state = _state(st) if st.st_ctime_ns < now else None
        self._tau = tau

    def _changed_name(self, raw: bytes, gone: bool = False) -> None:
        """Inotify events (not of our making) for the name ``raw``: re-read what they may have changed.

        ``gone``: the last of them removed the name (nothing to read: any later change is a later event).
        """
        name = os.fsdecode(raw)
        key = _key_from_name(name)
        if key is not None:
            if gone:
                self._absent(key)
            else:
                self._refresh(name, key)
        elif name.startswith(LAST_RESERVED_PREFIX):
            self._forget_cursors(name[len(LAST_RESERVED_PREFIX):])

    def _forget_cursors(self, range_id: str | None = None) -> None:
        """Forget what this store knows of one cursor file (or all): changed or replaced by someone else."""
        if range_id is None:
            self._cursors.clear()
        else:
            self._cursors.pop(range_id, None)
        self._handles.close_cursor(range_id)

    def _rescan(self, *, full: bool, reread: bool = False) -> None:
        """Compare the directory with the index; re-read new and changed reservation files.

        ``full`` starts from an empty index; ``reread`` re-reads every file but records only what changed.
        """
        index, sigs = self._index, self._sigs
        if full:
            # Lost events (a queue overflow) may include a rewritten cursor file: its cached size, which decides
            # whether rewriting it in place is safe, is no longer known either.
            self._forget_cursors()
            index.clear()
            sigs.clear()
            self._all_verified = True
            self._verified = set()
            self._need_snapshot = True
        # Files changed since the state was sealed have a ctime at or after tau, even when a delete and
        # re-create reused the inode number (the signature alone would miss that).
        tau = self._tau
        seen: set[int] = set()
        debris: list[str] = []
        signature = sigs.mapping().get
        key_from_name, refresh, remember = _key_from_name, self._refresh, seen.add
        try:
            with os.scandir(self._handles.dir_fd) as entries:
                for entry in entries:
                    name = entry.name
                    key = key_from_name(name)
                    if key is None:
                        if _is_temp(name):
                            debris.append(name)
                        continue
                    remember(key)
                    if full or reread:
                        refresh(name, key)
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        refresh(name, key)
                        continue
                    # A key absent from the index has no signature: read.
                    if st.st_ctime_ns >= tau or signature(key) != (st.st_ino, st.st_ctime_ns):
                        refresh(name, key)
        except OSError as exc:
            raise _io_error("cannot list", self.path, exc) from exc
        for key in set(index.keys()) - seen:
            index.discard_key(key)
            sigs.set(key, None)
            self._verified.discard(key)
            self._dirty.add(key)
            self._unsealed = True
        # (what the directory held at this point of this transaction: the lock keeps others' changes out)
        self._rescanned = self._txns
        if debris:
            self._sweep_names(debris)

    def _refresh(self, name: str, key: int) -> None:
        """Re-read one directory entry into the index."""
        # One open (never following a link, never blocking on a FIFO) then fstat: the entry cannot change
        # between the check and the read.
        dir_fd = self._handles.dir_fd
        sig: tuple[int, int] | None = (0, 0)
        text: str | None = None
        try:
            fd = os.open(name, _NOFOLLOW_READ, dir_fd=dir_fd)
        except FileNotFoundError:
            self._absent(key)
            return
        except OSError:
            # A symlink (ELOOP), a socket, no permission...: keep the address occupied, touch nothing.
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                sig = (st.st_ino, st.st_ctime_ns)
            except OSError:
                pass
        else:
            try:
                st = os.fstat(fd)
                sig = (st.st_ino, st.st_ctime_ns)
                if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_OWNER_BYTES:
                    # Bounded by the size (one byte more shows a file that grew since): an owner is rarely long.
                    data = os.read(fd, st.st_size + 1)
                    if len(data) > MAX_OWNER_BYTES:
                        data = b"\xff"  # grew past any owner's length: nobody's
                    try:
                        decoded: str | None = data.decode("utf-8")
                    except UnicodeDecodeError:
                        decoded = None
                    if decoded is not None:
                        text = owner_key_from_text(decoded)
            except OSError:
                text = None
            finally:
                os.close(fd)
        self._sigs.set(key, sig)
        if not self._all_verified:
            self._verified.add(key)
        if self._index.put_key(key, text):
            self._dirty.add(key)
            self._unsealed = True

    def _absent(self, key: int) -> None:
        """Forget ``key``: its file is gone."""
        self._sigs.set(key, None)
        self._verified.discard(key)
        if self._index.discard_key(key):
            self._dirty.add(key)
            self._unsealed = True

    def _unverified(self, key: int) -> bool:
        return not self._all_verified and key not in self._verified and self._index.has_key(key)

    def _verify(self, key: int) -> None:
        """Make the index's owner of ``key`` the file's before it is acted on or reported.

        Re-reads the entry if its content was loaded from the persisted index and not read since; without a
        watch, also if the file's identity (inode, ctime) is not the one last read, or it changed since the
        state was sealed (a file rewritten in place changes nothing else a store without a watch sees).
        """
        if self._unverified(key):
            self._refresh(_name(key), key)
        elif self._handles.watch is None and self._index.has_key(key):
            self._compare_entry(_name(key), key)

    def _compare_entry(self, name: str, key: int) -> None:
        """Re-read the entry ``name`` (of ``key``) unless its inode and ctime are the ones last read (one lstat).

        Not following by state, a file whose ctime is not older than the sealed state is read as well (a file
        made again since may reuse the inode number and, on a coarse clock, the ctime); following by state, every
        signature was taken by a stat after the file's last change, so any later write stamps a later ctime (see
        _stamps_every_change), and a file made again changed the directory's state (this transaction rescanned).
        """
        try:
            st = os.stat(name, dir_fd=self._handles.dir_fd, follow_symlinks=False)
        except OSError:
            self._refresh(name, key)
            return
        if ((st.st_ctime_ns >= self._tau and not self._state_only)
                or self._sigs.get(key) != (st.st_ino, st.st_ctime_ns)):
            self._refresh(name, key)

    def _compare_entries(self) -> None:
        """Compare every entry's inode and ctime with the index (one lstat each); re-read the changed files.

        Following by state, the directory is in its sealed state here (else this transaction rescanned it): the
        index names every entry, each compared by :meth:`_compare_entry`. Otherwise the directory is listed.
        """
        if not self._state_only:
            self._rescan(full=False)
            return
        compare = self._compare_entry
        keys = self._index.keys()  # (a copy: re-reading a file may change the index)
        for key in keys:
            compare(_name(key), key)
        self._rescanned = self._txns

    def _verify_all(self) -> None:
        """Make every owner in the index the file's (before listing them all, or looking one up by owner).

        Entries loaded from the persisted index are read once (O(n), like the whole listing; GC is the caller
        that matters). Without a watch, every entry's identity is compared as well (one lstat each) and the
        changed ones re-read: an owner rewritten in place is noticed by no other means.
        """
        if not self._all_verified:
            self._rescan(full=False, reread=True)
            self._all_verified = True
            self._verified = set()
        elif self._handles.watch is None and self._rescanned != self._txns:
            self._compare_entries()

    def _checked(self, query: Callable[[KeyIndex, str, str | None], list[int]], exact_text: str,
                 legacy_text: str | None) -> list[int]:
        """``query`` answered from contents read by this store (re-reading any loaded from the persisted index).

        Without a watch the whole directory is verified first (:meth:`_verify_all`'s lstat pass): the
        reference's own duplicate check and DEL read every file, so an owner lookup may cost O(n) stats where
        nothing else tells that a file was rewritten in place. A watching store is told (IN_MODIFY) and stays
        O(1).
        """
        if self._handles.watch is None and self._rescanned != self._txns:
            self._compare_entries()
        while True:
            found = query(self._index, exact_text, legacy_text)
            if self._all_verified:
                return found  # (nothing loaded from the persisted index waits to be read)
            pending = [key for key in found if self._unverified(key)]
            if not pending:
                return found
            for key in pending:
                self._refresh(_name(key), key)

    # ----------------------------------------------------------------- the persisted index

    def _index_dir(self, *, create: bool) -> int:
        """A descriptor of the directory holding this store's index (made if ``create``), or -1."""
        handles = self._handles
        if handles.index_dir_fd >= 0 or self._index_location is None:
            return handles.index_dir_fd
        top, base = self._index_location
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            if create:
                _mkdir_if_absent(top, _INDEX_DIR_MODE)
            top_fd = os.open(top, flags)  # never through a symlink planted there
            try:
                if untrusted_reason(os.fstat(top_fd)):
                    return -1  # made by someone else (say in a world-writable parent): as if absent
                if create:
                    _mkdir_if_absent(base, _INDEX_DIR_MODE, dir_fd=top_fd)
                index_dir_fd = os.open(base, flags, dir_fd=top_fd)
            finally:
                os.close(top_fd)
            if untrusted_reason(os.fstat(index_dir_fd)):
                os.close(index_dir_fd)
                return -1
        except OSError:
            return -1
        handles.index_dir_fd = index_dir_fd
        return index_dir_fd

    def _save(self) -> None:
        """Bring the persisted index up to the sealed state: append a record, or write a new snapshot."""
        try:
            if not self._append():
                self._write_snapshot()
        except OSError:
            # A cache: a store that cannot write it works without it for a while (the file left behind no longer
            # matches the directory, so nobody believes it), then tries again with a whole new snapshot (a full
            # disk or a read-only mount may well have passed by then).
            self._save_failed_at = time.monotonic()
            self._need_snapshot = True
            self._handles.close_index()

    def _append(self) -> bool:
        """Append this store's changes as one record; False when a snapshot must be written instead."""
        state = self._dir_state
        known = self._file
        if state is None or known is None or self._need_snapshot:
            return False
        handles = self._handles
        if handles.index_fd < 0 and not self._open_index():
            return False
        st = os.fstat(handles.index_fd)
        dirty = self._dirty
        if st.st_nlink == 0 or st.st_ino != known.ino or st.st_size < known.size:
            return False  # replaced (another store's snapshot) or cut: a snapshot of our own is the sound way on
        if st.st_size > known.size:
            # Another store appended since: its records describe its view; this store knows every key's value
            # now, so it rewrites those keys too (its own dirty set says what changed since its own last record,
            # not what the other one started from).
            followed = follow(os.pread(handles.index_fd, st.st_size - known.size, known.size), known.tip)
            if followed is None:
                return False
            dirty = dirty | followed[1]
            known = self._file = _IndexFile(known.ino, st.st_size, followed[0])
        size = len(self._index)
        if (known.tip.records >= _RECORDS_BASE + size * _RECORDS_PER_RESERVATION
                or known.tip.changes + len(dirty) > _CHANGES_BASE + size * _CHANGES_PER_RESERVATION):
            return False
        index, sigs = self._index, self._sigs
        changes = [(key, sigs.get(key) or (0, 0), index.owner_text(key)) if index.has_key(key) else (key, None, None)
                   for key in dirty]
        tip = Tip(state, self._tau, known.tip.records + 1, known.tip.changes + len(changes))
        frame = encode_record(known.tip.state, tip, changes)
        written = os.write(handles.index_fd, frame)
        if written != len(frame):
            return False  # the torn frame ends the log for readers; the snapshot replaces it
        self._file = _IndexFile(known.ino, known.size + written, tip)
        self._dirty.clear()
        return True

    def _open_index(self) -> bool:
        index_dir = self._index_dir(create=False)
        if index_dir < 0:
            return False
        try:
            self._handles.index_fd = os.open(self._index_name, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                                             dir_fd=index_dir)
        except OSError:
            return False
        return True

    def _write_snapshot(self) -> None:
        state = self._dir_state
        if state is None:
            return
        tip = Tip(state, self._tau)
        data = encode_snapshot(tip, self._index, self._sigs)
        index_dir = self._index_dir(create=True)
        if index_dir < 0:
            raise OSError(errno.ENOENT, "no index directory")
        temp = self._index_name + _TEMP_SUFFIX
        _unlink_if_present(temp, index_dir)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _FILE_MODE,
                     dir_fd=index_dir)
        try:
            _write_all(fd, data)
            ino = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        # Not a rename over the old file: ext4 would flush the new one first (see _replace_cursor). A crash in
        # between leaves no index, which costs the next opener a scan.
        self._handles.close_index()
        _unlink_if_present(self._index_name, index_dir)
        os.rename(temp, self._index_name, src_dir_fd=index_dir, dst_dir_fd=index_dir)
        self._file = _IndexFile(ino, len(data), tip)
        self._need_snapshot = False
        self._dirty.clear()

    # ----------------------------------------------------------------- writing

    def _write_temp(self, data: bytes) -> str:
        self._own_events = None  # (a named temporary file: its events are not listed)
        # os.urandom is what secrets.token_hex reads, without importing secrets (hashlib, random, base64...).
        name = f"{_TEMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}{_TEMP_SUFFIX}"
        dir_fd = self._handles.dir_fd
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _FILE_MODE,
                     dir_fd=dir_fd)
        try:
            _write_all(fd, data)
            if self.durable:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink_quietly(name, dir_fd)
            raise
        os.close(fd)
        return name

    def _create_unnamed(self, name: str, data: bytes) -> tuple[tuple[int, int], int] | None:
        """Write ``data`` to an unnamed file and link it as ``name``: its signature and its descriptor, left open
        for the caller to close; None when this cannot work here."""
        dir_fd = self._handles.dir_fd
        try:
            fd = os.open(".", _O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, _FILE_MODE, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in _NO_TMPFILE:
                self._tmpfile = False
                return None
            raise
        try:
            _write_all(fd, data)
            if self.durable:
                os.fsync(fd)
            try:
                os.link(f"{_PROC_SELF_FD}/{fd}", name, dst_dir_fd=dir_fd)
            except FileNotFoundError:
                if os.path.isdir(_PROC_SELF_FD):
                    raise
                st = None  # no /proc: an unnamed file cannot be given a name
            else:
                st = os.fstat(fd)
        except BaseException:
            _close_quietly(fd)
            raise
        if st is None:
            os.close(fd)
            self._tmpfile = False
            return None
        self._tmpfile = True
        return (st.st_ino, st.st_ctime_ns), fd

    def _create(self, name: str, data: bytes) -> tuple[tuple[int, int], int]:
        """Create ``name`` holding ``data``, complete or not at all. FileExistsError if taken.

        Returns its signature and, when it was written unnamed and linked in, its descriptor, still open (the
        caller closes it; -1 otherwise).
        """
        self._made = True
        if self._tmpfile is not False:
            made = self._create_unnamed(name, data)
            if made is not None:
                return made
        dir_fd = self._handles.dir_fd
        temp = self._write_temp(data)
        try:
            os.link(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        finally:
            _unlink_quietly(temp, dir_fd)
        self._touched.add(temp.encode())
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return (st.st_ino, st.st_ctime_ns), -1

    def _sync_dir(self) -> None:
        if self.durable:
            os.fsync(self._handles.dir_fd)

    def _write_last_reserved(self, range_id: str, key: int, data: bytes) -> None:
        """Record ``key`` (whose address text is ``data``) in the cursor file of ``range_id``."""
        self._made = True
        name = LAST_RESERVED_PREFIX + range_id
        handles = self._handles
        # Whether what this store writes is kept open and trusted: while something would say that anyone else
        # wrote, replaced or removed the file (the watch, or following by state the directory's state: see _sync).
        told = handles.watch is not None or self._state_only
        # (the name as the watch's events spell it: only a watching store looks at them)
        raw = os.fsencode(name) if handles.watch is not None or self._own_events is not None else b""
        if raw:
            self._touched.add(raw)
        if not self.durable:
            # A watching store keeps the file open between transactions: the watch reports anyone else's
            # write, replacement or removal of it, which closes the kept descriptor (_forget_cursors).
            fd = handles.cursor_fds.pop(range_id, -1)
            if fd < 0:
                try:
                    fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                                 dir_fd=handles.dir_fd)
                except OSError:
                    fd = -1  # missing, a symlink, a FIFO...: replaced below
            if fd >= 0:
                keep = False
                try:
                    length = len(data)
                    cached = self._cursors.get(range_id)
                    if cached is not None and cached[2]:
                        # the file as this store last wrote or read it, untouched since (the watch would have
                        # said, or the directory's state: see _sync)
                        size = cached[1]
                    else:
                        st = os.fstat(fd)
                        size = st.st_size if stat.S_ISREG(st.st_mode) else length + 1
                    # Never shorter: one pwrite leaves the old text or the new one, nothing in between.
                    if size <= length and os.pwrite(fd, data, 0) == length:
                        keep = told
                        self._cursors[range_id] = (key, length, keep)
                        own = self._own_events
                        if own is not None:
                            if keep:
                                own.append((IN_MODIFY, raw))
                            else:
                                self._own_events = None
                        return
                finally:
                    if keep:
                        handles.cursor_fds[range_id] = fd
                    else:
                        os.close(fd)
        self._own_events = None
        self._replace_cursor(name, data)
        self._cursors[range_id] = (key, len(data), told)

    def _replace_cursor(self, name: str, data: bytes) -> None:
        dir_fd = self._handles.dir_fd
        temp = self._write_temp(data)
        self._touched.add(temp.encode())
        self._wrote = self._unsealed = True
        try:
            if not self.durable:
                # Renaming over an existing file makes ext4 flush the new file's data first (auto_da_alloc),
                # which costs several times the rest of the ADD. Without that replacement there is a moment
                # with no cursor file; a crash there only restarts round-robin at the range start, as on the
                # very first ADD. Durable mode fsyncs anyway and keeps the atomic replacement.
                _unlink_if_present(name, dir_fd)
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            _unlink_quietly(temp, dir_fd)
            raise
        self._sync_dir()

    @staticmethod
    def _check_range_id(range_id: str) -> None:
        if not range_id or "/" in range_id or "\0" in range_id or range_id in (".", ".."):
            raise InvalidConfigError(f"invalid range set id {range_id!r}", key="range_id", value=range_id)

    # ----------------------------------------------------------------- keys

    def reserve_key(self, key: int, owner_text: str, range_id: str) -> bool:
        """Create-if-absent the file for ``key``; update ``last_reserved_ip.<range_id>``. Not idempotent.

        The file holds ``owner_text``'s content: ``<id>\\r\\n<ifname>`` for ``"<id> <ifname>"`` and ``<id>`` for
        a legacy ``"<id>"``. Returns False (and changes nothing) when the address is
        already reserved, by anyone.

        Raises:
            InvalidConfigError: ``range_id`` cannot name a cursor file (code 7).
            ValueError: ``key`` is no address key or ``owner_text`` no owner key text.
        """
        self._check_range_id(range_id)
        key = _canonical_key(key)
        content = _owner_content(owner_text)
        name = _name(key)
        self._begin()
        try:
            index = self._index
            if index.has_key(key):
                return False
            try:
                sig, unnamed = self._create(name, content)
            except FileExistsError:
                # Taken by a writer our index had not heard of yet: learn it, report "not free".
                self._refresh(name, key)
                if not index.has_key(key):
                    index.put_key(key, None)
                return False
            except OSError as exc:
                raise _io_error("cannot create", os.path.join(self.path, name), exc) from exc
            try:
                raw = name.encode()
                own = self._own_events
                if own is not None:  # (None after a named temporary file: see _write_temp)
                    # The link. The unnamed file's own events name "#<inode>", which the watch leaves out.
                    own.append((IN_CREATE, raw))
                self._touched.add(raw)
                self._wrote = self._unsealed = True
                index.put_key(key, owner_text)
                self._sigs.set(key, sig)
                self._dirty.add(key)
                if not self._all_verified:
                    self._verified.add(key)
                try:
                    self._sync_dir()
                    self._write_last_reserved(range_id, key, raw)
                except OSError as exc:
                    # Keep the pair consistent: no reservation that the caller believes failed. (A failed cursor
                    # write made no event: a short one is not a failure, and one through a temporary file
                    # stopped the listing of this transaction's events.)
                    self._unlink(name, key, best_effort=True)
                    raise _io_error("cannot record the last reserved address in", self.path, exc) from exc
            finally:
                if unnamed >= 0:
                    # Closed last: its event ("#<inode>", of a file only this store holds open) then follows every
                    # event of this ADD's in the queue, so the kernel cannot fold anyone's next event into one of
                    # them (it merges an event only into an identical one at the queue's tail).
                    os.close(unnamed)
            return True
        finally:
            self._end()

    def _unlink(self, name: str, key: int, *, best_effort: bool = False) -> None:
        """Remove a reservation file and forget it (a missing file is no error; with ``best_effort``, none is)."""
        try:
            os.unlink(name, dir_fd=self._handles.dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if not best_effort:  # (a failed removal made no event)
                raise _io_error("cannot remove", os.path.join(self.path, name), exc) from exc
        else:
            own = self._own_events
            if own is not None:
                own.append((IN_DELETE, name.encode()))
        # (Not marked as this transaction's own change: the removal's event, read back, only says the name is
        # gone, which changes nothing; and a writer that ignores the lock and creates the name again at once
        # leaves an event that must be read, not taken for ours.)
        self._wrote = self._unsealed = True
        self._index.discard_key(key)
        self._sigs.set(key, None)
        self._verified.discard(key)
        self._dirty.add(key)

    def release_key(self, key: int, owner_text: str) -> bool:
        """Remove ``key``'s file if the owner key text ``owner_text`` holds it. Idempotent.

        Returns whether something was removed.
        """
        key = _canonical_key(key)
        self._begin()
        try:
            name = _name(key)
            self._verify(key)
            if self._index.owner_text(key) != owner_text:  # (None when free)
                return False
            self._unlink(name, key)
            self._sync_dir()
            return True
        finally:
            self._end()

    def release_owner_keys(self, exact_text: str, legacy_text: str | None) -> list[int]:
        """Remove every file held by ``exact_text``, or if none, by ``legacy_text`` (the reference's DEL rule).

        ``legacy_text`` is the container's legacy key text (``"<id>"``), None for a
        legacy owner. Returns the keys released, ascending. Idempotent.
        """
        self._begin()
        try:
            released = self._checked(release_owner_keys, exact_text, legacy_text)
            for key in released:
                self._unlink(_name(key), key)
            if released:
                self._sync_dir()
            return released
        finally:
            self._end()

    def find_owner_keys(self, exact_text: str, legacy_text: str | None) -> list[int]:
        """Keys held by ``exact_text`` or by ``legacy_text`` (if given), ascending. Read-only."""
        self._begin()
        try:
            return self._checked(find_owner_keys, exact_text, legacy_text)
        finally:
            self._end()

    def reservation_keys(self) -> list[tuple[int, str | None]]:
        """Every reservation as ``(key, owner key text or None when unreadable)``, ascending (a snapshot). Read-only."""
        self._begin()
        try:
            self._verify_all()
            index = self._index
            return [(key, index.owner_text(key)) for key in sorted(index.keys())]
        finally:
            self._end()

    def has_key(self, key: int) -> bool:
        """Whether ``key`` is reserved (by anyone, readable or not). Read-only."""
        key = _canonical_key(key)
        self._begin()
        try:
            self._verify(key)
            return self._index.has_key(key)
        finally:
            self._end()

    def first_free_key(self, low: int, high: int) -> int | None:
        """Lowest key in ``[low, high]`` (keys of one family) without a file, or None. Read-only."""
        self._begin()
        try:
            return self._index.first_free_key(low, high)
        finally:
            self._end()

    def last_reserved_key(self, range_id: str) -> int | None:
        """The key ``last_reserved_ip.<range_id>`` names, parsed exactly as the reference (no trimming). Read-only.

        An IPv4-mapped IPv6 text names the IPv4 key; None when the file is
        missing or is not an address Go's ``net.ParseIP`` takes.
        """
        self._check_range_id(range_id)
        self._begin()
        try:
            cached = self._cursors.get(range_id)
            if cached is not None:
                return cached[0]
            key: int | None = None
            size = -1
            try:
                fd = os.open(LAST_RESERVED_PREFIX + range_id, _NOFOLLOW_READ, dir_fd=self._handles.dir_fd)
            except OSError:
                fd = -1
            if fd >= 0:
                try:
                    data = os.read(fd, 64)
                    size = len(data)
                    try:
                        parsed = parse_ip_value(data.decode("ascii"))
                    except UnicodeDecodeError:
                        parsed = None
                    if parsed is not None:
                        key = value_key(*parsed)
                except OSError:
                    pass
                finally:
                    os.close(fd)
            # (following by state, what was read holds until the state changes: see _sync)
            self._cursors[range_id] = (key, size, self._state_only)
            return key
        finally:
            self._end()

    def sweep(self) -> int:
        """Remove temp files left by crashed writers (dead pid, or older than ``STALE_TEMP_SECONDS``).

        Idempotent. Returns the number removed.
        """
        self._begin()
        try:
            try:
                names = [name for name in os.listdir(self._handles.dir_fd) if _is_temp(name)]
            except OSError as exc:
                raise _io_error("cannot list", self.path, exc) from exc
            return self._sweep_names(names)
        finally:
            self._end()

    def _sweep_names(self, names: list[str]) -> int:
        dir_fd = self._handles.dir_fd
        now = time.time()
        removed = 0
        for name in names:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                continue
            if temp_abandoned(temp_writer_pid(name, _TEMP_PREFIX), st.st_mtime, now):
                self._own_events = None
                _unlink_if_present(name, dir_fd)
                self._touched.add(os.fsencode(name))
                self._wrote = self._unsealed = True
                removed += 1
        if removed:
            self._sync_dir()
        return removed

    def close(self) -> None:
        """Save what the persisted index still lacks (if the lock is free), close the descriptors. Idempotent."""
        with self._thread_lock:
            if (self._unsealed and self._persist and self._depth == 0 and self._handles.lock_fd >= 0
                    and self._generation == _fork_generation[0]):
                timeout, self.lock_timeout, self._flush = self.lock_timeout, 0.0, True
                try:
                    with _Transaction(self):
                        pass
                except (TryAgainLaterError, IOFailureError):
                    pass  # busy or gone: the next store to open checks the directory instead
                finally:
                    self.lock_timeout, self._flush = timeout, False
            self._handles.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        self._begin()
        try:
            return len(self._index)
        finally:
            self._end()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data_dir!r}, {self.network!r})"

    @property
    def watching(self) -> bool:
        """Whether the store, once in steady use, follows changes by others with inotify or (``watch=None``, a
        small directory on a file system with fine-grained change times) by the directory's sealed state.

        A store compares the directory's state until its third operation, so that one opened for a single
        operation never sets inotify up; False when ``watch`` was False or inotify is unavailable.
        """
        return self._want_watch and not self._watch_failed

