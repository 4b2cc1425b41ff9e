"""Hypothesis strategies for CNI configurations and environments.

Valid strategies produce decoded documents (plain ``dict``) that
:func:`cnicore.config.parse_plugin_config` / :func:`cnicore.config.parse_network_config_list`
accept, for every spec version; unknown keys are sprinkled in because they must
survive parsing. Invalid strategies produce ``(document_bytes, expected_code)``:
the bytes must be refused with exactly that CNI error code (6: undecodable, 7:
invalid configuration). Environment strategies produce ``dict[str, str]`` mappings
for :func:`cnicore.spec.parse_environment`; the invalid ones are labelled with
code 4.

Example::

    from hypothesis import given
    from cnicore.testing import conflists, invalid_conflists

    @given(invalid_conflists())
    def test_refused(case):
        data, code = case
        with pytest.raises(CNIError) as info:
            parse_network_config_list(data)
        assert info.value.code == code
"""

from __future__ import annotations

import functools
import math
from typing import Any

from hypothesis import strategies as st

from cnicore._json import marshal
from cnicore.spec._version import ALL_VERSIONS, compare_versions

__all__ = [
    "cni_environments",
    "conflists",
    "invalid_cni_environments",
    "invalid_conflists",
    "invalid_plugin_configs",
    "json_values",
    "network_names",
    "plugin_documents",
    "plugin_types",
    "single_configs",
    "spec_versions",
]

# Keys Go would map (case-insensitively) onto a known field; extra keys avoid them.
_RESERVED = {
    "cniversion", "cniversions", "name", "type", "capabilities", "ipam", "dns", "prevresult",
    "cni.dev/valid-attachments", "cni.dev/attachments", "plugins", "disablecheck", "disablegc",
    "loadonlyinlinedplugins", "runtimeconfig", "args",
}


@functools.cache
def spec_versions(minimum: str = "0.1.0") -> st.SearchStrategy[str]:
    """Spec versions from ``minimum`` on (``"0.3.0"`` for configuration lists)."""
    return st.sampled_from([v for v in ALL_VERSIONS if compare_versions(v, minimum) >= 0])


@functools.cache
def network_names() -> st.SearchStrategy[str]:
    """Valid network names: an alphanumeric, then alphanumerics, ``_``, ``.`` or ``-``."""
    return st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,24}", fullmatch=True)


@functools.cache
def plugin_types() -> st.SearchStrategy[str]:
    """Valid plugin binary names (no path separator)."""
    return st.from_regex(r"[a-z0-9][a-z0-9_\-]{0,15}", fullmatch=True)


@functools.cache
def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """JSON values that survive Go's float64 decoding unchanged (bounded integers, finite floats)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        # -0.0 is left out: Go keeps the sign of "-0" through a decode, cnicore's decoder
        # reads it as the integer 0, so it would not round-trip byte for byte.
        st.floats(allow_nan=False, allow_infinity=False, width=64).filter(lambda f: f != 0 or math.copysign(1, f) > 0),
        st.text(max_size=12),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.text(max_size=8), inner, max_size=3),
        ),
        max_leaves=max_leaves,
    )


@functools.cache
def _extra_keys() -> st.SearchStrategy[dict[str, Any]]:
    keys = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_\-]{0,10}", fullmatch=True).filter(
        lambda k: k.lower() not in _RESERVED)
    return st.dictionaries(keys, json_values(4), max_size=3)


@st.composite
def plugin_documents(draw: st.DrawFn, version: str | None = None, *, named: bool = False) -> dict[str, Any]:
    """One valid plugin object: ``type``, optional ``capabilities``/``ipam``/``dns``, unknown keys.

    Args:
        version: a ``cniVersion`` to write in the object (None: maybe one, maybe none).
        named: always include a valid ``name``.
    """
    document: dict[str, Any] = draw(_extra_keys())
    document["type"] = draw(plugin_types())
    if named or draw(st.booleans()):
        document["name"] = draw(network_names())
    chosen = version if version is not None else draw(st.one_of(st.none(), spec_versions()))
    if chosen is not None:
        document["cniVersion"] = chosen
    if draw(st.booleans()):
        document["capabilities"] = draw(st.dictionaries(
            st.sampled_from(["portMappings", "ipRanges", "bandwidth", "dns", "mac", "ips", "aliases"]),
            st.booleans(), max_size=4))
    if draw(st.booleans()):
        document["ipam"] = {"type": draw(plugin_types()), **draw(_extra_keys())}
    if draw(st.booleans()):
        document["dns"] = {"nameservers": draw(st.lists(st.sampled_from(["10.0.0.1", "1.1.1.1", "::1"]),
                                                        max_size=2))}
    return document


@st.composite
def single_configs(draw: st.DrawFn, version: str | None = None) -> dict[str, Any]:
    """A valid single-plugin configuration (a ``.conf`` file): named, typed, versioned.

    ``version`` None picks any spec version; ``"0.1.0"`` sometimes leaves ``cniVersion``
    out, as old files do (missing means 0.1.0).
    """
    chosen = version if version is not None else draw(spec_versions())
    document = draw(plugin_documents(chosen, named=True))
    if chosen == "0.1.0" and draw(st.booleans()):
        del document["cniVersion"]
    return document


def _list_bool(draw: st.DrawFn) -> bool | str:
    value: bool | str = draw(st.one_of(st.booleans(), st.sampled_from(["true", "false", "TRUE", "False"])))
    return value


@st.composite
def conflists(draw: st.DrawFn, version: str | None = None) -> dict[str, Any]:
    """A valid configuration list (a ``.conflist`` document) with 1-4 inline plugins.

    Keys appear only from the spec version that introduced them: ``disableCheck``
    from 0.4.0, ``cniVersions``/``disableGC``/``loadOnlyInlinedPlugins`` from 1.1.0.
    """
    chosen = version if version is not None else draw(spec_versions("0.3.0"))
    document: dict[str, Any] = draw(_extra_keys())
    document["name"] = draw(network_names())
    document["cniVersion"] = chosen
    if compare_versions(chosen, "0.4.0") >= 0 and draw(st.booleans()):
        document["disableCheck"] = _list_bool(draw)
    if compare_versions(chosen, "1.1.0") >= 0:
        if draw(st.booleans()):
            document["cniVersions"] = draw(st.lists(spec_versions("1.0.0"), min_size=1, max_size=3))
        if draw(st.booleans()):
            document["disableGC"] = _list_bool(draw)
        if draw(st.booleans()):
            document["loadOnlyInlinedPlugins"] = _list_bool(draw)
    document["plugins"] = draw(st.lists(plugin_documents(), min_size=1, max_size=4))
    return document


def _encode(document: Any) -> bytes:
    return marshal(document).encode("utf-8")


_BAD_VERSIONS = st.sampled_from(["1.0.f", "a.b.c", "1.2.3.4", "v1.0.0", "1..0", " 1.0.0"])
_BAD_NAMES = st.one_of(
    st.sampled_from(["", "..", ".hidden", "a/b", "../etc", "a b", "-x", "_x", "x\\y", "net%"]),
    st.from_regex(r"[a-z]{1,5}[/ :%*][a-z]{0,5}", fullmatch=True),
)
_NOT_STRINGS: st.SearchStrategy[Any] = st.one_of(st.integers(-5, 5), st.booleans(), st.just([]), st.just({}), st.none())
_NOT_STRINGS_OR_NULL: st.SearchStrategy[Any] = st.one_of(
    st.integers(-5, 5), st.booleans(), st.just([1]), st.just({"a": 1}))


@st.composite
def invalid_conflists(draw: st.DrawFn) -> tuple[bytes, int]:
    """``(document_bytes, code)`` for a configuration list that must be refused with ``code``."""
    document = draw(conflists())
    kind = draw(st.sampled_from([
        "truncated", "not-object", "no-name", "name-type", "bad-name", "version-type", "bad-version",
        "versions-type", "versions-entry-type", "versions-entry", "bool-type", "bool-value", "plugins-type",
        "plugins-empty", "no-type", "type-type", "bad-type", "capability-type", "ipam-type", "inline-only",
        "huge-number",
    ]))
    plugin = document["plugins"][draw(st.integers(0, len(document["plugins"]) - 1))]
    code = 7
    if kind == "truncated":
        data = _encode(document)
        return data[: draw(st.integers(0, len(data) - 1))], 6
    if kind == "not-object":
        return _encode(draw(st.one_of(st.lists(st.integers(), max_size=2), st.integers(), st.text(max_size=4)))), 6
    if kind == "no-name":
        del document["name"]
    elif kind == "name-type":
        document["name"] = draw(_NOT_STRINGS)
    elif kind == "bad-name":
        document["name"] = draw(_BAD_NAMES)
    elif kind == "version-type":
        document["cniVersion"] = draw(_NOT_STRINGS)
    elif kind == "bad-version":
        document["cniVersion"], code = draw(_BAD_VERSIONS), 6
    elif kind == "versions-type":
        document["cniVersions"] = draw(st.one_of(st.text(max_size=3), st.integers(), st.just({})))
    elif kind == "versions-entry-type":
        document["cniVersions"] = ["1.0.0", draw(_NOT_STRINGS)]
    elif kind == "versions-entry":
        document["cniVersions"], code = ["1.0.0", draw(_BAD_VERSIONS)], 6
    elif kind == "bool-type":
        document[draw(st.sampled_from(["disableCheck", "disableGC", "loadOnlyInlinedPlugins"]))] = draw(
            st.one_of(st.integers(), st.just([]), st.just({}), st.none()))
    elif kind == "bool-value":
        document[draw(st.sampled_from(["disableCheck", "disableGC", "loadOnlyInlinedPlugins"]))] = draw(
            st.sampled_from(["yes", "no", "1", "0", "", "ture"]))
    elif kind == "plugins-type":
        document["plugins"] = draw(st.one_of(st.just({}), st.text(max_size=3), st.integers(), st.none()))
    elif kind == "plugins-empty":
        document["plugins"] = []
    elif kind == "no-type":
        del plugin["type"]
    elif kind == "type-type":
        plugin["type"], code = draw(_NOT_STRINGS_OR_NULL), 6
    elif kind == "bad-type":
        plugin["type"] = draw(st.sampled_from(["../bin/x", "/bin/sh", "a\\b", "x/"]))
    elif kind == "capability-type":
        plugin["capabilities"], code = {"portMappings": draw(st.one_of(st.integers(), st.text(max_size=2)))}, 6
    elif kind == "ipam-type":
        plugin["ipam"], code = draw(st.one_of(st.integers(), st.text(max_size=2), st.just([]))), 6
    elif kind == "inline-only":
        document["loadOnlyInlinedPlugins"] = True
        del document["plugins"]
    elif kind == "huge-number":
        data = _encode(document)
        return data[:-1] + b',"overflow":1e400}', 6
    return _encode(document), code


@st.composite
def invalid_plugin_configs(draw: st.DrawFn) -> tuple[bytes, int]:
    """``(document_bytes, code)`` for a single plugin configuration that must be refused with ``code``."""
    document = draw(single_configs())
    kind = draw(st.sampled_from([
        "truncated", "not-object", "no-type", "type-type", "bad-type", "name-type", "no-name", "bad-name",
        "version-type", "bad-version", "capability-type", "ipam-type", "dns-type", "prev-type",
    ]))
    code = 6
    if kind == "truncated":
        data = _encode(document)
        return data[: draw(st.integers(0, len(data) - 1))], 6
    if kind == "not-object":
        return _encode(draw(st.one_of(st.lists(st.integers(), max_size=2), st.integers(), st.text(max_size=4)))), 6
    if kind == "no-type":
        del document["type"]
        code = 7
    elif kind == "type-type":
        document["type"] = draw(_NOT_STRINGS_OR_NULL)
    elif kind == "bad-type":
        document["type"], code = draw(st.sampled_from(["../bin/x", "/bin/sh", "a\\b"])), 7
    elif kind == "name-type":
        document["name"] = draw(_NOT_STRINGS_OR_NULL)
    elif kind == "no-name":
        del document["name"]
        code = 7
    elif kind == "bad-name":
        document["name"], code = draw(_BAD_NAMES), 7
    elif kind == "version-type":
        document["cniVersion"] = draw(_NOT_STRINGS_OR_NULL)
    elif kind == "bad-version":
        document["cniVersion"] = draw(_BAD_VERSIONS)
    elif kind == "capability-type":
        document["capabilities"] = draw(st.one_of(st.integers(), st.just([]), st.just({"mac": "yes"})))
    elif kind == "ipam-type":
        document["ipam"] = draw(st.one_of(st.integers(), st.text(max_size=2), st.just({"type": 3})))
    elif kind == "dns-type":
        document["dns"] = draw(st.one_of(st.integers(), st.just({"nameservers": "1.1.1.1"}),
                                         st.just({"domain": 5})))
    elif kind == "prev-type":
        document["prevResult"] = draw(st.one_of(st.integers(), st.just([]), st.text(max_size=2)))
    return _encode(document), code


_COMMAND_VARIABLES = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "GC": ("CNI_PATH",),
    "STATUS": ("CNI_PATH",),
    "VERSION": (),
}


@functools.cache
def _variable_values() -> dict[str, st.SearchStrategy[str]]:
    return {
        "CNI_CONTAINERID": st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,63}", fullmatch=True),
        "CNI_NETNS": st.from_regex(r"/(var/)?run/netns/[a-z0-9\-]{1,12}", fullmatch=True),
        "CNI_IFNAME": st.from_regex(r"[a-z][a-z0-9]{0,14}", fullmatch=True).filter(lambda n: n not in (".", "..")),
        "CNI_PATH": st.lists(st.sampled_from(["/opt/cni/bin", "/usr/lib/cni", "/usr/libexec/cni"]), min_size=1,
                             max_size=3, unique=True).map(":".join),
        "CNI_ARGS": st.sampled_from(["", "IgnoreUnknown=1", "K8S_POD_NAME=web;K8S_POD_NAMESPACE=default"]),
    }


@st.composite
def cni_environments(draw: st.DrawFn, command: str | None = None) -> dict[str, str]:
    """A valid environment for ``command`` (None: any command): required variables set and valid,
    optional ones sometimes set."""
    chosen = command if command is not None else draw(st.sampled_from(sorted(_COMMAND_VARIABLES)))
    values = _variable_values()
    environ = {"CNI_COMMAND": chosen}
    for name in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"):
        if name in _COMMAND_VARIABLES[chosen] or draw(st.booleans()):
            environ[name] = draw(values[name])
    if draw(st.booleans()):
        environ["CNI_NETNS_OVERRIDE"] = draw(st.sampled_from(["1", "true", "TRUE", "0", "false"]))
    return environ


@st.composite
def invalid_cni_environments(draw: st.DrawFn) -> tuple[dict[str, str], int]:
    """``(environ, 4)``: a required variable missing or empty, or a required container ID /
    interface name that fails its validator."""
    command = draw(st.sampled_from(["ADD", "CHECK", "DEL", "GC", "STATUS"]))
    environ = draw(cni_environments(command))
    required = ("CNI_COMMAND", *_COMMAND_VARIABLES[command])
    how = draw(st.sampled_from(["drop", "empty", "bad-id", "bad-ifname"]))
    if how == "bad-id" and "CNI_CONTAINERID" in required:
        environ["CNI_CONTAINERID"] = draw(st.sampled_from(["some-%%container-id", "-lead", "a b", "x/y", ".x"]))
    elif how == "bad-ifname" and "CNI_IFNAME" in required:
        environ["CNI_IFNAME"] = draw(st.sampled_from(["waytoolonginterfacename", ".", "..", "a/b", "a:b", "a b"]))
    else:
        victim = draw(st.sampled_from(required))
        if how == "drop" or victim == "CNI_COMMAND":
            environ.pop(victim, None)
        else:
            environ[victim] = ""
    return environ, 4
