"""The exact stdin a runtime gives each plugin of a network (request configuration derivation).

The spec (section 3) says: insert ``name`` and ``cniVersion`` (the list's), insert
``runtimeConfig`` with the enabled capabilities the runtime supplied, insert
``prevResult`` except for the first ADD, and remove ``capabilities``.

libcni, which every runtime uses and whose bytes plugins see, differs, and cnicore
follows libcni so that plugins get identical stdin:

* ``capabilities`` is **not** removed (the spec says it must not be set).
* The document is decoded into a Go map, the keys injected, and re-marshalled:
  compact JSON, keys sorted at every level, numbers in Go's float64 spelling.
* ``prevResult`` is injected as a Go *struct* (the result object), so its keys keep
  the result's own order, unless ``runtimeConfig`` is also injected: that second
  injection decodes and re-marshals the whole document again, sorting the
  previous result's keys too. Both are reproduced: pass the previous result as
  the mapping the result module serialises (its key order is kept).
* ``runtimeConfig`` is injected only when the intersection of enabled capabilities
  and supplied arguments is non-empty; it then replaces any ``runtimeConfig`` the
  file had. Otherwise a ``runtimeConfig`` in the file passes through.

GC requests carry the valid attachments under both ``cni.dev/valid-attachments``
and ``cni.dev/attachments`` (spec 1.1.0 used the latter name; libcni sends both).
STATUS requests carry only ``name`` and ``cniVersion``: use :func:`build_request`
with no previous result and no capability arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cnicore._errors import DecodingError, InvalidConfigError
from cnicore._gofmt import go_type_name
from cnicore._json import decode
from cnicore.config._gojson import go_map_marshal, rebuild
from cnicore.config._model import NetworkConfigList, PluginConfig, thaw

__all__ = ["build_gc_request", "build_request", "inject_config", "runtime_config"]


def _plain(value: Any) -> Any:
    # Mappings and sequences from the caller, as the plain dicts/lists json understands.
    return rebuild(value)


def _marshal(document: Mapping[str, Any], verbatim: Mapping[str, Any] | None = None) -> bytes:
    try:
        return go_map_marshal(document, verbatim)
    except DecodingError:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidConfigError(f"json: unsupported value: {exc}", "a value cannot be written as JSON") from exc


def inject_config(plugin: PluginConfig | bytes, values: Mapping[str, Any]) -> bytes:
    """libcni's ``InjectConf``: decode, set ``values`` at the top level, re-marshal (keys sorted).

    Raises:
        DecodingError: (code 6) ``unmarshal existing network bytes: ...``.
        InvalidConfigError: (code 7) ``keys cannot be empty`` or ``key '<k>' value must not be nil``.
    """
    original = plugin.bytes if isinstance(plugin, PluginConfig) else plugin
    try:
        document = decode(original, what="network config")
    except DecodingError as exc:
        raise DecodingError(f"unmarshal existing network bytes: {exc.msg}", exc.details) from exc
    if not isinstance(document, dict):
        raise DecodingError("unmarshal existing network bytes: json: cannot unmarshal "
                            f"{go_type_name(document)} into Go value of type map[string]interface {{}}")
    for key, value in values.items():
        if key == "":
            raise InvalidConfigError("keys cannot be empty")
        if value is None:
            raise InvalidConfigError(f"key '{key}' value must not be nil", key=key)
        document[key] = _plain(value)
    return _marshal(document)


def runtime_config(plugin: PluginConfig, capability_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{capability: value}`` for each capability enabled in the plugin and supplied by the runtime."""
    if not capability_args:
        return {}
    return {name: _plain(capability_args[name]) for name in plugin.enabled_capabilities() if name in capability_args}


def _plugin_of(network: NetworkConfigList, plugin: PluginConfig | int) -> PluginConfig:
    if isinstance(plugin, int):
        try:
            return network.plugins[plugin]
        except IndexError as exc:
            raise InvalidConfigError(f"network {network.name!r} has no plugin {plugin}", key="plugins",
                                     value=plugin) from exc
    return plugin


def build_request(
    network: NetworkConfigList,
    plugin: PluginConfig | int,
    *,
    prev_result: Mapping[str, Any] | None = None,
    capability_args: Mapping[str, Any] | None = None,
) -> bytes:
    """The stdin libcni gives ``plugin`` of ``network`` for ADD, CHECK, DEL or STATUS.

    Args:
        network: the network (its ``name`` and selected ``cni_version`` are injected).
        plugin: one of its plugins, or its index.
        prev_result: the previous result as a serialised result object (key order
            kept, see the module docstring), or None for none.
        capability_args: what the runtime supplies per capability (``portMappings``,
            ``ipRanges``, ...); only enabled capabilities are passed on.

    Returns:
        Compact JSON bytes, byte-identical to libcni's.
    """
    chosen = _plugin_of(network, plugin)
    document = thaw(chosen.raw)
    document["name"] = network.name
    document["cniVersion"] = network.cni_version
    verbatim = {"prevResult": _plain(prev_result)} if prev_result is not None else None
    if verbatim is not None:
        document.pop("prevResult", None)
    stdin = _marshal(document, verbatim)
    extra = runtime_config(chosen, capability_args)
    if extra:
        # libcni's second InjectConf round trip: everything is a Go map now.
        return inject_config(stdin, {"runtimeConfig": extra})
    return stdin


def build_gc_request(
    network: NetworkConfigList,
    plugin: PluginConfig | int,
    *,
    valid_attachments: Iterable[tuple[str, str]] | None,
) -> bytes:
    """The stdin libcni gives ``plugin`` of ``network`` for GC.

    Args:
        valid_attachments: (container ID, interface name) of every attachment still in
            use, or None when the runtime passes no GC arguments (then neither
            attachments key is written).
    """
    chosen = _plugin_of(network, plugin)
    document = thaw(chosen.raw)
    document["name"] = network.name
    document["cniVersion"] = network.cni_version
    if valid_attachments is not None:
        attachments = [{"containerID": cid, "ifname": ifname} for cid, ifname in valid_attachments]
        document["cni.dev/valid-attachments"] = attachments
        document["cni.dev/attachments"] = attachments
    return _marshal(document)
