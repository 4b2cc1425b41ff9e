"""Result types: the reference's test vectors, exact printing, parsing rules and error texts."""

from __future__ import annotations

import json

import attrs
import pytest
from netaddr import IPAddress, IPNetwork

from cnicore._errors import CNIError, DecodingError
from cnicore.spec._convert import convert_result
from cnicore.spec._result import (
    DNS,
    Interface,
    Interface040,
    IPConfig,
    IPConfig020,
    IPConfig040,
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

TEST_DNS = DNS(nameservers=["1.2.3.4", "1::cafe"], domain="acompany.com",
               search=["somedomain.com", "otherdomain.net"], options=["foo", "bar"])


def full_result_110() -> Result:
    """The reference's 1.1.0 test result (pkg/types/100/types_test.go)."""
    return Result(
        cni_version="1.1.0",
        interfaces=[Interface(name="eth0", mac="00:11:22:33:44:55", mtu=1500, sandbox="/proc/3553/ns/net",
                              pci_id="8086:9a01", socket_path="/path/to/vhost/fd")],
        ips=[IPConfig(interface=0, address="1.2.3.30/24", gateway="1.2.3.1"),
             IPConfig(interface=0, address="abcd:1234:ffff::cdde/64", gateway="abcd:1234:ffff::1")],
        routes=[Route(dst="15.5.6.0/24", gw="15.5.6.8"), Route(dst="1111:dddd::/80", gw="1111:dddd::aaaa")],
        dns=TEST_DNS,
    )


# Derived from the reference's printing rules: 1.x goes through a Go map, so every key is sorted.
EXPECTED_110 = """{
    "cniVersion": "1.1.0",
    "dns": {
        "domain": "acompany.com",
        "nameservers": [
            "1.2.3.4",
            "1::cafe"
        ],
        "options": [
            "foo",
            "bar"
        ],
        "search": [
            "somedomain.com",
            "otherdomain.net"
        ]
    },
    "interfaces": [
        {
            "mac": "00:11:22:33:44:55",
            "mtu": 1500,
            "name": "eth0",
            "pciID": "8086:9a01",
            "sandbox": "/proc/3553/ns/net",
            "socketPath": "/path/to/vhost/fd"
        }
    ],
    "ips": [
        {
            "address": "1.2.3.30/24",
            "gateway": "1.2.3.1",
            "interface": 0
        },
        {
            "address": "abcd:1234:ffff::cdde/64",
            "gateway": "abcd:1234:ffff::1",
            "interface": 0
        }
    ],
    "routes": [
        {
            "dst": "15.5.6.0/24",
            "gw": "15.5.6.8"
        },
        {
            "dst": "1111:dddd::/80",
            "gw": "1111:dddd::aaaa"
        }
    ]
}"""

# 0.x results keep Go struct field order and always print dns.
EXPECTED_040_BODY = """    "interfaces": [
        {
            "name": "eth0",
            "mac": "00:11:22:33:44:55",
            "sandbox": "/proc/3553/ns/net"
        }
    ],
    "ips": [
        {
            "version": "4",
            "interface": 0,
            "address": "1.2.3.30/24",
            "gateway": "1.2.3.1"
        },
        {
            "version": "6",
            "interface": 0,
            "address": "abcd:1234:ffff::cdde/64",
            "gateway": "abcd:1234:ffff::1"
        }
    ],
    "routes": [
        {
            "dst": "15.5.6.0/24",
            "gw": "15.5.6.8"
        },
        {
            "dst": "1111:dddd::/80",
            "gw": "1111:dddd::aaaa"
        }
    ],
    "dns": {
        "nameservers": [
            "1.2.3.4",
            "1::cafe"
        ],
        "domain": "acompany.com",
        "search": [
            "somedomain.com",
            "otherdomain.net"
        ],
        "options": [
            "foo",
            "bar"
        ]
    }
}"""

EXPECTED_010 = """{
    "cniVersion": "0.1.0",
    "ip4": {
        "ip": "1.2.3.30/24",
        "gateway": "1.2.3.1",
        "routes": [
            {
                "dst": "15.5.6.0/24",
                "gw": "15.5.6.8"
            }
        ]
    },
    "ip6": {
        "ip": "abcd:1234:ffff::cdde/64",
        "gateway": "abcd:1234:ffff::1",
        "routes": [
            {
                "dst": "1111:dddd::/80",
                "gw": "1111:dddd::aaaa"
            }
        ]
    },
    "dns": {
        "nameservers": [
            "1.2.3.4",
            "1::cafe"
        ],
        "domain": "acompany.com",
        "search": [
            "somedomain.com",
            "otherdomain.net"
        ],
        "options": [
            "foo",
            "bar"
        ]
    }
}"""


class TestReferenceVectors:
    def test_encodes_a_110_result(self) -> None:
        assert full_result_110().to_json() == EXPECTED_110

    def test_parses_the_110_encoding_back(self) -> None:
        parsed = parse_result(EXPECTED_110)
        assert isinstance(parsed, Result)
        assert parsed == full_result_110()
        assert parsed.to_json() == EXPECTED_110

    def test_converts_100_to_110_and_back_unchanged(self) -> None:
        as_100 = convert_result(full_result_110(), "1.0.0")
        assert as_100.cni_version == "1.0.0"
        assert convert_result(as_100, "1.1.0") == full_result_110()
        assert as_100.to_json() == EXPECTED_110.replace('"1.1.0"', '"1.0.0"')

    def test_encodes_a_040_result(self) -> None:
        converted = convert_result(full_result_110(), "0.4.0")
        assert isinstance(converted, Result040)
        assert converted.to_json() == '{\n    "cniVersion": "0.4.0",\n' + EXPECTED_040_BODY

    def test_encodes_a_031_result(self) -> None:
        result = Result040(
            cni_version="0.3.1",
            interfaces=[Interface040(name="eth0", mac="00:11:22:33:44:55", sandbox="/proc/3553/ns/net")],
            ips=[IPConfig040(version="4", interface=0, address="1.2.3.30/24", gateway="1.2.3.1"),
                 IPConfig040(version="6", interface=0, address="abcd:1234:ffff::cdde/64",
                             gateway="abcd:1234:ffff::1")],
            routes=[Route(dst="15.5.6.0/24", gw="15.5.6.8"), Route(dst="1111:dddd::/80", gw="1111:dddd::aaaa")],
            dns=TEST_DNS,
        )
        text = '{\n    "cniVersion": "0.3.1",\n' + EXPECTED_040_BODY
        assert result.to_json() == text
        assert parse_result(text) == result

    @pytest.mark.parametrize("source", ["1.1.0", "0.4.0", "0.3.1"])
    def test_encodes_a_010_result(self, source: str) -> None:
        start = convert_result(full_result_110(), source)
        converted = convert_result(start, "0.1.0")
        assert isinstance(converted, Result020)
        assert converted.to_json() == EXPECTED_010

    def test_encodes_020_and_converts_to_010_and_back(self) -> None:
        result = parse_result(EXPECTED_010.replace('"0.1.0"', '"0.2.0"'))
        assert isinstance(result, Result020)
        down = convert_result(result, "0.1.0")
        assert down.to_json() == EXPECTED_010
        assert convert_result(down, "0.2.0") == result

    def test_interface_index_zero_is_printed_and_read_back(self) -> None:
        for version, entry in (("0.4.0", '{"version": "4", "interface": 0, "address": "10.1.2.3/24"}'),
                               ("1.0.0", '{"address": "10.1.2.3/24", "interface": 0}')):  # sorted in 1.x
            result = parse_result(f'{{"cniVersion": "{version}", "ips": [{entry}]}}')
            assert result.ips[0].interface == 0  # type: ignore[union-attr]
            printed = json.loads(result.to_json())["ips"][0]
            assert printed == json.loads(entry)
            assert list(printed) == list(json.loads(entry))  # key order too

    def test_missing_interface_index_is_not_printed(self) -> None:
        result = Result040(ips=[IPConfig040(address="10.1.2.3/24")])
        assert json.loads(result.to_json())["ips"] == [{"version": "4", "address": "10.1.2.3/24"}]
        result100 = Result(ips=[IPConfig(address="10.1.2.3/24")])
        assert json.loads(result100.to_json())["ips"] == [{"address": "10.1.2.3/24"}]

    @pytest.mark.parametrize("version", ["0.4.0", "1.1.0"])
    def test_address_of_wrong_type(self, version: str) -> None:
        with pytest.raises(DecodingError) as info:
            parse_result(f'{{"cniVersion": "{version}", "ips": [{{"address": 5}}]}}')
        assert info.value.msg.startswith("json: cannot unmarshal")
        assert info.value.msg == "json: cannot unmarshal number into Go value of type string"
        assert info.value.code == 6
        assert info.value.key == "ips[0].address"
        assert info.value.value == 5

    @pytest.mark.parametrize("gateways", [True, False])
    def test_020_round_trips_through_040(self, gateways: bool) -> None:
        original = Result020(
            cni_version="0.2.0",
            ip4=IPConfig020(ip="1.2.3.30/24", gateway="1.2.3.1",
                            routes=[Route(dst="15.5.6.0/24", gw="15.5.6.8" if gateways else None)]),
            ip6=IPConfig020(ip="abcd:1234:ffff::cdde/64", gateway="abcd:1234:ffff::1",
                            routes=[Route(dst="1111:dddd::/80", gw="1111:dddd::aaaa" if gateways else None)]),
            dns=TEST_DNS,
        )
        up = convert_result(original, "0.4.0")
        back = convert_result(up, "0.2.0")
        assert back == original
        assert back.to_json() == original.to_json()
        assert ('"gw"' in original.to_json()) is gateways

    def test_downconverting_without_ips_fails(self) -> None:
        result = attrs.evolve(convert_result(full_result_110(), "0.4.0"), ips=(), routes=())  # type: ignore[misc]
        with pytest.raises(CNIError) as info:
            convert_result(result, "0.2.0")
        assert str(info.value) == "cannot convert: no valid IP addresses"
        assert info.value.code == 999

    def test_result_without_version_is_010(self) -> None:
        result = parse_result('{"ip4": {"ip": "1.2.3.30/24"}}')
        assert isinstance(result, Result020)
        assert result.cni_version == "0.1.0"
        assert result.to_json() == '{\n    "cniVersion": "0.1.0",\n    "ip4": {\n        "ip": "1.2.3.30/24"\n    },' \
                                   '\n    "dns": {}\n}'

    @pytest.mark.parametrize(("text", "message"), [
        ("1.2.3/45", "invalid CIDR address: 1.2.3/45"),
        ("1.2.3.4/99", "invalid CIDR address: 1.2.3.4/99"),
    ])
    def test_parse_cidr_errors(self, text: str, message: str) -> None:
        assert go_parse_cidr(text) is None
        with pytest.raises(DecodingError) as info:
            parse_result({"cniVersion": "1.0.0", "routes": [{"dst": text}]})
        assert info.value.msg == message
        assert info.value.key == "routes[0].dst"

    def test_ipnet_number_error(self) -> None:
        with pytest.raises(DecodingError) as info:
            parse_result({"cniVersion": "0.2.0", "ip4": {"ip": 5}})
        assert info.value.msg == "json: cannot unmarshal number into Go value of type string"
        assert info.value.key == "ip4.ip"

    def test_route_gateway_error(self) -> None:
        with pytest.raises(DecodingError) as info:
            parse_result({"cniVersion": "0.4.0", "routes": [{"dst": "1.2.3.0/24", "gw": "1.2.3.x"}]})
        assert info.value.msg == "invalid IP address: 1.2.3.x"
        assert info.value.key == "routes[0].gw"
        assert info.value.value == "1.2.3.x"
        assert "routes[0].gw" in str(info.value)

    def test_parse_cidr_keeps_host_bits(self) -> None:
        net = go_parse_cidr("10.2.3.1/24")
        assert net is not None
        assert str(net.ip) == "10.2.3.1"
        assert net.prefixlen == 24


class TestGoAddressText:
    @pytest.mark.parametrize(("text", "expected"), [
        ("1.2.3.4", "1.2.3.4"),
        ("0.0.0.0", "0.0.0.0"),
        ("::", "::"),
        ("::1", "::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  # leftmost of equal runs
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  # longest run wins
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # one zero group is never compressed
        ("::102:304", "::102:304"),  # not "::1.2.3.4" as C inet_ntop writes it
        ("::1.2.3.4", "::102:304"),
        ("::ffff:1.2.3.4", "1.2.3.4"),  # IPv4-mapped prints as IPv4
        ("::ffff:0102:0304", "1.2.3.4"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("0001:0002::", "1:2::"),
    ])
    def test_valid(self, text: str, expected: str) -> None:
        ip = go_parse_ip(text)
        assert ip is not None
        assert go_ip_text(ip) == expected

    @pytest.mark.parametrize("text", [
        "", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.256", "1.2.3.-1", " 1.2.3.4", "1.2.3.4 ", "fe80::1%eth0",
        "1::2::3", ":::", ":1::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "1::2:3:4:5:6:7:8", "12345::",
        "1.2.3.4::", "::1.2.3.4:5", "1:2:3:4:5:6:1.2.3", "::ffff:01.2.3.4", "g::1", "1:2:3:4:5:6:7", "\u0661.2.3.4",
        "1:2:3:4:5:1.2.3.4",
    ])
    def test_invalid(self, text: str) -> None:
        assert go_parse_ip(text) is None

    @pytest.mark.parametrize(("text", "expected"), [
        ("10.1.2.3/24", "10.1.2.3/24"),
        ("10.1.2.3/024", "10.1.2.3/24"),  # Go's dtoi accepts leading zeros in the prefix
        ("2001:db8::0/64", "2001:db8::/64"),
        ("::ffff:1.2.3.4/120", "1.2.3.4/24"),  # Go prints the last four mask bytes
        ("::ffff:1.2.3.4/64", "1.2.3.4/0"),
        ("0.0.0.0/0", "0.0.0.0/0"),
    ])
    def test_cidr(self, text: str, expected: str) -> None:
        net = go_parse_cidr(text)
        assert net is not None
        assert go_cidr_text(net) == expected

    @pytest.mark.parametrize("text", ["10.1.2.3", "10.1.2.3/", "10.1.2.3/33", "::/129", "10.1.2.3/+8", "10.1.2.3/-1",
                                      "fe80::1%eth0/64", "10.1.2.3/24/1", "/24", "10.1.2.3/ 24"])
    def test_invalid_cidr(self, text: str) -> None:
        assert go_parse_cidr(text) is None


class TestValues:
    def test_host_bits_count_in_equality(self) -> None:
        assert IPConfig(address="10.1.2.3/24") != IPConfig(address="10.1.2.4/24")
        assert IPConfig(address="10.1.2.3/24") == IPConfig(address=IPNetwork("10.1.2.3/24"))
        assert hash(Route(dst="10.0.0.1/8")) == hash(Route(dst="10.0.0.1/8"))

    def test_mapped_addresses_are_stored_as_ipv4(self) -> None:
        ip = IPConfig(address=IPNetwork("::ffff:10.1.2.3/120"), gateway=IPAddress("::ffff:10.1.2.1"))
        assert ip.address == IPNetwork("10.1.2.3/24")
        assert ip.family == 4
        assert ip.gateway == IPAddress("10.1.2.1")

    def test_040_version_defaults_to_address_family(self) -> None:
        assert IPConfig040(address="10.0.0.1/8").version == "4"
        assert IPConfig040(address="fd00::1/64").version == "6"
        assert IPConfig040(address="fd00::1/64", version="4").version == "4"

    @pytest.mark.parametrize("make", [
        lambda: Route(dst="nope"),
        lambda: Route(dst="10.0.0.0/8", gw="10.0.0.300"),
        lambda: Route(dst="10.0.0.0/8", mtu="1500"),
        lambda: Route(dst="10.0.0.0/8", table=True),
        lambda: Route(dst="10.0.0.0/8", priority=2**63),
        lambda: Interface(name=5),
        lambda: DNS(nameservers="1.1.1.1"),
        lambda: DNS(search=[1]),
        lambda: Result(cni_version="9.9.9"),
        lambda: Result040(cni_version="1.0.0"),
        lambda: Result020(cni_version="0.4.0"),
        lambda: Result(ips=[IPConfig040(address="10.0.0.1/8")]),
        lambda: Result020(ip4="10.0.0.1/8"),
    ])
    def test_invalid_values_raise_decoding_errors(self, make: object) -> None:
        with pytest.raises(DecodingError):
            make()  # type: ignore[operator]

    def test_values_are_frozen(self) -> None:
        result = full_result_110()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            result.cni_version = "1.0.0"  # type: ignore[misc]

    def test_accessors(self) -> None:
        result = full_result_110()
        assert [str(ip.address) for ip in result.ips_of_family(6)] == ["abcd:1234:ffff::cdde/64"]
        assert result.interface_of(result.ips[0]) == result.interfaces[0]
        assert result.interface_of(IPConfig(address="10.0.0.1/8", interface=3)) is None
        assert result.interface_of(IPConfig(address="10.0.0.1/8")) is None
        old = convert_result(result, "0.4.0")
        assert isinstance(old, Result040)
        assert [ip.version for ip in old.ips_of_family(4)] == ["4"]
        assert old.interface_of(old.ips[1]) == old.interfaces[0]
        legacy = convert_result(result, "0.2.0")
        assert isinstance(legacy, Result020)
        assert [c.family for c in legacy.ip_configs] == [4, 6]
        assert result.as_version("0.2.0") == legacy
        assert DNS().is_empty and not TEST_DNS.is_empty


class TestPrinting:
    def test_100_omits_empty_dns_and_040_prints_it(self) -> None:
        assert Result(cni_version="1.0.0").to_json() == '{\n    "cniVersion": "1.0.0"\n}'
        assert Result040(cni_version="0.3.0").to_json() == '{\n    "cniVersion": "0.3.0",\n    "dns": {}\n}'
        assert Result020(cni_version="0.2.0").to_json() == '{\n    "cniVersion": "0.2.0",\n    "dns": {}\n}'

    def test_route_fields_and_order(self) -> None:
        route = Route(dst="10.0.0.7/8", gw="10.0.0.1", mtu=1400, advmss=1360, priority=5, table=0, scope=253)
        old = Result040(routes=[route]).to_object()["routes"][0]
        assert list(old.items()) == [("dst", "10.0.0.7/8"), ("gw", "10.0.0.1"), ("mtu", 1400), ("advmss", 1360),
                                     ("priority", 5), ("table", 0), ("scope", 253)]
        new = Result(routes=[route]).to_object()["routes"][0]
        assert list(new) == ["advmss", "dst", "gw", "mtu", "priority", "scope", "table"]
        assert Result040(routes=[Route(dst="::/0")]).to_object()["routes"] == [{"dst": "::/0"}]

    def test_020_routes_keep_extra_fields(self) -> None:
        text = ('{"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/8", "routes": '
                '[{"dst": "0.0.0.0/0", "mtu": 1400, "table": 0}]}}')
        printed = json.loads(parse_result(text).to_json())
        assert printed["ip4"]["routes"] == [{"dst": "0.0.0.0/0", "mtu": 1400, "table": 0}]

    def test_100_numbers_pass_through_float64(self) -> None:
        # The reference prints 1.x through map[string]interface{}: 2**63-1 becomes float64 2**63,
        # written as its shortest decimal.
        result = Result(interfaces=[Interface(name="x", mtu=2**63 - 1)], ips=[IPConfig(address="::1/128",
                                                                                         interface=2**53 + 1)])
        printed = result.to_json()
        assert '"mtu": 9223372036854776000' in printed
        assert '"interface": 9007199254740992' in printed
        old = convert_result(result, "0.4.0").to_json()
        assert '"interface": 9007199254740993' in old

    def test_html_characters_are_escaped_like_go(self) -> None:
        result = Result040(interfaces=[Interface040(name="a<b>&c", mac="\u2028")])
        assert '"name": "a\\u003cb\\u003e\\u0026c"' in result.to_json()
        assert parse_result(result.to_json()) == result

    def test_loopback_shape_quirk(self) -> None:
        # A 1.x-shaped result stamped 0.4.0 prints as 1.x at 0.4.0 (no ips[].version, no dns).
        quirk = Result(cni_version="0.4.0",
                       interfaces=[Interface(name="lo", mac="00:00:00:00:00:00", sandbox="/var/run/netns/x")],
                       ips=[IPConfig(interface=0, address="127.0.0.1/8"), IPConfig(interface=0, address="::1/128")])
        assert convert_result(quirk, "0.4.0") is quirk
        printed = json.loads(quirk.to_json())
        assert printed["cniVersion"] == "0.4.0"
        assert "dns" not in printed
        assert printed["ips"] == [{"address": "127.0.0.1/8", "interface": 0}, {"address": "::1/128", "interface": 0}]
        # What the reference's loopback prints without a cniVersion: converted to 0.1.0.
        legacy = Result(cni_version="1.1.0", ips=quirk.ips).as_version("")
        assert legacy.to_json() == ('{\n    "cniVersion": "0.1.0",\n    "ip4": {\n        "ip": "127.0.0.1/8"\n'
                                    '    },\n    "ip6": {\n        "ip": "::1/128"\n    },\n    "dns": {}\n}')


class TestParsing:
    def test_missing_version_takes_the_given_one(self) -> None:
        result = parse_result('{"ips": [{"address": "10.0.0.2/8"}]}', "1.0.0")
        assert isinstance(result, Result)
        assert result.cni_version == "1.0.0"
        result = parse_result('{"cniVersion": "", "ips": [{"address": "10.0.0.2/8"}]}', "0.3.1")
        assert isinstance(result, Result040) and result.cni_version == "0.3.1"
        # A non-string version is replaced too (the reference checks for a non-empty string).
        assert parse_result({"cniVersion": 5}, "1.1.0").cni_version == "1.1.0"

    def test_embedded_version_wins_over_given(self) -> None:
        result = parse_result('{"cniVersion": "0.4.0"}', "1.1.0")
        assert isinstance(result, Result040)

    def test_null_document_is_empty_result(self) -> None:
        assert parse_result("null", "1.0.0") == Result(cni_version="1.0.0")
        assert parse_result(b"null") == Result020(cni_version="0.1.0")

    @pytest.mark.parametrize("version", ["5678.456", "0.5.0", "2.0.0", "x"])
    def test_unsupported_versions(self, version: str) -> None:
        with pytest.raises(DecodingError) as info:
            parse_result(json.dumps({"cniVersion": version}))
        assert info.value.msg == f'unsupported CNI result version "{version}"'
        with pytest.raises(DecodingError, match="unsupported CNI result version"):
            parse_result("{}", version)

    def test_unknown_keys_are_ignored(self) -> None:
        text = '{"cniVersion": "1.0.0", "bogus": [1], "ips": [{"version": "4", "address": "10.0.0.2/8", "x": {}}]}'
        assert parse_result(text) == Result(cni_version="1.0.0", ips=[IPConfig(address="10.0.0.2/8")])

    def test_keys_match_case_insensitively_last_wins(self) -> None:
        text = '{"cniVersion": "1.0.0", "IPs": [{"Address": "10.0.0.2/8", "GATEWAY": "10.0.0.1"}], ' \
               '"ips": [{"address": "10.0.0.3/8"}], "Interfaces": [{"NAME": "eth0", "\u212aey": 1}]}'
        result = parse_result(text)
        assert isinstance(result, Result)
        assert result.ips == (IPConfig(address="10.0.0.3/8"),)
        assert result.interfaces == (Interface(name="eth0"),)
        # The Kelvin sign folds to "k" as in Go: "\u212aey" is not "mac", but "\u017fandbox" is "sandbox".
        other = parse_result('{"cniVersion": "0.4.0", "interfaces": [{"name": "a", "\u017fandbox": "/x"}]}')
        assert other.interfaces[0].sandbox == "/x"  # type: ignore[union-attr]

    def test_only_the_exact_version_key_counts_before_injection(self) -> None:
        # As in the reference: "CNIVERSION" is not "cniVersion" for the version fix-up, so the
        # assumed version is injected and wins.
        result = parse_result('{"CNIVERSION": "1.0.0"}', "0.4.0")
        assert result == Result040(cni_version="0.4.0")

    def test_nulls_are_absent_values(self) -> None:
        text = ('{"cniVersion": "1.1.0", "interfaces": [{"name": null, "mtu": null}], "ips": '
                '[{"address": "10.0.0.2/8", "gateway": null, "interface": null}], "dns": null, '
                '"routes": [{"dst": "0.0.0.0/0", "gw": "", "table": null}]}')
        result = parse_result(text)
        assert result == Result(interfaces=[Interface(name="")], ips=[IPConfig(address="10.0.0.2/8")],
                                routes=[Route(dst="0.0.0.0/0")])

    def test_invalid_json(self) -> None:
        with pytest.raises(DecodingError) as info:
            parse_result("{")
        assert info.value.code == 6
        with pytest.raises(DecodingError):
            parse_result(b"\xff")

    @pytest.mark.parametrize(("doc", "key", "fragment"), [
        ({"cniVersion": 1}, None, None),  # replaced by the assumed version: no error
        ({"cniVersion": "1.0.0", "interfaces": {}}, "interfaces", "cannot unmarshal object"),
        ({"cniVersion": "1.0.0", "interfaces": [5]}, "interfaces[0]", "cannot unmarshal number"),
        ({"cniVersion": "1.0.0", "interfaces": [None]}, "interfaces[0]", "null entry"),
        ({"cniVersion": "1.0.0", "interfaces": [{"name": 1}]}, "interfaces[0].name", "of type string"),
        ({"cniVersion": "1.0.0", "interfaces": [{"name": "a", "mtu": 1.5}]}, "interfaces[0].mtu", "number 1.5"),
        ({"cniVersion": "1.0.0", "interfaces": [{"name": "a", "mtu": 2**63}]}, "interfaces[0].mtu", "of type int"),
        ({"cniVersion": "0.4.0", "ips": [{"address": "10.0.0.1/8", "interface": "0"}]}, "ips[0].interface",
         "cannot unmarshal string"),
        ({"cniVersion": "0.4.0", "ips": [{"address": "10.0.0.1/8", "version": 4}]}, "ips[0].version",
         "cannot unmarshal number"),
        ({"cniVersion": "0.4.0", "ips": [{"gateway": "10.0.0.1"}]}, "ips[0].address", "invalid CIDR address: "),
        ({"cniVersion": "0.4.0", "ips": [{"address": None}]}, "ips[0].address", "invalid CIDR address: "),
        ({"cniVersion": "0.4.0", "ips": [{"address": "10.0.0.1/8", "gateway": 7}]}, "ips[0].gateway", "net.IP"),
        ({"cniVersion": "0.4.0", "routes": [{"dst": "10.0.0.0/8", "table": True}]}, "routes[0].table",
         "cannot unmarshal bool"),
        ({"cniVersion": "0.4.0", "dns": []}, "dns", "cannot unmarshal array"),
        ({"cniVersion": "0.4.0", "dns": {"search": "x"}}, "dns.search", "of type []string"),
        ({"cniVersion": "0.4.0", "dns": {"options": [1]}}, "dns.options[0]", "cannot unmarshal number"),
        ({"cniVersion": "0.2.0", "ip4": "10.0.0.1/8"}, "ip4", "cannot unmarshal string"),
        ({"cniVersion": "0.2.0", "ip6": {"ip": "::1/128", "routes": [{"dst": "::/0", "gw": "x"}]}},
         "ip6.routes[0].gw", "invalid IP address: x"),
    ])
    def test_type_errors_name_the_key(self, doc: dict[str, object], key: str | None, fragment: str | None) -> None:
        if key is None:
            parse_result(doc, "1.0.0")
            return
        with pytest.raises(DecodingError) as info:
            parse_result(doc)
        assert info.value.key == key
        assert fragment in info.value.msg  # type: ignore[operator]
        assert key in str(info.value)

    def test_non_object_document(self) -> None:
        with pytest.raises(DecodingError, match="failed to unmarshal raw result"):
            parse_result("[]")

    def test_null_strings_in_lists_become_empty(self) -> None:
        result = parse_result({"cniVersion": "0.4.0", "dns": {"nameservers": [None, "1.1.1.1"]}})
        assert result.dns.nameservers == ("", "1.1.1.1")

    def test_unpaired_surrogates_become_replacement_characters(self) -> None:
        result = parse_result('{"cniVersion": "0.4.0", "interfaces": [{"name": "a\\ud800b"}]}')
        assert result.interfaces[0].name == "a\ufffdb"  # type: ignore[union-attr]


class TestPrevResult:
    def test_no_prev_result(self) -> None:
        assert parse_prev_result({"cniVersion": "1.0.0", "name": "n"}) is None
        assert parse_prev_result({"cniVersion": "1.0.0", "prevResult": None}) is None

    def test_uses_the_config_family(self) -> None:
        prev = {"cniVersion": "1.0.0", "ips": [{"version": "4", "address": "10.0.0.2/8"}]}  # stray "version"
        result = parse_prev_result({"cniVersion": "1.1.0", "prevResult": prev})
        assert result == Result(cni_version="1.0.0", ips=[IPConfig(address="10.0.0.2/8")])

    def test_missing_version_assumes_config_version(self) -> None:
        result = parse_prev_result({"cniVersion": "0.4.0", "prevResult": {"ips": [{"version": "4",
                                                                                   "address": "10.0.0.2/8"}]}})
        assert isinstance(result, Result040)
        assert result.cni_version == "0.4.0"
        legacy = parse_prev_result({"prevResult": {"ip4": {"ip": "10.0.0.2/8"}}})
        assert isinstance(legacy, Result020) and legacy.cni_version == "0.1.0"

    @pytest.mark.parametrize(("config_version", "prev_version", "message"), [
        ("1.1.0", "0.2.0", 'could not parse prevResult: result type supports [1.0.0 1.1.0] but unmarshalled '
                           'CNIVersion is "0.2.0"'),
        ("0.4.0", "1.0.0", 'could not parse prevResult: result type supports [0.3.0 0.3.1 0.4.0] but '
                           'unmarshalled CNIVersion is "1.0.0"'),
        ("0.2.0", "0.4.0", 'could not parse prevResult: result type supports [ 0.1.0 0.2.0] but '
                           'unmarshalled CNIVersion is "0.4.0"'),
        ("1.0.0", "", 'could not parse prevResult: result type supports [1.0.0 1.1.0] but unmarshalled '
                      'CNIVersion is ""'),
        ("5678.456", "1.0.0", 'could not parse prevResult: unsupported CNI result version "5678.456"'),
    ])
    def test_family_mismatch(self, config_version: str, prev_version: str, message: str) -> None:
        with pytest.raises(DecodingError) as info:
            parse_prev_result({"cniVersion": config_version, "prevResult": {"cniVersion": prev_version}})
        assert info.value.msg == message

    def test_same_family_other_version_keeps_its_own(self) -> None:
        result = parse_prev_result({"cniVersion": "0.3.1", "prevResult": {"cniVersion": "0.4.0"}})
        assert result == Result040(cni_version="0.4.0")

    def test_errors_carry_the_prev_result_path(self) -> None:
        with pytest.raises(DecodingError) as info:
            parse_prev_result({"cniVersion": "1.0.0", "prevResult": {"ips": [{"address": "1.2.3/45"}]}})
        assert info.value.msg == "could not parse prevResult: invalid CIDR address: 1.2.3/45"
        assert info.value.key == "prevResult.ips[0].address"

    def test_malformed_configs(self) -> None:
        with pytest.raises(DecodingError):
            parse_prev_result({"cniVersion": "1.0.0", "prevResult": "x"})
        with pytest.raises(DecodingError):
            parse_prev_result({"cniVersion": 1, "prevResult": {}})
        with pytest.raises(DecodingError):
            parse_prev_result(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_result_modules_are_pure() -> None:
    # The result core may use only the standard library, netaddr and attrs.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import cnicore.spec._result, cnicore.spec._convert\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('subprocess', 'pyroute2', 'hypothesis', "
        "'filelock', 'etcd3gw') or m.startswith(('cnicore.backends', 'cnicore.stores', 'cnicore.plugins', "
        "'cnicore.runtime', 'cnicore.links')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
