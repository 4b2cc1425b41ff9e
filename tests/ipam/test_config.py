"""IPAM configuration loading: the reference's config_test.go vectors, error paths, and the Go plugin's messages."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import support
from netaddr import IPAddress

from cnicore._errors import DecodingError, InvalidConfigError
from cnicore.ipam import DEFAULT_DATA_DIR, load_ipam_config
from cnicore.stores import parse_ip


def conf(ipam: Any, **top: Any) -> dict[str, Any]:
    return {"cniVersion": "0.3.1", "name": "mynet", "type": "ipvlan", "master": "foo0", "ipam": ipam, **top}


def ranges_of(c: Any) -> list[list[tuple[str, str, str, str]]]:
    return [[(f"{r.subnet}", str(r.range_start), str(r.range_end), str(r.gateway)) for r in rs.ranges]
            for rs in c.range_sets]


def test_old_style() -> None:
    c = load_ipam_config(json.dumps(conf({"type": "host-local", "subnet": "10.1.2.0/24", "gateway": "10.1.2.1",
                                          "routes": [{"dst": "0.0.0.0/0"}]})))
    assert c.name == "mynet" and c.type == "host-local" and c.data_dir == DEFAULT_DATA_DIR
    assert ranges_of(c) == [[("10.1.2.0/24", "10.1.2.1", "10.1.2.254", "10.1.2.1")]]
    assert [str(r.dst) for r in c.routes] == ["0.0.0.0/0"]


def test_new_style_and_mixed_order() -> None:
    ipam = {"type": "host-local", "subnet": "10.1.2.0/24",
            "ranges": [[{"subnet": "10.2.2.0/24"}, {"subnet": "11.1.2.0/24", "rangeStart": "11.1.2.9",
                                                   "rangeEnd": "11.1.2.20", "gateway": "11.1.2.254"}],
                       [{"subnet": "2001:db8:1::/64"}]]}
    c = load_ipam_config(conf(ipam, runtimeConfig={"ipRanges": [[{"subnet": "192.168.0.0/24"}]]}))
    assert ranges_of(c) == [
        [("192.168.0.0/24", "192.168.0.1", "192.168.0.254", "192.168.0.1")],
        [("10.1.2.0/24", "10.1.2.1", "10.1.2.254", "10.1.2.1")],
        [("10.2.2.0/24", "10.2.2.1", "10.2.2.254", "10.2.2.1"),
         ("11.1.2.0/24", "11.1.2.9", "11.1.2.20", "11.1.2.254")],
        [("2001:db8:1::/64", "2001:db8:1::1", "2001:db8:1:0:ffff:ffff:ffff:ffff", "2001:db8:1::1")],
    ]


@pytest.mark.parametrize(("cni_args", "expected"), [
    ("IP=10.1.2.10", ["10.1.2.10"]),
    ("IP=10.1.2.11/24", ["10.1.2.11"]),
    ("IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.2.12", ["10.1.2.12"]),
    ("", []),
])
def test_cni_args_ip(cni_args: str, expected: list[str]) -> None:
    c = load_ipam_config(conf({"type": "host-local", "subnet": "10.1.2.0/24"}), cni_args)
    assert [str(ip) for ip in c.requested_ips] == expected


def test_requested_ips_accumulate_in_order() -> None:
    c = load_ipam_config(conf({"type": "host-local", "subnet": "10.1.2.0/24"},
                              args={"cni": {"ips": ["10.1.2.11", "11.11.11.11/24", "2001:db8:1::11"]}},
                              runtimeConfig={"ips": ["192.168.0.1", "192.168.0.5/24", "2001:db8::1/64", "10.1.2.11"]}),
                         "IP=10.1.2.10")
    assert c.requested_ips == tuple(IPAddress(x) for x in [
        "10.1.2.10", "10.1.2.11", "11.11.11.11", "2001:db8:1::11", "192.168.0.1", "192.168.0.5", "2001:db8::1"])


def err(config: Any, cni_args: str = "") -> InvalidConfigError:
    with pytest.raises(InvalidConfigError) as info:
        load_ipam_config(config, cni_args)
    assert info.value.code == 7
    return info.value


@pytest.mark.parametrize(("ipam", "message", "key"), [
    ({"ranges": [[{"subnet": "10.1.0.0/22"}, {"subnet": "10.1.2.0/24"}]]},
     "invalid range set 0: subnets 10.1.0.1-10.1.3.254 and 10.1.2.1-10.1.2.254 overlap", "ipam.ranges[0][1]"),
    ({"ranges": [[{"subnet": "10.1.0.0/22"}, {"subnet": "2001:db8::/64"}]]},
     "invalid range set 0: mixed address families", "ipam.ranges[0][1]"),
    ({"ranges": [[{"subnet": "10.1.0.0/22"}], [{"subnet": "10.1.2.0/24"}]]},
     "range set 0 overlaps with 1", "ipam.ranges[1]"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/31"}]]},
     "invalid range set 1: Network 10.0.0.0/31 too small to allocate from", "ipam.ranges[1][0].subnet"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}, {}]]}, "invalid range set 0: IP <nil> not v4 nor v6",
     "ipam.ranges[0][1].subnet"),
    ({"ranges": [[]]}, "invalid range set 0: empty range set", "ipam.ranges[0]"),
    ({"type": "host-local"}, "no IP ranges specified", "ipam.ranges"),
    ({"ranges": [[{"subnet": 5}]]},
     "json: cannot unmarshal number into Go struct field Range.ipam.ranges.subnet of type string",
     "ipam.ranges[0][0].subnet"),
    ({"ranges": {}},
     "json: cannot unmarshal object into Go struct field IPAMConfig.ipam.ranges of type []allocator.RangeSet",
     "ipam.ranges"),
    ({"ranges": [[{"subnet": "x"}]]}, "invalid CIDR address: x", "ipam.ranges[0][0].subnet"),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "gateway": "x"}]]}, "invalid IP address: x",
     "ipam.ranges[0][0].gateway"),
    ({"subnet": "10.0.0.0/24", "routes": [{"dst": "x"}]}, "invalid CIDR address: x", "ipam.routes[0].dst"),
    ({"subnet": "10.0.0.0/24", "dataDir": 3},
     "json: cannot unmarshal number into Go struct field IPAMConfig.ipam.dataDir of type string", "ipam.dataDir"),
])
def test_ipam_errors(ipam: dict[str, Any], message: str, key: str) -> None:
    e = err(conf(ipam))
    assert (e.msg, e.key) == (message, key)


def test_top_level_errors() -> None:
    assert err(conf(None)).msg == "IPAM config missing 'ipam' key"
    assert err({"name": "x"}).msg == "IPAM config missing 'ipam' key"
    assert err(conf(5)).msg == "json: cannot unmarshal number into Go struct field Net.ipam of type " \
                               "allocator.IPAMConfig"
    assert err([1]).msg == "json: cannot unmarshal array into Go value of type allocator.Net"
    e = err(conf({"subnet": "10.0.0.0/24"}, runtimeConfig={"ips": ["x"]}))
    assert (e.msg, e.key) == ("invalid IP address x", "runtimeConfig.ips[0]")
    e = err(conf({"subnet": "10.0.0.0/24"}, args={"cni": {"ips": ["1.2.3.4", "y"]}}))
    assert (e.msg, e.key) == ("invalid IP address y", "args.cni.ips[1]")
    assert err(conf({"subnet": "10.0.0.0/24"}), "IP=x").msg == \
        'ARGS: error parsing value of pair "IP=x": invalid IP address x'
    assert err(conf({"subnet": "10.0.0.0/24"}), "K8S_POD_NAME=x").msg == 'ARGS: unknown args ["K8S_POD_NAME=x"]'
    with pytest.raises(DecodingError):
        load_ipam_config(b"{not json")


@pytest.mark.parametrize("version", ["", "0.1.0", "0.2.0"])
def test_old_versions_allow_one_address_per_family(version: str) -> None:
    two_v4 = {"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/24"}]]}
    e = err({**conf(two_v4), "cniVersion": version})
    assert e.msg == f"CNI version {version} does not support more than 1 address per family"
    dual = {"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8::/64"}]]}
    assert len(load_ipam_config({**conf(dual), "cniVersion": version}).range_sets) == 2


def test_go_decoding_quirks() -> None:
    # Keys match case-insensitively, null and "" mean absent, requested duplicates collapse.
    c = load_ipam_config(conf({"Ranges": [[{"Subnet": "10.0.0.0/24", "gateway": "", "rangeEnd": None}]],
                               "dataDir": None}, runtimeConfig={"ips": ["10.0.0.5", "10.0.0.5"]}))
    assert ranges_of(c) == [[("10.0.0.0/24", "10.0.0.1", "10.0.0.254", "10.0.0.1")]]
    assert c.data_dir == DEFAULT_DATA_DIR
    assert c.requested_ips == (parse_ip("10.0.0.5"),)


# --------------------------------------------------------------------------- differential: the Go plugin says the same

BAD_CONFIGS: list[tuple[dict[str, Any], str]] = [
    ({"ranges": [[{"subnet": "10.1.0.0/22"}, {"subnet": "10.1.2.0/24"}]]}, ""),
    ({"ranges": [[{"subnet": "10.1.0.0/22"}], [{"subnet": "10.1.2.0/24"}]]}, ""),
    ({"ranges": [[{"subnet": "10.0.0.12/24"}]]}, ""),
    ({"ranges": [[{"subnet": "10.0.0.12/31"}]]}, ""),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.50", "rangeEnd": "10.0.0.40"}]]}, ""),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "rangeEnd": "10.0.1.40"}]]}, ""),
    ({"ranges": [[{"subnet": "2001:db8::/64", "rangeStart": "10.0.0.5"}]]}, ""),
    ({"ranges": [[{"subnet": "2001:db8:24:19ff::/63"}]]}, ""),
    ({"ranges": [[{}]]}, ""),
    ({"ranges": [[{"subnet": 5}]]}, ""),
    ({"ranges": {}}, ""),
    ({"ranges": [[{"subnet": "x"}]]}, ""),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "gateway": "x"}]]}, ""),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, "IP=x"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, "FOO=x"),
    ({"type": "host-local"}, ""),
]


@pytest.mark.reference
@pytest.mark.parametrize(("ipam", "cni_args"), BAD_CONFIGS)
def test_messages_match_the_reference_plugin(ipam: dict[str, Any], cni_args: str, tmp_path: Path) -> None:
    plugin = support.reference_plugin("host-local")
    config = {"cniVersion": "0.4.0", "name": "n", "ipam": {"type": "host-local", "dataDir": str(tmp_path), **ipam}}
    env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "x", "CNI_IFNAME": "eth0",
           "CNI_PATH": str(plugin.parent), "CNI_ARGS": cni_args}
    out = subprocess.run([str(plugin)], input=json.dumps(config).encode(), env=env, capture_output=True, check=False)
    assert out.returncode == 1
    go_msg = json.loads(out.stdout)["msg"]
    with pytest.raises(InvalidConfigError) as info:
        load_ipam_config(config, cni_args)
    assert info.value.msg == go_msg
