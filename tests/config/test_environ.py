"""CNI_* environment parsing: the reference skeleton's vectors, a differential check, properties."""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import reference_plugin

from cnicore._errors import CNIError, InvalidEnvironmentError, UnknownContainerError
from cnicore.spec._environ import (
    ENVIRONMENT_VARIABLES,
    CNIEnvironment,
    check_known_command,
    missing_environment_variables,
    parse_environment,
    plugin_environment,
    required_variables,
)
from cnicore.testing._config import cni_environments, invalid_cni_environments

FULL = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "some-container-id",
    "CNI_NETNS": "/some/netns/path",
    "CNI_IFNAME": "eth0",
    "CNI_ARGS": "some;extra;args",
    "CNI_PATH": "/some/cni/path",
}


def _without(*names: str, **changes: str) -> dict[str, str]:
    environ = {k: v for k, v in FULL.items() if k not in names}
    environ.update(changes)
    return environ


def _error(environ: dict[str, str]) -> CNIError:
    with pytest.raises(CNIError) as info:
        parse_environment(environ)
    return info.value


def test_full_environment_is_read() -> None:
    env = parse_environment(FULL)
    assert env == CNIEnvironment(command="ADD", container_id="some-container-id", netns="/some/netns/path",
                                 ifname="eth0", args="some;extra;args", path=("/some/cni/path",))
    assert env.is_known_command
    assert not env.netns_override


@attrs.frozen(kw_only=True)
class _AttrsEnvironment:
    # What CNIEnvironment would be as an attrs class, as the library's other values are.
    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: str = ""
    path: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    netns_override: bool = False


_FIELD_VALUES = {"container_id": st.text(max_size=3), "netns": st.text(max_size=3), "ifname": st.text(max_size=3),
                 "args": st.text(max_size=3), "path": st.lists(st.text(max_size=3), max_size=2),
                 "netns_override": st.booleans()}


@given(st.text(max_size=4), st.fixed_dictionaries({}, optional=_FIELD_VALUES),
       st.fixed_dictionaries({}, optional=_FIELD_VALUES))
def test_environment_is_a_value_like_the_attrs_classes(command: str, first: dict[str, object],
                                                       second: dict[str, object]) -> None:
    ours = [CNIEnvironment(command=command, **fields) for fields in (first, second)]  # type: ignore[arg-type]
    theirs = [_AttrsEnvironment(command=command, **fields) for fields in (first, second)]  # type: ignore[arg-type]
    assert repr(ours[0]).removeprefix("CNIEnvironment") == repr(theirs[0]).removeprefix("_AttrsEnvironment")
    assert (ours[0] == ours[1], ours[0] != ours[1]) == (theirs[0] == theirs[1], theirs[0] != theirs[1])
    if ours[0] == ours[1]:
        assert hash(ours[0]) == hash(ours[1])
    assert ours[0] != theirs[0]  # another class is never equal, whatever its fields
    assert copy.copy(ours[0]) == ours[0] == pickle.loads(pickle.dumps(ours[0]))
    assert isinstance(ours[0].path, tuple)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ours[0].netns = "/elsewhere"  # type: ignore[misc, unused-ignore]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del ours[0].command
    with pytest.raises(TypeError):
        CNIEnvironment(command)  # type: ignore[misc, call-arg, unused-ignore]  # keyword-only, as attrs' kw_only


def test_missing_variables_are_listed_in_skeleton_order() -> None:
    # skel_test.go: ADD without NETNS, IFNAME and PATH.
    err = _error(_without("CNI_NETNS", "CNI_IFNAME", "CNI_PATH"))
    assert err.code == 4
    assert err.msg == "required env variables [CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"
    assert err.to_object() == {"code": 4, "msg": "required env variables [CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"}


def test_empty_counts_as_missing() -> None:
    err = _error(_without(CNI_IFNAME="", CNI_PATH=""))
    assert err.msg == "required env variables [CNI_IFNAME,CNI_PATH] missing"


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_cni_args_is_optional(command: str) -> None:
    env = parse_environment(_without("CNI_ARGS", CNI_COMMAND=command))
    assert env.args == ""


def test_netns_is_optional_for_del_only() -> None:
    assert parse_environment(_without("CNI_NETNS", CNI_COMMAND="DEL")).netns == ""
    for command in ("ADD", "CHECK"):
        assert _error(_without("CNI_NETNS", CNI_COMMAND=command)).msg == \
            "required env variables [CNI_NETNS] missing"


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "GC", "STATUS"])
def test_cni_path_is_required_by_the_skeleton(command: str) -> None:
    # The spec calls CNI_PATH optional for ADD/DEL/CHECK; the skeleton requires it.
    assert _error(_without("CNI_PATH", CNI_COMMAND=command)).msg == "required env variables [CNI_PATH] missing"


@pytest.mark.parametrize("command", ["GC", "STATUS"])
def test_gc_and_status_require_only_the_path(command: str) -> None:
    env = parse_environment({"CNI_COMMAND": command, "CNI_PATH": "/opt/cni/bin"})
    assert env.command == command and env.container_id == "" and env.ifname == ""


def test_version_needs_only_the_command() -> None:
    assert parse_environment({"CNI_COMMAND": "VERSION"}).command == "VERSION"


def test_no_command_at_all() -> None:
    err = _error({})
    assert err.msg == "required env variables [CNI_COMMAND] missing"
    assert missing_environment_variables({}) == ("CNI_COMMAND",)


def test_invalid_container_id() -> None:
    err = _error(_without(CNI_CONTAINERID="some-%%container-id"))
    assert isinstance(err, InvalidEnvironmentError)
    assert err.to_object() == {"code": 4, "msg": "invalid characters in containerID",
                               "details": "some-%%container-id"}


def test_validator_failure_comes_before_the_missing_list() -> None:
    # The skeleton returns a validator error at once, even when later variables are missing.
    err = _error(_without("CNI_NETNS", "CNI_PATH", CNI_CONTAINERID="bad/id", CNI_IFNAME="way-too-long-ifname"))
    assert err.msg == "invalid characters in containerID"
    err = _error(_without("CNI_PATH", CNI_IFNAME="way-too-long-ifname"))
    assert err.msg == "interface name is too long"


def test_validators_only_run_for_required_variables() -> None:
    # GC does not require an interface name, so a bad one is not looked at.
    env = parse_environment({"CNI_COMMAND": "GC", "CNI_PATH": "/x", "CNI_IFNAME": "a/b", "CNI_CONTAINERID": "%"})
    assert env.ifname == "a/b"


@pytest.mark.parametrize(
    ("ifname", "msg", "details"),
    [
        ("testnamemorethan16", "interface name is too long", "interface name should be less than 16 characters"),
        (".", "interface name is . or ..", ""),
        ("..", "interface name is . or ..", ""),
        ("/testname", "interface name contains / or : or whitespace characters", ""),
        ("test name", "interface name contains / or : or whitespace characters", ""),
        ("eth:0", "interface name contains / or : or whitespace characters", ""),
    ],
)
def test_invalid_interface_names(ifname: str, msg: str, details: str) -> None:
    err = _error(_without(CNI_IFNAME=ifname))
    assert (err.code, err.msg, err.details) == (4, msg, details)


@pytest.mark.parametrize(("raw", "msg"), [
    (b"eth\xff", "interface name is not valid UTF-8"),
    (b"e" * 14 + b"\xff", "interface name is not valid UTF-8"),  # 15 bytes: counted as bytes, not too long
    (b"e" * 15 + b"\xff", "interface name is too long"),  # the reference's order: length first
    ("\u00e9th0".encode(), None),  # UTF-8 beyond ASCII is a name like any other (5 bytes)
])
def test_an_interface_name_that_is_not_utf8_is_refused(raw: bytes, msg: str | None) -> None:
    # The environment holds bytes; Python gives stray ones as surrogates. Refused (stricter than the reference,
    # which takes the name and prints U+FFFD for each stray byte in its result: a name no interface has).
    ifname = os.fsdecode(raw)
    if msg is None:
        assert parse_environment(_without(CNI_IFNAME=ifname)).ifname == ifname
        return
    err = _error(_without(CNI_IFNAME=ifname))
    assert (err.code, err.msg) == (4, msg)
    if "UTF-8" in msg:
        assert err.details == raw.decode("utf-8", "backslashreplace") and err.key == "CNI_IFNAME"


def test_unknown_command_is_reported_separately() -> None:
    env = parse_environment({"CNI_COMMAND": "NOPE"})
    assert not env.is_known_command
    with pytest.raises(InvalidEnvironmentError) as info:
        check_known_command(env)
    assert info.value.msg == "unknown CNI_COMMAND: NOPE"
    check_known_command(parse_environment(FULL))


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("TRUE", True), ("True", True),
                                                  ("0", False), ("false", False), ("yes", False), ("", False)])
def test_netns_override(value: str, expected: bool) -> None:
    assert parse_environment(_without(CNI_NETNS_OVERRIDE=value)).netns_override is expected


def test_path_is_split_like_go() -> None:
    assert parse_environment(_without(CNI_PATH="/a:/b::/c")).path == ("/a", "/b", "", "/c")


def test_required_variables_table() -> None:
    assert required_variables("ADD") == ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH")
    assert required_variables("DEL") == ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH")
    assert required_variables("GC") == ("CNI_COMMAND", "CNI_PATH")
    assert required_variables("VERSION") == ("CNI_COMMAND",)
    assert required_variables("NOPE") == ("CNI_COMMAND",)


def test_plugin_environment_sets_all_six_and_overrides_base() -> None:
    env = plugin_environment(command="ADD", container_id="c1", netns="/run/netns/x", ifname="eth0",
                             args=[("IgnoreUnknown", "1"), ("K8S_POD_NAME", "web")], path=["/opt/cni/bin", "/x"],
                             base={"PATH": "/usr/bin", "CNI_ARGS": "leaked=1", "CNI_NETNS_OVERRIDE": "1"})
    assert env == {"PATH": "/usr/bin", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web", "CNI_NETNS_OVERRIDE": "1",
                   "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0",
                   "CNI_PATH": "/opt/cni/bin:/x"}
    gc = plugin_environment(command="GC", path=["/opt/cni/bin"])
    assert gc["CNI_CONTAINERID"] == gc["CNI_NETNS"] == gc["CNI_IFNAME"] == gc["CNI_ARGS"] == ""


@given(cni_environments())
def test_valid_environments_parse_and_round_trip(environ: dict[str, str]) -> None:
    env = parse_environment(environ)
    assert env.command == environ["CNI_COMMAND"]
    assert parse_environment(env.as_environ()) == env


@given(invalid_cni_environments())
def test_invalid_environments_raise_code_4(case: tuple[dict[str, str], int]) -> None:
    environ, code = case
    with pytest.raises(CNIError) as info:
        parse_environment(environ)
    assert info.value.code == code


@given(st.dictionaries(st.sampled_from([*ENVIRONMENT_VARIABLES, "OTHER"]),
                       st.text(max_size=20).filter(lambda s: "\x00" not in s), max_size=8))
def test_arbitrary_environments_parse_or_raise_an_input_error(environ: dict[str, str]) -> None:
    try:
        parse_environment(environ)
    except CNIError as exc:
        # An empty container ID is reported as missing (code 4), never as code 3.
        assert exc.code == 4
        assert not isinstance(exc, UnknownContainerError)


# --- differential: the reference skeleton -------------------------------------------------------

_STDIN = b'{"cniVersion":"0.4.0","name":"cnt-net","type":"loopback"}'


@pytest.mark.reference
@pytest.mark.parametrize(
    "environ",
    [
        {"CNI_COMMAND": "ADD"},
        {"CNI_COMMAND": "DEL"},
        {"CNI_COMMAND": "CHECK", "CNI_NETNS": "/x"},
        {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0"},
        _without("CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
        _without("CNI_PATH", CNI_COMMAND="DEL"),
        _without(CNI_CONTAINERID="some-%%container-id"),
        _without(CNI_IFNAME="testnamemorethan16"),
        _without(CNI_IFNAME="a/b"),
        _without(CNI_IFNAME=".."),
        _without(CNI_COMMAND="DEL", CNI_IFNAME="eth 0"),
    ],
)
def test_errors_match_the_reference_skeleton(environ: dict[str, str]) -> None:
    plugin = reference_plugin("loopback")
    # The reference reads stdin before validating in older builds, so give it a valid
    # config; only cases where both skeleton generations agree are listed.
    proc = subprocess.run([str(plugin)], input=_STDIN, env=environ, capture_output=True, timeout=30, check=False)
    assert proc.returncode == 1
    expected = json.loads(proc.stdout)
    assert _error(environ).to_object() == expected


@pytest.mark.reference
@given(invalid_cni_environments().filter(lambda case: case[0].get("CNI_COMMAND") in ("ADD", "CHECK", "DEL")))
def test_generated_invalid_environments_match_the_reference(case: tuple[dict[str, str], int]) -> None:
    # Each generated environment has exactly one fault, so both skeleton generations agree.
    # GC and STATUS are left out: the installed reference predates them.
    environ, code = case
    plugin = reference_plugin("loopback")
    proc = subprocess.run([str(plugin)], input=_STDIN, env=environ, capture_output=True, timeout=30, check=False)
    expected = json.loads(proc.stdout)
    assert expected["code"] == code
    assert _error(environ).to_object() == expected
