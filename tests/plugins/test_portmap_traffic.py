"""Published ports carry traffic: our bridge, then our portmap, executed in a throwaway host namespace.

Two containers on one bridge; a small TCP server in the first answers on port
80, published as host port 8080. The test connects to the bridge's gateway
address on 8080 from the namespace playing the host, from the other container
and from the first container itself (hairpin, through the host port), and
each time reads the server's greeting. Every address is inside namespaces the
test made. It runs once per backend: iptables (table ``nat``) and nftables
(table ``cni_hostport``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import Namespaces, run_exec

pytestmark = pytest.mark.root

SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(8)
s.settimeout(30)
print("ready", flush=True)
for _ in range(int(sys.argv[1])):
    conn, peer = s.accept()
    conn.sendall(b"hello from the container")
    conn.close()
"""

CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as c:
    print(c.recv(100).decode())
"""


def _chain(plugin_bin: Path, host: str, netns_path: str, cid: str, data: Path) -> dict[str, Any]:
    bridge = {"cniVersion": "1.0.0", "name": "pmtraffic", "type": "bridge", "bridge": "cnt-pmbr0",
              "isGateway": True, "ipMasq": True, "hairpinMode": True,
              "ipam": {"type": "host-local", "subnet": "10.99.7.0/24", "dataDir": str(data)}}
    added = run_exec(plugin_bin / "bridge", "ADD", bridge, netns=netns_path, container_id=cid, path=[plugin_bin],
                     host_ns=host)
    assert added.returncode == 0, added.stdout
    result = json.loads(added.stdout)
    return {"bridge": bridge, "result": result}


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_published_port_from_host_other_container_and_hairpin(netns: Namespaces, plugin_bin: Path,
                                                              tmp_path: Path, backend: str) -> None:
    host = netns.add("hostpmt")
    first, second = netns.add("pmta"), netns.add("pmtb")
    a = _chain(plugin_bin, host, f"/var/run/netns/{first}", "cnt-pmt-a", tmp_path)
    _chain(plugin_bin, host, f"/var/run/netns/{second}", "cnt-pmt-b", tmp_path)
    portmap = {"cniVersion": "1.0.0", "name": "pmtraffic", "type": "portmap", "prevResult": a["result"],
               "backend": backend,
               "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}}
    mapped = run_exec(plugin_bin / "portmap", "ADD", portmap, netns=f"/var/run/netns/{first}",
                      container_id="cnt-pmt-a", path=[plugin_bin], host_ns=host)
    assert mapped.returncode == 0, mapped.stdout
    tables = subprocess.run(["ip", "netns", "exec", host, "nft", "list", "tables"], capture_output=True, text=True,
                            check=True).stdout
    assert ("table ip cni_hostport" in tables) == (backend == "nftables"), tables
    gateway = a["result"]["ips"][0]["gateway"]
    server = subprocess.Popen(["ip", "netns", "exec", first, sys.executable, "-c", SERVER, "3"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        for where in (host, second, first):
            done = subprocess.run(["ip", "netns", "exec", where, sys.executable, "-c", CLIENT, gateway, "8080"],
                                  capture_output=True, text=True, timeout=30, check=False)
            assert done.stdout.strip() == "hello from the container", (where, done.stderr)
    finally:
        server.kill()
        server.wait()
    # DEL takes the mapping away: the port no longer answers.
    removed = run_exec(plugin_bin / "portmap", "DEL", portmap, netns=f"/var/run/netns/{first}",
                       container_id="cnt-pmt-a", path=[plugin_bin], host_ns=host)
    assert removed.returncode == 0, removed.stdout
    done = subprocess.run(["ip", "netns", "exec", host, sys.executable, "-c", CLIENT, gateway, "8080"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
