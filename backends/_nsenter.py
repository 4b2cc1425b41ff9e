"""Namespaces and sysctls for the kernel backends, on the one namespace helper (:mod:`._setns`).

Work meant for another namespace runs in a short-lived thread that joins it
(see :mod:`._setns`): the caller's threads never change namespace and nothing
forks. The namespace is opened by path with ``O_RDONLY`` only, so a missing
namespace is an error, never created by accident.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from cnicore.links import HOST_NAMESPACE, Namespace, check_sysctl_key, check_sysctl_value

from ._kernel import read_net_sysctl_path, read_sysctl_path, write_net_sysctl_path, write_sysctl_path
from ._setns import open_netns, run_in_netns

__all__ = ["KernelNamespaces", "open_namespace_fd", "read_net_sysctl", "read_sysctl", "run_in_namespace",
           "write_net_sysctl", "write_sysctl"]

_T = TypeVar("_T")


def open_namespace_fd(ns: Namespace) -> int:
    """An ``O_RDONLY | O_CLOEXEC`` fd on the namespace; the caller closes it.

    The host namespace is the calling thread's. A missing path raises
    :class:`NamespaceNotFoundError`.
    """
    return open_netns(ns.path)


def run_in_namespace(ns: Namespace, func: Callable[[], _T]) -> _T:
    """Call ``func`` in a thread that has joined ``ns``; return its result or re-raise its error.

    For the host namespace ``func`` runs in the calling thread (see :func:`._setns.run_in_netns`).
    """
    return run_in_netns(ns.path, func)


def read_sysctl(ns: Namespace, key: str) -> str:
    """Read a plugin sysctl from ``/proc/sys`` as seen from ``ns``."""
    return read_sysctl_path(ns.path, check_sysctl_key(key).path)


def write_sysctl(ns: Namespace, key: str, value: str | int) -> None:
    """Write a plugin sysctl into ``/proc/sys`` as seen from ``ns``."""
    path = check_sysctl_key(key).path
    write_sysctl_path(ns.path, path, check_sysctl_value(value))


def read_net_sysctl(ns: Namespace, key: str) -> str:
    """Read any network sysctl (see :func:`check_net_sysctl_path`) as seen from ``ns``."""
    return read_net_sysctl_path(ns.path, key)


def write_net_sysctl(ns: Namespace, key: str, value: str) -> None:
    """Write ``value`` as it is into any network sysctl as seen from ``ns``."""
    write_net_sysctl_path(ns.path, key, value)


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
