"""Properties of results: lossless printing/parsing, conversion laws, and robustness to any input."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from cnicore._errors import CNIError
from cnicore.spec._convert import convert_result
from cnicore.spec._result import (
    AnyResult,
    Interface,
    IPConfig020,
    Result,
    Result020,
    Result040,
    Route,
    go_cidr_text,
    go_ip_text,
    go_parse_cidr,
    go_parse_ip,
    parse_prev_result,
    parse_result,
)
from cnicore.spec._version import ALL_VERSIONS, result_family
from cnicore.testing._results import ip_addresses, ip_networks, json_values, mutated_result_objects, results


@given(results())
def test_parse_of_print_is_identity(result: AnyResult) -> None:
    assert parse_result(result.to_json()) == result


@given(results())
def test_print_of_parse_of_print_is_stable(result: AnyResult) -> None:
    text = result.to_json()
    assert parse_result(text).to_json() == text
    assert parse_result(text.encode()).to_json() == text


@given(results())
def test_printed_text_is_the_object_in_go_layout(result: AnyResult) -> None:
    text = result.to_json()
    obj = result.to_object()
    assert json.loads(text) == obj
    assert not text.endswith("\n")
    if isinstance(result, Result):
        assert list(obj) == sorted(obj)
        assert ("dns" in obj) is not result.dns.is_empty
    else:
        assert list(obj)[-1] == "dns"


@given(results(), st.sampled_from(ALL_VERSIONS))
def test_prev_result_parses_like_a_result(result: AnyResult, config_version: str) -> None:
    config = {"cniVersion": config_version, "name": "n", "prevResult": result.to_object()}
    same_family = type(parse_result("{}", config_version)) is type(result)
    try:
        parsed = parse_prev_result(config)
    except CNIError as exc:
        assert not same_family
        assert exc.msg.startswith("could not parse prevResult: result type supports")
    else:
        assert same_family
        assert parsed == result


@given(ip_addresses())
def test_ip_text_round_trips(ip: Any) -> None:
    assert go_parse_ip(go_ip_text(ip)) == ip


@given(ip_addresses(6))
def test_ipv6_text_matches_rfc5952(ip: Any) -> None:
    # Python's ipaddress compresses the same way as Go (longest run of >= 2 zero groups, leftmost).
    assert go_ip_text(ip) == str(ipaddress.IPv6Address(int(ip)))


@given(ip_networks())
def test_cidr_text_round_trips_with_host_bits(net: Any) -> None:
    parsed = go_parse_cidr(go_cidr_text(net))
    assert parsed is not None
    assert (int(parsed.ip), parsed.prefixlen, parsed.version) == (int(net.ip), net.prefixlen, net.version)


@given(results(), st.sampled_from(ALL_VERSIONS))
def test_conversion_lands_on_target(result: AnyResult, target: str) -> None:
    try:
        converted = convert_result(result, target)
    except CNIError as exc:
        assert exc.msg == "cannot convert: no valid IP addresses"
        assert target in ("0.1.0", "0.2.0")
        return
    assert converted.cni_version == target
    assert result_family(target) == type(converted).FAMILY
    # What conversion produces is itself a valid, printable, re-parsable result.
    assert parse_result(converted.to_json()) == converted


def _holdable_in_020(result: Result020) -> Result020:
    """The part of a 0.2.0 result that survives a trip through the newer shapes: routes carry only
    dst and gw and sit under the configuration of their own family."""
    def fix(config: IPConfig020 | None, family: int) -> IPConfig020 | None:
        if config is None:
            return None
        routes = [Route(dst=r.dst, gw=r.gw) for r in config.routes if r.dst.version == family]
        return attrs.evolve(config, routes=routes)

    return attrs.evolve(result, ip4=fix(result.ip4, 4), ip6=fix(result.ip6, 6))


@given(results("0.2.0") | results("0.1.0"), st.sampled_from(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]))
def test_020_up_then_down_is_identity(result: Any, up: str) -> None:
    original = _holdable_in_020(result)
    if original.ip4 is None and original.ip6 is None:
        return  # nothing a 0.2.0 result can be converted back from
    assert convert_result(convert_result(original, up), original.cni_version) == original


@given(results("0.3.0") | results("0.3.1") | results("0.4.0"), st.sampled_from(["1.0.0", "1.1.0", "0.3.0", "0.4.0"]))
def test_040_up_then_down_is_identity(result: Any, up: str) -> None:
    assert convert_result(convert_result(result, up), result.cni_version) == result


@given(results("1.0.0") | results("1.1.0"), st.sampled_from(["0.3.0", "0.3.1", "0.4.0"]))
def test_100_through_040_loses_only_interface_extras(result: Any, down: str) -> None:
    back = convert_result(convert_result(result, down), result.cni_version)
    expected = attrs.evolve(result, interfaces=[Interface(name=i.name, mac=i.mac, sandbox=i.sandbox)
                                                for i in result.interfaces])
    assert back == expected


@given(results("0.4.0") | results("1.1.0"), st.sampled_from(["0.1.0", "0.2.0"]))
def test_down_to_020_keeps_first_address_of_each_family(result: Any, target: str) -> None:
    try:
        down = convert_result(result, target)
    except CNIError:
        assert not result.ips
        return
    assert isinstance(down, Result020)
    for family, config in ((4, down.ip4), (6, down.ip6)):
        candidates = [ip for ip in result.ips if ip.family == family]
        if not candidates:
            assert config is None
            continue
        assert config is not None
        assert (config.ip, config.gateway) == (candidates[0].address, candidates[0].gateway)
        assert list(config.routes) == [Route(dst=r.dst, gw=r.gw) for r in result.routes if r.dst.version == family]


# ----------------------------------------------------------------------------------------------
# Robustness: any input parses or raises a cnicore error, never anything else.
# ----------------------------------------------------------------------------------------------

def _parses_or_cni_error(call: Any, *args: Any) -> None:
    try:
        result = call(*args)
    except CNIError:
        return
    if result is not None:
        assert isinstance(result, Result | Result040 | Result020)
        parse_result(result.to_json())  # whatever was accepted prints and reads back


@given(json_values(), st.sampled_from([None, "", *ALL_VERSIONS, "7.0.0"]))
def test_arbitrary_documents(doc: Any, version: str | None) -> None:
    _parses_or_cni_error(parse_result, doc, version)
    _parses_or_cni_error(parse_result, json.dumps(doc), version)
    _parses_or_cni_error(parse_prev_result, {"cniVersion": version, "prevResult": doc})


@given(mutated_result_objects(), st.sampled_from(ALL_VERSIONS))
def test_mutated_results(doc: Any, config_version: str) -> None:
    _parses_or_cni_error(parse_result, doc)
    _parses_or_cni_error(parse_result, doc, config_version)
    _parses_or_cni_error(parse_prev_result, {"cniVersion": config_version, "prevResult": doc})


@given(st.text(max_size=40) | st.binary(max_size=40))
def test_arbitrary_text(text: str | bytes) -> None:
    _parses_or_cni_error(parse_result, text)


@given(st.text(max_size=45))
def test_address_parsers_never_raise(text: str) -> None:
    ip = go_parse_ip(text)
    if ip is not None:
        assert go_parse_ip(go_ip_text(ip)) == ip
    net = go_parse_cidr(text)
    if net is not None:
        assert go_parse_cidr(go_cidr_text(net)) is not None
