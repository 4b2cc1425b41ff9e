"""Link backends and firewalls: the implementations of :mod:`cnicore.links`' ports.

- :class:`FakeLinkBackend`: in memory; defines the semantics, default without CAP_NET_ADMIN.
- :class:`NetlinkLinkBackend`: rtnetlink through pyroute2 (``cnicore[netlink]``), imported on use.
- :class:`IPRoute2LinkBackend`: the ``ip`` command.
- :class:`IptablesFirewall`, :class:`NftablesFirewall` and :class:`FakeFirewall` (iptables layout):
  the reference's masquerade rules.
- :func:`select_backend`: injection, entry points (group ``cnicore.backends``), ``CNICORE_BACKEND``.

Importing this package imports neither pyroute2 nor subprocess-heavy modules
beyond what the chosen backend needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._fake import FakeLinkBackend
from ._fakefw import FakeFirewall
from ._select import BUILTIN_BACKENDS, ENTRY_POINT_GROUP, ENV_VAR, has_net_admin, select_backend

if TYPE_CHECKING:
    from ._iproute2 import IPRoute2LinkBackend
    from ._iptables import IptablesFirewall
    from ._netlink import NetlinkLinkBackend
    from ._nftables import NftablesFirewall

__all__ = [
    "BUILTIN_BACKENDS",
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "FakeFirewall",
    "FakeLinkBackend",
    "IPRoute2LinkBackend",
    "IptablesFirewall",
    "NetlinkLinkBackend",
    "NftablesFirewall",
    "has_net_admin",
    "select_backend",
]

_LAZY = {
    "NetlinkLinkBackend": "._netlink",
    "IPRoute2LinkBackend": "._iproute2",
    "IptablesFirewall": "._iptables",
    "NftablesFirewall": "._nftables",
}


def __getattr__(name: str) -> Any:
    # The real backends load on first use so that importing the package stays cheap.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
