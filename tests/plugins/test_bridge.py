"""The bridge plugin in process on the fake backend and fake firewall."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from cnicore import InternalError, InvalidConfigError, NamespaceNotFoundError, UnsupportedFieldError
from cnicore.backends import FakeFirewall, FakeLinkBackend
from cnicore.links import Address, BridgeSpec, Firewall, nft_masquerade_comment, spoof_check_plan
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


class NoNftables:
    """A firewall that masquerades (iptables layout, in memory) but offers no nftables side."""

    name = "iptables-only"

    def __init__(self) -> None:
        self._inner = FakeFirewall()

    def setup_masquerade(self, address: Any, network_name: str, container_id: str, *, ifname: str = "") -> None:
        self._inner.setup_masquerade(address, network_name, container_id, ifname=ifname)

    def teardown_masquerade(self, address: Any, network_name: str, container_id: str, *, ifname: str = "") -> None:
        self._inner.teardown_masquerade(address, network_name, container_id, ifname=ifname)

    def setup_masquerades(self, addresses: Any, network_name: str, container_id: str, *, ifname: str = "") -> None:
        self._inner.setup_masquerades(addresses, network_name, container_id, ifname=ifname)

    def teardown_masquerades(self, addresses: Any, network_name: str, container_id: str, *,
                             ifname: str = "") -> None:
        self._inner.teardown_masquerades(addresses, network_name, container_id, ifname=ifname)


@pytest.mark.parametrize(("extra", "key", "value"), [
    ({"macspoofchk": True}, "macspoofchk", True),
    ({"ipMasqBackend": "nftables"}, "ipMasqBackend", "nftables"),
])
def test_nftables_options_without_an_nftables_firewall_are_refused_with_code_2(
        tmp_path: Path, extra: dict[str, Any], key: str, value: Any) -> None:
    env = Env(tmp_path)
    firewall = NoNftables()
    assert isinstance(firewall, Firewall)
    env.plugin = BridgePlugin(env.backend, firewall, sleep=lambda _s: None)
    with pytest.raises(UnsupportedFieldError) as caught:
        env.plugin.add(env.request("ADD", env.config(**extra)))
    assert (caught.value.code, caught.value.key, caught.value.value) == (2, key, value)
    assert key in caught.value.msg and "nftables" in caught.value.msg
    # Refused before anything changed.
    assert [link.name for link in env.backend.list_links(env.host)] == ["lo"]
    assert env.reservations() == []
    # DEL of such a network still works (there is nothing of the nftables kind to undo).
    env.plugin.delete(env.request("DEL", env.config(**extra)))


def test_mac_spoof_check_lets_only_the_container_mac_in(env: Env) -> None:
    nft = env.firewall.nftables()
    config = env.config(macspoofchk=True)
    result = env.plugin.add(env.request("ADD", config))
    host_veth, container_mac = result.interfaces[1].name, result.interfaces[2].mac
    plan = spoof_check_plan(host_veth, container_mac, "c1-eth0")
    listed = nft.list_spoof_check()
    rules = [(item["rule"]["chain"], item["rule"]["expr"], item["rule"]["comment"]) for item in listed
             if "rule" in item]
    assert rules == [(rule.chain, list(rule.expr), "macspoofchk-c1-eth0") for rule in plan.rules]
    assert rules[0][1][0]["match"]["right"] == host_veth
    assert rules[2][1][0]["match"]["right"] == container_mac
    chains = [item["chain"]["name"] for item in listed if "chain" in item]
    assert chains == ["PREROUTING", "cni-br-iface-c1-eth0", "cni-br-iface-c1-eth0-mac"]
    # DEL removes the attachment's rule and chains; the table and its base chain stay, empty.
    env.plugin.delete(env.request("DEL", config))
    left = nft.list_spoof_check()
    assert [item["chain"]["name"] for item in left if "chain" in item] == ["PREROUTING"]
    assert not [item for item in left if "rule" in item]
    env.plugin.delete(env.request("DEL", config))


def test_mac_spoof_check_uses_the_requested_mac_and_is_undone_by_a_failed_add(env: Env) -> None:
    env.backend.ensure_bridge(env.host, BridgeSpec(name="cnt-br0"))
    env.backend.add_address(env.host, "cnt-br0", Address.parse("10.99.0.1/24"))
    config = env.config(macspoofchk=True, runtimeConfig={"mac": "0a:58:0a:17:00:09"})
    with pytest.raises(InternalError, match="already has an IP address"):
        env.plugin.add(env.request("ADD", config))
    assert not [item for item in env.firewall.nftables().list_spoof_check() if "rule" in item]
    env.backend.delete_address(env.host, "cnt-br0", Address.parse("10.99.0.1/24"))
    env.plugin.add(env.request("ADD", config))
    rules = [item["rule"] for item in env.firewall.nftables().list_spoof_check() if "rule" in item]
    assert rules[2]["expr"][0]["match"]["right"] == "0a:58:0a:17:00:09"


def test_nftables_masquerade_sets_up_every_address_and_del_clears_both_layouts(env: Env) -> None:
    nft = env.firewall.nftables()
    config = env.config(ipMasqBackend="nftables")
    config["ipam"] = {"type": "host-local", "dataDir": str(env.data),
                      "ranges": [[{"subnet": "10.23.0.0/24"}], [{"subnet": "2001:db8:23::/64"}]]}
    env.plugin.add(env.request("ADD", config))
    comment = nft_masquerade_comment("mynet", "eth0", "c1")
    assert nft.masquerade_rules() == (
        (comment, "ip saddr == 10.23.0.2 ip daddr != 10.23.0.0/24 masquerade"),
        (comment, "ip6 saddr == 2001:db8:23::2 ip6 daddr != 2001:db8:23::/64 masquerade"))
    assert [r for r in env.firewall.list_rules(4) if not r.startswith("-P")] == []
    # A DEL with the default backend clears the nftables rules too (as the reference's DEL clears both).
    plain = dict(config)
    del plain["ipMasqBackend"]
    env.plugin.delete(env.request("DEL", plain))
    assert nft.masquerade_rules() == ()


def test_iptables_masquerade_dual_stack(env: Env) -> None:
    config = env.config()
    config["ipam"] = {"type": "host-local", "dataDir": str(env.data),
                      "ranges": [[{"subnet": "10.23.0.0/24"}], [{"subnet": "2001:db8:23::/64"}]]}
    env.plugin.add(env.request("ADD", config))
    assert any("-A POSTROUTING -s 10.23.0.2/32" in r for r in env.firewall.list_rules(4))
    assert any("-A POSTROUTING -s 2001:db8:23::2/128" in r for r in env.firewall.list_rules(6))
    assert env.firewall.nftables().masquerade_rules() == ()
    env.plugin.delete(env.request("DEL", config))
    assert [r for v in (4, 6) for r in env.firewall.list_rules(v) if not r.startswith("-P")] == []


def test_default_masquerade_backend_is_nftables_where_only_nftables_is_available(env: Env) -> None:
    # The reference: ipMasqBackend unset means iptables unless only nftables is available.
    env.firewall = FakeFirewall(iptables_available=False)
    env.plugin = BridgePlugin(env.backend, env.firewall, sleep=lambda _s: None)
    nft = env.firewall.nftables()
    config = env.config()
    env.plugin.add(env.request("ADD", config))
    assert nft.masquerade_rules() == (
        (nft_masquerade_comment("mynet", "eth0", "c1"), "ip saddr == 10.23.0.2 ip daddr != 10.23.0.0/24 masquerade"),)
    assert [r for r in env.firewall.list_rules(4) if not r.startswith("-P")] == []
    env.plugin.delete(env.request("DEL", config))
    assert nft.masquerade_rules() == ()
    # Named explicitly, iptables it is, available or not.
    explicit = env.config(ipMasqBackend="iptables")
    result = env.plugin.add(env.request("ADD", explicit, cid="c2"))
    address = result.ips[0].address.ip
    assert any(f"-A POSTROUTING -s {address}/32" in r for r in env.firewall.list_rules(4))
    assert nft.masquerade_rules() == ()


def test_real_firewalls_say_whether_their_tool_is_there(tmp_path: Path) -> None:
    from cnicore.backends import IptablesFirewall, NftablesFirewall

    assert not IptablesFirewall(iptables=str(tmp_path / "missing-iptables")).available()
    assert not NftablesFirewall(nft=str(tmp_path / "missing-nft")).available()
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert IptablesFirewall(iptables=str(tool)).available()
    assert NftablesFirewall(nft=str(tool)).available()


# -- IPv6 duplicate address detection ------------------------------------------------------------


def _v6_config(env: Env, **extra: Any) -> dict[str, Any]:
    config = env.config(ipMasq=False, **extra)
    config["ipam"] = {"type": "host-local", "dataDir": str(env.data), "subnet": "2001:db8:7::/64",
                      "routes": [{"dst": "::/0"}]}
    return config


def test_with_dad_the_routes_wait_for_the_address_to_settle(tmp_path: Path) -> None:
    env = Env(tmp_path)
    waits: list[float] = []

    def time_passes(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            env.backend.complete_dad()

    env.plugin = BridgePlugin(env.backend, env.firewall, sleep=time_passes)
    env.plugin.add(env.request("ADD", _v6_config(env, enabledad=True)))
    assert waits == [0.05, 0.05, 0.05]
    assert not any(state.tentative for state in env.backend.list_address_states(env.ns, "eth0"))
    assert any(str(r.dst) == "::/0" and str(r.gateway) == "2001:db8:7::1" for r in env.backend.list_routes(env.ns))
    assert env.backend.read_sysctl(env.ns, "net/ipv6/conf/eth0/enhanced_dad") == "1"


def test_without_dad_nothing_waits(tmp_path: Path) -> None:
    env = Env(tmp_path)
    waits: list[float] = []
    env.plugin = BridgePlugin(env.backend, env.firewall, sleep=waits.append)
    env.plugin.add(env.request("ADD", _v6_config(env)))
    assert waits == []
    assert env.backend.read_sysctl(env.ns, "net/ipv6/conf/eth0/accept_dad") == "0"
    assert not any(state.tentative for state in env.backend.list_address_states(env.ns, "eth0"))


def test_dad_that_never_ends_times_out_after_5_seconds_and_the_add_is_undone(tmp_path: Path) -> None:
    env = Env(tmp_path)
    waits: list[float] = []
    env.plugin = BridgePlugin(env.backend, env.firewall, sleep=waits.append)
    with pytest.raises(InternalError) as caught:
        env.plugin.add(env.request("ADD", _v6_config(env, enabledad=True)))
    # The reference prints its 5 s time.Duration with %d.
    assert caught.value.msg == ('failed to settle addresses for "eth0": link eth0 still has tentative addresses '
                                "after 5000000000 seconds")
    assert len(waits) == 100 and sum(waits) == pytest.approx(5.0)
    assert [link.name for link in env.backend.list_links(env.ns)] == ["lo"]
    assert env.reservations() == []


def test_dad_failure_ends_the_wait_at_once(tmp_path: Path) -> None:
    env = Env(tmp_path)
    waits: list[float] = []

    def duplicate_found(seconds: float) -> None:
        waits.append(seconds)
        env.backend.fail_dad(env.ns, "eth0", Address.parse("2001:db8:7::2/64"))

    env.plugin = BridgePlugin(env.backend, env.firewall, sleep=duplicate_found)
    with pytest.raises(InternalError) as caught:
        env.plugin.add(env.request("ADD", _v6_config(env, enabledad=True)))
    assert caught.value.msg == ('failed to settle addresses for "eth0": link eth0 has address 2001:db8:7::2 in '
                                "DADFAILED state")
    assert waits == [0.05]


def test_no_ipv6_gateway_means_no_wait(tmp_path: Path) -> None:
    env = Env(tmp_path)
    waits: list[float] = []
    env.plugin = BridgePlugin(env.backend, env.firewall, sleep=waits.append)
    env.plugin.add(env.request("ADD", env.config(enabledad=True)))
    assert waits == []


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
    env.backend.add_namespace("/var/run/netns/other")
    with pytest.raises(InternalError, match="Sandbox in prevResult"):
        env.plugin.check(env.request("CHECK", checked, netns="/var/run/netns/other"))
    # The namespace is opened first, as the reference opens it (before IPAM's CHECK and prevResult).
    with pytest.raises(NamespaceNotFoundError, match=r'^failed to open netns "/var/run/netns/gone": failed to Statfs'):
        env.plugin.check(env.request("CHECK", config, netns="/var/run/netns/gone"))


def test_result_converts_to_every_version(env: Env) -> None:
    result = env.plugin.add(env.request("ADD", env.config()))
    old = result.as_version("0.2.0")
    assert json.loads(old.to_json())["ip4"]["ip"] == "10.23.0.2/24"
    assert parse_result(result.as_version("0.4.0").to_json()).cni_version == "0.4.0"


def test_nftables_options_through_exec_on_the_fake_kernel(plugin_bin: Path, tmp_path: Path,
                                                          fake_kernel: dict[str, str]) -> None:
    """The exec'd plugin reaches the nftables side through the firewall it is given (here the fake's)."""
    from plugin_helpers import run_exec

    from cnicore._plugin_main import FakeState

    with FakeState(fake_kernel["CNICORE_FAKE_STATE"]) as state:
        state.backend.add_namespace(NS)
    config = {"cniVersion": "1.0.0", "name": "mynet", "type": "bridge", "bridge": "cnt-br0", "isGateway": True,
              "ipMasq": True, "ipMasqBackend": "nftables", "macspoofchk": True,
              "ipam": {"type": "host-local", "subnet": "10.23.0.0/24", "dataDir": str(tmp_path / "data")}}
    common: dict[str, Any] = {"netns": NS, "container_id": "c9", "path": [plugin_bin], "extra_env": fake_kernel}
    out = run_exec(plugin_bin / "bridge", "ADD", config, **common)
    assert out.returncode == 0, out.stdout + out.stderr
    veth = out.json["interfaces"][1]["name"]
    with FakeState(fake_kernel["CNICORE_FAKE_STATE"]) as state:
        nft = state.firewall.nftables()
        assert nft.list_rules() == (nft_masquerade_comment("mynet", "eth0", "c9"),)
        base = next(item["rule"] for item in nft.list_spoof_check() if "rule" in item)
        assert base["expr"][0]["match"]["right"] == veth and base["comment"] == "macspoofchk-c9-eth0"
    assert run_exec(plugin_bin / "bridge", "DEL", config, **common).returncode == 0
    with FakeState(fake_kernel["CNICORE_FAKE_STATE"]) as state:
        nft = state.firewall.nftables()
        assert nft.list_rules() == ()
        assert not [item for item in nft.list_spoof_check() if "rule" in item]


def test_gc_is_forwarded_to_ipam_and_releases_only_invalid_attachments(env: Env) -> None:
    config = env.config(cniVersion="1.1.0")
    backend = env.backend
    backend.add_namespace("/var/run/netns/cnt-br2")
    env.plugin.add(env.request("ADD", config))
    env.plugin.add(env.request("ADD", config, netns="/var/run/netns/cnt-br2", cid="c2"))
    assert env.reservations() == ["10.23.0.2", "10.23.0.3"]
    gc_config = dict(config, **{"cni.dev/valid-attachments": [{"containerID": "c2", "ifname": "eth0"}]})
    env.plugin.gc(PluginRequest(command="GC", config=gc_config, config_bytes=json.dumps(gc_config).encode(),
                                cni_version="1.1.0", path=("/nonexistent",)))
    assert env.reservations() == ["10.23.0.3"]
    # Idempotent, and a layer-2 bridge (no IPAM) has nothing to forward.
    env.plugin.gc(PluginRequest(command="GC", config=gc_config, config_bytes=json.dumps(gc_config).encode(),
                                cni_version="1.1.0", path=("/nonexistent",)))
    assert env.reservations() == ["10.23.0.3"]
    l2 = {k: v for k, v in gc_config.items() if k not in ("ipam", "isGateway", "ipMasq")}
    env.plugin.gc(PluginRequest(command="GC", config=l2, config_bytes=json.dumps(l2).encode(), cni_version="1.1.0",
                                path=("/nonexistent",)))
    assert env.reservations() == ["10.23.0.3"]
