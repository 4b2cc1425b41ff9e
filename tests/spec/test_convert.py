"""Conversion between result versions: every rule of the reference's converter graph."""

from __future__ import annotations

import pytest

from cnicore._errors import InternalError
from cnicore.spec._convert import convert_result
from cnicore.spec._result import (
    DNS,
    AnyResult,
    Interface,
    Interface040,
    IPConfig,
    IPConfig020,
    IPConfig040,
    Result,
    Result020,
    Result040,
    Route,
)
from cnicore.spec._version import ALL_VERSIONS, result_family

CLASS_OF = {"020": Result020, "040": Result040, "100": Result}


def dual_stack(version: str) -> AnyResult:
    base = Result(
        interfaces=[Interface(name="eth0", mac="0a:58:0a:f4:01:06", mtu=9000, sandbox="/var/run/netns/x",
                              socket_path="/s", pci_id="0000:00:01.0")],
        ips=[IPConfig(address="10.1.2.3/24", gateway="10.1.2.1", interface=0),
             IPConfig(address="2001:db8::3/64", gateway="2001:db8::1", interface=0)],
        routes=[Route(dst="0.0.0.0/0", gw="10.1.2.1", mtu=1400), Route(dst="::/0")],
        dns=DNS(nameservers=["10.1.2.1"]),
    )
    return convert_result(base, version)


@pytest.mark.parametrize("source", ALL_VERSIONS)
@pytest.mark.parametrize("target", ALL_VERSIONS)
def test_every_pair_converts_to_the_target_family(source: str, target: str) -> None:
    start = dual_stack(source)
    converted = convert_result(start, target)
    assert converted.cni_version == target
    assert type(converted) is CLASS_OF[result_family(target)]
    if source == target:
        assert converted is start
    # Both addresses survive every conversion.
    printed = converted.to_json()
    assert "10.1.2.3/24" in printed and "2001:db8::3/64" in printed


def test_empty_target_means_010() -> None:
    converted = convert_result(dual_stack("1.1.0"), "")
    assert isinstance(converted, Result020)
    assert converted.cni_version == "0.1.0"
    legacy = dual_stack("0.1.0")
    assert convert_result(legacy, "") is legacy


@pytest.mark.parametrize("target", ["0.5.0", "1.2.0", "2.0.0", "abc"])
def test_unknown_target(target: str) -> None:
    with pytest.raises(InternalError) as info:
        convert_result(dual_stack("1.1.0"), target)
    assert info.value.msg == f"no converter for CNI result version 1.1.0 to {target}"
    assert info.value.code == 999


def test_02x_up_makes_ips_and_concatenates_routes() -> None:
    v4_route = Route(dst="192.168.0.0/16", gw="1.1.1.1", mtu=1300, table=5)
    v6_route = Route(dst="2001:db8:2::/64")
    legacy = Result020(
        cni_version="0.2.0",
        ip4=IPConfig020(ip="10.0.0.2/8", gateway="10.0.0.1", routes=[v4_route]),
        ip6=IPConfig020(ip="fd00::2/64", routes=[v6_route]),
        dns=DNS(domain="example.com"),
    )
    up = convert_result(legacy, "0.3.0")
    assert up == Result040(
        cni_version="0.3.0",
        ips=[IPConfig040(version="4", address="10.0.0.2/8", gateway="10.0.0.1"),
             IPConfig040(version="6", address="fd00::2/64")],
        routes=[v4_route, v6_route],  # every route field is kept on the way up
        dns=DNS(domain="example.com"),
    )
    newest = convert_result(legacy, "1.1.0")
    assert newest == Result(cni_version="1.1.0",
                            ips=[IPConfig(address="10.0.0.2/8", gateway="10.0.0.1"), IPConfig(address="fd00::2/64")],
                            routes=[v4_route, v6_route], dns=DNS(domain="example.com"))
    only6 = convert_result(Result020(cni_version="0.1.0", ip6=IPConfig020(ip="fd00::2/64")), "0.4.0")
    assert [ip.version for ip in only6.ips] == ["6"]  # type: ignore[union-attr]


def test_04x_down_takes_first_of_each_version_and_sorts_routes() -> None:
    result = Result040(
        cni_version="0.4.0",
        interfaces=[Interface040(name="eth0")],
        ips=[
            IPConfig040(version="", address="10.9.9.9/8"),  # neither "4" nor "6": ignored
            IPConfig040(version="6", address="fd00::2/64", gateway="fd00::1", interface=0),
            IPConfig040(version="4", address="10.0.0.2/8", gateway="10.0.0.1", interface=0),
            IPConfig040(version="4", address="10.0.0.3/8"),
            IPConfig040(version="6", address="fd00::3/64"),
        ],
        routes=[
            Route(dst="::/0", gw="fd00::1", mtu=1280, priority=3, table=1, scope=0),
            Route(dst="0.0.0.0/0"),
            Route(dst="::ffff:10.0.0.0/104", gw="10.0.0.1"),  # IPv4-mapped: an IPv4 route, as Go's To4() says
        ],
        dns=DNS(options=["ndots:5"]),
    )
    down = convert_result(result, "0.2.0")
    assert down == Result020(
        cni_version="0.2.0",
        ip4=IPConfig020(ip="10.0.0.2/8", gateway="10.0.0.1",
                        routes=[Route(dst="0.0.0.0/0"), Route(dst="10.0.0.0/8", gw="10.0.0.1")]),
        ip6=IPConfig020(ip="fd00::2/64", gateway="fd00::1", routes=[Route(dst="::/0", gw="fd00::1")]),
        dns=DNS(options=["ndots:5"]),
    )


def test_04x_down_uses_the_version_text_not_the_address() -> None:
    # The reference trusts ips[].version: a "6" entry holding an IPv4 address becomes ip6.
    result = Result040(ips=[IPConfig040(version="6", address="10.0.0.2/8")])
    down = convert_result(result, "0.1.0")
    assert isinstance(down, Result020)
    assert down.ip4 is None and down.ip6 is not None


def test_04x_down_drops_routes_of_a_missing_family() -> None:
    result = Result040(ips=[IPConfig040(address="10.0.0.2/8")], routes=[Route(dst="::/0"), Route(dst="1.0.0.0/8")])
    down = convert_result(result, "0.2.0")
    assert isinstance(down, Result020)
    assert down.ip6 is None
    assert down.ip4 is not None and down.ip4.routes == (Route(dst="1.0.0.0/8"),)


@pytest.mark.parametrize("source", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
@pytest.mark.parametrize("target", ["0.1.0", "0.2.0"])
def test_no_ip_addresses(source: str, target: str) -> None:
    result = convert_result(Result(interfaces=[Interface(name="eth0")], routes=[Route(dst="0.0.0.0/0")]), source)
    with pytest.raises(InternalError) as info:
        convert_result(result, target)
    assert str(info.value) == "cannot convert: no valid IP addresses"


def test_1x_down_derives_version_and_drops_interface_extras() -> None:
    down = convert_result(dual_stack("1.1.0"), "0.3.1")
    assert isinstance(down, Result040)
    assert down.interfaces == (Interface040(name="eth0", mac="0a:58:0a:f4:01:06", sandbox="/var/run/netns/x"),)
    assert [(ip.version, ip.interface) for ip in down.ips] == [("4", 0), ("6", 0)]
    assert down.routes == dual_stack("1.1.0").routes  # 0.4.0 routes keep every field


def test_0x_up_drops_version_and_copies_interfaces() -> None:
    old = Result040(cni_version="0.3.0", interfaces=[Interface040(name="eth0", mac="m", sandbox="/ns")],
                    ips=[IPConfig040(version="4", address="10.0.0.2/8", interface=0)])
    up = convert_result(old, "1.0.0")
    assert up == Result(cni_version="1.0.0", interfaces=[Interface(name="eth0", mac="m", sandbox="/ns")],
                        ips=[IPConfig(address="10.0.0.2/8", interface=0)])


def test_1x_between_minor_versions_keeps_data() -> None:
    newest = dual_stack("1.1.0")
    older = convert_result(newest, "1.0.0")
    assert isinstance(older, Result)
    assert (older.interfaces, older.ips, older.routes, older.dns) == (
        newest.interfaces, newest.ips, newest.routes, newest.dns)  # type: ignore[union-attr]


def test_1x_shape_with_old_version_converts_by_shape() -> None:
    # The loopback quirk: a 1.x-shaped result stamped 0.2.0. The reference would try a converter
    # for 0.2.0-shaped data; converting by shape gives the meaningful answer.
    quirk = Result(cni_version="0.2.0", ips=[IPConfig(address="127.0.0.1/8")])
    assert convert_result(quirk, "0.2.0") is quirk
    assert convert_result(quirk, "1.1.0") == Result(ips=[IPConfig(address="127.0.0.1/8")])
    down = convert_result(quirk, "0.1.0")
    assert isinstance(down, Result020) and down.ip4 is not None


# Documents of each family with every field set (odd spellings included), for the plain writer's conversions.
_PLAIN_DOCS = {
    "100": {"cniVersion": "1.0.0", "interfaces": [{"name": "br", "mac": "aa:bb:cc:dd:ee:ff", "mtu": 1400,
                                                   "sandbox": "/ns", "socketPath": "/s", "pciID": "p"}],
            "ips": [{"address": "10.1.2.3/24", "gateway": "10.1.2.1", "interface": 0},
                    {"address": "::ffff:10.9.9.9/120"}, {"address": "2001:DB8:0:0:0::3/64"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1", "mtu": 1, "advmss": 2, "priority": 3, "table": 4,
                        "scope": 0}],
            "dns": {"nameservers": ["10.1.2.53"], "domain": "d", "search": ["s"], "options": ["o"]}},
    "040": {"cniVersion": "0.3.1", "interfaces": [{"name": "br", "mac": "m", "sandbox": "/ns"}],
            "ips": [{"version": "4", "address": "10.1.2.3/24", "gateway": "10.1.2.1", "interface": 0},
                    {"version": "", "address": "2001:db8::3/64"}],
            "routes": [{"dst": "10.0.0.0/8"}], "dns": {"nameservers": ["1.1.1.1"]}},
    "020": {"cniVersion": "0.2.0", "ip4": {"ip": "10.1.2.3/24", "gateway": "10.1.2.1",
                                           "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}]},
            "ip6": {"ip": "2001:db8::3/64"}, "dns": {"domain": "d"}},
}


@pytest.mark.parametrize("target", ALL_VERSIONS)
@pytest.mark.parametrize("family", sorted(_PLAIN_DOCS))
def test_plain_reading_writes_what_the_result_types_write(family: str, target: str) -> None:
    # The executed meta plugins pass prevResult through on plain values: within the family, what they print is what
    # the typed result converted to the same version prints; to another family the plain writer refuses.
    from cnicore.spec._result import parse_result, result_from_plain
    from cnicore.spec._resultread import plain_result_object, read_result

    plain = read_result(_PLAIN_DOCS[family])
    typed = parse_result(_PLAIN_DOCS[family])
    assert result_from_plain(plain) == typed
    if result_family(target) == family:
        assert plain_result_object(plain, target) == typed.as_version(target).to_object()
    else:
        with pytest.raises(InternalError, match="no plain conversion"):
            plain_result_object(plain, target)
