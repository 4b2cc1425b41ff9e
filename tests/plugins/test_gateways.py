"""``calc_gateways`` (the reference's gateway and default-route rules) as properties."""

from __future__ import annotations

import netaddr
from hypothesis import given
from hypothesis import strategies as st

from cnicore.plugins import calc_gateways
from cnicore.plugins._bridge import BridgeConfig
from cnicore.spec._result import IPConfig, Result, Route

_v4 = st.builds(lambda n, p: netaddr.IPNetwork(f"{netaddr.IPAddress(n)}/{p}"), st.integers(1, 2**32 - 2),
                st.integers(8, 30))
_v6 = st.builds(lambda n, p: netaddr.IPNetwork(f"{netaddr.IPAddress(n, 6)}/{p}"), st.integers(1, 2**128 - 2),
                st.integers(48, 126))


@st.composite
def _results(draw: st.DrawFn) -> Result:
    ips = [IPConfig(address=a, gateway=(a.network + 1 if draw(st.booleans()) else None))
           for a in draw(st.lists(st.one_of(_v4, _v6), min_size=1, max_size=4))]
    routes = [Route(dst=d, gw=(None if draw(st.booleans()) else d.network + 1))
              for d in draw(st.lists(st.sampled_from([netaddr.IPNetwork("0.0.0.0/0"), netaddr.IPNetwork("::/0"),
                                                       netaddr.IPNetwork("192.168.0.0/16")]), max_size=3))]
    return Result(ips=ips, routes=routes)


@given(_results(), st.booleans(), st.booleans())
def test_gateway_rules(result: Result, is_gateway: bool, is_default: bool) -> None:
    config = BridgeConfig(name="n", cni_version="1.0.0", is_gateway=is_gateway or is_default,
                          is_default_gateway=is_default)
    out, gateways = calc_gateways(result, config)
    assert [ip.address for ip in out.ips] == [ip.address for ip in result.ips]
    assert all(ip.interface == 2 for ip in out.ips)
    for before, after in zip(result.ips, out.ips, strict=True):
        if before.gateway is not None:
            assert after.gateway == before.gateway
        elif config.is_gateway:
            assert after.gateway == before.address.network + 1
        else:
            assert after.gateway is None
    # Routes are only ever appended: one default per family that has addresses and no default with a gateway.
    assert out.routes[: len(result.routes)] == result.routes
    added = out.routes[len(result.routes):]
    for family in (4, 6):
        has_ips = any(ip.family == family for ip in result.ips)
        had_default = any(r.family == family and r.dst.prefixlen == 0 and r.gw is not None for r in result.routes)
        expected = 1 if is_default and has_ips and not had_default else 0
        assert len([r for r in added if r.family == family]) == expected
    assert sum(len(v) for v in gateways.values()) == len([ip for ip in out.ips if ip.gateway is not None])
