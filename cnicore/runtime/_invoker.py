"""Running one plugin for the runtime: in process for our own types, else by the exec protocol.

Which way (:meth:`PluginRunner.target`):

* ``loopback``, ``bridge`` and ``host-local`` run in process (no exec, no
  interpreter start, stores kept open between calls) when in-process running is
  on and the first match on the plugin path is one of our installed entry points
  (:func:`~cnicore.plugins.is_cnicore_plugin`), or there is no match at all;
* any other type, and a foreign binary first on the path (the reference's Go
  ``bridge``, say: the plugin path is how an operator chooses plugins), is
  executed: environment = the base environment plus the six ``CNI_*``
  variables, stdin = the request bytes, killed after the timeout (code 11),
  error objects read back into the matching cnicore error.

Either way the plugin sees the same thing and the runtime gets the same
answer. In process, the skeleton's checks are made as an exec'd plugin would
make them (the configuration's version must be one the plugin supports; CHECK,
GC and STATUS must be allowed by it); the result takes the same way as it does
through a pipe (converted to the configuration's version, printed, and parsed as
libcni parses a plugin's output), so the cache holds the same bytes whichever
way the plugin ran. One thing is checked earlier in process: a ``CNI_NETNS``
that is the runtime's own namespace is refused (code 8) before the plugin acts,
where the skeleton reports it afterwards. In-process plugins have no timeout (a
thread cannot be killed); their errors keep the spec's codes (an exec'd one of
ours reports some as 999, as the reference plugins do).

The link backend and firewall for in-process plugins are those given to the
runtime, else chosen on first use: :func:`cnicore.backends.select_backend` (which
honours ``CNICORE_BACKEND``) and the iptables firewall (the fake firewall on the
fake backend). ``cnicore.backends`` is imported by name
(:func:`cnicore._lazy.import_module`) at that moment: the core never imports it statically.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from cnicore._errors import CNIError, InternalError
from cnicore._invoke import exec_environment, exec_plugin
from cnicore._json import decode
from cnicore.config._lookup import find_in_path
from cnicore.plugins._api import Plugin, PluginRequest
from cnicore.plugins._skel import check_versions, refuse_own_netns
from cnicore.spec._result import AnyResult, parse_result
from cnicore.spec._version import decode_config_version

if TYPE_CHECKING:
    from cnicore.links import Firewall, LinkBackend
    from cnicore.plugins._hostlocal import HostLocalPlugin

__all__ = ["IN_PROCESS_TYPES", "PluginRunner", "PluginTarget"]

#: The plugin types the runtime can run in process.
IN_PROCESS_TYPES: Final = ("loopback", "bridge", "host-local", "tuning", "firewall", "portmap")


@attrs.frozen
class PluginTarget:
    """Where a plugin type runs: ``path`` (executed) or ``in_process`` (one of ours)."""

    type: str
    path: str | None = None
    in_process: bool = False


def _backends() -> Any:
    from cnicore._lazy import import_module

    return import_module("cnicore.backends")


class PluginRunner:
    """Finds and runs plugins for a runtime (see the module docstring). Thread-safe.

    Args:
        plugin_path: the directories searched for plugin binaries (``CNI_PATH``).
        backend: the link backend for in-process plugins (None: chosen on first use).
        firewall: the firewall for in-process plugins (None: chosen on first use).
        timeout: seconds an executed plugin may run.
        in_process: run our own plugin types in process.
        environ: the base environment of executed plugins (None: ``os.environ`` at each call).
    """

    def __init__(self, *, plugin_path: Sequence[str], backend: LinkBackend | None, firewall: Firewall | None,
                 timeout: float, in_process: bool, environ: Mapping[str, str] | None) -> None:
        self.plugin_path = tuple(plugin_path)
        self.timeout = timeout
        self.in_process = in_process
        self._environ = environ
        self._backend = backend
        self._firewall = firewall
        self._plugins: dict[str, Plugin] = {}
        self._host_local: HostLocalPlugin | None = None
        self._lock = threading.Lock()

    # -- choosing ------------------------------------------------------------------------------------

    def target(self, plugin_type: str) -> PluginTarget:
        """Where ``plugin_type`` runs.

        Raises:
            InvalidConfigError: (code 7) an empty or path-like type, or no plugin path.
            NotFoundError: ``failed to find plugin "x" in path [a b]``.
        """
        if self.in_process and plugin_type in IN_PROCESS_TYPES:
            from cnicore.plugins._delegate import is_cnicore_plugin

            try:
                found = find_in_path(plugin_type, self.plugin_path)
            except CNIError:
                return PluginTarget(plugin_type, None, True)
            if is_cnicore_plugin(found):
                return PluginTarget(plugin_type, found, True)
            return PluginTarget(plugin_type, found, False)
        return PluginTarget(plugin_type, find_in_path(plugin_type, self.plugin_path), False)

    # -- running -------------------------------------------------------------------------------------

    def run(self, target: PluginTarget, command: str, stdin: bytes, *, container_id: str = "", netns: str = "",
            ifname: str = "", args: str = "", cni_version: str = "") -> AnyResult | None:
        """Run ``command`` on the plugin; the result for ADD (parsed as libcni parses it), else None.

        Args:
            stdin: the request bytes (see :func:`cnicore.config.build_request`).
            cni_version: the network's version: a result without ``cniVersion`` is read as this version.

        Raises:
            CNIError: what the plugin reported (or could not be run).
        """
        if target.in_process:
            return self._run_in_process(target.type, command, stdin, container_id=container_id, netns=netns,
                                        ifname=ifname, args=args, cni_version=cni_version)
        assert target.path is not None
        base = os.environ if self._environ is None else self._environ
        env = exec_environment(base, command=command, container_id=container_id, netns=netns, ifname=ifname,
                               args=args, path=self.plugin_path)
        out = exec_plugin(target.path, stdin, env, timeout=self.timeout, command=command)
        if command != "ADD":
            return None
        return parse_result(out, cni_version)

    def _run_in_process(self, plugin_type: str, command: str, stdin: bytes, *, container_id: str, netns: str,
                        ifname: str, args: str, cni_version: str) -> AnyResult | None:
        plugin = self.plugin(plugin_type)
        config = decode(stdin, what="network config")
        declared = config.get("cniVersion") if isinstance(config, dict) else None
        version = decode_config_version(config)
        refuse_own_netns(command, netns)
        check_versions(command, version, plugin.supported_versions)
        request = PluginRequest(command=command, container_id=container_id, netns=netns, ifname=ifname, args=args,
                                path=self.plugin_path, config=config, config_bytes=stdin,
                                cni_version=declared if isinstance(declared, str) else "")
        try:
            if command == "ADD":
                printed = plugin.add(request).as_version(request.cni_version).to_json()
                return parse_result(printed, cni_version)
            if command == "DEL":
                plugin.delete(request)
            elif command == "CHECK":
                plugin.check(request)
            else:
                handler = getattr(plugin, command.lower(), None)
                if handler is not None:
                    handler(request)
            return None
        except CNIError:
            raise
        except Exception as exc:  # a plugin bug is reported as the skeleton reports it: code 999
            raise InternalError(str(exc) or type(exc).__name__) from exc

    # -- in-process plugins ----------------------------------------------------------------------------

    def plugin(self, plugin_type: str) -> Plugin:
        """The in-process plugin of a type (built on first use, then kept)."""
        with self._lock:
            plugin = self._plugins.get(plugin_type)
            if plugin is None:
                plugin = self._plugins[plugin_type] = self._build(plugin_type)
            return plugin

    def _shared_host_local(self) -> HostLocalPlugin:
        if self._host_local is None:
            from cnicore.plugins._hostlocal import HostLocalPlugin

            self._host_local = HostLocalPlugin()
        return self._host_local

    def _build(self, plugin_type: str) -> Plugin:
        if plugin_type == "host-local":
            return self._shared_host_local()
        if plugin_type == "loopback":
            from cnicore.plugins._loopback import LoopbackPlugin

            return LoopbackPlugin(self.backend())
        if plugin_type == "bridge":
            from cnicore.plugins._bridge import BridgePlugin
            from cnicore.plugins._delegate import IPAMDelegate

            delegate = IPAMDelegate(host_local=self._shared_host_local(), timeout=self.timeout,
                                    environ=self._environ)
            return BridgePlugin(self.backend(), self.firewall, delegate)
        if plugin_type == "tuning":
            from cnicore.plugins._tuning import TuningPlugin

            return TuningPlugin(self.backend())
        if plugin_type == "firewall":
            from cnicore.plugins._firewall import FirewallPlugin

            return FirewallPlugin(self.firewall)  # type: ignore[arg-type]  # our firewalls edit tables too
        if plugin_type == "portmap":
            from cnicore.plugins._portmap import PortMapPlugin

            return PortMapPlugin(self.firewall, self.backend())  # type: ignore[arg-type]
        raise InternalError(f"plugin type {plugin_type!r} cannot run in process", key="type", value=plugin_type)

    def backend(self) -> LinkBackend:
        """The link backend of in-process plugins (chosen on first use)."""
        if self._backend is None:
            chosen: LinkBackend = _backends().select_backend(None, self._environ)
            self._backend = chosen
        return self._backend

    def firewall(self) -> Firewall:
        """The firewall of in-process plugins (chosen on first use)."""
        if self._firewall is None:
            module = _backends()
            chosen: Firewall = (module.FakeFirewall() if isinstance(self.backend(), module.FakeLinkBackend)
                                else module.IptablesFirewall())
            self._firewall = chosen
        return self._firewall

    def close(self) -> None:
        """Close what in-process plugins hold open (host-local's stores). Idempotent."""
        with self._lock:
            plugins, self._plugins = self._plugins, {}
            self._host_local = None
        for plugin in plugins.values():
            close = getattr(plugin, "close", None)
            if close is not None:
                close()
