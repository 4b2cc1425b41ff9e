"""The public names of cnicore.plugins, pinned, and each one reachable and documented."""

from __future__ import annotations

import cnicore.plugins as plugins

EXPECTED = {
    "DEFAULT_BRIDGE", "INSTALLED_PLUGINS", "LOOPBACK_MAC", "PLUGIN_MARKER", "REFERENCE_INTERNAL_CODES",
    "VALID_ATTACHMENTS_KEY", "BridgeConfig", "BridgePlugin", "HostLocalPlugin", "IPAMDelegate", "LoopbackPlugin",
    "FirewallPlugin", "Plugin", "PluginRequest", "PortMapPlugin", "TuningPlugin", "about_text", "allocation_result",
    "calc_gateways", "entry_point_script",
    "install_plugins", "is_cnicore_plugin", "is_delegated", "load_bridge_config", "mark_delegated", "reference_code",
    "run_plugin", "valid_attachments",
}


def test_public_names_are_pinned() -> None:
    assert set(plugins.__all__) == EXPECTED
    assert sorted(dir(plugins)) == sorted(EXPECTED)


def test_every_public_callable_is_documented() -> None:
    for name in plugins.__all__:
        value = getattr(plugins, name)
        if callable(value):
            assert value.__doc__, name


def test_plugins_satisfy_the_protocol() -> None:
    from cnicore.backends import FakeFirewall, FakeLinkBackend

    backend = FakeLinkBackend()
    for plugin in (plugins.LoopbackPlugin(backend), plugins.BridgePlugin(backend, FakeFirewall()),
                   plugins.HostLocalPlugin()):
        assert isinstance(plugin, plugins.Plugin)
        assert plugin.supported_versions[-1] == "1.1.0"
