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
  path [...]``) and executed with a timeout.

An executed plugin's failure is read as the reference runtime reads it: its
error object on stdout becomes the matching cnicore error with the same code
and message (marked as delegated, so the exec boundary passes the code on as
the reference does); an empty stdout gives ``netplugin failed with no error
message: exit status N`` or ``netplugin failed: "<stderr>"``; an unparsable one
``netplugin failed but error parsing its diagnostic message "<stdout>": <why>``.
Successful results are parsed and converted to 1.1.0.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from cnicore._errors import CNIError, DecodingError, InternalError, NotFoundError, error_from_object
from cnicore._gofmt import go_quote
from cnicore._json import decode, marshal
from cnicore.plugins._api import PluginRequest
from cnicore.plugins._hostlocal import HostLocalPlugin
from cnicore.plugins._skel import mark_delegated
from cnicore.spec._result import Result, parse_result
from cnicore.spec._version import CURRENT_VERSION

__all__ = ["PLUGIN_MARKER", "IPAMDelegate", "is_cnicore_plugin"]

#: A line every entry point written by :func:`~cnicore.plugins.install_plugins` contains.
PLUGIN_MARKER: Final = "# cnicore-plugin-entry-point"
_HOST_LOCAL = "host-local"
_MARKER_BYTES = PLUGIN_MARKER.encode()
_CNI_VARIABLES = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")


def is_cnicore_plugin(path: str) -> bool:
    """True when the file at ``path`` is one of our installed entry points (read-only)."""
    try:
        with open(path, "rb") as handle:
            return _MARKER_BYTES in handle.read(1024)
    except OSError:
        return False


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
        if ipam_type != _HOST_LOCAL or self._prefer_exec:
            return None
        try:
            found = self._find(ipam_type, request)
        except CNIError:
            return self._local()  # nothing better on the path: ours serves
        return self._local() if is_cnicore_plugin(found) else None

    def _local(self) -> HostLocalPlugin:
        if self._host_local is None:
            self._host_local = HostLocalPlugin()
        return self._host_local

    @staticmethod
    def _find(ipam_type: str, request: PluginRequest) -> str:
        # Imported here: only delegation by exec needs the lookup.
        from cnicore.config._lookup import find_in_path

        return find_in_path(ipam_type, request.path)

    def add(self, ipam_type: str, request: PluginRequest) -> Result:
        """IPAM ADD; the result as 1.1.0. Not idempotent (it reserves addresses)."""
        local = self._in_process(ipam_type, request)
        if local is not None:
            return local.add(request)
        out = self._exec(ipam_type, "ADD", request)
        try:
            result = parse_result(out, request.cni_version or "0.1.0")
        except DecodingError as exc:
            raise mark_delegated(exc) from None
        converted = result.as_version(CURRENT_VERSION)
        assert isinstance(converted, Result)
        return converted

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

    def status(self, ipam_type: str, request: PluginRequest) -> None:
        """IPAM STATUS (host-local has none: success). Read-only."""
        if self._in_process(ipam_type, request) is not None:
            return
        self._exec(ipam_type, "STATUS", request)

    def close(self) -> None:
        """Close the in-process host-local's stores. Idempotent."""
        if self._host_local is not None:
            self._host_local.close()

    def _environment(self, command: str, request: PluginRequest) -> dict[str, str]:
        base = os.environ if self._environ is None else self._environ
        env = {k: v for k, v in base.items() if k not in _CNI_VARIABLES}
        env.update({
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": request.container_id,
            "CNI_NETNS": request.netns,
            "CNI_IFNAME": request.ifname,
            "CNI_ARGS": request.args,
            "CNI_PATH": os.pathsep.join(request.path),
        })
        return env

    def _exec(self, ipam_type: str, command: str, request: PluginRequest) -> bytes:
        import subprocess  # only delegation by exec pays for it

        path = self._find(ipam_type, request)
        stdin = request.config_bytes or marshal(dict(request.config)).encode()
        try:
            done = subprocess.run([path], input=stdin, env=self._environment(command, request),
                                  capture_output=True, timeout=self._timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise InternalError(f"IPAM plugin {go_quote(path)} did not answer {command} within "
                                f"{self._timeout:g} s") from exc
        except FileNotFoundError as exc:
            raise NotFoundError(f"failed to find plugin {go_quote(ipam_type)}: {exc.strerror}") from exc
        except OSError as exc:
            raise InternalError(f"failed to execute IPAM plugin {go_quote(path)}: {exc}") from exc
        if done.returncode == 0:
            return done.stdout
        raise _plugin_failure(done.returncode, done.stdout, done.stderr)


def _exit_text(returncode: int) -> str:
    # Go's *exec.ExitError text.
    return f"signal: {-returncode}" if returncode < 0 else f"exit status {returncode}"


def _plugin_failure(returncode: int, stdout: bytes, stderr: bytes) -> CNIError:
    """The error a failed plugin reported, read as the reference runtime reads it."""
    if not stdout.strip():
        if not stderr.strip():
            return InternalError(f"netplugin failed with no error message: {_exit_text(returncode)}")
        return InternalError(f"netplugin failed: {go_quote(stderr.decode('utf-8', 'replace'))}")
    try:
        obj = decode(stdout, what="error object")
        if not isinstance(obj, dict):
            raise DecodingError("not a JSON object")
        error = error_from_object(obj)
    except DecodingError as exc:
        text = stdout.decode("utf-8", "replace")
        return InternalError(f"netplugin failed but error parsing its diagnostic message {go_quote(text)}: "
                             f"{exc.msg}")
    return mark_delegated(error)
