"""What an exec'd plugin imports: the installed entry points, run as a runtime runs them.

A runtime executes a plugin per container and command, so the modules each exec
loads are its start-up cost. These tests pin the module sets, never times: the
exec'd loopback (auto backend, CAP_NET_ADMIN) loads neither attrs nor netaddr nor
``typing`` nor the result types; no exec path loads pyroute2, importlib.metadata
or the bridge plugin. host-local (the import budget of its own tests below):
every command, VERSION and STATUS included, runs the host-local engine on the
file store's core and loads no link backend, none of attrs, netaddr, ``typing``,
``ipaddress``, ``socket`` or ``threading``, and none of the typed IPAM, store
port or result modules; only the etcd store (``ipam.store``) brings in the
typed world, as its client needs it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import Namespaces

from cnicore._plugin_main import FakeState

# Never on any exec path of loopback or host-local.
NEVER = ("pyroute2", "cnicore.backends._pyroute2", "importlib.metadata", "cnicore.plugins._bridge", "cnicore.runtime",
         "cnicore.config",
         "subprocess")
# Not on the exec'd loopback's path either, unless a prevResult needs the result types.
NOT_FOR_LOOPBACK = ("attr", "attrs", "netaddr", "typing", "decimal", "socket", "threading", "contextlib",
                    "cnicore.spec._result", "cnicore.spec._convert", "cnicore.plugins._api", "cnicore.links",
                    "cnicore.backends._fake", "cnicore.backends._common", "cnicore.backends._iproute2",
                    "cnicore.backends._netlink", "cnicore.backends._nsenter")
# host-local's budget, every command: no link backend, no link values, no result types, none of the typed IPAM and
# store modules (attrs and netaddr values) nor what they load, none of the costlier standard modules.
NOT_FOR_HOST_LOCAL = ("cnicore.backends", "cnicore.links", "cnicore.plugins._loopback", "cnicore.plugins._api",
                      "cnicore.spec._result", "cnicore.spec._convert", "decimal",
                      "attr", "attrs", "netaddr", "typing", "ipaddress", "socket", "threading", "pathlib", "secrets",
                      "weakref", "contextlib", "dataclasses", "inspect",
                      "cnicore.ipam._range", "cnicore.ipam._config", "cnicore.ipam._allocator", "cnicore.ipam._dns",
                      "cnicore.ipam._hostlocal", "cnicore.ipam._keyport", "cnicore.stores._file",
                      "cnicore.stores._index", "cnicore.stores._port", "cnicore.stores._goip",
                      "cnicore.stores._memory", "cnicore.stores._etcd", "cnicore.stores._etcd_config",
                      "cnicore.spec._goaddr")

_EXIT = "from cnicore._plugin_main import exec_main\nexec_main()\n"
_REPORT = ("from cnicore._plugin_main import main\nstatus = main()\n"
           "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\nsys.exit(status)\n")


def imported(plugin: Path, command: str, config: bytes, env: dict[str, str], tmp_path: Path) -> set[str]:
    """The modules ``plugin`` has loaded when it is done (its ``sys.modules``), executed as installed.

    The copy that runs is the installed script, same name and shebang, with one
    line added at the end that reports ``sys.modules`` on stderr.
    """
    script = plugin.read_text()
    assert script.endswith(_EXIT)
    copy = tmp_path / "reporting" / plugin.name
    copy.parent.mkdir(exist_ok=True)
    copy.write_text(script[: -len(_EXIT)] + _REPORT)
    copy.chmod(0o755)
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command, "CNI_CONTAINERID": "c1",
            "CNI_IFNAME": "eth0", "CNI_PATH": str(plugin.parent), **env}
    done = subprocess.run([str(copy)], input=config, env=full, capture_output=True, check=False)
    assert done.returncode == 0, (done.stdout, done.stderr)
    modules = set(done.stderr.decode().rsplit("MODULES ", 1)[1].split())
    assert "cnicore._plugin_main" in modules
    return modules


def _hits(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_entry_point_runs_isolated_without_site(plugin_bin: Path, tmp_path: Path) -> None:
    modules = imported(plugin_bin / "host-local", "VERSION", b"", {}, tmp_path)
    # No site: no .pth processing, no editable-install finder.
    assert _hits(modules, ("site", "sitecustomize", "_distutils_hack")) == []
    assert not [m for m in modules if m.startswith("__editable__")]


@pytest.fixture
def container(netns: Namespaces) -> str:
    return f"/var/run/netns/{netns.add('lo')}"


def test_exec_loopback_imports_neither_attrs_nor_netaddr(plugin_bin: Path, container: str, tmp_path: Path) -> None:
    config = json.dumps({"cniVersion": "1.0.0", "name": "lo-net", "type": "loopback"}).encode()
    seen: set[str] = set()
    for command in ("ADD", "CHECK", "DEL"):
        modules = imported(plugin_bin / "loopback", command, config, {"CNI_NETNS": container}, tmp_path)
        assert _hits(modules, NEVER + NOT_FOR_LOOPBACK) == [], command
        seen |= modules
    # It ran on the route netlink socket, not the iproute2 or netlink backend.
    assert "cnicore.backends._rtnl" in seen
    legacy = imported(plugin_bin / "loopback", "ADD", b'{"type": "loopback"}', {"CNI_NETNS": container}, tmp_path)
    assert _hits(legacy, NEVER + NOT_FOR_LOOPBACK) == []


def test_exec_loopback_with_prev_result_loads_the_result_types_only(plugin_bin: Path, container: str,
                                                                    tmp_path: Path) -> None:
    prev = {"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/24"}]}
    config = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "loopback", "prevResult": prev}).encode()
    modules = imported(plugin_bin / "loopback", "ADD", config, {"CNI_NETNS": container}, tmp_path)
    assert "cnicore.spec._result" in modules
    assert _hits(modules, (*NEVER, "cnicore.plugins._api", "cnicore.links", "cnicore.backends._iproute2")) == []


def test_exec_loopback_on_the_fake_kernel(plugin_bin: Path, tmp_path: Path) -> None:
    # Without root (or with CNICORE_BACKEND set) loopback is the plugin on the chosen backend.
    fake = {"CNICORE_BACKEND": "fake", "CNICORE_FAKE_STATE": str(tmp_path / "kernel.state")}
    with FakeState(fake["CNICORE_FAKE_STATE"]) as state:
        state.backend.add_namespace("/var/run/netns/cnt-imports")
    config = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "loopback"}).encode()
    modules = imported(plugin_bin / "loopback", "ADD", config, {"CNI_NETNS": "/var/run/netns/cnt-imports", **fake},
                       tmp_path)
    assert _hits(modules, NEVER) == []
    assert "cnicore.backends._fake" in modules and "cnicore.backends._rtnl" not in modules


# ----------------------------------------------------------------------------- host-local's import budget


def _host_local_config(tmp_path: Path, version: str = "1.1.0", **ipam: Any) -> bytes:
    return json.dumps({"cniVersion": version, "name": "hl", "type": "bridge",
                       "ipam": {"type": "host-local", "subnet": "10.5.0.0/24", "dataDir": str(tmp_path / "data"),
                                **ipam}}).encode()


_HOST_LOCAL_ENV = {"CNI_NETNS": "/var/run/netns/cnt-unused"}


def _host_local_within_budget(plugin_bin: Path, tmp_path: Path, command: str, config: bytes,
                              env: dict[str, str] | None = None) -> set[str]:
    modules = imported(plugin_bin / "host-local", command, config, {**_HOST_LOCAL_ENV, **(env or {})}, tmp_path)
    assert _hits(modules, NEVER + NOT_FOR_HOST_LOCAL) == [], command
    assert "cnicore.plugins._hostlocal" in modules or command == "VERSION"
    return modules


@pytest.mark.parametrize("version", ["", "0.2.0", "0.4.0", "1.1.0"])
def test_exec_host_local_import_budget_add_check_del(plugin_bin: Path, tmp_path: Path, version: str) -> None:
    config = _host_local_config(tmp_path, version)
    for command in ("ADD", "CHECK", "DEL"):
        if command == "CHECK" and version < "0.4.0":
            continue
        modules = _host_local_within_budget(plugin_bin, tmp_path, command, config)
        # It ran the engine on the file store's core.
        assert {"cnicore.ipam._engine", "cnicore.stores._filecore"} <= modules, command


@pytest.mark.parametrize("command", ["GC", "STATUS", "VERSION"])
def test_exec_host_local_import_budget_gc_status_version(plugin_bin: Path, tmp_path: Path, command: str) -> None:
    config = json.loads(_host_local_config(tmp_path))
    config["cni.dev/valid-attachments"] = [{"containerID": "c1", "ifname": "eth0"}]
    _host_local_within_budget(plugin_bin, tmp_path, "ADD", _host_local_config(tmp_path))
    modules = _host_local_within_budget(plugin_bin, tmp_path, command, json.dumps(config).encode())
    if command == "GC":
        assert "cnicore.stores._filecore" in modules


def test_exec_host_local_import_budget_beyond_the_common_case(plugin_bin: Path, tmp_path: Path) -> None:
    # Requested addresses (CNI_ARGS, args.cni.ips, runtimeConfig.ips), resolvConf, runtime ranges, routes: the same
    # engine, the same budget.
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.5.0.53\n")
    config = json.loads(_host_local_config(tmp_path, resolvConf=str(resolv),
                                           routes=[{"dst": "0.0.0.0/0", "gw": "10.5.0.1"}],
                                           ranges=[[{"subnet": "fd00:5::/64"}]]))
    config["args"] = {"cni": {"ips": ["fd00:5::9"]}}
    config["runtimeConfig"] = {"ips": ["10.5.0.9/24"], "ipRanges": [[{"subnet": "10.6.0.0/24"}]]}
    text = json.dumps(config).encode()
    env = {"CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.6.0.7"}
    modules = _host_local_within_budget(plugin_bin, tmp_path, "ADD", text, env)
    assert "cnicore.spec._args" in modules
    _host_local_within_budget(plugin_bin, tmp_path, "DEL", text, env)
