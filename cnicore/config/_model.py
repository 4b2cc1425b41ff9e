"""The configuration values: one plugin configuration, and a network (a configuration list).

Both are frozen and keep what they were parsed from: ``raw`` is the decoded
document (read-only, every unknown key preserved, because plugins read keys the
runtime has never heard of) and ``bytes`` the exact bytes, which the result cache
stores and which a plugin receives after injection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from cnicore.config._gojson import rebuild

__all__ = ["NetworkConfigList", "PluginConfig", "freeze", "thaw"]


def freeze(value: Any) -> Any:
    """A read-only deep copy of a decoded JSON value (objects -> mapping proxies, lists -> tuples)."""
    return rebuild(value, finish_map=MappingProxyType, finish_seq=tuple)


def thaw(value: Any) -> Any:
    """A mutable deep copy of a frozen (or plain) JSON value: dicts and lists again."""
    return rebuild(value)


def _freeze_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    frozen: Mapping[str, Any] = freeze(value)
    return frozen


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _plugin_tuple(value: Iterable[PluginConfig]) -> tuple[PluginConfig, ...]:
    return tuple(value)


def _freeze_capabilities(value: Mapping[str, bool]) -> Mapping[str, bool]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class PluginConfig:
    """One plugin's configuration: a ``.conf``/``.json`` file or an entry of ``plugins``.

    Attributes:
        type: the plugin binary name (``bridge``).
        name: the ``name`` key (``""`` when absent; a list's plugins usually have none).
        cni_version: the plugin object's own ``cniVersion`` (``""`` when absent). In a
            list the runtime overrides it with the list's selected version.
        capabilities: the ``capabilities`` map (capability -> enabled).
        ipam_type: ``ipam.type`` (``""`` when absent).
        raw: the whole decoded object, read-only, unknown keys included.
        bytes: the bytes the object was parsed from (for a list entry: the entry as
            Go re-marshals it, keys sorted).
        path: the file it came from, if any.
    """

    type: str
    name: str = ""
    cni_version: str = ""
    capabilities: Mapping[str, bool] = attrs.field(factory=dict, converter=_freeze_capabilities, hash=False)
    ipam_type: str = ""
    raw: Mapping[str, Any] = attrs.field(converter=_freeze_mapping, hash=False, repr=False)
    bytes: bytes = attrs.field(repr=False)
    path: str | None = attrs.field(default=None, eq=False)

    def raw_dict(self) -> dict[str, Any]:
        """A mutable deep copy of :attr:`raw`."""
        copy: dict[str, Any] = thaw(self.raw)
        return copy

    def enabled_capabilities(self) -> tuple[str, ...]:
        """The capabilities set to ``true``, sorted."""
        return tuple(sorted(name for name, on in self.capabilities.items() if on))


@attrs.frozen(kw_only=True)
class NetworkConfigList:
    """A network: a configuration list (``.conflist``), or a single config upconverted to one.

    Attributes:
        name: the network name.
        cni_version: the selected version: the highest of ``cniVersion`` and the
            ``cniVersions`` entries the library supports (libcni's rule, see
            :func:`cnicore.spec.select_version`); ``""`` when neither is given.
        cni_versions: the ``cniVersions`` list as written.
        disable_check: ``disableCheck``: the runtime answers CHECK without calling plugins.
        disable_gc: ``disableGC``: the runtime skips GC for this network.
        load_only_inlined_plugins: ``loadOnlyInlinedPlugins``: plugins come only from
            ``plugins``, never from the sibling ``<dir>/<name>/`` folder.
        plugins: the plugins, in chain order (inline first, then sibling files).
        raw: the decoded list document, read-only, unknown keys included.
        bytes: the bytes of the list document (what the result cache stores).
        path: the file it came from, if any.
    """

    name: str
    cni_version: str = ""
    cni_versions: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    disable_check: bool = False
    disable_gc: bool = False
    load_only_inlined_plugins: bool = False
    plugins: tuple[PluginConfig, ...] = attrs.field(default=(), converter=_plugin_tuple)
    raw: Mapping[str, Any] = attrs.field(converter=_freeze_mapping, hash=False, repr=False)
    bytes: bytes = attrs.field(repr=False)
    path: str | None = attrs.field(default=None, eq=False)

    def raw_dict(self) -> dict[str, Any]:
        """A mutable deep copy of :attr:`raw`."""
        copy: dict[str, Any] = thaw(self.raw)
        return copy
