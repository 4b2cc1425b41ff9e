"""The runtime on the real kernel (root): our plugins in process next to the reference Go plugins, and a crash.

Everything runs inside a throwaway namespace that plays the host (``ip netns exec cnt-rth-...``), so bridges,
veths and iptables rules never touch the machine's own; container namespaces are ``cnt-rtc-...``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import clean_env, records, reservations, write_conflist
from support import Namespaces, reference_plugin, require_tool, requires_root

from cnicore.plugins import install_plugins
from cnicore.runtime import list_cache_entries

pytestmark = [requires_root, pytest.mark.root]

SCENARIO = """
import json, sys
from cnicore.runtime import Runtime
settings = json.loads(sys.argv[1])
out = []
with Runtime(**settings["runtime"]) as rt:
    for method, args, kwargs in settings["ops"]:
        try:
            value = getattr(rt, method)(*args, **kwargs)
            out.append({"ok": value.to_json() if hasattr(value, "to_json") else repr(value)})
        except Exception as exc:
            out.append({"error": str(exc), "code": getattr(exc, "code", None)})
        sys.stdout.write(json.dumps(out[-1]) + "\\n")
        sys.stdout.flush()
"""


class Spaces(Namespaces):
    """A host namespace (lo up) and container namespaces, all removed at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.host = self.add("host-rt")


@pytest.fixture
def spaces() -> Iterator[Spaces]:
    require_tool("ip")
    found = Spaces()
    try:
        yield found
    finally:
        found.remove_all()


def _ip(ns: str, *args: str) -> Any:
    done = subprocess.run(["ip", "-n", ns, "-j", *args], capture_output=True, text=True, check=False)
    return json.loads(done.stdout or "[]")


def _links(ns: str) -> list[str]:
    return sorted(link["ifname"] for link in _ip(ns, "link", "show") if link["ifname"] != "lo")


def _addresses(ns: str, dev: str) -> list[str]:
    return sorted(f"{a['local']}/{a['prefixlen']}" for link in _ip(ns, "addr", "show", "dev", dev)
                  for a in link.get("addr_info", []) if a.get("scope") == "global")


def _run(spaces: Spaces, runtime: dict[str, Any], ops: list[Any]) -> list[dict[str, Any]]:
    done = subprocess.run(["ip", "netns", "exec", spaces.host, sys.executable, "-c", SCENARIO,
                           json.dumps({"runtime": runtime, "ops": ops})], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _settings(dirs: dict[str, Path], path: list[Path]) -> dict[str, Any]:
    return {"config_dir": str(dirs["net.d"]), "plugin_path": [str(p) for p in path], "cache_dir": str(dirs["cache"]),
            "environ": {**clean_env(), "CNICORE_BACKEND": "netlink"}}


def _bridge(dirs: dict[str, Path], bridge: str, subnet: str) -> dict[str, Any]:
    return {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": str(dirs["data"])}}


@pytest.mark.reference
def test_our_bridge_in_process_chained_with_reference_portmap_and_tuning(tmp_path: Path, dirs: dict[str, Path],
                                                                         spaces: Spaces) -> None:
    portmap, _ = reference_plugin("portmap"), reference_plugin("tuning")
    require_tool("iptables")
    ours = tmp_path / "ours"
    install_plugins(ours)
    container = spaces.add("rtc")
    netns = f"/var/run/netns/{container}"
    write_conflist(dirs["net.d"], "chain", [
        _bridge(dirs, f"cnt-br{secrets.token_hex(2)}", "10.77.0.0/24"),
        {"type": "portmap", "capabilities": {"portMappings": True}, "backend": "iptables"},
        {"type": "tuning", "sysctl": {"net.core.somaxconn": "500"}},
    ], version="1.0.0")
    ports = [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]
    out = _run(spaces, _settings(dirs, [ours, portmap.parent]), [
        ["attach", ["c1", "chain", netns], {"capability_args": {"portMappings": ports}}],
        ["check", ["c1", "chain", netns], {}],
    ])
    assert "error" not in out[0], out[0]
    result = json.loads(out[0]["ok"])
    assert result["ips"][0]["address"] == "10.77.0.2/24" and result["interfaces"][2]["name"] == "eth0"
    # Our bridge's CHECK passed, then the reference portmap's ran: Debian's build (1.1.1) checks an IPv6 DNAT
    # chain whenever ip6tables exists, even for an IPv4-only container, and fails; its error comes through as is.
    assert out[1] == {"ok": "None"} or out[1]["error"].startswith("could not check ipv6 dnat: chain CNI-DN-"), out[1]
    assert _addresses(container, "eth0") == ["10.77.0.2/24"]
    somaxconn = subprocess.run(["ip", "netns", "exec", container, "cat", "/proc/sys/net/core/somaxconn"],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert somaxconn == "500"
    nat = subprocess.run(["ip", "netns", "exec", spaces.host, "iptables", "-w", "-t", "nat", "-S"],
                         capture_output=True, text=True, check=True).stdout
    assert "--dport 18080" in nat and "10.77.0.2:80" in nat
    (entry,) = list_cache_entries(dirs["cache"])
    assert entry.capability_args_dict() == {"portMappings": ports}

    out = _run(spaces, _settings(dirs, [ours, portmap.parent]), [["detach", ["c1", "chain"], {}]])
    assert out == [{"ok": "None"}]
    assert _links(container) == [] and reservations(dirs["data"], "chain") == {}
    nat = subprocess.run(["ip", "netns", "exec", spaces.host, "iptables", "-w", "-t", "nat", "-S"],
                         capture_output=True, text=True, check=True).stdout
    assert "10.77.0.2" not in nat
    assert list_cache_entries(dirs["cache"]) == []


@pytest.mark.reference
def test_reference_bridge_with_our_host_local(tmp_path: Path, dirs: dict[str, Path], spaces: Spaces) -> None:
    go_bridge = reference_plugin("bridge")
    ours = tmp_path / "ours"
    install_plugins(ours)
    first = tmp_path / "first"
    first.mkdir()
    (first / "bridge").symlink_to(go_bridge)  # the Go bridge comes first on the path; host-local is ours
    container = spaces.add("rtc")
    netns = f"/var/run/netns/{container}"
    write_conflist(dirs["net.d"], "gobr", [_bridge(dirs, f"cnt-br{secrets.token_hex(2)}", "10.78.0.0/24")],
                   version="1.0.0")
    out = _run(spaces, _settings(dirs, [first, ours]), [
        ["attach", ["c1", "gobr", netns, "eth0"], {"result_version": "0.2.0"}],
        ["check", ["c1", "gobr", netns, "eth0"], {}],
        ["detach", ["c1", "gobr"], {}],
    ])
    assert json.loads(out[0]["ok"]) == {"cniVersion": "0.2.0", "ip4": {"ip": "10.78.0.2/24", "gateway": "10.78.0.1"},
                                        "dns": {}}
    assert out[1:] == [{"ok": "None"}, {"ok": "None"}]
    assert _links(container) == [] and reservations(dirs["data"], "gobr") == {}


def test_a_runtime_killed_between_in_process_plugins_is_recovered(tmp_path: Path, dirs: dict[str, Path],
                                                                  spaces: Spaces) -> None:
    ours = tmp_path / "ours"
    install_plugins(ours)
    container = spaces.add("rtc")
    netns = f"/var/run/netns/{container}"
    signal_file = tmp_path / "running"
    log = tmp_path / "calls.jsonl"
    write_conflist(dirs["net.d"], "crash", [
        _bridge(dirs, f"cnt-br{secrets.token_hex(2)}", "10.79.0.0/24"),
        {"type": "noop", "signal": str(signal_file), "sleep": 120, "record": str(log)},
        {"type": "loopback"},
    ], version="1.0.0")
    settings = _settings(dirs, [ours, dirs["bin"]])
    process = subprocess.Popen(["ip", "netns", "exec", spaces.host, sys.executable, "-c", SCENARIO,
                                json.dumps({"runtime": settings, "ops": [["attach", ["c1", "crash", netns], {}]]})],
                               start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not signal_file.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the test plugin never started"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if signal_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(signal_file.read_text()), signal.SIGKILL)
    assert _links(container) == ["eth0"]
    assert len(reservations(dirs["data"], "crash")) == 1
    host_veths = [name for name in _links(spaces.host) if name.startswith("veth")]
    assert len(host_veths) == 1

    out = _run(spaces, settings, [["recover", [], {}]])
    assert "released=(PendingAttachment(network='crash', container_id='c1', ifname='eth0'" in out[0]["ok"]
    assert _links(container) == []
    assert [name for name in _links(spaces.host) if name.startswith("veth")] == []
    assert reservations(dirs["data"], "crash") == {}
    assert list_cache_entries(dirs["cache"]) == []
    assert [c["command"] for c in records(log)] == ["ADD", "DEL"]
