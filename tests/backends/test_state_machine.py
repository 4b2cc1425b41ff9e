"""The fake against the kernel: random operation sequences give the same results on both.

A Hypothesis state machine drives the fake and a real backend (netlink, iproute2, pyroute2) side by side
(two throwaway namespaces each: one plays the host, one the container). After
every step, both must have raised the same kind of error (or none) and both
namespaces must look the same. Host ends of veths get the same names on both
sides (a shared counter instead of random names) so links compare by name.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from backends_support import Env, Namespaces, make_env, outcome, real_available, state
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from support import examples

from cnicore.backends import FakeLinkBackend, IPRoute2LinkBackend, NetlinkLinkBackend, Pyroute2LinkBackend
from cnicore.links import Address, BridgeSpec, Route

pytestmark = [pytest.mark.root, pytest.mark.slow]

CONTAINER_NAMES = ("eth0", "eth1")
BRIDGES = ("cnt-br0", "cnt-br1")
PEERS = tuple(f"veth{i:08x}" for i in range(1, 6))
ADDRESSES = tuple(Address.parse(a) for a in (
    "10.0.1.1/24", "10.0.2.1/24", "10.0.3.7/32", "2001:db8:1::1/64", "2001:db8:2::1/64",
))
# (destination, gateway) pairs of one family; None: straight to a device.
ROUTES = (
    ("0.0.0.0/0", "10.0.1.254"), ("10.9.0.0/16", "10.0.1.254"), ("10.9.0.0/16", "10.0.2.254"),
    ("10.9.0.0/16", "10.0.1.1"), ("10.9.0.0/16", None), ("::/0", "2001:db8:1::fe"),
    ("2001:db8:9::/48", "2001:db8:2::fe"), ("2001:db8:9::/48", None),
)
MTUS = (1280, 1400, 1500, 9000)

sides = st.sampled_from(("container", "container", "host"))
POOL = {"container": (*CONTAINER_NAMES, "lo"), "host": (*BRIDGES, *PEERS[:3], "lo")}


class FakeMatchesKernel(RuleBasedStateMachine):
    """Apply each operation to the fake and to the kernel; compare outcomes and state."""

    #: The real backend compared with the fake.
    kind = "netlink"

    def __init__(self) -> None:
        super().__init__()
        self.spaces = Namespaces()
        counters = [itertools.count(1), itertools.count(1)]
        self.fake = make_env("fake", None)
        self.real = make_env(self.kind, self.spaces)
        # The same host-end names on both sides, so that links compare by name.
        assert isinstance(self.fake.backend, FakeLinkBackend)
        assert isinstance(self.real.backend, NetlinkLinkBackend | IPRoute2LinkBackend | Pyroute2LinkBackend)
        self.fake.backend._peer_names = lambda: f"veth{next(counters[0]):08x}"
        self.real.backend._peer_names = lambda: f"veth{next(counters[1]):08x}"

    def teardown(self) -> None:
        self.spaces.cleanup()

    def both(self, op: str, side: str, *args: Any, **kwargs: Any) -> None:
        results = []
        for env in (self.fake, self.real):
            ns = env.host if side == "host" else env.container
            results.append(outcome(getattr(env.backend, op), ns, *args, **kwargs))
        assert results[0] == results[1], f"{op}{args}: fake {results[0]}, kernel {results[1]}"

    def pick(self, data: st.DataObject, side: str) -> str:
        """Mostly a link that exists (per the fake), sometimes one that does not."""
        ns = self.fake.host if side == "host" else self.fake.container
        existing = [link.name for link in self.fake.backend.list_links(ns)]
        if data.draw(st.integers(0, 9)) < 8:
            return data.draw(st.sampled_from(existing))
        return data.draw(st.sampled_from(POOL[side]))

    @initialize(ready=st.booleans())
    def start(self, ready: bool) -> None:
        """Half the runs start from an attached, addressed container (so routes have somewhere to go)."""
        if not ready:
            return
        for env in (self.fake, self.real):
            b = env.backend
            pair = b.create_veth(env.container, "eth0", env.host)
            b.ensure_bridge(env.host, BridgeSpec(name="cnt-br0"))
            b.set_master(env.host, pair.host.name, "cnt-br0")
            b.set_link_up(env.host, pair.host.name)
            b.set_link_up(env.container, "eth0")
            b.add_address(env.container, "eth0", ADDRESSES[0])
            b.add_address(env.container, "eth0", ADDRESSES[3])

    @staticmethod
    def observe(env: Env) -> Any:
        return state(env.backend, env.host, env.container)

    @invariant()
    def same_state(self) -> None:
        assert self.observe(self.fake) == self.observe(self.real)

    @rule(name=st.sampled_from(CONTAINER_NAMES), mtu=st.sampled_from((None, *MTUS)))
    def create_veth(self, name: str, mtu: int | None) -> None:
        results = [outcome(env.backend.create_veth, env.container, name, env.host, mtu=mtu)
                   for env in (self.fake, self.real)]
        assert results[0] == results[1]

    @rule(name=st.sampled_from(BRIDGES), mtu=st.sampled_from((None, *MTUS)), promiscuous=st.booleans())
    def ensure_bridge(self, name: str, mtu: int | None, promiscuous: bool) -> None:
        self.both("ensure_bridge", "host", BridgeSpec(name=name, mtu=mtu, promiscuous=promiscuous))

    @rule(side=sides, data=st.data(), up=st.booleans())
    def set_up(self, side: str, data: st.DataObject, up: bool) -> None:
        name = self.pick(data, side)
        self.both("set_link_up", side, name, up)

    @rule(data=st.data(), master=st.sampled_from((None, *BRIDGES)))
    def set_master(self, data: st.DataObject, master: str | None) -> None:
        name = self.pick(data, "host")
        self.both("set_master", "host", name, master)

    @rule(data=st.data(), on=st.booleans())
    def set_hairpin(self, data: st.DataObject, on: bool) -> None:
        name = self.pick(data, "host")
        self.both("set_hairpin", "host", name, on)

    @rule(side=sides, data=st.data(), mtu=st.sampled_from(MTUS))
    def set_mtu(self, side: str, data: st.DataObject, mtu: int) -> None:
        name = self.pick(data, side)
        if name == "lo":
            return  # the loopback's MTU rules are not modelled
        self.both("set_mtu", side, name, mtu)

    @rule(side=sides, data=st.data())
    def delete_link(self, side: str, data: st.DataObject) -> None:
        name = self.pick(data, side)
        self.both("delete_link", side, name)

    @rule(side=sides, data=st.data(), address=st.sampled_from(ADDRESSES))
    def add_address(self, side: str, data: st.DataObject, address: Address) -> None:
        name = self.pick(data, side)
        self.both("add_address", side, name, address)

    @rule(side=sides, data=st.data(), address=st.sampled_from(ADDRESSES))
    def delete_address(self, side: str, data: st.DataObject, address: Address) -> None:
        name = self.pick(data, side)
        self.both("delete_address", side, name, address)

    @rule(side=sides, path=st.sampled_from(ROUTES), data=st.data(), metric=st.sampled_from((None, 5, 100)),
          delete=st.booleans())
    def route(self, side: str, path: tuple[str, str | None], data: st.DataObject, metric: int | None,
              delete: bool) -> None:
        dst, gateway = path
        device = self.pick(data, side) if gateway is None or data.draw(st.booleans()) else None
        if device == "lo":
            return  # routes straight to the loopback are not modelled (the kernel makes some reject routes)
        scope = "link" if gateway is None and ":" not in dst else "universe"
        route = Route(dst=dst, gateway=gateway, device=device, metric=metric, scope=scope)
        self.both("delete_route" if delete else "add_route", side, route)

    @rule(side=sides, data=st.data(), setting=st.sampled_from(("keep_addr_on_down", "disable_ipv6")),
          value=st.sampled_from((0, 1)))
    def sysctl(self, side: str, data: st.DataObject, setting: str, value: int) -> None:
        name = self.pick(data, side)
        self.both("write_sysctl", side, f"net/ipv6/conf/{name}/{setting}", value)


class FakeMatchesIPRoute2(FakeMatchesKernel):
    """The same machine against the iproute2 backend."""

    kind = "iproute2"


class FakeMatchesPyroute2(FakeMatchesKernel):
    """The same machine against the pyroute2 backend."""

    kind = "pyroute2"


@pytest.mark.parametrize(("machine", "share"), [(FakeMatchesKernel, 2), (FakeMatchesIPRoute2, 6),
                                                (FakeMatchesPyroute2, 6)])
def test_fake_matches_the_kernel(machine: type[FakeMatchesKernel], share: int) -> None:
    """Under "ci", ``1 / share`` of the profile's examples (each builds and removes two namespaces; iproute2
    runs several processes per step, pyroute2 sets up an event loop per step); under "thorough", all."""
    reason = real_available(machine.kind)
    if reason is not None:
        pytest.skip(reason)
    case = machine.TestCase
    case.settings = settings(max_examples=examples(scale=1 / share), stateful_step_count=25, deadline=None)
    case().runTest()


@pytest.mark.parametrize("kind", ["netlink", "iproute2", "pyroute2"])
@pytest.mark.parametrize(("dst", "gateway", "on_link"), [("10.9.0.0/16", "10.0.1.254", "link"),
                                                         ("2001:db8:9::/48", "2001:db8:1::fe", "universe")])
def test_deleting_one_of_two_routes_to_a_prefix_takes_the_one_the_kernel_takes(kind: str, dst: str, gateway: str,
                                                                                 on_link: str) -> None:
    # A route through a gateway, then one straight to the device, to one prefix at one metric; a delete naming
    # neither gateway nor metric takes the newer one in IPv4 (the kernel puts it first) and the older in IPv6.
    reason = real_available(kind)
    if reason is not None:
        pytest.skip(reason)
    spaces = Namespaces()
    try:
        envs = [make_env("fake", None), make_env(kind, spaces)]
        for env in envs:
            b = env.backend
            b.create_veth(env.container, "eth0", env.host)
            b.set_link_up(env.container, "eth0")
            for address in (ADDRESSES[0], ADDRESSES[3]):
                b.add_address(env.container, "eth0", address)
            b.add_route(env.container, Route(dst=dst, gateway=gateway))
            b.add_route(env.container, Route(dst=dst, device="eth0", scope=on_link))
            b.delete_route(env.container, Route(dst=dst, device="eth0", scope=on_link))
        left = [[(str(r.gateway), r.scope) for r in env.backend.list_routes(env.container) if str(r.dst) == dst]
                for env in envs]
        assert left[0] == left[1] == ([(gateway, "universe")] if ":" not in dst else [("None", "universe")])
    finally:
        spaces.cleanup()
