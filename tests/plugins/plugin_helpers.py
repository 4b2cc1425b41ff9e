"""Helpers for the plugin tests: executing plugin binaries, throwaway namespaces, normalising output."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from support import Namespaces as Namespaces  # (the plugin tests import it from here)

CONTAINER_ID = "cnt-container-1"


@attrs.frozen
class Outcome:
    """What one plugin execution produced."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def run_exec(binary: str | Path, command: str, config: bytes | str | Mapping[str, Any], *, netns: str = "",
             ifname: str = "eth0", container_id: str = CONTAINER_ID, path: Sequence[str | Path] = (),
             args: str = "", host_ns: str | None = None, extra_env: Mapping[str, str] | None = None) -> Outcome:
    """Execute a plugin the way a runtime does (optionally inside the namespace ``host_ns``)."""
    if isinstance(config, Mapping):
        data = json.dumps(config).encode()
    elif isinstance(config, str):
        data = config.encode()
    else:
        data = config
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CNI_", "CNICORE_"))}
    env.update(CNI_COMMAND=command, CNI_CONTAINERID=container_id, CNI_NETNS=netns, CNI_IFNAME=ifname,
               CNI_PATH=os.pathsep.join(str(p) for p in path) or "/nonexistent", CNI_ARGS=args)
    env.update(extra_env or {})
    prefix = ["ip", "netns", "exec", host_ns] if host_ns else []
    done = subprocess.run([*prefix, str(binary)], input=data, env=env, capture_output=True, timeout=60, check=False)
    return Outcome(done.returncode, done.stdout.decode(), done.stderr.decode())


_MAC = re.compile(r'"mac": "[0-9a-f:]{17}"')
_VETH = re.compile(r"veth[0-9a-f]{8}")


def normalise(text: str) -> str:
    """Output with random MACs and host veth names replaced (the only things allowed to differ)."""
    return _VETH.sub("vethXXXXXXXX", _MAC.sub('"mac": "MAC"', text))


def netns_path(name: str) -> str:
    return f"/var/run/netns/{name}"


def ip_json(args: Sequence[str], host_ns: str | None = None) -> Any:
    """``ip -j ...`` (in ``host_ns`` when given) decoded."""
    prefix = ["-n", host_ns] if host_ns else []
    done = subprocess.run(["ip", *prefix, "-j", *args], capture_output=True, check=False, text=True)
    return json.loads(done.stdout or "[]")


def addresses(ns: str, dev: str) -> list[str]:
    """The non-link-local addresses of ``dev`` in ``ns`` as ``ip/prefix``, sorted."""
    links = ip_json(["addr", "show", "dev", dev], ns)
    return sorted(f"{a['local']}/{a['prefixlen']}" for link in links for a in link.get("addr_info", [])
                  if a.get("scope") != "link")


def routes(ns: str) -> list[str]:
    """The main-table routes of ``ns`` (IPv4 and IPv6 without link-local), as comparable text."""
    out = []
    for family in ("-4", "-6"):
        for r in ip_json([family, "route"], ns):
            if r.get("dst", "").startswith("fe80"):
                continue
            out.append(f"{r.get('dst')} via {r.get('gateway', '-')} dev {r.get('dev')}")
    return sorted(out)


def link_flags(ns: str, dev: str) -> list[str]:
    links = ip_json(["link", "show", "dev", dev], ns)
    return links[0]["flags"] if links else []


def nat_rules(host_ns: str) -> list[str]:
    done = subprocess.run(["ip", "netns", "exec", host_ns, "iptables", "-w", "-t", "nat", "-S"], capture_output=True,
                          text=True, check=False)
    return [line for line in done.stdout.splitlines() if not line.startswith("-P ")]


def data_files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative path -> content), lock files' content ignored."""
    found: dict[str, bytes] = {}
    if directory.is_dir():
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                found[str(path.relative_to(directory))] = path.read_bytes()
    return found


def run_host_local(kind: str, environ: dict[str, str], config: dict[str, Any], data_dir: Path) -> tuple[int, str]:
    """Run host-local once through the exec skeleton: ``kind`` "plugin" (HostLocalPlugin, the library's typed
    path) or "handler" (the exec handler: the engine on the file store's core), ``config`` with its
    ``ipam.dataDir`` set to ``data_dir``.

    Returns (exit status, stdout).
    """
    import io

    from cnicore.plugins import HostLocalPlugin, run_plugin
    from cnicore.plugins._hostlocal import HostLocalExecHandler
    from cnicore.plugins._skel import run_exec

    config = {**config, "ipam": {**config["ipam"], "dataDir": str(data_dir)}}
    out = io.BytesIO()
    common: dict[str, Any] = {"environ": environ, "stdin": io.BytesIO(json.dumps(config).encode()), "stdout": out,
                              "stderr": io.BytesIO(), "reference_codes": True}
    if kind == "plugin":
        plugin = HostLocalPlugin()
        try:
            code = run_plugin(plugin, **common)
        finally:
            plugin.close()
    else:
        handler = HostLocalExecHandler()
        try:
            code = run_exec(handler, **common)
        finally:
            handler.close()
    return code, out.getvalue().decode()
