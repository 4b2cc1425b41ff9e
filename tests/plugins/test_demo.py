"""``cnicore demo`` and the seed demo as an end-to-end test in real namespaces."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
from plugin_helpers import Namespaces, addresses, link_flags, nat_rules, netns_path, routes, run_exec

from cnicore import _demo
from cnicore._demo import run_demo
from cnicore.cli import main as cli_main

SEED_BRIDGE_OUTPUT = ('{\n    "cniVersion": "0.1.0",\n    "ip4": {\n        "ip": "10.23.0.2/24",\n'
                      '        "gateway": "10.23.0.1",\n        "routes": [\n            {\n'
                      '                "dst": "0.0.0.0/0"\n            }\n        ]\n    },\n    "dns": {}\n}')


def _names_and_tmp(text: str) -> tuple[set[str], set[str]]:
    return set(re.findall(r"cnt-demo-[-a-z0-9]+", text)), set(re.findall(r"/tmp/cnicore-demo-[A-Za-z0-9_]+", text))


def test_demo_on_the_fake_backend() -> None:
    out = io.StringIO()
    assert run_demo(backend="fake", out=out) == 0
    text = out.getvalue()
    assert "FAKE backend" in text
    assert SEED_BRIDGE_OUTPUT in text
    assert text.count(": ok") == 6 and "FAILED" not in text
    _names, tmps = _names_and_tmp(text)
    assert tmps and not any(Path(t).exists() for t in tmps)


def test_demo_cleans_up_after_an_interruption(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: object) -> dict[str, object]:
        raise KeyboardInterrupt

    monkeypatch.setattr(_demo._Demo, "show_state", interrupted)
    out = io.StringIO()
    assert run_demo(backend="auto", out=out) == 130
    text = out.getvalue()
    names, tmps = _names_and_tmp(text)
    assert "cleaned up" in text and not any(Path(t).exists() for t in tmps)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert not [n for n in names if n in listed]


def test_cli_demo_fake(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["demo", "--backend", "fake"]) == 0
    assert "demo OK" in capsys.readouterr().out


@pytest.mark.root
def test_demo_in_real_namespaces(netns: Namespaces) -> None:
    out = io.StringIO()
    assert run_demo(backend="real", out=out) == 0, out.getvalue()
    text = out.getvalue()
    assert "real network namespaces" in text and SEED_BRIDGE_OUTPUT in text
    names, tmps = _names_and_tmp(text)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert names and not [n for n in names if n in listed]
    assert not any(Path(t).exists() for t in tmps)
    # The host side lived in a throwaway namespace: the machine has no mybr0.
    assert not Path("/sys/class/net/mybr0").exists() or "using cnt-br-" in text


@pytest.mark.root
def test_seed_demo_in_a_real_namespace(plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    """The seed, literally: nameless loopback config, the bridge config, ADD then DEL, checked in the kernel."""
    host = netns.add("host")
    container = netns.add("mycontainer0")
    data = tmp_path / "data"
    bridge_conf = ('{"name": "mybridge0", "type": "bridge", "bridge": "mybr0", "isGateway": true, "ipMasq": true, '
                   '"ipam": {"type": "host-local", "subnet": "10.23.0.0/24", "routes": [{"dst": "0.0.0.0/0"}], '
                   f'"dataDir": "{data}"}}}}')
    common = {"netns": netns_path(container), "container_id": "mycontainer0", "path": [plugin_bin], "host_ns": host}
    out = run_exec(plugin_bin / "loopback", "ADD", b'{"type": "loopback"}', ifname="mynetlo", **common)  # type: ignore[arg-type]
    assert (out.returncode, out.json) == (0, {"cniVersion": "0.1.0", "ip4": {"ip": "127.0.0.1/8"},
                                              "ip6": {"ip": "::1/128"}, "dns": {}})
    out = run_exec(plugin_bin / "bridge", "ADD", bridge_conf, **common)  # type: ignore[arg-type]
    assert (out.returncode, out.stdout) == (0, SEED_BRIDGE_OUTPUT)
    assert addresses(container, "eth0") == ["10.23.0.2/24"]
    assert "default via 10.23.0.1 dev eth0" in routes(container)
    assert "UP" in link_flags(container, "lo")
    assert addresses(host, "mybr0") == ["10.23.0.1/24"]
    ports = subprocess.run(["ip", "-n", host, "-o", "link", "show", "master", "mybr0"], capture_output=True,
                           text=True, check=True).stdout
    assert re.search(r"veth[0-9a-f]{8}@", ports)
    assert len([r for r in nat_rules(host) if "mybridge0" in r]) == 3

    out = run_exec(plugin_bin / "bridge", "DEL", bridge_conf, **common)  # type: ignore[arg-type]
    assert (out.returncode, out.stdout) == (0, "")
    out = run_exec(plugin_bin / "loopback", "DEL", b'{"type": "loopback"}', ifname="mynetlo", **common)  # type: ignore[arg-type]
    assert (out.returncode, out.stdout) == (0, "")
    assert subprocess.run(["ip", "-n", container, "link", "show", "eth0"], capture_output=True,
                          check=False).returncode != 0
    assert "UP" not in link_flags(container, "lo")
    assert [r for r in nat_rules(host) if "mybridge0" in r] == []
    assert sorted(p.name for p in (data / "mybridge0").iterdir()) == ["last_reserved_ip.0", "lock"]


@pytest.mark.parametrize("backend", ["fake", pytest.param("real", marks=pytest.mark.root)])
def test_demo_cleans_up_after_sigterm(backend: str) -> None:
    import os
    import signal
    import sys

    from support import is_root

    if backend == "real" and not is_root():
        pytest.skip("needs root")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cnicore.cli", "demo", "--backend", backend],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("=== ADD bridge"):
                # Stopped between the two ADDs: loopback is attached, the bridge about to be.
                proc.send_signal(signal.SIGTERM)
                break
        rest = proc.stdout.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(seen) + rest
    assert code == 130, text
    assert "cleaned up" in text
    names, tmps = _names_and_tmp(text)
    assert tmps and not any(Path(t).exists() for t in tmps)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert not [n for n in names if n in listed]
