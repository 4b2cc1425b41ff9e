"""Parsing single configs and configuration lists: libcni's conf_test.go vectors and error texts."""

from __future__ import annotations

import pytest

from cnicore._errors import CNIError, DecodingError, InvalidConfigError
from cnicore.config import (
    NetworkConfigList,
    PluginConfig,
    conf_list_from_conf,
    parse_network_config_list,
    parse_plugin_config,
)

LIBCNI_LIST = b"""{
  "name": "some-network",
  "cniVersion": "0.2.0",
  "disableCheck": true,
  "plugins": [
    {
      "type": "host-local",
      "subnet": "10.0.0.1/24"
    },
    {
      "type": "bridge",
      "mtu": 1400
    },
    {
      "type": "port-forwarding",
      "ports": {"20.0.0.1:8080": "80"}
    }
  ]
}"""


def _list_error(data: bytes | str) -> CNIError:
    with pytest.raises(CNIError) as info:
        parse_network_config_list(data)
    return info.value


def _conf_error(data: bytes | str) -> CNIError:
    with pytest.raises(CNIError) as info:
        parse_plugin_config(data)
    return info.value


def test_conflist_fields_and_plugin_bytes_match_libcni() -> None:
    network = parse_network_config_list(LIBCNI_LIST)
    assert isinstance(network, NetworkConfigList)
    assert (network.name, network.cni_version, network.disable_check) == ("some-network", "0.2.0", True)
    assert not network.disable_gc and not network.load_only_inlined_plugins
    assert network.bytes == LIBCNI_LIST
    assert [p.type for p in network.plugins] == ["host-local", "bridge", "port-forwarding"]
    # Each entry is re-marshalled by Go: compact, keys sorted.
    assert [p.bytes for p in network.plugins] == [
        b'{"subnet":"10.0.0.1/24","type":"host-local"}',
        b'{"mtu":1400,"type":"bridge"}',
        b'{"ports":{"20.0.0.1:8080":"80"},"type":"port-forwarding"}',
    ]


def test_plugin_config_keeps_bytes_and_unknown_keys() -> None:
    data = b'{ "name": "some-plugin", "type": "foobar", "some-key": "some-value" }'
    plugin = parse_plugin_config(data)
    assert isinstance(plugin, PluginConfig)
    assert (plugin.name, plugin.type, plugin.bytes) == ("some-plugin", "foobar", data)
    assert plugin.raw["some-key"] == "some-value"
    with pytest.raises(TypeError):
        plugin.raw["some-key"] = "changed"  # type: ignore[index]
    copy = plugin.raw_dict()
    copy["some-key"] = "changed"
    assert plugin.raw["some-key"] == "some-value"


def test_capabilities_are_read() -> None:
    plugin = parse_plugin_config(b'{ "name": "some-plugin", "type": "noop", "cniVersion": "0.3.1", "capabilities": '
                                 b'{ "portMappings": true, "somethingElse": true, "noCapability": false } }')
    assert dict(plugin.capabilities) == {"portMappings": True, "somethingElse": True, "noCapability": False}
    assert plugin.enabled_capabilities() == ("portMappings", "somethingElse")
    assert plugin.cni_version == "0.3.1"


def test_missing_type() -> None:
    err = _conf_error(b'{ "name": "some-plugin", "some-key": "some-value" }')
    assert (err.code, err.msg) == (7, "error parsing configuration: missing 'type'")
    assert err.key == "type"


def test_malformed_single_config() -> None:
    err = _conf_error(b"{")
    assert (err.code, err.msg) == (6, "error parsing configuration: unexpected end of JSON input")


def test_malformed_list() -> None:
    err = _list_error(b"{")
    assert (err.code, err.msg) == (6, "error parsing configuration list: unexpected end of JSON input")


@pytest.mark.parametrize(("value", "expected"), [('"true"', True), ('"false"', False), ('"TRUE"', True),
                                                 ("true", True), ("false", False)])
def test_string_booleans(value: str, expected: bool) -> None:
    for key, attr in (("disableCheck", "disable_check"), ("disableGC", "disable_gc"),
                      ("loadOnlyInlinedPlugins", "load_only_inlined_plugins")):
        doc = f'{{"name": "n", "cniVersion": "1.1.0", "{key}": {value}, "plugins": [{{"type": "x"}}]}}'
        assert getattr(parse_network_config_list(doc), attr) is expected


@pytest.mark.parametrize(("key", "bad"), [("disableCheck", "adsfasdfasf"), ("loadOnlyInlinedPlugins", "sphagnum"),
                                          ("disableGC", "Yes")])
def test_bad_string_boolean(key: str, bad: str) -> None:
    err = _list_error(f'{{"name": "n", "cniVersion": "0.4.0", "{key}": "{bad}", "plugins": [{{"type": "x"}}]}}')
    # libcni lower-cases the value before quoting it.
    assert (err.code, err.msg) == (7, f'error parsing configuration list: invalid value "{bad.lower()}" for {key}')
    assert err.key == key and err.value == bad


@pytest.mark.parametrize(("raw", "word"), [("1", "float64"), ("[]", "[]interface {}"),
                                           ("{}", "map[string]interface {}"), ("null", "<nil>")])
def test_bad_boolean_type(raw: str, word: str) -> None:
    err = _list_error(f'{{"name": "n", "disableCheck": {raw}, "plugins": [{{"type": "x"}}]}}')
    assert err.msg == f"error parsing configuration list: invalid type {word} for disableCheck"


def test_no_name() -> None:
    err = _list_error(b'{"plugins": [{"type": "x"}]}')
    assert (err.code, err.msg, err.key) == (7, "error parsing configuration list: no name", "name")


@pytest.mark.parametrize(("raw", "word"), [("5", "float64"), ("true", "bool"), ("null", "<nil>"),
                                           ('["a"]', "[]interface {}")])
def test_invalid_name_type(raw: str, word: str) -> None:
    err = _list_error(f'{{"name": {raw}, "plugins": [{{"type": "x"}}]}}')
    assert (err.code, err.msg) == (7, f"error parsing configuration list: invalid name type {word}")
    assert err.key == "name"


def test_invalid_cni_version_type() -> None:
    err = _list_error(b'{"name": "n", "cniVersion": 1.0, "plugins": [{"type": "x"}]}')
    assert err.msg == "error parsing configuration list: invalid cniVersion type float64"


def test_plugins_rules() -> None:
    assert _list_error(b'{"name": "n", "plugins": []}').msg == "error parsing configuration list: no plugins in list"
    assert _list_error(b'{"name": "n", "plugins": {}}').msg == \
        "error parsing configuration list: invalid 'plugins' type map[string]interface {}"
    err = _list_error(b'{"name": "n", "plugins": [{"type": "a"}, {"mtu": 1}]}')
    assert (err.code, err.msg, err.key) == (
        7, "failed to parse plugin config 1: error parsing configuration: missing 'type'", "plugins[1].type")
    err = _list_error(b'{"name": "n", "loadOnlyInlinedPlugins": true}')
    assert err.msg == "error parsing configuration list: `loadOnlyInlinedPlugins` is true, and no 'plugins' key"
    # Without plugins and without loadOnlyInlinedPlugins the bytes parse (the plugins
    # may come from the sibling folder).
    assert parse_network_config_list(b'{"name": "n", "cniVersion": "0.4.0"}').plugins == ()


@pytest.mark.parametrize(
    ("plugin", "msg", "key"),
    [
        ('{"type": 5}', "json: cannot unmarshal number into Go struct field PluginConf.type of type string",
         "plugins[0].type"),
        ('{"type": "x", "capabilities": {"mac": "yes"}}',
         "json: cannot unmarshal string into Go struct field PluginConf.capabilities of type bool",
         "plugins[0].capabilities"),
        ('{"type": "x", "ipam": []}', "json: cannot unmarshal array into Go struct field PluginConf.ipam of type "
         "types.IPAM", "plugins[0].ipam"),
        ('{"type": "x", "ipam": {"type": true}}',
         "json: cannot unmarshal bool into Go struct field IPAM.ipam.type of type string", "plugins[0].ipam.type"),
        ('{"type": "x", "dns": {"search": "a"}}',
         "json: cannot unmarshal string into Go struct field DNS.dns.search of type []string",
         "plugins[0].dns.search"),
        ('"bridge"', "json: cannot unmarshal string into Go value of type types.PluginConf", "plugins[0]"),
    ],
)
def test_plugin_entries_are_decoded_like_go_structs(plugin: str, msg: str, key: str) -> None:
    err = _list_error(f'{{"name": "n", "plugins": [{plugin}]}}')
    assert isinstance(err, DecodingError)
    assert err.msg == "failed to parse plugin config 0: error parsing configuration: " + msg
    assert err.key == key


def test_go_matches_struct_fields_case_insensitively() -> None:
    plugin = parse_plugin_config(b'{"name": "n", "Type": "bridge", "IPAM": {"TYPE": "host-local"}}')
    assert (plugin.type, plugin.ipam_type) == ("bridge", "host-local")
    assert plugin.raw["Type"] == "bridge"  # the document itself is untouched


def test_null_fields_decode_to_zero_values() -> None:
    plugin = parse_plugin_config(b'{"name": "n", "type": "x", "ipam": null, "capabilities": null, "dns": null}')
    assert plugin.ipam_type == "" and dict(plugin.capabilities) == {}
    assert _list_error(b"null").msg == "error parsing configuration list: no name"


def test_top_level_must_be_an_object() -> None:
    err = _list_error(b"[1]")
    assert (err.code, err.msg) == (6, "error parsing configuration list: json: cannot unmarshal array into Go "
                                      "value of type map[string]interface {}")
    err = _conf_error(b"7")
    assert err.msg == ("error parsing configuration: json: cannot unmarshal number into Go value of type "
                       "types.PluginConf")


# --- version selection (conf_test.go "Version selection") ---------------------------------------

def _versions(*versions: str) -> bytes:
    listed = ",".join(f'"{v}"' for v in versions)
    return f'{{"name": "test", "cniVersions": [{listed}], "plugins": [{{"type": "foo"}}]}}'.encode()


def test_selects_the_maximum_version() -> None:
    assert parse_network_config_list(_versions("1.1.0", "0.4.0", "1.0.0")).cni_version == "1.1.0"


def test_selects_the_highest_supported_version() -> None:
    network = parse_network_config_list(_versions("99.0.0", "1.1.0", "0.4.0", "1.0.0"))
    assert network.cni_version == "1.1.0"
    assert network.cni_versions == ("99.0.0", "1.1.0", "0.4.0", "1.0.0")


def test_invalid_versions_fail() -> None:
    err = _list_error(_versions("1.1.0", "0.4.0", "1.0.f"))
    assert err.code == 6
    assert err.msg.startswith("error parsing configuration list: invalid cniVersions entry 1.0.f at index 2: ")
    assert err.key == "cniVersions[2]"


def test_falls_back_to_cni_version() -> None:
    doc = b'{"name": "test", "cniVersion": "1.2.3", "plugins": [{"type": "foo"}]}'
    assert parse_network_config_list(doc).cni_version == "1.2.3"


def test_merges_cni_versions_and_cni_version() -> None:
    doc = b'{"name": "test", "cniVersion": "1.0.0", "cniVersions": ["0.1.0", "0.4.0"], "plugins": [{"type": "foo"}]}'
    assert parse_network_config_list(doc).cni_version == "1.0.0"


def test_empty_cni_versions() -> None:
    doc = b'{"name": "test", "cniVersions": [], "plugins": [{"type": "foo"}]}'
    assert parse_network_config_list(doc).cni_version == ""


def test_cni_versions_type_errors() -> None:
    # libcni prints the type of its failed conversion, always []interface {}.
    assert _list_error(b'{"name": "t", "cniVersions": "1.0.0"}').msg == \
        "error parsing configuration list: invalid type for cniVersions: []interface {}"
    assert _list_error(b'{"name": "t", "cniVersions": ["1.0.0", 1]}').msg == \
        "error parsing configuration list: invalid type for cniVersions index 1: float64"


def test_unparsable_cni_version_with_cni_versions() -> None:
    err = _list_error(b'{"name": "t", "cniVersion": "x", "cniVersions": ["1.0.0"], "plugins": [{"type": "a"}]}')
    assert err.code == 6 and err.msg.startswith("error parsing configuration list: invalid cniVersion x: ")


# --- validation beyond libcni's parser ----------------------------------------------------------

@pytest.mark.parametrize("name", ["a/b", "..", "../etc", ".hidden", "te%%st", "a b"])
def test_bad_network_names_are_refused(name: str) -> None:
    doc = f'{{"name": "{name}", "plugins": [{{"type": "x"}}]}}'
    err = _list_error(doc)
    assert (err.code, err.msg) == (7, "invalid characters found in network name")
    assert (err.key, err.value) == ("name", name)
    # libcni's parser itself accepts them; validation is what refuses.
    assert parse_network_config_list(doc, validate=False).name == name


def test_empty_name_is_refused() -> None:
    err = _list_error(b'{"name": "", "plugins": [{"type": "x"}]}')
    assert (err.code, err.msg) == (7, "missing network name:")


@pytest.mark.parametrize("plugin_type", ["../x", "/bin/sh", "a\\b"])
def test_plugin_type_with_path_separator(plugin_type: str) -> None:
    doc = {"name": "n", "plugins": [{"type": "ok"}, {"type": plugin_type}]}
    with pytest.raises(InvalidConfigError) as info:
        parse_network_config_list(doc)
    assert info.value.msg == f"invalid plugin name: {plugin_type}"
    assert (info.value.key, info.value.value) == ("plugins[1].type", plugin_type)


def test_unparsable_selected_version_is_refused() -> None:
    err = _list_error(b'{"name": "n", "cniVersion": "1.0.0.0", "plugins": [{"type": "x"}]}')
    assert (err.code, err.msg) == (6, 'invalid version "1.0.0.0": too many parts')


def test_errors_name_the_file() -> None:
    with pytest.raises(CNIError) as info:
        parse_network_config_list(b'{"name": 1}', path="/etc/cni/net.d/10-x.conflist")
    err = info.value
    assert "/etc/cni/net.d/10-x.conflist" in err.details and "key name = 1" in err.details


def test_numbers_outside_float64_are_refused() -> None:
    err = _list_error(b'{"name": "n", "plugins": [{"type": "x", "big": 1e400}]}')
    assert err.code == 6 and "into Go value of type float64" in err.msg
    assert err.key == "plugins[0].big"


def test_deeply_nested_document_is_a_decoding_error() -> None:
    doc = b'{"name": "n", "plugins": [{"type": "x", "deep": ' + b"[" * 5000 + b"]" * 5000 + b"}]}"
    assert _list_error(doc).code == 6


def test_invalid_utf8_is_a_decoding_error() -> None:
    assert _list_error(b'{"name": "\xff"}').code == 6


# --- upconversion ---------------------------------------------------------------------------------

def test_conf_list_from_conf() -> None:
    plugin = parse_plugin_config(b'{"name":"some-plugin","cniVersion":"0.3.1", "type":"foobar"}')
    network = conf_list_from_conf(plugin)
    assert (network.name, network.cni_version) == ("some-plugin", "0.3.1")
    assert network.bytes == (b'{"cniVersion":"0.3.1","name":"some-plugin","plugins":[{"cniVersion":"0.3.1",'
                             b'"name":"some-plugin","type":"foobar"}]}')
    assert len(network.plugins) == 1
    assert network.plugins[0].type == "foobar" and network.plugins[0].raw == plugin.raw
    # The bytes parse back to the same list.
    assert parse_network_config_list(network.bytes) == network


def test_dict_input_is_marshalled_like_go() -> None:
    network = parse_network_config_list({"plugins": [{"type": "x", "mtu": 1500.0}], "name": "n"})
    assert network.bytes == b'{"name":"n","plugins":[{"mtu":1500,"type":"x"}]}'
    assert parse_network_config_list(network.bytes) == network
