"""What a plugin is: an object with add/delete/check (and gc/status) over typed requests.

The runtime calls plugins in-process through this interface; the exec skeleton
(:mod:`cnicore.plugins._skel`) turns a process invocation (``CNI_*`` variables
and the configuration on stdin) into the same calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from cnicore.spec._environ import CNIEnvironment
from cnicore.spec._result import AnyResult
from cnicore.spec._validate import validate_environment_value
from cnicore.spec._version import ALL_VERSIONS

__all__ = ["Plugin", "PluginRequest"]


def _environment_value(variable: str) -> Any:
    """An attrs validator: the field travels as ``variable`` and may not hold NUL (code 4)."""
    def check(_instance: object, _attribute: object, value: str) -> None:
        validate_environment_value(variable, value)

    return check


@attrs.frozen(kw_only=True)
class PluginRequest:
    """One invocation of a plugin.

    Attributes:
        command: ``ADD``, ``DEL``, ``CHECK``, ``GC`` or ``STATUS``.
        container_id: ``CNI_CONTAINERID`` (empty for GC and STATUS).
        netns: ``CNI_NETNS`` (may be empty on DEL).
        ifname: ``CNI_IFNAME``.
        args: raw ``CNI_ARGS``.
        path: the plugin search path (``CNI_PATH``), for delegating to IPAM plugins.
        config: the decoded network configuration the plugin was given.
        config_bytes: the exact configuration bytes (delegated plugins get them as they are).
        cni_version: the configuration's ``cniVersion`` (``""`` when absent).
    """

    command: str
    container_id: str = attrs.field(default="", validator=_environment_value("CNI_CONTAINERID"))
    netns: str = attrs.field(default="", validator=_environment_value("CNI_NETNS"))
    ifname: str = attrs.field(default="", validator=_environment_value("CNI_IFNAME"))
    args: str = attrs.field(default="", validator=_environment_value("CNI_ARGS"))
    path: tuple[str, ...] = ()
    config: Mapping[str, Any] = attrs.field(factory=dict)
    config_bytes: bytes = b""
    cni_version: str = ""

    @classmethod
    def from_environment(cls, env: CNIEnvironment, config: Mapping[str, Any], config_bytes: bytes,
                         cni_version: str) -> PluginRequest:
        """The request an exec'd plugin receives: its environment and its stdin."""
        return cls(command=env.command, container_id=env.container_id, netns=env.netns, ifname=env.ifname,
                   args=env.args, path=env.path, config=config, config_bytes=config_bytes,
                   cni_version=cni_version)

    @property
    def network_name(self) -> str:
        """The configuration's ``name`` (``""`` when absent)."""
        name = self.config.get("name", "")
        return name if isinstance(name, str) else ""


@runtime_checkable
class Plugin(Protocol):
    """A CNI plugin called in-process.

    ``add`` returns the result in any version (the caller converts it to the
    configuration's version when printing). ``gc`` and ``status`` may be None:
    the command then succeeds without doing anything, as in the reference
    skeleton. Errors are :class:`~cnicore.CNIError`; anything else is reported
    as code 999.
    """

    #: The plugin's type name (``"loopback"``): the binary name it is installed under.
    name: str
    #: The spec versions it accepts.
    supported_versions: tuple[str, ...]

    def add(self, request: PluginRequest) -> AnyResult:
        """ADD: attach the container; return the result."""
        ...

    def delete(self, request: PluginRequest) -> None:
        """DEL: undo ADD; succeed when there is nothing to undo."""
        ...

    def check(self, request: PluginRequest) -> None:
        """CHECK: raise when what ADD made is missing or wrong."""
        ...


#: What a plugin supports unless it says otherwise: every version.
DEFAULT_VERSIONS = ALL_VERSIONS
