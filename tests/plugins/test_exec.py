"""The installed entry points: the seed demo through exec on the fake kernel, start-up imports, delegation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_helpers import run_exec

from cnicore._errors import InvalidConfigError
from cnicore._plugin_main import FakeState, main
from cnicore.cli import main as cli_main
from cnicore.plugins import INSTALLED_PLUGINS, PLUGIN_MARKER, entry_point_script, is_cnicore_plugin
from cnicore.plugins._install import import_layout

SEED_LOOPBACK = b'{"type": "loopback"}'
NS = "/var/run/netns/cnt-seed"


def _seed_bridge(data_dir: Path, bridge: str = "mybr0") -> dict[str, object]:
    return {"name": "mybridge0", "type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
            "ipam": {"type": "host-local", "subnet": "10.23.0.0/24", "routes": [{"dst": "0.0.0.0/0"}],
                     "dataDir": str(data_dir)}}


def test_install_writes_marked_executables(plugin_bin: Path) -> None:
    for name in ("loopback", "bridge", "host-local"):
        path = plugin_bin / name
        assert os.access(path, os.X_OK)
        # The shell first (it answers VERSION), then the running interpreter, isolated and without site.
        text = path.read_text()
        assert text.startswith("#!/bin/sh\n")
        assert f"\nexec '{sys.executable}' -IS -- \"$0\" \"$@\"\n" in text
        assert is_cnicore_plugin(str(path))
    assert PLUGIN_MARKER in (plugin_bin / "bridge").read_text()
    assert not is_cnicore_plugin("/bin/sh")


def test_another_interpreter_keeps_site() -> None:
    # Its site-packages are unknown here: the script leaves finding cnicore to its site.
    script = entry_point_script("/opt/python/bin/python3")
    assert "\nexec '/opt/python/bin/python3' -- \"$0\" \"$@\"\n" in script
    assert "sys.path" not in script


@pytest.mark.parametrize("path", ["/opt/my python/bin/python3", "/opt/it's/python3", "/opt/a\\b/python3"])
def test_an_interpreter_path_the_script_cannot_hold_is_refused(path: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        entry_point_script(path)
    assert (info.value.code, info.value.key, info.value.value) == (7, "interpreter", path)
    assert repr(path) in info.value.msg


def _exec(path: Path, env: dict[str, str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(path)], input=stdin, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                          capture_output=True, check=False)


@pytest.mark.parametrize("name", INSTALLED_PLUGINS)
def test_version_from_the_shell_is_what_the_plugin_prints(plugin_bin: Path, tmp_path: Path, name: str,
                                                          capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # The installed script answers VERSION in its shell part; the plugin's own answer comes from Python. Both,
    # and the exit status, byte for byte, whatever else the environment holds (VERSION reads nothing else).
    env = {"CNI_COMMAND": "VERSION", "CNI_CONTAINERID": "bad id%%", "CNI_IFNAME": "", "CNI_NETNS": "/nonexistent"}
    status = main([name], env)
    expected = capsysbinary.readouterr()
    shell = _exec(plugin_bin / name, env, b"not json")
    assert (shell.returncode, shell.stdout, shell.stderr) == (status, expected.out, expected.err)
    # Under another name the copy runs that plugin, shell and Python alike.
    other = tmp_path / "renamed" / ("firewall" if name != "firewall" else "bridge")
    other.parent.mkdir(exist_ok=True)
    other.write_bytes((plugin_bin / name).read_bytes())
    other.chmod(0o755)
    renamed = _exec(other, env)
    assert main([other.name], env) == renamed.returncode
    assert capsysbinary.readouterr().out == renamed.stdout


def test_version_is_answered_without_starting_python(tmp_path: Path) -> None:
    # Installed for an interpreter that does not exist: VERSION is still answered (by the shell alone); every
    # other command, and the Mesos port mapper whatever the command, needs the interpreter and fails to start it.
    from cnicore._plugin_main import version_answer

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in INSTALLED_PLUGINS:
        path = bin_dir / name
        path.write_text(entry_point_script(str(tmp_path / "no-such-python")))
        path.chmod(0o755)
        out = _exec(path, {"CNI_COMMAND": "VERSION"})
        if name == "mesos-cni-port-mapper":
            assert version_answer(name) is None
            assert out.returncode == 127 and b"no-such-python" in out.stderr, out
        else:
            assert (out.returncode, out.stdout.decode(), out.stderr) == (0, version_answer(name), b"")
        for command in ("ADD", "version", ""):
            out = _exec(path, {"CNI_COMMAND": command})
            assert out.returncode == 127 and b"no-such-python" in out.stderr, (name, command, out)


def test_isolated_entry_point_finds_cnicore_where_it_is(plugin_bin: Path, tmp_path: Path) -> None:
    # A decoy cnicore on PYTHONPATH, a decoy json module beside the plugin and in the working
    # directory: the isolated interpreter sees none of them and imports the real packages.
    decoy = tmp_path / "decoy"
    (decoy / "cnicore").mkdir(parents=True)
    (decoy / "cnicore" / "__init__.py").write_text("raise SystemExit('decoy cnicore imported')\n")
    for folder in (plugin_bin, decoy):
        (folder / "json.py").write_text("raise SystemExit('decoy json imported')\n")
    # (No CNI_COMMAND: the about text, which Python prints; VERSION the shell answers without Python.)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(decoy)}
    for name in ("loopback", "host-local", "bridge"):
        done = subprocess.run([str(plugin_bin / name)], env=env, cwd=decoy, capture_output=True, text=True,
                              check=False)
        assert (done.returncode, done.stdout) == (0, ""), name
        assert done.stderr.startswith(f"CNI {name} plugin cnicore "), done.stderr
    # The import path the script sets gives the installing interpreter's packages.
    layout = import_layout()
    assert layout is not None
    code = ("import cnicore, cnicore.backends, netaddr\n"
            "print(cnicore.__file__); print(cnicore.backends.__file__); print(netaddr.__file__)\n")
    script = (plugin_bin / "loopback").read_text().replace("from cnicore._plugin_main import exec_main\nexec_main()\n",
                                                            code)
    done = subprocess.run([sys.executable, "-IS", "-c", script], env=env, capture_output=True, text=True,
                          check=True)
    import netaddr

    import cnicore
    import cnicore.backends

    assert done.stdout.split() == [os.path.realpath(m.__file__ or "") for m in (cnicore, cnicore.backends, netaddr)]


def test_seed_demo_through_exec_on_the_fake_kernel(plugin_bin: Path, tmp_path: Path,
                                                   fake_kernel: dict[str, str]) -> None:
    with FakeState(fake_kernel["CNICORE_FAKE_STATE"]) as state:
        state.backend.add_namespace(NS)
    data = tmp_path / "data"
    common = {"netns": NS, "container_id": "mycontainer0", "path": [plugin_bin], "extra_env": fake_kernel}
    out = run_exec(plugin_bin / "loopback", "ADD", SEED_LOOPBACK, ifname="mynetlo", **common)  # type: ignore[arg-type]
    assert (out.returncode, out.json) == (0, {"cniVersion": "0.1.0", "ip4": {"ip": "127.0.0.1/8"},
                                              "ip6": {"ip": "::1/128"}, "dns": {}})
    out = run_exec(plugin_bin / "bridge", "ADD", _seed_bridge(data), **common)  # type: ignore[arg-type]
    assert out.returncode == 0, out.stdout
    # Byte for byte what the reference prints for the seed.
    assert out.stdout == ('{\n    "cniVersion": "0.1.0",\n    "ip4": {\n        "ip": "10.23.0.2/24",\n'
                          '        "gateway": "10.23.0.1",\n        "routes": [\n            {\n'
                          '                "dst": "0.0.0.0/0"\n            }\n        ]\n    },\n    "dns": {}\n}')
    with FakeState(fake_kernel["CNICORE_FAKE_STATE"]) as state:
        be = state.backend
        ns = be.open_namespace(NS)
        assert [str(a) for a in be.list_addresses(ns, "eth0")] == ["10.23.0.2/24"]
        assert be.get_link(ns, "lo").admin_up
        host_links = {link.name: link for link in be.list_links(be.host_namespace())}
        assert [str(a) for a in host_links["mybr0"].addresses] == ["10.23.0.1/24"]
        assert any(link.master == "mybr0" and name.startswith("veth") for name, link in host_links.items())
        assert len([r for r in state.firewall.list_rules(4) if "mybridge0" in r]) == 3
    assert (data / "mybridge0" / "10.23.0.2").read_bytes() == b"mycontainer0\r\neth0"

    out = run_exec(plugin_bin / "bridge", "DEL", _seed_bridge(data), **common)  # type: ignore[arg-type]
    assert (out.returncode, out.stdout) == (0, "")
    out = run_exec(plugin_bin / "loopback", "DEL", SEED_LOOPBACK, ifname="mynetlo", **common)  # type: ignore[arg-type]
    assert (out.returncode, out.stdout) == (0, "")
    with FakeState(fake_kernel["CNICORE_FAKE_STATE"]) as state:
        be = state.backend
        ns = be.open_namespace(NS)
        assert [link.name for link in be.list_links(ns)] == ["lo"]
        assert not be.get_link(ns, "lo").admin_up
        assert [r for r in state.firewall.list_rules(4) if not r.startswith("-P")] == []
    assert not (data / "mybridge0" / "10.23.0.2").exists()


def test_isolated_entry_point_of_a_regular_install(tmp_path: Path) -> None:
    # cnicore laid out as a wheel installs it (cnicore.backends inside cnicore), in a fresh virtual
    # environment whose dependencies come through a .pth file naming another site-packages.
    import shutil

    import netaddr

    import cnicore

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site_dir,) = (venv / "lib").glob("python3*/site-packages")
    source = Path(cnicore.__file__).resolve().parent
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(source, site_dir / "cnicore", ignore=ignore)
    shutil.copytree(source.parent / "backends", site_dir / "cnicore" / "backends", ignore=ignore)
    (site_dir / "deps.pth").write_text(str(Path(netaddr.__file__).resolve().parent.parent) + "\n")
    # site-packages come after the standard library, as site puts them: a module named like a
    # standard one does not shadow it.
    (site_dir / "json.py").write_text("raise SystemExit('decoy json imported')\n")
    python = str(venv / "bin" / "python")
    bin_dir = tmp_path / "bin"
    subprocess.run([python, "-c", f"from cnicore.plugins import install_plugins; install_plugins({str(bin_dir)!r})"],
                   check=True, cwd=tmp_path)
    script = (bin_dir / "host-local").read_text()
    assert f"\nexec '{python}' -IS -- " in script
    assert "meta_path" not in script  # found on the path as installed: no finder needed
    assert repr(os.path.realpath(site_dir)) in script
    # GC runs the Python part: the skeleton reads and decodes the configuration (a loopback has nothing to collect).
    done = subprocess.run([str(bin_dir / "loopback")], input='{"cniVersion": "1.1.0", "name": "n", "type": "loopback"}',
                          env={"PATH": os.environ.get("PATH", ""), "CNI_COMMAND": "GC", "CNI_PATH": str(bin_dir)},
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_version_and_about(plugin_bin: Path) -> None:
    out = run_exec(plugin_bin / "host-local", "VERSION", b"")
    assert out.stdout == ('{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0",'
                          '"1.0.0","1.1.0"]}\n')
    done = subprocess.run([str(plugin_bin / "bridge")], env={"PATH": os.environ.get("PATH", "")},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stderr.startswith("CNI bridge plugin cnicore ")


def test_unknown_entry_point_name() -> None:
    assert main(["/somewhere/ptp"], {}) == 1


def _imported_modules(plugin: str, command: str, config: bytes, tmp_path: Path, env: dict[str, str]) -> str:
    code = ("import sys\n"
            f"sys.argv = ['/x/{plugin}']\n"
            "from cnicore._plugin_main import main\n"
            "rc = main()\n"
            "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n")
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("CNI")}, "CNI_COMMAND": command,
            "CNI_CONTAINERID": "c1", "CNI_NETNS": NS, "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent", **env}
    done = subprocess.run([sys.executable, "-c", code], input=config, env=full, capture_output=True, check=False)
    return done.stderr.decode().rsplit("MODULES ", 1)[1]


@pytest.mark.parametrize("plugin", ["loopback", "host-local"])
def test_exec_path_never_imports_pyroute2(plugin: str, tmp_path: Path, fake_kernel: dict[str, str]) -> None:
    with FakeState(fake_kernel["CNICORE_FAKE_STATE"]) as state:
        state.backend.add_namespace(NS)
    config = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": plugin,
                         "ipam": {"type": "host-local", "subnet": "10.5.0.0/24", "dataDir": str(tmp_path / "d")}})
    # Unset CNICORE_BACKEND means auto (the real backend when root): the namespace does not exist in
    # the kernel, but backend selection and the first backend call happen before that is found out.
    for env in ({}, fake_kernel):
        modules = _imported_modules(plugin, "ADD", config.encode(), tmp_path, env).split()
        assert not [m for m in modules if m.split(".")[0] == "pyroute2"]
        # The plugins package loads its members lazily: these never pay for the bridge plugin.
        assert "cnicore.plugins._bridge" not in modules
        if plugin == "host-local" and not env:
            # host-local needs no link backend at all.
            assert "cnicore.backends" not in modules


def test_python_x_importtime_of_loopback_shows_no_pyroute2(plugin_bin: Path) -> None:
    env = {**os.environ, "CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/cnt-none",
           "CNI_IFNAME": "lo", "CNI_PATH": str(plugin_bin)}
    done = subprocess.run([sys.executable, "-X", "importtime", str(plugin_bin / "loopback")],
                          input=b'{"cniVersion":"1.0.0","name":"n","type":"loopback"}', env=env,
                          capture_output=True, check=False)
    assert done.returncode == 0, done.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.decode().splitlines()
                if line.startswith("import time:")]
    assert "cnicore.plugins._loopback" in imported
    assert not [m for m in imported if m.startswith("pyroute2")]


def test_cli_install_plugins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["install-plugins", str(tmp_path / "b")]) == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(INSTALLED_PLUGINS)
    assert str(tmp_path / "b" / "bridge") in capsys.readouterr().out


def test_our_bridge_delegates_by_exec_to_a_foreign_ipam(plugin_bin: Path, tmp_path: Path,
                                                        fake_kernel: dict[str, str]) -> None:
    with FakeState(fake_kernel["CNICORE_FAKE_STATE"]) as state:
        state.backend.add_namespace(NS)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    log = tmp_path / "ipam.log"
    script = foreign / "fixed-ipam"
    script.write_text("#!/bin/sh\n"
                      f'echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME" >> {log}\n'
                      'if [ "$CNI_COMMAND" = ADD ]; then\n'
                      '  cat > /dev/null\n'
                      '  echo \'{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.77.0.9/16",'
                      '"gateway":"10.77.0.1"}],"dns":{}}\'\n'
                      'fi\n')
    script.chmod(0o755)
    config = {"cniVersion": "0.4.0", "name": "n1", "type": "bridge", "bridge": "cnt-br9",
              "ipam": {"type": "fixed-ipam"}}
    out = run_exec(plugin_bin / "bridge", "ADD", config, netns=NS, path=[plugin_bin, foreign],
                   extra_env=fake_kernel)
    assert out.returncode == 0, out.stdout
    assert out.json["ips"] == [{"version": "4", "interface": 2, "address": "10.77.0.9/16", "gateway": "10.77.0.1"}]
    out = run_exec(plugin_bin / "bridge", "DEL", config, netns=NS, path=[plugin_bin, foreign],
                   extra_env=fake_kernel)
    assert out.returncode == 0
    assert log.read_text().split("\n")[:2] == ["ADD cnt-container-1 eth0", "DEL cnt-container-1 eth0"]

    # A failing IPAM plugin's error object is passed on with its code, and ADD is undone.
    script.write_text('#!/bin/sh\necho \'{"code": 11, "msg": "try later", "details": "busy"}\'\nexit 1\n')
    out = run_exec(plugin_bin / "bridge", "ADD", config, netns=NS, path=[plugin_bin, foreign],
                   extra_env=fake_kernel)
    assert (out.returncode, out.json) == (1, {"code": 11, "msg": "try later", "details": "busy"})
    with FakeState(fake_kernel["CNICORE_FAKE_STATE"]) as state:
        assert [link.name for link in state.backend.list_links(state.backend.open_namespace(NS))] == ["lo"]
    script.write_text("#!/bin/sh\necho oops >&2\nexit 3\n")
    out = run_exec(plugin_bin / "bridge", "ADD", config, netns=NS, path=[plugin_bin, foreign],
                   extra_env=fake_kernel)
    assert out.json == {"code": 999, "msg": 'netplugin failed: "oops\\n"'}
    out = run_exec(plugin_bin / "bridge", "ADD", {**config, "ipam": {"type": "nowhere"}}, netns=NS,
                   path=[plugin_bin], extra_env=fake_kernel)
    assert out.json["msg"] == f'failed to find plugin "nowhere" in path [{plugin_bin}]'
