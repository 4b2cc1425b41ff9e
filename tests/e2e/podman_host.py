"""podman (libcni) as the CNI client, on a throwaway host (importable as ``podman_host``).

Each :class:`PodmanHost` runs podman 4.x with ``network_backend = "cni"`` inside a private network and
mount namespace held by one ``sleep`` process: the bridges, veths, iptables rules and ``ip_forward``
podman's plugins make live in that network namespace, never the machine's; in that mount namespace
``/var/lib`` is an overlay whose writes land in the host's temporary directory (libcni's result cache
``/var/lib/cni/results`` and host-local's default ``dataDir`` ``/var/lib/cni/networks``: podman sets
neither elsewhere) and ``/run/netns`` (where podman pins container namespaces) is a private directory.
Everything else podman keeps is private through ``CONTAINERS_CONF`` and ``CONTAINERS_STORAGE_CONF``.

The image is a busybox-static root filesystem imported with ``podman import`` (no registry access).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

IMAGE = "localhost/cnt-busybox:latest"
#: What podman needs here (Debian packages: podman runc conmon busybox-static fuse-overlayfs).
TOOLS = ("podman", "runc", "conmon", "busybox", "unshare", "nsenter", "iptables-save", "ip")
_APPLETS = ("sh", "ip", "ping", "sleep", "cat", "nc", "true", "hostname", "echo")
#: Refusals that mean "podman cannot run containers on this machine" (seen in podman's stderr); anything
#: else makes the suite fail, not skip.
KNOWN_REFUSALS = (
    r"cgroups in hybrid mode not supported",
    r"setrlimit [A-Z_]+: operation not permitted",
    r"cannot set up namespace.*operation not permitted",
    r"mount.*(?:operation not permitted|permission denied)",
    r"unshare: .*operation not permitted",
    r"overlay.*not supported",
    r"could not find a working container runtime",
    r"cgroup.*(?:read-only file system|no such file or directory)",
)
_CID = re.compile(r"\b[0-9a-f]{64}\b")
_VETH = re.compile(r"\bveth[0-9a-f]{8}\b")
_MAC = re.compile(r"\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b")
_NETNS_PIN = re.compile(r"/run/netns/netns-[0-9a-f-]{36}")
_CHAIN = re.compile(r"\bCNI-(?:DN-)?[0-9a-f]{20,24}\b")


class PodmanRefused(Exception):
    """podman cannot run containers here; the message names the refusal."""


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _ulimits() -> list[str]:
    # Without CAP_SYS_RESOURCE podman's defaults (above the hard limits) are refused: stay at or below them.
    limits = []
    for name, kind, cap in (("nofile", resource.RLIMIT_NOFILE, 1 << 20), ("nproc", resource.RLIMIT_NPROC, 32768)):
        _soft, hard = resource.getrlimit(kind)
        value = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
        limits.append(f"{name}={value}:{value}")
    return limits


class PodmanHost:
    """podman with its own network namespace, ``/var/lib`` overlay, storage and configuration.

    ``plugin_dirs`` is podman's ``cni_plugin_dirs`` (the first directory with a plugin of that type wins);
    :meth:`use_plugins` changes it for the next podman command. With ``hide`` (a directory, the reference
    plugins'), that directory is empty in the host's mount namespace (a read-only tmpfs over it): nothing
    podman or a plugin runs there can execute what it holds. Its content stays reachable at
    :attr:`hidden_copy` only, for a scenario that switches to it on purpose.
    """

    def __init__(self, label: str, plugin_dirs: Sequence[Path], *, hide: Path | None = None) -> None:
        self.label = label
        self.hide = hide
        #: Where the hidden directory's content is mounted (None without ``hide``).
        self.hidden_copy = None if hide is None else Path(tempfile.mkdtemp(prefix=f"cnt-e2e-{label}-hidden-"))
        self.root = Path(tempfile.mkdtemp(prefix=f"cnt-e2e-{label}-"))
        self.netconf = self.root / "netconf"
        self.varlib = self.root / "varlib-up"
        self.runnetns = self.root / "runnetns"
        for sub in ("netconf", "varlib-up", "varlib-work", "runnetns", "graph", "run", "tmp", "rootfs/bin"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.holder: subprocess.Popen[bytes] | None = None
        self.use_plugins(plugin_dirs)
        self._storage("overlay")
        self.ids: dict[str, str] = {}
        self._pids: dict[str, int] = {}

    # -- setup -------------------------------------------------------------------------------------

    def use_plugins(self, plugin_dirs: Sequence[Path]) -> None:
        """Point podman's ``cni_plugin_dirs`` at ``plugin_dirs`` (read by every podman command anew)."""
        conf = "\n".join([
            "[containers]",
            f"default_ulimits = {json.dumps(_ulimits())}",
            "[network]",
            'network_backend = "cni"',
            f"cni_plugin_dirs = {json.dumps([str(d) for d in plugin_dirs])}",
            f'network_config_dir = "{self.netconf}"',
            'default_subnet = "10.88.250.0/24"',
            "[engine]",
            'runtime = "runc"',
            'cgroup_manager = "cgroupfs"',
            'events_logger = "file"',
            f'events_logfile_path = "{self.root / "events.log"}"',
            f'tmp_dir = "{self.root / "tmp"}"',
            "",
        ])
        (self.root / "containers.conf").write_text(conf)

    def _storage(self, driver: str) -> None:
        (self.root / "storage.conf").write_text(
            f'[storage]\ndriver = "{driver}"\ngraphroot = "{self.root / "graph"}"\nrunroot = "{self.root / "run"}"\n')

    def start(self) -> None:
        """Make the namespaces, import the image and run one container; :class:`PodmanRefused` if podman can't."""
        script = "\n".join([
            "set -e",
            f"mount -t overlay overlay -o lowerdir=/var/lib,upperdir={self.varlib},workdir={self.root / 'varlib-work'}"
            " /var/lib",
            f"mount --bind {self.runnetns} /run/netns",
            *([] if self.hide is None else [f"mount --bind {self.hide} {self.hidden_copy}",
                                            f"mount -t tmpfs -o ro,size=64k,mode=0755 cnt-e2e-hidden {self.hide}"]),
            "ip link set lo up",
            f"touch {self.root / 'ready'}",
            "exec sleep infinity",
        ])
        os.makedirs("/run/netns", exist_ok=True)
        self.holder = subprocess.Popen(["unshare", "--mount", "--net", "--propagation", "private", "--", "sh", "-c",
                                        script], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not (self.root / "ready").exists():
            if self.holder.poll() is not None:
                assert self.holder.stderr is not None
                raise PodmanRefused(f"cannot make a private namespace: {self.holder.stderr.read().decode().strip()}")
            if time.monotonic() > deadline:
                raise AssertionError("the namespace holder never became ready")
            time.sleep(0.02)
        rootfs = self.root / "rootfs"
        shutil.copy2(shutil.which("busybox") or "/bin/busybox", rootfs / "bin" / "busybox")
        for applet in _APPLETS:
            (rootfs / "bin" / applet).symlink_to("busybox")
        for sub in ("etc", "proc", "sys", "dev", "tmp"):
            (rootfs / sub).mkdir(exist_ok=True)
        imported = self._import(rootfs)
        if imported.returncode != 0 and "overlay" in imported.stderr:
            self._storage("vfs")  # no overlay for podman's storage here: the slow, always-working driver
            imported = self._import(rootfs)
        self._refused_or_fail(imported, "podman import")
        self._refused_or_fail(self.podman("run", "--rm", "--network", "none", IMAGE, "true", check=False),
                              "podman run")

    def _import(self, rootfs: Path) -> subprocess.CompletedProcess[str]:
        tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True)
        return self._run(self._podman_argv("import", "-", IMAGE), input_bytes=tar.stdout)

    @staticmethod
    def _refused_or_fail(done: subprocess.CompletedProcess[str], what: str) -> None:
        if done.returncode == 0:
            return
        for pattern in KNOWN_REFUSALS:
            found = re.search(pattern, done.stderr, re.IGNORECASE)
            if found:
                raise PodmanRefused(f"{what} refused: {found.group(0)} ({done.stderr.strip().splitlines()[-1]})")
        raise AssertionError(f"{what} failed: {done.stderr}")

    def close(self) -> None:
        """Remove every container, end the namespaces, delete the directory. Never raises."""
        try:
            if self.holder is not None and self.holder.poll() is None:
                self.podman("rm", "-af", "-t", "0", check=False)
        finally:
            if self.holder is not None and self.holder.poll() is None:
                self.holder.send_signal(signal.SIGKILL)
                self.holder.wait()
            shutil.rmtree(self.root, ignore_errors=True)
            if self.hidden_copy is not None:
                # Only ever a mount point in the namespace that just ended: here an empty directory.
                with contextlib.suppress(OSError):
                    self.hidden_copy.rmdir()

    # -- running things ----------------------------------------------------------------------------

    def _enter(self) -> list[str]:
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-n", "--"]

    def _podman_argv(self, *args: str) -> list[str]:
        return [*self._enter(), "env", f"CONTAINERS_CONF={self.root / 'containers.conf'}",
                f"CONTAINERS_STORAGE_CONF={self.root / 'storage.conf'}", "podman", *args]

    @staticmethod
    def _run(argv: list[str], *, input_bytes: bytes | None = None, timeout: float = 180) -> (
            subprocess.CompletedProcess[str]):
        done = subprocess.run(argv, input=input_bytes, capture_output=True, timeout=timeout, check=False)
        return subprocess.CompletedProcess(argv, done.returncode, done.stdout.decode(errors="replace"),
                                           done.stderr.decode(errors="replace"))

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one podman command; with ``check`` a failure fails the test with podman's stderr."""
        if args and args[0] in ("run", "rm", "start", "stop", "restart"):
            self._pids.clear()
        done = self._run(self._podman_argv(*args))
        if check:
            assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr}"
        return done

    def run_container(self, name: str, *args: str, command: Sequence[str] = ("sleep", "1000")) -> str:
        """``podman run -d --name NAME ARGS IMAGE COMMAND``; remembers the ID for normalising."""
        cid = self.podman("run", "-d", "--name", name, *args, IMAGE, *command).stdout.strip()
        self.ids[cid] = name
        return cid

    def in_host(self, *argv: str, check: bool = True) -> str:
        done = self._run([*self._enter(), *argv])
        if check:
            assert done.returncode == 0, f"{argv}: {done.stderr}"
        return done.stdout

    def pid(self, name: str) -> int:
        """The container's process (asked once until podman next runs, removes, starts or stops one)."""
        if name not in self._pids:
            self._pids[name] = int(self.podman("inspect", "-f", "{{.State.Pid}}", name).stdout)
        return self._pids[name]

    def in_container(self, name: str, *argv: str) -> str:
        """Run a host tool in the container's network namespace."""
        done = self._run(["nsenter", "-t", str(self.pid(name)), "-n", "--", *argv])
        assert done.returncode == 0, f"{argv}: {done.stderr}"
        return done.stdout

    def network_create(self, name: str, bridge: str, *args: str) -> dict[str, Any]:
        """``podman network create``, then the conflist's bridge renamed to ``bridge`` (``cnt-`` names)."""
        self.podman("network", "create", *args, name)
        path = self.netconf / f"{name}.conflist"
        conf = json.loads(path.read_text())
        conf["plugins"][0]["bridge"] = bridge
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(conf, indent=3))
        os.replace(tmp, path)
        return dict(conf)

    def inspect_networks(self, name: str) -> dict[str, Any]:
        found = json.loads(self.podman("inspect", "-f", "{{json .NetworkSettings.Networks}}", name).stdout)
        return dict(found)

    # -- what the host holds -----------------------------------------------------------------------

    def normalise(self, text: str, *, keep_macs: Iterable[str] = ()) -> str:
        """Container IDs as names, veth names and (random) MACs masked."""
        text = _CID.sub(lambda m: f"<{self.ids.get(m.group(0), 'unknown')}>", text)
        for cid, name in self.ids.items():
            text = re.sub(rf"\b{cid[:12]}\b", f"<{name}>", text)  # podman's short IDs (network aliases)
        text = _VETH.sub("vethXXXXXXXX", text)
        text = _NETNS_PIN.sub("NETNS", text)
        kept = set(keep_macs)
        return _MAC.sub(lambda m: m.group(0) if m.group(0) in kept else "MAC", text)

    def ip_json(self, *args: str, container: str | None = None) -> Any:
        argv = ["ip", "-j", *args]
        out = self.in_container(container, *argv) if container else self.in_host(*argv)
        return json.loads(out or "[]")

    def links(self, container: str | None = None) -> list[dict[str, Any]]:
        found = []
        for link in self.ip_json("-d", "link", "show", container=container):
            info = link.get("linkinfo", {})
            found.append({"name": link["ifname"], "kind": info.get("info_kind"), "master": link.get("master"),
                          "mtu": link["mtu"], "txqlen": link.get("txqlen", 0), "up": "UP" in link["flags"],
                          "mac": link.get("address"),
                          "hairpin": info.get("info_slave_data", {}).get("hairpin")})
        return found

    def routes(self, container: str | None = None) -> dict[str, list[Any]]:
        """Main-table routes in the kernel's order, every detail; without ``linkdown``, which the kernel sets
        asynchronously (when it has processed the carrier change of a bridge whose last port left)."""
        found: dict[str, list[Any]] = {}
        for family in ("-4", "-6"):
            found[family] = [{**r, "flags": [f for f in r.get("flags", []) if f != "linkdown"]}
                             for r in self.ip_json(family, "-d", "route", container=container)
                             if not str(r.get("dst", "")).startswith("fe80")]
        return found

    def addresses(self, container: str | None = None) -> dict[str, list[str]]:
        return {link["ifname"]: sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                                       if a.get("scope") != "link")
                for link in self.ip_json("address", "show", container=container)}

    def rules(self) -> list[Any]:
        return [self.ip_json(family, "rule") for family in ("-4", "-6")]

    def iptables(self) -> list[str]:
        """``iptables-save`` (nat and filter), normalised: per-container chain names as the container's name."""
        lines = []
        for table in ("nat", "filter"):
            text = self.in_host("iptables-save", "-t", table)
            lines += [line for line in text.splitlines() if not line.startswith("#")]
        chains: dict[str, str] = {}
        for line in lines:
            ids = _CID.findall(line)
            for chain in _CHAIN.findall(line):
                if ids:
                    chains[chain] = f"CNI-{'DN-' if chain.startswith('CNI-DN-') else ''}<{self.ids.get(ids[0])}>"
        text = _CHAIN.sub(lambda m: chains.get(m.group(0), "CNI-<unknown>"), "\n".join(lines))
        return sorted(self.normalise(re.sub(r"\[\d+:\d+\]", "", text)).splitlines())

    def store(self) -> dict[str, str]:
        """host-local's reservation files (``/var/lib/cni/networks``), contents normalised."""
        base = self.varlib / "cni" / "networks"
        return {str(p.relative_to(base)): self.normalise(p.read_text()) for p in sorted(base.rglob("*"))
                if p.is_file() and p.name != "lock"} if base.is_dir() else {}

    def cache(self) -> dict[str, Any]:
        """libcni's result cache entries (``/var/lib/cni/results``), names and contents normalised."""
        base = self.varlib / "cni" / "results"
        entries = {}
        for path in sorted(base.glob("*")) if base.is_dir() else []:
            doc = json.loads(path.read_text())
            doc["netns"] = "NETNS" if doc.get("netns") else doc.get("netns")
            entries[self.normalise(path.name)] = json.loads(self.normalise(json.dumps(doc, sort_keys=True)))
        return entries

    def netns_pins(self) -> list[str]:
        return sorted(os.listdir(self.runnetns))

    def veths(self) -> list[str]:
        return [link["name"] for link in self.links() if link["kind"] == "veth"]
