"""Delegating to an IPAM plugin: in process for host-local, else by the exec protocol.

A main plugin (bridge) hands address management to the plugin named by
``ipam.type`` with the very same stdin and environment, only ``CNI_COMMAND``
changed, as the reference's ``ipam.ExecAdd``/``ExecDel``/``ExecCheck`` do.

Which way:

* ``host-local`` runs in process (no exec, no second interpreter start) unless
  another binary is preferred: when the first ``host-local`` on ``CNI_PATH`` is a
  foreign binary (the reference's Go plugin, say), that binary is executed, since
  ``CNI_PATH`` is how a runtime chooses plugins. Our own installed entry points
  (see :mod:`cnicore.plugins._install`) carry a marker and count as in process.
  ``IPAMDelegate(prefer_exec=True)`` always executes.
* Any other type is looked up on ``CNI_PATH`` (``failed to find plugin "x" in
  path [...]``) and executed with a timeout (:mod:`cnicore._invoke`, shared with
  the runtime; a plugin that does not answer in time is killed: code 11).

An executed plugin's failure is read as the reference runtime reads it: its
error object on stdout becomes the matching cnicore error with the same code
and message (marked as delegated, so the exec boundary passes the code on as
the reference does); an empty stdout gives ``netplugin failed with no error
message: exit status N`` or ``netplugin failed: "<stderr>"``; an unparsable one
``netplugin failed but error parsing its diagnostic message "<stdout>": <why>``.
Successful results are parsed and converted to 1.1.0.
"""

from __future__ import annotations

from collections.abc import Mapping

from cnicore._errors import DecodingError
from cnicore._json import marshal
from cnicore.plugins._api import PluginRequest
from cnicore.plugins._hostlocal import HostLocalPlugin
from cnicore.plugins._ipamexec import PLUGIN_MARKER, exec_ipam, host_local_in_process, is_cnicore_plugin
from cnicore.plugins._skel import mark_delegated
from cnicore.spec._result import Result, parse_result
from cnicore.spec._version import CURRENT_VERSION

__all__ = ["PLUGIN_MARKER", "IPAMDelegate", "exec_result", "is_cnicore_plugin"]

def exec_result(out: bytes, cni_version: str) -> Result:
    """An executed IPAM plugin's ADD output (in ``cni_version``), parsed and converted to 1.1.0.

    A result that cannot be read is the plugin's failure (marked as delegated).
    """
    try:
        result = parse_result(out, cni_version or "0.1.0")
    except DecodingError as exc:
        raise mark_delegated(exc) from None
    converted = result.as_version(CURRENT_VERSION)
    assert isinstance(converted, Result)
    return converted


class IPAMDelegate:
    """Runs the IPAM part of a main plugin's request.

    Args:
        host_local: the in-process host-local (default: a new :class:`HostLocalPlugin`).
        prefer_exec: always execute the IPAM plugin from ``CNI_PATH``, never in process.
        timeout: seconds an executed plugin may take before it is killed.
        environ: the base environment for executed plugins (default ``os.environ``);
            the ``CNI_*`` variables are always those of the request.
    """

    def __init__(self, *, host_local: HostLocalPlugin | None = None, prefer_exec: bool = False,
                 timeout: float = 60.0, environ: Mapping[str, str] | None = None) -> None:
        self._host_local = host_local
        self._prefer_exec = prefer_exec
        self._timeout = timeout
        self._environ = environ

    def _in_process(self, ipam_type: str, request: PluginRequest) -> HostLocalPlugin | None:
        if host_local_in_process(ipam_type, request.path, prefer_exec=self._prefer_exec):
            return self._local()
        return None

    def _local(self) -> HostLocalPlugin:
        if self._host_local is None:
            self._host_local = HostLocalPlugin()
        return self._host_local

    def add(self, ipam_type: str, request: PluginRequest) -> Result:
        """IPAM ADD; the result as 1.1.0. Not idempotent (it reserves addresses)."""
        local = self._in_process(ipam_type, request)
        if local is not None:
            return local.add(request)
        return exec_result(self._exec(ipam_type, "ADD", request), request.cni_version)

    def delete(self, ipam_type: str, request: PluginRequest) -> None:
        """IPAM DEL. Idempotent (as IPAM plugins' DEL must be)."""
        local = self._in_process(ipam_type, request)
        if local is not None:
            local.delete(request)
            return
        self._exec(ipam_type, "DEL", request)

    def check(self, ipam_type: str, request: PluginRequest) -> None:
        """IPAM CHECK. Read-only."""
        local = self._in_process(ipam_type, request)
        if local is not None:
            local.check(request)
            return
        self._exec(ipam_type, "CHECK", request)

    def gc(self, ipam_type: str, request: PluginRequest) -> None:
        """IPAM GC with the request's ``cni.dev/valid-attachments``. Idempotent.

        The spec asks plugins to forward GC to the plugins they delegate to; the
        reference bridge does not yet (its GC is a no-op), so with the reference
        bridge leaked addresses stay until their files are removed by hand.
        """
        local = self._in_process(ipam_type, request)
        if local is not None:
            local.gc(request)
            return
        self._exec(ipam_type, "GC", request)

    def status(self, ipam_type: str, request: PluginRequest) -> None:
        """IPAM STATUS (host-local has none: success). Read-only."""
        if self._in_process(ipam_type, request) is not None:
            return
        self._exec(ipam_type, "STATUS", request)

    def close(self) -> None:
        """Close the in-process host-local's stores. Idempotent."""
        if self._host_local is not None:
            self._host_local.close()

    def _exec(self, ipam_type: str, command: str, request: PluginRequest) -> bytes:
        return exec_ipam(ipam_type, command, stdin=request.config_bytes or marshal(dict(request.config)).encode(),
                         container_id=request.container_id, netns=request.netns, ifname=request.ifname,
                         args=request.args, path=request.path, environ=self._environ, timeout=self._timeout)
