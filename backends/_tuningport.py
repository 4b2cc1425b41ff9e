"""The executed tuning plugin's link port on rtnetlink, plain values (standard library only).

:class:`PlainTuningPort` is :class:`~cnicore.plugins._tuning.TuningPort` on the
netlink backend's own operations (:mod:`._linkops`, :mod:`._kernel`). Each
method loads what it calls when it is first called: an ADD with nothing to tune
only checks that the namespace exists (:func:`._setns.open_netns`, as the
netlink backend does), and that costs it neither the rtnetlink operations, the
socket and ``struct`` modules nor the sysctl helpers.
"""

from __future__ import annotations

import os

from ._setns import open_netns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._linkops import LinkMessage

__all__ = ["PlainTuningPort"]


class PlainTuningPort:
    """The tuning plugin's link port (:class:`~cnicore.plugins._tuning.TuningPort`) on rtnetlink, plain values.

    Namespace handles are paths. Each method is the very function
    :class:`~cnicore.backends.NetlinkLinkBackend` calls for the same operation, with
    the same checks; links are read as :class:`~._linkops.LinkMessage` (no address dump).
    """

    def open_namespace(self, path: str) -> str:
        """``path``, once it is known to be a namespace (:class:`~cnicore.NamespaceNotFoundError` if gone)."""
        os.close(open_netns(path))
        return path

    def get_link(self, ns: str, name: str) -> LinkMessage:
        """The link called ``name`` (:class:`~cnicore.NotFoundError` if there is none)."""
        from ._linkops import Session, get_link

        with Session(ns, f"get link {name}") as sock:
            return get_link(sock, name)

    def set_mac(self, ns: str, name: str, mac: str) -> None:
        """See :meth:`~cnicore.links.LinkBackend.set_mac` (a unicast MAC of six octets, as every backend checks)."""
        from ._linkops import Session, mac_attr, set_link

        if len(mac) == 17:
            from ._kernel import check_unicast_mac

            checked = check_unicast_mac(mac.lower(), mac)
        else:
            from ._common import check_mac  # rare (not six octets): the typed check refuses it, as every backend

            checked = check_mac(mac)
        with Session(ns, f"set MAC of {name}") as sock:
            set_link(sock, name, attrs=mac_attr(checked))

    def set_mtu(self, ns: str, name: str, mtu: int) -> None:
        """See :meth:`~cnicore.links.LinkBackend.set_mtu`."""
        from ._linkops import Session, set_mtu

        with Session(ns, f"set MTU of {name}") as sock:
            set_mtu(sock, name, mtu)

    def set_link_options(self, ns: str, name: str, *, promiscuous: bool | None = None, allmulti: bool | None = None,
                         txqueuelen: int | None = None, alias: str | None = None) -> None:
        """See :meth:`~cnicore.links.LinkBackend.set_link_options`."""
        from ._kernel import check_link_options
        from ._linkops import Session, set_link_options

        check_link_options(txqueuelen, alias)
        with Session(ns, f"set options of {name}") as sock:
            set_link_options(sock, name, promiscuous=promiscuous, allmulti=allmulti, txqueuelen=txqueuelen,
                             alias=alias)

    def read_net_sysctl(self, ns: str, path: str) -> str:
        """See :meth:`~cnicore.links.LinkBackend.read_net_sysctl`."""
        from ._kernel import read_net_sysctl_path

        return read_net_sysctl_path(ns, path)

    def write_net_sysctl(self, ns: str, path: str, value: str) -> None:
        """See :meth:`~cnicore.links.LinkBackend.write_net_sysctl`."""
        from ._kernel import write_net_sysctl_path

        write_net_sysctl_path(ns, path, value)
