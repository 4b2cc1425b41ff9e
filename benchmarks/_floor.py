"""Floors: allocate+release cycles on the reference layout doing only the system calls the layout makes unavoidable.

A floor is what nothing can beat without skipping work: no index, no
validation, no search for a free address (each process walks its own stretch of
the range), no checking who holds the lock file or what a cursor file holds.
They are written in Python, like cnicore, so that a ratio compares designs, not
languages. Every floor holds the network's lock file and directory open for the
whole run, as a long-lived store does, so none of that appears per cycle.

:func:`minimal_cycles` - the least any allocator on this layout can do.
One cycle is 11 system calls::

    ADD  flock(lock, LOCK_EX)
         openat(dir, "<ip>", O_WRONLY|O_CREAT|O_EXCL)   the create-if-absent
         write(fd, "<id>\\r\\n<ifname>")
         close(fd)
         openat(dir, "last_reserved_ip.0", O_WRONLY)    rewritten in place: no O_TRUNC (see below)
         pwrite64(fd, "<ip>", 0)
         close(fd)
         flock(lock, LOCK_UN)
    DEL  flock(lock, LOCK_EX)
         unlinkat(dir, "<ip>")
         flock(lock, LOCK_UN)

A crash between the ``openat`` and the ``write`` leaves an empty reservation
file: an address held by nobody GC can name. And the cursor is never cut short,
so a shorter address leaves the end of the longer one behind it (a wrong cursor
only moves where the next search starts; a floor may be that generous).

:func:`crash_safe_cycles` - the least a crash-safe allocator can do: a
reservation file appears complete or not at all (what cnicore's file store
promises). One cycle is 12 system calls::

    ADD  flock(lock, LOCK_EX)
         openat(dir, ".", O_TMPFILE|O_WRONLY)           an unnamed file
         write(fd, "<id>\\r\\n<ifname>")
         linkat(AT_FDCWD, "/proc/self/fd/<fd>", dir, "<ip>", AT_SYMLINK_FOLLOW)
                                                        named complete, or EEXIST: the create-if-absent
         close(fd)
         openat(dir, "last_reserved_ip.0", O_WRONLY)
         pwrite64(fd, "<ip>", 0)                        a few bytes in one write: never torn
         close(fd)
         flock(lock, LOCK_UN)
    DEL  flock(lock, LOCK_EX)
         unlinkat(dir, "<ip>")
         flock(lock, LOCK_UN)

:func:`reference_cycles` - information only: the system calls the reference
plugin's own writes make (the cursor rewritten with ``O_TRUNC``, as Go's
``os.WriteFile`` does). On ext4 truncating a file that had data and writing it
again makes the kernel flush it at close (``auto_da_alloc``), so this is no
floor: it carries that flush. 11 system calls per cycle, one of them costly.

:func:`store_calls_cycles` - no floor: a ceiling, information only. The
system calls the file store makes for one cycle in steady state (as ``strace``
shows them: the benchmark counts both and prints them side by side) where it
follows its directory by the directory's state alone (a small directory on a
file system that stamps every change after a stat at fine grain: Linux 6.13 or
later on ext4, as the benchmark's own), and none of its bookkeeping: no index,
signatures or cursor cache, no name checked. What the store's design costs in
the kernel, so that the gap between it and the store is the store's Python. 16
system calls per cycle::

    ADD  flock(lock, LOCK_EX)
         fstat(dir)                                     the directory's state: unchanged since it was sealed
         openat(dir, ".", O_TMPFILE|O_WRONLY)
         write(fd, "<id>\r\n<ifname>")
         linkat(AT_FDCWD, "/proc/self/fd/<fd>", dir, "<ip>", AT_SYMLINK_FOLLOW)
         fstat(fd)                                      the new file's signature (inode, ctime)
         pwrite64(cursor, "<ip>", 0)                    the cursor held open, its size known: both plugins
                                                        rewrite it only beside a new reservation, which
                                                        changes the state
         close(fd)
         fstat(dir)                                     the state sealed again: any later change stamps a
                                                        later ctime
         flock(lock, LOCK_UN)
    DEL  flock(lock, LOCK_EX)
         fstat(dir)
         newfstatat(dir, "<ip>")                        the owner lookup compares each entry's signature
         unlinkat(dir, "<ip>")
         fstat(dir)
         flock(lock, LOCK_UN)

The store also checks that its path still names the directory (a ``stat``) at
most once a second, and saves its index a few times a second: no call per cycle.

:func:`index_bound_cycles` - no floor: a bound, information only. The calls of
:func:`store_calls_cycles` (the same 16) plus the least bookkeeping that keeps an
index exact for its own writes and answers a lookup by owner in O(1), done by the
file store's own pieces, not copies of them: the owner checked and turned into file
content (``_owner_content``), the file name formatted (``_name``), the index
(:class:`~cnicore.stores._keyindex.KeyIndex`: address to owner, owner to addresses,
runs of taken addresses) updated by ADD and DEL, each file's signature recorded by
the ADD and compared by the DEL's lookup, the DEL's addresses found by owner
(``release_owner_keys``), the directory's state compared and sealed. Left out: the
transaction (thread lock, fork and re-entrance checks, waiting for a busy lock), the
persisted index, the cursor's cache, and taking in others' changes (like the
ceiling, it compares the state and ignores a difference). What a store in Python
reaches with only the bookkeeping it cannot do without.

:func:`watching_calls_cycles` - the same for a store that watches its directory
with inotify (a directory past ``_STATE_ONLY_UP_TO`` reservations, or a file
system without fine-grained change times): used instead where the store watches.
15 system calls per cycle::

    ADD  flock(lock, LOCK_EX)
         read(inotify, ...)                             what changed since: the last DEL's own event, then
                                                        anyone else's
         newfstatat(AT_FDCWD, "<network dir>")          the path still names the directory held open
         openat(dir, ".", O_TMPFILE|O_WRONLY)
         write(fd, "<id>\r\n<ifname>")
         linkat(AT_FDCWD, "/proc/self/fd/<fd>", dir, "<ip>", AT_SYMLINK_FOLLOW)
         fstat(fd)                                      the new file's signature (inode, ctime)
         pwrite64(cursor, "<ip>", 0)                    the cursor held open between operations
         close(fd)                                      last: its event is one nobody else can make
         flock(lock, LOCK_UN)
    DEL  flock(lock, LOCK_EX)
         read(inotify, ...)                             the ADD's own events, then anyone else's
         newfstatat(AT_FDCWD, "<network dir>")
         unlinkat(dir, "<ip>")
         flock(lock, LOCK_UN)

The watching store reads its own events at the start of its next operation,
which has to read the queue anyway, rather than at the end of the one that made
them (it announces them to its watch, which leaves them out): one read per
operation.

Each ceiling waits for a busy lock in a blocking ``flock``, as the floors do
(the store polls, so that its wait can time out).

Why no ``O_TRUNC`` in the first two: the cursor holds an address text that a
new one overwrites from offset 0. Why the lock and directory stay open: a
store in steady use keeps them.
"""

from __future__ import annotations

import fcntl
import os

__all__ = ["CEILINGS", "FLOORS", "SYSCALLS_PER_CYCLE", "crash_safe_cycles", "index_bound_cycles", "minimal_cycles",
           "reference_cycles", "store_calls_cycles", "watching_calls_cycles"]

_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_CURSOR = "last_reserved_ip.0"

#: System calls per allocate+release cycle of each floor: (ADD, DEL), as documented above.
SYSCALLS_PER_CYCLE = {"minimal": (8, 3), "crash-safe": (9, 3), "reference": (8, 3), "store calls": (10, 6),
                      "store calls, watching": (10, 5), "store calls + index": (10, 6)}


def _ip_text(value: int) -> str:
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


def _first(first_ip: str) -> int:
    a, b, c, d = (int(part) for part in first_ip.split("."))
    return a << 24 | b << 16 | c << 8 | d


def _open_network(network_dir: str) -> tuple[int, int]:
    os.makedirs(network_dir, exist_ok=True)
    dir_fd = os.open(network_dir, os.O_RDONLY | os.O_DIRECTORY)
    lock_fd = os.open("lock", os.O_RDONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
    # The cursor exists from the start, as it does after a network's first ADD.
    fd = os.open(_CURSOR, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
    os.close(fd)
    return dir_fd, lock_fd


def _open_network_and_cursor(network_dir: str) -> tuple[int, int, int]:
    """:func:`_open_network` plus the cursor held open, as a long-lived store holds it (the ceilings and bound)."""
    if not _O_TMPFILE:
        raise OSError("O_TMPFILE is not available here")
    dir_fd, lock_fd = _open_network(network_dir)
    return dir_fd, lock_fd, os.open(_CURSOR, os.O_WRONLY, dir_fd=dir_fd)


def minimal_cycles(network_dir: str, count: int, *, first_ip: str = "10.128.0.2", owner: str = "c") -> None:
    """Run ``count`` cycles of the minimal layout floor in ``network_dir`` (see the module docstring)."""
    dir_fd, lock_fd = _open_network(network_dir)
    flock, lock_ex, lock_un = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN
    create = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    base = _first(first_ip)
    try:
        for i in range(count):
            name = _ip_text(base + i)
            flock(lock_fd, lock_ex)
            try:
                fd = os.open(name, create, 0o600, dir_fd=dir_fd)
            except FileExistsError:
                flock(lock_fd, lock_un)
                continue
            os.write(fd, f"{owner}-{i}\r\neth0".encode())
            os.close(fd)
            fd = os.open(_CURSOR, os.O_WRONLY, dir_fd=dir_fd)
            os.pwrite(fd, name.encode(), 0)
            os.close(fd)
            flock(lock_fd, lock_un)
            flock(lock_fd, lock_ex)
            os.unlink(name, dir_fd=dir_fd)
            flock(lock_fd, lock_un)
    finally:
        os.close(lock_fd)
        os.close(dir_fd)


def crash_safe_cycles(network_dir: str, count: int, *, first_ip: str = "10.128.0.2", owner: str = "c") -> None:
    """Run ``count`` cycles of the crash-safe floor in ``network_dir`` (see the module docstring)."""
    if not _O_TMPFILE:
        raise OSError("O_TMPFILE is not available here")
    dir_fd, lock_fd = _open_network(network_dir)
    flock, lock_ex, lock_un = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN
    unnamed = _O_TMPFILE | os.O_WRONLY
    base = _first(first_ip)
    try:
        for i in range(count):
            name = _ip_text(base + i)
            flock(lock_fd, lock_ex)
            fd = os.open(".", unnamed, 0o600, dir_fd=dir_fd)
            try:
                os.write(fd, f"{owner}-{i}\r\neth0".encode())
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd)
            except FileExistsError:
                flock(lock_fd, lock_un)
                continue
            finally:
                os.close(fd)
            fd = os.open(_CURSOR, os.O_WRONLY, dir_fd=dir_fd)
            os.pwrite(fd, name.encode(), 0)
            os.close(fd)
            flock(lock_fd, lock_un)
            flock(lock_fd, lock_ex)
            os.unlink(name, dir_fd=dir_fd)
            flock(lock_fd, lock_un)
    finally:
        os.close(lock_fd)
        os.close(dir_fd)


def reference_cycles(network_dir: str, count: int, *, first_ip: str = "10.128.0.2", owner: str = "c") -> None:
    """Run ``count`` cycles writing as the reference does (cursor with ``O_TRUNC``): an information row, no floor."""
    dir_fd, lock_fd = _open_network(network_dir)
    flock, lock_ex, lock_un = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN
    create = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    base = _first(first_ip)
    try:
        for i in range(count):
            name = _ip_text(base + i)
            flock(lock_fd, lock_ex)
            try:
                fd = os.open(name, create, 0o600, dir_fd=dir_fd)
            except FileExistsError:
                flock(lock_fd, lock_un)
                continue
            os.write(fd, f"{owner}-{i}\r\neth0".encode())
            os.close(fd)
            fd = os.open(_CURSOR, os.O_WRONLY | os.O_TRUNC, dir_fd=dir_fd)
            os.write(fd, name.encode())
            os.close(fd)
            flock(lock_fd, lock_un)
            flock(lock_fd, lock_ex)
            os.unlink(name, dir_fd=dir_fd)
            flock(lock_fd, lock_un)
    finally:
        os.close(lock_fd)
        os.close(dir_fd)


def store_calls_cycles(network_dir: str, count: int, *, first_ip: str = "10.128.0.2", owner: str = "c") -> None:
    """Run ``count`` cycles of the file store's system calls following by state, without its bookkeeping."""
    dir_fd, lock_fd, cursor = _open_network_and_cursor(network_dir)
    flock, lock_ex, lock_un = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN
    unnamed = _O_TMPFILE | os.O_WRONLY
    fstat = os.fstat
    base = _first(first_ip)
    try:
        for i in range(count):
            name = _ip_text(base + i)
            flock(lock_fd, lock_ex)
            fstat(dir_fd)
            fd = os.open(".", unnamed, 0o600, dir_fd=dir_fd)
            try:
                os.write(fd, f"{owner}-{i}\r\neth0".encode())
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd)
                fstat(fd)
            except FileExistsError:
                os.close(fd)
                flock(lock_fd, lock_un)
                continue
            os.pwrite(cursor, name.encode(), 0)
            os.close(fd)
            fstat(dir_fd)
            flock(lock_fd, lock_un)
            flock(lock_fd, lock_ex)
            fstat(dir_fd)
            os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            os.unlink(name, dir_fd=dir_fd)
            fstat(dir_fd)
            flock(lock_fd, lock_un)
    finally:
        os.close(cursor)
        os.close(lock_fd)
        os.close(dir_fd)


def index_bound_cycles(network_dir: str, count: int, *, first_ip: str = "10.128.0.2", owner: str = "c") -> None:
    """Run ``count`` cycles of the file store's calls with only its indispensable bookkeeping (module docstring)."""
    from cnicore.stores._filecore import _name, _owner_content, _state
    from cnicore.stores._keyindex import KeyIndex, release_owner_keys

    dir_fd, lock_fd, cursor = _open_network_and_cursor(network_dir)
    flock, lock_ex, lock_un = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN
    unnamed = _O_TMPFILE | os.O_WRONLY
    fstat = os.fstat
    index = KeyIndex()
    signatures: dict[int, tuple[int, int]] = {}
    sealed = _state(fstat(dir_fd))
    others = 0  # operations that found the state changed by someone else (counted, not taken in: see above)
    base = _first(first_ip)
    try:
        for i in range(count):
            key, text = base + i, f"{owner}-{i} eth0"
            content, name = _owner_content(text), _name(key)
            flock(lock_fd, lock_ex)
            if _state(fstat(dir_fd)) != sealed:
                others += 1
            if index.has_key(key):
                flock(lock_fd, lock_un)
                continue
            fd = os.open(".", unnamed, 0o600, dir_fd=dir_fd)
            try:
                os.write(fd, content)
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd)
                st = fstat(fd)
            except FileExistsError:
                os.close(fd)
                flock(lock_fd, lock_un)
                continue
            index.put_key(key, text)
            signatures[key] = (st.st_ino, st.st_ctime_ns)
            os.pwrite(cursor, name.encode(), 0)
            os.close(fd)
            sealed = _state(fstat(dir_fd))
            flock(lock_fd, lock_un)
            flock(lock_fd, lock_ex)
            if _state(fstat(dir_fd)) != sealed:
                others += 1
            entries = index.keys()  # (the store's lookup compares every entry it holds)
            for held in entries:
                st = os.stat(_name(held), dir_fd=dir_fd, follow_symlinks=False)
                if signatures.get(held) != (st.st_ino, st.st_ctime_ns):
                    raise RuntimeError(f"{_name(held)} was rewritten: nobody writes here but this loop")
            for released in release_owner_keys(index, text, f"{owner}-{i}"):
                os.unlink(_name(released), dir_fd=dir_fd)
                index.discard_key(released)
                del signatures[released]
            sealed = _state(fstat(dir_fd))
            flock(lock_fd, lock_un)
    finally:
        os.close(cursor)
        os.close(lock_fd)
        os.close(dir_fd)


def watching_calls_cycles(network_dir: str, count: int, *, first_ip: str = "10.128.0.2", owner: str = "c") -> None:
    """Run ``count`` cycles of a watching file store's system calls and watch, without its bookkeeping."""
    # The store's own watch (same events asked for) and read sizes, imported here: only this contender needs them.
    from cnicore.stores._inotify import _BUFFER, _FULL, DirectoryWatch

    dir_fd, lock_fd, cursor = _open_network_and_cursor(network_dir)
    watch = DirectoryWatch(f"/proc/self/fd/{dir_fd}")
    flock, lock_ex, lock_un = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN
    unnamed = _O_TMPFILE | os.O_WRONLY
    events = watch.fileno()
    base = _first(first_ip)

    def drain() -> None:
        try:
            while len(os.read(events, _BUFFER)) >= _FULL:  # (a full read may have left more behind)
                pass
        except BlockingIOError:
            pass

    try:
        for i in range(count):
            name = _ip_text(base + i)
            flock(lock_fd, lock_ex)
            drain()
            os.stat(network_dir, follow_symlinks=False)
            fd = os.open(".", unnamed, 0o600, dir_fd=dir_fd)
            try:
                os.write(fd, f"{owner}-{i}\r\neth0".encode())
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd)
                os.fstat(fd)
            except FileExistsError:
                os.close(fd)
                flock(lock_fd, lock_un)
                continue
            os.pwrite(cursor, name.encode(), 0)
            os.close(fd)
            flock(lock_fd, lock_un)
            flock(lock_fd, lock_ex)
            drain()
            os.stat(network_dir, follow_symlinks=False)
            os.unlink(name, dir_fd=dir_fd)
            flock(lock_fd, lock_un)
    finally:
        watch.close()
        os.close(cursor)
        os.close(lock_fd)
        os.close(dir_fd)


#: The floors by name, as the throughput figure reports them.
FLOORS = {"minimal": minimal_cycles, "crash-safe": crash_safe_cycles, "reference": reference_cycles}
#: Anchors that are no floor, by name: information rows only (the one that mirrors what the store does where it
#: runs is used: see benchmarks.alloc.store_ceiling).
CEILINGS = {"store calls": store_calls_cycles, "store calls, watching": watching_calls_cycles,
            "store calls + index": index_bound_cycles}
