"""Opening and reading a file cnicore did not create: never blocking, regular files only, never without bound.

Every file cnicore opens that someone else may have put in place (a configuration,
a store's ``lock``, a cache entry, the host's ``resolv.conf``, the fake kernel's
state...) goes through :func:`open_regular`, and every such read through
:func:`read_regular` or :func:`read_open`:

* the open never blocks: ``O_NONBLOCK`` (a FIFO opens at once instead of waiting for
  a writer) and ``O_NOCTTY``;
* what was opened must be a regular file, checked on the descriptor (``fstat``), so
  the check and the read see the same file: a FIFO, a socket, ``/dev/zero`` or a
  directory, directly or through a symlink, is an ``OSError`` whose text says what
  it is;
* every read has a limit: a larger file is an ``OSError`` (``EFBIG``) rather than
  memory exhausted, or, where only the start matters, its first bytes.

Errors are ``OSError`` (with ``errno``, ``strerror`` and the file name) so each
caller keeps translating them into its own CNI error, as for any other failure to
read. Standard library only: executed plugins use it.
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["MAX_DOCUMENT_BYTES", "open_regular", "read_open", "read_regular", "untrusted_reason"]

#: The largest document cnicore reads whole (a configuration, a cache entry, a journal, ``resolv.conf``, the
#: fake kernel's state): far above any real one, far below what would exhaust memory.
MAX_DOCUMENT_BYTES = 64 << 20

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike[str], *, dir_fd: int | None = None, follow_symlinks: bool = True,
                 flags: int = 0, create_mode: int | None = None) -> tuple[int, os.stat_result]:
    """Open ``path`` without blocking; return the descriptor and its ``fstat``, or raise if it is no regular file.

    Args:
        path: the file (relative to ``dir_fd`` when given).
        dir_fd: a directory descriptor ``path`` is relative to.
        follow_symlinks: False refuses a symlink itself (``ELOOP``).
        flags: more ``os.O_*`` flags (``os.O_RDWR`` replaces the read-only access mode).
        create_mode: create the file with this mode when it does not exist.

    Raises:
        OSError: what ``open`` raises; ``IsADirectoryError`` for a directory; ``EINVAL``
            "not a regular file (a FIFO)" and the like.
    """
    all_flags = _FLAGS | flags | (0 if follow_symlinks else os.O_NOFOLLOW)
    if create_mode is not None:
        all_flags |= os.O_CREAT
    fd = os.open(path, all_flags, 0o600 if create_mode is None else create_mode, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))  # (IsADirectoryError)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"not a regular file ({_kind(st.st_mode)})", os.fspath(path))
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_open(fd: int, limit: int, *, path: str | os.PathLike[str] = "", whole: bool = True,
              size: int = 0) -> bytes:
    """Read ``fd`` from where it stands to its end, at most ``limit`` bytes.

    With ``whole`` (the default) a file with more than ``limit`` bytes is an error
    (``EFBIG``); otherwise its first ``limit`` bytes are returned. ``size`` (the
    file's ``st_size``, when known) lets a file be read in one call.
    """
    if whole and size > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", os.fspath(path))  # (without reading it first)
    chunks: list[bytes] = []
    left = limit + 1 if whole else limit
    step = max(size + 1, 1 << 16)
    while left > 0:
        chunk = os.read(fd, min(left, step))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", os.fspath(path))
    return data


def read_regular(path: str | os.PathLike[str], limit: int, *, dir_fd: int | None = None,
                 follow_symlinks: bool = True, whole: bool = True) -> bytes:
    """The content of the regular file ``path``, at most ``limit`` bytes (see :func:`read_open`).

    Raises:
        OSError: it cannot be opened, is no regular file, or (with ``whole``) holds more than ``limit`` bytes.
    """
    fd, st = open_regular(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
    try:
        return read_open(fd, limit, path=path, whole=whole, size=st.st_size)
    finally:
        os.close(fd)


def untrusted_reason(st: os.stat_result, *, shared_directory: bool = False) -> str:
    """Why what ``st`` describes cannot be trusted to hold only what this user put there; ``""`` when it can.

    Trusted: owned by this user (the effective uid) and writable by nobody else.
    With ``shared_directory``, a directory of root's, or one writable by others
    but sticky (``/tmp``), is trusted too: there nobody else can replace or
    remove what this user made.
    """
    uid = os.geteuid()
    if st.st_uid != uid and not (shared_directory and st.st_uid == 0):
        return f"owned by uid {st.st_uid}, not by uid {uid}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (shared_directory and st.st_mode & stat.S_ISVTX):
        return f"writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    return ""
