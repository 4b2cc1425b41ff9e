"""The exec'd host-local against the in-process plugin, side by side.

Both run the one host-local engine (cnicore.ipam._engine); what differs is the
edge: the exec handler (cnicore.plugins._hostlocal.HostLocalExecHandler) calls it
on the file store's core and writes its result without the result types, the
plugin goes through the typed API (HostLocalIPAM, FileStore, the result types).
Here generated configurations (valid and invalid) and generated command
sequences over generated starting stores run through the handler in one data
directory and through HostLocalPlugin in another: every step must print the
same bytes with the same exit status, and the directories must end up with the
same files holding the same bytes. The persisted index the handler leaves must
describe the directory as a fresh scan reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from plugin_helpers import run_host_local
from support import examples

from cnicore import CNIError
from cnicore.ipam._engine import decode_config
from cnicore.plugins._hostlocal import result_text
from cnicore.spec import ALL_VERSIONS
from cnicore.stores import FileStore

VERSIONS = ("", *ALL_VERSIONS)
NETWORK = "hlq-net"


def _environ(command: str, container: str, ifname: str, args: str) -> dict[str, str]:
    environ = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": "/var/run/netns/x",
               "CNI_IFNAME": ifname, "CNI_PATH": "/opt/cni/bin"}
    if args:
        environ["CNI_ARGS"] = args
    return environ


_run = run_host_local


def _files(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# ----------------------------------------------------------------------------- strategies

_BASES = {4: ("10.9.0.0", "10.9.0.16", "192.168.7.0"), 6: ("fd00:9::", "fd00:9::10", "2001:db8::")}


@st.composite
def _range(draw: st.DrawFn, family: int, base: str | None = None) -> dict[str, Any]:
    if base is None:
        base = draw(st.sampled_from(_BASES[family]))
    if family == 4:
        prefix = draw(st.sampled_from([28, 29, 30]))
        host, _, last_octet = base.rpartition(".")
        size = 2 ** (32 - prefix)

        def addr(i: int) -> str:
            return f"{host}.{int(last_octet) + i}"
    else:
        prefix = draw(st.sampled_from([124, 125, 126]))
        size = 2 ** (128 - prefix)
        head, _, tail = base.rpartition(":")

        def addr(i: int) -> str:
            return f"{head}:{int(tail or '0', 16) + i:x}"
    r: dict[str, Any] = {draw(st.sampled_from(["subnet", "subnet", "Subnet"])): f"{base}/{prefix}"}
    # Mostly usable bounds; sometimes the network or broadcast address, a start after the end, one outside.
    inside = st.integers(1, size - 2) if draw(st.integers(0, 5)) else st.integers(0, size)
    if draw(st.integers(0, 3)) == 0:
        r["rangeStart"] = addr(draw(inside))
    if draw(st.integers(0, 3)) == 0:
        r["rangeEnd"] = addr(draw(inside))
    if draw(st.integers(0, 3)) == 0:
        r["gateway"] = draw(st.sampled_from([addr(1), addr(2), addr(size - 2), "10.99.0.1", "fd00:99::1", ""]))
    if draw(st.integers(0, 25)) == 0:
        r["subnet"] = draw(st.sampled_from(["10.9.0.1/29", "10.9.0.0/31", "bogus", "::ffff:10.9.0.0/125",
                                            "10.9.0.0/029", None]))
    return r


@st.composite
def _range_sets(draw: st.DrawFn, max_sets: int) -> list[list[dict[str, Any]]]:
    """Range sets over distinct subnets (mostly: a few overlap, or mix families)."""
    pool = [(f, b) for f in (4, 6) for b in _BASES[f]]
    picks = draw(st.lists(st.sampled_from(pool), min_size=1 if draw(st.integers(0, 8)) else 0,
                          max_size=max_sets + 2, unique=True))
    sets: list[list[dict[str, Any]]] = []
    while picks and len(sets) < max_sets:
        family, base = picks.pop(0)
        ranges = [draw(_range(family, base))]
        if picks and picks[0][0] == family and draw(st.booleans()):
            ranges.append(draw(_range(family, picks.pop(0)[1])))
        if draw(st.integers(0, 25)) == 0:
            ranges.append(draw(_range(10 - family)))  # mixed families
        sets.append(ranges)
    if sets and draw(st.integers(0, 25)) == 0:
        sets.append(sets[0])  # overlapping sets
    return sets


_NUMBER = st.none() | st.integers(-5, 1500) | st.integers(-5, 1500) | st.sampled_from([2**53, 2**53 + 1, True])


@st.composite
def _route(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.integers(0, 10)) == 0:
        return None
    route: dict[str, Any] = {}
    if draw(st.integers(0, 8)):
        route["dst"] = draw(st.sampled_from(["0.0.0.0/0", "10.1.2.3/24", "::/0", "fd00::/8", "::ffff:1.2.3.0/120"]))
    if draw(st.booleans()):
        route["gw"] = draw(st.sampled_from(["10.9.0.1", "fd00:9::1", ""]))
    for key in ("mtu", "advmss", "priority", "table", "scope"):
        if draw(st.integers(0, 5)) == 0:
            route[key] = draw(_NUMBER)
    return route


@st.composite
def configs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A configuration and a CNI_ARGS value."""
    ipam: dict[str, Any] = {"type": "host-local"}
    sets = draw(_range_sets(2))
    if draw(st.integers(0, 6)) == 0:
        sets = sets[:1]
        legacy = draw(_range(4, "192.168.9.0"))
        ipam.update(legacy)
    if sets or draw(st.booleans()):
        ipam[draw(st.sampled_from(["ranges", "ranges", "Ranges"]))] = sets
    if draw(st.booleans()):
        ipam["routes"] = draw(st.lists(_route(), max_size=3))
    config: dict[str, Any] = {"name": NETWORK, "type": "bridge", "ipam": ipam}
    version = draw(st.sampled_from((*VERSIONS, "1.0.0", "1.1.0", "0.4.0")))
    if version:
        config["cniVersion"] = version
    extra = draw(st.integers(0, 20))
    if extra == 0:
        config["runtimeConfig"] = {"ipRanges": [[draw(_range(4, "172.16.5.0"))]]}
    elif extra == 1:
        config["runtimeConfig"] = {"ips": ["10.9.0.5"]}
    elif extra == 2:
        config["args"] = {"cni": {"ips": ["fd00:9::5/64"]}}
    elif extra == 3:
        ipam["resolvConf"] = "/nonexistent/cnicore-resolv.conf"
    elif extra == 4:
        ipam["store"] = {"type": "bogus"}
    elif extra == 5:
        ipam["routes"] = "not a list"
    args = draw(st.sampled_from(["", "", "", "", "", "", "", "", "", "", "IgnoreUnknown=1;K8S_POD_NAME=p",
                                 "K8S_POD_NAME=p", "IP=10.9.0.6", "IgnoreUnknown=true;IP=10.9.0.7", "garbage"]))
    return config, args


_STEP = st.tuples(st.sampled_from(["ADD", "ADD", "ADD", "DEL", "CHECK"]), st.sampled_from(["c1", "c2", "c3"]),
                  st.sampled_from(["eth0", "eth0", "net1"]))


@st.composite
def seeds(draw: st.DrawFn) -> dict[str, bytes]:
    """Files already in the network directory: others' reservations (legacy ones too) and cursors."""
    files: dict[str, bytes] = {}
    for name in draw(st.lists(st.sampled_from(["10.9.0.2", "10.9.0.3", "10.9.0.5", "fd00:9::2", "192.168.7.1"]),
                              max_size=3, unique=True)):
        files[name] = draw(st.sampled_from([b"c1\r\neth0", b"c1", b"other\r\neth0", b"  c2  ", b"\xff"]))
    for n in draw(st.lists(st.sampled_from(["0", "1"]), max_size=2, unique=True)):
        files[f"last_reserved_ip.{n}"] = draw(st.sampled_from([b"10.9.0.4", b"10.9.0.6", b"fd00:9::3",
                                                               b"::ffff:10.9.0.2", b"junk", b"10.9.0.4\n"]))
    return files


def _differential(root: Path, config: dict[str, Any], args: str, seed: dict[str, bytes],
                  steps: list[tuple[str, str, str]]) -> None:
    for side in ("exec", "plugin"):
        directory = root / side / NETWORK
        directory.mkdir(parents=True)
        for name, data in seed.items():
            (directory / name).write_bytes(data)
    for command, container, ifname in steps:
        environ = _environ(command, container, ifname, args)
        code, out = _run("handler", environ, config, root / "exec")
        event(f"{command}, exit {code}")
        assert (code, out) == _run("plugin", environ, config, root / "plugin"), (command, container, ifname)
    assert _files(root / "exec" / NETWORK) == _files(root / "plugin" / NETWORK)
    with FileStore(root / "exec", NETWORK) as trusted, FileStore(root / "exec", NETWORK,
                                                                 persist_index=False) as scanned:
        assert sorted(map(str, trusted.reservations())) == sorted(map(str, scanned.reservations()))


# Each example is cheap (no exec): five times the profile's examples under "ci".
_SETTINGS = settings(max_examples=examples(scale=5), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                             HealthCheck.filter_too_much])


@_SETTINGS
@given(configs(), seeds(), st.lists(_STEP, min_size=1, max_size=6))
def test_exec_handler_and_plugin_agree(tmp_path_factory: pytest.TempPathFactory, case: tuple[dict[str, Any], str],
                                       seed: dict[str, bytes], steps: list[tuple[str, str, str]]) -> None:
    """Any configuration: the handler answers as the plugin does."""
    _differential(tmp_path_factory.mktemp("hlq"), *case, seed, steps)


@_SETTINGS
def _accepted(case: tuple[dict[str, Any], str]) -> bool:
    try:
        decode_config(*case)
    except CNIError:
        return False
    return True


@_SETTINGS
@given(configs().filter(_accepted), seeds(), st.lists(_STEP, min_size=2, max_size=10))
def test_valid_configurations_agree_over_longer_runs(tmp_path_factory: pytest.TempPathFactory,
                                                     case: tuple[dict[str, Any], str], seed: dict[str, bytes],
                                                     steps: list[tuple[str, str, str]]) -> None:
    """Valid configurations: longer command sequences, exhaustion, duplicates, round-robin."""
    _differential(tmp_path_factory.mktemp("hlq"), *case, seed, steps)


def _simple(version: str = "1.0.0", **ipam: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"name": NETWORK, "type": "bridge",
                              "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.9.0.0/29"}]], **ipam}}
    if version:
        config["cniVersion"] = version
    return config


@pytest.mark.parametrize(("config", "args"), [
    (_simple(), ""), (_simple(""), ""), (_simple("0.2.0"), ""),
    (_simple(routes=[{"dst": "0.0.0.0/0", "gw": "10.9.0.1"}, None]), ""),
    (_simple(ranges=[[{"subnet": "10.9.0.0/29"}], [{"subnet": "fd00:9::/125", "rangeStart": "fd00:9::3"}]]), ""),
    ({"name": NETWORK, "cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "10.9.0.0/24",
                                                       "gateway": "10.9.0.254"}}, ""),
    (_simple(dataDir=None), ""),
    ({**_simple(), "runtimeConfig": {"ipRanges": [[{"subnet": "10.8.0.0/24"}]], "ips": []}}, ""),
    (_simple(), "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"),
    (_simple(resolvConf="/etc/resolv.conf"), ""),
    (_simple(), "IP=10.9.0.3"),
    (_simple(), "K8S_POD_NAME=p"),  # unknown without IgnoreUnknown
    ({**_simple(), "runtimeConfig": {"ips": ["10.9.0.3"]}}, ""),
    ({**_simple(), "args": {"cni": {"ips": ["10.9.0.3"]}}}, ""),
    (_simple("9.9.9"), ""),
    (_simple(ranges=[[{"subnet": "10.9.0.1/29"}]]), ""),
    (_simple(ranges=[[{"subnet": "10.9.0.0/29"}, {"subnet": "10.9.0.0/30"}]]), ""),
    (_simple("", ranges=[[{"subnet": "10.9.0.0/29"}], [{"subnet": "10.9.1.0/29"}]]), ""),
    (_simple("0.2.0", ranges=[[{"subnet": "10.9.0.0/29"}], [{"subnet": "10.9.1.0/29"}]]), ""),
    (_simple(routes=[{"dst": "0.0.0.0/0", "mtu": 2**60}]), ""),
    (_simple(ranges=[[{"subnet": "::ffff:10.9.0.0/125"}]]), ""),
    (_simple(ranges=[[{"subnet": "0.0.0.0/0"}]]), ""),
])
def test_chosen_configurations_agree(config: dict[str, Any], args: str, tmp_path: Path) -> None:
    for command in ("ADD", "CHECK", "DEL", "CHECK"):
        environ = _environ(command, "c1", "eth0", args)
        assert _run("handler", environ, config, tmp_path / "exec") == _run("plugin", environ, config,
                                                                            tmp_path / "plugin")
    assert _files(tmp_path / "exec" / NETWORK) == _files(tmp_path / "plugin" / NETWORK)


def test_result_text_needs_the_result_types_only_for_what_they_alone_print() -> None:
    ips = [((4, 0x0A090002, 29), (4, 0x0A090001))]
    assert result_text(ips, [], ((), "", (), ()), "9.9.9") is None
    assert result_text([], [], ((), "", (), ()), "0.2.0") is None
    # A number a float64 rounds: the one result writer prints it as the result types do (through float64).
    big = ((4, 0, 0), None, 2**53 + 1, None, None, None, None)
    assert json.loads(result_text(ips, [big], ((), "", (), ()), "1.0.0") or "")["routes"] == [
        {"dst": "0.0.0.0/0", "mtu": 2**53}]
    assert json.loads(result_text(ips, [], ((), "", (), ()), "1.0.0") or "") == {
        "cniVersion": "1.0.0", "ips": [{"address": "10.9.0.2/29", "gateway": "10.9.0.1"}]}


def test_a_failed_add_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    # Two range sets, the second full: the first set's reservation is undone, the error is the full path's.
    config = _simple(ranges=[[{"subnet": "10.9.0.0/29"}], [{"subnet": "10.9.1.0/30"}]])
    for side in ("exec", "plugin"):
        directory = tmp_path / side / NETWORK
        directory.mkdir(parents=True)
        (directory / "10.9.1.2").write_bytes(b"other\r\neth0")  # .1 is the gateway: the set is full
    environ = _environ("ADD", "c1", "eth0", "")
    code, out = _run("handler", environ, config, tmp_path / "exec")
    assert code == 1 and "failed to allocate for range 1" in out
    assert (code, out) == _run("plugin", environ, config, tmp_path / "plugin")
    assert _files(tmp_path / "exec" / NETWORK) == _files(tmp_path / "plugin" / NETWORK)
    assert not os.path.exists(tmp_path / "exec" / NETWORK / "10.9.0.2")
