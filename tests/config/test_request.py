"""Request derivation: the exact stdin bytes libcni gives each plugin."""

from __future__ import annotations

import json

import pytest

from cnicore._errors import CNIError, DecodingError, InvalidConfigError
from cnicore.config import (
    build_gc_request,
    build_request,
    inject_config,
    parse_network_config_list,
    parse_plugin_config,
    runtime_config,
)

API_PLUGIN = {
    "type": "noop",
    "name": "apitest",
    "cniVersion": "1.1.0",
    "capabilities": {"portMappings": True, "somethingElse": True, "noCapability": False},
}
CAPABILITY_ARGS = {
    "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
    "somethingElse": ["foobar", "baz"],
    "noCapability": True,
    "notAdded": [True, False],
}


def _network(*plugins: dict[str, object], version: str = "1.1.0") -> object:
    return parse_network_config_list({"name": "apitest", "cniVersion": version, "plugins": list(plugins)})


def test_add_request_keeps_capabilities_and_adds_runtime_config() -> None:
    network = parse_network_config_list({"name": "apitest", "cniVersion": "1.1.0", "plugins": [API_PLUGIN]})
    stdin = build_request(network, 0, capability_args=CAPABILITY_ARGS)
    expected = dict(API_PLUGIN)
    # libcni deviates from the spec (which says capabilities must not be set): they stay.
    expected["runtimeConfig"] = {"portMappings": CAPABILITY_ARGS["portMappings"],
                                 "somethingElse": ["foobar", "baz"]}
    assert json.loads(stdin) == expected
    # Compact, keys sorted at every level: Go's map marshal.
    assert stdin == json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()


def test_no_runtime_config_without_intersection() -> None:
    network = parse_network_config_list({"name": "apitest", "cniVersion": "1.1.0", "plugins": [API_PLUGIN]})
    stdin = build_request(network, 0, capability_args={"noCapability": True, "other": 1})
    assert "runtimeConfig" not in json.loads(stdin)
    assert build_request(network, 0) == build_request(network, 0, capability_args={})


def test_runtime_config_from_the_file_passes_through_unless_replaced() -> None:
    plugin = {"type": "x", "capabilities": {"mac": True}, "runtimeConfig": {"stale": 1}}
    network = parse_network_config_list({"name": "n", "cniVersion": "1.0.0", "plugins": [plugin]})
    assert json.loads(build_request(network, 0))["runtimeConfig"] == {"stale": 1}
    replaced = json.loads(build_request(network, 0, capability_args={"mac": "aa:bb:cc:dd:ee:ff"}))
    assert replaced["runtimeConfig"] == {"mac": "aa:bb:cc:dd:ee:ff"}


def test_name_and_version_are_the_lists() -> None:
    network = parse_network_config_list(
        {"name": "outer", "cniVersion": "0.4.0", "plugins": [{"type": "x", "name": "inner", "cniVersion": "0.1.0"}]})
    assert build_request(network, network.plugins[0]) == b'{"cniVersion":"0.4.0","name":"outer","type":"x"}'


def test_selected_version_is_injected() -> None:
    network = parse_network_config_list(
        {"name": "n", "cniVersion": "1.0.0", "cniVersions": ["1.1.0", "99.0.0"], "plugins": [{"type": "x"}]})
    assert json.loads(build_request(network, 0))["cniVersion"] == "1.1.0"


PREV_040 = {"cniVersion": "0.4.0", "interfaces": [{"name": "eth0"}],
            "ips": [{"version": "4", "interface": 0, "address": "10.0.0.2/24"}], "dns": {}}


def test_prev_result_keeps_its_own_key_order() -> None:
    # A 0.4.0 result is a Go struct: it marshals in field order, not sorted.
    network = parse_network_config_list({"name": "n", "cniVersion": "0.4.0", "plugins": [{"type": "x", "z": 1}]})
    stdin = build_request(network, 0, prev_result=PREV_040)
    assert stdin == (b'{"cniVersion":"0.4.0","name":"n","prevResult":{"cniVersion":"0.4.0","interfaces":'
                     b'[{"name":"eth0"}],"ips":[{"version":"4","interface":0,"address":"10.0.0.2/24"}],'
                     b'"dns":{}},"type":"x","z":1}')


def test_prev_result_is_sorted_when_runtime_config_is_injected_too() -> None:
    # libcni's second injection decodes the whole document into a map again.
    plugin = {"type": "x", "capabilities": {"mac": True}}
    network = parse_network_config_list({"name": "n", "cniVersion": "0.4.0", "plugins": [plugin]})
    stdin = build_request(network, 0, prev_result=PREV_040, capability_args={"mac": "m"})
    assert b'"prevResult":{"cniVersion":"0.4.0","dns":{},"interfaces":[{"name":"eth0"}],' \
           b'"ips":[{"address":"10.0.0.2/24","interface":0,"version":"4"}]}' in stdin
    assert stdin.endswith(b'"runtimeConfig":{"mac":"m"},"type":"x"}')


def test_prev_result_in_the_file_is_replaced() -> None:
    network = parse_network_config_list({"name": "n", "plugins": [{"type": "x", "prevResult": {"old": 1}}]})
    assert json.loads(build_request(network, 0, prev_result={"cniVersion": "1.0.0"}))["prevResult"] == \
        {"cniVersion": "1.0.0"}
    assert json.loads(build_request(network, 0))["prevResult"] == {"old": 1}


def test_numbers_are_written_as_go_float64() -> None:
    network = parse_network_config_list(
        b'{"name": "n", "plugins": [{"type": "x", "a": 1.0, "b": 0.00001, "c": 1e-7, "d": 1e21, '
        b'"e": 12345678901234567890, "f": -0.0, "g": 2.50, "h": -0, "i": [-0]}]}')
    assert build_request(network, 0) == (b'{"a":1,"b":0.00001,"c":1e-7,"cniVersion":"","d":1e+21,'
                                         b'"e":12345678901234567000,"f":-0,"g":2.5,"h":-0,"i":[-0],"name":"n",'
                                         b'"type":"x"}')


def test_html_characters_are_escaped_like_go() -> None:
    network = parse_network_config_list({"name": "n", "plugins": [{"type": "x", "s": "<a&b>"}]})
    assert b'"s":"\\u003ca\\u0026b\\u003e"' in build_request(network, 0)


def test_gc_request_carries_both_attachment_keys() -> None:
    network = parse_network_config_list({"name": "n", "cniVersion": "1.1.0", "plugins": [{"type": "host-local"}]})
    stdin = build_gc_request(network, 0, valid_attachments=[("c1", "eth0"), ("c2", "net1")])
    attachments = [{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2", "ifname": "net1"}]
    assert json.loads(stdin) == {"cni.dev/attachments": attachments, "cni.dev/valid-attachments": attachments,
                                 "cniVersion": "1.1.0", "name": "n", "type": "host-local"}
    assert stdin.startswith(b'{"cni.dev/attachments":[{"containerID":"c1","ifname":"eth0"}')
    empty = json.loads(build_gc_request(network, 0, valid_attachments=[]))
    assert empty["cni.dev/valid-attachments"] == [] and empty["cni.dev/attachments"] == []
    bare = json.loads(build_gc_request(network, 0, valid_attachments=None))
    assert "cni.dev/valid-attachments" not in bare and "cni.dev/attachments" not in bare


def test_runtime_config_helper() -> None:
    plugin = parse_plugin_config(json.dumps(API_PLUGIN))
    assert runtime_config(plugin, CAPABILITY_ARGS) == {"portMappings": CAPABILITY_ARGS["portMappings"],
                                                       "somethingElse": ["foobar", "baz"]}
    assert runtime_config(plugin, None) == {}


# --- InjectConf (conf_test.go) --------------------------------------------------------------------

BASE = b'{ "name": "some-plugin", "type": "foobar" }'


def test_inject_adds_a_key() -> None:
    assert inject_config(BASE, {"test": "test"}) == b'{"name":"some-plugin","test":"test","type":"foobar"}'


def test_inject_changes_an_existing_key() -> None:
    once = inject_config(BASE, {"test": "test"})
    assert inject_config(once, {"test": "changedValue"}) == \
        b'{"name":"some-plugin","test":"changedValue","type":"foobar"}'
    assert inject_config(once, {"test": "test"}) == once


def test_inject_sub_fields() -> None:
    with_dns = inject_config(BASE, {"dns": {"nameservers": ["server1", "server2"], "domain": "local"}})
    assert inject_config(with_dns, {"type": "bridge"}) == \
        b'{"dns":{"domain":"local","nameservers":["server1","server2"]},"name":"some-plugin","type":"bridge"}'


def test_inject_errors() -> None:
    with pytest.raises(DecodingError) as decoding:
        inject_config(b"{ cc cc cc}", {"": None})
    assert decoding.value.msg.startswith("unmarshal existing network bytes")
    with pytest.raises(InvalidConfigError) as empty:
        inject_config(BASE, {"": None})
    assert empty.value.msg == "keys cannot be empty"
    with pytest.raises(InvalidConfigError) as nil:
        inject_config(BASE, {"test": None})
    assert nil.value.msg == "key 'test' value must not be nil"


def test_unserialisable_capability_value_is_a_cnicore_error() -> None:
    network = parse_network_config_list({"name": "n", "plugins": [{"type": "x", "capabilities": {"mac": True}}]})
    with pytest.raises(CNIError):
        build_request(network, 0, capability_args={"mac": object()})
    with pytest.raises(InvalidConfigError):
        build_request(network, 3)
