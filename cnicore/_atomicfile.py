"""Replacing a file so that readers see the old one or the new one, never a mix.

Standard library only, and cheap to import: the runtime's cache and the
executed plugins' fake kernel state (:class:`cnicore._plugin_main.FakeState`)
both write through :func:`replace_file`.
"""

from __future__ import annotations

import os

__all__ = ["TEMP_PREFIX", "fsync_directory", "replace_file"]

#: The name prefix of the temporary files :func:`replace_file` writes beside their target.
TEMP_PREFIX = ".tmp."


def fsync_directory(directory: str) -> None:
    """Flush a directory's entries (a rename or unlink in it) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: str, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new one, never a mix.

    A temporary dot file (:data:`TEMP_PREFIX` and 16 random hex digits) in the
    same directory is created exclusively (never through a symlink), written,
    flushed, given exactly ``mode`` and renamed over ``path``. The directory is
    not flushed (see :func:`fsync_directory`) and must exist.

    Raises:
        OSError: the write failed (the temporary file is removed).
    """
    tmp = os.path.join(os.path.dirname(path), TEMP_PREFIX + os.urandom(8).hex())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)  # exactly this mode, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:  # noqa: SIM105 - contextlib costs an exec'd plugin its import
            os.unlink(tmp)
        except OSError:
            pass
        raise
