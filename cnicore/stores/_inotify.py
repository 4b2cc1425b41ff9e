"""A minimal Linux inotify watch on one directory, through ctypes (no third-party dependency).

The file store uses it to learn which names changed behind its back (the
reference plugin, another process) so that its in-memory index stays exact
without reading the whole directory on every operation.
"""

from __future__ import annotations

import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ctypes

# (ctypes is imported when a watch is first made: the file store imports the event masks below without it.)

__all__ = ["IN_CLOSE_WRITE", "IN_CREATE", "IN_DELETE", "IN_MODIFY", "DirectoryWatch"]

#: An event's mask: a file in the directory was written.
IN_MODIFY = _IN_MODIFY = 0x00000002
#: An event's mask: a file opened for writing was closed.
IN_CLOSE_WRITE = _IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_FROM = 0x00000040
_IN_MOVED_TO = 0x00000080
#: An event's mask: a name was created (a file made, or linked in).
IN_CREATE = _IN_CREATE = 0x00000100
#: An event's mask: a name was removed.
IN_DELETE = _IN_DELETE = 0x00000200
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC

_WATCH_MASK = (_IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
               | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_ONLYDIR)
# Events after which the watch no longer describes the directory: start again from a full scan.
_REBUILD = _IN_Q_OVERFLOW | _IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF
# Events after which the name no longer exists (as of that event).
_GONE = _IN_DELETE | _IN_MOVED_FROM
_HEADER = struct.Struct("iIII")
_UNNAMED = ord("#")
_BUFFER = 65536
# A read that returns less than this left the queue empty (the largest event is a header and NAME_MAX + 1 bytes).
_FULL = _BUFFER - _HEADER.size - 256

_libc: ctypes.CDLL | None = None


def _load_libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        import ctypes

        # The process's own symbols include libc's; looking the library up by name would run ldconfig.
        lib = ctypes.CDLL(None, use_errno=True)
        if not hasattr(lib, "inotify_init1"):
            lib = ctypes.CDLL("libc.so.6", use_errno=True)
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_init1.restype = ctypes.c_int
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        lib.inotify_add_watch.restype = ctypes.c_int
        _libc = lib
    return _libc


class DirectoryWatch:
    """Watch one directory for entries being created, removed, renamed or rewritten.

    Raises:
        OSError: inotify is unavailable (not Linux, limits reached); callers fall back.
    """

    def __init__(self, path: str) -> None:
        import ctypes

        libc = _load_libc()
        fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        wd = int(libc.inotify_add_watch(fd, os.fsencode(path), _WATCH_MASK))
        if wd < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, os.strerror(err), path)
        self._fd = fd
        self._own: list[tuple[int, bytes]] | None = None

    def fileno(self) -> int:
        """The inotify descriptor (-1 once closed)."""
        return int(self._fd)

    def expect(self, events: list[tuple[int, bytes]]) -> None:
        """Leave ``events`` out of the next :meth:`drain` if they head the queue, in this order, exactly.

        ``events`` are ``(mask, name)`` pairs this process has just caused, with the queue empty before them
        (drained with the lock held, and nobody who takes the lock has written since); events of unnamed files
        (``#<inode>``, never reported) are not listed and are passed over. The queue must end, after them, with
        an event nobody else can cause (say, the close of this process's unnamed file) or with a removal: the
        kernel merges an event into an identical one at the tail of the queue, so a tail that anyone could
        repeat would hide theirs. When the queue does not start with exactly these events, every event is
        reported, these included: a change read again costs a read, never a miss.
        """
        self._own = events

    def _own_end(self, data: bytes, own: list[tuple[int, bytes]]) -> int:
        """Where the expected events end in ``data`` (0 when it does not start with exactly them)."""
        unpack, size = _HEADER.unpack_from, _HEADER.size
        offset = 0
        end = len(data)
        for mask, name in own:
            while True:
                if offset + size > end:
                    return 0
                _wd, got, _cookie, length = unpack(data, offset)
                if not length or data[offset + size] != _UNNAMED:
                    break
                offset += size + length  # (an unnamed file's event: nobody's entry)
            if got != mask or data[offset + size:offset + size + length].rstrip(b"\0") != name:
                return 0
            offset += size + length
        return offset

    def drain(self) -> tuple[dict[bytes, bool], bool]:
        """Read every pending event: (each name that changed, as bytes, mapped to whether its last event removed
        it (deleted or renamed away); whether a full rescan is needed). Names starting with ``#`` are left out:
        the kernel names an unnamed file (O_TMPFILE) ``#<inode>``, and no such name is an address, a cursor
        or the lock file.

        Events announced with :meth:`expect` are left out when they head the queue. A failed read (or a closed
        watch) asks for a rescan: events may have been lost.
        """
        own, self._own = self._own, None
        try:
            data = os.read(self._fd, _BUFFER)
        except BlockingIOError:
            return {}, False  # (the common case of a quiet directory: nothing else to set up)
        except OSError:
            return {}, True
        names: dict[bytes, bool] = {}
        rebuild = False
        unpack, size = _HEADER.unpack_from, _HEADER.size
        offset = self._own_end(data, own) if own is not None else 0
        while True:
            end = len(data)
            while offset + size <= end:
                _wd, mask, _cookie, length = unpack(data, offset)
                if mask & _REBUILD:
                    rebuild = True
                # "#<inode>" names a file opened unnamed (O_TMPFILE): nobody's entry, whoever wrote it.
                if length and data[offset + size] != _UNNAMED:
                    names[data[offset + size:offset + size + length].rstrip(b"\0")] = bool(mask & _GONE)
                offset += size + length
            if end < _FULL:
                break
            offset = 0
            try:
                data = os.read(self._fd, _BUFFER)
            except BlockingIOError:
                break
            except OSError:
                return names, True
        names.pop(b"", None)
        return names, rebuild

    def close(self) -> None:
        """Stop watching. Idempotent."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
