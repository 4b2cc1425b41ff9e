"""The config package's public surface and its purity."""

from __future__ import annotations

import subprocess
import sys

import cnicore.config


def test_public_names_are_pinned() -> None:
    assert sorted(cnicore.config.__all__) == [
        "CONFIG_EXTENSIONS", "ConfigSource", "DuplicateNetwork", "NetworkConfigList", "NetworkListing",
        "PluginConfig", "build_gc_request", "build_request", "check_unique_network_names", "conf_files",
        "conf_list_from_conf", "find_duplicate_networks", "find_in_path", "inject_config", "list_networks",
        "load_conf", "load_network_config", "load_network_config_list", "load_plugin_config",
        "parse_network_config_list", "parse_plugin_config", "plugin_configs_from_dir", "runtime_config",
        "validate_network_config_list", "validate_plugin_config",
    ]
    for name in cnicore.config.__all__:
        assert getattr(cnicore.config, name) is not None
        obj = getattr(cnicore.config, name)
        if callable(obj) and not isinstance(obj, type(str | None)):
            assert obj.__doc__, name


def test_config_and_environment_are_pure() -> None:
    # A fresh interpreter: importing the engine must not drag in process, netlink or backend code.
    code = (
        "import sys\n"
        "import cnicore.config, cnicore.spec._environ\n"
        "bad = [m for m in sys.modules if m in ('subprocess', 'pyroute2', 'hypothesis')"
        " or m.startswith(('pyroute2.', 'cnicore.backends', 'backends'))]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
