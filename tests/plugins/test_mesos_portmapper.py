"""``mesos-cni-port-mapper`` in the Mesos flow, executed, with our bridge as delegate, in a throwaway host namespace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import Namespaces, run_exec

from cnicore.backends import FakeFirewall
from cnicore.plugins._mesos_portmapper import MesosPortMapper

CHAIN = "MESOS-CNT-PORT-MAPPER"
SERVER = """
import socket
s = socket.socket()
s.bind(("0.0.0.0", 80))
s.listen(1)
s.settimeout(30)
print("ready", flush=True)
conn, _ = s.accept()
conn.sendall(b"mesos task")
conn.close()
"""
CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as c:
    print(c.recv(100).decode())
"""


def mesos_config(data: Path, **extra: Any) -> dict[str, Any]:
    return {"name": "mesos-cnt", "type": "mesos-cni-port-mapper", "chain": CHAIN, "excludeDevices": ["cnt-mbr0"],
            "delegate": {"type": "bridge", "bridge": "cnt-mbr0", "isGateway": True, "ipMasq": True,
                         "ipam": {"type": "host-local", "subnet": "10.98.7.0/24", "dataDir": str(data)}},
            "args": {"org.apache.mesos": {"network_info": {"name": "mesos-cnt", "port_mappings": [
                {"host_port": 8081, "container_port": 80}, {"host_port": 8082, "container_port": 81,
                                                             "protocol": "UDP"}]}}},
            **extra}


def nat(host: str) -> list[str]:
    done = subprocess.run(["ip", "netns", "exec", host, "iptables-save", "-t", "nat"], capture_output=True,
                          text=True, check=True)
    return [line for line in done.stdout.splitlines() if line.startswith("-A")]


@pytest.mark.root
def test_mesos_flow_with_our_bridge(netns: Namespaces, plugin_bin: Path, tmp_path: Path) -> None:
    host, container = netns.add("hostmesos"), netns.add("mesosc")
    config = mesos_config(tmp_path / "ipam")
    added = run_exec(plugin_bin / "mesos-cni-port-mapper", "ADD", config, netns=f"/var/run/netns/{container}",
                     container_id="cnt-task-1", path=[plugin_bin], host_ns=host)
    assert added.returncode == 0, added.stdout
    result = json.loads(added.stdout)
    ip = result["ip4"]["ip"].split("/")[0]
    assert result["cniVersion"] == "0.1.0"
    rules = nat(host)
    assert f"-A PREROUTING -m addrtype --dst-type LOCAL -j {CHAIN}" in rules
    assert f"-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j {CHAIN}" in rules
    assert (f'-A {CHAIN} ! -i cnt-mbr0 -p tcp -m tcp --dport 8081 -m comment --comment "container_id: cnt-task-1" '
            f"-j DNAT --to-destination {ip}:80") in rules
    assert (f'-A {CHAIN} ! -i cnt-mbr0 -p udp -m udp --dport 8082 -m comment --comment "container_id: cnt-task-1" '
            f"-j DNAT --to-destination {ip}:81") in rules
    # The published port carries traffic from the host (to the bridge's address).
    server = subprocess.Popen(["ip", "netns", "exec", container, sys.executable, "-c", SERVER],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        done = subprocess.run(["ip", "netns", "exec", host, sys.executable, "-c", CLIENT, result["ip4"]["gateway"],
                               "8081"], capture_output=True, text=True, timeout=30, check=False)
        assert done.stdout.strip() == "mesos task", done.stderr
    finally:
        server.kill()
        server.wait()
    # DEL after the namespace is gone (an agent that lost it): rules go first, then the delegate releases the IP.
    subprocess.run(["ip", "netns", "del", container], check=True)
    removed = run_exec(plugin_bin / "mesos-cni-port-mapper", "DEL", config, netns="", container_id="cnt-task-1",
                       path=[plugin_bin], host_ns=host)
    assert removed.returncode == 0, removed.stdout
    assert not [line for line in nat(host) if "container_id: cnt-task-1" in line]
    assert f"-A PREROUTING -m addrtype --dst-type LOCAL -j {CHAIN}" in nat(host)  # the chain stays
    assert not any(p.name == ip for p in (tmp_path / "ipam" / "mesos-cnt").iterdir())


@pytest.mark.parametrize(("command", "environ", "config", "code", "msg"), [
    ("CHECK", {}, {}, 104, "Unsupported command: CHECK"),
    ("ADD", {"CNI_IFNAME": None}, {}, 101, "Unable to find environment variable 'CNI_IFNAME'"),
    ("ADD", {"CNI_NETNS": None}, {}, 101, "Unable to find environment variable 'CNI_NETNS'"),
    ("ADD", {}, {"chain": None}, 101, "Failed to get the required field 'chain': Not found"),
    ("ADD", {}, {"excludeDevices": [1]}, 101,
     "Failed to parse 'excludeDevices' list. The excluded device needs to be a string"),
    ("ADD", {}, {"delegate": {"type": "nosuch-cnt"}}, 101, "Could not find the delegate plugin 'nosuch-cnt' in"),
    ("ADD", {}, {"args": {"org.apache.mesos": {}}}, 101,
     "Failed to get the field 'args{org.apache.mesos}{network_info}': Not found"),
])
def test_mesos_errors(plugin_bin: Path, tmp_path: Path, command: str, environ: dict[str, Any],
                      config: dict[str, Any], code: int, msg: str) -> None:
    conf = {k: v for k, v in {**mesos_config(tmp_path), **config}.items() if v is not None}
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x", "CNI_IFNAME": "eth0",
           "CNI_PATH": str(plugin_bin)}
    env = {k: v for k, v in {**env, **environ}.items() if v is not None}
    done = subprocess.run([str(plugin_bin / "mesos-cni-port-mapper")], input=json.dumps(conf).encode(), env=env,
                          capture_output=True, check=False)
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert list(error) == ["cniVersion", "code", "msg"] and error["cniVersion"] == "0.3.0"
    assert error["code"] == code and error["msg"].startswith(msg), error


def test_del_removes_only_the_exact_container_tag(plugin_bin: Path, tmp_path: Path) -> None:
    fw = FakeFirewall()
    env = {"CNI_COMMAND": "ADD", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0", "CNI_PATH": str(plugin_bin)}
    mappers = {cid: MesosPortMapper({**env, "CNI_CONTAINERID": cid}, json.dumps(mesos_config(tmp_path)).encode(), fw)
               for cid in ("abc", "abcd")}
    for cid, mapper in mappers.items():
        mapper._add_rules("10.98.7.2" if cid == "abc" else "10.98.7.3")
    mappers["abc"]._delete_rules()
    left = fw.table_rules(4, "nat")[CHAIN]
    assert len(left) == 2 and all('"container_id: abcd"' in line for line in left)
