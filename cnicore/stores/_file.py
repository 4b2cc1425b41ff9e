"""The file store: host-local's on-disk layout, byte for byte, made crash-safe and fast.

Theory of operation
===================

Layout (shared with the reference plugin, which may use the same directory at the
same time)::

    <dataDir>/<network>/lock                  empty; flock(LOCK_EX) on it is THE lock
    <dataDir>/<network>/<ip>                  "<containerID>\\r\\n<ifname>" (no newline), mode 0600
    <dataDir>/<network>/last_reserved_ip.<n>  "<ip>" (no newline), one per range set index n
    <dataDir>/../.cnicore/<basename of dataDir>/<network>.index
                                              this store's persisted index (a cache; see below)

``<ip>`` is Go's ``net.IP.String()`` of the address. Legacy reservation files hold
just ``<containerID>``.

What is locked. Every operation runs with ``flock(LOCK_EX)`` held on ``lock``,
the very lock the reference takes (go-filemutex), so the two implementations
exclude each other. The lock file is never unlinked: unlinking it would let two
processes lock two different inodes. After taking the lock the store checks that
the path still names the inode it locked (and the directory it opened) and
reopens otherwise (a store following its directory by state, see below, knows
the lock file and the directory unchanged while the directory's state is the one
it sealed, and checks the path itself at most once a second: a renamed ancestor
is the one change that leaves the state as it was). A thread lock makes one store object safe to share between
threads; a fork check reopens the descriptors in a forked child (which would
otherwise share the parent's lock). A busy lock is tried again after short
sleeps (so that waiting longer than ``lock_timeout`` can raise
:class:`~cnicore.TryAgainLaterError`, code 11); between tries, a watching store
takes in the changes already reported by its watch, so that its own lock hold
is shorter (and then sleeps all the same: trying again at once would take the
holder's processor where processes outnumber cores).

What is atomic. A reservation file appears complete or not at all: the content is
written to an unnamed file (``O_TMPFILE``; in durable mode fsync'ed) which is then
``linkat()``-ed to the address's name, failing with EEXIST when the address is
taken (the create-if-absent). Where the file system has no ``O_TMPFILE`` (or
``/proc`` is not mounted) a named temp file ``.cnicore-<pid>-<random>.tmp`` is
written, linked and unlinked instead; which of the two works is found out once
per store. ``last_reserved_ip.<n>`` is rewritten in place with one ``pwrite``
when the new address is not shorter than the old one (a single write of a few
bytes cannot be cut by a crash), and otherwise written as a temp file renamed
into place (the old one unlinked first except in durable mode, see
``_replace_cursor``; a crash in between leaves no cursor, which restarts
round-robin at the range start). Durable mode always uses the fsync'ed temp file
and rename. Release is one ``unlink()``. In durable mode the directory is
fsync'ed after each link, unlink and rename.

What a crash can leave. A process killed at any instant leaves at worst a
reservation whose ADD never returned (a leaked address), or, on the fallback
path, a stray temp file. Never a torn or empty reservation file, never a
half-written ``last_reserved_ip``. The reference ignores temp files (their names
are not addresses). After a power loss in non-durable mode the cursor may name
another address (it only decides where the next search starts).

Who cleans up. Temp files are created and removed within one lock hold, so one
seen while holding the lock is debris: a scan of the directory removes those
whose creating process is gone or that are older than ``STALE_TEMP_SECONDS``, and
so does :meth:`FileStore.sweep` (run by GC). Leaked reservations are reclaimed by
GC with the runtime's list of valid attachments.

Foreign content. Nothing in the directory is followed if it is a symlink (all
opens use ``O_NOFOLLOW`` relative to a directory descriptor opened with
``O_NOFOLLOW``). A name that is an address but is not a regular file, or whose
content is not a form either implementation writes, keeps its address occupied
and is never released (the reference could not match it either); GC leaves it.
Names that are not canonical addresses are ignored, like subdirectories.

Why it is fast. The reference reads every file on each ADD and DEL. This store
keeps an index (address -> owner, owner -> addresses, runs of taken addresses for
"first free") and keeps it exact while others write:

* Sealed directory states. At the end of a transaction that changed the
  directory, the store records the directory's state ``(dev, inode, mtime,
  ctime)`` such that any later change of its entries, by anyone, must alter it.
  If the last change was in an earlier tick of the coarse clock that stamps
  files, the state as it is does (a later change gets a later time). Otherwise
  the store sets the mtime itself to the fine-grained current time and reads
  back the ctime the kernel gave, making sure the two differ: a later change sets
  both to one time, so it cannot leave that state in place. (A store that cannot
  set the mtime, or that does not persist its index and so must not disturb
  others', waits holding the lock for the clock to pass the ctime, or for a
  small directory trusts nothing and rescans next time.) An unchanged state
  proves an unchanged set of names.
* A store that has served more than two operations is in steady use. With the
  default ``watch=None``, on a directory of at most ``_STATE_ONLY_UP_TO`` (32)
  reservations, where the file system gives every change made after a stat a
  later ctime than that stat saw (Linux's multigrain timestamps, 6.13 and later,
  on ext4, xfs and btrfs; probed once per file system by changing temporary names
  and reading the ctime after each), it follows the directory by its state
  alone: it seals the state with one ``fstat`` after each transaction that changed
  an entry (that stat itself makes the next change, by anyone, stamp a later
  ctime), and one ``fstat`` at the start of the next transaction shows whether
  anyone changed an entry since (a difference rescans, comparing every entry's
  inode and ctime). Every event a watched directory's writers make costs each
  watcher; on a small directory comparing its few entries is cheaper. While
  the state is unchanged it also trusts what it knows of the cursor files (their
  address and size) and keeps the one it writes open: both plugins rewrite a
  cursor (in place) only in the lock hold of a successful reserve, whose new
  reservation file changes the state; a state change forgets them and closes the
  descriptor (the file may have been replaced). It saves its index at most every
  ``_SAVE_EVERY`` seconds and when closed. What it cannot see: a name made by a
  writer that ignores the lock in the middle of one of the store's own
  transactions (the state it seals then includes that change; a watching store
  reads the event), learnt when the store next tries to take it (the
  create-if-absent fails) or at anyone's next change of the directory; and a
  cursor edited by hand and nothing else, read again at the next change (a
  cursor only says where the next search starts).
* Otherwise (``watch=True``, a larger directory, a file system without
  fine-grained change times) a store in steady use watches the directory
  with inotify, which reports which names changed; they are re-read under the
  lock before each operation (events are queued synchronously by the kernel, so
  everything the previous lock holder did is in the queue once we hold the lock).
  A queue overflow or a replaced directory causes a full rescan. The store's own
  events are not read back at the end of the operation that made them: it
  announces them to its watch, which leaves them out of the next look at the
  queue if they head it exactly as announced (an ADD closes its unnamed file
  last, and that event, ``#<inode>``, is one nobody else can make, so the kernel
  cannot fold anyone's later event into one of the ADD's own); otherwise every
  event is read, the store's own included. So each operation reads the queue once. While
  watching, the store also spares itself two costs per operation: the lock file's identity
  is checked only when an event names it (the path to the directory is still
  checked every time: renaming an ancestor leaves no event), and the cursor file
  stays open between transactions until an event says someone else wrote,
  replaced or removed it. Without either
  (``watch=False``, or a store used once, as by an executed plugin), an operation
  compares the directory's state with the sealed one and rescans on a difference,
  re-reading only files whose inode or ctime changed (or whose ctime is not older
  than the clock reading taken when the state was sealed).
* The persisted index (:mod:`cnicore.stores._indexfile`): a snapshot plus records
  of changes, each naming the sealed state it leaves, in
  ``<dataDir>/../.cnicore/<basename of dataDir>/<network>.index`` (beside the
  data directory, which stays exactly the reference's). Opening a store whose directory is in
  the state the file names reads that one file instead of every reservation; if
  the directory changed since (the reference plugin ran), the file is a starting
  point checked entry by entry without reading unchanged files. A store saves
  after each transaction that changed something, except that a watching store in
  steady use saves at most every ``_SAVE_EVERY`` seconds and when closed (in
  between, a store opened elsewhere checks entry by entry).

What the persisted index is trusted with, and what is verified again. The
directory's files are the truth; the index is a cache of them, and is believed
only as far as this says:

* Where it lives. The index directories and the file must be this user's and
  writable by nobody else (checked on the descriptors when the store first
  opens them: two ``fstat`` calls per store, none per operation), and are never
  reached through a symlink. ``<dataDir>/..`` may be world-writable (``/tmp``):
  a ``.cnicore`` someone else made there first, or a file or directory others
  can write, is treated as absent: never read, never written into (the store
  then reads the directory as if no index existed).
* The set of names. Believed only while the directory is in the sealed state the
  index names; any entry added, removed or replaced since (a replaced file has a
  new inode or ctime) makes every entry's inode and ctime be compared with the
  index, and the changed files read.
* Contents. Both plugins create a reservation file whole and never write it
  again, so the index holds each file's content as read once. Contents loaded
  from the file are read again before anything is released on their account,
  reported as an owner's, or listed (GC lists every owner first), so no
  address is ever released, or reported held, on the strength of a stale
  content. A file rewritten in place (same inode: only a hand edit does that)
  changes nothing in the directory's state. A watching store is told at once
  (inotify reports writes into files) and stays O(1) per operation. A store
  that does not watch (``watch=False``, an executed plugin, a long-lived store
  before its steady use, or following by state) compares every entry's inode
  and ctime (one ``lstat`` each) before any lookup by owner (ADD's duplicate
  check, DEL, CHECK, listing, GC) and re-reads the changed files; acting on one
  address alone compares that entry; starting the watch compares every entry
  once. (Following by state, the directory is in its sealed state there, so the
  entries compared are the index's, at most ``_STATE_ONLY_UP_TO`` of them, and
  each signature was taken by a stat after the file's last change: any later
  write stamps a later ctime.) So the new
  owner's ADD is refused as a duplicate, its DEL frees the file, and the old
  owner never gets it back. That is O(n) ``lstat`` calls for an executed ADD or
  DEL, where the reference reads every file for the same checks.

Where the code is. :class:`~cnicore.stores._filecore.FileStoreCore` (standard
library only, so that an executed plugin need not import netaddr or attrs) does
all of the above on integer keys and owner key texts;
:class:`FileStore` here is the store port on top of it. The in-memory index is
:class:`~cnicore.stores._keyindex.KeyIndex` (the file store's is its subclass
:class:`~cnicore.stores._index.ReservationIndex`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from netaddr import IPAddress  # type: ignore[import-untyped, unused-ignore]

from cnicore.spec._validate import validate_network_name
from cnicore.stores._filecore import (
    DEFAULT_DATA_DIR,
    INDEX_DIR_NAME,
    LAST_RESERVED_PREFIX,
    LOCK_NAME,
    STALE_TEMP_SECONDS,
    FileStoreCore,
    index_file_path,
)
from cnicore.stores._filecore import _key_from_name as _key_from_name  # (importers of the name from here)
from cnicore.stores._goip import canonical_ip
from cnicore.stores._index import ReservationIndex, ip_key, key_ip, owner_key, owner_keys
from cnicore.stores._port import Owner, Reservation

__all__ = ["DEFAULT_DATA_DIR", "INDEX_DIR_NAME", "LAST_RESERVED_PREFIX", "LOCK_NAME", "STALE_TEMP_SECONDS",
           "FileStore", "index_path"]


def index_path(data_dir: str | os.PathLike[str], network: str) -> Path | None:
    """Where a store keeps its persisted index: ``<dataDir>/../.cnicore/<basename of dataDir>/<network>.index``.

    None when ``data_dir`` has no parent to hold it (the root directory).
    """
    found = index_file_path(data_dir, network)
    return None if found is None else Path(found)


class FileStore(FileStoreCore):
    """Reservations as files in ``<data_dir>/<network>``, interoperable with the reference plugin.

    The store port (:class:`~cnicore.stores.IPStore`) on
    :class:`~cnicore.stores._filecore.FileStoreCore`: each method converts
    addresses to index keys and owners to key texts and back.

    Args:
        data_dir: ``ipam.dataDir`` (created if missing; default ``/var/lib/cni/networks``).
        network: the network name; validated so that it cannot leave ``data_dir``.
        durable: fsync files and the directory so that a power loss keeps every
            completed operation (slower; a process crash is safe either way).
        lock_timeout: seconds to wait for the lock before ``TryAgainLaterError``; None waits forever.
        watch: how a store in steady use (from its third operation) follows changes made by others. None
            (the default): by the directory's state alone while it holds at most ``_STATE_ONLY_UP_TO``
            reservations on a file system with fine-grained change times, else with inotify. True: always with
            inotify (also sees a name made by a writer that ignores the lock during one of the store's own
            transactions). False: never with inotify (state checks, and every entry compared before each
            lookup by owner). Where inotify is unavailable, state checks.
        persist_index: keep the index in :func:`index_path` (beside ``data_dir``) so that the next store
            opened on the directory need not read every reservation (a cache: failures to write it are
            ignored, and it is used only when it provably matches the directory).

    Raises:
        InvalidConfigError: bad network name, or ``data_dir`` is not a directory (code 7).
        IOFailureError: the directory cannot be created or opened (code 5).
        TryAgainLaterError: the lock was not obtained within ``lock_timeout`` (code 11).
    """

    _index_class = ReservationIndex
    _index: ReservationIndex

    def reserve(self, ip: IPAddress, owner: Owner, range_id: str) -> bool:
        """Create-if-absent the file for ``ip``; update ``last_reserved_ip.<range_id>``. Not idempotent."""
        return self.reserve_key(ip_key(canonical_ip(ip)), owner_key(owner), range_id)

    def release(self, ip: IPAddress, owner: Owner) -> bool:
        """Remove ``ip``'s file if ``owner`` holds it. Idempotent."""
        return self.release_key(ip_key(canonical_ip(ip)), owner_key(owner))

    def release_owner(self, owner: Owner) -> Sequence[IPAddress]:
        """Remove every file of ``owner`` (legacy fallback as in the reference). Idempotent."""
        return [key_ip(key) for key in self.release_owner_keys(*owner_keys(owner))]

    def find_owner(self, owner: Owner) -> Sequence[IPAddress]:
        """Addresses held by ``owner`` or its container's legacy form. Read-only."""
        return [key_ip(key) for key in self.find_owner_keys(*owner_keys(owner))]

    def reservation(self, ip: IPAddress) -> Reservation | None:
        """The reservation of ``ip`` or None. Read-only."""
        ip = canonical_ip(ip)
        with self.transaction():
            self._verify(ip_key(ip))
            return self._index.get(ip)

    def first_free(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        """Lowest address in ``[low, high]`` without a file. Read-only."""
        if low.version != high.version:
            raise ValueError("first_free: low and high must be of one family")
        found = self.first_free_key(ip_key(low), ip_key(high))
        return None if found is None else key_ip(found)

    def last_reserved(self, range_id: str) -> IPAddress | None:
        """Parse ``last_reserved_ip.<range_id>`` exactly as the reference (no trimming). Read-only."""
        key = self.last_reserved_key(range_id)
        return None if key is None else key_ip(key)

    def reservations(self) -> Iterator[Reservation]:
        """Snapshot of all reservations. Read-only."""
        with self.transaction():
            self._verify_all()
            return self._index.items()


def network_dir(data_dir: str | os.PathLike[str], network: str) -> Path:
    """The directory a network's reservations live in (validating the name)."""
    validate_network_name(network)
    return Path(os.fspath(data_dir) or DEFAULT_DATA_DIR) / network
