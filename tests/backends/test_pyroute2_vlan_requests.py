"""The pyroute2 backend's bridge-port VLAN requests (the kernel may lack VLAN filtering).

Links are real (throwaway ``cnt-`` namespaces); only the VLAN requests (recorded,
not sent) and the AF_BRIDGE VLAN dump (a canned answer, decoded by pyroute2) are
replaced. The recorded requests are then encoded by pyroute2 and compared with
the netlink backend's hand-made messages: two implementations, one wire format.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from backends_support import Namespaces, bridge_port

from cnicore._errors import NotFoundError
from cnicore.backends import Pyroute2LinkBackend, _linkops
from cnicore.links import PortVlan

pytestmark = pytest.mark.root

_AF_BRIDGE = 7
_RTM_NEWLINK = 16
_IFLA_AF_SPEC = 26
_VLAN_INFO = 2
_NLA_F_NESTED = 0x8000


def _decoded_vlan_message(index: int, entries: list[tuple[int, int]]) -> Any:
    """An RTM_NEWLINK of the AF_BRIDGE dump with VLAN entries (flags, vid), as pyroute2 hands it over."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    body = _linkops.ifinfomsg(family=_AF_BRIDGE, index=index) + _linkops.nested(
        _IFLA_AF_SPEC, *(_linkops.attr_bytes(_VLAN_INFO, struct.pack("=HH", flags, vid)) for flags, vid in entries))
    msg = ifinfmsg(struct.pack("=IHHII", 16 + len(body), _RTM_NEWLINK, 2, 1, 0) + body)
    msg.decode()
    return msg


def _encoded(command: str, kwargs: dict[str, Any]) -> bytes:
    """The body of the message pyroute2 would send for ``vlan_filter(command, **kwargs)``."""
    from pyroute2.iproute.linux import IPBatch

    batch = IPBatch()
    try:
        batch.vlan_filter(command, **kwargs)
        return bytes(batch.asyncore.batch)[16:]
    finally:
        batch.close()


def _without_nested_flag(body: bytes) -> bytes:
    # The kernel reads IFLA_AF_SPEC as nested with or without NLA_F_NESTED; pyroute2 leaves the flag off.
    length, kind = struct.unpack_from("=HH", body, 16)
    return body[:16] + struct.pack("=HH", length, kind & ~_NLA_F_NESTED) + body[20:]


@pytest.fixture
def port(netns: Namespaces) -> tuple[Pyroute2LinkBackend, Any, str]:
    return bridge_port("pyroute2", netns, "cnt-brp")


def test_vlan_requests(port: tuple[Pyroute2LinkBackend, Any, str]) -> None:
    backend, host, name = port
    # What the real kernel says first: not a port yet (nothing asked of the VLAN table), then a port.
    with pytest.raises(NotFoundError, match="is not a bridge port"):
        backend.list_port_vlans(host, name)
    with pytest.raises(NotFoundError, match="is not a bridge port"):
        backend.set_port_vlans(host, name, add=(PortVlan(vid=5),))
    backend.set_master(host, name, "cnt-brp")
    assert isinstance(backend.list_port_vlans(host, name), tuple)

    index = backend.get_link(host, name).index
    sent: list[tuple[str, dict[str, Any]]] = []
    # Another port first, then ours: the default VLAN (PVID, untagged) and a tagged 9.
    canned = [_decoded_vlan_message(index + 100, [(0, 4)]), _decoded_vlan_message(index, [(0, 9), (6, 1)])]

    real = backend._iproute_class

    class Recording(real):
        def vlan_filter(self, command: str, **kwargs: Any) -> tuple[()]:
            sent.append((command, kwargs))
            return ()

        def get_vlans(self, **kwargs: Any) -> list[Any]:
            return canned

    backend._iproute_class = Recording
    backend.close()  # the sockets kept so far are of the real class: the next ones are recorded
    assert backend.list_port_vlans(host, name) == (PortVlan(vid=1, pvid=True, untagged=True), PortVlan(vid=9))
    backend.set_port_vlans(host, name, remove=(1, 7), add=(PortVlan(vid=5, pvid=True, untagged=True),
                                                           PortVlan(vid=10)))
    # VLAN 7 is not on the port: no request for it.
    assert [(command, kwargs["vlan_info"]) for command, kwargs in sent] == [
        ("del", {"vid": 1}), ("add", {"vid": 5, "flags": 6}), ("add", {"vid": 10, "flags": 0})]
    assert all(kwargs["index"] == index for _command, kwargs in sent)
    expected = [_linkops._vlan_request(index, 1, 0), _linkops._vlan_request(index, 5, 6),
                _linkops._vlan_request(index, 10, 0)]
    assert [_encoded(command, kwargs) for command, kwargs in sent] == [_without_nested_flag(b) for b in expected]
