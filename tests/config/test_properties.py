"""Properties: every generated valid config parses and round-trips; every labelled invalid one
fails with its code; arbitrary input never escapes as anything but a cnicore error."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnicore._errors import CNIError
from cnicore.config import (
    build_gc_request,
    build_request,
    conf_list_from_conf,
    parse_network_config_list,
    parse_plugin_config,
)
from cnicore.spec._version import ALL_VERSIONS
from cnicore.testing._config import (
    conflists,
    invalid_conflists,
    invalid_plugin_configs,
    json_values,
    single_configs,
)


def _go(value: Any) -> Any:
    """A decoded value as Go's interface{} sees it: every number a float64."""
    if isinstance(value, dict | Mapping):
        return {k: _go(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_go(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


@pytest.mark.parametrize("version", ALL_VERSIONS)
@given(data=st.data())
def test_valid_single_configs_parse_for_every_version(version: str, data: st.DataObject) -> None:
    document = data.draw(single_configs(version))
    plugin = parse_plugin_config(json.dumps(document))
    assert plugin.type == document["type"] and plugin.name == document["name"]
    assert plugin.cni_version == document.get("cniVersion", "")
    assert plugin.raw_dict() == document
    again = parse_plugin_config(plugin.bytes)
    assert again == plugin
    network = conf_list_from_conf(plugin)
    assert network.name == plugin.name and _go(network.plugins[0].raw) == _go(plugin.raw)
    assert parse_network_config_list(network.bytes) == network


@pytest.mark.parametrize("version", ALL_VERSIONS[2:])
@given(data=st.data())
def test_valid_conflists_parse_and_round_trip(version: str, data: st.DataObject) -> None:
    document = data.draw(conflists(version))
    network = parse_network_config_list(json.dumps(document).encode())
    assert network.name == document["name"]
    assert len(network.plugins) == len(document["plugins"])
    assert [_go(p.raw) for p in network.plugins] == _go(document["plugins"])
    assert network.raw_dict() == document
    if "cniVersions" not in document:
        assert network.cni_version == version
    # From the bytes, and from the decoded document (re-marshalled like Go), the same network.
    assert parse_network_config_list(network.bytes) == network
    assert [p.bytes for p in parse_network_config_list(network.raw_dict()).plugins] == \
        [p.bytes for p in network.plugins]
    for index, plugin in enumerate(network.plugins):
        stdin = json.loads(build_request(network, index))
        assert stdin["name"] == network.name and stdin["cniVersion"] == network.cni_version
        assert _go({k: v for k, v in stdin.items() if k not in ("name", "cniVersion")}) == \
            _go({k: v for k, v in plugin.raw.items() if k not in ("name", "cniVersion")})
        gc = json.loads(build_gc_request(network, index, valid_attachments=[("c", "eth0")]))
        assert gc["cni.dev/valid-attachments"] == gc["cni.dev/attachments"] == [{"containerID": "c", "ifname": "eth0"}]


@given(invalid_conflists())
def test_labelled_invalid_conflists_fail_with_their_code(case: tuple[bytes, int]) -> None:
    data, code = case
    with pytest.raises(CNIError) as info:
        parse_network_config_list(data)
    assert info.value.code == code, (data, info.value)


@given(invalid_plugin_configs())
def test_labelled_invalid_plugin_configs_fail_with_their_code(case: tuple[bytes, int]) -> None:
    data, code = case
    with pytest.raises(CNIError) as info:
        parse_plugin_config(data)
    assert info.value.code == code, (data, info.value)


def _parsers() -> list[Any]:
    return [
        parse_plugin_config,
        parse_network_config_list,
        lambda d: parse_plugin_config(d, validate=False),
        lambda d: parse_network_config_list(d, validate=False),
    ]


@given(json_values(max_leaves=20))
def test_arbitrary_json_values_parse_or_raise_cnicore_errors(value: Any) -> None:
    data = json.dumps(value).encode()
    for parse in _parsers():
        try:
            parse(data)
        except CNIError as exc:
            assert exc.code in (6, 7)


@given(st.dictionaries(
    st.sampled_from(["name", "type", "cniVersion", "cniVersions", "plugins", "capabilities", "ipam", "dns",
                     "disableCheck", "disableGC", "loadOnlyInlinedPlugins", "prevResult", "Type", "NAME",
                     "cni.dev/valid-attachments"]),
    json_values(max_leaves=6), max_size=8))
def test_wrong_types_at_known_keys(document: dict[str, Any]) -> None:
    for parse in _parsers():
        try:
            result = parse(json.dumps(document))
        except CNIError as exc:
            assert exc.code in (6, 7)
        else:
            assert _go(result.raw) == _go(document)


@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    for parse in _parsers():
        try:
            parse(data)
        except CNIError as exc:
            assert exc.code in (6, 7)


def test_huge_documents_are_refused_with_code_6() -> None:
    huge = b'{"name": "n", "plugins": [{"type": "x", "blob": "' + b"a" * (17 * 1024 * 1024) + b'"}]}'
    with pytest.raises(CNIError) as info:
        parse_network_config_list(huge)
    assert info.value.code == 6


@given(st.integers(min_value=1, max_value=600), st.sampled_from(["[", '{"k":']))
def test_deep_nesting_never_escapes_as_recursion_error(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    leaf = "" if opener == "[" else "1"
    deep = opener * depth + leaf + closer * depth
    as_list = f'{{"name": "n", "plugins": [{{"type": "x", "deep": {deep}}}]}}'
    as_conf = f'{{"name": "n", "type": "x", "deep": {deep}}}'
    for kind in ("list", "conf"):
        try:
            if kind == "list":
                network = parse_network_config_list(as_list)
            else:
                network = conf_list_from_conf(parse_plugin_config(as_conf))
            build_request(network, 0, capability_args={})
            network.raw_dict()
        except CNIError as exc:
            assert exc.code == 6
