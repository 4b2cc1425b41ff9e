"""Parsing plugin configurations and configuration lists, with libcni's rules and messages.

Messages are libcni's, word for word (``error parsing configuration list: no name``,
``failed to parse plugin config 1: error parsing configuration: missing 'type'``,
...), because runtimes and users match them. The key path and the offending value
go into ``key``/``value`` and ``details``, together with the file when there is one.

Codes: 6 (:class:`~cnicore.DecodingError`) when the bytes are not JSON or a value
cannot be decoded into the type libcni decodes it into (Go's ``json: cannot
unmarshal ...``, an unparsable version); 7 (:class:`~cnicore.InvalidConfigError`)
for everything libcni checks itself (no name, wrong type of ``name`` or
``plugins``, no plugins, missing ``type``, a bad boolean) and for the validation
step. Reading a file that cannot be read is an I/O failure (code 5).

Libcni quirks kept on purpose:

* ``disableCheck``, ``disableGC`` and ``loadOnlyInlinedPlugins`` accept JSON
  booleans and the strings ``"true"``/``"false"`` in any case.
* ``cniVersions`` entries newer than the library are dropped, ``cniVersion`` joins
  them, the highest wins; ``cniVersion`` alone is used verbatim.
* A wrongly typed ``cniVersions`` is reported as ``invalid type for cniVersions:
  []interface {}`` whatever its type: libcni formats the failed conversion's
  result, not the value.
* Without ``plugins`` (and without ``loadOnlyInlinedPlugins``) a list parses from
  bytes; loading it from a file then needs plugins in ``<dir>/<name>/*.conf``.

Validation (``validate=True``, the default) goes further than libcni's parser and
does what libcni only does when a network is used: the network name must match
the spec's rule (code 7, so ``/`` and ``..`` cannot reach a file path), each
plugin type must not contain ``/`` or ``\\`` (it becomes a path under
``CNI_PATH``), and the selected version must parse (code 6). A well-formed but
unknown version (``"1.2.3"``) is accepted: plugins refuse it with code 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from cnicore._errors import CNIError, DecodingError, InvalidConfigError, IOFailureError
from cnicore._gofmt import go_quote, go_type_name
from cnicore._json import decode, marshal
from cnicore._readfile import MAX_DOCUMENT_BYTES, read_regular
from cnicore.config._gojson import (
    check_go_numbers,
    decode_plugin_struct,
    go_dynamic_type,
    go_map_marshal,
)
from cnicore.config._model import NetworkConfigList, PluginConfig
from cnicore.spec._validate import validate_network_name
from cnicore.spec._version import CURRENT_VERSION, parse_version, select_version, version_greater

__all__ = [
    "ConfigSource",
    "conf_list_from_conf",
    "load_network_config_list",
    "load_plugin_config",
    "parse_network_config_list",
    "parse_plugin_config",
    "plugin_configs_from_dir",
    "validate_network_config_list",
    "validate_plugin_config",
]

#: What the parsers accept: the bytes or text of a document, or an already decoded object.
ConfigSource = bytes | bytearray | str | Mapping[str, Any]

_LIST = "error parsing configuration list: "
_CONF = "error parsing configuration: "


def _details(path: str | None, key: str | None, value: Any, has_value: bool, extra: str = "") -> str:
    parts: list[str] = []
    if path:
        parts.append(f"file {path}")
    if key:
        shown = f"key {key}"
        if has_value:
            shown += f" = {_short(value)}"
        parts.append(shown)
    if extra:
        parts.append(extra)
    return ", ".join(parts)


def _short(value: Any) -> str:
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _fail(cls: type[CNIError], msg: str, *, path: str | None, key: str | None = None,
          value: Any = None, has_value: bool = False, extra: str = "") -> CNIError:
    details = _details(path, key, value, has_value, extra)
    if has_value:
        return cls(msg, details, key=key, value=value)
    return cls(msg, details, key=key)


def _rewrap(exc: CNIError, prefix: str, *, path: str | None, key_prefix: str | None) -> CNIError:
    """The same error class with libcni's wrapping prefix and the key path made absolute."""
    key = exc.key
    if key_prefix is not None:
        key = f"{key_prefix}.{key}" if key else key_prefix
    return _fail(type(exc), prefix + exc.msg, path=path, key=key, value=exc.value, has_value=exc.has_value)


def _decode(data: ConfigSource, prefix: str, path: str | None) -> tuple[Any, bytes]:
    """Decode a source into (document, bytes). Mappings are re-marshalled as Go would."""
    if isinstance(data, Mapping):
        try:
            raw = go_map_marshal(data)
        except (TypeError, ValueError) as exc:
            raise _fail(DecodingError, prefix + f"json: unsupported value: {exc}", path=path) from exc
        data = raw
    raw_bytes = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    try:
        # Go decodes every number of a configuration into a float64, so an integer -0 stays negative zero and
        # libcni writes it back as -0 in the plugin's stdin.
        document = decode(raw_bytes, what="network config", keep_negative_zero=True)
    except DecodingError as exc:
        raise _fail(DecodingError, prefix + exc.msg, path=path, extra=exc.details) from exc
    try:
        check_go_numbers(document, prefix=prefix, what="network config")
    except DecodingError as exc:
        raise _fail(DecodingError, exc.msg, path=path, key=exc.key) from exc
    return document, raw_bytes


def _plugin_from_document(document: Any, raw_bytes: bytes, *, path: str | None, prefix: str,
                          key_prefix: str | None) -> PluginConfig:
    try:
        fields = decode_plugin_struct(document)
    except DecodingError as exc:
        raise _rewrap(exc, prefix + _CONF, path=path, key_prefix=key_prefix) from exc
    if fields.type == "":
        raise _fail(InvalidConfigError, prefix + _CONF + "missing 'type'", path=path,
                    key=f"{key_prefix}.type" if key_prefix else "type")
    assert isinstance(document, dict)  # a non-object never has a type
    return PluginConfig(
        type=fields.type,
        name=fields.name,
        cni_version=fields.cni_version,
        capabilities=fields.capabilities,
        ipam_type=fields.ipam_type,
        raw=document,
        bytes=raw_bytes,
        path=path,
    )


def parse_plugin_config(data: ConfigSource, *, path: str | None = None, validate: bool = True) -> PluginConfig:
    """Parse a single plugin configuration (a ``.conf``/``.json`` file), as libcni's ``ConfFromBytes``.

    Args:
        data: the document's bytes or text, or a decoded object (re-marshalled with
            sorted keys to give :attr:`PluginConfig.bytes`).
        path: the file it came from, for messages and :attr:`PluginConfig.path`.
        validate: also apply :func:`validate_plugin_config` (name and type rules).

    Raises:
        DecodingError: (code 6) not JSON, or ``error parsing configuration: json:
            cannot unmarshal ...``.
        InvalidConfigError: (code 7) ``error parsing configuration: missing 'type'``,
            or a validation failure.
    """
    document, raw_bytes = _decode(data, _CONF, path)
    plugin = _plugin_from_document(document, raw_bytes, path=path, prefix="", key_prefix=None)
    if validate:
        validate_plugin_config(plugin, require_name=True)
    return plugin


def validate_plugin_config(plugin: PluginConfig, *, require_name: bool = False, key: str = "") -> None:
    """Check what libcni checks only when a plugin is used.

    The type must not contain ``/`` or ``\\``; with ``require_name`` the name must
    be a valid network name; the plugin's own ``cniVersion`` must parse.

    Raises:
        InvalidConfigError: (code 7) ``invalid plugin name: <type>`` or a bad network name.
        DecodingError: (code 6) an unparsable ``cniVersion``.
    """
    where = f"{key}." if key else ""
    if "/" in plugin.type or "\\" in plugin.type:
        raise _fail(InvalidConfigError, f"invalid plugin name: {plugin.type}", path=plugin.path,
                    key=f"{where}type", value=plugin.type, has_value=True)
    if require_name:
        _validate_name(plugin.name, plugin.path)
    if plugin.cni_version:
        _validate_version(plugin.cni_version, plugin.path, f"{where}cniVersion")


def _validate_name(name: str, path: str | None) -> None:
    try:
        validate_network_name(name)
    except InvalidConfigError as exc:
        raise _fail(InvalidConfigError, exc.msg, path=path, key="name", value=name, has_value=True) from exc


def _validate_version(version: str, path: str | None, key: str) -> None:
    try:
        parse_version(version)
    except DecodingError as exc:
        raise _fail(DecodingError, exc.msg, path=path, key=key, value=version, has_value=True) from exc


def validate_network_config_list(network: NetworkConfigList) -> None:
    """Check what libcni checks only when a network is used (see the module docstring).

    Raises:
        InvalidConfigError: (code 7) a bad network name, a plugin type with a path
            separator, or a list without plugins.
        DecodingError: (code 6) an unparsable selected version.
    """
    _validate_name(network.name, network.path)
    if network.cni_version:
        _validate_version(network.cni_version, network.path, "cniVersion")
    for index, plugin in enumerate(network.plugins):
        if "/" in plugin.type or "\\" in plugin.type:
            raise _fail(InvalidConfigError, f"invalid plugin name: {plugin.type}", path=plugin.path or network.path,
                        key=f"plugins[{index}].type", value=plugin.type, has_value=True)


def _read_bool(document: dict[str, Any], key: str, path: str | None) -> bool:
    if key not in document:
        return False
    value = document[key]
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise _fail(InvalidConfigError, _LIST + f"invalid type {go_dynamic_type(value)} for {key}", path=path,
                    key=key, value=value, has_value=True)
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise _fail(InvalidConfigError, _LIST + f"invalid value {go_quote(lowered)} for {key}", path=path, key=key,
                value=value, has_value=True)


def _select(document: dict[str, Any], path: str | None) -> tuple[str, tuple[str, ...]]:
    cni_version = ""
    if "cniVersion" in document:
        raw_version = document["cniVersion"]
        if not isinstance(raw_version, str):
            raise _fail(InvalidConfigError, _LIST + f"invalid cniVersion type {go_dynamic_type(raw_version)}",
                        path=path, key="cniVersion", value=raw_version, has_value=True)
        cni_version = raw_version
    if "cniVersions" not in document:
        return cni_version, ()
    raw_versions = document["cniVersions"]
    if not isinstance(raw_versions, list):
        # libcni formats the (nil) result of the failed conversion, whose type is
        # always []interface {}, not the offending value's type.
        raise _fail(InvalidConfigError, _LIST + "invalid type for cniVersions: []interface {}", path=path,
                    key="cniVersions", value=raw_versions, has_value=True)
    versions: list[str] = []
    for index, entry in enumerate(raw_versions):
        if not isinstance(entry, str):
            raise _fail(InvalidConfigError,
                        _LIST + f"invalid type for cniVersions index {index}: {go_dynamic_type(entry)}",
                        path=path, key=f"cniVersions[{index}]", value=entry, has_value=True)
        try:
            version_greater(entry, CURRENT_VERSION)
        except DecodingError as exc:
            raise _fail(DecodingError, _LIST + f"invalid cniVersions entry {entry} at index {index}: {exc.msg}",
                        path=path, key=f"cniVersions[{index}]", value=entry, has_value=True) from exc
        versions.append(entry)
    if cni_version:
        try:
            version_greater(cni_version, CURRENT_VERSION)
        except DecodingError as exc:
            raise _fail(DecodingError, _LIST + f"invalid cniVersion {cni_version}: {exc.msg}", path=path,
                        key="cniVersion", value=cni_version, has_value=True) from exc
    if not versions and not cni_version:
        # libcni: an empty cniVersions list leaves the version empty.
        return "", ()
    selected = select_version(cni_version or None, versions) if versions else cni_version
    return selected, tuple(versions)


def parse_network_config_list(data: ConfigSource, *, path: str | None = None,
                              validate: bool = True) -> NetworkConfigList:
    """Parse a configuration list (a ``.conflist`` document), as libcni's ``NetworkConfFromBytes``.

    Only inline ``plugins`` are read; :func:`load_network_config_list` adds the
    sibling folder's plugins. Each inline plugin's :attr:`PluginConfig.bytes` is
    the entry re-marshalled as Go does (sorted keys).

    Args:
        data: the document's bytes or text, or a decoded object.
        path: the file it came from, for messages and :attr:`NetworkConfigList.path`.
        validate: also apply :func:`validate_network_config_list`.

    Raises:
        DecodingError: (code 6) not JSON, an unparsable version, or a plugin entry Go
            cannot decode.
        InvalidConfigError: (code 7) libcni's checks (see the module docstring) or
            a validation failure.
    """
    document, raw_bytes = _decode(data, _LIST, path)
    if document is None:
        document = {}  # Go decodes null into a nil map: every key is then absent
    if not isinstance(document, dict):
        raise _fail(DecodingError, _LIST + f"json: cannot unmarshal {go_type_name(document)} into Go value of type "
                    "map[string]interface {}", path=path, value=document, has_value=True)
    if "name" not in document:
        raise _fail(InvalidConfigError, _LIST + "no name", path=path, key="name")
    name = document["name"]
    if not isinstance(name, str):
        raise _fail(InvalidConfigError, _LIST + f"invalid name type {go_dynamic_type(name)}", path=path,
                    key="name", value=name, has_value=True)
    cni_version, cni_versions = _select(document, path)
    disable_check = _read_bool(document, "disableCheck", path)
    disable_gc = _read_bool(document, "disableGC", path)
    inlined_only = _read_bool(document, "loadOnlyInlinedPlugins", path)
    plugins: list[PluginConfig] = []
    if "plugins" not in document:
        if inlined_only:
            raise _fail(InvalidConfigError,
                        _LIST + "`loadOnlyInlinedPlugins` is true, and no 'plugins' key", path=path,
                        key="plugins")
    else:
        entries = document["plugins"]
        if not isinstance(entries, list):
            raise _fail(InvalidConfigError, _LIST + f"invalid 'plugins' type {go_dynamic_type(entries)}", path=path,
                        key="plugins", value=entries, has_value=True)
        if not entries:
            raise _fail(InvalidConfigError, _LIST + "no plugins in list", path=path, key="plugins")
        for index, entry in enumerate(entries):
            # libcni re-marshals each entry and parses it as a plugin config.
            try:
                entry_bytes = go_map_marshal(entry) if isinstance(entry, dict) else _scalar_bytes(entry)
            except DecodingError as exc:
                raise _fail(DecodingError, f"failed to marshal plugin config {index}: {exc.msg}", path=path,
                            key=f"plugins[{index}]") from exc
            plugins.append(_plugin_from_document(entry, entry_bytes, path=path,
                                                 prefix=f"failed to parse plugin config {index}: ",
                                                 key_prefix=f"plugins[{index}]"))
    network = NetworkConfigList(
        name=name,
        cni_version=cni_version,
        cni_versions=cni_versions,
        disable_check=disable_check,
        disable_gc=disable_gc,
        load_only_inlined_plugins=inlined_only,
        plugins=tuple(plugins),
        raw=document,
        bytes=raw_bytes,
        path=path,
    )
    if validate:
        validate_network_config_list(network)
    return network


def _scalar_bytes(value: Any) -> bytes:
    return marshal(value).encode("utf-8")


def conf_list_from_conf(plugin: PluginConfig, *, validate: bool = True) -> NetworkConfigList:
    """Upconvert a single plugin configuration to a one-plugin list (libcni's ``ConfListFromConf``).

    The list is ``{"cniVersion": <plugin's>, "name": <plugin's>, "plugins": [<the
    original object>]}``, marshalled with sorted keys as Go does; :attr:`path` is
    carried over.
    """
    document = {"name": plugin.name, "cniVersion": plugin.cni_version, "plugins": [plugin.raw_dict()]}
    try:
        data = go_map_marshal(document)
    except DecodingError as exc:
        raise _fail(DecodingError, exc.msg, path=plugin.path, extra=exc.details) from exc
    return parse_network_config_list(data, path=plugin.path, validate=validate)


def _read(path: str) -> bytes:
    try:
        return read_regular(path, MAX_DOCUMENT_BYTES)
    except IsADirectoryError as exc:
        # Go opens a directory fine and fails on the read.
        raise IOFailureError(f"error reading {path}: read {path}: is a directory") from exc
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise IOFailureError(f"error reading {path}: open {path}: {reason}") from exc


def load_plugin_config(path: str | os.PathLike[str], *, validate: bool = True) -> PluginConfig:
    """Read and parse a single plugin configuration file (libcni's ``ConfFromFile``).

    Raises:
        IOFailureError: (code 5) ``error reading <path>: ...``.
        DecodingError, InvalidConfigError: as :func:`parse_plugin_config`.
    """
    name = os.fspath(path)
    return parse_plugin_config(_read(name), path=name, validate=validate)


def plugin_configs_from_dir(directory: str | os.PathLike[str]) -> tuple[PluginConfig, ...]:
    """The plugins in ``<directory>/*.conf``, sorted by file name (libcni's ``NetworkPluginConfsFromFiles``).

    A missing directory gives no plugins. Each file must have a ``type``; a name is
    not required (the folder names the network).

    Raises:
        IOFailureError: (code 5) the folder or a file in it cannot be read.
        DecodingError, InvalidConfigError: a plugin file fails to parse or validate.
    """
    from cnicore.config._directory import conf_files

    found: list[PluginConfig] = []
    try:
        files = conf_files(directory, (".conf",))
    except IOFailureError as exc:
        raise IOFailureError(f"failed to read plugin config files in {os.fspath(directory)}: {exc.msg}") from exc
    for file in files:
        plugin = parse_plugin_config(_read(file), path=file, validate=False)
        validate_plugin_config(plugin)
        found.append(plugin)
    return tuple(found)


def load_network_config_list(path: str | os.PathLike[str], *, validate: bool = True) -> NetworkConfigList:
    """Read a ``.conflist`` file with its sibling plugins (libcni's ``NetworkConfFromFile``).

    Unless ``loadOnlyInlinedPlugins`` is true, the plugins in
    ``<dir of path>/<network name>/*.conf`` (sorted) are appended after the inline
    ones. A network with no plugin at all is an error: ``no plugin configs found``.

    Raises:
        IOFailureError: (code 5) the file or the sibling folder cannot be read.
        DecodingError, InvalidConfigError: as :func:`parse_network_config_list`, or
            ``no plugin configs found`` (code 7).
    """
    name = os.fspath(path)
    network = parse_network_config_list(_read(name), path=name, validate=validate)
    plugins = network.plugins
    # The network name becomes a path component here: an unvalidated name such as
    # ".." must not send us into another folder.
    safe_name = validate or (network.name and "/" not in network.name and network.name not in (".", ".."))
    if not network.load_only_inlined_plugins and safe_name:
        plugins = plugins + plugin_configs_from_dir(os.path.join(os.path.dirname(name), network.name))
    if not plugins:
        raise _fail(InvalidConfigError, "no plugin configs found", path=name, key="plugins")
    if plugins is network.plugins:
        return network
    return NetworkConfigList(
        name=network.name,
        cni_version=network.cni_version,
        cni_versions=network.cni_versions,
        disable_check=network.disable_check,
        disable_gc=network.disable_gc,
        load_only_inlined_plugins=network.load_only_inlined_plugins,
        plugins=plugins,
        raw=network.raw,
        bytes=network.bytes,
        path=name,
    )
