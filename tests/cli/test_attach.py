"""``cnicore add|del|check|gc|status``: the runtime driven from the command line.

Without root they run on the fake kernel (``--backend fake``, persisted in a file
as for the exec'd plugins); as root, in real namespaces through the console
script, with a throwaway namespace playing the host.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import CLI, bridge_conflist
from support import Namespaces

from cnicore._plugin_main import FakeState
from cnicore.cli import cnitool_container_id
from cnicore.plugins import install_plugins
from cnicore.spec import parse_result

NETNS = "/var/run/netns/cnt-cli-fake"
CID = cnitool_container_id(NETNS)


@pytest.fixture
def fake(cli: CLI) -> CLI:
    """The CLI on the persisted fake kernel, with our plugins on CNI_PATH and a bridge network ``mynet``."""
    install_plugins(cli.plugin_dir)
    cli.env.update(CNICORE_BACKEND="fake", CNICORE_FAKE_STATE=str(cli.base / "fake-kernel.state"))
    conf = bridge_conflist("mynet", cli.data_dir, isGateway=False)
    conf["plugins"][0]["capabilities"] = {"ips": True}
    conf["plugins"][0]["ipam"]["capabilities"] = {"ips": True}
    cli.write_conf("10-mynet.conflist", conf)
    return cli


def _links(cli: CLI, netns: str) -> dict[str, Any]:
    with FakeState(cli.env["CNICORE_FAKE_STATE"]) as state:
        backend = state.backend
        if netns not in backend.namespaces():
            return {}
        ns = backend.open_namespace(netns)
        return {link.name: [f"{a.ip}/{a.prefixlen}" for a in backend.list_addresses(ns, link.name)]
                for link in backend.list_links(ns)}


def _cache_file(cli: CLI, network: str, container: str, ifname: str) -> Path:
    return cli.cache_dir / "results" / f"{network}-{container}-{ifname}"


def test_add_check_del_round_trip_with_cnitools_defaults(fake: CLI) -> None:
    run = fake("add", "mynet", NETNS, "--json")
    assert run.status == 0, run
    result = parse_result(run.out)
    assert result.cni_version == "1.0.0"
    assert run.out == result.to_json() + "\n"  # exactly as a plugin prints it
    assert [str(ip.address) for ip in result.ips] == ["10.23.0.2/24"]  # type: ignore[union-attr]
    assert _links(fake, NETNS)["eth0"] == ["10.23.0.2/24"]
    cached = json.loads(_cache_file(fake, "mynet", CID, "eth0").read_bytes())
    assert (cached["kind"], cached["containerId"], cached["ifName"], cached["netns"]) == (
        "cniCacheV1", CID, "eth0", NETNS)
    assert [r["containerId"] for r in fake("ls", "mynet", "--json").json()] == [CID]

    run = fake("check", "mynet", NETNS)
    assert (run.status, run.out) == (0, f"network mynet: container {CID} interface eth0 is as configured\n")

    run = fake("del", "mynet", NETNS)
    assert (run.status, run.out) == (0, f"network mynet: detached container {CID} interface eth0\n")
    assert not _cache_file(fake, "mynet", CID, "eth0").exists()
    assert "eth0" not in _links(fake, NETNS)
    assert fake("ls", "mynet", "--json").json() == []
    assert fake("del", "mynet", NETNS).status == 0  # a second DEL succeeds


def test_human_output_shows_interfaces_addresses_and_routes(fake: CLI) -> None:
    run = fake("add", "mynet", NETNS, "--container-id", "web-1", "--ifname", "eth1")
    assert run.status == 0, run
    lines = run.out.splitlines()
    assert lines[0] == f"network mynet: attached container web-1 interface eth1 in {NETNS}"
    assert "cniVersion 1.0.0" in lines
    assert any(line.strip().startswith("[0] cnt-br0") and line.endswith("host") for line in lines)
    assert any(line.strip().startswith("[2] eth1") and line.endswith(f"sandbox {NETNS}") for line in lines)
    assert "  10.23.0.2/24  gateway 10.23.0.1  on eth1" in lines


def test_result_version_and_args_and_capability_args(fake: CLI) -> None:
    run = fake("add", "mynet", NETNS, "--result-version", "0.2.0", "--args", "IgnoreUnknown=1;IP=10.23.0.77", "--json")
    assert run.status == 0, run
    assert json.loads(run.out)["ip4"]["ip"] == "10.23.0.77/24"
    other = "/var/run/netns/cnt-cli-fake-2"
    run = fake("add", "mynet", other, "--json", env={"CAP_ARGS": json.dumps({"ips": ["10.23.0.88/24"]})})
    assert run.status == 0, run
    assert json.loads(run.out)["ips"][0]["address"] == "10.23.0.88/24"
    third = "/var/run/netns/cnt-cli-fake-3"
    run = fake("add", "mynet", third, "--json", env={"CNI_ARGS": "IgnoreUnknown=1;IP=10.23.0.99", "CNI_IFNAME": "net1"})
    assert run.status == 0, run
    assert json.loads(run.out)["ips"][0]["address"] == "10.23.0.99/24"
    assert _cache_file(fake, "mynet", cnitool_container_id(third), "net1").exists()
    # The cache keeps what GC needs to replay DEL.
    cached = json.loads(_cache_file(fake, "mynet", cnitool_container_id(third), "net1").read_bytes())
    assert cached["cniArgs"] == [["IgnoreUnknown", "1"], ["IP", "10.23.0.99"]]


def test_del_without_ifname_detaches_every_cached_interface(fake: CLI) -> None:
    assert fake("add", "mynet", NETNS, "--ifname", "eth0").status == 0
    assert fake("add", "mynet", NETNS, "--ifname", "eth1").status == 0
    assert fake("add", "mynet", NETNS, "--ifname", "eth2").status == 0
    assert fake("check", "mynet", NETNS).out.count("is as configured") == 3
    assert fake("del", "mynet", NETNS, "--ifname", "eth1").status == 0
    assert sorted(_links(fake, NETNS)) == ["eth0", "eth2", "lo"]
    run = fake("del", "mynet", NETNS)
    assert run.status == 0
    assert run.out.splitlines() == [f"network mynet: detached container {CID} interface eth0",
                                    f"network mynet: detached container {CID} interface eth2"]
    assert sorted(_links(fake, NETNS)) == ["lo"]
    assert not list((fake.cache_dir / "results").iterdir())


def test_errors_exit_by_family_and_print_the_cni_error_object(fake: CLI) -> None:
    run = fake("add", "nosuchnet", NETNS, "--json")
    assert run.status == 1
    assert json.loads(run.out)["code"] == 7
    fake.write_conf("20-gone.conflist", {"cniVersion": "1.0.0", "name": "gone", "plugins": [{"type": "nothere"}]})
    run = fake("add", "gone", NETNS, "--json")
    assert run.status == 3, run
    error = json.loads(run.out)
    assert error["code"] == 999 and 'failed to find plugin "nothere"' in error["msg"]
    run = fake("add", "gone", NETNS)
    assert run.status == 3 and run.err.startswith("cnicore: ") and run.out == ""
    # The address a plugin refuses to give twice: input is fine, the system says no.
    assert fake("add", "mynet", NETNS, "--args", "IgnoreUnknown=1;IP=10.23.0.50").status == 0
    run = fake("add", "mynet", "/var/run/netns/cnt-other", "--args", "IgnoreUnknown=1;IP=10.23.0.50", "--json")
    assert run.status == 3, run


FOREIGN_PLUGIN = """#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
  VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;
  STATUS) echo '{"code":50,"msg":"plugin not available: no uplink"}'; exit 1 ;;
  ADD) echo '{"code":4,"msg":"required env variables [K8S_POD_NAME] missing"}'; exit 1 ;;
  *) exit 0 ;;
esac
"""


def test_an_executed_plugins_error_keeps_its_code_and_family(fake: CLI) -> None:
    plugin = fake.plugin_dir / "picky"
    plugin.write_text(FOREIGN_PLUGIN)
    plugin.chmod(0o755)
    fake.write_conf("40-picky.conflist", {"cniVersion": "1.1.0", "name": "picky", "plugins": [{"type": "picky"}]})
    run = fake("status", "picky", "--json")
    assert run.status == 3
    assert json.loads(run.out) == {"code": 50, "msg": "plugin not available: no uplink"}
    run = fake("add", "picky", NETNS)
    assert run.status == 1
    assert run.err == ('cnicore: plugin type="picky" failed (add): required env variables [K8S_POD_NAME] '
                       "missing\n")
    assert not (fake.cache_dir / "results").exists() or not list((fake.cache_dir / "results").iterdir())


def test_an_unknown_network_is_an_input_error_for_every_command(fake: CLI) -> None:
    for argv in (["add", "nope", NETNS], ["del", "nope", NETNS], ["check", "nope", NETNS], ["status", "nope"]):
        run = fake(*argv, "--json")
        assert run.status == 1, (argv, run)
        assert json.loads(run.out)["msg"].startswith('no net configuration with name "nope"')


def test_gc_removes_what_is_not_live(fake: CLI) -> None:
    for name in ("live-1", "dead-1", "dead-2"):
        assert fake("add", "mynet", f"/var/run/netns/cnt-{name}", "--container-id", name).status == 0
    run = fake("gc", "--live", "live-1", "--json")
    assert run.status == 0, run
    report = run.json()
    assert sorted(r["containerId"] for r in report["removed"]) == ["dead-1", "dead-2"]
    assert report["errors"] == []
    assert [r["containerId"] for r in fake("ls", "mynet", "--json").json()] == ["live-1"]
    run = fake("gc", "--live", "live-1/eth0", "--network", "mynet")
    assert run.status == 0 and run.out.endswith("0 stale attachment(s) removed, 0 error(s)\n")
    # Without --live nothing cached is detached; --none-live detaches everything, as cnitool gc does.
    assert fake("gc").out == "0 stale attachment(s) removed, 0 error(s)\n"
    assert [r["containerId"] for r in fake("ls", "mynet", "--json").json()] == ["live-1"]
    assert fake("gc", "--none-live", "--live", "x").status == 1
    run = fake("gc", "--none-live")
    assert run.status == 0
    assert run.out.splitlines() == ["removed: network mynet container live-1 interface eth0",
                                    "1 stale attachment(s) removed, 0 error(s)"]
    assert fake("ls", "mynet", "--json").json() == []


def test_status(fake: CLI) -> None:
    fake.write_conf("30-new.conflist", bridge_conflist("new", fake.data_dir, version="1.1.0", bridge="cnt-br9"))
    run = fake("status", "new")
    assert (run.status, run.out) == (0, "network new: ready\n")
    assert fake("status", "new", "--json").out == ""
    assert fake("status", "unknown").status == 1


def test_through_the_console_script(fake: CLI) -> None:
    run = fake.script("add", "mynet", NETNS, "--json")
    assert run.status == 0, run
    assert parse_result(run.out).cni_version == "1.0.0"
    run = fake.script("del", "mynet", NETNS)
    assert run.status == 0, run
    run = fake.script("--json", "check", "mynet", NETNS)
    assert run.status != 0 and json.loads(run.out)["code"] > 0  # nothing cached, no eth0 any more


# ---------------------------------------------------------------------------------------------- real kernel


def test_real_namespaces_through_the_console_script(cli: CLI, netns: Namespaces) -> None:
    install_plugins(cli.plugin_dir)
    host = netns.add("cli-host")  # plays the host: the bridge and the host end of the veth live here
    container = netns.add("cli-c")
    subprocess.run(["ip", "-n", host, "link", "set", "lo", "up"], check=True)
    cli.write_conf("10-real.conflist", bridge_conflist("real", cli.data_dir, bridge="cnt-br-cli", isGateway=True))
    path = f"/var/run/netns/{container}"

    def in_host(*argv: str) -> subprocess.CompletedProcess[str]:
        from cli_helpers import SCRIPT

        return subprocess.run(["ip", "netns", "exec", host, str(SCRIPT), "--backend", "netlink", *argv],
                              env=cli.env, capture_output=True, text=True, timeout=120, check=False)

    done = in_host("add", "real", path, "--json")
    assert done.returncode == 0, done
    result = json.loads(done.stdout)
    assert result["ips"][0]["address"] == "10.23.0.2/24"
    addresses = subprocess.run(["ip", "-n", container, "-j", "addr", "show", "eth0"], capture_output=True,
                               text=True, check=True).stdout
    assert "10.23.0.2" in addresses
    bridge = subprocess.run(["ip", "-n", host, "-j", "addr", "show", "cnt-br-cli"], capture_output=True, text=True,
                            check=True).stdout
    assert "10.23.0.1" in bridge
    assert in_host("check", "real", path).returncode == 0
    done = in_host("del", "real", path)
    assert done.returncode == 0, done
    gone = subprocess.run(["ip", "-n", container, "link", "show", "eth0"], capture_output=True, check=False)
    assert gone.returncode != 0
    assert not (cli.cache_dir / "results" / f"real-{cnitool_container_id(path)}-eth0").exists()


def test_gc_without_live_releases_only_leaked_addresses(fake: CLI) -> None:
    from cnicore.config import build_request, load_network_config
    from cnicore.ipam import HostLocalIPAM

    # host-local run as the network's only plugin: the in-process bridge has no GC of its own to delegate.
    fake.write_conf("50-leaky.conflist", {"cniVersion": "1.1.0", "name": "leaky", "plugins": [
        {"type": "host-local", "ipam": {"type": "host-local", "dataDir": str(fake.data_dir),
                                        "ranges": [[{"subnet": "10.42.0.0/24"}]]}}]})
    assert fake("add", "leaky", NETNS, "--container-id", "kept").status == 0
    with HostLocalIPAM() as ipam:  # an ADD whose runtime died before it cached anything
        ipam.add(build_request(load_network_config(fake.conf_dir, "leaky"), 0), "ghost", "eth0")
    assert sorted(r["containerId"] for r in fake("ls", "leaky", "--json").json()) == ["ghost", "kept"]
    run = fake("gc", "--network", "leaky")
    assert run.status == 0, run
    assert [r["containerId"] for r in fake("ls", "leaky", "--json").json()] == ["kept"]
    assert fake("check", "leaky", NETNS, "--container-id", "kept").status == 0


def test_a_long_container_id_is_refused_cleanly_by_the_runtime(fake: CLI) -> None:
    # The runtime names its cache and journal files <network>-<containerID>-<ifname> (as libcni does), so an ID
    # past a file name's 255 bytes cannot be attached through it: one error object, nothing reserved or left.
    # (An executed plugin takes such IDs, up to the longest the kernel passes: see the host-local tests.)
    run = fake("add", "mynet", NETNS, "--container-id", "k" * 5000, "--json")
    assert run.status == 3 and "Traceback" not in run.err, run
    assert "File name too long" in json.loads(run.out)["msg"]
    assert not (fake.data_dir / "mynet").exists() or not any(
        p.name.startswith("10.") for p in (fake.data_dir / "mynet").iterdir())
    pending = fake.cache_dir / "cnicore" / "pending"
    assert not pending.exists() or list(pending.iterdir()) == []
    run = fake("add", "mynet", NETNS, "--container-id", "k" * 140_000, "--json")
    assert run.status != 0 and json.loads(run.out)["msg"] == "containerID is too long"
