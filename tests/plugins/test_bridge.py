"""The bridge plugin in process on the fake backend and fake firewall."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from cnicore import InternalError, InvalidConfigError, UnsupportedFieldError
from cnicore.backends import FakeFirewall, FakeLinkBackend
from cnicore.links import Address, BridgeSpec
from cnicore.plugins import BridgePlugin, PluginRequest
from cnicore.spec._result import parse_result

NS = "/var/run/netns/cnt-br"


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.backend = FakeLinkBackend()
        self.backend.add_namespace(NS)
        self.firewall = FakeFirewall()
        self.plugin = BridgePlugin(self.backend, self.firewall, sleep=lambda _s: None)
        self.data = tmp_path / "data"
        self.ns = self.backend.open_namespace(NS)
        self.host = self.backend.host_namespace()

    def config(self, **extra: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": "mynet", "type": "bridge", "bridge": "cnt-br0",
                                "isGateway": True, "ipMasq": True,
                                "ipam": {"type": "host-local", "subnet": "10.23.0.0/24", "dataDir": str(self.data),
                                         "routes": [{"dst": "0.0.0.0/0"}]}}
        conf.update(extra)
        return conf

    def request(self, command: str, config: dict[str, Any], netns: str = NS, ifname: str = "eth0",
                cid: str = "c1") -> PluginRequest:
        return PluginRequest(command=command, container_id=cid, netns=netns, ifname=ifname, config=config,
                             config_bytes=json.dumps(config).encode(), cni_version=config.get("cniVersion", ""),
                             path=("/nonexistent",))

    def reservations(self) -> list[str]:
        directory = self.data / "mynet"
        return sorted(p.name for p in directory.iterdir() if p.name[0].isdigit()) if directory.is_dir() else []


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_add_builds_the_reference_result_and_state(env: Env) -> None:
    result = env.plugin.add(env.request("ADD", env.config()))
    doc = json.loads(result.to_json())
    names = [i["name"] for i in doc["interfaces"]]
    assert names[0] == "cnt-br0" and names[1].startswith("veth") and len(names[1]) == 12 and names[2] == "eth0"
    assert all(len(i["mac"]) == 17 for i in doc["interfaces"])
    assert doc["interfaces"][2]["sandbox"] == NS
    assert doc["ips"] == [{"address": "10.23.0.2/24", "gateway": "10.23.0.1", "interface": 2}]
    assert doc["routes"] == [{"dst": "0.0.0.0/0"}]
    be = env.backend
    assert be.list_addresses(env.ns, "eth0") == (Address.parse("10.23.0.2/24"),)
    assert any(str(r.dst) == "0.0.0.0/0" and str(r.gateway) == "10.23.0.1" for r in be.list_routes(env.ns))
    assert Address.parse("10.23.0.1/24") in be.list_addresses(env.host, "cnt-br0")
    assert be.get_link(env.host, names[1]).master == "cnt-br0"
    assert be.read_sysctl(env.host, "net/ipv4/ip_forward") == "1"
    assert be.read_sysctl(env.ns, "net/ipv4/conf/eth0/arp_notify") == "1"
    rules = env.firewall.list_rules(4)
    assert any("-A POSTROUTING -s 10.23.0.2/32" in r for r in rules)
    assert env.reservations() == ["10.23.0.2"]
    # The host MACs in the result are the ones the links have now.
    assert doc["interfaces"][0]["mac"] == be.get_link(env.host, "cnt-br0").mac


def test_default_gateway_adds_a_default_route_once(env: Env) -> None:
    config = env.config(isGateway=False, isDefaultGateway=True)
    config["ipam"]["routes"] = []
    result = env.plugin.add(env.request("ADD", config))
    assert [(str(r.dst), str(r.gw)) for r in result.routes] == [("0.0.0.0/0", "10.23.0.1")]
    assert Address.parse("10.23.0.1/24") in env.backend.list_addresses(env.host, "cnt-br0")


def test_layer2_brings_the_container_link_up_without_addresses(env: Env) -> None:
    config = env.config(ipMasq=False, isGateway=False)
    del config["ipam"]
    result = env.plugin.add(env.request("ADD", config))
    assert result.ips == ()
    assert env.backend.get_link(env.ns, "eth0").admin_up
    assert env.backend.list_addresses(env.ns, "eth0") == ()


def test_del_undoes_add_and_is_repeatable(env: Env) -> None:
    config = env.config()
    env.plugin.add(env.request("ADD", config))
    env.plugin.delete(env.request("DEL", config))
    assert env.reservations() == []
    assert [link.name for link in env.backend.list_links(env.ns)] == ["lo"]
    assert [r for r in env.firewall.list_rules(4) if not r.startswith("-P")] == []
    env.plugin.delete(env.request("DEL", config))
    env.plugin.delete(env.request("DEL", config, netns=""))
    env.plugin.delete(env.request("DEL", config, netns="/var/run/netns/cnt-gone"))


def test_del_without_namespace_still_releases_ipam(env: Env) -> None:
    config = env.config()
    env.plugin.add(env.request("ADD", config))
    env.backend.remove_namespace(NS)
    env.plugin.delete(env.request("DEL", config))
    assert env.reservations() == []


def test_a_failed_add_undoes_everything(env: Env) -> None:
    # A different address on the bridge makes the gateway step fail after IPAM and the veth.
    env.backend.ensure_bridge(env.host, BridgeSpec(name="cnt-br0"))
    env.backend.add_address(env.host, "cnt-br0", Address.parse("10.99.0.1/24"))
    with pytest.raises(InternalError, match=r'"cnt-br0" already has an IP address different from 10\.23\.0\.1/24'):
        env.plugin.add(env.request("ADD", env.config()))
    assert env.reservations() == []
    assert [link.name for link in env.backend.list_links(env.ns)] == ["lo"]
    assert [r for r in env.firewall.list_rules(4) if not r.startswith("-P")] == []


def test_force_address_replaces_the_bridge_address(env: Env) -> None:
    env.backend.ensure_bridge(env.host, BridgeSpec(name="cnt-br0"))
    env.backend.add_address(env.host, "cnt-br0", Address.parse("10.99.0.1/24"))
    env.plugin.add(env.request("ADD", env.config(forceAddress=True)))
    assert env.backend.list_addresses(env.host, "cnt-br0") == (Address.parse("10.23.0.1/24"),)


def test_second_add_for_the_same_interface_fails_and_keeps_the_first(env: Env) -> None:
    config = env.config()
    env.plugin.add(env.request("ADD", config))
    with pytest.raises(Exception, match="already exists"):
        env.plugin.add(env.request("ADD", config))
    assert env.reservations() == ["10.23.0.2"]
    assert env.backend.list_addresses(env.ns, "eth0") == (Address.parse("10.23.0.2/24"),)


@pytest.mark.parametrize(("extra", "key"), [
    ({"macspoofchk": True}, "macspoofchk"), ({"ipMasqBackend": "nftables"}, "ipMasqBackend"),
    # The gateway on a VLAN needs a <bridge>.<vlan> sub-interface (env.config() sets isGateway).
    ({"vlan": 5}, "isGateway"),
])
def test_unimplemented_options_are_refused_with_code_2(env: Env, extra: dict[str, Any], key: str) -> None:
    with pytest.raises(UnsupportedFieldError) as caught:
        env.plugin.add(env.request("ADD", env.config(**extra)))
    assert caught.value.code == 2 and caught.value.key == key and key in caught.value.msg
    assert env.backend.list_links(env.host)[-1].name == "lo"


@pytest.mark.parametrize(("extra", "msg"), [
    ({"vlan": 5000}, "invalid VLAN ID 5000 (must be between 0 and 4094)"),
    ({"isGateway": "yes"}, "failed to load netconf: json: cannot unmarshal string into Go struct field "
                           "NetConf.isGateway of type bool"),
    ({"ipMasqBackend": "pf"}, 'unknown ipmasq backend "pf"'),
])
def test_bad_options_are_config_errors(env: Env, extra: dict[str, Any], msg: str) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        env.plugin.add(env.request("ADD", env.config(**extra)))
    assert caught.value.msg == msg


def test_refused_combinations(env: Env) -> None:
    with pytest.raises(InternalError, match="cannot set hairpin mode and promiscuous mode at the same time"):
        env.plugin.add(env.request("ADD", env.config(hairpinMode=True, promiscMode=True)))
    with pytest.raises(InternalError, match="cannot use IPAM when DisableContainerInterface flag is set"):
        env.plugin.add(env.request("ADD", env.config(disableContainerInterface=True)))


def test_mac_precedence(env: Env) -> None:
    config = env.config(runtimeConfig={"mac": "0a:58:0a:00:00:09"}, args={"cni": {"mac": "0a:58:0a:00:00:08"}})
    request = env.request("ADD", config)
    request = attrs.evolve(request, args="IgnoreUnknown=1;MAC=0a:58:0a:00:00:07")
    assert env.plugin.add(request).interfaces[2].mac == "0a:58:0a:00:00:09"
    env.plugin.delete(request)
    bare = attrs.evolve(env.request("ADD", env.config()), args="IgnoreUnknown=1;MAC=0a:58:0a:00:00:07")
    assert env.plugin.add(bare).interfaces[2].mac == "0a:58:0a:00:00:07"


def test_check_passes_after_add_and_fails_after_damage(env: Env) -> None:
    config = env.config()
    result = env.plugin.add(env.request("ADD", config))
    checked = {**config, "prevResult": json.loads(result.to_json())}
    env.plugin.check(env.request("CHECK", checked))
    with pytest.raises(InternalError, match=r"^Required prevResult missing$"):
        env.plugin.check(env.request("CHECK", config))
    env.backend.delete_address(env.ns, "eth0", Address.parse("10.23.0.2/24"))
    with pytest.raises(InternalError, match=r"Failed to match addr 10\.23\.0\.2/24 on interface eth0"):
        env.plugin.check(env.request("CHECK", checked))
    env.backend.delete_link(env.ns, "eth0")
    with pytest.raises(InternalError, match="CNI created interface in container eth0 not found"):
        env.plugin.check(env.request("CHECK", checked))
    with pytest.raises(InternalError, match="Sandbox in prevResult"):
        env.plugin.check(env.request("CHECK", checked, netns="/var/run/netns/other"))


def test_result_converts_to_every_version(env: Env) -> None:
    result = env.plugin.add(env.request("ADD", env.config()))
    old = result.as_version("0.2.0")
    assert json.loads(old.to_json())["ip4"]["ip"] == "10.23.0.2/24"
    assert parse_result(result.as_version("0.4.0").to_json()).cni_version == "0.4.0"
