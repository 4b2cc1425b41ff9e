"""Delegating to an IPAM plugin on plain values: which way, and the exec itself (standard library only).

The one implementation of the delegation rules of
:class:`~cnicore.plugins.IPAMDelegate` (see :mod:`cnicore.plugins._delegate`
for them), shared with the executed bridge's IPAM port
(:class:`~cnicore.plugins._bridgeexec.ExecIpam`), which must not import the
typed world: :func:`host_local_in_process` decides whether host-local runs in
process, :func:`exec_ipam` executes the plugin found on ``CNI_PATH``.
"""

from __future__ import annotations

import os

from cnicore._errors import CNIError
from cnicore._readfile import read_regular

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Final

__all__ = ["HOST_LOCAL", "PLUGIN_MARKER", "exec_ipam", "find_ipam", "host_local_in_process", "is_cnicore_plugin"]

#: A line every entry point written by :func:`~cnicore.plugins.install_plugins` contains.
PLUGIN_MARKER: Final = "# cnicore-plugin-entry-point"
#: The IPAM type that may run in process.
HOST_LOCAL: Final = "host-local"
_MARKER_BYTES: Final = PLUGIN_MARKER.encode()


def is_cnicore_plugin(path: str) -> bool:
    """True when the file at ``path`` is one of our installed entry points (read-only)."""
    try:
        return _MARKER_BYTES in read_regular(path, 1024, whole=False)  # (a FIFO on CNI_PATH must not hang)
    except OSError:
        return False


def find_ipam(ipam_type: str, path: Sequence[str]) -> str:
    """The IPAM plugin's binary on ``path`` (``failed to find plugin "x" in path [...]`` if none)."""
    # Imported here: only delegation by exec needs the lookup.
    from cnicore.config._lookup import find_in_path

    return find_in_path(ipam_type, path)


def host_local_in_process(ipam_type: str, path: Sequence[str], *, prefer_exec: bool = False) -> bool:
    """Whether the IPAM plugin ``ipam_type`` runs in process: host-local, unless a foreign one comes first.

    When the first ``host-local`` on ``path`` is a foreign binary (the reference's
    Go plugin, say) it is executed, since ``CNI_PATH`` is how a runtime chooses
    plugins; our own installed entry points carry :data:`PLUGIN_MARKER` and count
    as in process, as does no ``host-local`` at all (ours serves). ``prefer_exec``
    always executes.
    """
    if ipam_type != HOST_LOCAL or prefer_exec:
        return False
    try:
        found = find_ipam(ipam_type, path)
    except CNIError:
        return True  # nothing better on the path: ours serves
    return is_cnicore_plugin(found)


def exec_ipam(ipam_type: str, command: str, *, stdin: bytes, container_id: str, netns: str, ifname: str,
              args: str, path: Sequence[str], environ: Mapping[str, str] | None = None,
              timeout: float = 60.0) -> bytes:
    """Execute the IPAM plugin ``ipam_type`` found on ``path`` for ``command``; its stdout.

    The environment is ``environ`` (default ``os.environ``) with the request's
    ``CNI_*`` variables, as the reference's ``ipam.ExecAdd`` and friends pass them.
    Failures are the plugin's own errors, marked as delegated (see :mod:`cnicore._invoke`).
    """
    from cnicore._invoke import exec_environment, exec_plugin
    from cnicore.plugins._skel import mark_delegated

    binary = find_ipam(ipam_type, path)
    env = exec_environment(os.environ if environ is None else environ, command=command, container_id=container_id,
                           netns=netns, ifname=ifname, args=args, path=path)
    return exec_plugin(binary, stdin, env, timeout=timeout, label="IPAM plugin", command=command, mark=mark_delegated)
