"""podman (libcni, ``network_backend = "cni"``) as the client, end to end.

Every scenario runs twice, on two throwaway hosts (see ``podman_host``): podman with our plugin directory
as its only ``cni_plugin_dirs`` (podman's default chain, bridge + portmap + firewall + tuning, with host-local
and loopback, all cnicore's: :func:`test_our_host_can_run_no_reference_plugin` checks it), and podman with the
reference plugins only. Each run asserts what podman
and the containers see, and the two runs' observations must be equal: addresses, routes (protocol
included), links, rules and iptables in the host and every container, host-local's files and libcni's
cache entries, with container IDs, veth names and random MACs normalised.

Subnets are 10.89.x.0/24 and fd89:x::/64 in the hosts' own network namespaces; bridges are ``cnt-e2e-*``;
ports are published on 127.0.0.1 of those namespaces.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from podman_host import PodmanHost
from support import REFERENCE_PLUGIN_DIR

pytestmark = [pytest.mark.root, pytest.mark.reference, pytest.mark.e2e]

Switch = Callable[[bool], None]
Scenario = Callable[[PodmanHost, Switch], list[Any]]


def _sorted(items: list[Any]) -> list[Any]:
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


def observe(host: PodmanHost, networks: Sequence[str], containers: Sequence[str], *,
            macs: Sequence[str] = ()) -> dict[str, Any]:
    """Everything the two implementations must leave alike, normalised (the store and cache of ``networks``).

    Links and routes are compared as sets: podman attaches a container's networks in map order (random), so
    the links' indexes and the order the kernel lists a destination's routes in (newest first) vary from run
    to run; the exact order is pinned by the plugin-level differential test, which attaches in a fixed order.
    """
    state: dict[str, Any] = {
        "host_links": [{**link, "mac": None} for link in host.links()],
        "host_routes": host.routes(),
        "host_addresses": host.addresses(),
        "rules": host.rules(),
        "iptables": host.iptables(),
        "store": {f: v for f, v in host.store().items() if f.split("/")[0] in networks},
        "cache": {k: v for k, v in host.cache().items() if any(k.startswith(f"{n}-") for n in networks)},
        "netns_pins": len(host.netns_pins()),
        "containers": {},
    }
    for name in containers:
        inspected = host.inspect_networks(name)
        for net in inspected.values():
            net.pop("Aliases", None)  # the short container ID
        state["containers"][name] = {"inspect": inspected, "links": host.links(name),
                                     "addresses": host.addresses(name), "routes": host.routes(name)}
    # Normalised first (random names and MACs masked), then sorted.
    return _sort_observation(json.loads(host.normalise(json.dumps(state, sort_keys=True), keep_macs=macs)))


def _sort_observation(seen: dict[str, Any]) -> dict[str, Any]:
    for where in (seen, *seen["containers"].values()):
        links, routes = ("host_links", "host_routes") if where is seen else ("links", "routes")
        where[links] = _sorted(where[links])
        where[routes] = {family: _sorted(found) for family, found in where[routes].items()}
    return seen


def _renamed(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every interface name in ``names`` replaced, in keys and strings alike."""
    if isinstance(value, dict):
        return {_renamed(k, names): _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    if isinstance(value, str):
        return re.sub(r"\b(eth\d+)\b", lambda m: names.get(m.group(1), m.group(1)), value)
    return value


def ip_of(host: PodmanHost, container: str, network: str) -> str:
    return str(host.inspect_networks(container)[network]["IPAddress"])


def test_our_host_can_run_no_reference_plugin(ours: PodmanHost, our_plugin_dir: Path) -> None:
    # The scenarios' proof that every plugin podman ran on our host was cnicore's: its only plugin directory
    # holds nothing but our entry point, and the reference's directory is empty in its mount namespace.
    assert ours_dirs(ours) == [str(our_plugin_dir)]
    names = sorted(p.name for p in our_plugin_dir.iterdir())
    assert {"bridge", "host-local", "loopback", "portmap", "firewall", "tuning"} <= set(names)
    for plugin in our_plugin_dir.iterdir():
        assert plugin.read_text().endswith("from cnicore._plugin_main import exec_main\nexec_main()\n"), plugin
    assert ours.in_host("ls", "-A", str(REFERENCE_PLUGIN_DIR)).split() == []
    assert ours.in_host("sh", "-c", f"! test -e {REFERENCE_PLUGIN_DIR}/portmap && echo hidden").strip() == "hidden"
    assert (REFERENCE_PLUGIN_DIR / "portmap").is_file()  # while it is there outside that namespace
    # podman's own view: the default chain of a new network, every type found in our directory.
    net = "e2e-only-ours"
    try:
        conflist = ours.network_create(net, "cnt-e2e-only", "--subnet", "10.89.30.0/24")
        types = [plugin["type"] for plugin in conflist["plugins"]]
        assert types == ["bridge", "portmap", "firewall", "tuning"]
        assert all((our_plugin_dir / t).is_file() for t in types)
    finally:
        ours.podman("network", "rm", "-f", net, check=False)


def run_both(ours: PodmanHost, reference: PodmanHost, scenario: Scenario) -> list[Any]:
    """Run ``scenario`` on both hosts; equal observations. ``switch(True)`` puts the reference plugins (their
    hidden copy) in place of ours on our host (a no-op on the reference's), ``switch(False)`` ours again."""
    mine = [str(p) for p in ours_dirs(ours)]
    assert ours.hidden_copy is not None

    def ours_switch(to_reference: bool) -> None:
        ours.use_plugins([ours.hidden_copy] if to_reference else [Path(d) for d in mine])

    def on_ours() -> list[Any]:
        try:
            return scenario(ours, ours_switch)
        finally:
            ours_switch(False)

    # The two hosts share nothing: the runs go side by side (half the wall time of the suite).
    with ThreadPoolExecutor(max_workers=2) as pool:
        ours_run = pool.submit(on_ours)
        reference_run = pool.submit(scenario, reference, lambda _to_reference: None)
        observed, expected = ours_run.result(), reference_run.result()
    assert observed == expected, "\n".join(differences(observed, expected))
    return observed


def differences(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Where two observations differ, as ``path: ours != reference`` lines."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [line for key in sorted(set(ours) | set(theirs), key=str)
                for line in differences(ours.get(key), theirs.get(key), f"{path}/{key}")]
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [line for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
                for line in differences(a, b, f"{path}[{i}]")]
    return [] if ours == theirs else [f"{path}: {ours!r} != {theirs!r}"]


def ours_dirs(host: PodmanHost) -> list[str]:
    text = (host.root / "containers.conf").read_text()
    line = next(line for line in text.splitlines() if line.startswith("cni_plugin_dirs"))
    return list(json.loads(line.split("=", 1)[1]))


def cleanup(host: PodmanHost, containers: Sequence[str], networks: Sequence[str]) -> None:
    if containers:
        host.podman("rm", "-f", "-t", "0", *containers, check=False)
    for network in networks:
        host.podman("network", "rm", "-f", network, check=False)


def assert_nothing_left(host: PodmanHost, networks: Sequence[str]) -> None:
    """No reservation, cache entry, pinned namespace, veth or per-container rule left behind."""
    assert [f for f in host.store() if f.split("/")[0] in networks and not f.split("/")[1].startswith("last_")] == []
    assert [k for k in host.cache() if any(k.startswith(f"{n}-") for n in networks)] == []
    assert host.netns_pins() == []
    assert host.veths() == []
    assert [line for line in host.iptables() if "id: " in line] == []


# ------------------------------------------------------------------------------------------ scenarios


def two_containers(host: PodmanHost, _switch: Switch) -> list[Any]:
    """Two containers on one bridge network ping each other; inspect shows their addresses."""
    net = "e2e-two"
    try:
        host.network_create(net, "cnt-e2e-two", "--subnet", "10.89.11.0/24")
        host.run_container("two-a", "--network", net, "--cap-add", "NET_RAW")
        host.run_container("two-b", "--network", net, "--cap-add", "NET_RAW")
        a, b = ip_of(host, "two-a", net), ip_of(host, "two-b", net)
        assert (a, b) == ("10.89.11.2", "10.89.11.3")
        host.podman("exec", "two-a", "ping", "-c", "1", "-W", "5", b)
        host.podman("exec", "two-b", "ping", "-c", "1", "-W", "5", "10.89.11.1")
        seen = observe(host, [net], ["two-a", "two-b"])
        assert seen["containers"]["two-a"]["inspect"][net]["Gateway"] == "10.89.11.1"
        host.podman("rm", "-f", "-t", "0", "two-a", "two-b")
        assert_nothing_left(host, [net])
        return [seen, observe(host, [net], [])]
    finally:
        cleanup(host, ["two-a", "two-b"], [net])


def _fetch(host: PodmanHost, port: int) -> str:
    """Read what the container's server sends, from 127.0.0.1 of the host's namespace (retried while it starts)."""
    code = ("import socket,sys\n"
            f"s=socket.create_connection(('127.0.0.1',{port}),timeout=5)\n"
            "sys.stdout.write(s.recv(100).decode())")
    deadline = time.monotonic() + 15
    while True:
        out = host._run([*host._enter(), "python3", "-c", code])
        if out.returncode == 0 and out.stdout:
            return out.stdout.strip()
        assert time.monotonic() < deadline, out.stderr
        time.sleep(0.2)


_SERVER = ("sh", "-c", "echo hello-e2e > /tmp/x; while true; do nc -l -p 8080 < /tmp/x; done")


def published_port(host: PodmanHost, _switch: Switch) -> list[Any]:
    """``-p 127.0.0.1:18080:8080`` (portmap chained after bridge; on our host both are ours)."""
    net = "e2e-port"
    try:
        host.network_create(net, "cnt-e2e-port", "--subnet", "10.89.12.0/24")
        host.run_container("port-a", "--network", net, "-p", "127.0.0.1:18080:8080", command=_SERVER)
        assert _fetch(host, 18080) == "hello-e2e"
        seen = observe(host, [net], ["port-a"])
        assert any("18080" in line for line in seen["iptables"])
        host.podman("rm", "-f", "-t", "0", "port-a")
        assert_nothing_left(host, [net])
        return [seen, observe(host, [net], [])]
    finally:
        cleanup(host, ["port-a"], [net])


def static_ip_and_mac(host: PodmanHost, _switch: Switch) -> list[Any]:
    """``--ip`` and ``--mac-address`` reach the plugins (CNI_ARGS IP and MAC)."""
    net, mac = "e2e-static", "0a:58:0a:59:0d:32"
    try:
        host.network_create(net, "cnt-e2e-static", "--subnet", "10.89.13.0/24")
        host.run_container("static-a", "--network", net, "--ip", "10.89.13.50", "--mac-address", mac)
        seen = observe(host, [net], ["static-a"], macs=[mac])
        assert seen["containers"]["static-a"]["addresses"]["eth0"] == ["10.89.13.50/24"]
        assert seen["containers"]["static-a"]["inspect"][net]["MacAddress"] == mac
        assert [link["mac"] for link in seen["containers"]["static-a"]["links"] if link["name"] == "eth0"] == [mac]
        host.podman("rm", "-f", "-t", "0", "static-a")
        assert_nothing_left(host, [net])
        return [seen, observe(host, [net], [])]
    finally:
        cleanup(host, ["static-a"], [net])


def _defaults(seen: dict[str, Any], container: str) -> list[tuple[str, str, str | None]]:
    routes = seen["containers"][container]["routes"]["-4"]
    return sorted((r["gateway"], r["dev"], r.get("protocol")) for r in routes if r["dst"] == "default")


def several_networks(host: PodmanHost, _switch: Switch) -> list[Any]:
    """One container on three networks (``--network`` thrice), then on one plus ``network connect`` and
    ``disconnect``: a default route per interface, as the reference leaves them."""
    nets = ["e2e-m0", "e2e-m1", "e2e-m2"]
    try:
        for i, net in enumerate(nets):
            host.network_create(net, f"cnt-e2e-m{i}", "--subnet", f"10.89.2{i}.0/24")
        host.run_container("multi-a", *[arg for net in nets for arg in ("--network", net)])
        three = observe(host, nets, ["multi-a"])
        devices = [_dev_of(three, "multi-a", f"10.89.2{i}.") for i in range(3)]
        assert sorted(devices) == ["eth0", "eth1", "eth2"]
        assert _defaults(three, "multi-a") == [(f"10.89.2{i}.1", devices[i], "boot") for i in range(3)]
        # podman names the interfaces in map order (random): name them by their network to compare.
        three = _sort_observation(_renamed(three, {device: f"if-m{i}" for i, device in enumerate(devices)}))
        host.podman("rm", "-f", "-t", "0", "multi-a")
        host.run_container("multi-b", "--network", nets[0])
        host.podman("network", "connect", nets[1], "multi-b")
        connected = observe(host, nets, ["multi-b"])
        assert _defaults(connected, "multi-b") == [("10.89.20.1", "eth0", "boot"), ("10.89.21.1", "eth1", "boot")]
        host.podman("network", "disconnect", nets[1], "multi-b")
        disconnected = observe(host, nets, ["multi-b"])
        assert _defaults(disconnected, "multi-b") == [("10.89.20.1", "eth0", "boot")]
        host.podman("rm", "-f", "-t", "0", "multi-b")
        assert_nothing_left(host, nets)
        return [three, connected, disconnected, observe(host, nets, [])]
    finally:
        cleanup(host, ["multi-a", "multi-b"], nets)


def _dev_of(seen: dict[str, Any], container: str, prefix: str) -> str:
    found = [dev for dev, addrs in seen["containers"][container]["addresses"].items()
             if any(a.startswith(prefix) for a in addrs)]
    assert len(found) == 1, found
    return found[0]


def dual_stack(host: PodmanHost, _switch: Switch) -> list[Any]:
    """``--ipv6`` with an IPv4 and an IPv6 subnet: both addresses, both default routes."""
    net = "e2e-dual"
    try:
        host.network_create(net, "cnt-e2e-dual", "--ipv6", "--subnet", "10.89.15.0/24", "--subnet", "fd89:15::/64")
        host.run_container("dual-a", "--network", net, "--cap-add", "NET_RAW")
        seen = observe(host, [net], ["dual-a"])
        assert seen["containers"]["dual-a"]["addresses"]["eth0"] == ["10.89.15.2/24", "fd89:15::2/64"]
        assert [r.get("gateway") for r in seen["containers"]["dual-a"]["routes"]["-6"] if r["dst"] == "default"] == [
            "fd89:15::1"]
        host.podman("exec", "dual-a", "ping", "-c", "1", "-W", "5", "fd89:15::1")
        host.podman("rm", "-f", "-t", "0", "dual-a")
        assert_nothing_left(host, [net])
        return [seen, observe(host, [net], [])]
    finally:
        cleanup(host, ["dual-a"], [net])


def internal_and_mtu(host: PodmanHost, _switch: Switch) -> list[Any]:
    """``--internal`` (no gateway on the bridge, no masquerade, no default route) and ``-o mtu=1400``."""
    net = "e2e-internal"
    try:
        conf = host.network_create(net, "cnt-e2e-int", "--internal", "-o", "mtu=1400", "--subnet", "10.89.16.0/24")
        assert conf["plugins"][0]["mtu"] == 1400 and not conf["plugins"][0]["isGateway"]
        host.run_container("int-a", "--network", net)
        seen = observe(host, [net], ["int-a"])
        assert [link["mtu"] for link in seen["containers"]["int-a"]["links"] if link["name"] == "eth0"] == [1400]
        assert [r for r in seen["containers"]["int-a"]["routes"]["-4"] if r["dst"] == "default"] == []
        host.podman("rm", "-f", "-t", "0", "int-a")
        assert_nothing_left(host, [net])
        return [seen, observe(host, [net], [])]
    finally:
        cleanup(host, ["int-a"], [net])


def network_reload(host: PodmanHost, _switch: Switch) -> list[Any]:
    """``podman network reload`` after the NAT table was flushed (a firewall reload) restores the port."""
    net = "e2e-reload"
    try:
        host.network_create(net, "cnt-e2e-reload", "--subnet", "10.89.17.0/24")
        host.run_container("reload-a", "--network", net, "-p", "127.0.0.1:18081:8080", command=_SERVER)
        assert _fetch(host, 18081) == "hello-e2e"
        before = observe(host, [net], ["reload-a"])
        host.in_host("iptables", "-w", "-t", "nat", "-F")
        host.podman("network", "reload", "reload-a")
        assert _fetch(host, 18081) == "hello-e2e"
        after = observe(host, [net], ["reload-a"])
        assert after["containers"] == before["containers"]
        host.podman("rm", "-f", "-t", "0", "reload-a")
        assert_nothing_left(host, [net])
        return [before, after, observe(host, [net], [])]
    finally:
        cleanup(host, ["reload-a"], [net])


def parallel_starts(host: PodmanHost, _switch: Switch) -> list[Any]:
    """20 containers started at once, then removed at once: distinct addresses, and nothing left."""
    net, names = "e2e-par", [f"par-{i}" for i in range(20)]
    try:
        host.network_create(net, "cnt-e2e-par", "--subnet", "10.89.18.0/24")
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            list(pool.map(lambda name: host.run_container(name, "--network", net), names))
        addresses = sorted(ip_of(host, name, net) for name in names)
        assert addresses == sorted(f"10.89.18.{i}" for i in range(2, 22))
        reserved = [f for f in host.store() if f.startswith(f"{net}/") and not f.split("/")[1].startswith("last_")]
        assert len(reserved) == 20 and len(host.cache()) == 20 and len(host.veths()) == 20
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            list(pool.map(lambda name: host.podman("rm", "-f", "-t", "0", name), names))
        assert_nothing_left(host, [net])
        # Which container got which address depends on the start order: compare what is left only.
        return [observe(host, [net], [])]
    finally:
        cleanup(host, names, [net])


def exhaustion(host: PodmanHost, _switch: Switch) -> list[Any]:
    """A /30 holds one container besides the gateway; the second gets the reference's message."""
    net = "e2e-full"
    try:
        host.network_create(net, "cnt-e2e-full", "--subnet", "10.89.19.0/30")
        host.run_container("full-a", "--network", net)
        refused = host.podman("run", "-d", "--name", "full-b", "--network", net, "localhost/cnt-busybox:latest",
                              "sleep", "1000", check=False)
        assert refused.returncode != 0
        message = next(line for line in refused.stderr.splitlines() if "plugin type" in line)
        assert message.endswith('plugin type="bridge" failed (add): cni plugin bridge failed: failed to allocate for '
                                "range 0: no IP addresses available in range set: 10.89.19.1-10.89.19.2"), message
        seen = observe(host, [net], ["full-a"])
        host.podman("rm", "-f", "-t", "0", "full-a", "full-b")
        assert_nothing_left(host, [net])
        return [host.normalise(message), seen, observe(host, [net], [])]
    finally:
        cleanup(host, ["full-a", "full-b"], [net])


def mixed_use(host: PodmanHost, switch: Switch) -> list[Any]:
    """One network used by both implementations in turn (on our host; the reference's uses its own only):
    each sees the other's reservations, and each removes the other's containers."""
    net = "e2e-mixed"
    try:
        host.network_create(net, "cnt-e2e-mixed", "--subnet", "10.89.14.0/24")
        host.run_container("mix-a", "--network", net)
        switch(True)
        host.run_container("mix-b", "--network", net)
        switch(False)
        host.run_container("mix-c", "--network", net)
        assert [ip_of(host, n, net) for n in ("mix-a", "mix-b", "mix-c")] == ["10.89.14.2", "10.89.14.3",
                                                                             "10.89.14.4"]
        seen = observe(host, [net], ["mix-a", "mix-b", "mix-c"])
        host.podman("rm", "-f", "-t", "0", "mix-b")  # added by the reference, deleted by ours
        switch(True)
        host.podman("rm", "-f", "-t", "0", "mix-a")  # added by ours, deleted by the reference
        host.run_container("mix-d", "--network", net)
        switch(False)
        assert ip_of(host, "mix-d", net) == "10.89.14.5"
        host.podman("rm", "-f", "-t", "0", "mix-c", "mix-d")
        assert_nothing_left(host, [net])
        return [seen, observe(host, [net], [])]
    finally:
        switch(False)
        cleanup(host, ["mix-a", "mix-b", "mix-c", "mix-d"], [net])


@pytest.mark.parametrize("scenario", [two_containers, published_port,
                                      static_ip_and_mac, several_networks, dual_stack, internal_and_mtu,
                                      network_reload, parallel_starts,
                                      exhaustion, mixed_use])
def test_podman_scenario_matches_reference(scenario: Scenario, ours: PodmanHost, reference: PodmanHost) -> None:
    run_both(ours, reference, scenario)
