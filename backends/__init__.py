"""Link backends and firewalls: the implementations of :mod:`cnicore.links`' ports.

- :class:`FakeLinkBackend`: in memory; defines the semantics, default without CAP_NET_ADMIN.
- :class:`NetlinkLinkBackend`: rtnetlink spoken directly over a netlink socket (standard library only);
  the default with CAP_NET_ADMIN.
- :class:`IPRoute2LinkBackend`: the ``ip`` command.
- :class:`Pyroute2LinkBackend`: rtnetlink through pyroute2 (``cnicore[pyroute2]``), imported on use.
- :class:`IptablesFirewall`, :class:`NftablesFirewall` and :class:`FakeFirewall` (iptables layout, with
  :class:`FakeNftables`, the nftables layout, as its :meth:`~FakeFirewall.nftables`): the reference's
  masquerade rules and MAC spoof check.
- :func:`select_backend`: injection, entry points (group ``cnicore.backends``), ``CNICORE_BACKEND``.

Importing this package imports nothing: every name loads on first use, so an
exec'd plugin pays only for the backend it uses (not for the fake, nor for the
entry-point machinery unless a backend is looked up by name).
"""

from __future__ import annotations

from cnicore._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._fake import FakeLinkBackend
    from ._fakefw import FakeFirewall, FakeNftables
    from ._iproute2 import IPRoute2LinkBackend
    from ._iptables import IptablesFirewall
    from ._netlink import NetlinkLinkBackend
    from ._nftables import NftablesFirewall
    from ._pyroute2 import Pyroute2LinkBackend
    from ._select import BUILTIN_BACKENDS, ENTRY_POINT_GROUP, ENV_VAR, has_net_admin, select_backend

__all__ = [
    "BUILTIN_BACKENDS",
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "FakeFirewall",
    "FakeLinkBackend",
    "FakeNftables",
    "IPRoute2LinkBackend",
    "IptablesFirewall",
    "NetlinkLinkBackend",
    "NftablesFirewall",
    "Pyroute2LinkBackend",
    "has_net_admin",
    "select_backend",
]

_LAZY = {
    "FakeLinkBackend": "_fake",
    "FakeFirewall": "_fakefw", "FakeNftables": "_fakefw",
    "BUILTIN_BACKENDS": "_select", "ENTRY_POINT_GROUP": "_select", "ENV_VAR": "_select",
    "has_net_admin": "_select", "select_backend": "_select",
    "NetlinkLinkBackend": "_netlink",
    "IPRoute2LinkBackend": "_iproute2",
    "Pyroute2LinkBackend": "_pyroute2",
    "IptablesFirewall": "_iptables",
    "NftablesFirewall": "_nftables",
}

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
