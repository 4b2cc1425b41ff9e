"""The one way cnicore runs code inside another network namespace: a short-lived thread that joins it.

``setns(2)`` changes the namespace of the calling *thread* only. So work meant
for another namespace runs in a thread that joins the namespace first: sockets
it opens (rtnetlink, for instance) stay bound to that namespace for their whole
life, and ``/proc/sys/net`` opened from it shows that namespace's settings. The
caller's threads never change namespace, which keeps this safe in a process
that runs other threads, and nothing forks. The namespace is opened by path
with ``O_RDONLY`` only, so a missing namespace is an error, never created by
accident. The worker goes back to its first namespace before it ends: a thread
that exits inside another namespace costs the kernel noticeably more to tear
down.

On the way to a namespace only the interpreter's built-in modules are imported
(``_thread``, and before Python 3.12, which has ``os.setns``, the C half of
:mod:`ctypes`: ``_ctypes`` alone calls libc's ``setns``; the ``ctypes`` package
defines dozens of types on import, a millisecond of every exec'd bridge's
start), so the exec'd plugins that use it start without ``threading``; only a
path refused as no namespace costs the ``ctypes`` package (for its file
system's magic number). Errors are cnicore errors, translated here.
"""

from __future__ import annotations

import _thread
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    _T = TypeVar("_T")

__all__ = ["open_netns", "run_in_netns", "setns"]

_CLONE_NEWNET = 0x40000000
_OWN = "/proc/thread-self/ns/net"
# Where the reference's ns.GetNS finds a namespace: nsfs, or procfs (namespace files before Linux 3.19).
_NSFS_MAGIC = 0x6E736673
_PROC_FD = "/proc/self/fd"
_PROCFS_MAGIC = 0x9FA0
_nsfs_dev = -1
_libc_setns: Any = None


def _load_libc_setns() -> Any:
    """libc's ``int setns(int fd, int nstype)``, as ``ctypes.CDLL(None, use_errno=True).setns`` is, on ``_ctypes``."""
    import _ctypes

    class CInt(_ctypes._SimpleCData):  # type: ignore[type-arg]  # what ctypes.c_int is
        _type_ = "i"

    class Function(_ctypes.CFuncPtr):  # a CDLL function: C calling convention, errno saved, int result
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = CInt

    class Process:  # the symbols already loaded in this process (dlopen(NULL))
        _handle = _ctypes.dlopen(None, os.RTLD_LOCAL)  # type: ignore[arg-type]  # NULL: this process (typeshed omits it)

    return Function(("setns", Process))  # type: ignore[arg-type]  # any object with _handle


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open at ``fd`` (``OSError`` on failure)."""
    global _libc_setns
    native = getattr(os, "setns", None)  # Python 3.12+
    if native is not None:
        native(fd, _CLONE_NEWNET)
        return
    if _libc_setns is None:
        _libc_setns = _load_libc_setns()
    if _libc_setns(fd, _CLONE_NEWNET) != 0:
        import _ctypes

        code = _ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _nsfs_device() -> int:
    """The device of the namespace file system (nsfs): every namespace file, bind mounts included, is on it.

    -1 when this thread's own namespace file cannot be seen (no ``/proc``): then the magic number decides.
    """
    global _nsfs_dev
    if _nsfs_dev < 0:
        try:
            _nsfs_dev = os.stat(_OWN).st_dev
        except OSError:
            return -1
    return _nsfs_dev


def _fs_magic(fd: int) -> int:
    """``fstatfs(fd).f_type``, the magic number of the file system holding ``fd`` (OSError when it fails).

    Only when the device does not already tell: ``ctypes`` costs an exec'd plugin its import, and Python's
    ``os.statvfs`` leaves the magic out.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(512)  # struct statfs (120 bytes on 64-bit Linux), f_type first
    if libc.fstatfs(fd, buf) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    # f_type is glibc's __fsword_t: a long, except on s390x (an unsigned int).
    kind = ctypes.c_uint if os.uname().machine == "s390x" else ctypes.c_long
    return int(kind.from_buffer(buf).value)


def _go_errno_text(code: int | None) -> str:
    """An errno as Go's ``syscall.Errno`` prints it (:func:`cnicore._gofmt.go_errno` of the C library's text)."""
    from cnicore._gofmt import go_errno

    return go_errno(os.strerror(code) if code else "unknown error")


def _cannot_look(path: str, exc: OSError) -> Exception:
    """The reference's ``ns.GetNS`` when it cannot look at ``path``: ``failed to Statfs "<path>": <reason>``.

    A missing path is :class:`~cnicore.NamespaceNotFoundError` (a DEL then succeeds, as the reference's); a
    file on the way, a name too long or a loop of links cannot name a namespace either:
    :class:`~cnicore.InvalidNetNSError`, with the reference's code, 999. Any other reason (no permission, an
    I/O error) is the errno's own class, with the same words.
    """
    if isinstance(exc, FileNotFoundError):
        from ._kernel import namespace_gone

        return namespace_gone(path)
    import errno

    from cnicore._errors import InvalidNetNSError
    from cnicore._gofmt import go_quote

    msg = f"failed to Statfs {go_quote(path)}: {_go_errno_text(exc.errno)}"
    if exc.errno in (errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP):
        return InvalidNetNSError(msg, code=999)
    from ._kernel import error_from_errno

    return type(error_from_errno(exc.errno, ""))(msg)


def _not_a_namespace(path: str, magic: int) -> Exception:
    """The reference's ``ns.GetNS`` refusal of a path on another file system than nsfs (or procfs).

    Its words and code (999): ``unknown FS magic on "<path>": <magic in hex>``. The spec has code 8 for an
    invalid namespace, but the reference's refusal is a plain error, which its plugins print with 999.
    """
    from cnicore._errors import InvalidNetNSError
    from cnicore._gofmt import go_quote

    return InvalidNetNSError(f"unknown FS magic on {go_quote(path)}: {magic:x}", code=999)


def open_netns(path: str | None) -> int:
    """An ``O_RDONLY | O_CLOEXEC`` fd on the namespace at ``path`` (None: the calling thread's).

    ``path`` must name a namespace file (nsfs: ``/proc/<pid>/ns/net``, a bind mount of one; or, as the
    reference also takes, a file on procfs): anything else is refused as the reference's ``ns.GetNS`` refuses
    it. What is checked is what gets opened: the path is opened with ``O_PATH`` (which never blocks and opens
    no device), that descriptor is checked, and only then is the same file opened for reading, through
    ``/proc/self/fd``. So a FIFO never blocks a plugin, even one put there in the meantime. The caller closes
    the descriptor.

    Raises:
        NamespaceNotFoundError: ``path`` does not exist.
        InvalidNetNSError: (code 999, as the reference) ``path`` is not a namespace file, or cannot name one
            (``failed to Statfs "<path>": <reason>``).
        CNIError: the errno's cnicore error otherwise.
    """
    if path is None:
        try:
            return os.open(_OWN, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            from ._kernel import error_from_errno

            raise error_from_errno(exc.errno, f"open netns {_OWN}") from exc
    try:
        handle = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise _cannot_look(path, exc) from exc
    try:
        checked = os.fstat(handle)
        if checked.st_dev != _nsfs_device():
            magic = _fs_magic(handle)
            if magic not in (_NSFS_MAGIC, _PROCFS_MAGIC):
                raise _not_a_namespace(path, magic)
        try:
            return os.open(f"{_PROC_FD}/{handle}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if os.path.isdir(_PROC_FD):
                raise
        # No /proc to reopen the very file through: the path again, never blocking, and only while it still
        # names the file that was checked.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        try:
            opened = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            os.close(fd)
            from cnicore._errors import InvalidNetNSError
            from cnicore._gofmt import go_quote

            raise InvalidNetNSError(f"{go_quote(path)} was replaced while it was opened", code=999)
        return fd
    except FileNotFoundError as exc:
        from ._kernel import namespace_gone

        raise namespace_gone(path) from exc
    except OSError as exc:
        from ._kernel import error_from_errno

        raise error_from_errno(exc.errno, f"open netns {path}") from exc
    finally:
        os.close(handle)


def _switch_failed(path: str, exc: OSError) -> Exception:
    """A refused ``setns`` (say, a namespace file of another type: EINVAL) in the reference's words.

    Its ``ns.Do`` wraps ``NetNS.Set``'s error: ``error switching to ns <path>: Error switching to ns <path>:
    <errno as Go prints it>``; the class is the errno's.
    """
    from ._kernel import error_from_errno

    kind = type(error_from_errno(exc.errno, ""))
    return kind(f"error switching to ns {path}: Error switching to ns {path}: {_go_errno_text(exc.errno)}")


def run_in_netns(path: str | None, func: Callable[[], _T]) -> _T:
    """Call ``func`` in a thread that has joined the namespace at ``path``; its result, or its error re-raised.

    ``path`` None runs ``func`` in the calling thread. Raises
    :class:`~cnicore.NamespaceNotFoundError` when ``path`` does not exist.
    """
    if path is None:
        return func()
    fd = open_netns(path)
    outcome: list[Any] = []
    failed: list[BaseException] = []
    finished = _thread.allocate_lock()
    finished.acquire()

    def body() -> None:
        try:
            home = os.open(_OWN, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            home = -1
        try:
            try:
                setns(fd)
            except OSError as exc:
                failed.append(_switch_failed(path, exc))
                return
            outcome.append(func())
        except BaseException as exc:
            failed.append(exc)
        finally:
            if home >= 0:
                try:  # noqa: SIM105 (contextlib costs an exec'd plugin its import)
                    setns(home)  # best effort: the thread ends right after, wherever it is
                except OSError:
                    pass
                os.close(home)
            finished.release()

    try:
        _thread.start_new_thread(body, ())
        finished.acquire()
    finally:
        os.close(fd)
    if failed:
        raise failed[0]
    result: _T = outcome[0]
    return result
