"""The network configuration engine: parse, validate, look up and derive CNI configurations.

Everything here is pure (standard library and attrs; file reads and ``stat`` only)
and follows libcni, the library every runtime uses, so that configurations that
load there load here, fail with the same messages, and plugins receive the same
stdin bytes:

* values: :class:`PluginConfig` (one plugin; a ``.conf``/``.json`` file or a list
  entry) and :class:`NetworkConfigList` (a network; a ``.conflist`` or an
  upconverted single config). Both are frozen and keep the decoded document
  (``raw``, unknown keys included) and the original ``bytes``.
* parsing: :func:`parse_plugin_config`, :func:`parse_network_config_list` (from
  bytes, text or a decoded mapping), :func:`load_plugin_config`,
  :func:`load_network_config_list` (files, with the sibling ``<dir>/<name>/*.conf``
  plugins), :func:`conf_list_from_conf` (upconversion), and the validators.
* directories: :func:`load_network_config` (libcni's lookup by name),
  :func:`list_networks` (every network, the runtime way, failures reported),
  :func:`find_duplicate_networks` / :func:`check_unique_network_names`,
  :func:`conf_files`.
* requests: :func:`build_request` (ADD/CHECK/DEL/STATUS stdin), :func:`build_gc_request`,
  :func:`inject_config`, :func:`runtime_config`.
* plugin lookup: :func:`find_in_path`.

Errors are :class:`~cnicore.DecodingError` (code 6: not JSON, or a value Go could
not decode) or :class:`~cnicore.InvalidConfigError` (code 7), naming the file, key
path and value; unreadable files are :class:`~cnicore.IOFailureError` (code 5).

The names load on first use: a plugin that only looks itself up on ``CNI_PATH``
(:func:`find_in_path`, the exec'd bridge delegating to its IPAM plugin) loads
neither the parser nor the directory lookup.
"""

from __future__ import annotations

from cnicore._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cnicore.config._directory import (
        CONFIG_EXTENSIONS,
        DuplicateNetwork,
        NetworkListing,
        check_unique_network_names,
        conf_files,
        find_duplicate_networks,
        list_networks,
        load_conf,
        load_network_config,
    )
    from cnicore.config._lookup import find_in_path
    from cnicore.config._model import NetworkConfigList, PluginConfig
    from cnicore.config._parse import (
        ConfigSource,
        conf_list_from_conf,
        load_network_config_list,
        load_plugin_config,
        parse_network_config_list,
        parse_plugin_config,
        plugin_configs_from_dir,
        validate_network_config_list,
        validate_plugin_config,
    )
    from cnicore.config._request import build_gc_request, build_request, inject_config, runtime_config

__all__ = [
    "CONFIG_EXTENSIONS",
    "ConfigSource",
    "DuplicateNetwork",
    "NetworkConfigList",
    "NetworkListing",
    "PluginConfig",
    "build_gc_request",
    "build_request",
    "check_unique_network_names",
    "conf_files",
    "conf_list_from_conf",
    "find_duplicate_networks",
    "find_in_path",
    "inject_config",
    "list_networks",
    "load_conf",
    "load_network_config",
    "load_network_config_list",
    "load_plugin_config",
    "parse_network_config_list",
    "parse_plugin_config",
    "plugin_configs_from_dir",
    "runtime_config",
    "validate_network_config_list",
    "validate_plugin_config",
]

_LAZY = {
    "CONFIG_EXTENSIONS": "_directory", "DuplicateNetwork": "_directory", "NetworkListing": "_directory",
    "check_unique_network_names": "_directory", "conf_files": "_directory", "find_duplicate_networks": "_directory",
    "list_networks": "_directory", "load_conf": "_directory", "load_network_config": "_directory",
    "find_in_path": "_lookup", "NetworkConfigList": "_model", "PluginConfig": "_model", "ConfigSource": "_parse",
    "conf_list_from_conf": "_parse", "load_network_config_list": "_parse", "load_plugin_config": "_parse",
    "parse_network_config_list": "_parse", "parse_plugin_config": "_parse", "plugin_configs_from_dir": "_parse",
    "validate_network_config_list": "_parse", "validate_plugin_config": "_parse", "build_gc_request": "_request",
    "build_request": "_request", "inject_config": "_request", "runtime_config": "_request",
}

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
