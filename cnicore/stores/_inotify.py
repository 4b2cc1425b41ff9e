"""A minimal Linux inotify watch on one directory, through ctypes (no third-party dependency).

The file store uses it to learn which names changed behind its back (the
reference plugin, another process) so that its in-memory index stays exact
without reading the whole directory on every operation.
"""

from __future__ import annotations

import ctypes
import os
import struct

__all__ = ["DirectoryWatch"]

_IN_MODIFY = 0x00000002
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_FROM = 0x00000040
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_DELETE = 0x00000200
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
_BUFFER = 65536
# A read that returns less than this left the queue empty (the largest event is a header and NAME_MAX + 1 bytes).
_FULL = _BUFFER - _HEADER.size - 256

_libc: ctypes.CDLL | None = None


def _load_libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
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

    def fileno(self) -> int:
        """The inotify descriptor (-1 once closed)."""
        return int(self._fd)

    def drain(self) -> tuple[dict[bytes, bool], bool]:
        """Read every pending event: (each name that changed, as bytes, mapped to whether its last event removed
        it (deleted or renamed away); whether a full rescan is needed).

        A failed read (or a closed watch) asks for a rescan: events may have been lost.
        """
        try:
            data = os.read(self._fd, _BUFFER)
        except BlockingIOError:
            return {}, False  # (the common case of a quiet directory: nothing else to set up)
        except OSError:
            return {}, True
        names: dict[bytes, bool] = {}
        rebuild = False
        unpack, size = _HEADER.unpack_from, _HEADER.size
        while True:
            offset = 0
            end = len(data)
            while offset + size <= end:
                _wd, mask, _cookie, length = unpack(data, offset)
                if mask & _REBUILD:
                    rebuild = True
                if length:
                    names[data[offset + size:offset + size + length].rstrip(b"\0")] = bool(mask & _GONE)
                offset += size + length
            if end < _FULL:
                break
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
