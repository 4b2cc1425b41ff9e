"""The Mesos ``network/cni`` isolator's flow, where it differs from podman's, against the reference plugins.

The isolator executes a network's plugin itself (no libcni, no conflist, no VERSION call): the operator's
file as stdin with ``args."org.apache.mesos".network_info`` injected, ``CNI_NETNS`` the container's
namespace bind-mounted at ``<root>/<containerId>/ns``, no ``CNI_ARGS``; it reads the result in the 0.1/0.2
shape (``ip4``/``ip6``/``dns``; a file without ``cniVersion`` is 0.1.0), writes ``hosts``, ``hostname``
and ``resolv.conf`` from it, and runs DEL with the checkpointed config, without ``CNI_NETNS`` when the
namespace is gone (after a reboot) and with a path that no longer exists when the directory went too.
Each step runs with our plugins and with the reference's, each on its own throwaway host and container
namespace, and the outputs, namespace state and data directories must match.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import Namespaces, Outcome, addresses, data_files, netns_path, normalise, routes, run_exec
from support import reference_plugin

from cnicore.runtime import container_files
from cnicore.spec import parse_result

pytestmark = [pytest.mark.root, pytest.mark.reference]

CONTAINER_ID = "5f8d2c1e-7b3a-4c59-9e21-0a6b8f4d3c77"  # Mesos ContainerIDs are UUIDs
NETWORK_INFO = {"name": "mesos-br", "labels": {"labels": [{"key": "rack", "value": "r1"}]},
                "port_mappings": [{"host_port": 31000, "container_port": 8080, "protocol": "tcp"}]}


def _operator_file(bridge: str, **extra: Any) -> dict[str, Any]:
    # What an operator puts in --network_cni_config_dir: one plugin, no conflist, here no cniVersion.
    return {"name": "mesos-br", "type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
            "ipam": {"type": "host-local", "subnet": "10.72.0.0/24", "routes": [{"dst": "0.0.0.0/0"}]},
            "dns": {"nameservers": ["10.72.0.53"], "search": ["mesos"]}, **extra}


def _as_mesos_passes_it(config: dict[str, Any]) -> dict[str, Any]:
    # The isolator's mutation: args["org.apache.mesos"] = {"network_info": ...}, other args kept.
    return {**config, "args": {**config.get("args", {}), "org.apache.mesos": {"network_info": NETWORK_INFO}}}


class MesosSide:
    """One implementation: its plugin directory (with a recording IPAM shim), host, container and root."""

    def __init__(self, label: str, bin_dir: Path, netns: Namespaces, tmp_path: Path) -> None:
        self.label = label
        self.host = netns.add("host")
        self.container = netns.add("c")
        self.root = tmp_path / f"mesos-{label}"
        self.data = tmp_path / f"data-{label}"
        self.ns_file = self.root / CONTAINER_ID / "ns"
        self.ns_file.parent.mkdir(parents=True)
        self.ns_file.touch()
        # The isolator pins the namespace with a bind mount of /proc/<pid>/ns/net onto <root>/<cid>/ns.
        subprocess.run(["mount", "--bind", netns_path(self.container), str(self.ns_file)], check=True)
        self.bin_dir = bin_dir
        # An IPAM "plugin" that records the stdin the bridge plugin delegates with, then runs host-local.
        self.shim_dir = tmp_path / f"shim-{label}"
        self.shim_dir.mkdir()
        shim = self.shim_dir / "cnt-recording-ipam"
        shim.write_text(f'#!/bin/sh\ntee "{self.shim_dir}/stdin.$CNI_COMMAND" | exec "{bin_dir}/host-local"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)

    def run(self, command: str, config: dict[str, Any], *, netns: str | None = None) -> Outcome:
        config = {**config, "ipam": {**config["ipam"], "dataDir": str(self.data)}}
        return run_exec(self.bin_dir / "bridge", command, json.dumps(config).encode(),
                        netns=str(self.ns_file) if netns is None else netns, container_id=CONTAINER_ID,
                        path=[self.bin_dir, self.shim_dir], host_ns=self.host)

    def text(self, outcome: Outcome) -> str:
        return normalise(outcome.stdout).replace(str(self.ns_file), "NETNS")

    def state(self) -> dict[str, Any]:
        return {"eth0": addresses(self.container, "eth0"), "routes": routes(self.container),
                "files": data_files(self.data)}

    def release(self) -> None:
        subprocess.run(["umount", str(self.ns_file)], check=False, capture_output=True)


@pytest.fixture
def sides(plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> Any:
    reference_plugin("host-local")
    made = [MesosSide("ref", reference_plugin("bridge").parent, netns, tmp_path),
            MesosSide("ours", plugin_bin, netns, tmp_path)]
    try:
        yield made
    finally:
        for side in made:
            side.release()


def _both(sides: list[MesosSide], command: str, config: dict[str, Any], **kwargs: Any) -> list[Outcome]:
    outcomes = [side.run(command, config, **kwargs) for side in sides]
    ref, ours = sides
    assert (outcomes[1].returncode, ours.text(outcomes[1])) == (outcomes[0].returncode, ref.text(outcomes[0]))
    assert ours.state() == ref.state()
    return outcomes


@pytest.mark.parametrize("version", [None, "0.2.0"])
def test_mesos_attach_files_and_del_after_reboot(version: str | None, sides: list[MesosSide]) -> None:
    config = _operator_file(f"cnt-mes{'2' if version else '1'}")
    if version is not None:
        config["cniVersion"] = version
    config = _as_mesos_passes_it(config)
    added = _both(sides, "ADD", {**config, "ipam": {**config["ipam"], "type": "cnt-recording-ipam"}})
    ref, ours = sides
    # The legacy shape the isolator parses: ip4 (with the gateway), the configuration's DNS.
    doc = json.loads(added[1].stdout)
    assert doc["cniVersion"] == (version or "0.1.0")
    assert doc["ip4"] == {"ip": "10.72.0.2/24", "gateway": "10.72.0.1", "routes": [{"dst": "0.0.0.0/0"}]}
    assert doc["dns"] == {"nameservers": ["10.72.0.53"], "search": ["mesos"]}
    # args."org.apache.mesos" reaches the IPAM plugin untouched: the same stdin bytes as the reference's.
    assert (ours.shim_dir / "stdin.ADD").read_bytes() == (ref.shim_dir / "stdin.ADD").read_bytes().replace(
        str(ref.data).encode(), str(ours.data).encode())
    assert json.loads((ours.shim_dir / "stdin.ADD").read_bytes())["args"]["org.apache.mesos"] == {
        "network_info": NETWORK_INFO}
    # hosts, hostname and resolv.conf as the isolator makes them, the same from either result.
    files = [container_files({"mesos-br": parse_result(out.stdout, version or "0.1.0")}, hostname=CONTAINER_ID)
             for out in added]
    assert files[0] == files[1]
    assert files[1].hosts == f"127.0.0.1 localhost\n10.72.0.2 {CONTAINER_ID}\n"
    assert files[1].hostname == f"{CONTAINER_ID}\n"
    assert files[1].resolv_conf == "search mesos\nnameserver 10.72.0.53\n"

    # After a reboot the bind mount is gone: the isolator sends DEL without CNI_NETNS. The address is freed.
    for side in sides:
        side.release()
    _both(sides, "DEL", config, netns="")
    assert [f for f in ours.state()["files"] if f.split("/")[-1][:1].isdigit()] == []
    # The directory gone as well (a path that no longer exists): DEL still succeeds, as the reference's.
    for side in sides:
        os.unlink(side.ns_file)
    outcomes = _both(sides, "DEL", config)
    assert outcomes[1].returncode == 0


def test_mesos_del_with_a_live_namespace_after_the_address_was_released(sides: list[MesosSide]) -> None:
    """An isolator retrying DEL (after a failed cleanup): the second DEL succeeds on both, nothing left."""
    config = _as_mesos_passes_it(_operator_file("cnt-mes3"))
    _both(sides, "ADD", config)
    _both(sides, "DEL", config)
    _both(sides, "DEL", config)
    ours = sides[1]
    assert ours.state()["eth0"] == [] and [f for f in ours.state()["files"] if f.split("/")[-1][:1].isdigit()] == []
