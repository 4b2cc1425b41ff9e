"""The link backend contract: every backend gives the same observable results.

Each scenario runs on the backend under test and on the fake; the scenario
asserts the semantics it relies on (so each backend is checked directly), and the
two runs' normalised observations must be equal (so the fake stays a faithful
model of the kernel).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from backends_support import REAL_BACKENDS, Env, outcome, state
from support import skip_if_vlan_filtering_refused

from cnicore._errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidEnvironmentError,
    NamespaceNotFoundError,
    NotFoundError,
)
from cnicore.links import Address, BridgeSpec, PortVlan, Route

pytestmark = pytest.mark.root

Scenario = Callable[[Env], list[Any]]


def compare(env: Env, fake_env: Env, scenario: Scenario) -> None:
    observed = scenario(env)
    if env.backend.name != "fake":
        assert observed == scenario(fake_env)


def bridge_and_veth(e: Env) -> list[Any]:
    b, host, ctr = e.backend, e.host, e.container
    br = b.ensure_bridge(host, BridgeSpec(name="cnt-br0", mtu=1400, promiscuous=True))
    assert br.kind == "bridge" and br.admin_up and br.promiscuous and br.mtu == 1400
    again = b.ensure_bridge(host, BridgeSpec(name="cnt-br0"))
    assert again.index == br.index
    pair = b.create_veth(ctr, "eth0", host, mtu=1450, container_mac="0a:58:0a:01:02:03")
    assert pair.container.name == "eth0" and pair.container.mac == "0a:58:0a:01:02:03"
    assert pair.host.name.startswith("veth") and len(pair.host.name) == 12
    assert int(pair.host.name[4:], 16) >= 0 and pair.host.name[4:] == pair.host.name[4:].lower()
    assert not pair.container.admin_up and not pair.host.admin_up
    # The container end was born in the container namespace, the peer in the host's.
    assert [link.name for link in b.list_links(ctr)] == ["lo", "eth0"]
    assert pair.host.name in [link.name for link in b.list_links(host)]
    b.set_master(host, pair.host.name, "cnt-br0")
    b.set_hairpin(host, pair.host.name, True)
    b.set_link_up(host, pair.host.name)
    first = state(b, host, ctr)
    b.set_link_up(ctr, "eth0")
    port = b.get_link(host, pair.host.name)
    assert port.master == "cnt-br0" and port.hairpin and port.carrier
    # The bridge follows its smallest port's MTU unless its MTU was set.
    assert b.get_link(host, "cnt-br0").mtu == 1450
    second = state(b, host, ctr)
    b.delete_link(ctr, "eth0")
    assert pair.host.name not in [link.name for link in b.list_links(host)]
    assert b.get_link(host, "cnt-br0").mtu == 1500
    return [first, second, state(b, host, ctr)]


def addresses_and_routes(e: Env) -> list[Any]:
    b, host, ctr = e.backend, e.host, e.container
    b.create_veth(ctr, "eth0", host)
    v4, v6 = Address.parse("10.1.2.2/24"), Address.parse("2001:db8::2/64")
    b.add_address(ctr, "eth0", v4)
    b.add_address(ctr, "eth0", v6)
    down = state(b, ctr)
    assert b.list_routes(ctr) == ()  # no subnet route while the link is down
    b.set_link_up(ctr, "eth0")
    b.set_link_up(ctr, "lo")
    assert [str(a) for a in b.list_addresses(ctr, "lo")] == ["127.0.0.1/8", "::1/128"]
    assert [str(a) for a in b.list_addresses(ctr, "eth0")] == ["10.1.2.2/24", "2001:db8::2/64"]
    kernel = b.list_routes(ctr)
    assert Route(dst="10.1.2.0/24", device="eth0", scope="link", source="10.1.2.2", metric=0) in kernel
    assert Route(dst="2001:db8::/64", device="eth0", metric=256) in kernel
    b.add_route(ctr, Route(dst="0.0.0.0/0", gateway="10.1.2.1"))
    b.add_route(ctr, Route(dst="10.9.0.0/16", device="eth0", scope="link", metric=7))
    b.add_route(ctr, Route(dst="::/0", gateway="2001:db8::1", device="eth0"))
    b.add_route(ctr, Route(dst="10.20.0.0/16", device="eth0", scope="link", table=100))
    assert b.list_routes(ctr, table=100) == (
        Route(dst="10.20.0.0/16", device="eth0", scope="link", table=100, metric=0),)
    assert all(r.table == 254 for r in b.list_routes(ctr))
    assert {r.version for r in b.list_routes(ctr, version=6)} == {6}
    up = state(b, ctr)
    errors = [
        outcome(b.add_address, ctr, "eth0", v4),
        outcome(b.add_address, ctr, "eth0", Address.parse("2001:db8::2/80")),
        outcome(b.add_route, ctr, Route(dst="0.0.0.0/0", gateway="10.1.2.1")),
        outcome(b.add_route, ctr, Route(dst="10.8.0.0/16", gateway="10.7.0.1")),
        outcome(b.add_route, ctr, Route(dst="10.8.0.0/16", gateway="10.1.2.2")),
        outcome(b.delete_route, ctr, Route(dst="10.8.0.0/16", device="eth0")),
        outcome(b.delete_address, ctr, "eth0", Address.parse("10.1.2.3/24")),
        outcome(b.delete_route, ctr, Route(dst="10.9.0.0/16", device="eth0")),
    ]
    assert errors[:2] == ["AlreadyExistsError", "AlreadyExistsError"]
    # IPv4 takes one of our own addresses as a gateway (errors[4]), so deleting that route works.
    assert errors[2:] == ["AlreadyExistsError", "InternalError", "ok", "ok", "NotFoundError", "ok"]
    b.delete_address(ctr, "eth0", v4)
    after_delete = state(b, ctr)
    b.set_link_up(ctr, "eth0", up=False)
    # Down: routes through the link go, IPv6 addresses go (keep_addr_on_down is 0), IPv4 ones stay.
    assert b.list_routes(ctr) == ()
    assert [str(a) for a in b.list_addresses(ctr, "eth0")] == []
    b.add_address(ctr, "eth0", v4)
    b.write_sysctl(ctr, "net/ipv6/conf/eth0/keep_addr_on_down", 1)
    b.set_link_up(ctr, "eth0")
    b.add_address(ctr, "eth0", v6)
    b.set_link_up(ctr, "eth0", up=False)
    kept = state(b, ctr)
    assert [str(a) for a in b.list_addresses(ctr, "eth0")] == ["10.1.2.2/24", "2001:db8::2/64"]
    b.set_link_up(ctr, "lo", up=False)
    assert [str(a) for a in b.list_addresses(ctr, "lo")] == ["127.0.0.1/8"]
    return [down, up, errors, after_delete, kept, state(b, ctr)]


def route_metrics(e: Env) -> list[Any]:
    """Routes to one prefix with different metrics; a delete without a metric takes the lowest, whatever
    the order they were added in (the kernel keeps a prefix's routes sorted by metric)."""
    b, host, ctr = e.backend, e.host, e.container
    b.create_veth(ctr, "eth0", host)
    b.add_address(ctr, "eth0", Address.parse("10.1.2.2/24"))
    b.add_address(ctr, "eth0", Address.parse("2001:db8::2/64"))
    b.set_link_up(ctr, "eth0")
    seen = []
    for dst, gateway, other in (("0.0.0.0/0", "10.1.2.1", 5), ("::/0", "2001:db8::1", 2048)):
        for first, second in ((other, None), (None, other)):
            b.add_route(ctr, Route(dst=dst, gateway=gateway, device="eth0", metric=first))
            b.add_route(ctr, Route(dst=dst, gateway=gateway, device="eth0", metric=second))
            b.delete_route(ctr, Route(dst=dst, gateway=gateway, device="eth0"))
            left = [r.metric for r in b.list_routes(ctr) if str(r.dst) == dst]
            assert left == [other]
            seen.append(state(b, ctr))
            b.delete_route(ctr, Route(dst=dst, device="eth0"))
    seen.append(outcome(b.delete_route, ctr, Route(dst="0.0.0.0/0", device="eth0")))
    assert seen[-1] == "NotFoundError"
    return seen


def routes_on_several_interfaces(e: Env) -> list[Any]:
    """One namespace on three networks: a default route per interface, as the reference adds them (no
    NLM_F_EXCL). IPv4 keeps them side by side; IPv6 merges them into one multipath route, listed per next
    hop. Only the very same route is refused."""
    b, host, ctr = e.backend, e.host, e.container
    nets = (("eth0", "10.1.2", "2001:db8:2"), ("eth1", "10.1.3", "2001:db8:3"), ("eth2", "10.1.4", None))
    for ifname, v4, v6 in nets:
        b.create_veth(ctr, ifname, host)
        b.add_address(ctr, ifname, Address.parse(f"{v4}.2/24"))
        if v6 is not None:
            b.add_address(ctr, ifname, Address.parse(f"{v6}::2/64"))
        b.set_link_up(ctr, ifname)
    for ifname, v4, v6 in nets:
        b.add_route(ctr, Route(dst="0.0.0.0/0", gateway=f"{v4}.1", device=ifname))
        if v6 is not None:
            b.add_route(ctr, Route(dst="::/0", gateway=f"{v6}::1", device=ifname))
    defaults = [(str(r.gateway), r.device, r.metric) for r in b.list_routes(ctr) if r.dst.prefixlen == 0]
    assert defaults == [("10.1.2.1", "eth0", 0), ("10.1.3.1", "eth1", 0), ("10.1.4.1", "eth2", 0),
                        ("2001:db8:2::1", "eth0", 1024), ("2001:db8:3::1", "eth1", 1024)]
    everything = state(b, ctr)
    again = [outcome(b.add_route, ctr, Route(dst="0.0.0.0/0", gateway="10.1.3.1", device="eth1")),
             outcome(b.add_route, ctr, Route(dst="::/0", gateway="2001:db8:3::1", device="eth1")),
             outcome(b.add_route, ctr, Route(dst="10.9.0.0/16", gateway="10.1.4.1", device="eth2")),
             outcome(b.add_route, ctr, Route(dst="10.9.0.0/16", gateway="10.1.4.1", device="eth2"))]
    assert again == ["AlreadyExistsError", "AlreadyExistsError", "ok", "AlreadyExistsError"]
    # One next hop of the IPv6 multipath route goes; the other stays.
    b.delete_route(ctr, Route(dst="::/0", gateway="2001:db8:2::1", device="eth0"))
    assert [(str(r.gateway), r.device) for r in b.list_routes(ctr, version=6) if r.dst.prefixlen == 0] == [
        ("2001:db8:3::1", "eth1")]
    one_v6 = state(b, ctr)
    # An interface leaving takes its default routes along; the others stay.
    b.delete_link(ctr, "eth1")
    assert [(str(r.gateway), r.device) for r in b.list_routes(ctr) if r.dst.prefixlen == 0] == [
        ("10.1.2.1", "eth0"), ("10.1.4.1", "eth2")]
    return [everything, again, one_v6, state(b, ctr)]


def errors_and_names(e: Env) -> list[Any]:
    b, host, ctr = e.backend, e.host, e.container
    b.create_veth(ctr, "eth0", host)
    results = [
        outcome(b.create_veth, ctr, "eth0", host),
        outcome(b.get_link, ctr, "nope0"),
        outcome(b.delete_link, ctr, "nope0"),
        outcome(b.set_link_up, ctr, "nope0"),
        outcome(b.get_link, ctr, "a" * 16),
        outcome(b.create_veth, ctr, "bad/name", host),
        outcome(b.set_hairpin, ctr, "eth0", True),
        outcome(b.set_master, ctr, "eth0", "nope0"),
        outcome(b.open_namespace, "/var/run/netns/cnt-does-not-exist"),
        outcome(b.read_sysctl, ctr, "net/ipv6/conf/nope0/accept_ra"),
        outcome(b.read_sysctl, ctr, "kernel/hostname"),
        outcome(b.set_mtu, ctr, "eth0", 10),
        outcome(b.set_mac, ctr, "eth0", "01:00:5e:00:00:01"),
        # A veth pair the kernel would refuse is refused whole, before either end exists.
        outcome(b.create_veth, ctr, "cnt-v0", host, mtu=10),
        outcome(b.create_veth, ctr, "cnt-v0", host, container_mac="01:00:5e:00:00:01"),
        outcome(b.get_link, ctr, "cnt-v0"),
    ]
    assert results == [
        "AlreadyExistsError", "NotFoundError", "NotFoundError", "NotFoundError",
        "InvalidEnvironmentError", "InvalidEnvironmentError", "NotFoundError", "NotFoundError",
        "NamespaceNotFoundError", "NotFoundError", "InvalidConfigError", "InvalidConfigError", "InvalidConfigError",
        "InvalidConfigError", "InvalidConfigError", "NotFoundError",
    ]
    with pytest.raises(AlreadyExistsError, match=r'container veth name \("eth0"\) peer provided \("veth'):
        b.create_veth(ctr, "eth0", host)
    b.create_veth(host, "cnt-notbr", ctr)
    with pytest.raises(AlreadyExistsError, match=r'^"cnt-notbr" already exists but is not a bridge$'):
        b.ensure_bridge(host, BridgeSpec(name="cnt-notbr"))
    with pytest.raises(NotFoundError):
        b.get_link(ctr, "nope0")
    with pytest.raises(InvalidEnvironmentError):
        b.get_link(ctr, "a" * 16)
    with pytest.raises(InvalidConfigError):
        b.write_sysctl(ctr, "net/ipv4/ip_forward", "yes")
    return results


def sysctls(e: Env) -> list[Any]:
    b, host, ctr = e.backend, e.host, e.container
    # A new namespace copies the IPv4 settings of the machine's own (net.ipv4.ip_forward, conf/default/*),
    # so the scenario sets the ones it reads first: it starts from the same state on any host (one that
    # forwards included) and on the fake. IPv6 starts from the kernel's defaults whatever the host has.
    for ns in (host, ctr):
        b.write_sysctl(ns, "net/ipv4/ip_forward", 0)
        b.write_sysctl(ns, "net/ipv4/conf/default/arp_notify", 0)
    b.create_veth(ctr, "eth0", host)
    keys = [
        "net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/ipv6/conf/eth0/accept_ra",
        "net/ipv6/conf/eth0/accept_dad", "net/ipv6/conf/eth0/enhanced_dad", "net/ipv4/conf/eth0/arp_notify",
        "net/ipv6/conf/eth0/disable_ipv6", "net/ipv6/conf/eth0/keep_addr_on_down", "net/ipv6/conf/lo/accept_dad",
        "net/ipv6/conf/eth0/forwarding", "net/ipv4/conf/eth0/forwarding",
    ]
    before = [b.read_sysctl(ctr, k) for k in keys]
    assert before[:3] == ["0", "0", "1"]
    b.write_sysctl(ctr, "net/ipv4/ip_forward", 1)
    b.write_sysctl(ctr, "net.ipv6.conf.all.forwarding", "1")
    b.write_sysctl(ctr, "net/ipv6/conf/eth0/accept_dad", 0)
    b.write_sysctl(ctr, "net/ipv4/conf/eth0/arp_notify", 1)
    after = [b.read_sysctl(ctr, k) for k in keys]
    assert after[0] == "1" and after[9] == "1" and after[10] == "1"
    # Sysctls are per namespace: the host side did not change.
    assert b.read_sysctl(host, "net/ipv4/ip_forward") == "0"
    b.add_address(ctr, "eth0", Address.parse("2001:db8::5/64"))
    b.write_sysctl(ctr, "net/ipv6/conf/eth0/disable_ipv6", 1)
    assert b.list_addresses(ctr, "eth0") == ()
    denied = outcome(b.add_address, ctr, "eth0", Address.parse("2001:db8::5/64"))
    assert denied == "PermissionDeniedError"
    return [before, after, denied]


def namespace_gone(e: Env, remove: Callable[[str], None]) -> list[Any]:
    b, ctr = e.backend, e.container
    assert ctr.path is not None
    remove(ctr.path)
    results = [outcome(b.list_links, ctr), outcome(b.get_link, ctr, "lo"), outcome(b.create_veth, ctr, "eth0",
               e.host), outcome(b.read_sysctl, ctr, "net/ipv4/ip_forward")]
    assert results == ["NamespaceNotFoundError"] * 4
    with pytest.raises(NamespaceNotFoundError):
        b.list_links(ctr)
    with pytest.raises(NamespaceNotFoundError):
        b.open_namespace(ctr.path)
    # Nothing was created by accident at the missing path.
    if b.name != "fake":
        assert not os.path.exists(ctr.path)
    return results


def link_options(e: Env) -> list[Any]:
    b, host, ctr = e.backend, e.host, e.container
    b.create_veth(ctr, "eth0", host)
    fresh = b.get_link(ctr, "eth0")
    assert not fresh.promiscuous and not fresh.allmulti and fresh.alias == "" and fresh.txqueuelen == 0
    b.set_link_options(ctr, "eth0", promiscuous=True, allmulti=True, txqueuelen=42, alias="cnt tuned ü")
    tuned = b.get_link(ctr, "eth0")
    assert (tuned.promiscuous, tuned.allmulti, tuned.txqueuelen, tuned.alias) == (True, True, 42, "cnt tuned ü")
    b.set_link_options(ctr, "eth0", promiscuous=True, allmulti=True, txqueuelen=42, alias="cnt tuned ü")  # idempotent
    assert b.get_link(ctr, "eth0") == tuned
    b.set_link_options(ctr, "eth0", allmulti=False)  # only what is given changes
    partly = b.get_link(ctr, "eth0")
    assert (partly.promiscuous, partly.allmulti, partly.txqueuelen, partly.alias) == (True, False, 42, "cnt tuned ü")
    b.set_link_options(ctr, "eth0", promiscuous=False, txqueuelen=0, alias="")
    back = b.get_link(ctr, "eth0")
    assert (back.promiscuous, back.allmulti, back.txqueuelen, back.alias) == (False, False, 0, "")
    errors = [outcome(b.set_link_options, ctr, "nosuch0", promiscuous=True),
              outcome(b.set_link_options, ctr, "nosuch0"),
              outcome(b.set_link_options, ctr, "eth0", txqueuelen=-1),
              outcome(b.set_link_options, ctr, "eth0", alias="x" * 256)]
    assert errors == ["NotFoundError", "NotFoundError", "InvalidConfigError", "InvalidConfigError"]
    return [state(b, ctr), errors]


def net_sysctls(e: Env) -> list[Any]:
    b, host, ctr = e.backend, e.host, e.container
    b.create_veth(ctr, "eth0", host)
    before = [b.read_net_sysctl(ctr, key) for key in ("net/core/somaxconn", "net/ipv4/ip_local_port_range",
                                                      "net/ipv4/conf/eth0/arp_notify")]
    assert before == ["4096", "32768\t60999", "0"]
    b.write_net_sysctl(ctr, "net/core/somaxconn", "500")
    b.write_net_sysctl(ctr, "net/ipv4/ip_local_port_range", "40000\t50000")
    b.write_net_sysctl(ctr, "net/ipv4/conf/eth0/arp_notify", "1")
    b.write_net_sysctl(ctr, "net/ipv4/ip_forward", "1")
    after = [b.read_net_sysctl(ctr, key) for key in ("net/core/somaxconn", "net/ipv4/ip_local_port_range",
                                                     "net/ipv4/conf/eth0/arp_notify", "net/ipv4/conf/eth0/forwarding")]
    assert after == ["500", "40000\t50000", "1", "1"]
    # The plugin-sysctl view and the net-sysctl view are one store.
    assert b.read_sysctl(ctr, "net/ipv4/conf/eth0/arp_notify") == "1"
    assert b.read_net_sysctl(host, "net/core/somaxconn") == "4096"  # per namespace
    errors = [outcome(b.read_net_sysctl, ctr, "net/core/nosuch_cnt"),
              outcome(b.write_net_sysctl, ctr, "net/ipv4/conf/nosuch0/arp_notify", "1"),
              outcome(b.write_net_sysctl, ctr, "net/ipv4/ip_forward", "yes"),
              outcome(b.read_net_sysctl, ctr, "kernel/hostname"),
              outcome(b.write_net_sysctl, ctr, "net/../kernel/hostname", "x")]
    assert errors == ["NotFoundError", "NotFoundError", "InternalError", "InvalidConfigError", "InvalidConfigError"]
    return [before, after, errors]


@pytest.mark.parametrize("scenario", [bridge_and_veth, addresses_and_routes, route_metrics,
                                      routes_on_several_interfaces, errors_and_names, sysctls, link_options,
                                      net_sysctls])
def test_same_behaviour_as_the_fake(env: Env, fake_env: Env, scenario: Scenario) -> None:
    compare(env, fake_env, scenario)


def test_missing_namespace(env: Env) -> None:
    import subprocess

    from cnicore.backends import FakeLinkBackend

    def remove(path: str) -> None:
        if isinstance(env.backend, FakeLinkBackend):
            env.backend.remove_namespace(path)
        else:
            subprocess.run(["ip", "netns", "delete", path.rsplit("/", 1)[1]], check=True)

    namespace_gone(env, remove)


def test_peer_name_clash_draws_again(env: Env) -> None:
    """A taken host name is drawn again; only the container name's clash is an error."""
    names = iter(["vethaaaaaaaa", "vethaaaaaaaa", "vethbbbbbbbb"])
    env.backend._peer_names = lambda: next(names)  # type: ignore[attr-defined]
    first = env.backend.create_veth(env.container, "eth0", env.host)
    second = env.backend.create_veth(env.container, "eth1", env.host)
    assert (first.host.name, second.host.name) == ("vethaaaaaaaa", "vethbbbbbbbb")


def test_vlan_filtering_bridge(env: Env) -> None:
    spec = BridgeSpec(name="cnt-brv", vlan_filtering=True)
    with skip_if_vlan_filtering_refused("cnt-brv"):
        link = env.backend.ensure_bridge(env.host, spec)
    assert link.vlan_filtering
    assert env.backend.get_link(env.host, "cnt-brv").vlan_filtering


def port_isolation(e: Env) -> list[Any]:
    b, host, ctr = e.backend, e.host, e.container
    b.ensure_bridge(host, BridgeSpec(name="cnt-bri"))
    pair = b.create_veth(ctr, "eth0", host)
    peer = pair.host.name
    seen: list[Any] = [outcome(b.set_port_isolation, host, peer, True)]  # not a port yet
    b.set_master(host, peer, "cnt-bri")
    seen.append(b.get_link(host, peer).isolated)
    for on in (True, True, False, True):  # idempotent both ways
        b.set_port_isolation(host, peer, on)
        seen.append(b.get_link(host, peer).isolated)
    assert seen == ["NotFoundError", False, True, True, False, True]
    # Leaving the bridge drops the port's flags; joining again starts clean.
    b.set_master(host, peer, None)
    b.set_master(host, peer, "cnt-bri")
    seen.append(b.get_link(host, peer).isolated)
    assert seen[-1] is False
    seen.append(outcome(b.set_port_isolation, host, "cnt-missing", True))
    assert seen[-1] == "NotFoundError"
    return seen


def test_port_isolation(env: Env, fake_env: Env) -> None:
    compare(env, fake_env, port_isolation)


def port_vlans(e: Env) -> list[Any]:
    b, host, ctr = e.backend, e.host, e.container
    b.ensure_bridge(host, BridgeSpec(name="cnt-brv", vlan_filtering=True))
    pair = b.create_veth(ctr, "eth0", host)
    peer = pair.host.name
    seen: list[Any] = [outcome(b.list_port_vlans, host, peer), outcome(b.set_port_vlans, host, peer, remove=(1,))]
    b.set_master(host, peer, "cnt-brv")
    default = b.list_port_vlans(host, peer)
    assert default == (PortVlan(vid=1, pvid=True, untagged=True),)
    wanted = (PortVlan(vid=5, pvid=True, untagged=True), PortVlan(vid=10), PortVlan(vid=11))
    for _ in range(2):  # idempotent, removing a missing VLAN included
        b.set_port_vlans(host, peer, remove=(1,), add=wanted)
        assert b.list_port_vlans(host, peer) == wanted
    # The PVID moves to the VLAN added last with it; re-adding without flags clears them.
    b.set_port_vlans(host, peer, add=(PortVlan(vid=10, pvid=True),))
    b.set_port_vlans(host, peer, add=(PortVlan(vid=5),))
    after = b.list_port_vlans(host, peer)
    assert after == (PortVlan(vid=5), PortVlan(vid=10, pvid=True), PortVlan(vid=11))
    b.set_master(host, peer, None)
    b.set_master(host, peer, "cnt-brv")
    rejoined = b.list_port_vlans(host, peer)
    assert rejoined == default
    return [*seen, default, after, rejoined]


def test_port_vlans(env: Env, fake_env: Env) -> None:
    with skip_if_vlan_filtering_refused("cnt-brv"):
        env.backend.ensure_bridge(env.host, BridgeSpec(name="cnt-brv", vlan_filtering=True))
    env.backend.delete_link(env.host, "cnt-brv")
    compare(env, fake_env, port_vlans)


def test_port_vlan_ids_are_checked_before_anything_changes(env: Env) -> None:
    b, host = env.backend, env.host
    b.ensure_bridge(host, BridgeSpec(name="cnt-brc"))
    pair = b.create_veth(env.container, "eth0", host)
    b.set_master(host, pair.host.name, "cnt-brc")
    before = b.get_link(host, pair.host.name)
    for bad in (0, 4095):
        with pytest.raises(InvalidConfigError):
            b.set_port_vlans(host, pair.host.name, remove=(bad,))
        with pytest.raises(InvalidConfigError):
            PortVlan(vid=bad)
    assert b.get_link(host, pair.host.name) == before


def test_delete_bridge_releases_ports_and_namespace_delete_takes_peers(env: Env) -> None:
    b, host, ctr = env.backend, env.host, env.container
    b.ensure_bridge(host, BridgeSpec(name="cnt-br1"))
    pair = b.create_veth(ctr, "eth0", host)
    b.set_master(host, pair.host.name, "cnt-br1")
    b.delete_link(host, "cnt-br1")
    assert b.get_link(host, pair.host.name).master is None
    b.set_master(host, pair.host.name, None)
    assert [link.name for link in b.list_links(host)] == ["lo", pair.host.name]


@pytest.mark.parametrize("kind", REAL_BACKENDS)
def test_namespace_by_process_path(kind: str, netns: Any) -> None:
    """CNI_NETNS may be /proc/PID/ns/net: a namespace held only by a process."""
    import subprocess

    from backends_support import make_backend, real_available

    reason = real_available(kind)
    if reason is not None:
        pytest.skip(reason)
    path = netns.add()
    name = path.rsplit("/", 1)[1]
    holder = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "60"])
    try:
        # Until `ip netns exec` has entered the namespace, the process's namespace is ours (the host's).
        target = os.stat(path).st_ino
        deadline = time.monotonic() + 10
        while os.stat(f"/proc/{holder.pid}/ns/net").st_ino != target:
            assert time.monotonic() < deadline, "the holder never entered its namespace"
            time.sleep(0.01)
        b = make_backend(kind)
        host = b.open_namespace(netns.add())
        ctr = b.open_namespace(f"/proc/{holder.pid}/ns/net")
        b.create_veth(ctr, "eth0", host)
        b.add_address(ctr, "eth0", Address.parse("10.3.0.2/24"))
        assert [str(a) for a in b.get_link(ctr, "eth0").addresses] == ["10.3.0.2/24"]
        assert b.read_sysctl(ctr, "net/ipv6/conf/eth0/accept_ra") == "1"
        out = subprocess.run(["ip", "-n", name, "-o", "link", "show", "eth0"], capture_output=True, text=True)
        assert out.returncode == 0  # the same namespace as the named one
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(NamespaceNotFoundError):
        b.open_namespace("/proc/999999999/ns/net")


@pytest.mark.parametrize("kind", REAL_BACKENDS)
def test_addresses_as_ip_adds_them(kind: str, netns: Any) -> None:
    """What the kernel holds after add_address, seen by ``ip``: IPv4 gets the broadcast address the
    reference sets (``brd +``) below /31, and a 127/8 address host scope, whichever backend adds it."""
    import json
    import subprocess

    from backends_support import make_backend, real_available

    reason = real_available(kind)
    if reason is not None:
        pytest.skip(reason)
    b = make_backend(kind)
    path = netns.add()
    ctr, host = b.open_namespace(path), b.open_namespace(netns.add())
    b.create_veth(ctr, "eth0", host)
    for text in ("10.1.2.2/24", "10.1.3.2/31", "10.1.4.2/32", "2001:db8::2/64"):
        b.add_address(ctr, "eth0", Address.parse(text))
    b.add_address(ctr, "lo", Address.parse("127.0.0.5/8"))
    out = subprocess.run(["ip", "-n", path.rsplit("/", 1)[1], "-j", "address", "show"], capture_output=True,
                         text=True, check=True).stdout
    seen = sorted((entry["ifname"], f"{info['local']}/{info['prefixlen']}", info.get("broadcast"), info["scope"])
                  for entry in json.loads(out) for info in entry.get("addr_info", [])
                  if not info["local"].startswith("fe80:"))
    assert seen == [
        ("eth0", "10.1.2.2/24", "10.1.2.255", "global"),
        ("eth0", "10.1.3.2/31", None, "global"),
        ("eth0", "10.1.4.2/32", None, "global"),
        ("eth0", "2001:db8::2/64", None, "global"),
        ("lo", "127.0.0.5/8", "127.255.255.255", "host"),
    ]
    b.delete_address(ctr, "lo", Address.parse("127.0.0.5/8"))
    assert b.list_addresses(ctr, "lo") == ()


@pytest.mark.parametrize("name", ["-x", "help", "dev", "up", "netns"])
def test_names_that_look_like_options_or_keywords(env: Env, name: str) -> None:
    """Names reach ``ip`` only in positions where they cannot be read as options or keywords."""
    b = env.backend
    b.create_veth(env.container, name, env.host)
    b.set_link_up(env.container, name)
    b.add_address(env.container, name, Address.parse("10.5.0.1/24"))
    link = b.get_link(env.container, name)
    assert (link.name, link.admin_up, [str(a) for a in link.addresses]) == (name, True, ["10.5.0.1/24"])
    assert Route(dst="10.5.0.0/24", device=name, scope="link", source="10.5.0.1", metric=0) in b.list_routes(
        env.container)
    b.delete_link(env.container, name)
    assert [x.name for x in b.list_links(env.container)] == ["lo"]


def veth_within_one_namespace(e: Env) -> list[Any]:
    """Both ends in the host (the bridge plugin's <bridge>.<vlan> gateway): no namespace crossing."""
    b, host = e.backend, e.host
    b.ensure_bridge(host, BridgeSpec(name="cnt-brg"))
    pair = b.create_veth(host, "cnt-brg.7", host, mtu=1400)
    assert pair.container.name == "cnt-brg.7" and pair.host.name.startswith("veth")
    names = sorted(link.name for link in b.list_links(host) if link.kind == "veth")
    assert names == sorted(["cnt-brg.7", pair.host.name])
    b.set_master(host, pair.host.name, "cnt-brg")
    b.set_link_up(host, pair.host.name)
    b.set_link_up(host, "cnt-brg.7")
    b.add_address(host, "cnt-brg.7", Address.parse("10.24.0.1/24"))
    seen = [state(b, host), outcome(b.create_veth, host, "cnt-brg.7", host)]
    assert seen[1] == "AlreadyExistsError"
    b.delete_link(host, "cnt-brg.7")  # the peer goes with it
    assert [link.name for link in b.list_links(host) if link.kind == "veth"] == []
    return [*seen, state(b, host)]


def test_veth_within_one_namespace(env: Env, fake_env: Env) -> None:
    compare(env, fake_env, veth_within_one_namespace)


def dad_states(e: Env) -> list[Any]:
    """DAD as the port reports it: tentative right after an IPv6 address is added with DAD on, never without.

    (On the kernel DAD takes a second at least: the observations are made well within it.)
    """
    b, host, ctr = e.backend, e.host, e.container
    pair = b.create_veth(ctr, "eth0", host)
    b.set_link_up(host, pair.host.name)
    b.set_link_up(ctr, "eth0")
    if b.name != "fake":
        # The kernel readies IPv6 on a link only once the carrier event is processed (asynchronously, after
        # LOWER_UP): an address added before that waits, and starts DAD once the link is ready, with whatever
        # accept_dad says then. The link-local address appears at that moment: wait for it.
        deadline = time.monotonic() + 10
        while not any(str(s.address).startswith("fe80:") for s in b.list_address_states(ctr, "eth0")):
            assert time.monotonic() < deadline, "eth0 never got its link-local address"
            time.sleep(0.01)
    b.write_sysctl(ctr, "net/ipv6/conf/eth0/accept_dad", 0)
    quiet = Address.parse("2001:db8::2/64")
    b.add_address(ctr, "eth0", quiet)
    if b.name != "fake":
        # The kernel decides on DAD in deferred work that reads accept_dad when it runs: let it run before
        # accept_dad changes back, or the address would be checked after all.
        deadline = time.monotonic() + 10
        while any(s.tentative for s in b.list_address_states(ctr, "eth0") if s.address == quiet):
            assert time.monotonic() < deadline, "an address added with accept_dad=0 stayed tentative"
            time.sleep(0.01)
    b.write_sysctl(ctr, "net/ipv6/conf/eth0/accept_dad", 1)
    checked, v4 = Address.parse("2001:db8:1::2/64"), Address.parse("10.1.2.2/24")
    b.add_address(ctr, "eth0", checked)
    b.add_address(ctr, "eth0", v4)

    def observed() -> list[tuple[str, bool, bool]]:
        # The kernel's own link-local address is in DAD too: the fake does not model it.
        return [(str(s.address), s.tentative, s.dad_failed) for s in b.list_address_states(ctr, "eth0")
                if not str(s.address).startswith("fe80:")]

    now = observed()
    assert now == [("10.1.2.2/24", False, False), ("2001:db8::2/64", False, False),
                   ("2001:db8:1::2/64", True, False)]
    # The kernel's link-local address is reported too, unlike list_addresses.
    if b.name != "fake":
        assert any(str(s.address).startswith("fe80:") for s in b.list_address_states(ctr, "eth0"))
    seen = [now, outcome(b.list_address_states, ctr, "nope0")]
    assert seen[1] == "NotFoundError"
    return seen


def test_dad_states(env: Env, fake_env: Env) -> None:
    compare(env, fake_env, dad_states)


@pytest.mark.parametrize("kind", REAL_BACKENDS)
def test_kernel_state_as_the_reference_leaves_it(kind: str, netns: Any) -> None:
    """What ``ip`` sees after the port's calls, whichever backend made them: routes ``proto boot`` (what the
    reference's netlink library sends; ``ip route`` prints no proto) and both veth ends with a transmit queue
    length of 0 (the reference's; the kernel's default is 1000). The fake models neither protocols nor queues:
    these are properties of the kernel requests, checked here on each real backend."""
    import json
    import subprocess

    from backends_support import make_backend, real_available

    reason = real_available(kind)
    if reason is not None:
        pytest.skip(reason)
    b = make_backend(kind)
    host_path, ctr_path = netns.add(), netns.add()
    host, ctr = b.open_namespace(host_path), b.open_namespace(ctr_path)
    pair = b.create_veth(ctr, "eth0", host, mtu=1400)
    b.add_address(ctr, "eth0", Address.parse("10.1.2.2/24"))
    b.add_address(ctr, "eth0", Address.parse("2001:db8:2::2/64"))
    b.set_link_up(ctr, "eth0")
    b.add_route(ctr, Route(dst="0.0.0.0/0", gateway="10.1.2.1", device="eth0"))
    b.add_route(ctr, Route(dst="::/0", gateway="2001:db8:2::1", device="eth0"))
    b.add_route(ctr, Route(dst="10.9.0.0/16", device="eth0", scope="link", metric=7))

    def ip_json(path: str, *args: str) -> Any:
        name = path.rsplit("/", 1)[1]
        return json.loads(subprocess.run(["ip", "-n", name, "-j", "-d", *args], capture_output=True, text=True,
                                         check=True).stdout)

    ours = sorted((r["dst"], r.get("protocol")) for family in ("-4", "-6") for r in ip_json(ctr_path, family, "route")
                  if r.get("protocol") != "kernel")
    assert ours == [("10.9.0.0/16", "boot"), ("default", "boot"), ("default", "boot")]
    # `ip -j` leaves txqlen out when it is 0.
    assert ip_json(ctr_path, "link", "show", "eth0")[0].get("txqlen", 0) == 0
    assert ip_json(host_path, "link", "show", pair.host.name)[0].get("txqlen", 0) == 0
