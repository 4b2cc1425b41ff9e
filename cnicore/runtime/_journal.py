"""The attach journal and the runtime's locks: what makes an interrupted ADD recoverable.

Theory of operation. An ADD of a network runs several plugins; each may reserve
an address, create a link or add firewall rules. libcni records the attachment
only after the last plugin succeeded, so a runtime that dies in between leaks
whatever the earlier plugins made, for good: nothing on disk says the
attachment ever existed. cnicore writes a *journal entry* first.

* Before the first plugin runs, :func:`create_pending` writes
  ``<cache dir>/cnicore/pending/<network>-<container>-<ifname>``: everything DEL
  needs (the network's bytes and each plugin's, the netns, ``CNI_ARGS``, the
  capability arguments). The file is written under a temporary name, flushed,
  locked with ``flock`` and only then linked into place, so whoever sees it
  sees it whole and locked. The lock is held for as long as the ADD runs.
  The temporary name is ``.tmp.<writer's pid>-<random>``: a writer that dies
  before it unlinks that name leaves it behind, and the next full listing
  (:func:`list_pending` without a container, as recovery and GC call it)
  removes it once it is certainly abandoned: unlocked, and its writer gone or
  the file older than :data:`cnicore._atomicfile.STALE_TEMP_SECONDS`.
* After the result cache entry is written, the journal entry is unlinked
  (:meth:`PendingLock.remove`). After a failed ADD whose clean-up (DEL) worked,
  likewise. If the clean-up failed, the entry stays for a later attempt.
* ``flock`` locks die with their process. So an entry that can be locked
  (:func:`claim_pending`) belongs to a writer that is gone: recovery runs DEL
  for it, unless a cache entry for the attachment exists (the writer died after
  committing: the journal is merely stale). The claimer checks that the path
  still names the inode it locked, since the writer may have unlinked it in
  between.

Other locks, all ``flock`` on files under ``<cache dir>/cnicore/locks`` (a
file per purpose, never deleted, so no lock is ever taken on a file that is
about to vanish):

* ``attach-NN``: one of 32 stripes, chosen by the container ID; held while an
  interface name is chosen and the journal entry created, so two concurrent
  attaches of one container (threads or processes) never pick the same
  ``ethN``;
* ``gc-<network>``: shared by every ADD of the network while it runs,
  exclusive for GC, so that GC never releases the addresses of an ADD that
  is not yet in the cache.

``flock`` conflicts between separate ``open()`` calls even inside one process,
so the same locks serialise threads too. Lock order: ``gc-<network>`` before
``attach-NN``; journal entries are only ever locked without waiting.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import fcntl
import os
import secrets
import time
import zlib
from collections.abc import Mapping
from typing import Any, Final

import attrs

from cnicore._atomicfile import TEMP_PREFIX, fsync_directory, temp_abandoned, temp_writer_pid
from cnicore._errors import DecodingError, IOFailureError, TryAgainLaterError
from cnicore._json import decode
from cnicore._readfile import MAX_DOCUMENT_BYTES, open_regular, read_open, read_regular
from cnicore.config._gojson import go_map_marshal, rebuild
from cnicore.runtime._cache import freeze_mapping, make_private_dir

__all__ = [
    "PENDING_KIND",
    "PendingAttachment",
    "PendingLock",
    "RuntimeLocks",
    "claim_pending",
    "create_pending",
    "list_pending",
    "pending_path",
]

#: The ``kind`` of a journal entry.
PENDING_KIND: Final = "cnicorePendingV1"
_OWN_DIR = "cnicore"
_STRIPES = 32


@attrs.frozen(kw_only=True)
class PendingAttachment:
    """A journal entry: an ADD that started and has not (yet) been committed to the result cache.

    Attributes:
        network: the network name.
        container_id: the container ID.
        ifname: the interface name.
        netns: the namespace path the ADD was given.
        cni_args: the ``CNI_ARGS`` pairs.
        capability_args: the capability arguments.
        config: the network's configuration bytes.
        plugins: each plugin's configuration bytes, in chain order (the network's
            bytes alone do not hold plugins loaded from its sibling folder).
        pid: the process that started the ADD.
        path: the journal file.
    """

    network: str
    container_id: str
    ifname: str
    netns: str = ""
    cni_args: tuple[tuple[str, str], ...] = ()
    capability_args: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze_mapping, hash=False)
    config: bytes = attrs.field(default=b"", repr=False)
    plugins: tuple[bytes, ...] = attrs.field(default=(), repr=False)
    pid: int = 0
    path: str = attrs.field(default="", eq=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """``(network, container_id, ifname)``."""
        return self.network, self.container_id, self.ifname


def own_dir(cache_dir: str | os.PathLike[str]) -> str:
    """``<cache dir>/cnicore``: where cnicore keeps what libcni's format has no room for."""
    return os.path.join(os.fspath(cache_dir), _OWN_DIR)


def pending_path(cache_dir: str | os.PathLike[str], network: str, container_id: str, ifname: str) -> str:
    """The journal file of an attachment (names are validated by the caller)."""
    return os.path.join(own_dir(cache_dir), "pending", f"{network}-{container_id}-{ifname}")


def _encode(entry: PendingAttachment) -> bytes:
    document = {
        "kind": PENDING_KIND,
        "containerId": entry.container_id,
        "networkName": entry.network,
        "ifName": entry.ifname,
        "netns": entry.netns,
        "cniArgs": [list(pair) for pair in entry.cni_args],
        "capabilityArgs": rebuild(entry.capability_args),
        "config": base64.b64encode(entry.config).decode("ascii"),
        "plugins": [base64.b64encode(p).decode("ascii") for p in entry.plugins],
        "pid": entry.pid,
    }
    return go_map_marshal(document)


def _decode(data: bytes, path: str) -> PendingAttachment:
    try:
        doc = decode(data, what="journal entry")
        if not isinstance(doc, dict) or doc.get("kind") != PENDING_KIND:
            raise DecodingError("not a journal entry")
        args = tuple((str(k), str(v)) for k, v in doc.get("cniArgs") or [])
        return PendingAttachment(
            network=str(doc["networkName"]), container_id=str(doc["containerId"]), ifname=str(doc["ifName"]),
            netns=str(doc.get("netns") or ""), cni_args=args, capability_args=doc.get("capabilityArgs") or {},
            config=base64.b64decode(doc.get("config") or "", validate=True),
            plugins=tuple(base64.b64decode(p, validate=True) for p in doc.get("plugins") or []),
            pid=int(doc.get("pid") or 0), path=path,
        )
    except (DecodingError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise DecodingError(f"unreadable journal entry {path}: {exc}", key="journal", value=path) from exc


class PendingLock:
    """A journal entry together with the ``flock`` held on it.

    :meth:`remove` unlinks the entry (the lock is kept until :meth:`release`);
    :meth:`release` closes the descriptor, which drops the lock. Both idempotent.
    """

    def __init__(self, path: str, fd: int, entry: PendingAttachment | None, error: DecodingError | None = None) -> None:
        self.path = path
        self._fd = fd
        #: The entry, or None when the file could not be decoded (see :attr:`error`).
        self.entry = entry
        #: Why the file could not be decoded.
        self.error = error

    def remove(self) -> None:
        """Unlink the entry.

        The directory is not flushed: an unlink lost in a crash leaves an entry
        whose attachment is in the cache (merely stale, see :func:`claim_pending`)
        or one whose DEL already succeeded (DEL is repeatable).
        """
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise IOFailureError(f"failed to remove journal entry {self.path}: {exc.strerror or exc}") from exc

    def release(self) -> None:
        """Drop the lock."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> PendingLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def create_pending(cache_dir: str | os.PathLike[str], entry: PendingAttachment) -> PendingLock:
    """Write ``entry``'s journal file, locked, and return the held lock.

    Raises:
        TryAgainLaterError: (code 11) an entry for the attachment exists already.
        IOFailureError: (code 5) it could not be written.
    """
    path = pending_path(cache_dir, entry.network, entry.container_id, entry.ifname)
    directory = os.path.dirname(path)
    make_private_dir(directory)
    tmp = os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}")
    entry = attrs.evolve(entry, path=path, pid=entry.pid or os.getpid())
    fd = -1
    linked = False
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(_encode(entry))
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        try:
            os.link(tmp, path)  # never replaces an entry that exists
        except FileExistsError as exc:
            raise TryAgainLaterError(f"an attach of {entry.container_id} ({entry.ifname}) to network "
                                     f"{entry.network} is already pending", path) from exc
        linked = True
        fsync_directory(directory)
    except BaseException as exc:
        if linked:  # no plugin ran: an entry left behind would only block the interface name
            with contextlib.suppress(OSError):
                os.unlink(path)
        if fd >= 0:
            os.close(fd)
        if isinstance(exc, OSError):
            raise IOFailureError(f"failed to write journal entry {path}: {exc.strerror or exc}") from exc
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return PendingLock(path, fd, entry)


def _lock_abandoned(path: str) -> int | None:
    """A descriptor holding the lock of the journal entry at ``path`` if its writer is gone, else None."""
    try:
        fd, _ = open_regular(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IOFailureError(f"failed to open journal entry {path}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise IOFailureError(f"failed to lock journal entry {path}: {exc.strerror or exc}") from exc
    try:
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        same = False
    except OSError as exc:
        os.close(fd)
        raise IOFailureError(f"failed to open journal entry {path}: {exc.strerror or exc}") from exc
    if not same:
        os.close(fd)  # the writer finished and removed it while we were opening it
        return None
    return fd


def claim_pending(path: str) -> PendingLock | None:
    """Lock the journal entry at ``path`` if its writer is gone; None if it is alive or the entry vanished.

    The returned lock's :attr:`PendingLock.entry` is None (and ``error`` set) when
    the file cannot be decoded.
    """
    fd = _lock_abandoned(path)
    if fd is None:
        return None
    try:
        data = read_open(fd, MAX_DOCUMENT_BYTES, path=path)
    except OSError as exc:
        os.close(fd)
        raise IOFailureError(f"failed to read journal entry {path}: {exc.strerror or exc}") from exc
    try:
        return PendingLock(path, fd, _decode(data, path))
    except DecodingError as exc:
        return PendingLock(path, fd, None, exc)


def is_pending_alive(path: str) -> bool:
    """True when the journal entry at ``path`` exists and its writer still holds it."""
    fd = _lock_abandoned(path)
    if fd is None:
        return os.path.exists(path)
    os.close(fd)
    return False


def read_pending(path: str) -> PendingAttachment | None:
    """The entry at ``path`` without locking it; None when it is gone or unreadable."""
    try:
        data = read_regular(path, MAX_DOCUMENT_BYTES)
    except OSError:
        return None
    try:
        return _decode(data, path)
    except DecodingError:
        return None


def list_pending(cache_dir: str | os.PathLike[str], container_id: str | None = None) -> list[str]:
    """The journal files (sorted), optionally only those whose name can belong to ``container_id``.

    A full listing (no ``container_id``: recovery and GC) also removes the
    temporary files of writers that died before linking their entry (see
    :func:`sweep_temporaries`); the listing an attach makes never spends time on them.
    """
    directory = os.path.join(own_dir(cache_dir), "pending")
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise IOFailureError(f"failed to list journal directory {directory}: {exc.strerror or exc}") from exc
    if not container_id:
        sweep_temporaries(directory, [n for n in names if n.startswith(TEMP_PREFIX)])
    part = f"-{container_id}-" if container_id else ""
    return [os.path.join(directory, n) for n in names if not n.startswith(".") and part in n]


def sweep_temporaries(directory: str, names: list[str]) -> None:
    """Remove those of the journal's temporary files ``names`` (in ``directory``) that are certainly abandoned.

    One is when no one holds its ``flock`` (a writer locks its file right after
    creating it and holds the lock until its ADD ends) and, for the instant
    between a live writer's create and lock, when
    :func:`cnicore._atomicfile.temp_abandoned` says so (its writer is gone, or it
    is older than :data:`cnicore._atomicfile.STALE_TEMP_SECONDS`). The removal is
    made while holding the lock. Best effort: a file that cannot be examined
    or removed stays.
    """
    for name in names:
        path = os.path.join(directory, name)
        try:
            mtime = os.stat(path, follow_symlinks=False).st_mtime
        except OSError:
            continue
        if not temp_abandoned(temp_writer_pid(name), mtime, time.time()):
            continue
        try:
            fd = _lock_abandoned(path)
        except IOFailureError:
            continue
        if fd is None:
            continue
        try:
            os.unlink(path)
        except OSError:
            pass
        finally:
            os.close(fd)


class _Flock:
    """An ``flock`` on a lock file, taken with a deadline (polling, so it can give up)."""

    def __init__(self, path: str, *, shared: bool, timeout: float, what: str) -> None:
        self._path = path
        self._shared = shared
        self._timeout = timeout
        self._what = what
        self._fd = -1

    def __enter__(self) -> _Flock:
        make_private_dir(os.path.dirname(self._path))
        try:
            fd, _ = open_regular(self._path, flags=os.O_RDWR, create_mode=0o600)
        except OSError as exc:
            raise IOFailureError(f"failed to open lock file {self._path}: {exc.strerror or exc}") from exc
        try:
            self._wait_for(fd)
        except BaseException:  # a timeout, or interrupted while waiting
            os.close(fd)
            raise
        self._fd = fd
        return self

    def _wait_for(self, fd: int) -> None:
        mode = (fcntl.LOCK_SH if self._shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        deadline = time.monotonic() + self._timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, mode)
                return
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise IOFailureError(f"failed to lock {self._path}: {exc.strerror or exc}") from exc
            if time.monotonic() >= deadline:
                raise TryAgainLaterError(f"timed out after {self._timeout:g} s waiting for {self._what}",
                                         self._path)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class RuntimeLocks:
    """The runtime's lock files under ``<cache dir>/cnicore/locks`` (see the module docstring)."""

    def __init__(self, cache_dir: str | os.PathLike[str], timeout: float) -> None:
        self._dir = os.path.join(own_dir(cache_dir), "locks")
        self._timeout = timeout

    def attach_stripe(self, container_id: str) -> _Flock:
        """The lock under which a container's interface names are chosen."""
        stripe = zlib.crc32(container_id.encode("utf-8", "surrogateescape")) % _STRIPES
        return _Flock(os.path.join(self._dir, f"attach-{stripe:02d}"), shared=False, timeout=self._timeout,
                      what=f"the interface-name lock of container {container_id}")

    def gc_lock(self, network: str, *, exclusive: bool) -> _Flock:
        """Shared by ADDs of ``network``, exclusive for its GC."""
        return _Flock(os.path.join(self._dir, f"gc-{network}"), shared=not exclusive, timeout=self._timeout,
                      what=f"the GC lock of network {network}")
