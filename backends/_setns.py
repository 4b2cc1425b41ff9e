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

Only the interpreter's built-in modules are imported (``_thread``, and before
Python 3.12, which has ``os.setns``, the C half of :mod:`ctypes`: ``_ctypes``
alone calls libc's ``setns``; the ``ctypes`` package defines dozens of types on
import, a millisecond of every exec'd bridge's start), so the exec'd plugins
that use it start without ``threading``; errors are cnicore errors, translated here.
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


def _fs_magic(path: str) -> int:
    """``statfs(path).f_type``, the file system's magic number (OSError when statfs fails).

    Only when the device does not already tell: ``ctypes`` costs an exec'd plugin its import, and Python's
    ``os.statvfs`` leaves the magic out.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(512)  # struct statfs (120 bytes on 64-bit Linux), f_type first
    if libc.statfs(os.fsencode(path), buf) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    return int(ctypes.c_long.from_buffer(buf).value)  # f_type is a long (__fsword_t) on Linux's ABIs


def _is_namespace_file(path: str, st: os.stat_result) -> bool:
    """Whether ``path`` (whose stat is ``st``) is where the reference's ``ns.GetNS`` finds a namespace."""
    return st.st_dev == _nsfs_device() or _fs_magic(path) in (_NSFS_MAGIC, _PROCFS_MAGIC)


def _not_a_namespace(path: str) -> Exception:
    """The reference's ``ns.GetNS`` refusal of a path on another file system than nsfs (or procfs).

    Its words and code (999): ``unknown FS magic on "<path>": <magic in hex>``. The spec has code 8 for an
    invalid namespace, but the reference's refusal is a plain error, which its plugins print with 999.
    """
    from cnicore._errors import InvalidNetNSError
    from cnicore._gofmt import go_quote

    return InvalidNetNSError(f"unknown FS magic on {go_quote(path)}: {_fs_magic(path):x}", code=999)


def _go_errno_text(code: int | None) -> str:
    """An errno as Go's ``syscall.Errno`` prints it: the C library's text with a lower-case first letter."""
    reason = os.strerror(code) if code else "unknown error"
    return reason[:1].lower() + reason[1:]


def _cannot_look(path: str, exc: OSError) -> Exception:
    """The reference's ``ns.GetNS`` when it cannot look at ``path``: ``failed to Statfs "<path>": <reason>``.

    A missing path is :class:`~cnicore.NamespaceNotFoundError` (a DEL then succeeds, as the reference's); any
    other reason (a file on the way, a name too long, a loop of links) cannot name a namespace either:
    :class:`~cnicore.InvalidNetNSError` with the reference's code, 999.
    """
    if isinstance(exc, FileNotFoundError):
        from ._kernel import namespace_gone

        return namespace_gone(path)
    from cnicore._errors import InvalidNetNSError
    from cnicore._gofmt import go_quote

    return InvalidNetNSError(f"failed to Statfs {go_quote(path)}: {_go_errno_text(exc.errno)}", code=999)


def open_netns(path: str | None) -> int:
    """An ``O_RDONLY | O_CLOEXEC`` fd on the namespace at ``path`` (None: the calling thread's).

    ``path`` must name a namespace file (nsfs: ``/proc/<pid>/ns/net``, a bind mount of one): anything else is
    refused before it is opened, as the reference's ``ns.GetNS`` refuses it, so that a FIFO never blocks the
    open and a device is never opened. The caller closes it.

    Raises:
        NamespaceNotFoundError: ``path`` does not exist.
        InvalidNetNSError: (code 999, as the reference) ``path`` is not a namespace file, or cannot be looked at
            (``failed to Statfs "<path>": <reason>``).
        CNIError: the errno's cnicore error otherwise.
    """
    target = path if path is not None else _OWN
    if path is not None:
        try:
            st = os.stat(target)
        except OSError as exc:
            raise _cannot_look(target, exc) from exc
    try:
        if path is not None and not _is_namespace_file(target, st):
            raise _not_a_namespace(target)
        fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        from ._kernel import namespace_gone

        raise namespace_gone(target) from exc
    except OSError as exc:
        from ._kernel import error_from_errno

        raise error_from_errno(exc.errno, f"open netns {target}") from exc
    if path is not None:
        try:
            opened = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            from ._kernel import error_from_errno

            raise error_from_errno(exc.errno, f"open netns {target}") from exc
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) and opened.st_dev != _nsfs_device():
            # Replaced between the check and the open by something else than a namespace file.
            os.close(fd)
            from cnicore._errors import InvalidNetNSError
            from cnicore._gofmt import go_quote

            raise InvalidNetNSError(f"{go_quote(target)} was replaced by something else than a namespace while it "
                                    "was opened", code=999)
    return fd


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
