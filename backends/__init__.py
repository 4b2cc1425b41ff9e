"""Link backends and firewalls: the implementations of :mod:`cnicore.links`' ports.

- :class:`FakeLinkBackend`: in memory; defines the semantics, default without CAP_NET_ADMIN.
- :class:`NetlinkLinkBackend`: rtnetlink through pyroute2 (``cnicore[netlink]``), imported on use.
- :class:`IPRoute2LinkBackend`: the ``ip`` command.
- :class:`IptablesFirewall`, :class:`NftablesFirewall` and :class:`FakeFirewall` (iptables layout):
  the reference's masquerade rules.
- :func:`select_backend`: injection, entry points (group ``cnicore.backends``), ``CNICORE_BACKEND``.

Importing this package imports nothing: every name loads on first use, so an
exec'd plugin pays only for the backend it uses (not for the fake, nor for the
entry-point machinery unless a backend is looked up by name).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._fake import FakeLinkBackend
    from ._fakefw import FakeFirewall
    from ._iproute2 import IPRoute2LinkBackend
    from ._iptables import IptablesFirewall
    from ._netlink import NetlinkLinkBackend
    from ._nftables import NftablesFirewall
    from ._select import BUILTIN_BACKENDS, ENTRY_POINT_GROUP, ENV_VAR, has_net_admin, select_backend

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
    "FakeLinkBackend": "._fake",
    "FakeFirewall": "._fakefw",
    "BUILTIN_BACKENDS": "._select",
    "ENTRY_POINT_GROUP": "._select",
    "ENV_VAR": "._select",
    "has_net_admin": "._select",
    "select_backend": "._select",
    "NetlinkLinkBackend": "._netlink",
    "IPRoute2LinkBackend": "._iproute2",
    "IptablesFirewall": "._iptables",
    "NftablesFirewall": "._nftables",
}


def __getattr__(name: str) -> Any:
    # Everything loads on first use so that importing the package stays cheap.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
