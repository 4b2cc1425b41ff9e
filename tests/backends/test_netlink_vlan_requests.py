"""The netlink backend's bridge VLAN requests, checked at the pyroute2 call (the kernel may lack VLAN filtering).

Links are real (throwaway ``cnt-`` namespaces); only ``vlan_filter`` (recorded,
not sent) and ``get_vlans`` (canned answer) are replaced, so the port checks and
the request shapes are those the kernel would get.
"""

from __future__ import annotations

from typing import Any

import pytest
from backends_support import Namespaces, real_available

from cnicore._errors import NotFoundError
from cnicore.backends import NetlinkLinkBackend
from cnicore.links import BridgeSpec, PortVlan

pytestmark = pytest.mark.root


class _Info(dict[str, int]):
    pass


class _Spec:
    def __init__(self, infos: list[_Info]) -> None:
        self.infos = infos

    def get_attrs(self, name: str) -> list[_Info]:
        return self.infos if name == "IFLA_BRIDGE_VLAN_INFO" else []


class _Message(dict[str, int]):
    def __init__(self, index: int, infos: list[tuple[int, int]] | None) -> None:
        super().__init__(index=index)
        self.spec = _Spec([_Info(vid=vid, flags=flags) for vid, flags in infos]) if infos is not None else None

    def get_attr(self, name: str) -> Any:
        return self.spec if name == "IFLA_AF_SPEC" else None


def test_vlan_requests(netns: Namespaces) -> None:
    reason = real_available("netlink")
    if reason is not None:
        pytest.skip(reason)
    backend = NetlinkLinkBackend()
    host = backend.open_namespace(netns.add())
    ctr = backend.open_namespace(netns.add())
    backend.ensure_bridge(host, BridgeSpec(name="cnt-brn"))
    pair = backend.create_veth(ctr, "eth0", host)
    port = pair.host.name
    # What the real kernel says first: the request goes through pyroute2's API (no filtering here: no entries).
    with pytest.raises(NotFoundError, match="is not a bridge port"):
        backend.list_port_vlans(host, port)
    backend.set_master(host, port, "cnt-brn")
    assert isinstance(backend.list_port_vlans(host, port), tuple)

    index = backend.get_link(host, port).index
    sent: list[tuple[str, dict[str, Any]]] = []
    real = backend._iproute_class

    class Recording(real):  # type: ignore[misc, valid-type]
        def vlan_filter(self, command: str, **kwargs: Any) -> None:
            sent.append((command, kwargs))

        def get_vlans(self, **_kwargs: Any) -> list[_Message]:
            # Another port first, then ours with the kernel's default entry and a tagged VLAN 9.
            return [_Message(index + 100, [(4, 0)]), _Message(index, None), _Message(index, [(1, 6), (9, 0)])]

    backend._iproute_class = Recording
    assert backend.list_port_vlans(host, port) == (PortVlan(vid=1, pvid=True, untagged=True), PortVlan(vid=9))
    backend.set_port_vlans(host, port, remove=(1, 3), add=(PortVlan(vid=5, pvid=True, untagged=True),
                                                           PortVlan(vid=7, untagged=True), PortVlan(vid=8)))
    assert sent == [
        ("del", {"index": index, "vlan_info": {"vid": 1}}),  # VLAN 3 is not on the port: nothing sent
        ("add", {"index": index, "vlan_info": {"vid": 5, "flags": 6}}),
        ("add", {"index": index, "vlan_info": {"vid": 7, "flags": 4}}),
        ("add", {"index": index, "vlan_info": {"vid": 8, "flags": 0}}),
    ]
