"""Running a meta plugin (tuning, firewall, portmap) by exec without the typed request.

The meta plugins read their request through a few attributes only (see
:class:`MetaRequest`), which :class:`~cnicore.plugins.PluginRequest` has and so
does :class:`PlainRequest`, a slotted standard-library class. The exec entry
point runs them through :class:`MetaExecHandler`, so a command that needs
neither a link backend nor a result (VERSION, a DEL with nothing to undo)
imports neither attrs nor netaddr, and GC and STATUS (which they answer with
nothing) not even the plugin's module. A plugin with an ``add_output`` method
(portmap, firewall) prints its ADD result itself, on plain values; the others'
``add`` returns the result types.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Protocol

    from cnicore.spec._environ import CNIEnvironment
    from cnicore.spec._result import AnyResult

    class MetaRequest(Protocol):
        """What a meta plugin reads of its request."""

        @property
        def command(self) -> str: ...
        @property
        def container_id(self) -> str: ...
        @property
        def netns(self) -> str: ...
        @property
        def ifname(self) -> str: ...
        @property
        def args(self) -> str: ...
        @property
        def config(self) -> Mapping[str, Any]: ...
        @property
        def config_bytes(self) -> bytes: ...
        @property
        def cni_version(self) -> str: ...

    class MetaPlugin(Protocol):
        """A meta plugin as the handler drives it."""

        name: str
        supported_versions: tuple[str, ...]

        def add(self, request: MetaRequest) -> AnyResult: ...
        def delete(self, request: MetaRequest) -> None: ...
        def check(self, request: MetaRequest) -> None: ...

__all__ = ["MetaExecHandler", "PlainRequest", "result_output", "typed_result"]


class PlainRequest:
    """A request as plain attributes (the exec path's stand-in for ``PluginRequest``, for the meta plugins and
    the executed bridge alike): the skeleton's environment (``env``, and its fields), the configuration."""

    __slots__ = ("args", "cni_version", "command", "config", "config_bytes", "container_id", "env", "ifname",
                 "netns", "path")

    def __init__(self, env: CNIEnvironment, config: Mapping[str, Any], config_bytes: bytes, cni_version: str) -> None:
        self.env = env
        self.path = env.path
        self.command = env.command
        self.container_id = env.container_id
        self.netns = env.netns
        self.ifname = env.ifname
        self.args = env.args
        self.config = config
        self.config_bytes = config_bytes
        self.cni_version = cni_version


class MetaExecHandler:
    """The skeleton's handler for a meta plugin (ADD, DEL, CHECK; GC and STATUS do nothing).

    Args:
        build: makes the plugin; called on the first ADD, DEL or CHECK only, so GC and
            STATUS never load the plugin's module.
        name: the plugin's name.
        supported_versions: the versions it accepts (the plugin's own ``supported_versions``).
    """

    def __init__(self, build: Callable[[], MetaPlugin], name: str, supported_versions: tuple[str, ...]) -> None:
        self._build = build
        self.plugin: MetaPlugin | None = None
        self.name = name
        self.supported_versions = supported_versions

    def handle(self, command: str, env: CNIEnvironment, config: dict[str, Any], config_bytes: bytes,
               cni_version: str) -> str | None:
        """See the skeleton's ``ExecHandler``."""
        if command not in ("ADD", "DEL", "CHECK"):
            return None
        if self.plugin is None:
            self.plugin = self._build()
        request = PlainRequest(env, config, config_bytes, cni_version)
        if command == "ADD":
            output = getattr(self.plugin, "add_output", None)
            if output is not None:
                # The plugin prints its result on plain values (no result types).
                return output(request)  # type: ignore[no-any-return]
            return self.plugin.add(request).as_version(cni_version).to_json()
        if command == "DEL":
            self.plugin.delete(request)
        elif command == "CHECK":
            self.plugin.check(request)
        return None


def result_output(result: Mapping[str, Any], version: str) -> str:
    """A read ``prevResult`` printed at ``version`` as a reference plugin prints its result.

    Within the result's family with the standard library; to another family (a
    caller whose version differs from the configuration's) through the result types.
    """
    from cnicore._json import marshal_indent
    from cnicore.spec._resultread import plain_result_object
    from cnicore.spec._version import result_family

    if result_family(version or "0.1.0") == result["family"]:
        return marshal_indent(plain_result_object(result, version))
    return typed_result(result, version).to_json()


def typed_result(result: Mapping[str, Any], version: str) -> AnyResult:
    """A read ``prevResult`` as the result types, converted to ``version``."""
    from cnicore.spec._result import result_from_plain

    return result_from_plain(result).as_version(version)
