"""Plugins: loopback, bridge, host-local, the meta plugins after bridge (tuning, firewall, portmap), the exec
protocol, and their installation.

A plugin is an object with ``add``/``delete``/``check`` (and ``gc``/``status``
where meaningful) taking a :class:`PluginRequest` and returning typed results;
a runtime calls them in process. The link backend and firewall are injected::

    from cnicore.backends import FakeLinkBackend, FakeFirewall
    plugin = BridgePlugin(FakeLinkBackend(), FakeFirewall())

:func:`run_plugin` runs any plugin as an exec'd binary (the reference's skeleton,
byte for byte); :func:`install_plugins` writes executables for a runtime's
``CNI_PATH``; :class:`IPAMDelegate` is how a main plugin reaches its IPAM plugin.

The names load on first use: an exec'd host-local or loopback must not pay for
importing the bridge plugin, nor the exec'd loopback for the request type (attrs)
(see :mod:`cnicore._plugin_main`).
"""

from __future__ import annotations

from cnicore._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cnicore.plugins._api import Plugin, PluginRequest
    from cnicore.plugins._bridge import DEFAULT_BRIDGE, BridgeConfig, BridgePlugin, calc_gateways, load_bridge_config
    from cnicore.plugins._delegate import PLUGIN_MARKER, IPAMDelegate, is_cnicore_plugin
    from cnicore.plugins._firewall import FirewallPlugin
    from cnicore.plugins._hostlocal import VALID_ATTACHMENTS_KEY, HostLocalPlugin, allocation_result, valid_attachments
    from cnicore.plugins._install import INSTALLED_PLUGINS, entry_point_script, install_plugins
    from cnicore.plugins._loopback import LOOPBACK_MAC, LoopbackPlugin
    from cnicore.plugins._portmap import PortMapPlugin
    from cnicore.plugins._skel import (
        REFERENCE_INTERNAL_CODES,
        about_text,
        is_delegated,
        mark_delegated,
        reference_code,
        run_plugin,
    )
    from cnicore.plugins._tuning import TuningPlugin

__all__ = [
    "DEFAULT_BRIDGE",
    "INSTALLED_PLUGINS",
    "LOOPBACK_MAC",
    "PLUGIN_MARKER",
    "REFERENCE_INTERNAL_CODES",
    "VALID_ATTACHMENTS_KEY",
    "BridgeConfig",
    "BridgePlugin",
    "FirewallPlugin",
    "HostLocalPlugin",
    "IPAMDelegate",
    "LoopbackPlugin",
    "Plugin",
    "PluginRequest",
    "PortMapPlugin",
    "TuningPlugin",
    "about_text",
    "allocation_result",
    "calc_gateways",
    "entry_point_script",
    "install_plugins",
    "is_cnicore_plugin",
    "is_delegated",
    "load_bridge_config",
    "mark_delegated",
    "reference_code",
    "run_plugin",
    "valid_attachments",
]

_LAZY = {
    "Plugin": "_api", "PluginRequest": "_api",
    "DEFAULT_BRIDGE": "_bridge", "BridgeConfig": "_bridge", "BridgePlugin": "_bridge", "calc_gateways": "_bridge",
    "load_bridge_config": "_bridge",
    "PLUGIN_MARKER": "_delegate", "IPAMDelegate": "_delegate", "is_cnicore_plugin": "_delegate",
    "VALID_ATTACHMENTS_KEY": "_hostlocal", "HostLocalPlugin": "_hostlocal", "allocation_result": "_hostlocal",
    "valid_attachments": "_hostlocal",
    "INSTALLED_PLUGINS": "_install", "entry_point_script": "_install", "install_plugins": "_install",
    "LOOPBACK_MAC": "_loopback", "LoopbackPlugin": "_loopback",
    "REFERENCE_INTERNAL_CODES": "_skel", "about_text": "_skel", "is_delegated": "_skel", "mark_delegated": "_skel",
    "reference_code": "_skel", "run_plugin": "_skel",
    "TuningPlugin": "_tuning",
    "FirewallPlugin": "_firewall",
    "PortMapPlugin": "_portmap",
}

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
