"""The portmap meta plugin: on the fake firewall, against the reference ``portmap``, and carrying traffic.

The differential tests run the reference (``/usr/lib/cni/portmap``) and ours on
the same configuration, each inside its own throwaway namespace playing the host,
and compare the output, the errors and the ``nat`` tables as ``iptables-save``
prints them. The one layout difference is pinned: upstream's current plugin (and
we) put each container's jumps first in ``CNI-HOSTPORT-DNAT``; Debian's 1.1.1
appends them, so that chain is compared as a set.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import Namespaces, Outcome, run_exec
from support import reference_plugin, send_tracked_flows

from cnicore._errors import InternalError
from cnicore.backends import FakeFirewall
from cnicore.links import portmap_chain_name
from cnicore.plugins import PluginRequest, PortMapPlugin

CID = "cnt-pm-1"
MAPPINGS = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": 8443, "containerPort": 443, "protocol": "tcp", "hostIP": "192.0.2.1"},
            {"hostPort": 5353, "containerPort": 53, "protocol": "udp"},
            {"hostPort": 9090, "containerPort": 90, "protocol": "tcp", "hostIP": "2001:db8::1"}]


def prev_result(netns: str, version: str = "1.0.0") -> dict[str, Any]:
    if version.startswith("0.3") or version == "0.4.0":
        return {"cniVersion": version, "interfaces": [{"name": "cnt-br0"}, {"name": "eth0", "sandbox": netns}],
                "ips": [{"version": "4", "address": "10.1.2.3/24", "interface": 1},
                        {"version": "6", "address": "2001:db8::3/64", "interface": 1}], "dns": {}}
    return {"cniVersion": version, "interfaces": [{"name": "cnt-br0"}, {"name": "eth0", "sandbox": netns}],
            "ips": [{"address": "10.1.2.3/24", "interface": 1}, {"address": "2001:db8::3/64", "interface": 1}]}


def conf(netns: str = "/x", version: str = "1.0.0", mappings: list[dict[str, Any]] | None = None,
         **extra: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": "pmnet", "type": "portmap", "prevResult": prev_result(netns, version),
            "runtimeConfig": {"portMappings": MAPPINGS if mappings is None else mappings}, **extra}


def request(command: str, config: dict[str, Any]) -> PluginRequest:
    return PluginRequest(command=command, container_id=CID, netns="/x", ifname="eth0", config=config,
                         config_bytes=json.dumps(config).encode(), cni_version=config.get("cniVersion", ""))


def test_add_check_del_on_the_fake() -> None:
    fw = FakeFirewall()
    plugin = PortMapPlugin(fw)
    plugin.add(request("ADD", conf()))
    chain = portmap_chain_name("pmnet", CID)
    rules = fw.table_rules(4, "nat")
    assert rules[chain][:3] == (
        f"-A {chain} -s 10.1.2.0/24 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.2.3:80")
    assert all("9090" not in rule for rule in rules[chain])  # an IPv6 hostIP: not in the IPv4 table
    assert fw.table_rules(6, "nat")[chain][-1] == (
        f"-A {chain} -d 2001:db8::1/128 -p tcp -m tcp --dport 9090 -j DNAT --to-destination [2001:db8::3]:90")
    plugin.check(request("CHECK", conf()))
    plugin.delete(request("DEL", conf()))
    assert chain not in fw.table_rules(4, "nat") and chain not in fw.table_rules(6, "nat")
    with pytest.raises(InternalError, match=f"could not check ipv4 dnat: chain {chain} not found"):
        plugin.check(request("CHECK", conf()))
    plugin.delete(request("DEL", conf()))  # idempotent


def test_masq_all_marks_every_source() -> None:
    # Upstream's current plugin (Debian's 1.1.1 has no masqAll): no source match, no localhost rule.
    fw = FakeFirewall()
    PortMapPlugin(fw).add(request("ADD", conf(masqAll=True, mappings=MAPPINGS[:1])))
    chain = portmap_chain_name("pmnet", CID)
    assert fw.table_rules(4, "nat")[chain] == (
        f"-A {chain} -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.2.3:80")


class _Host:
    """A host whose conntrack table refuses (or records) deletions."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.asked: list[tuple[int, int, list[int]]] = []

    def ipv4_routes(self) -> list[tuple[str, str]]:
        return []

    def write_sysctl(self, key: str, value: int) -> None:
        pass

    def delete_conntrack_entries(self, version: int, protocol: int, dst_ports: list[int]) -> int:
        self.asked.append((version, protocol, list(dst_ports)))
        if self.refuse:
            raise PermissionError(1, "Operation not permitted")
        return 0


def test_stale_udp_flows_asked_per_family_and_a_refusal_only_reported(capsys: pytest.CaptureFixture[str]) -> None:
    host = _Host(refuse=False)
    PortMapPlugin(FakeFirewall(), host=host).add(request("ADD", conf()))
    assert host.asked == [(4, 17, [5353]), (6, 17, [5353])]
    host = _Host(refuse=True)
    PortMapPlugin(FakeFirewall(), host=host).add(request("ADD", conf()))  # ADD still succeeds
    assert capsys.readouterr().err.splitlines() == [
        "failed to delete stale UDP conntrack entries for 10.1.2.3: [Errno 1] Operation not permitted",
        "failed to delete stale UDP conntrack entries for 2001:db8::3: [Errno 1] Operation not permitted"]
    host = _Host(refuse=False)
    PortMapPlugin(FakeFirewall(), host=host).add(request("ADD", conf(mappings=MAPPINGS[:2])))
    assert host.asked == []  # no UDP mapping: nothing to forget


@pytest.mark.parametrize(("extra", "message"), [
    ({"markMasqBit": 32}, "failed to parse config: MasqMarkBit must be between 0 and 31"),
    ({"markMasqBit": 3, "externalSetMarkChain": "X"},
     "failed to parse config: Cannot specify externalSetMarkChain and markMasqBit"),
    ({"runtimeConfig": {"portMappings": [{"hostPort": 0, "containerPort": 1, "protocol": "tcp"}]}},
     "failed to parse config: Invalid host port number: 0"),
    ({"prevResult": None}, "must be called as chained plugin"),
])
def test_errors_on_the_fake(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InternalError) as info:
        PortMapPlugin(FakeFirewall()).add(request("ADD", {**conf(), **extra}))
    assert info.value.msg == message


# -- against the reference, in throwaway host namespaces ----------------------------------------------

class Side:
    def __init__(self, label: str, binary: Path, netns: Namespaces) -> None:
        self.binary = binary
        self.host = netns.add(f"hostpm{label}")
        self.container = netns.add(f"cpm{label}")
        self.netns = "/var/run/netns/" + self.container
        for tool in ("iptables", "ip6tables"):  # an administrator's set-mark chain (externalSetMarkChain)
            subprocess.run(["ip", "netns", "exec", self.host, tool, "-w", "-t", "nat", "-N", "CNT-MARK"], check=True)
        # The host's way to the container (a bridge in real life): SNAT turns route_localnet on for it.
        for argv in (["link", "add", "cnt-pmbr", "type", "veth", "peer", "name", "cnt-pmbr-p"],
                     ["addr", "add", "10.1.2.1/24", "dev", "cnt-pmbr"], ["link", "set", "cnt-pmbr-p", "up"],
                     ["link", "set", "cnt-pmbr", "up"]):
            subprocess.run(["ip", "-n", self.host, *argv], check=True)

    def route_localnet(self) -> str:
        done = subprocess.run(["ip", "netns", "exec", self.host, "cat",
                               "/proc/sys/net/ipv4/conf/cnt-pmbr/route_localnet"],
                              capture_output=True, text=True, check=True)
        return done.stdout.strip()

    def run(self, command: str, config: dict[str, Any] | bytes) -> Outcome:
        if isinstance(config, dict):
            config = json.loads(json.dumps(config).replace("NETNS", self.netns))
        return run_exec(self.binary, command, config, netns=self.netns, container_id=CID, host_ns=self.host)

    def nat(self) -> dict[int, list[str]]:
        out = {}
        for version, tool in ((4, "iptables-save"), (6, "ip6tables-save")):
            done = subprocess.run(["ip", "netns", "exec", self.host, tool, "-t", "nat"], capture_output=True,
                                  text=True, check=True)
            lines = [line for line in done.stdout.splitlines() if not line.startswith("#")]
            # CNI-HOSTPORT-DNAT's order differs by design (see the module docstring): compared as a set.
            jumps = sorted(line for line in lines if line.startswith("-A CNI-HOSTPORT-DNAT "))
            out[version] = [line for line in lines if not line.startswith("-A CNI-HOSTPORT-DNAT ")] + jumps
        return out

    def output(self, outcome: Outcome) -> Any:
        text = outcome.stdout.replace(self.netns, "NETNS")
        doc = json.loads(text) if text else None
        if isinstance(doc, dict) and str(doc.get("cniVersion", "")).startswith("1."):
            return {k: v for k, v in doc.items() if not (k == "dns" and v == {})}
        return text


@pytest.fixture
def sides(netns: Namespaces, plugin_bin: Path) -> tuple[Side, Side]:
    return Side("ref", reference_plugin("portmap"), netns), Side("ours", plugin_bin / "portmap", netns)


@pytest.mark.root
@pytest.mark.reference
@pytest.mark.parametrize(("version", "extra"), [
    ("1.0.0", {}),
    ("0.4.0", {"snat": False}),
    ("0.3.1", {"markMasqBit": 5}),
    ("1.0.0", {"externalSetMarkChain": "CNT-MARK", "conditionsV4": ["-s", "192.0.2.0/24"],
               "conditionsV6": ["!", "-s", "2001:db8:1::/64"]}),
    ("1.0.0", {"runtimeConfig": {"portMappings": [
        {"hostPort": 7000 + i, "containerPort": 70 + i, "protocol": "tcp"} for i in range(17)]}}),
    ("1.0.0", {"runtimeConfig": {"portMappings": []}}),
])
def test_same_as_reference(sides: tuple[Side, Side], version: str, extra: dict[str, Any]) -> None:
    config = conf("NETNS", version, **extra)
    other = {**config, "name": "pmother"}
    observed = []
    checks: list[Outcome] = []
    for side in sides:
        steps = [side.run("ADD", config), side.run("ADD", other), side.run("ADD", config)]
        after_add = [side.nat(), side.route_localnet()]
        check = side.run("CHECK", config)
        steps += [side.run("DEL", config)]
        after_del = side.nat()
        steps += [side.run("DEL", config), side.run("DEL", other)]
        observed.append([[(s.returncode, side.output(s)) for s in steps], after_add, after_del, side.nat()])
        checks.append(check)
    for ref_part, our_part in zip(observed[0], observed[1], strict=True):
        assert ref_part == our_part
    # Debian's 1.1.1 CHECK also looks for the IPv4 address's rules in ip6tables, and so always fails where
    # ip6tables works; upstream's current plugin checks each address in its own family, as we do.
    if version < "0.4.0":
        assert [c.stdout for c in checks] == [checks[0].stdout] * 2 and "does not allow CHECK" in checks[0].stdout
        return
    if config["runtimeConfig"]["portMappings"]:
        assert checks[0].returncode == 1 and "could not check ipv6 dnat: " in checks[0].stdout
    else:
        assert checks[0].returncode == 0
    assert (checks[1].returncode, checks[1].stdout) == (0, "")


@pytest.mark.root
@pytest.mark.reference
@pytest.mark.parametrize("extra", [
    {"prevResult": None},
    {"markMasqBit": -1},
    {"markMasqBit": 2, "externalSetMarkChain": "X"},
    {"runtimeConfig": {"portMappings": [{"hostPort": 1, "containerPort": 0, "protocol": "tcp"}]}},
    {"runtimeConfig": {"portMappings": [{"hostPort": "x", "containerPort": 1, "protocol": "tcp"}]}},
    {"runtimeConfig": {"portMappings": [{"hostPort": 8080.0, "containerPort": 1, "protocol": "tcp"}]}},
    {"snat": "yes"},
])
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_same_errors_as_reference(sides: tuple[Side, Side], extra: dict[str, Any], command: str) -> None:
    config = {**conf("NETNS"), **extra}
    if config["prevResult"] is None:
        del config["prevResult"]
    ref, ours = (side.run(command, config) for side in sides)
    assert (ref.returncode, sides[0].output(ref)) == (ours.returncode, sides[1].output(ours))
    assert sides[0].nat() == sides[1].nat()


@pytest.mark.root
@pytest.mark.reference
def test_each_removes_and_checks_what_the_other_added(sides: tuple[Side, Side]) -> None:
    ref, ours = sides
    side = ours
    ours_binary = ours.binary
    for writer, other in ((ref.binary, ours.binary), (ours.binary, ref.binary)):
        side.binary = writer
        assert side.run("ADD", conf("NETNS")).returncode == 0
        side.binary = other
        if other == ours_binary:
            assert side.run("CHECK", conf("NETNS")).returncode == 0  # (the installed reference's CHECK: see above)
        assert side.run("DEL", conf("NETNS")).returncode == 0
        assert all(portmap_chain_name("pmnet", CID) not in line for lines in side.nat().values() for line in lines)


@pytest.mark.root
@pytest.mark.reference
@pytest.mark.parametrize("protocol", ["udp", "UDP", "tcp"])
def test_stale_udp_flows_deleted_as_the_reference(sides: tuple[Side, Side], protocol: str) -> None:
    # Flows the host tracked before the port was published (a UDP one would bypass the new DNAT rule): ADD
    # deletes the UDP ones to the published port, in both families, and nothing else.
    from backends._conntrack import list_entries

    mappings = [{"hostPort": 5353, "containerPort": 53, "protocol": protocol}]
    observed = []
    for side in sides:
        for tool in ("iptables", "ip6tables"):  # track the host's own packets from the start
            subprocess.run(["ip", "netns", "exec", side.host, tool, "-w", "-A", "OUTPUT", "-m", "conntrack",
                            "--ctstate", "NEW", "-j", "ACCEPT"], check=True)
        send_tracked_flows(side.host, (5353, 5354), 5353)
        before = {v: sorted(f[0::4] for f in list_entries(v, netns=f"/run/netns/{side.host}")) for v in (4, 6)}
        assert before[4] == before[6] == [(6, 5353), (17, 5353), (17, 5354)]
        add = side.run("ADD", conf("NETNS", mappings=mappings))
        after = {v: sorted(f[0::4] for f in list_entries(v, netns=f"/run/netns/{side.host}")) for v in (4, 6)}
        observed.append((add.returncode, after))
    assert observed[0] == observed[1]
    kept = [(6, 5353), (17, 5354)] if protocol != "tcp" else [(6, 5353), (17, 5353), (17, 5354)]
    assert observed[1] == (0, {4: kept, 6: kept})


_IN_PROCESS_ADD = """
import json, sys
from cnicore.backends import FakeFirewall, NetlinkLinkBackend
from cnicore.plugins import PluginRequest, PortMapPlugin
config = json.loads(sys.argv[1])
PortMapPlugin(FakeFirewall(), NetlinkLinkBackend()).add(PluginRequest(
    command="ADD", container_id="cnt-pm-1", netns="/x", ifname="eth0", config=config,
    config_bytes=sys.argv[1].encode(), cni_version="1.0.0"))
"""


@pytest.mark.root
def test_in_process_on_a_kernel_backend_deletes_stale_udp_flows(netns: Namespaces) -> None:
    # The library's portmap over a kernel link backend: the host is the calling process's namespace, here a
    # throwaway one the whole process runs in (ip netns exec); the fake firewall keeps iptables out of it.
    import sys

    from backends._conntrack import list_entries

    host = netns.add("hostpmip")
    for tool in ("iptables", "ip6tables"):
        subprocess.run(["ip", "netns", "exec", host, tool, "-w", "-A", "OUTPUT", "-m", "conntrack", "--ctstate",
                        "NEW", "-j", "ACCEPT"], check=True)
    send_tracked_flows(host, (5353, 5354), 5353)
    config = conf(mappings=[{"hostPort": 5353, "containerPort": 53, "protocol": "udp"}])
    subprocess.run(["ip", "netns", "exec", host, sys.executable, "-c", _IN_PROCESS_ADD, json.dumps(config)],
                   check=True)
    for version in (4, 6):
        assert sorted(f[0::4] for f in list_entries(version, netns=f"/run/netns/{host}")) == [(6, 5353), (17, 5354)]


def test_exec_version_loads_neither_attrs_nor_netaddr(plugin_bin: Path, tmp_path: Path) -> None:
    from test_exec_imports import imported

    modules = imported(plugin_bin / "portmap", "VERSION", b"", {}, tmp_path)
    assert sorted(m for m in modules if m.split(".")[0] in ("attr", "attrs", "netaddr")
                  or m.startswith(("cnicore.links", "cnicore.backends", "cnicore.spec._result"))) == []


@pytest.mark.root
@pytest.mark.reference
@pytest.mark.parametrize("host_ip", ["x", "127.0.0.256", "::1\n-A INPUT -j ACCEPT"])
@pytest.mark.parametrize("dual_stack", [True, False])
def test_a_host_ip_that_is_no_address_never_maps_every_address(sides: tuple[Side, Side], host_ip: str,
                                                                dual_stack: bool) -> None:
    # Go's net.ParseIP gives no address, which the reference takes for IPv6: an IPv4 container's mapping is
    # skipped; an IPv6 one's rule ("-d <hostIP>") is refused by ip6tables, so ADD (and CHECK) fail, code 999.
    # Ours fails before writing anything (the reference leaves its shared chains and a jump behind); it never
    # maps the port on every address.
    config = conf("NETNS", mappings=[{"hostPort": 8481, "containerPort": 81, "protocol": "tcp", "hostIP": host_ip}])
    if not dual_stack:
        config["prevResult"]["ips"] = config["prevResult"]["ips"][:1]
    seen = []
    for side in sides:
        steps = [side.run(command, config) for command in ("ADD", "CHECK", "DEL")]
        seen.append([(step.returncode, json.loads(step.stdout)["code"] if step.returncode else None)
                     for step in steps])
        if side is sides[1]:
            assert not any("8481" in line and "DNAT" in line for lines in side.nat().values() for line in lines)
    if dual_stack:
        assert seen[1] == seen[0] == [(1, 999), (1, 999), (0, None)]
    else:
        # (CHECK: Debian's 1.1.1 looks for the IPv4 rules in ip6tables too, see test_same_as_reference.)
        assert seen[1] == [(0, None), (0, None), (0, None)]
        assert [seen[0][0], seen[0][2]] == [(0, None), (0, None)]
