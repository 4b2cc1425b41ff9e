"""portmap's nftables backend (``backend: nftables``), as upstream's current plugin lays it out.

There is no reference binary to run: Debian's 1.1.1 portmap predates nftables
support. So the layout is checked against the rules upstream's own tests
document (table ``cni_hostport``, chains ``hostports``, ``hostip_hostports``,
``masquerading``, the container ID as each rule's comment), the backend choice
and refusals against upstream's ``validateBackend``, and the semantics on real
namespaces with ``nft``: ADD, CHECK, DEL (idempotent, only this container's
rules, whatever shape they were written in), both families. Traffic through
the nftables rules is in ``test_portmap_traffic``. Every table is made in a
namespace the test made.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import netaddr
import pytest
from plugin_helpers import Namespaces, run_exec

from cnicore._errors import CNIError
from cnicore.backends import FakeFirewall
from cnicore.links import PortMapping, portmap_nft_add_script
from cnicore.plugins import PluginRequest, PortMapPlugin
from cnicore.plugins._portmap import load_portmap_config

CID = "icee6giejonei6so"

# The mappings of upstream's nftables test: both families, hostIPs specified, unspecified and of the other family.
UPSTREAM_MAPPINGS = [
    {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
    {"hostPort": 8081, "containerPort": 80, "protocol": "tcp"},
    {"hostPort": 8080, "containerPort": 81, "protocol": "udp"},
    {"hostPort": 8082, "containerPort": 82, "protocol": "udp"},
    {"hostPort": 8083, "containerPort": 83, "protocol": "tcp", "hostIP": "192.168.0.2"},
    {"hostPort": 8084, "containerPort": 84, "protocol": "tcp", "hostIP": "0.0.0.0"},
    {"hostPort": 8085, "containerPort": 85, "protocol": "tcp", "hostIP": "2001:db8:a::1"},
    {"hostPort": 8086, "containerPort": 86, "protocol": "tcp", "hostIP": "::"},
]


def _mappings(raw: list[dict[str, Any]]) -> list[PortMapping]:
    return [PortMapping(host_port=m["hostPort"], container_port=m["containerPort"], protocol=m["protocol"],
                        host_ip=m.get("hostIP", "")) for m in raw]


def _rules(script: str) -> list[str]:
    return sorted(line for line in script.splitlines() if line.startswith("add rule "))


def test_rules_are_those_upstream_documents_ipv4_with_snat() -> None:
    script = portmap_nft_add_script(_mappings(UPSTREAM_MAPPINGS), netaddr.IPNetwork("10.0.0.2/24"), container_id=CID,
                                    snat=True, conditions=["a", "b"])
    tag = f'comment "{CID}"'
    assert _rules(script) == sorted([
        f"add rule ip cni_hostport hostip_hostports ip daddr 192.168.0.2 tcp dport 8083 dnat to 10.0.0.2:83 {tag}",
        f"add rule ip cni_hostport hostports tcp dport 8080 dnat to 10.0.0.2:80 {tag}",
        f"add rule ip cni_hostport hostports tcp dport 8081 dnat to 10.0.0.2:80 {tag}",
        f"add rule ip cni_hostport hostports udp dport 8080 dnat to 10.0.0.2:81 {tag}",
        f"add rule ip cni_hostport hostports udp dport 8082 dnat to 10.0.0.2:82 {tag}",
        f"add rule ip cni_hostport hostports tcp dport 8084 dnat to 10.0.0.2:84 {tag}",
        f"add rule ip cni_hostport masquerading ip saddr 10.0.0.2 ip daddr 10.0.0.2 masquerade {tag}",
        f"add rule ip cni_hostport masquerading ip saddr 127.0.0.1 ip daddr 10.0.0.2 masquerade {tag}",
        "add rule ip cni_hostport output a b jump hostip_hostports",
        "add rule ip cni_hostport output a b fib daddr type local jump hostports",
        "add rule ip cni_hostport prerouting a b jump hostip_hostports",
        "add rule ip cni_hostport prerouting a b jump hostports",
    ])
    lines = script.splitlines()
    assert lines[0] == 'add table ip cni_hostport { comment "CNI portmap plugin" ; }'
    # dstnat and srcnat are -100 and 100, the numbers upstream's test prints; output takes the number.
    assert "add chain ip cni_hostport prerouting { type nat hook prerouting priority dstnat ; }" in lines
    assert "add chain ip cni_hostport output { type nat hook output priority -100 ; }" in lines
    assert "add chain ip cni_hostport masquerading { type nat hook postrouting priority srcnat ; }" in lines
    # The base chains are rewritten by every ADD (flushed before their jumps are added).
    assert lines.index("flush chain ip cni_hostport prerouting") < lines.index(
        "add rule ip cni_hostport prerouting a b jump hostip_hostports")


def test_rules_are_those_upstream_documents_ipv6_without_snat() -> None:
    script = portmap_nft_add_script(_mappings(UPSTREAM_MAPPINGS), netaddr.IPNetwork("2001:db8::2/64"),
                                    container_id=CID, snat=False, conditions=["c", "d"])
    tag = f'comment "{CID}"'
    assert _rules(script) == sorted([
        f"add rule ip6 cni_hostport hostip_hostports ip6 daddr 2001:db8:a::1 tcp dport 8085 dnat to [2001:db8::2]:85 "
        f"{tag}",
        f"add rule ip6 cni_hostport hostports tcp dport 8080 dnat to [2001:db8::2]:80 {tag}",
        f"add rule ip6 cni_hostport hostports tcp dport 8081 dnat to [2001:db8::2]:80 {tag}",
        f"add rule ip6 cni_hostport hostports udp dport 8080 dnat to [2001:db8::2]:81 {tag}",
        f"add rule ip6 cni_hostport hostports udp dport 8082 dnat to [2001:db8::2]:82 {tag}",
        f"add rule ip6 cni_hostport hostports tcp dport 8086 dnat to [2001:db8::2]:86 {tag}",
        "add rule ip6 cni_hostport output c d jump hostip_hostports",
        "add rule ip6 cni_hostport output c d fib daddr type local jump hostports",
        "add rule ip6 cni_hostport prerouting c d jump hostip_hostports",
        "add rule ip6 cni_hostport prerouting c d jump hostports",
    ])
    assert "masquerading" not in script  # no snat: no masquerading chain either


# --------------------------------------------------------------------------------- choosing the backend


def _config(**extra: Any) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": "pmnft", "type": "portmap",
            "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}, **extra}


@pytest.mark.parametrize(("extra", "message"), [
    ({"backend": "nftables", "externalSetMarkChain": "KUBE-MARK"},
     "nftables backend was requested but configuration contains iptables-specific options [externalSetMarkChain]"),
    ({"backend": "nftables", "conditionsV4": ["-s", "10.0.0.0/8"], "conditionsV6": ["ip6", "saddr", "::1"]},
     "nftables backend was requested but configuration contains iptables-specific options [conditionsV4]"),
    ({"backend": "iptables", "conditionsV6": ["ip6", "saddr", "::1"]},
     "iptables backend was requested but configuration contains nftables-specific options [conditionsV6]"),
    # Unset means iptables where iptables works: nft conditions are then refused as upstream refuses them.
    ({"conditionsV4": ["meta", "mark", "1"], "externalSetMarkChain": "X"},
     "iptables backend was requested but configuration contains nftables-specific options [conditionsV4]"),
    # A negated iptables match is iptables' (upstream looks at "!" alone and says nftables; Debian's 1.1.1
    # portmap runs it: the differential test_portmap.test_same_as_reference pins that side).
    ({"backend": "nftables", "conditionsV6": ["!", "-d", "::1"]},
     "nftables backend was requested but configuration contains iptables-specific options [conditionsV6]"),
    ({"backend": "pf"}, 'unrecognized backend "pf"'),
    ({"backend": ""}, 'unrecognized backend ""'),
])
def test_backend_refusals_are_upstreams(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(CNIError) as caught:
        load_portmap_config(_config(**extra))
    assert caught.value.msg == message


def test_unset_backend_is_decided_only_when_needed() -> None:
    asked: list[int] = []

    def probe() -> str:
        asked.append(1)
        return "nftables"

    assert load_portmap_config(_config(), probe).backend is None
    assert asked == []
    conf = load_portmap_config(_config(conditionsV4=["meta", "mark", "1"]), probe)
    assert conf.backend == "nftables" and asked == [1]


def _request(command: str, config: dict[str, Any], container_id: str = CID) -> PluginRequest:
    return PluginRequest(command=command, container_id=container_id, netns="/x", ifname="eth0", config=config,
                         config_bytes=json.dumps(config).encode(), cni_version=config.get("cniVersion", ""))


def test_default_backend_is_iptables_unless_only_nftables_is_usable() -> None:
    assert PortMapPlugin(FakeFirewall()).default_backend() == "iptables"
    # The fake's host without iptables: its nftables side is usable, so nftables.
    assert PortMapPlugin(FakeFirewall(iptables_available=False)).default_backend() == "nftables"


def test_nftables_on_a_firewall_without_nft_is_one_clear_error() -> None:
    prev = {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]}
    with pytest.raises(CNIError, match="nftables backend of portmap needs the nft command"):
        PortMapPlugin(FakeFirewall()).add(_request("ADD", _config(backend="nftables", prevResult=prev)))


# --------------------------------------------------------------------------------- on real namespaces

NEEDS_ROOT = pytest.mark.root


def _nft_rules(host: str, family: str) -> list[dict[str, Any]]:
    done = subprocess.run(["ip", "netns", "exec", host, "nft", "-j", "list", "table", family, "cni_hostport"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        assert "No such file or directory" in done.stderr, done.stderr
        return []
    return [item["rule"] for item in json.loads(done.stdout)["nftables"] if "rule" in item]


def _tagged(host: str, family: str, container_id: str) -> list[str]:
    return sorted(str(rule["chain"]) for rule in _nft_rules(host, family) if rule.get("comment") == container_id)


def _dual_prev(netns: str) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "interfaces": [{"name": "cnt-br0"}, {"name": "eth0", "sandbox": netns}],
            "ips": [{"address": "10.0.0.2/24", "interface": 1}, {"address": "2001:db8::2/64", "interface": 1}]}


@NEEDS_ROOT
def test_add_check_del_on_nft_both_families(netns: Namespaces, plugin_bin: Any) -> None:
    host, container = netns.add("hostpmn"), netns.add("pmn")
    path = f"/var/run/netns/{container}"
    config = {**_config(backend="nftables"), "prevResult": _dual_prev(path)}
    config["runtimeConfig"] = {"portMappings": UPSTREAM_MAPPINGS}

    def run(command: str, cid: str = CID, cfg: dict[str, Any] = config) -> Any:
        return run_exec(plugin_bin / "portmap", command, cfg, netns=path, container_id=cid, host_ns=host)

    missing = run("CHECK")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["msg"] == 'missing hostport rules in "hostports" chain'
    added = run("ADD")
    assert added.returncode == 0, added.stdout
    assert json.loads(added.stdout) == config["prevResult"]
    assert _tagged(host, "ip", CID) == ["hostip_hostports"] + ["hostports"] * 5 + ["masquerading"] * 2
    assert _tagged(host, "ip6", CID) == ["hostip_hostports"] + ["hostports"] * 5 + ["masquerading"]
    assert run("CHECK").returncode == 0
    # Another container's rules, and this container's written in upstream's later shape: DEL tells them apart
    # by the comment alone.
    other = run("ADD", "other-ctr", {**config, "runtimeConfig": {"portMappings": UPSTREAM_MAPPINGS[:1]}})
    assert other.returncode == 0, other.stdout
    subprocess.run(["ip", "netns", "exec", host, "nft", "add", "rule", "ip", "cni_hostport", "hostports", "ip",
                    "protocol", "tcp", "th", "dport", "9999", "dnat", "ip", "addr", ".", "port", "to", "10.0.0.2",
                    ".", "99", "comment", f'"{CID}"'], check=True)
    # A missing rule fails CHECK: drop one masquerade rule of ours.
    handle = next(rule["handle"] for rule in _nft_rules(host, "ip6")
                  if rule["chain"] == "masquerading" and rule.get("comment") == CID)
    subprocess.run(["ip", "netns", "exec", host, "nft", "delete", "rule", "ip6", "cni_hostport", "masquerading",
                    "handle", str(handle)], check=True)
    broken = run("CHECK")
    assert json.loads(broken.stdout)["msg"] == 'missing hostport rules in "masquerading" chain'
    for _ in range(2):  # idempotent
        removed = run("DEL")
        assert removed.returncode == 0, removed.stdout
        assert _tagged(host, "ip", CID) == [] and _tagged(host, "ip6", CID) == []
    assert _tagged(host, "ip", "other-ctr") == ["hostports", "masquerading", "masquerading"]
    assert _tagged(host, "ip6", "other-ctr") == ["hostports", "masquerading"]
    assert run("CHECK").returncode == 1
    # The table and the shared chains stay (other containers use them).
    chains = {rule["chain"] for rule in _nft_rules(host, "ip")}
    assert {"prerouting", "output"} <= chains


@NEEDS_ROOT
def test_del_without_any_table_succeeds(netns: Namespaces, plugin_bin: Any) -> None:
    host = netns.add("hostpmn0")
    removed = run_exec(plugin_bin / "portmap", "DEL", _config(backend="nftables"), container_id=CID, host_ns=host)
    assert removed.returncode == 0, removed.stdout
    assert _nft_rules(host, "ip") == [] and _nft_rules(host, "ip6") == []
