"""The bridge plugin's VLAN and port-isolation options, on the fake backend.

The machine's kernel may lack bridge VLAN filtering, so the plugin's VLAN
behaviour is checked here against the fake's per-port VLAN table (the backend
contract suite checks the real backends' VLAN operations where the kernel has them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnicore import InternalError, InvalidConfigError, UnsupportedFieldError
from cnicore.backends import FakeFirewall, FakeLinkBackend
from cnicore.links import Namespace, PortVlan
from cnicore.plugins import BridgePlugin, PluginRequest, load_bridge_config

NS = "/var/run/netns/cnt-brvlan"
BRIDGE = "cnt-brv0"


class Env:
    def __init__(self, tmp_path: Path, backend: FakeLinkBackend | None = None) -> None:
        self.backend = backend or FakeLinkBackend()
        self.backend.add_namespace(NS)
        self.plugin = BridgePlugin(self.backend, FakeFirewall(), sleep=lambda _s: None)
        self.data = tmp_path / "data"
        self.host = self.backend.host_namespace()

    def config(self, layer3: bool = False, **extra: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": "vnet", "type": "bridge", "bridge": BRIDGE}
        if layer3:
            conf["ipam"] = {"type": "host-local", "subnet": "10.24.0.0/24", "dataDir": str(self.data)}
        conf.update(extra)
        return conf

    def request(self, command: str, config: dict[str, Any], ifname: str = "eth0") -> PluginRequest:
        return PluginRequest(command=command, container_id="c1", netns=NS, ifname=ifname, config=config,
                             config_bytes=json.dumps(config).encode(), cni_version="1.0.0",
                             path=("/nonexistent",))

    def add(self, **extra: Any) -> str:
        """ADD; the host veth's name."""
        result = self.plugin.add(self.request("ADD", self.config(**extra)))
        return result.interfaces[1].name

    def table(self, port: str) -> list[tuple[int, bool, bool]]:
        return [(v.vid, v.pvid, v.untagged) for v in self.backend.list_port_vlans(self.host, port)]

    def host_links(self) -> list[str]:
        return [link.name for link in self.backend.list_links(self.host)]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


# -- configuration -------------------------------------------------------------------------------


def load(**extra: Any) -> Any:
    return load_bridge_config({"cniVersion": "1.0.0", "name": "n", "type": "bridge", **extra})


@pytest.mark.parametrize(("extra", "msg", "key"), [
    ({"vlan": -1}, "invalid VLAN ID -1 (must be between 0 and 4094)", "vlan"),
    ({"vlan": 4095}, "invalid VLAN ID 4095 (must be between 0 and 4094)", "vlan"),
    ({"vlanTrunk": [{"minID": 0, "maxID": 5}]}, "incorrect trunk minID parameter", "vlanTrunk.minID"),
    ({"vlanTrunk": [{"minID": 4095, "maxID": 5}]}, "incorrect trunk minID parameter", "vlanTrunk.minID"),
    ({"vlanTrunk": [{"minID": 5, "maxID": 4095}]}, "incorrect trunk maxID parameter", "vlanTrunk.maxID"),
    ({"vlanTrunk": [{"minID": 5, "maxID": 0}]}, "incorrect trunk maxID parameter", "vlanTrunk.maxID"),
    ({"vlanTrunk": [{"minID": 6, "maxID": 5}]}, "minID is greater than maxID in trunk parameter", "vlanTrunk"),
    ({"vlanTrunk": [{"maxID": 5}]}, "minID and maxID should be configured simultaneously, minID is missing",
     "vlanTrunk.minID"),
    ({"vlanTrunk": [{"minID": 5}]}, "minID and maxID should be configured simultaneously, maxID is missing",
     "vlanTrunk.maxID"),
    ({"vlanTrunk": [{"id": 3}, {"id": 0}]}, "incorrect trunk id parameter", "vlanTrunk.id"),
    ({"vlanTrunk": [{"id": 4095}]}, "incorrect trunk id parameter", "vlanTrunk.id"),
    # The range is checked before the single ID of the same entry, as the reference does.
    ({"vlanTrunk": [{"id": 0, "minID": 9, "maxID": 8}]}, "minID is greater than maxID in trunk parameter",
     "vlanTrunk"),
])
def test_vlan_config_errors(extra: dict[str, Any], msg: str, key: str) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        load(**extra)
    assert (caught.value.msg, caught.value.key) == (msg, key)


@pytest.mark.parametrize(("trunk", "msg"), [
    ("5", "cannot unmarshal string into Go struct field NetConf.vlanTrunk of type []*main.VlanTrunk"),
    ([5], "cannot unmarshal number into Go struct field NetConf.vlanTrunk of type main.VlanTrunk"),
    ([{"id": "5"}], "cannot unmarshal string into Go struct field NetConf.vlanTrunk.id of type int"),
    ([{"minID": True, "maxID": 3}], "cannot unmarshal bool into Go struct field NetConf.vlanTrunk.minID of type int"),
])
def test_vlan_trunk_type_errors(trunk: Any, msg: str) -> None:
    with pytest.raises(InvalidConfigError, match="failed to load netconf: json: ") as caught:
        load(vlanTrunk=trunk)
    assert caught.value.msg.endswith(msg)


def test_vlan_trunk_collects_sorted_distinct_ids() -> None:
    config = load(vlanTrunk=[{"id": 20}, {"minID": 3, "maxID": 5}, {"id": 4}, None, {}, {"ID": 7}])
    assert config.vlan_trunk == (3, 4, 5, 7, 20)
    assert load(vlanTrunk=[]).vlan_trunk == ()
    assert load().vlan_trunk is None
    assert load(vlan=4094).vlan == 4094


# -- the host veth's VLAN table ------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "table"), [
    ({}, [(1, True, True)]),
    ({"preserveDefaultVlan": True}, [(1, True, True)]),
    ({"vlan": 5}, [(5, True, True)]),
    ({"vlan": 5, "preserveDefaultVlan": True}, [(1, False, True), (5, True, True)]),
    ({"vlanTrunk": [{"id": 3}, {"minID": 10, "maxID": 12}]}, [(3, False, False), (10, False, False),
                                                             (11, False, False), (12, False, False)]),
    # A trunk without vlan keeps VLAN 1 as its native (PVID, untagged) VLAN only with preserveDefaultVlan.
    ({"vlanTrunk": [{"id": 3}], "preserveDefaultVlan": True}, [(1, True, True), (3, False, False)]),
    ({"vlan": 5, "vlanTrunk": [{"id": 3}, {"id": 9}]}, [(3, False, False), (5, True, True), (9, False, False)]),
    # An empty trunk turns filtering on but changes no port (the reference's collectVlanTrunk gives nil).
    ({"vlanTrunk": []}, [(1, True, True)]),
])
def test_port_vlan_table(env: Env, extra: dict[str, Any], table: list[tuple[int, bool, bool]]) -> None:
    port = env.add(**extra)
    assert env.table(port) == table
    filtering = "vlan" in extra or "vlanTrunk" in extra
    assert env.backend.get_link(env.host, BRIDGE).vlan_filtering is filtering
    assert env.backend.get_link(env.host, port).master == BRIDGE


@given(vlan=st.integers(0, 4094), trunk=st.lists(st.integers(1, 4094), max_size=4),
       preserve=st.booleans())
def test_port_vlan_table_property(tmp_path_factory: pytest.TempPathFactory, vlan: int, trunk: list[int],
                                  preserve: bool) -> None:
    env = Env(tmp_path_factory.mktemp("vlan"))
    port = env.add(vlan=vlan, vlanTrunk=[{"id": vid} for vid in trunk], preserveDefaultVlan=preserve)
    table = {v.vid: v for v in env.backend.list_port_vlans(env.host, port)}
    # The trunk's VLANs are tagged and never the PVID (they are added last).
    assert all(table[vid] == PortVlan(vid=vid) for vid in trunk)
    if vlan and vlan not in trunk:
        assert table[vlan] == PortVlan(vid=vlan, pvid=True, untagged=True)
    assert sum(v.pvid for v in table.values()) <= 1
    # VLAN 1 stays only if preserved or asked for.
    assert (1 in table) == (preserve or vlan == 1 or 1 in trunk or (not vlan and not trunk))
    assert set(table) - {1} == (({vlan} if vlan else set()) | set(trunk)) - {1}


def test_vlan_with_ipam_but_no_gateway(env: Env) -> None:
    port = env.add(layer3=True, vlan=7)
    assert env.table(port) == [(7, True, True)]
    assert env.backend.list_addresses(env.host, BRIDGE) == ()


@pytest.mark.parametrize("key", ["isGateway", "isDefaultGateway"])
def test_gateway_on_a_vlan_is_refused_with_code_2(env: Env, key: str) -> None:
    with pytest.raises(UnsupportedFieldError) as caught:
        env.add(layer3=True, vlan=7, **{key: True})
    error = caught.value
    assert error.code == 2 and error.key == key and error.value == {key: True, "vlan": 7}
    assert f"{key} = true" in error.msg and "vlan = 7" in error.msg and f"{BRIDGE}.7" in error.msg
    assert env.host_links() == ["lo"]
    # Either alone is fine.
    env.add(layer3=True, isGateway=True, vlanTrunk=[{"id": 3}])


def test_other_options_stay_refused(env: Env) -> None:
    for extra, key in (({"macspoofchk": True}, "macspoofchk"),
                       ({"ipMasq": True, "ipMasqBackend": "nftables"}, "ipMasqBackend")):
        with pytest.raises(UnsupportedFieldError) as caught:
            env.add(**extra)
        assert caught.value.code == 2 and caught.value.key == key


# -- port isolation ------------------------------------------------------------------------------


@pytest.mark.parametrize("on", [True, False])
def test_port_isolation(env: Env, on: bool) -> None:
    port = env.add(portIsolation=on)
    assert env.backend.get_link(env.host, port).isolated is on
    other = env.plugin.add(env.request("ADD", env.config(), ifname="eth1")).interfaces[1].name
    assert env.backend.get_link(env.host, other).isolated is False


# -- failures undo the ADD -----------------------------------------------------------------------


class RefusingVlans(FakeLinkBackend):
    """A kernel without bridge VLAN filtering on ports (what ENOTSUP looks like at the port)."""

    def set_port_vlans(self, ns: Namespace, name: str, *, remove: tuple[int, ...] = (),
                       add: tuple[PortVlan, ...] = ()) -> None:
        if add:
            raise InternalError(f"set VLANs of {name}: EOPNOTSUPP (Operation not supported)")
        super().set_port_vlans(ns, name, remove=remove, add=add)


def test_vlan_failure_undoes_the_add(tmp_path: Path) -> None:
    env = Env(tmp_path, RefusingVlans())
    with pytest.raises(InternalError, match=r'^failed to setup vlan tag on interface "veth[0-9a-f]{8}": '
                                            r"set VLANs of veth[0-9a-f]{8}: EOPNOTSUPP"):
        env.add(layer3=True, vlan=7)
    # The bridge (shared) stays; the veth pair goes; IPAM was never asked (the port comes first).
    assert env.host_links() == ["lo", BRIDGE]
    assert [link.name for link in env.backend.list_links(env.backend.open_namespace(NS))] == ["lo"]
    assert not (env.data / "vnet").exists()
