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
typed world, as its client needs it. On the file store it loads nothing beyond
an exact list of modules (``HOST_LOCAL_BUDGET``) over the floor (the same script
and interpreter, started and nothing more), compiles no regular expression (it
loads neither the ``json`` package nor ``re``: JSON goes through the C
accelerator, see :mod:`cnicore._json`) and never runs the cycle collector. The
exec'd bridge's ADD, CHECK and DEL load neither the ``json`` package, ``re``,
``enum``, ``ipaddress`` nor ``importlib`` (Go's address parser on integers,
:mod:`cnicore.spec._goint`, is the one parser). The meta plugins (portmap, firewall,
tuning), executed as podman's default chain: VERSION, GC, STATUS and every
refusal of the skeleton load none of their modules, and no command loads another
plugin's module, the stores, IPAM, the runtime or another backend; portmap's and
firewall's ADD, CHECK and DEL load none of attrs, netaddr, ``typing``, the typed
link world (``cnicore.links``), the result types or the typed firewalls. The Mesos
port mapper refuses a missing variable before its module loads. VERSION, executed
as installed, starts no interpreter at all (the script's shell part answers it):
its runs load nothing, and the Python part's own answer is held to the
skeleton's budget by running that part directly.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from plugin_helpers import Namespaces

from cnicore._plugin_main import FakeState, version_answer

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
                      "cnicore.spec._goaddr", "json", "re", "enum")

_EXIT = "from cnicore._plugin_main import exec_main\nexec_main()\n"
# What a run leaves behind: the modules it loaded, the regular expressions it compiled (re's cache: none is ever
# purged by so few), and whether the cycle collector ran.
_REPORT_TAIL = ("_re = sys.modules.get('re')\n"
                "_patterns = sorted(repr(key[:3]) for key in getattr(_re, '_cache', {}))\n"
                "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n"
                "sys.stderr.write('PATTERNS ' + repr(_patterns) + '\\n')\n"
                "sys.stderr.write('GC ' + str(__import__('gc').isenabled()) + '\\n')\n")
_REPORT = "from cnicore._plugin_main import main\nstatus = main()\n" + _REPORT_TAIL + "sys.exit(status)\n"
# The floor: the same script and interpreter, started, doing nothing.
_FLOOR = _REPORT_TAIL


class Run(NamedTuple):
    """What one reporting run of an installed script left behind (see :func:`reporting_run`)."""

    modules: set[str]
    patterns: list[str]
    gc_enabled: bool
    stdout: bytes


def _report(stderr: bytes) -> tuple[set[str], list[str], bool]:
    tail = stderr.decode().rsplit("\nMODULES ", 1)[1].splitlines()
    assert tail[1].startswith("PATTERNS ") and tail[2].startswith("GC "), tail
    return set(tail[0].split()), ast.literal_eval(tail[1][len("PATTERNS "):]), tail[2] == "GC True"


def imported(plugin: Path, command: str, config: bytes, env: dict[str, str], tmp_path: Path, *,
             status: int = 0, inside: str | None = None) -> set[str]:
    """The modules ``plugin`` has loaded when it is done (see :func:`reporting_run`)."""
    return reporting_run(plugin, command, config, env, tmp_path, status=status, inside=inside)[0]


def reporting_run(plugin: Path, command: str, config: bytes, env: dict[str, str], tmp_path: Path, *,
                  status: int = 0, inside: str | None = None) -> tuple[set[str], bytes]:
    """The modules ``plugin`` has loaded when it is done (its ``sys.modules``), and what it printed on stdout."""
    run = full_run(plugin, command, config, env, tmp_path, status=status, inside=inside)
    return run.modules, run.stdout


def _reporting_copy(plugin: Path, tmp_path: Path, tail: str) -> Path:
    script = plugin.read_text()
    assert script.endswith(_EXIT)
    copy = tmp_path / "reporting" / plugin.name
    copy.parent.mkdir(exist_ok=True)
    copy.write_text(script[: -len(_EXIT)] + tail)
    copy.chmod(0o755)
    return copy


def _python_part(script: Path) -> list[str]:
    """The command line the script's shell part runs for any command it does not answer itself."""
    (line,) = [line for line in script.read_text().splitlines() if line.startswith("exec ")]
    words = shlex.split(line)
    assert words[-3:] == ["--", "$0", "$@"], words
    return [*words[1:-2], str(script)]


def full_run(plugin: Path, command: str, config: bytes, env: dict[str, str], tmp_path: Path, *,
             status: int = 0, inside: str | None = None, python_part: bool = False) -> Run:
    """What ``plugin`` has loaded, compiled and printed when it is done, executed as installed.

    The copy that runs is the installed script, same name and shebang, with lines
    added at the end that report ``sys.modules``, re's cache and the cycle
    collector's state on stderr. ``status`` is the exit status the run must end
    with; ``inside`` names a namespace (``ip netns``) to run it in. A VERSION the
    shell part answers starts no interpreter: no module at all. ``python_part``
    runs the Python part directly, as the shell part does for other commands
    (how the plugin itself answers VERSION).
    """
    copy = _reporting_copy(plugin, tmp_path, _REPORT)
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command, "CNI_CONTAINERID": "c1",
            "CNI_IFNAME": "eth0", "CNI_PATH": str(plugin.parent), **env}
    argv = _python_part(copy) if python_part else [str(copy)]
    argv = argv if inside is None else ["ip", "netns", "exec", inside, *argv]
    done = subprocess.run(argv, input=config, env=full, capture_output=True, check=False)
    assert done.returncode == status, (done.stdout, done.stderr)
    if not python_part and command == "VERSION" and version_answer(plugin.name) is not None:
        # Answered by the shell part: the plugin's own answer, and no Python started.
        assert (done.stdout.decode(), done.stderr) == (version_answer(plugin.name), b"")
        return Run(set(), [], False, done.stdout)
    modules, patterns, gc_enabled = _report(done.stderr)
    assert "cnicore._plugin_main" in modules
    return Run(modules, patterns, gc_enabled, done.stdout)


def floor_run(plugin: Path, tmp_path: Path) -> Run:
    """The floor on the same script and interpreter: its start, and nothing of cnicore."""
    copy = _reporting_copy(plugin, tmp_path, _FLOOR)
    done = subprocess.run([str(copy)], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, capture_output=True,
                          check=True)
    modules, patterns, gc_enabled = _report(done.stderr)
    assert not [m for m in modules if m.startswith("cnicore")]
    return Run(modules, patterns, gc_enabled, done.stdout)


# All the skeleton needs: VERSION and every refusal of the environment or of stdin load this and nothing of
# cnicore beyond it (no plugin module, no backend), and none of attrs, netaddr or typing.
SKELETON = frozenset({"cnicore", "cnicore._errors", "cnicore._gofmt", "cnicore._json", "cnicore._lazy",
                      "cnicore._plugin_main", "cnicore.plugins", "cnicore.plugins._skel", "cnicore.spec",
                      "cnicore.spec._environ", "cnicore.spec._validate", "cnicore.spec._version"})
NOT_FOR_SKELETON = ("attr", "attrs", "netaddr", "typing", "socket", "threading", "subprocess", "cnicore.backends",
                    "cnicore.links")


def _hits(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_entry_point_runs_isolated_without_site(plugin_bin: Path, tmp_path: Path) -> None:
    # (A command that runs the Python part: the skeleton's refusal of a configuration without a name.)
    modules = imported(plugin_bin / "host-local", "ADD", b'{"cniVersion": "1.0.0"}', {}, tmp_path, status=1)
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


# Every module an exec'd host-local may load beyond the floor (the same interpreter and script start: see
# floor_run), whatever the command, on the file store. Exact names: a module joining the
# exec path (a costlier standard module, a new cnicore module, a C extension) must be added here knowingly.
HOST_LOCAL_BUDGET = frozenset({
    # the standard library: os and what it brings, the reference's file layout and lock
    "__future__", "_stat", "errno", "fcntl", "genericpath", "os", "os.path", "posixpath", "stat",
    # JSON in and out: the interpreter's C accelerator alone (see cnicore._json)
    "_json",
    # the file store's persisted index (see cnicore.stores._indexfile); array registers with collections.abc
    "_bisect", "_struct", "array", "bisect", "collections.abc", "struct", "zlib",
    "_collections", "_collections_abc", "_operator", "collections", "itertools", "keyword", "operator", "reprlib",
    # a store without a watch compares the directory's entries before an owner lookup, reading each IPv4 file
    # name with inet_pton (cnicore.stores._filecore._key_from_name), loaded on the first name it reads
    "_socket",
    # cnicore: the skeleton, the engine, the file store's core (and the staleness rule of temporary files), the
    # one result writer
    "cnicore", "cnicore._atomicfile", "cnicore._errors", "cnicore._gofmt", "cnicore._json", "cnicore._lazy",
    "cnicore._plugin_main",
    "cnicore._readfile", "cnicore.ipam", "cnicore.ipam._engine", "cnicore.plugins", "cnicore.plugins._hostlocal",
    "cnicore.plugins._skel", "cnicore.spec", "cnicore.spec._environ", "cnicore.spec._goint",
    "cnicore.spec._resultobj", "cnicore.spec._validate", "cnicore.spec._version", "cnicore.stores",
    "cnicore.stores._filecore", "cnicore.stores._indexfile", "cnicore.stores._keyindex",
    # the watch's event masks, which a store announcing its own events names (ctypes only when a watch is made)
    "cnicore.stores._inotify",
})


def _within_exact_budget(run: Run, floor: Run, budget: frozenset[str], what: str) -> None:
    assert sorted(run.modules - floor.modules - budget) == [], what
    # No regular expression compiled (re is not even loaded); the cycle collector never runs (see
    # cnicore.plugins._install).
    assert run.patterns == [], what
    assert not run.gc_enabled, what


@pytest.mark.parametrize("version", ["0.4.0", "1.1.0"])
def test_exec_host_local_loads_only_its_budget(plugin_bin: Path, tmp_path: Path, version: str) -> None:
    floor = floor_run(plugin_bin / "host-local", tmp_path)
    config = _host_local_config(tmp_path, version)
    seen: set[str] = set()
    for command in ("ADD", "CHECK", "DEL", "GC", "STATUS", "VERSION"):
        if command in ("GC", "STATUS") and version != "1.1.0":
            continue  # the version does not allow them
        run = full_run(plugin_bin / "host-local", command, config, _HOST_LOCAL_ENV, tmp_path)
        _within_exact_budget(run, floor, HOST_LOCAL_BUDGET, command)
        seen |= run.modules
    # The budget holds what a run loads (a name left over once a module leaves the path goes too).
    assert HOST_LOCAL_BUDGET - seen == set()


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
    floor = floor_run(plugin_bin / "host-local", tmp_path)
    run = full_run(plugin_bin / "host-local", "ADD", text, {**_HOST_LOCAL_ENV, **env, "CNI_CONTAINERID": "c1"},
                   tmp_path)
    _within_exact_budget(run, floor, HOST_LOCAL_BUDGET | {"cnicore.spec._args"}, "ADD")


# (command, stdin, environment changes, exit status): what the skeleton answers on its own.
_SKELETON_ONLY = [
    ("VERSION", b"", {}, 0),
    ("VERSION", b"", {"CNI_CONTAINERID": "", "CNI_IFNAME": ""}, 0),  # VERSION needs no other variable
    ("ADD", b'{"cniVersion": "1.0.0", "name": "n"}', {"CNI_CONTAINERID": ""}, 1),  # missing variable
    ("ADD", b'{"cniVersion": "1.0.0", "name": "n"}', {"CNI_CONTAINERID": "bad id!"}, 1),  # container ID rules
    ("FROB", b'{"cniVersion": "1.0.0", "name": "n"}', {}, 1),  # unknown command
    ("ADD", b"{not json", {}, 1),  # stdin that does not decode
    ("ADD", b"[]", {}, 1),  # stdin that is no object
    ("ADD", b'{"cniVersion": "1.0.0"}', {}, 1),  # no network name
    ("ADD", b'{"cniVersion": "9.9.9", "name": "n"}', {}, 1),  # a version the plugin does not support
    ("STATUS", b'{"cniVersion": "0.4.0", "name": "n"}', {}, 1),  # a command the version does not allow
]


@pytest.mark.parametrize("plugin", ["loopback", "bridge", "host-local", "portmap", "firewall", "tuning"])
def test_skeleton_answers_before_any_plugin_module_loads(plugin_bin: Path, tmp_path: Path, plugin: str) -> None:
    for command, stdin, env, status in _SKELETON_ONLY:
        full = {"CNI_NETNS": "/var/run/netns/cnt-never", **env}
        modules = imported(plugin_bin / plugin, command, stdin, full, tmp_path, status=status)
        loaded = {m for m in modules if m == "cnicore" or m.startswith("cnicore.")}
        assert loaded <= SKELETON, (command, stdin, sorted(loaded - SKELETON))
        assert _hits(modules, NOT_FOR_SKELETON) == [], (command, stdin)


def test_skeleton_refuses_oversized_stdin_before_any_plugin_module_loads(plugin_bin: Path, tmp_path: Path) -> None:
    big = b'{"cniVersion": "1.0.0", "name": "n", "pad": "' + b"x" * (16 * 1024 * 1024) + b'"}'
    modules = imported(plugin_bin / "bridge", "ADD", big, {"CNI_NETNS": "/var/run/netns/cnt-never"}, tmp_path,
                       status=1)
    assert {m for m in modules if m.startswith("cnicore.")} <= SKELETON


@pytest.mark.parametrize("plugin", ["loopback", "bridge", "host-local", "portmap", "firewall", "tuning"])
def test_version_loads_neither_json_nor_the_validators(plugin_bin: Path, tmp_path: Path, plugin: str) -> None:
    # Installed, the shell answers (full_run checks the answer): nothing is loaded, since nothing starts.
    assert imported(plugin_bin / plugin, "VERSION", b"", {}, tmp_path) == set()
    # The plugin's own answer (main(), and the Python part run directly) is the skeleton's, before anything else.
    run = full_run(plugin_bin / plugin, "VERSION", b"", {}, tmp_path, python_part=True)
    assert run.stdout.decode() == version_answer(plugin)
    assert _hits(run.modules, ("json", "re", "cnicore._json", "cnicore.spec._environ", "cnicore.spec._validate",
                               "cnicore.plugins._skel")) == ["cnicore.plugins._skel"]


def _bridge_config(tmp_path: Path, **extra: object) -> bytes:
    # The seed's bridge network: host-local with a default route, a gateway on the bridge, masquerading.
    return json.dumps({"cniVersion": "1.1.0", "name": "seed-net", "type": "bridge", "bridge": "cnt-bim0",
                       "isGateway": True, "ipMasq": True,
                       "ipam": {"type": "host-local", "subnet": "10.77.0.0/24", "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(tmp_path / "ipam")}, **extra}).encode()


# Never on any run of the exec'd bridge: other backends, the runtime, the CLI, the etcd store, package metadata.
NEVER_FOR_BRIDGE = ("pyroute2", "importlib.metadata", "cnicore.backends._pyroute2", "cnicore.backends._iproute2",
                    "cnicore.backends._fake", "cnicore.backends._fakefw", "cnicore.runtime", "cnicore.cli",
                    "cnicore.stores._etcd", "cnicore.testing", "hypothesis", "cnicore.plugins._loopback",
                    # Finding its IPAM plugin on CNI_PATH needs the lookup alone, not the configuration parser.
                    "cnicore.config._parse", "cnicore.config._directory", "cnicore.config._request",
                    "cnicore.config._model")
# Commands that touch no namespace build no link backend. With CAP_NET_ADMIN and no backend named, the exec'd bridge
# runs the engine on the plain link port: the netlink backend's own operations, on the one rtnetlink loop and setns
# helper.
LINK_BACKEND = ("cnicore.backends._linkops", "cnicore.backends._rtnl", "cnicore.backends._kernel",
                "cnicore.backends._setns")
# The exec'd bridge's budget on the default path (ADD and DEL of the seed network, 0.4.0 or 1.1.0): none of the typed
# world (attrs values, netaddr addresses, the link port, the result types, the typed plugin, its IPAM delegate and
# the typed backends), and no typing.
NOT_FOR_EXEC_BRIDGE = ("attr", "attrs", "netaddr", "typing", "cnicore.links", "cnicore.spec._result",
                       "cnicore.spec._convert", "cnicore.plugins._bridge", "cnicore.plugins._api",
                       "cnicore.plugins._delegate", "cnicore.backends._netlink", "cnicore.backends._nsenter",
                       "cnicore.backends._common", "cnicore.backends._iptables", "cnicore.backends._nftables",
                       # JSON through the C accelerator alone, addresses through Go's parser on integers,
                       # setns through _ctypes alone
                       "json", "re", "enum", "ipaddress", "ctypes", "contextlib")
# Nor beyond the floor (an editable install's entry script loads it itself): modules are imported by name without it.
NOT_FOR_EXEC_BRIDGE_BEYOND_THE_FLOOR = ("importlib", "warnings")


def test_exec_bridge_modules_per_command(plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    # Executed as a runtime executes it, in a namespace playing the host (the bridge and its NAT rules go there).
    host, container = netns.add("host-bim"), netns.add("bim")
    config = _bridge_config(tmp_path)
    env = {"CNI_NETNS": f"/var/run/netns/{container}"}
    added, out = reporting_run(plugin_bin / "bridge", "ADD", config, env, tmp_path, inside=host)
    checked = imported(plugin_bin / "bridge", "CHECK",
                       json.dumps({**json.loads(config), "prevResult": json.loads(out)}).encode(), env, tmp_path,
                       inside=host)
    runs = {"ADD": added, "CHECK": checked}
    for command in ("STATUS", "GC", "DEL", "VERSION"):
        runs[command] = imported(plugin_bin / "bridge", command, config, env, tmp_path, inside=host)
    runs["DEL without a namespace"] = imported(plugin_bin / "bridge", "DEL", config, {"CNI_NETNS": ""}, tmp_path,
                                               inside=host)
    for command, modules in runs.items():
        assert _hits(modules, NEVER_FOR_BRIDGE) == [], command
    floor = floor_run(plugin_bin / "bridge", tmp_path)
    for command in ("ADD", "CHECK", "DEL", "STATUS", "GC", "DEL without a namespace", "VERSION"):
        assert _hits(runs[command], NOT_FOR_EXEC_BRIDGE) == [], command
        assert _hits(runs[command] - floor.modules, NOT_FOR_EXEC_BRIDGE_BEYOND_THE_FLOOR) == [], command
    # CHECK reads its (1.x) prevResult on plain values.
    assert "cnicore.spec._resultread" in runs["CHECK"]
    for command in ("ADD", "CHECK", "DEL"):
        # The auto backend with CAP_NET_ADMIN: netlink, on the one rtnetlink loop and setns helper.
        assert _hits(runs[command], LINK_BACKEND) == sorted(LINK_BACKEND), command
    for command in ("STATUS", "GC", "DEL without a namespace"):
        assert _hits(runs[command], (*LINK_BACKEND, "cnicore.backends._iptmasq", "subprocess")) == [], command
    assert {m for m in runs["VERSION"] if m.startswith("cnicore")} <= SKELETON
    assert _hits(runs["VERSION"], (*NOT_FOR_SKELETON, "json")) == []


def test_exec_bridge_0_4_0_add_del_within_the_budget(plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    # podman's configurations say 0.4.0: the result is written for it by the one result writer, without the types.
    host, container = netns.add("host-bim4"), netns.add("bim4")
    config = json.loads(_bridge_config(tmp_path))
    config = json.dumps({**config, "cniVersion": "0.4.0", "bridge": "cnt-bim4"}).encode()
    env = {"CNI_NETNS": f"/var/run/netns/{container}"}
    added, out = reporting_run(plugin_bin / "bridge", "ADD", config, env, tmp_path, inside=host)
    result = json.loads(out)
    assert result["cniVersion"] == "0.4.0" and [ip["version"] for ip in result["ips"]] == ["4"]
    deleted = imported(plugin_bin / "bridge", "DEL", config, env, tmp_path, inside=host)
    for command, modules in (("ADD", added), ("DEL", deleted)):
        assert _hits(modules, (*NEVER_FOR_BRIDGE, *NOT_FOR_EXEC_BRIDGE)) == [], command
        assert _hits(modules, LINK_BACKEND) == sorted(LINK_BACKEND), command


@pytest.mark.parametrize("command", ["GC", "STATUS", "VERSION"])
def test_exec_loopback_other_commands(plugin_bin: Path, container: str, tmp_path: Path, command: str) -> None:
    config = json.dumps({"cniVersion": "1.1.0", "name": "lo-net", "type": "loopback"}).encode()
    modules = imported(plugin_bin / "loopback", command, config, {"CNI_NETNS": container}, tmp_path)
    assert _hits(modules, NEVER + NOT_FOR_LOOPBACK) == [], command
    if command == "VERSION":
        assert {m for m in modules if m.startswith("cnicore")} <= SKELETON


def test_exec_firewall_version_gate_before_its_module_loads(plugin_bin: Path, tmp_path: Path) -> None:
    # firewall alone refuses versions before 0.4.0 (as upstream's): the skeleton knows it without the module.
    out = reporting_run(plugin_bin / "firewall", "VERSION", b"", {}, tmp_path)[1]
    assert json.loads(out)["supportedVersions"] == ["0.4.0", "1.0.0", "1.1.0"]
    modules, out = reporting_run(plugin_bin / "firewall", "ADD", b'{"cniVersion": "0.3.1", "name": "n"}',
                                 {"CNI_NETNS": "/var/run/netns/cnt-never"}, tmp_path, status=1)
    assert json.loads(out)["code"] == 1
    assert {m for m in modules if m.startswith("cnicore")} <= SKELETON


# ----------------------------------------------------------------------------- the meta plugins' budgets

# Never on any run of an exec'd meta plugin: the other plugins, other backends, the runtime, the CLI, the stores
# and IPAM, the configuration parser, package metadata.
NEVER_FOR_META = ("pyroute2", "importlib.metadata", "hypothesis", "cnicore.backends._pyroute2",
                  "cnicore.backends._iproute2", "cnicore.backends._fake", "cnicore.backends._fakefw",
                  "cnicore.runtime", "cnicore.cli", "cnicore.stores", "cnicore.ipam", "cnicore.config",
                  "cnicore.testing", "cnicore.plugins._bridge", "cnicore.plugins._hostlocal",
                  "cnicore.plugins._loopback", "cnicore.plugins._mesos_portmapper", "cnicore.plugins._delegate")
# The meta plugins whose ADD, DEL and CHECK run on plain values when executed, and what they never load: the typed
# value libraries, ``typing``, the typed link world and result types, the typed firewalls and link backends.
LEAN_META = ("portmap", "firewall")
NOT_FOR_LEAN_META = ("attr", "attrs", "netaddr", "typing", "cnicore.links", "cnicore.spec._result",
                     "cnicore.spec._convert", "cnicore.spec._goaddr", "cnicore.backends._common",
                     "cnicore.backends._iptables", "cnicore.backends._nftables", "cnicore.backends._netlink",
                     "cnicore.backends._rtnl", "cnicore.plugins._api",
                     # JSON through the C accelerator alone, addresses through Go's parser on integers
                     "json", "re", "enum", "ipaddress", "ctypes", "contextlib")
# Executed tuning: the same budget, but it speaks rtnetlink itself (the netlink backend's plain operations).
LEAN_TUNING_NEVER = tuple(module for module in NOT_FOR_LEAN_META if module != "cnicore.backends._rtnl")
_META_MODULE = {"portmap": "cnicore.plugins._portmap", "firewall": "cnicore.plugins._firewall",
                "tuning": "cnicore.plugins._tuning"}


def _chain_config(tmp_path: Path) -> dict[str, Any]:
    # podman's default chain, as a conflist's plugins: bridge, portmap, firewall, tuning.
    bridge = json.loads(_bridge_config(tmp_path))
    return {"bridge": bridge,
            "portmap": {"type": "portmap", "capabilities": {"portMappings": True},
                        "runtimeConfig": {"portMappings": [{"hostPort": 18081, "containerPort": 80,
                                                            "protocol": "tcp"}]}},
            "firewall": {"type": "firewall"},
            "tuning": {"type": "tuning", "mtu": 1400, "mac": "c2:b0:57:49:47:f1"}}


def test_exec_meta_plugins_modules_per_command(plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    # The default chain executed as libcni executes it, in a namespace playing the host: every command of each
    # meta plugin within its budget; GC, STATUS and VERSION load nothing of the plugin.
    host, container = netns.add("host-mim"), netns.add("mim")
    env = {"CNI_NETNS": f"/var/run/netns/{container}"}
    configs = _chain_config(tmp_path)
    base = {"cniVersion": "1.1.0", "name": "seed-net"}
    _modules, out = reporting_run(plugin_bin / "bridge", "ADD", json.dumps(configs["bridge"]).encode(), env, tmp_path,
                                  inside=host)
    prev = json.loads(out)
    runs: dict[tuple[str, str], set[str]] = {}
    for name in ("portmap", "firewall", "tuning"):
        conf = json.dumps({**base, **configs[name], "prevResult": prev}).encode()
        runs[name, "ADD"], out = reporting_run(plugin_bin / name, "ADD", conf, env, tmp_path, inside=host)
        prev = json.loads(out)
    for name in ("portmap", "firewall", "tuning"):
        conf = json.dumps({**base, **configs[name], "prevResult": prev}).encode()
        runs[name, "CHECK"] = imported(plugin_bin / name, "CHECK", conf, env, tmp_path, inside=host)
        plain = json.dumps({**base, **configs[name]}).encode()
        for command in ("GC", "STATUS", "VERSION"):
            runs[name, command] = imported(plugin_bin / name, command, plain, env, tmp_path, inside=host)
    for name in ("tuning", "firewall", "portmap"):
        conf = json.dumps({**base, **configs[name], "prevResult": prev}).encode()
        runs[name, "DEL"] = imported(plugin_bin / name, "DEL", conf, env, tmp_path, inside=host)
        runs[name, "DEL without a namespace"] = imported(plugin_bin / name, "DEL", conf, {"CNI_NETNS": ""},
                                                         tmp_path, inside=host)
    imported(plugin_bin / "bridge", "DEL", json.dumps(configs["bridge"]).encode(), env, tmp_path, inside=host)
    for (name, command), modules in runs.items():
        assert _hits(modules, NEVER_FOR_META) == [], (name, command)
        others = [module for plugin, module in _META_MODULE.items() if plugin != name]
        assert _hits(modules, tuple(others)) == [], (name, command)
        if command in ("GC", "STATUS", "VERSION"):
            # GC and STATUS do nothing: the meta handler (no plugin module) answers them.
            allowed = SKELETON | ({"cnicore.plugins._meta"} if command != "VERSION" else set())
            assert {m for m in modules if m.startswith("cnicore")} <= allowed, (name, command)
            assert _hits(modules, NOT_FOR_SKELETON) == [], (name, command)
        else:
            assert _META_MODULE[name] in modules, (name, command)
    # Rules go through iptables (a process), link settings through the netlink backend: no other backend.
    for name in LEAN_META:
        for command in ("ADD", "CHECK", "DEL", "DEL without a namespace"):
            # The lean plugins: prevResult, rules and settings on plain values, through the plain tool runners.
            assert _hits(runs[name, command], NOT_FOR_LEAN_META) == [], (name, command)
        for command in ("ADD", "CHECK", "DEL"):
            assert "cnicore.backends._tools" in runs[name, command], (name, command)
            assert "cnicore.spec._resultread" in runs[name, command], (name, command)
    for command in ("ADD", "CHECK", "DEL", "DEL without a namespace"):
        # Tuning: prevResult (with the new MAC) and link settings on plain values, on the plain netlink port; no
        # rule planner (it runs no rules) and no collections (Mapping comes from the module os loads).
        assert _hits(runs["tuning", command], (*LEAN_TUNING_NEVER, "cnicore._ruleplan", "collections")) == [], command
    for command in ("ADD", "CHECK", "DEL"):
        assert "cnicore.backends._linkops" in runs["tuning", command], command
    assert "cnicore.spec._resultread" in runs["tuning", "ADD"] and "cnicore.spec._resultread" in runs["tuning", "CHECK"]
    assert [i["mac"] for i in prev["interfaces"] if "sandbox" in i] == ["c2:b0:57:49:47:f1"]
    # Without a namespace, tuning's DEL has nothing to restore: no backend at all.
    assert _hits(runs["tuning", "DEL without a namespace"], ("cnicore.backends", "attrs", "netaddr")) == []


# Every module an exec'd tuning's ADD may load beyond the floor when its configuration asks for nothing to tune: it
# checks that the namespace exists (the reference enters it) and prints prevResult, and loads none of the rtnetlink
# operations (cnicore.backends._linkops, ._rtnl), the sysctl helpers (._kernel), _socket or struct. Exact names.
TUNING_NOTHING_TO_TUNE_BUDGET = frozenset({
    "__future__", "_collections_abc", "_json", "_stat", "genericpath", "os", "os.path", "posixpath", "stat",
    "cnicore", "cnicore._errors", "cnicore._gofmt", "cnicore._json", "cnicore._lazy", "cnicore._plugin_main",
    "cnicore.plugins", "cnicore.plugins._meta", "cnicore.plugins._netconf", "cnicore.plugins._skel",
    "cnicore.plugins._tuning", "cnicore.spec", "cnicore.spec._args", "cnicore.spec._environ", "cnicore.spec._goint",
    "cnicore.spec._resultobj", "cnicore.spec._resultread", "cnicore.spec._validate", "cnicore.spec._version",
    # the port's choice (CAP_NET_ADMIN and CNICORE_BACKEND) and the port, which opens the namespace and nothing more
    "cnicore.backends", "cnicore.backends._select", "cnicore.backends._setns", "cnicore.backends._tuningport",
})


def test_exec_tuning_with_nothing_to_tune_only_checks_the_namespace(plugin_bin: Path, netns: Namespaces,
                                                                    tmp_path: Path) -> None:
    container = netns.add("nothing")
    prev = {"cniVersion": "1.1.0", "interfaces": [{"name": "eth0", "sandbox": f"/var/run/netns/{container}"}],
            "ips": [{"address": "10.1.0.2/24", "interface": 0}]}
    conf = json.dumps({"cniVersion": "1.1.0", "name": "t", "type": "tuning", "dataDir": str(tmp_path / "tuning"),
                       "prevResult": prev}).encode()
    floor = floor_run(plugin_bin / "tuning", tmp_path)
    run = full_run(plugin_bin / "tuning", "ADD", conf, {"CNI_NETNS": f"/var/run/netns/{container}"}, tmp_path)
    assert json.loads(run.stdout) == prev
    _within_exact_budget(run, floor, TUNING_NOTHING_TO_TUNE_BUDGET, "ADD")
    assert TUNING_NOTHING_TO_TUNE_BUDGET - run.modules == set()
    # The namespace is still checked (tests/plugins/test_tuning.py holds the message against the reference's).
    gone = full_run(plugin_bin / "tuning", "ADD", conf, {"CNI_NETNS": f"/var/run/netns/{container}-gone"}, tmp_path,
                    status=1)
    assert json.loads(gone.stdout)["code"] == 999
    assert _hits(gone.modules, ("cnicore.backends._linkops", "cnicore.backends._rtnl", "struct")) == []


# (stdin, environment changes): what the Mesos port mapper refuses before its module loads, with its code.
_MESOS_FRONT = [
    (b'{"name": "n"}', {"CNI_COMMAND": None}, 101),
    (b'{"name": "n"}', {"CNI_CONTAINERID": None}, 101),
    (b'{"name": "n"}', {"CNI_PATH": None}, 101),
    (b'{"name": "n"}', {"CNI_COMMAND": "ADD", "CNI_NETNS": None}, 101),
    (b'{"name": "n"}', {"CNI_COMMAND": "VERSION", "CNI_IFNAME": None}, 101),
]


def test_mesos_port_mapper_refuses_its_environment_before_its_module_loads(plugin_bin: Path,
                                                                           tmp_path: Path) -> None:
    base = {"CNI_COMMAND": "ADD", "CNI_NETNS": "/var/run/netns/cnt-never", "CNI_CONTAINERID": "c1",
            "CNI_IFNAME": "eth0", "CNI_PATH": str(plugin_bin)}
    for stdin, changes, code in _MESOS_FRONT:
        env = {k: v for k, v in {**base, **changes}.items() if v is not None}
        modules, out = _mesos_run(plugin_bin, stdin, env, tmp_path)
        assert json.loads(out) == {"cniVersion": "0.3.0", "code": code,
                                   "msg": json.loads(out)["msg"]}, (changes, out)
        assert "Unable to find environment variable" in json.loads(out)["msg"]
        loaded = {m for m in modules if m.startswith("cnicore")}
        assert loaded <= SKELETON_MESOS, (changes, sorted(loaded - SKELETON_MESOS))
        assert _hits(modules, NOT_FOR_SKELETON) == []
    # VERSION with everything Mesos needs: its configuration is read first (Mesos's order), then code 104;
    # the plugin module loads, but no rules, no delegate, no result types.
    config = json.dumps({"name": "n", "chain": "CNT-MESOS", "delegate": {"type": "bridge"}}).encode()
    modules, out = _mesos_run(plugin_bin, config, {**base, "CNI_COMMAND": "VERSION"}, tmp_path)
    assert json.loads(out)["code"] == 104
    assert "cnicore.plugins._mesos_portmapper" in modules
    assert _hits(modules, (*NOT_FOR_SKELETON, "cnicore.spec._result", "cnicore._invoke")) == []


# The Mesos front in place of the CNI skeleton.
SKELETON_MESOS = (SKELETON - {"cnicore.plugins._skel", "cnicore.spec._environ", "cnicore.spec._validate"}
                  ) | {"cnicore.plugins._mesos_skel"}


def _mesos_run(plugin_bin: Path, stdin: bytes, env: dict[str, str], tmp_path: Path) -> tuple[set[str], bytes]:
    # As reporting_run, without its CNI_* defaults (the refusals are about missing ones).
    script = (plugin_bin / "mesos-cni-port-mapper").read_text()
    copy = tmp_path / "reporting" / "mesos-cni-port-mapper"
    copy.parent.mkdir(exist_ok=True)
    copy.write_text(script[: -len(_EXIT)] + _REPORT)
    copy.chmod(0o755)
    done = subprocess.run([str(copy)], input=stdin, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                          capture_output=True, check=False)
    assert done.returncode == 1, (done.stdout, done.stderr)
    return set(done.stderr.decode().rsplit("MODULES ", 1)[1].split()), done.stdout


def test_exec_mesos_port_mapper_add_del_stay_lean(plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    # ADD and DEL with our bridge as the delegate, executed in a namespace playing the host: the delegate's result
    # read and the DNAT rules applied on plain values, through the plain iptables runner.
    host, container = netns.add("host-mpm"), netns.add("mpm")
    config = json.dumps({
        "name": "mesos-cnt", "type": "mesos-cni-port-mapper", "chain": "CNT-MPM", "excludeDevices": ["cnt-mpmbr0"],
        "delegate": {"type": "bridge", "bridge": "cnt-mpmbr0", "isGateway": True,
                     "ipam": {"type": "host-local", "subnet": "10.98.9.0/24", "dataDir": str(tmp_path / "ipam")}},
        "args": {"org.apache.mesos": {"network_info": {"name": "mesos-cnt", "port_mappings": [
            {"host_port": 8091, "container_port": 80}]}}}}).encode()
    copy = _reporting_copy(plugin_bin / "mesos-cni-port-mapper", tmp_path, _REPORT)
    runs: dict[str, set[str]] = {}
    for command, namespace in (("ADD", f"/var/run/netns/{container}"), ("DEL", "")):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command, "CNI_CONTAINERID": "cnt-t1",
               "CNI_IFNAME": "eth0", "CNI_NETNS": namespace, "CNI_PATH": str(plugin_bin)}
        done = subprocess.run(["ip", "netns", "exec", host, str(copy)], input=config, env=env, capture_output=True,
                              check=False)
        assert done.returncode == 0, (done.stdout, done.stderr)
        runs[command] = _report(done.stderr)[0]
    rules = subprocess.run(["ip", "netns", "exec", host, "iptables-save", "-t", "nat"], capture_output=True,
                           text=True, check=True).stdout
    assert "--dport 8091" not in rules and ":CNT-MPM" in rules  # ADD made the chain and rule; DEL took the rule
    # The Mesos port mapper reads its configuration with the json package: its refusals quote that package's own
    # words (Mesos's agent shows them), so the package is in its budget.
    mesos_never = tuple(module for module in NOT_FOR_LEAN_META if module not in ("json", "re", "enum", "contextlib"))
    for command, modules in runs.items():
        assert _hits(modules, mesos_never) == [], command
        assert "cnicore.backends._tools" in modules, command
    assert "cnicore.spec._resultread" in runs["ADD"]
