"""Replacing a file so that readers see the old one or the new one, never a mix; telling abandoned temporary files.

Standard library only, and cheap to import: the runtime's cache and the
executed plugins' fake kernel state (:class:`cnicore._plugin_main.FakeState`)
both write through :func:`replace_file`. :func:`temp_abandoned` is the rule by
which the runtime's journal removes a temporary file a dead writer left.
"""

from __future__ import annotations

import os

__all__ = ["STALE_TEMP_SECONDS", "TEMP_PREFIX", "fsync_directory", "pid_alive", "replace_file", "temp_abandoned",
           "temp_writer_pid"]

#: The name prefix of the temporary files :func:`replace_file` writes beside their target.
TEMP_PREFIX = ".tmp."
#: A temporary file unchanged for longer than this is abandoned, whatever its writer's pid says (a writer holds
#: its temporary name for well under a second; the pid may have been reused, or belong to another pid namespace).
STALE_TEMP_SECONDS = 30.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as existing)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # (a pid beyond the C type's range exists nowhere)
        return False
    except PermissionError:
        return True
    return True


def temp_writer_pid(name: str, prefix: str = TEMP_PREFIX) -> int | None:
    """The writer's pid in a temporary file's name (``<prefix><pid>-<random>...``); None when the name holds none."""
    pid_text, dash, _ = name[len(prefix):].partition("-")
    return int(pid_text) if dash and pid_text.isdigit() else None


def temp_abandoned(writer_pid: int | None, mtime: float, now: float, *,
                   stale_after: float = STALE_TEMP_SECONDS) -> bool:
    """Whether a temporary file last modified at ``mtime`` is abandoned by its writer, seen at ``now``.

    It is when it is older than ``stale_after`` seconds (:data:`STALE_TEMP_SECONDS`
    unless a caller that cannot tell its writers waits longer), or when its writer
    (``writer_pid``; None when its name does not say) no longer exists. This
    process's own pid always counts as alive: another of its threads may be the writer.
    """
    if now - mtime > stale_after:
        return True
    return writer_pid is not None and writer_pid > 0 and writer_pid != os.getpid() and not pid_alive(writer_pid)


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
