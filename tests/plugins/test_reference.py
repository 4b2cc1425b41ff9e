"""Differential tests against the reference Go plugins in /usr/lib/cni (root and the plugins needed).

Each case runs the reference and ours on the same configuration and environment,
each in its own throwaway "host" namespace (so the bridge, the NAT rules and
``ip_forward`` never touch the machine) with its own container namespace and
data directory, then compares: the output (only random MACs, veth names and the
namespace path normalised), the addresses and routes in the namespace, the
bridge, the NAT rules and the files under the data directory. Bad inputs must
give the same error code and message.

The installed reference (1.1.1) supports spec versions up to 1.0.0.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import (
    Namespaces,
    Outcome,
    addresses,
    data_files,
    ip_json,
    link_flags,
    nat_rules,
    netns_path,
    normalise,
    routes,
    run_exec,
)
from support import reference_plugin

pytestmark = [pytest.mark.root, pytest.mark.reference]

REFERENCE_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0")
CID = "cnt-diff-1"


class Side:
    """One side of a differential run: its plugin binaries, host and container namespaces, data dir."""

    def __init__(self, label: str, bin_dir: Path, netns: Namespaces, tmp_path: Path, *, ipam_path: Path | None = None,
                 host: bool = True) -> None:
        self.label = label
        self.bin_dir = bin_dir
        self.ipam_path = ipam_path or bin_dir
        self.host = netns.add("host") if host else None
        self.container = netns.add("c")
        self.data = tmp_path / f"data-{label}"

    def run(self, plugin: str, command: str, config: dict[str, Any] | bytes, *, ifname: str = "eth0",
            args: str = "", netns: str | None = None) -> Outcome:
        """Execute ``plugin`` (``netns``: another ``CNI_NETNS`` than this side's container namespace)."""
        if isinstance(config, dict) and "ipam" in config and isinstance(config["ipam"], dict):
            config = {**config, "ipam": {**config["ipam"], "dataDir": str(self.data)}}
        netns = netns_path(self.container) if netns is None else netns
        return run_exec(self.bin_dir / plugin, command, config, netns=netns, ifname=ifname,
                        container_id=CID, path=[self.ipam_path], args=args, host_ns=self.host)

    def text(self, outcome: Outcome) -> str:
        return normalise(outcome.stdout).replace(netns_path(self.container), "NETNS")


@pytest.fixture
def reference_bin() -> Path:
    for name in ("loopback", "bridge", "host-local"):
        reference_plugin(name)
    return reference_plugin("bridge").parent


def _current_shape(doc: Any) -> bool:
    # A result in the 1.x shape: a 1.x version, or (loopback) 1.x entries stamped with an old version.
    if not isinstance(doc, dict) or "code" in doc:
        return False
    if str(doc.get("cniVersion", "")).startswith("1."):
        return True
    return "ips" in doc and all("version" not in ip for ip in doc["ips"])


def _canonical(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not (k == "dns" and v == {})}


def _same(ref: Side, ours: Side, a: Outcome, b: Outcome) -> None:
    """Same exit status and output; 0.x shapes and error objects byte for byte.

    1.x-shaped results are compared as JSON values without an empty ``dns``: the
    installed reference (1.1.1) prints them in struct order with ``"dns": {}``,
    while our results print what the current reference prints (keys sorted,
    empty ``dns`` left out). Everything else in them must be equal.
    """
    text_a, text_b = ref.text(a), ours.text(b)
    assert b.returncode == a.returncode, (text_a, text_b)
    if text_a and _current_shape(json.loads(text_a)):
        assert _canonical(json.loads(text_b)) == _canonical(json.loads(text_a))
    else:
        assert text_b == text_a


# ------------------------------------------------------------------------------------------ loopback


@pytest.mark.parametrize("version", REFERENCE_VERSIONS)
def test_loopback_matches_reference(version: str, reference_bin: Path, plugin_bin: Path, netns: Namespaces,
                                    tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path)
    ours = Side("ours", plugin_bin, netns, tmp_path)
    config = {"cniVersion": version, "name": "lo-net", "type": "loopback"}
    for command in ("ADD", "CHECK", "DEL", "CHECK", "DEL"):
        if command == "CHECK" and version < "0.4.0":
            continue
        a, b = ref.run("loopback", command, config), ours.run("loopback", command, config)
        _same(ref, ours, a, b)
        assert addresses(ours.container, "lo") == addresses(ref.container, "lo")
        assert ("UP" in link_flags(ours.container, "lo")) == ("UP" in link_flags(ref.container, "lo"))


def test_loopback_legacy_nameless_is_our_one_deviation(reference_bin: Path, plugin_bin: Path, netns: Namespaces,
                                                       tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path)
    ours = Side("ours", plugin_bin, netns, tmp_path)
    a, b = ref.run("loopback", "ADD", b'{"type": "loopback"}'), ours.run("loopback", "ADD", b'{"type": "loopback"}')
    assert (a.returncode, a.json) == (1, {"code": 7, "msg": "missing network name"})
    assert (b.returncode, b.json) == (0, {"cniVersion": "0.1.0", "ip4": {"ip": "127.0.0.1/8"},
                                          "ip6": {"ip": "::1/128"}, "dns": {}})
    declared = b'{"type": "loopback", "cniVersion": "0.1.0"}'
    _same(ref, ours, ref.run("loopback", "ADD", declared), ours.run("loopback", "ADD", declared))


@pytest.mark.parametrize("config", [b"garbage", b'{"name": "bad name", "cniVersion": "1.0.0"}',
                                    b'{"name": "x", "cniVersion": "9.9.9"}', b"[1]",
                                    b"null"])  # (Go decodes null into a struct as nothing: no name)
def test_loopback_errors_match(config: bytes, reference_bin: Path, plugin_bin: Path, netns: Namespaces,
                               tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path, host=False)
    ours = Side("ours", plugin_bin, netns, tmp_path, host=False)
    a, b = ref.run("loopback", "ADD", config), ours.run("loopback", "ADD", config)
    if b"9.9.9" in config:
        # We support 1.1.0 as well, so the details listing the supported versions differ.
        assert (b.returncode, b.json["code"], b.json["msg"]) == (a.returncode, a.json["code"], a.json["msg"])
    elif config == b"[1]":
        # The Go type named in the decoding message changed after 1.1.1; the code did not.
        assert (b.returncode, b.json["code"]) == (a.returncode, a.json["code"])
    else:
        _same(ref, ours, a, b)


# ------------------------------------------------------------------------------------------ host-local


def _ipam_config(version: str | None, **ipam: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"name": "hl-net", "type": "host-local",
                            "ipam": {"type": "host-local", "subnet": "10.31.0.0/24",
                                     "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.31.0.9"}],
                                     **ipam}}
    if version is not None:
        conf["cniVersion"] = version
    return conf


@pytest.mark.parametrize("version", [*REFERENCE_VERSIONS, None])
def test_host_local_matches_reference(version: str | None, reference_bin: Path, plugin_bin: Path,
                                      netns: Namespaces, tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path, host=False)
    ours = Side("ours", plugin_bin, netns, tmp_path, host=False)
    config = _ipam_config(version, ranges=[[{"subnet": "2001:db8:5::/64"}]])
    if version in (None, "0.1.0", "0.2.0"):
        config = _ipam_config(version)
    steps = [("ADD", "eth0"), ("ADD", "eth1"), ("ADD", "eth0"), ("CHECK", "eth0"), ("DEL", "eth0"),
             ("CHECK", "eth0"), ("DEL", "eth0")]
    for command, ifname in steps:
        if command == "CHECK" and (version is None or version < "0.4.0"):
            continue
        a, b = ref.run("host-local", command, config, ifname=ifname), ours.run("host-local", command, config,
                                                                                ifname=ifname)
        _same(ref, ours, a, b)
        assert data_files(ours.data) == data_files(ref.data)


def _tree(directory: Path) -> list[str]:
    """Every path under ``directory`` (directories too), relative; ``["<none>"]`` when it does not exist."""
    if not directory.exists():
        return ["<none>"]
    return sorted(str(path.relative_to(directory)) + ("/" if path.is_dir() else "") for path in directory.rglob("*"))


@pytest.mark.parametrize(("ipam", "args"), [
    ({"subnet": "10.31.0.0/31"}, ""),
    ({"subnet": "10.31.0.5/24"}, ""),
    ({"subnet": "10.31.0.0/24", "rangeStart": "10.32.0.1"}, ""),
    ({"ranges": [[{"subnet": "10.1.0.0/16"}, {"subnet": "10.1.2.0/24"}]]}, ""),
    ({"subnet": "10.31.0.0/24"}, "IP=10.99.0.1"),
    ({"subnet": "10.31.0.0/24"}, "K8S_POD_NAME=x"),
    ({"subnet": "10.31.0.0/24"}, "IP=nonsense"),
    ({"subnet": "10.31.0.0/24", "resolvConf": "/nonexistent/resolv.conf"}, ""),
    ({}, ""),
])
def test_host_local_errors_match(ipam: dict[str, Any], args: str, reference_bin: Path, plugin_bin: Path,
                                 netns: Namespaces, tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path, host=False)
    ours = Side("ours", plugin_bin, netns, tmp_path, host=False)
    config = {"cniVersion": "1.0.0", "name": "hl-net", "type": "host-local", "ipam": {"type": "host-local", **ipam}}
    a, b = ref.run("host-local", "ADD", config, args=args), ours.run("host-local", "ADD", config, args=args)
    assert a.returncode == b.returncode == 1
    assert b.json == a.json
    # What the failure left on disk: the same paths, directories and lock file included (nothing at all when the
    # reference fails before it opens its store, as with a missing resolvConf).
    assert _tree(ours.data) == _tree(ref.data)


def test_host_local_missing_ipam_and_check_errors_match(reference_bin: Path, plugin_bin: Path, netns: Namespaces,
                                                        tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path, host=False)
    ours = Side("ours", plugin_bin, netns, tmp_path, host=False)
    for config, command in (({"cniVersion": "1.0.0", "name": "hl-net", "type": "host-local"}, "ADD"),
                            (_ipam_config("1.0.0"), "CHECK")):
        a, b = ref.run("host-local", command, config), ours.run("host-local", command, config)
        assert (b.returncode, b.json["code"], b.json["msg"]) == (a.returncode, a.json["code"], a.json["msg"])


# ------------------------------------------------------------------------------------------ bridge


def _bridge_config(version: str | None, bridge: str, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"name": "br-net", "type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
                            "ipam": {"type": "host-local", "subnet": "10.23.0.0/24", "routes": [{"dst": "0.0.0.0/0"}]}}
    if version is not None:
        conf["cniVersion"] = version
    conf.update(extra)
    return conf


def _bridge_state(side: Side, bridge: str) -> dict[str, Any]:
    assert side.host is not None
    return {
        **_kernel_state(side, (bridge,), ("eth0",)),
        "container_eth0": addresses(side.container, "eth0"),
        "container_routes": routes(side.container),
        "container_eth0_up": "UP" in link_flags(side.container, "eth0"),
        "bridge": addresses(side.host, bridge),
        "nat": nat_rules(side.host),
        "files": data_files(side.data),
    }


def _run_bridge_pair(ref: Side, ours: Side, config: dict[str, Any], bridge: str, commands: tuple[str, ...]) -> None:
    for command in commands:
        a, b = ref.run("bridge", command, config), ours.run("bridge", command, config)
        _same(ref, ours, a, b)
        if command == "ADD" and a.returncode != 0:
            # Deliberate difference: the reference leaves the container's veth (with its
            # addresses) behind after a failed ADD; we undo everything but the bridge.
            state = _bridge_state(ours, bridge)
            reservations = [f for f in state["files"] if f.split("/")[-1][:1].isdigit()]
            assert (state["container_eth0"], reservations) == ([], [])
            # The reference's DEL then trips over its own leftovers (masquerade teardown of an
            # address whose chain was never made fails); ours has nothing left to undo.
            assert ours.run("bridge", "DEL", config).returncode == 0
            return
        assert _bridge_state(ours, bridge) == _bridge_state(ref, bridge)


@pytest.mark.parametrize("version", [*REFERENCE_VERSIONS, None])
def test_bridge_matches_reference(version: str | None, reference_bin: Path, plugin_bin: Path, netns: Namespaces,
                                  tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path)
    ours = Side("ours", plugin_bin, netns, tmp_path)
    config = _bridge_config(version, "cnt-br0")
    _run_bridge_pair(ref, ours, config, "cnt-br0", ("ADD", "DEL", "DEL"))


def test_bridge_check_and_default_gateway_match(reference_bin: Path, plugin_bin: Path, netns: Namespaces,
                                                tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path)
    ours = Side("ours", plugin_bin, netns, tmp_path)
    config = _bridge_config("1.0.0", "cnt-br1", isDefaultGateway=True, hairpinMode=True, mtu=1400)
    # A route with a gateway: the reference's CHECK cannot find a gateway-less one it added itself.
    config["ipam"]["routes"] = [{"dst": "192.168.0.0/16", "gw": "10.23.0.1"}]
    a, b = ref.run("bridge", "ADD", config), ours.run("bridge", "ADD", config)
    _same(ref, ours, a, b)
    assert _bridge_state(ours, "cnt-br1") == _bridge_state(ref, "cnt-br1")
    for side, out in ((ref, a), (ours, b)):
        prev = json.loads(out.stdout)
        check = side.run("bridge", "CHECK", {**config, "prevResult": prev})
        assert (check.returncode, check.stdout) == (0, ""), (side.label, check.stdout)


@pytest.mark.parametrize("extra", [
    {"isGateway": "yes"},
    {"vlan": 5000},
    # Go's decoding errors name the innermost struct type and the key path; a number that is not an int is quoted.
    {"mtu": 1.5},
    {"vlan": 2.5},
    {"mtu": 1500.0},  # an integral float is no int to Go either
    {"vlan": 2.0},
    {"dns": 5},
    {"dns": {"nameservers": "x"}},
    {"dns": {"nameservers": [1]}},
    {"dns": {"search": [True]}},
    {"dns": {"domain": 5}},
    {"args": 5},
    {"args": {"cni": 5}},
    {"args": {"cni": {"mac": 5}}},
    {"runtimeConfig": 5},
    {"runtimeConfig": {"mac": 5}},
    {"ipam": 5},
    {"ipam": {"type": 5}},
    {"ipam": {"type": "host-local", "subnet": "10.23.0.0/31"}},
    {"ipam": {"type": "no-such-ipam"}},
])
def test_bridge_errors_match(extra: dict[str, Any], reference_bin: Path, plugin_bin: Path, netns: Namespaces,
                             tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path)
    ours = Side("ours", plugin_bin, netns, tmp_path)
    config = _bridge_config("1.0.0", "cnt-br2", **extra)
    a, b = ref.run("bridge", "ADD", config), ours.run("bridge", "ADD", config)
    assert a.returncode == b.returncode == 1
    msg_a, msg_b = a.json["msg"].replace(str(ref.ipam_path), "P"), b.json["msg"].replace(str(ours.ipam_path), "P")
    assert (b.json["code"], msg_b) == (a.json["code"], msg_a)


@pytest.mark.parametrize("plugin", ["loopback", "bridge"])
@pytest.mark.parametrize("command", ["ADD", "CHECK", "DEL"])
def test_a_missing_namespace_is_reported_as_the_reference_reports_it(plugin: str, command: str, reference_bin: Path,
                                                                      plugin_bin: Path, netns: Namespaces,
                                                                      tmp_path: Path) -> None:
    # The namespace path is gone (a runtime's CHECK or DEL after the container went): same code and message
    # (ns.GetNS's "failed to Statfs", which the bridge prefixes with "failed to open netns"), DEL succeeds.
    gone = "/var/run/netns/cnt-diff-gone"
    config = _bridge_config("1.0.0", "cnt-br3") if plugin == "bridge" else {"cniVersion": "1.0.0", "name": "lo-net",
                                                                             "type": "loopback"}
    if command == "CHECK" and plugin == "bridge":
        config["prevResult"] = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": gone}],
                                "ips": [{"address": "10.23.0.2/24", "interface": 0}]}
    outcomes = []
    for side in (Side("ref", reference_bin, netns, tmp_path), Side("ours", plugin_bin, netns, tmp_path)):
        out = side.run(plugin, command, config, netns=gone)
        outcomes.append((out.returncode, out.json if out.stdout else None))
    assert outcomes[1] == outcomes[0]
    if command == "DEL":
        assert outcomes[0] == (0, None)
    else:
        msg = 'failed to Statfs "/var/run/netns/cnt-diff-gone": no such file or directory'
        assert outcomes[0] == (1, {"code": 999, "msg": f'failed to open netns "{gone}": {msg}' if plugin == "bridge"
                                   else msg})


@pytest.mark.parametrize("plugin", ["loopback", "bridge", "tuning"])
@pytest.mark.parametrize("command", ["ADD", "DEL"])
@pytest.mark.parametrize("kind", ["file", "directory", "fifo", "mount namespace", "below a file", "too long"])
def test_a_path_that_is_no_namespace_is_refused_as_the_reference_refuses_it(plugin: str, command: str, kind: str,
                                                                           reference_bin: Path, plugin_bin: Path,
                                                                           netns: Namespaces, tmp_path: Path) -> None:
    # CNI_NETNS names something that exists but is no namespace: ns.GetNS refuses it by its file system's magic
    # number before opening it (code 999, though the spec's code for an invalid namespace is 8), so a FIFO never
    # blocks the plugin. The bridge prefixes "failed to open netns" on ADD only; tuning's DEL does not look.
    # A namespace of another type passes that check, and setns refuses it (EINVAL) in ns.Do's words.
    reference_plugin("tuning")
    bogus = tmp_path / f"cnt-not-ns-{kind.replace(' ', '-')}"
    if kind == "file":
        bogus.write_bytes(b"")
    elif kind == "directory":
        bogus.mkdir()
    elif kind == "fifo":
        os.mkfifo(bogus)
    elif kind == "mount namespace":
        bogus = Path("/proc/self/ns/mnt")  # (each plugin's own: any namespace but a network one)
    elif kind == "below a file":
        bogus.write_bytes(b"")
        bogus = bogus / "x"  # statfs cannot even look: ENOTDIR
    else:
        bogus = tmp_path / ("x" * 300)  # ENAMETOOLONG
    looked = subprocess.run(["stat", "-f", "-c", "%t", str(bogus)], capture_output=True, text=True, check=False)
    magic = looked.stdout.strip()
    if plugin == "bridge":
        config = _bridge_config("1.0.0", "cnt-br3")
    else:
        config = {"cniVersion": "1.0.0", "name": "n", "type": plugin}
        if plugin == "tuning":
            config["prevResult"] = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": str(bogus)}],
                                    "ips": [{"address": "10.23.0.2/24", "interface": 0}]}
    outcomes = []
    for side in (Side("ref", reference_bin, netns, tmp_path), Side("ours", plugin_bin, netns, tmp_path)):
        out = side.run(plugin, command, config, netns=str(bogus))
        outcomes.append((out.returncode, out.json if out.stdout else None))
    if kind == "mount namespace" and plugin == "tuning" and command == "ADD":
        # The one known difference: with nothing to tune, ours checks that the path is a namespace file and does
        # not join it (telling a network namespace from another type without joining it takes an ioctl, and the
        # module for it would cost every container start's tuning its load); the reference joins it, and setns
        # refuses a mount namespace. Ours prints prevResult.
        assert outcomes[0] == (1, {"code": 999, "msg": f"error switching to ns {bogus}: Error switching to ns "
                                                        f"{bogus}: invalid argument"})
        assert outcomes[1] == (0, config["prevResult"])
        return
    assert outcomes[1] == outcomes[0]
    if plugin == "tuning" and command == "DEL":
        assert outcomes[0] == (0, None)
    elif kind == "mount namespace":
        msg = f"error switching to ns {bogus}: Error switching to ns {bogus}: invalid argument"
        assert outcomes[0] == (1, {"code": 999, "msg": msg})
    else:
        reason = {"below a file": "not a directory", "too long": "file name too long"}.get(kind)
        assert (looked.returncode != 0) == (reason is not None)
        msg = f'failed to Statfs "{bogus}": {reason}' if reason else f'unknown FS magic on "{bogus}": {magic}'
        if plugin == "bridge" and command == "ADD":
            msg = f'failed to open netns "{bogus}": {msg}'
        assert outcomes[0] == (1, {"code": 999, "msg": msg})


# ------------------------------------------------------------------------------------------ mixed chains


def test_our_bridge_with_the_reference_host_local(reference_bin: Path, plugin_bin: Path, netns: Namespaces,
                                                  tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path)
    mixed = Side("mixed", plugin_bin, netns, tmp_path, ipam_path=reference_bin)
    _run_bridge_pair(ref, mixed, _bridge_config("0.4.0", "cnt-br3"), "cnt-br3", ("ADD", "DEL"))


def test_reference_bridge_with_our_host_local(reference_bin: Path, plugin_bin: Path, netns: Namespaces,
                                              tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path)
    mixed = Side("mixed", reference_bin, netns, tmp_path, ipam_path=plugin_bin)
    _run_bridge_pair(ref, mixed, _bridge_config("1.0.0", "cnt-br4"), "cnt-br4", ("ADD", "DEL"))
    bad = _bridge_config("1.0.0", "cnt-br4", ipam={"type": "host-local", "subnet": "10.23.0.0/31"})
    a, b = ref.run("bridge", "ADD", bad), mixed.run("bridge", "ADD", bad)
    assert (b.returncode, b.json) == (a.returncode, a.json)


@pytest.mark.parametrize(("version", "extra"), [
    ("1.0.0", {"promiscMode": True, "ipMasq": False}),
    ("0.4.0", {"isGateway": False, "ipMasq": False}),
    ("0.3.1", {"isDefaultGateway": True, "forceAddress": True}),
    ("1.0.0", {"ipam": None}),
    ("0.4.0", {"ipam": None, "hairpinMode": True}),
    ("1.0.0", {"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.23.0.0/24"}], [{"subnet": "fd00:23::/64"}]],
                        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}}),
    ("1.0.0", {"dns": {"nameservers": ["10.23.0.53"], "search": ["example.org"]}}),
    ("0.4.0", {"args": {"cni": {"mac": "0a:58:0a:17:00:07"}}, "mtu": 1300}),
    ("1.0.0", {"mtu": -1}),  # no MTU: the reference's netlink library sets one only when it is positive
])
def test_bridge_options_match_reference(version: str, extra: dict[str, Any], reference_bin: Path, plugin_bin: Path,
                                        netns: Namespaces, tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path)
    ours = Side("ours", plugin_bin, netns, tmp_path)
    config = _bridge_config(version, "cnt-br5", **extra)
    if config.get("ipam") is None:
        del config["ipam"]
    _run_bridge_pair(ref, ours, config, "cnt-br5", ("ADD", "DEL", "DEL"))


# ------------------------------------------------------------------------------------------ several networks


def _kernel_state(side: Side, bridges: tuple[str, ...], ifnames: tuple[str, ...]) -> dict[str, Any]:
    """What a container on several networks looks like, in the kernel's order and with every detail ``ip``
    shows: routes (protocol, scope, metric, multipath next hops), queue lengths, the IPv6 sysctls the plugin
    may touch, and whether each bridge kept its own MAC (the reference pins it before its first port's)."""
    assert side.host is not None
    detailed = {family: [r for r in ip_json([family, "-d", "route"], side.container)
                         if not str(r.get("dst", "")).startswith("fe80")] for family in ("-4", "-6")}
    host_links = ip_json(["-d", "link", "show"], side.host)
    ports = {link["ifname"]: link for link in host_links if link.get("master") in bridges}
    bridge_macs = {link["ifname"]: link["address"] for link in host_links if link["ifname"] in bridges}

    def sysfs(ns: str, path: str) -> str:
        done = subprocess.run(["ip", "netns", "exec", ns, "cat", path], capture_output=True, text=True, check=False)
        return done.stdout.strip()  # empty for a link that is gone

    return {
        "routes": detailed,
        "addresses": {ifname: addresses(side.container, ifname) for ifname in ifnames},
        "container_txqlen": {ifname: [link.get("txqlen", 0) for link in ip_json(["link", "show"], side.container)
                                      if link["ifname"] == ifname] for ifname in ifnames},
        "host_veth_txqlen": sorted(port.get("txqlen", 0) for port in ports.values()),
        "keep_addr_on_down": {ifname: sysfs(side.container, f"/proc/sys/net/ipv6/conf/{ifname}/keep_addr_on_down")
                              for ifname in ifnames},
        "bridge_mac_is_a_port_mac": {name: mac in {port["address"] for port in ports.values()}
                                     for name, mac in bridge_macs.items()},
        "bridge_mac_assigned": {name: sysfs(side.host, f"/sys/class/net/{name}/addr_assign_type")
                                for name in bridges},
        "files": data_files(side.data),
    }


def test_one_container_on_three_networks_matches_reference(reference_bin: Path, plugin_bin: Path,
                                                           netns: Namespaces, tmp_path: Path) -> None:
    """A second and third default route (one per interface) are accepted, as the reference's are: IPv4 ones
    side by side (the newest first), IPv6 ones merged into one multipath route; everything ``proto boot``."""
    ref = Side("ref", reference_bin, netns, tmp_path)
    ours = Side("ours", plugin_bin, netns, tmp_path)
    networks = (("cnt-mn0", "10.71.0.0/24", "fd71::/64"), ("cnt-mn1", "10.71.1.0/24", "fd71:1::/64"),
                ("cnt-mn2", "10.71.2.0/24", None))
    configs = []
    for bridge, v4, v6 in networks:
        ranges = [[{"subnet": v4}]] + ([[{"subnet": v6}]] if v6 else [])
        route_list = [{"dst": "0.0.0.0/0"}] + ([{"dst": "::/0"}] if v6 else [])
        configs.append({"cniVersion": "1.0.0", "name": f"net-{bridge}", "type": "bridge", "bridge": bridge,
                        "isGateway": True, "hairpinMode": True,
                        "ipam": {"type": "host-local", "ranges": ranges, "routes": route_list}})
    ifnames = ("eth0", "eth1", "eth2")
    bridges = tuple(bridge for bridge, _v4, _v6 in networks)
    for config, ifname in zip(configs, ifnames, strict=True):
        a, b = ref.run("bridge", "ADD", config, ifname=ifname), ours.run("bridge", "ADD", config, ifname=ifname)
        _same(ref, ours, a, b)
        assert a.returncode == 0, a.stdout
    state = _kernel_state(ours, bridges, ifnames)
    assert state == _kernel_state(ref, bridges, ifnames)
    assert [r.get("gateway") for r in state["routes"]["-4"] if r["dst"] == "default"] == [
        "10.71.2.1", "10.71.1.1", "10.71.0.1"]
    assert [r.get("protocol") for r in state["routes"]["-4"] if r["dst"] == "default"] == ["boot"] * 3
    assert set(state["host_veth_txqlen"]) == {0} and set(state["keep_addr_on_down"].values()) == {"0"}
    assert not any(state["bridge_mac_is_a_port_mac"].values())
    # Leaving one network takes its routes along and leaves the others as the reference leaves them.
    a, b = ref.run("bridge", "DEL", configs[1], ifname="eth1"), ours.run("bridge", "DEL", configs[1], ifname="eth1")
    _same(ref, ours, a, b)
    assert _kernel_state(ours, bridges, ("eth0", "eth2")) == _kernel_state(ref, bridges, ("eth0", "eth2"))


# A literal beyond float64's range decodes (in Python's json) as infinity, which int() cannot convert: each plugin
# must refuse it as Go's decoder does, naming the literal as the document spells it.
@pytest.mark.parametrize(("plugin", "document"), [
    ("bridge", b'{"cniVersion":"1.0.0","name":"n","type":"bridge","bridge":"cnt-br3","mtu":1e999}'),
    ("bridge", b'{"cniVersion":"1.0.0","name":"n","type":"bridge","bridge":"cnt-br3","vlan":-1E+400}'),
    ("tuning", b'{"cniVersion":"1.0.0","name":"n","type":"tuning","mtu":1e999,"prevResult":{"cniVersion":"1.0.0"}}'),
    ("portmap", b'{"cniVersion":"1.0.0","name":"n","type":"portmap","prevResult":{"cniVersion":"1.0.0"},'
                b'"runtimeConfig":{"portMappings":[{"hostPort":1e999,"containerPort":80,"protocol":"tcp"}]}}'),
])
def test_out_of_range_numbers_refused_as_the_reference(plugin: str, document: bytes, reference_bin: Path,
                                                       plugin_bin: Path, netns: Namespaces, tmp_path: Path) -> None:
    ref = Side("ref", reference_bin, netns, tmp_path)
    ours = Side("ours", plugin_bin, netns, tmp_path)
    a, b = ref.run(plugin, "ADD", document), ours.run(plugin, "ADD", document)
    assert a.returncode == b.returncode == 1
    assert "1e999" in a.json["msg"] or "1E+400" in a.json["msg"]
    assert (b.json["code"], b.json["msg"]) == (a.json["code"], a.json["msg"])
