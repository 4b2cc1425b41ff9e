"""The netlink backend's bridge-port requests, checked byte by byte (the kernel may lack VLAN filtering).

Links are real (throwaway ``cnt-`` namespaces); only the VLAN requests (recorded,
not sent) and the AF_BRIDGE VLAN dump (a canned answer) are replaced, so the port
checks and the request shapes are those the kernel would get. The bridge-port
flags (hairpin, isolation) go to the kernel and are read back.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from backends_support import Namespaces, bridge_port

from cnicore._errors import NotFoundError
from cnicore.backends import NetlinkLinkBackend, _linkops, _netlink
from cnicore.links import PortVlan

pytestmark = pytest.mark.root

_AF_BRIDGE = 7
_RTM_DELLINK, _RTM_GETLINK, _RTM_SETLINK = 17, 18, 19
_IFLA_PROTINFO, _IFLA_AF_SPEC = 12, 26
_VLAN_INFO = 2


def _vlan_message(index: int, entries: list[tuple[int, int]] | None) -> bytes:
    """An RTM_NEWLINK of the AF_BRIDGE dump: the port and its VLAN entries (flags, vid)."""
    body = _linkops.ifinfomsg(family=_AF_BRIDGE, index=index)
    if entries is not None:
        body += _linkops.nested(_IFLA_AF_SPEC, *(_linkops.attr_bytes(_VLAN_INFO, struct.pack("=HH", flags, vid))
                                                  for flags, vid in entries))
    return body


def _decode_vlan(body: bytes) -> tuple[int, int, list[tuple[int, int]]]:
    """(family, index, [(flags, vid)]) of a VLAN request."""
    family, _type, index, _flags, _change = struct.unpack_from("=BxHiII", body)
    spec = _linkops._parse_attrs(body, 16)[_IFLA_AF_SPEC]
    return family, index, [struct.unpack("=HH", info) for kind, info in _linkops._iter_attrs(spec)
                           if kind == _VLAN_INFO]


@pytest.fixture
def port(netns: Namespaces) -> tuple[NetlinkLinkBackend, Any, str]:
    return bridge_port("netlink", netns, "cnt-brn")


def test_vlan_requests(port: tuple[NetlinkLinkBackend, Any, str], monkeypatch: pytest.MonkeyPatch) -> None:
    backend, host, name = port
    # What the real kernel says first: not a port yet, then a port (without filtering: no entries).
    with pytest.raises(NotFoundError, match="is not a bridge port"):
        backend.list_port_vlans(host, name)
    backend.set_master(host, name, "cnt-brn")
    assert isinstance(backend.list_port_vlans(host, name), tuple)

    index = backend.get_link(host, name).index
    sent: list[tuple[int, bytes, int]] = []
    real = _netlink.Rtnl.request

    def request(self: Any, kind: int, body: bytes, *, flags: int = 0) -> list[tuple[int, bytes]]:
        family = body[0]
        if family == _AF_BRIDGE and kind in (_RTM_SETLINK, _RTM_DELLINK) and _IFLA_AF_SPEC in _linkops._parse_attrs(
                body, 16):
            sent.append((kind, body, flags))
            return []
        if family == _AF_BRIDGE and kind == _RTM_GETLINK:
            # Another port first, then ours without and with entries: the default VLAN and a tagged 9.
            return [(16, _vlan_message(index + 100, [(0, 4)])), (16, _vlan_message(index, None)),
                    (16, _vlan_message(index, [(6, 1), (0, 9)]))]
        return real(self, kind, body, flags=flags)

    monkeypatch.setattr(_netlink.Rtnl, "request", request)
    assert backend.list_port_vlans(host, name) == (PortVlan(vid=1, pvid=True, untagged=True), PortVlan(vid=9))
    backend.set_port_vlans(host, name, remove=(1, 3), add=(PortVlan(vid=5, pvid=True, untagged=True),
                                                           PortVlan(vid=7, untagged=True), PortVlan(vid=8)))
    # VLAN 3 is not on the port: nothing is sent for it. Each change is acknowledged.
    assert [(kind, _decode_vlan(body), flags & 0x4) for kind, body, flags in sent] == [
        (_RTM_DELLINK, (_AF_BRIDGE, index, [(0, 1)]), 0x4),
        (_RTM_SETLINK, (_AF_BRIDGE, index, [(6, 5)]), 0x4),
        (_RTM_SETLINK, (_AF_BRIDGE, index, [(4, 7)]), 0x4),
        (_RTM_SETLINK, (_AF_BRIDGE, index, [(0, 8)]), 0x4),
    ]
    # IFLA_AF_SPEC is flagged nested, as the kernel's strict parsers want.
    assert all(struct.unpack_from("=HH", body, 16)[1] & 0x8000 for _kind, body, _flags in sent)


def test_port_flags_go_in_a_nested_protinfo(port: tuple[NetlinkLinkBackend, Any, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    backend, host, name = port
    backend.set_master(host, name, "cnt-brn")
    seen: list[bytes] = []
    real = _netlink.Rtnl.request

    def request(self: Any, kind: int, body: bytes, *, flags: int = 0) -> list[tuple[int, bytes]]:
        if kind == _RTM_SETLINK and body[0] == _AF_BRIDGE:
            seen.append(body)
        return real(self, kind, body, flags=flags)

    monkeypatch.setattr(_netlink.Rtnl, "request", request)
    backend.set_hairpin(host, name, True)
    backend.set_port_isolation(host, name, True)
    link = backend.get_link(host, name)
    assert link.hairpin and link.isolated
    # Without NLA_F_NESTED the kernel would read IFLA_PROTINFO as the old one-byte port state.
    length, kind = struct.unpack_from("=HH", seen[0], 16)
    assert kind == _IFLA_PROTINFO | 0x8000 and length == 4 + 8
    assert [_linkops._parse_attrs(body[20:]) for body in seen] == [{4: b"\x01"}, {33: b"\x01"}]
    backend.set_hairpin(host, name, False)
    backend.set_port_isolation(host, name, False)
    link = backend.get_link(host, name)
    assert not link.hairpin and not link.isolated
