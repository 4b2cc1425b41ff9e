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
"""

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
