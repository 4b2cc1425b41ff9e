"""``cnicore demo``: the Mesos documentation's CNI example, run end to end with our plugins.

The seed (the "Network of Mesos Containerizer" page) configures a loopback and a
bridge network for a namespace by executing plugin binaries by hand::

    ip netns add mycontainer0
    CNI_COMMAND=ADD ... CNI_IFNAME=mynetlo ./bin/loopback < loopback.conf
    CNI_COMMAND=ADD ... CNI_IFNAME=eth0    ./bin/bridge   < mybridge0.conf
    CNI_COMMAND=DEL ...                     (both)
    ip netns del mycontainer0

The demo does exactly that, through the exec protocol (the plugins are installed
into a temporary directory used as ``CNI_PATH``), and prints each step's command,
its output and the state it left: addresses and routes in the namespace, the
bridge, the masquerade rules and the files under the IPAM data directory.

Where it runs:

* as root with ``ip``: in real network namespaces with the real backend. The
  "host" side (bridge, masquerade rules, ``ip_forward``) lives in a throwaway
  namespace too, so nothing lands on the machine's own interfaces or tables
  (``--on-host`` runs the plugins in the real host namespace, as the seed does;
  the demo then removes the bridge and rules and restores ``ip_forward``);
* otherwise on the in-memory fake backend, persisted between the plugin
  executions in a state file (see :mod:`cnicore._plugin_main`); the demo says so.

Names never clash with the machine: namespaces are ``cnt-demo-<random>``; the
bridge is the seed's ``mybr0`` only when no such link exists where it would be
made (else ``cnt-br-<random>``); configuration files and the IPAM data directory
are in a temporary directory (never ``/var/lib/cni``), which is why the bridge
configuration gains a ``dataDir``. Everything is removed afterwards, also after
a failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

__all__ = ["DemoFailed", "run_demo"]

_SEED_BRIDGE = "mybr0"
_SUBNET_PREFIX = "10.23.0."
_IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


class DemoFailed(Exception):
    """A demo step did not do what the seed says it does."""


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM/SIGHUP behave like Ctrl-C: unwind through the finally blocks that clean up.
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Demo:
    def __init__(self, out: TextIO, *, real: bool, on_host: bool) -> None:
        self.loopback_conf = Path("/dev/null")
        self.bridge_conf = Path("/dev/null")
        self.out = out
        self.real = real
        self.on_host = on_host
        self.tmp = Path(tempfile.mkdtemp(prefix="cnicore-demo-"))
        suffix = secrets.token_hex(4)
        self.container_ns = f"cnt-demo-{suffix}"
        self.netns_path = f"/var/run/netns/{self.container_ns}"
        self.host_ns = None if (on_host or not real) else f"cnt-demo-host-{suffix}"
        self.bridge = _SEED_BRIDGE
        self.alt_bridge = f"cnt-br-{suffix}"
        self.bin = self.tmp / "bin"
        self.data_dir = self.tmp / "data"
        self.state_file = self.tmp / "fake-kernel.state"
        self.created: list[str] = []
        self.attached = False
        # Set once the bridge name is known to be free: only then may cleanup delete it.
        self.bridge_is_ours = False
        self.saved_ip_forward: str | None = None

    # -- output ------------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        # A closed output (``cnicore demo | head``) must not stop the cleanup.
        with contextlib.suppress(OSError, ValueError):
            self.out.write(text + "\n")
            self.out.flush()

    def section(self, title: str) -> None:
        self.say()
        self.say(f"=== {title}")

    # -- running things ----------------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, check: bool = True, env: Mapping[str, str] | None = None,
            stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(list(argv), input=stdin, env=dict(env) if env is not None else None,
                              capture_output=True, check=False, timeout=120)
        if check and done.returncode != 0:
            raise DemoFailed(f"{' '.join(argv)} failed ({done.returncode}): "
                             f"{done.stderr.decode(errors='replace').strip()}")
        return done

    def host_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.host_ns] if self.host_ns else []

    def link_exists_on_host(self, name: str) -> bool:
        if not self.real:
            return False
        done = self.run([*self.host_prefix(), "ip", "link", "show", "dev", name], check=False)
        return done.returncode == 0

    # -- steps -------------------------------------------------------------------------------------

    def prepare(self) -> None:
        from cnicore.plugins._install import install_plugins

        mode = ("real network namespaces, real link backend" if self.real
                else "the in-memory FAKE backend (not root, or --backend fake): nothing touches the kernel")
        self.section("setup")
        self.say(f"running on {mode}")
        install_plugins(self.bin)
        self.say(f"plugins installed in {self.bin} (CNI_PATH): loopback, bridge, host-local")
        if self.real and self.host_ns:
            self.run(["ip", "netns", "add", self.host_ns])
            self.created.append(self.host_ns)
            self.run(["ip", "netns", "exec", self.host_ns, "ip", "link", "set", "lo", "up"])
            self.say(f"the host side (bridge, NAT rules) lives in the throwaway namespace {self.host_ns}")
        if self.real and self.on_host:
            # The bridge plugin enables forwarding on the host: put the setting back afterwards.
            with contextlib.suppress(OSError):
                self.saved_ip_forward = Path(_IP_FORWARD).read_text().strip()
        if self.link_exists_on_host(self.bridge):
            self.say(f"a link called {self.bridge} exists already: using {self.alt_bridge} instead")
            self.bridge = self.alt_bridge
        self.bridge_is_ours = not self.link_exists_on_host(self.bridge)
        self.loopback_conf = self.tmp / "loopback.conf"
        self.bridge_conf = self.tmp / "mybridge0.conf"
        self.loopback_conf.write_text('{"type": "loopback"}\n')
        bridge_conf: dict[str, Any] = {
            "name": "mybridge0", "type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": True,
            "ipam": {"type": "host-local", "subnet": "10.23.0.0/24", "routes": [{"dst": "0.0.0.0/0"}],
                     "dataDir": str(self.data_dir)},
        }
        self.bridge_conf.write_text(json.dumps(bridge_conf) + "\n")
        self.say(f"{self.loopback_conf.name}: {self.loopback_conf.read_text().strip()}")
        self.say(f"{self.bridge_conf.name}: {self.bridge_conf.read_text().strip()}")
        self.say("  (the seed's configuration plus ipam.dataDir, so that nothing goes to /var/lib/cni)")

    def add_namespace(self) -> None:
        self.section(f"ip netns add {self.container_ns}")
        if self.real:
            self.run(["ip", "netns", "add", self.container_ns])
        else:
            from cnicore._plugin_main import FakeState

            with FakeState(str(self.state_file)) as state:
                state.backend.add_namespace(self.netns_path)
        self.created.append(self.container_ns)

    def plugin_env(self, command: str, ifname: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        env.update(CNI_COMMAND=command, CNI_CONTAINERID=self.container_ns, CNI_NETNS=self.netns_path,
                   CNI_IFNAME=ifname, CNI_PATH=str(self.bin))
        if self.real:
            env.pop("CNICORE_FAKE_STATE", None)
            if env.get("CNICORE_BACKEND", "").lower() == "fake":
                env.pop("CNICORE_BACKEND")
        else:
            env.update(CNICORE_BACKEND="fake", CNICORE_FAKE_STATE=str(self.state_file))
        return env

    def plugin(self, command: str, name: str, ifname: str, conf: Path) -> str:
        env = self.plugin_env(command, ifname)
        shown = (f"CNI_COMMAND={command} CNI_CONTAINERID={self.container_ns} CNI_NETNS={self.netns_path} "
                 f"CNI_IFNAME={ifname} CNI_PATH={self.bin}")
        if not self.real:
            shown = f"CNICORE_BACKEND=fake CNICORE_FAKE_STATE={self.state_file} {shown}"
        self.section(f"{command} {name}")
        self.say(f"$ {shown} {' '.join(self.host_prefix())} {self.bin / name} < {conf.name}".replace("  ", " "))
        done = self.run([*self.host_prefix(), str(self.bin / name)], check=False, env=env, stdin=conf.read_bytes())
        text = done.stdout.decode(errors="replace")
        self.say(text if text else "(no output)")
        self.say(f"exit status {done.returncode}")
        if done.returncode != 0:
            raise DemoFailed(f"{command} {name} failed: {text.strip()}")
        return text

    # -- state -------------------------------------------------------------------------------------

    def show_state(self) -> dict[str, Any]:
        """Print the state and return the facts the checks look at."""
        self.say("--- state")
        facts = self.real_state() if self.real else self.fake_state()
        self.say(f"files under {self.data_dir}:")
        network_dir = self.data_dir / "mybridge0"
        files = sorted(network_dir.iterdir()) if network_dir.is_dir() else []
        for path in files:
            self.say(f"  {path.name}: {path.read_bytes()!r}")
        if not files:
            self.say("  (none)")
        return facts

    def real_state(self) -> dict[str, Any]:
        ns = self.container_ns
        addr = self.run(["ip", "-n", ns, "addr"]).stdout.decode()
        route = self.run(["ip", "-n", ns, "route"]).stdout.decode()
        self.say(f"$ ip -n {ns} addr\n{addr.rstrip()}")
        self.say(f"$ ip -n {ns} route\n{route.rstrip() or '(no routes)'}")
        host = " ".join(self.host_prefix())
        bridge = self.run([*self.host_prefix(), "ip", "addr", "show", "dev", self.bridge], check=False)
        self.say(f"$ {host} ip addr show dev {self.bridge}".replace("$  ", "$ "))
        self.say(bridge.stdout.decode().rstrip() or "(no such bridge)")
        ports = self.run([*self.host_prefix(), "ip", "-o", "link", "show", "master", self.bridge], check=False)
        port_names = [line.split(":")[1].strip().split("@")[0] for line in ports.stdout.decode().splitlines()]
        self.say(f"bridge ports: {' '.join(port_names) or '(none)'}")
        if shutil.which("iptables"):
            nat = self.run([*self.host_prefix(), "iptables", "-w", "-t", "nat", "-S"], check=False).stdout.decode()
            self.say("masquerade rules:")
            for line in nat.splitlines():
                if "mybridge0" in line or line.startswith("-N CNI-"):
                    self.say(f"  {line}")
        links = json.loads(self.run(["ip", "-n", ns, "-j", "addr"]).stdout or b"[]")
        routes = json.loads(self.run(["ip", "-n", ns, "-j", "route"]).stdout or b"[]")
        lo: dict[str, Any] = next((link for link in links if link.get("ifname") == "lo"), {})
        eth0 = next((link for link in links if link.get("ifname") == "eth0"), None)
        return {
            "lo_up": "UP" in lo.get("flags", []),
            "eth0": None if eth0 is None else [f"{a['local']}/{a['prefixlen']}" for a in eth0.get("addr_info", [])
                                               if a.get("family") == "inet"],
            "default_via": next((r.get("gateway") for r in routes if r.get("dst") == "default"), None),
            "bridge_addrs": bridge.stdout.decode(),
        }

    def fake_state(self) -> dict[str, Any]:
        from cnicore._plugin_main import FakeState
        from cnicore.links import Namespace

        with FakeState(str(self.state_file)) as state:
            backend, firewall = state.backend, state.firewall
            ns = Namespace(path=self.netns_path)
            host = backend.host_namespace()
            self.say(f"links in {self.container_ns} (fake):")
            facts: dict[str, Any] = {"lo_up": False, "eth0": None, "default_via": None, "bridge_addrs": ""}
            for link in backend.list_links(ns):
                addresses = " ".join(str(a) for a in link.addresses)
                self.say(f"  {link.index}: {link.name} ({link.kind}) {'UP' if link.admin_up else 'DOWN'} "
                         f"mac {link.mac} {addresses}")
                if link.name == "lo":
                    facts["lo_up"] = link.admin_up
                if link.name == "eth0":
                    facts["eth0"] = [str(a) for a in link.addresses if a.version == 4]
            self.say(f"routes in {self.container_ns} (fake):")
            for route in backend.list_routes(ns):
                via = f" via {route.gateway}" if route.gateway is not None else ""
                self.say(f"  {route.dst}{via} dev {route.device}")
                if route.dst.prefixlen == 0 and route.gateway is not None:
                    facts["default_via"] = str(route.gateway)
            self.say("host links (fake):")
            for link in backend.list_links(host):
                addresses = " ".join(str(a) for a in link.addresses)
                master = f" master {link.master}" if link.master else ""
                self.say(f"  {link.index}: {link.name} ({link.kind}){master} {addresses}")
                if link.name == self.bridge:
                    facts["bridge_addrs"] = addresses
            self.say("masquerade rules (fake iptables -t nat -S):")
            for line in firewall.list_rules(4):
                if not line.startswith("-P "):
                    self.say(f"  {line}")
        return facts

    # -- checks ------------------------------------------------------------------------------------

    def expect(self, ok: bool, what: str) -> None:
        self.say(f"check: {what}: {'ok' if ok else 'FAILED'}")
        if not ok:
            raise DemoFailed(what)

    # -- the whole thing ---------------------------------------------------------------------------

    def run_seed(self) -> None:
        self.prepare()
        self.add_namespace()
        self.plugin("ADD", "loopback", "mynetlo", self.loopback_conf)
        self.attached = True
        self.plugin("ADD", "bridge", "eth0", self.bridge_conf)
        facts = self.show_state()
        eth0 = facts["eth0"] or []
        self.expect(len(eth0) == 1 and eth0[0].startswith(_SUBNET_PREFIX) and eth0[0].endswith("/24"),
                    f"eth0 has one address in 10.23.0.0/24 ({', '.join(eth0) or 'none'})")
        self.expect(facts["default_via"] == "10.23.0.1", "default route via 10.23.0.1")
        self.expect(bool(facts["lo_up"]), "lo is up")
        self.expect("10.23.0.1/24" in facts["bridge_addrs"], f"{self.bridge} has 10.23.0.1/24")
        self.plugin("DEL", "bridge", "eth0", self.bridge_conf)
        self.plugin("DEL", "loopback", "mynetlo", self.loopback_conf)
        self.attached = False
        facts = self.show_state()
        self.expect(facts["eth0"] is None, "the container has no eth0")
        self.expect(not facts["lo_up"], "lo is down")

    def cleanup(self) -> None:
        if self.attached:
            # A failure between ADD and DEL: release what ADD made (IPAM, NAT rules) before the namespace goes.
            for name, ifname, conf in (("bridge", "eth0", self.bridge_conf),
                                       ("loopback", "mynetlo", self.loopback_conf)):
                with contextlib.suppress(Exception):
                    self.run([*self.host_prefix(), str(self.bin / name)], check=False,
                             env=self.plugin_env("DEL", ifname), stdin=conf.read_bytes())
        if self.container_ns in self.created:
            self.section(f"ip netns del {self.container_ns}")
            if self.real:
                self.run(["ip", "netns", "del", self.container_ns], check=False)
            else:
                from cnicore._plugin_main import FakeState

                with contextlib.suppress(Exception), FakeState(str(self.state_file)) as state:
                    state.backend.remove_namespace(self.netns_path)
        if self.real and self.on_host and self.bridge_is_ours:
            # The seed leaves the bridge behind; the demo made it (the name was free), so it removes it.
            self.run(["ip", "link", "del", "dev", self.bridge], check=False)
        if self.saved_ip_forward is not None:
            with contextlib.suppress(OSError):
                Path(_IP_FORWARD).write_text(self.saved_ip_forward + "\n")
        if self.host_ns and self.host_ns in self.created:
            self.run(["ip", "netns", "del", self.host_ns], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.say("cleaned up: namespaces, bridge, rules and temporary files removed")


def _can_run_real() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def run_demo(*, backend: str = "auto", on_host: bool = False, out: TextIO | None = None) -> int:
    """Run the seed demo; return 0 when every step did what the seed says, else 1.

    Args:
        backend: ``auto`` (real when root, else fake), ``real`` or ``fake``.
        on_host: run the plugins in the real host namespace as the seed does
            (bridge and NAT rules on the machine itself, removed afterwards).
        out: where to print (default stdout).
    """
    stream = out if out is not None else sys.stdout
    if backend not in ("auto", "real", "fake"):
        stream.write(f"unknown backend {backend!r} (auto, real, fake)\n")
        return 2
    real = backend == "real" or (backend == "auto" and _can_run_real())
    if real and not _can_run_real():
        stream.write("the real backend needs root and the ip command\n")
        return 2
    demo = _Demo(stream, real=real, on_host=on_host)
    try:
        with _signals_interrupt():
            try:
                demo.run_seed()
            finally:
                demo.cleanup()
    except DemoFailed as exc:
        stream.write(f"demo FAILED: {exc}\n")
        return 1
    except KeyboardInterrupt:
        stream.write("demo interrupted; cleaned up\n")
        return 130
    stream.write("demo OK: the seed ran as documented\n")
    return 0
