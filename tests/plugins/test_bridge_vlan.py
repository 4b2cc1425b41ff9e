"""The bridge plugin's VLAN and port-isolation options, on the fake backend.

The machine's kernel may lack bridge VLAN filtering, so the plugin's VLAN
behaviour is checked here against the fake's per-port VLAN table (the backend
contract suite checks the real backends' VLAN operations where the kernel has
them, and tests/plugins/test_bridge_kernel.py the VLAN gateway on the kernel).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnicore import InternalError, InvalidConfigError
from cnicore.backends import FakeFirewall, FakeLinkBackend
from cnicore.links import Address, Namespace, PortVlan, Route
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

    def ports(self) -> list[str]:
        """The bridge's ports."""
        return [link.name for link in self.backend.list_links(self.host) if link.master == BRIDGE]

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
    # Go names the innermost struct: upstream's VlanTrunk (the reference 1.1.1 has no vlanTrunk; we follow upstream).
    ([{"id": "5"}], "cannot unmarshal string into Go struct field VlanTrunk.vlanTrunk.id of type int"),
    ([{"minID": True, "maxID": 3}],
     "cannot unmarshal bool into Go struct field VlanTrunk.vlanTrunk.minID of type int"),
    ([{"maxID": 2.5}], "cannot unmarshal number 2.5 into Go struct field VlanTrunk.vlanTrunk.maxID of type int"),
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
    ({"preserveDefaultVlan": False}, [(1, True, True)]),
    # preserveDefaultVlan defaults to true, as in the reference: VLAN 1 stays, the PVID moves to vlan.
    ({"vlan": 5}, [(1, False, True), (5, True, True)]),
    ({"vlan": 5, "preserveDefaultVlan": False}, [(5, True, True)]),
    ({"vlan": 5, "preserveDefaultVlan": None}, [(1, False, True), (5, True, True)]),
    ({"vlanTrunk": [{"id": 3}, {"minID": 10, "maxID": 12}], "preserveDefaultVlan": False},
     [(3, False, False), (10, False, False), (11, False, False), (12, False, False)]),
    # A trunk keeps VLAN 1 as its native (PVID, untagged) VLAN unless preserveDefaultVlan is false.
    ({"vlanTrunk": [{"id": 3}]}, [(1, True, True), (3, False, False)]),
    # An empty trunk turns filtering on but changes no port (the reference's collectVlanTrunk gives nil),
    # and may go with vlan.
    ({"vlanTrunk": [], "preserveDefaultVlan": False}, [(1, True, True)]),
    ({"vlan": 5, "vlanTrunk": [], "preserveDefaultVlan": False}, [(5, True, True)]),
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
    if vlan and trunk:
        with pytest.raises(InvalidConfigError, match=r"^cannot set vlan and vlanTrunk at the same time"):
            env.add(vlan=vlan, vlanTrunk=[{"id": vid} for vid in trunk], preserveDefaultVlan=preserve)
        assert env.host_links() == ["lo"]
        return
    port = env.add(vlan=vlan, vlanTrunk=[{"id": vid} for vid in trunk], preserveDefaultVlan=preserve)
    table = {v.vid: v for v in env.backend.list_port_vlans(env.host, port)}
    # The trunk's VLANs are tagged and never the PVID.
    assert all(table[vid] == PortVlan(vid=vid) for vid in trunk if vid != 1 or not preserve)
    if vlan:
        assert table[vlan] == PortVlan(vid=vlan, pvid=True, untagged=True)
    assert sum(v.pvid for v in table.values()) <= 1
    # VLAN 1 stays only if preserved or asked for.
    assert (1 in table) == (preserve or vlan == 1 or 1 in trunk or (not vlan and not trunk))
    assert set(table) - {1} == (({vlan} if vlan else set()) | set(trunk)) - {1}


def test_vlan_and_trunk_together_are_refused() -> None:
    with pytest.raises(InvalidConfigError) as caught:
        load(vlan=5, vlanTrunk=[{"id": 3}])
    assert (caught.value.msg, caught.value.key) == ("cannot set vlan and vlanTrunk at the same time", "vlanTrunk")
    # Only a trunk that names VLANs counts (null and empty entries make none).
    assert load(vlan=5, vlanTrunk=[None, {}]).vlan_trunk == ()
    assert load(vlanTrunk=[{"id": 3}]).preserve_default_vlan is True
    assert load(preserveDefaultVlan=False).preserve_default_vlan is False


def test_vlan_with_ipam_but_no_gateway(env: Env) -> None:
    port = env.add(layer3=True, vlan=7, preserveDefaultVlan=False)
    assert env.table(port) == [(7, True, True)]
    assert env.backend.list_addresses(env.host, BRIDGE) == ()


# -- the gateway of a VLAN: <bridge>.<vlan> ---------------------------------------------------------


@pytest.mark.parametrize("preserve", [True, False])
def test_gateway_on_a_vlan_goes_on_the_vlan_interface(env: Env, preserve: bool) -> None:
    result = env.plugin.add(env.request("ADD", env.config(layer3=True, vlan=7, isGateway=True,
                                                          preserveDefaultVlan=preserve)))
    gateway = f"{BRIDGE}.7"
    # The result: bridge, host veth, container veth, then the VLAN interface (no sandbox).
    assert [i.name for i in result.interfaces[::2]] == [BRIDGE, "eth0"]
    assert result.interfaces[3].name == gateway and not result.interfaces[3].sandbox
    link = env.backend.get_link(env.host, gateway)
    assert result.interfaces[3].mac == link.mac
    assert link.kind == "veth" and link.admin_up and link.master is None
    assert env.backend.list_addresses(env.host, gateway) == (Address.parse("10.24.0.1/24"),)
    assert env.backend.list_addresses(env.host, BRIDGE) == ()
    # Its peer is an access port of VLAN 7, as the container's is.
    container_port = result.interfaces[1].name
    [peer] = [port for port in env.ports() if port != container_port]
    expected = [(1, False, True), (7, True, True)] if preserve else [(7, True, True)]
    assert env.table(peer) == expected == env.table(container_port)
    peer_link = env.backend.get_link(env.host, peer)
    assert peer_link.oper_state == "up" and not peer_link.hairpin and not peer_link.isolated
    assert env.backend.read_sysctl(env.host, "net/ipv4/ip_forward") == "1"
    assert str(result.ips[0].gateway) == "10.24.0.1"


def test_the_vlan_interface_is_shared_and_outlives_the_containers(env: Env) -> None:
    config = env.config(layer3=True, vlan=7, isDefaultGateway=True)
    other = env.backend.add_namespace(NS + "-2")
    first = env.plugin.add(env.request("ADD", config))
    second = env.plugin.add(attrs.evolve(env.request("ADD", config), netns=str(other.path), container_id="c2"))
    assert first.interfaces[3] == second.interfaces[3]
    assert [name for name in env.host_links() if name.startswith(BRIDGE)] == [BRIDGE, f"{BRIDGE}.7"]
    assert Route(dst="0.0.0.0/0", gateway="10.24.0.1", device="eth0", metric=0) in env.backend.list_routes(other)
    env.plugin.delete(env.request("DEL", config))
    env.plugin.delete(attrs.evolve(env.request("DEL", config), netns=str(other.path), container_id="c2"))
    # DEL leaves the shared interface, with its address, and its port.
    assert env.backend.list_addresses(env.host, f"{BRIDGE}.7") == (Address.parse("10.24.0.1/24"),)
    assert len(env.ports()) == 1


def test_dual_stack_gateways_share_the_vlan_interface(env: Env) -> None:
    config = env.config(layer3=True, vlan=9, isGateway=True)
    config["ipam"] = {"type": "host-local", "dataDir": str(env.data),
                      "ranges": [[{"subnet": "10.24.0.0/24"}], [{"subnet": "2001:db8:9::/64"}]]}
    result = env.plugin.add(env.request("ADD", config))
    assert len(result.interfaces) == 4
    assert env.backend.list_addresses(env.host, f"{BRIDGE}.9") == (
        Address.parse("10.24.0.1/24"), Address.parse("2001:db8:9::1/64"))
    assert env.backend.read_sysctl(env.host, "net/ipv6/conf/all/forwarding") == "1"


def test_a_different_address_on_the_vlan_interface_is_refused_unless_forced(env: Env) -> None:
    env.add(layer3=True, vlan=7, isGateway=True)
    env.backend.delete_address(env.host, f"{BRIDGE}.7", Address.parse("10.24.0.1/24"))
    env.backend.add_address(env.host, f"{BRIDGE}.7", Address.parse("10.99.0.1/24"))
    with pytest.raises(InternalError) as caught:
        env.plugin.add(env.request("ADD", env.config(layer3=True, vlan=7, isGateway=True), ifname="eth1"))
    assert caught.value.msg == (f'failed to set vlan interface for bridge with addr: "{BRIDGE}.7" already has an IP '
                                "address different from 10.24.0.1/24")
    env.plugin.add(env.request("ADD", env.config(layer3=True, vlan=7, isGateway=True, forceAddress=True),
                               ifname="eth1"))
    assert env.backend.list_addresses(env.host, f"{BRIDGE}.7") == (Address.parse("10.24.0.1/24"),)


def test_a_vlan_interface_name_too_long_fails_the_add_cleanly(tmp_path: Path) -> None:
    env = Env(tmp_path)
    config = env.config(layer3=True, vlan=4000, isGateway=True, bridge="cnt-brv-longnam")
    # The reference's look-up fails first too: the kernel takes no such name.
    with pytest.raises(InternalError, match=r'^failed to create vlan interface: failed to find interface '
                                            r'"cnt-brv-longnam\.4000": interface name is too long'):
        env.plugin.add(env.request("ADD", config))
    # The ADD is undone (the bridge, shared, stays) and the address released.
    assert env.host_links() == ["lo", "cnt-brv-longnam"]
    assert not any(p.name[0].isdigit() for p in (env.data / "vnet").iterdir())


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
