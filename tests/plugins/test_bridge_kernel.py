"""The bridge plugin's newer options on the kernel: DAD, the VLAN gateway, the MAC spoof check, nftables masquerade.

Each test plays the host in a throwaway ``cnt-`` namespace: the exec'd plugin
runs there (``ip netns exec``), so the bridge, the nftables and iptables rules
and the sysctls it touches never reach the machine's own. The reference Go
plugin (``/usr/lib/cni``) runs beside ours where it knows the option: the
spoof-check tables must be the same. The VLAN gateway needs bridge VLAN
filtering, which some kernels lack: the test says so and skips, and a second
test runs the same ADD on the kernel with only the VLAN tables kept out (so
the links, the veth pair and the addresses are still the kernel's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from plugin_helpers import Namespaces, Outcome, ip_json, netns_path, run_exec
from support import VLAN_FILTERING_REFUSED, reference_plugin, require_tool

from cnicore.links import (
    Address,
    BridgeSpec,
    LinkBackend,
    Namespace,
    PortVlan,
    nft_instance_hash,
    nft_masquerade_comment,
)

pytestmark = pytest.mark.root

CID = "cnt-kernel-1"


def _config(tmp_path: Path, bridge: str, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": "knet", "type": "bridge", "bridge": bridge,
                            "isGateway": True,
                            "ipam": {"type": "host-local", "subnet": "10.29.0.0/24", "dataDir": str(tmp_path / "ipam")}}
    conf.update(extra)
    return conf


def _run(binary: Path, command: str, config: dict[str, Any], host: str, container: str,
         backend: str = "auto") -> Outcome:
    return run_exec(binary, command, config, netns=netns_path(container), container_id=CID, path=[binary.parent],
                    host_ns=host, extra_env={"CNICORE_BACKEND": backend})


def _nft(host: str, *args: str) -> Any:
    done = subprocess.run(["ip", "netns", "exec", host, "nft", "-j", *args], capture_output=True, text=True,
                          check=False)
    return json.loads(done.stdout)["nftables"] if done.returncode == 0 else []


# -- IPv6 duplicate address detection ------------------------------------------------------------


def _v6_states(container: str) -> list[tuple[str, bool]]:
    links = ip_json(["-6", "address", "show", "dev", "eth0"], container)
    return [(a["local"], bool(a.get("tentative", False))) for link in links for a in link.get("addr_info", [])]


@pytest.mark.parametrize("backend", ["netlink", "iproute2"])
@pytest.mark.parametrize("dad", [True, False])
def test_routes_wait_for_dad(backend: str, dad: bool, plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    host, container = netns.add("host"), netns.add("c")
    config = _config(tmp_path, "cnt-brd", enabledad=dad)
    config["ipam"] = {"type": "host-local", "subnet": "2001:db8:29::/64", "routes": [{"dst": "::/0"}],
                      "dataDir": str(tmp_path / "ipam")}
    out = _run(plugin_bin / "bridge", "ADD", config, host, container, backend)
    assert out.returncode == 0, out.stdout + out.stderr
    # DAD takes the kernel a second at least: with it on, the ADD returned only once it was over.
    states = _v6_states(container)
    assert ("2001:db8:29::2", False) in states and not any(tentative for _ip, tentative in states)
    assert any(a.startswith("fe80:") for a, _t in states)
    routes = ip_json(["-6", "route", "show", "default"], container)
    assert [(r["gateway"], r["dev"]) for r in routes] == [("2001:db8:29::1", "eth0")]
    accept_dad = subprocess.run(["ip", "netns", "exec", container, "cat", "/proc/sys/net/ipv6/conf/eth0/accept_dad"],
                                capture_output=True, text=True, check=True).stdout.strip()
    assert accept_dad == ("1" if dad else "0")
    assert _run(plugin_bin / "bridge", "DEL", config, host, container, backend).returncode == 0


# -- the gateway of a VLAN -----------------------------------------------------------------------


def test_vlan_gateway_on_the_kernel(plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    host, container = netns.add("host"), netns.add("c")
    probe = subprocess.run(["ip", "-n", host, "link", "add", "cnt-vprobe", "type", "bridge", "vlan_filtering", "1"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        # Only the recognised refusal of a kernel without bridge VLAN filtering skips; anything else fails.
        refusal = probe.stderr.strip()
        assert VLAN_FILTERING_REFUSED.fullmatch(refusal), refusal
        pytest.skip(f"this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING): {refusal}")
    config = _config(tmp_path, "cnt-brk", vlan=7, preserveDefaultVlan=False)
    out = _run(plugin_bin / "bridge", "ADD", config, host, container)
    assert out.returncode == 0, out.stdout + out.stderr
    result = out.json
    assert [i["name"] for i in result["interfaces"]][3] == "cnt-brk.7"
    links = {link["ifname"]: link for link in ip_json(["-d", "link", "show"], host)}
    assert links["cnt-brk.7"]["linkinfo"]["info_kind"] == "veth"
    peers = [name for name, link in links.items() if link.get("master") == "cnt-brk"]
    vlans = {entry["ifname"]: entry["vlans"] for entry in ip_json(["vlan", "show"], host) if "ifname" in entry}
    for port in peers:
        assert [(v["vlan"], sorted(v.get("flags", []))) for v in vlans[port]] == [(7, ["Egress Untagged", "PVID"])]
    assert _addresses(host, "cnt-brk.7") == ["10.29.0.1/24"]
    assert _run(plugin_bin / "bridge", "DEL", config, host, container).returncode == 0


def _addresses(ns: str, dev: str) -> list[str]:
    return sorted(f"{a['local']}/{a['prefixlen']}" for link in ip_json(["address", "show", "dev", dev], ns)
                  for a in link.get("addr_info", []) if a.get("scope") != "link")


class _WithoutVlanTables:
    """A real backend with the VLAN tables kept out (for kernels without bridge VLAN filtering).

    Bridges are made without filtering; the VLAN edits are recorded instead of sent.
    Everything else goes to the kernel.
    """

    def __init__(self, real: LinkBackend) -> None:
        self._real = real
        self.name = real.name
        self.vlan_edits: list[tuple[str, tuple[int, ...], tuple[PortVlan, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def ensure_bridge(self, ns: Namespace, spec: BridgeSpec) -> Any:
        return self._real.ensure_bridge(ns, attrs.evolve(spec, vlan_filtering=False))

    def set_port_vlans(self, ns: Namespace, name: str, *, remove: tuple[int, ...] = (),
                       add: tuple[PortVlan, ...] = ()) -> None:
        assert self._real.get_link(ns, name).master is not None  # the port checks stay the kernel's
        self.vlan_edits.append((name, remove, add))


@pytest.mark.parametrize("kind", ["netlink", "iproute2"])
def test_vlan_gateway_links_on_the_kernel(kind: str, netns: Namespaces, tmp_path: Path) -> None:
    from cnicore.backends import FakeFirewall, IPRoute2LinkBackend, NetlinkLinkBackend, _nsenter
    from cnicore.plugins import BridgePlugin, PluginRequest

    host, container = netns.add("host"), netns.add("c")
    real: LinkBackend = NetlinkLinkBackend() if kind == "netlink" else IPRoute2LinkBackend()
    backend = _WithoutVlanTables(real)
    plugin = BridgePlugin(backend, FakeFirewall())  # type: ignore[arg-type]
    config = _config(tmp_path, "cnt-brw", vlan=7, isDefaultGateway=True, preserveDefaultVlan=False)
    request = PluginRequest(command="ADD", container_id=CID, netns=netns_path(container), ifname="eth0",
                            config=config, config_bytes=json.dumps(config).encode(), cni_version="1.0.0",
                            path=("/nonexistent",))
    # The plugin's host is the namespace playing it: run the ADD from a thread that joined it.
    result = _nsenter.run_in_namespace(Namespace(path=netns_path(host)), lambda: plugin.add(request))
    names = [i.name for i in result.interfaces]
    assert names[0] == "cnt-brw" and names[2] == "eth0" and names[3] == "cnt-brw.7"
    links = {link["ifname"]: link for link in ip_json(["-d", "link", "show"], host)}
    gateway = links["cnt-brw.7"]
    assert gateway["linkinfo"]["info_kind"] == "veth" and "UP" in gateway["flags"]
    assert gateway["address"] == result.interfaces[3].mac
    ports = sorted(name for name, link in links.items() if link.get("master") == "cnt-brw")
    assert len(ports) == 2 and names[1] in ports
    # The gateway's peer is the other port; both ports got the access VLAN.
    assert sorted(edit[0] for edit in backend.vlan_edits if edit[2]) == ports
    assert all(edit[1] in ((1,), ()) for edit in backend.vlan_edits)
    assert {edit[2] for edit in backend.vlan_edits if edit[2]} == {(PortVlan(vid=7, pvid=True, untagged=True),)}
    assert _addresses(host, "cnt-brw.7") == ["10.29.0.1/24"] and _addresses(host, "cnt-brw") == []
    # Traffic: the container reaches its gateway through the bridge (VLAN-less here): a TCP connect to a
    # closed port of the gateway address is refused by the host's stack, which proves the round trip.
    probe = ("import socket\ntry:\n    socket.create_connection(('10.29.0.1', 9), timeout=10)\n"
             "except ConnectionRefusedError:\n    print('refused')\n")
    done = subprocess.run(["ip", "netns", "exec", container, sys.executable, "-c", probe], capture_output=True,
                          text=True, check=False)
    assert done.stdout.strip() == "refused", done.stdout + done.stderr
    assert Address.parse("10.29.0.2/24") in real.list_addresses(real.open_namespace(netns_path(container)), "eth0")


# -- MAC spoof check -----------------------------------------------------------------------------


def _spoof_table(host: str, result: dict[str, Any]) -> list[Any]:
    """The bridge nat table without handles, the veth name and MAC replaced by placeholders."""
    veth, mac = result["interfaces"][1]["name"], result["interfaces"][2]["mac"]
    text = json.dumps([item for item in _nft(host, "list", "table", "bridge", "nat") if "metainfo" not in item])
    items = json.loads(text.replace(veth, "VETH").replace(mac, "MAC"))
    for item in items:
        for value in item.values():
            value.pop("handle", None)
    return items


def test_mac_spoof_check_matches_the_reference(plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    require_tool("nft")
    reference = reference_plugin("bridge")
    reference_plugin("host-local")
    tables = []
    for label, binary in (("ref", reference), ("ours", plugin_bin / "bridge")):
        host, container = netns.add("host"), netns.add("c")
        config = _config(tmp_path / label, "cnt-brs", macspoofchk=True)
        out = _run(binary, "ADD", config, host, container)
        assert out.returncode == 0, (label, out.stdout, out.stderr)
        added = _spoof_table(host, out.json)
        assert _run(binary, "DEL", config, host, container).returncode == 0
        deleted = _spoof_table(host, out.json)
        assert _run(binary, "DEL", config, host, container).returncode == 0
        tables.append((added, deleted))
    assert tables[1] == tables[0]
    added, deleted = tables[0]
    assert {"rule": {"family": "bridge", "table": "nat", "chain": "cni-br-iface-cnt-kernel-1-eth0-mac",
                     "comment": "macspoofchk-cnt-kernel-1-eth0",
                     "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ether", "field": "saddr"}},
                                         "right": "MAC"}}, {"return": None}]}} in added
    # DEL leaves the table and its base chain, empty.
    assert [next(iter(item)) for item in deleted] == ["table", "chain"]


# -- nftables masquerade -------------------------------------------------------------------------


def test_nftables_masquerade_through_the_exec_path(plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    require_tool("nft")
    require_tool("iptables")
    host, container = netns.add("host"), netns.add("c")
    config = _config(tmp_path, "cnt-brm", ipMasq=True, ipMasqBackend="nftables")
    out = _run(plugin_bin / "bridge", "ADD", config, host, container)
    assert out.returncode == 0, out.stdout + out.stderr
    rules = [item["rule"] for item in _nft(host, "list", "chain", "inet", "cni_plugins_masquerade", "masq_checks")
             if "rule" in item]
    assert [rule["comment"] for rule in rules] == [nft_masquerade_comment("knet", "eth0", CID)]
    assert rules[0]["comment"].startswith(nft_instance_hash("knet", "eth0", CID) + ", net: knet")
    nat = subprocess.run(["ip", "netns", "exec", host, "iptables", "-w", "-t", "nat", "-S"], capture_output=True,
                         text=True, check=True).stdout
    assert "CNI-" not in nat
    assert _run(plugin_bin / "bridge", "DEL", config, host, container).returncode == 0
    assert [item for item in _nft(host, "list", "chain", "inet", "cni_plugins_masquerade", "masq_checks")
            if "rule" in item] == []


def test_vlan_and_trunk_together_are_refused_by_exec(plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    host, container = netns.add("host"), netns.add("c")
    out = _run(plugin_bin / "bridge", "ADD", _config(tmp_path, "cnt-brt", vlan=5, vlanTrunk=[{"id": 3}]), host,
               container)
    # A plain Go error in the reference: code 999, its text.
    assert (out.returncode, out.json) == (1, {"code": 999, "msg": "cannot set vlan and vlanTrunk at the same time"})
    assert [link["ifname"] for link in ip_json(["link", "show"], host)] == ["lo"]
    assert not os.path.exists(tmp_path / "ipam")


# -- the bridge's name ---------------------------------------------------------------------------


@pytest.mark.parametrize("bridge", ["", None])
def test_an_empty_bridge_name_is_refused_as_the_reference_refuses_it(bridge: str | None, plugin_bin: Path,
                                                                      netns: Namespaces, tmp_path: Path) -> None:
    # Go pre-sets "cni0" and a present string replaces it: "" is refused by ADD (never cni0), null keeps "cni0".
    reference = reference_plugin("bridge")
    reference_plugin("host-local")
    seen = []
    for label, binary in (("ref", reference), ("ours", plugin_bin / "bridge")):
        host, container = netns.add("host"), netns.add("c")
        config = _config(tmp_path / label, bridge)  # type: ignore[arg-type]
        added = _run(binary, "ADD", config, host, container)
        links = sorted("veth" if link["ifname"].startswith("veth") else link["ifname"]
                       for link in ip_json(["link", "show"], host))
        deleted = _run(binary, "DEL", config, host, container)
        seen.append((added.returncode, added.json if added.returncode else None, links, deleted.returncode,
                     os.path.exists(tmp_path / label / "ipam" / "knet" / "10.29.0.2")))
    assert seen[1] == seen[0]
    if bridge == "":
        assert seen[0] == (1, {"code": 999, "msg": 'failed to create bridge "": could not add "": '
                                                  "LinkAttrs.Name cannot be empty"}, ["lo"], 0, False)
    else:
        assert seen[0][0] == 0 and seen[0][2] == ["cni0", "lo", "veth"]  # (in the throwaway host namespace)
