"""Running code inside a network namespace without moving the process, and sysctls there.

``setns(2)`` changes the namespace of the calling *thread* only. So work meant
for another namespace runs in a short-lived thread that joins the namespace
first: sockets it opens (netlink, for instance) stay bound to that namespace for
their whole life, and ``/proc/sys/net`` opened from it shows that namespace's
settings. The caller's threads never change namespace, which keeps this safe in
a process that runs other threads, and nothing forks. The namespace is opened
by path with ``O_RDONLY`` only, so a missing namespace is an error, never
created by accident.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from cnicore._errors import CNIError, InternalError
from cnicore.links import HOST_NAMESPACE, Namespace, check_net_sysctl_path, check_sysctl_key, check_sysctl_value

from ._common import error_from_errno, namespace_gone

__all__ = ["KernelNamespaces", "open_namespace_fd", "read_net_sysctl", "read_sysctl", "run_in_namespace",
           "write_net_sysctl", "write_sysctl"]

_CLONE_NEWNET = 0x40000000
_T = TypeVar("_T")
_libc: ctypes.CDLL | None = None


def _setns(fd: int) -> None:
    global _libc
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, _CLONE_NEWNET)
        return
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def open_namespace_fd(ns: Namespace) -> int:
    """An ``O_RDONLY | O_CLOEXEC`` fd on the namespace; the caller closes it.

    The host namespace is the calling thread's. A missing path raises
    :class:`NamespaceNotFoundError`.
    """
    path = ns.path if ns.path is not None else "/proc/thread-self/ns/net"
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise namespace_gone(path) from exc
    except OSError as exc:
        raise error_from_errno(exc.errno, f"open netns {path}") from exc


def run_in_namespace(ns: Namespace, func: Callable[[], _T]) -> _T:
    """Call ``func`` in a thread that has joined ``ns``; return its result or re-raise its error.

    For the host namespace ``func`` runs in the calling thread. The worker goes
    back to its first namespace before it ends: a thread that exits inside
    another namespace costs the kernel noticeably more to tear down.
    """
    if ns.path is None:
        return func()
    fd = open_namespace_fd(ns)
    outcome: list[_T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            home = -1
        try:
            try:
                _setns(fd)
            except OSError as exc:
                failure.append(error_from_errno(exc.errno, f"setns {ns.path}"))
                return
            try:
                outcome.append(func())
            except BaseException as exc:
                failure.append(exc)
        finally:
            if home >= 0:
                # Best effort: the thread ends right after, wherever it is.
                with contextlib.suppress(OSError):
                    _setns(home)
                os.close(home)

    try:
        worker = threading.Thread(target=body, name=f"netns {ns.path}", daemon=True)
        worker.start()
        worker.join()
    finally:
        os.close(fd)
    if failure:
        raise failure[0]
    return outcome[0]


def _sysctl_path(key: str) -> str:
    return "/proc/sys/" + check_sysctl_key(key).path


def read_sysctl(ns: Namespace, key: str) -> str:
    """Read a plugin sysctl from ``/proc/sys`` as seen from ``ns``."""
    path = _sysctl_path(key)

    def read() -> str:
        try:
            with open(path, encoding="ascii") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise _sysctl_error(exc, path) from exc

    return run_in_namespace(ns, read)


def write_sysctl(ns: Namespace, key: str, value: str | int) -> None:
    """Write a plugin sysctl into ``/proc/sys`` as seen from ``ns``."""
    path = _sysctl_path(key)
    text = check_sysctl_value(value)

    def write() -> None:
        try:
            with open(path, "w", encoding="ascii") as handle:
                handle.write(text)
        except OSError as exc:
            raise _sysctl_error(exc, path) from exc

    run_in_namespace(ns, write)


def read_net_sysctl(ns: Namespace, key: str) -> str:
    """Read any network sysctl (see :func:`check_net_sysctl_path`) as seen from ``ns``."""
    path = "/proc/sys/" + check_net_sysctl_path(key)

    def read() -> str:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                text = handle.read()
        except OSError as exc:
            raise _sysctl_error(exc, path) from exc
        return text[:-1] if text.endswith("\n") else text

    return run_in_namespace(ns, read)


def write_net_sysctl(ns: Namespace, key: str, value: str) -> None:
    """Write ``value`` as it is into any network sysctl as seen from ``ns``."""
    path = "/proc/sys/" + check_net_sysctl_path(key)
    data = value.encode("utf-8", "surrogateescape")

    def write() -> None:
        try:
            # One write(2) of the whole value, as Go's os.WriteFile does (the kernel parses each write).
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _sysctl_error(exc, path) from exc

    run_in_namespace(ns, write)


def _sysctl_error(exc: OSError, path: str) -> CNIError:
    if exc.errno == errno.EINVAL:
        return InternalError(f"sysctl {path}: invalid value")
    return error_from_errno(exc.errno, f"sysctl {path}")


class KernelNamespaces:
    """Base of the backends that work on the kernel: the port's namespace and sysctl methods.

    Namespaces are opened by path (never created), sysctls read and written in
    ``/proc/sys`` from a thread that joined the namespace; the same for every
    such backend, whatever it speaks to change links.
    """

    def open_namespace(self, path: str) -> Namespace:
        """See :meth:`LinkBackend.open_namespace`."""
        ns = Namespace(path=path)
        os.close(open_namespace_fd(ns))
        return ns

    def host_namespace(self) -> Namespace:
        """See :meth:`LinkBackend.host_namespace`."""
        return HOST_NAMESPACE

    def read_sysctl(self, ns: Namespace, key: str) -> str:
        """See :meth:`LinkBackend.read_sysctl`."""
        return read_sysctl(ns, key)

    def write_sysctl(self, ns: Namespace, key: str, value: str | int) -> None:
        """See :meth:`LinkBackend.write_sysctl`."""
        write_sysctl(ns, key, value)

    def read_net_sysctl(self, ns: Namespace, path: str) -> str:
        """See :meth:`LinkBackend.read_net_sysctl`."""
        return read_net_sysctl(ns, path)

    def write_net_sysctl(self, ns: Namespace, path: str, value: str) -> None:
        """See :meth:`LinkBackend.write_net_sysctl`."""
        write_net_sysctl(ns, path, value)
