"""The exec skeleton: dispatch, version gates, error objects, against the reference's rules and binaries."""

from __future__ import annotations

import io
import json
import os
import subprocess
from typing import Any

import pytest
from support import reference_plugin

from cnicore import CNIError, InvalidEnvironmentError, UnsupportedFieldError
from cnicore.plugins._api import PluginRequest
from cnicore.plugins._skel import run_plugin
from cnicore.spec._result import IPConfig, Result

ALL = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")


class Recorder:
    """A plugin that records its calls and returns a fixed-shape result built from its request."""

    name = "recorder"

    def __init__(self, versions: tuple[str, ...] = ALL, *, fail: Exception | None = None,
                 with_gc: bool = False) -> None:
        self.supported_versions = versions
        self.calls: list[tuple[str, PluginRequest]] = []
        self.fail = fail
        if with_gc:
            self.gc = self._gc

    def _record(self, command: str, request: PluginRequest) -> None:
        self.calls.append((command, request))
        if self.fail is not None:
            raise self.fail

    def add(self, request: PluginRequest) -> Result:
        self._record("add", request)
        return Result(cni_version="1.1.0", ips=(IPConfig(address="10.0.0.2/24", gateway="10.0.0.1"),))

    def delete(self, request: PluginRequest) -> None:
        self._record("delete", request)

    def check(self, request: PluginRequest) -> None:
        self._record("check", request)

    def _gc(self, request: PluginRequest) -> None:
        self._record("gc", request)


def env(command: str = "ADD", **extra: str) -> dict[str, str]:
    base = {"CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_NETNS": "/nonexistent/netns",
            "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def run(plugin: Any, environ: dict[str, str], stdin: bytes | str = b"",
        **kwargs: Any) -> tuple[int, str, str]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    out, err = io.BytesIO(), io.BytesIO()
    code = run_plugin(plugin, environ=environ, stdin=io.BytesIO(data), stdout=out, stderr=err, **kwargs)
    return code, out.getvalue().decode(), err.getvalue().decode()


def conf(version: str | None = "0.4.0", **extra: Any) -> str:
    doc: dict[str, Any] = {"name": "net1", "type": "recorder"}
    if version is not None:
        doc["cniVersion"] = version
    doc.update(extra)
    return json.dumps(doc)


def test_add_prints_the_result_in_the_config_version() -> None:
    plugin = Recorder()
    code, out, _ = run(plugin, env(), conf("0.4.0"))
    assert code == 0
    assert out == (
        '{\n    "cniVersion": "0.4.0",\n    "ips": [\n        {\n            "version": "4",\n'
        '            "address": "10.0.0.2/24",\n            "gateway": "10.0.0.1"\n        }\n    ],\n'
        '    "dns": {}\n}'
    )
    (command, request), = plugin.calls
    assert (command, request.container_id, request.ifname, request.cni_version) == ("add", "c1", "eth0", "0.4.0")


def test_missing_version_means_0_1_0_ip4_shape() -> None:
    code, out, _ = run(Recorder(), env(), conf(None))
    assert code == 0
    assert json.loads(out) == {"cniVersion": "0.1.0", "ip4": {"ip": "10.0.0.2/24", "gateway": "10.0.0.1"},
                               "dns": {}}


def test_version_command_does_not_read_stdin() -> None:
    class Exploding(io.BytesIO):
        def read(self, *_: Any) -> bytes:
            raise AssertionError("stdin read")

    out = io.BytesIO()
    code = run_plugin(Recorder(), environ={"CNI_COMMAND": "VERSION"}, stdin=Exploding(), stdout=out,
                      stderr=io.BytesIO())
    assert code == 0
    assert out.getvalue() == (b'{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1",'
                              b'"0.4.0","1.0.0","1.1.0"]}\n')


def test_no_command_prints_about_to_stderr() -> None:
    code, out, err = run(Recorder(("0.4.0", "1.0.0")), {}, b"", version="v9")
    assert (code, out) == (0, "")
    assert err == "CNI recorder plugin v9\nCNI protocol versions supported: 0.4.0, 1.0.0\n"


@pytest.mark.parametrize(
    ("environ", "code", "msg"),
    [
        (env(CNI_NETNS="", CNI_IFNAME="", CNI_PATH=""), 4,
         "required env variables [CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"),
        (env(CNI_CONTAINERID="some-%%container-id"), 4, "invalid characters in containerID"),
        (env(CNI_IFNAME="testnamemorethan16"), 4, "interface name is too long"),
        (env("NOPE"), 4, "unknown CNI_COMMAND: NOPE"),
    ],
)
def test_environment_errors(environ: dict[str, str], code: int, msg: str) -> None:
    rc, out, _ = run(Recorder(), environ, conf())
    assert rc == 1
    obj = json.loads(out)
    assert (obj["code"], obj["msg"]) == (code, msg)
    assert "cniVersion" not in obj


@pytest.mark.parametrize(
    ("stdin", "code", "msg"),
    [
        ("garbage", 6, "error unmarshall network config: invalid character 'g' looking for beginning of value"),
        ('{"cniVersion": "0.4.0"}', 7, "missing network name"),
        ('{"name": "te%%st", "cniVersion": "0.4.0"}', 7, "invalid characters found in network name"),
        ('{"name": "n", "cniVersion": "9.9.9"}', 1, "incompatible CNI versions"),
    ],
)
def test_config_errors(stdin: str, code: int, msg: str) -> None:
    plugin = Recorder()
    rc, out, _ = run(plugin, env(), stdin)
    assert rc == 1
    obj = json.loads(out)
    assert (obj["code"], obj["msg"]) == (code, msg)
    assert plugin.calls == []


def test_incompatible_version_details_name_both_sides() -> None:
    _, out, _ = run(Recorder(("4.3.2",)), env(), conf(None))
    assert json.loads(out) == {"code": 1, "msg": "incompatible CNI versions",
                               "details": 'config is "0.1.0", plugin supports ["4.3.2"]'}


@pytest.mark.parametrize("command", ["CHECK", "GC", "STATUS"])
def test_commands_gated_by_version(command: str) -> None:
    minimum = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}[command]
    older = {"CHECK": "0.3.1", "GC": "1.0.0", "STATUS": "1.0.0"}[command]
    rc, out, _ = run(Recorder(), env(command), conf(older))
    assert (rc, json.loads(out)["msg"]) == (1, f"config version does not allow {command}")
    rc, out, _ = run(Recorder(("0.1.0", "0.2.0")), env(command), conf(minimum))
    assert (rc, json.loads(out)["msg"]) == (1, f"plugin version does not allow {command}")
    rc, out, _ = run(Recorder(), env(command), conf(minimum))
    assert (rc, out) == (0, "")


def test_gc_without_handler_is_a_no_op_and_with_handler_is_called() -> None:
    plugin = Recorder()
    assert run(plugin, {"CNI_COMMAND": "GC", "CNI_PATH": "/x"}, conf("1.1.0"))[0] == 0
    assert plugin.calls == []
    plugin = Recorder(with_gc=True)
    assert run(plugin, {"CNI_COMMAND": "GC", "CNI_PATH": "/x"}, conf("1.1.0"))[0] == 0
    assert [c for c, _ in plugin.calls] == ["gc"]


def test_handler_errors_are_reported_with_their_code_or_999() -> None:
    rc, out, _ = run(Recorder(fail=UnsupportedFieldError("no", "field x")), env(), conf())
    assert (rc, json.loads(out)) == (1, {"code": 2, "msg": "no", "details": "field x"})
    rc, out, _ = run(Recorder(fail=RuntimeError("potato")), env(), conf())
    assert (rc, json.loads(out)) == (1, {"code": 999, "msg": "potato"})
    rc, out, _ = run(Recorder(fail=CNIError("plugin specific", code=1234)), env(), conf())
    assert json.loads(out) == {"code": 1234, "msg": "plugin specific"}


@pytest.mark.parametrize("command", ["ADD", "DEL"])
def test_own_netns_is_refused_before_the_handler_unless_overridden(command: str) -> None:
    # The current reference skeleton makes this check (same code and message) after the handler ran: the damage
    # is done and ADD prints its result before the error (Debian's 1.1.1 build does not check at all). We refuse
    # before the handler: one error object, nothing touched.
    plugin = Recorder()
    rc, out, _ = run(plugin, env(CNI_COMMAND=command, CNI_NETNS="/proc/self/ns/net"), conf())
    assert (rc, json.loads(out)) == (1, {
        "code": 8, "msg": "plugin's netns and netns from CNI_NETNS should not be the same"})
    assert plugin.calls == []
    for override in ("TRUE", "true", "1"):
        rc, _, _ = run(plugin, env(CNI_COMMAND=command, CNI_NETNS="/proc/self/ns/net", CNI_NETNS_OVERRIDE=override),
                       conf())
        assert rc == 0
    assert len(plugin.calls) == 3
    # CHECK is not guarded (as in the reference); an unexaminable path is left to the handler.
    rc, _, _ = run(Recorder(), env(CNI_COMMAND="CHECK", CNI_NETNS="/proc/self/ns/net"), conf())
    assert rc == 0
    rc, _, _ = run(Recorder(), env(CNI_COMMAND=command, CNI_NETNS="/nonexistent/cnt-netns"), conf())
    assert rc == 0


def test_legacy_nameless_config_only_when_asked_and_unversioned() -> None:
    loopback_seed = '{\n    "type": "loopback"\n}\n'
    assert run(Recorder(), env(), loopback_seed)[0] == 1
    assert run(Recorder(), env(), loopback_seed, allow_legacy_nameless=True)[0] == 0
    rc, out, _ = run(Recorder(), env(), '{"type": "loopback", "cniVersion": "0.4.0"}', allow_legacy_nameless=True)
    assert (rc, json.loads(out)["msg"]) == (1, "missing network name")


# Differential: the same bad input to the reference loopback gives the same error object.
@pytest.mark.reference
@pytest.mark.parametrize(
    ("environ", "stdin"),
    [
        (env(CNI_NETNS="", CNI_IFNAME="", CNI_PATH=""), conf()),
        (env(), "garbage"),
        (env(), '{"cniVersion": "0.4.0"}'),
        (env(), '{"name": "te%%st", "cniVersion": "0.4.0"}'),
        (env(), '{"name": "n", "cniVersion": "9.9.9"}'),
        (env("CHECK"), conf("0.3.1")),
        (env("NOPE"), conf()),
    ],
)
def test_error_objects_match_the_reference(environ: dict[str, str], stdin: str) -> None:
    binary = reference_plugin("loopback")
    ref = subprocess.run([str(binary)], input=stdin.encode(), capture_output=True,
                         env={**environ, "PATH": os.environ.get("PATH", "")}, check=False)
    rc, out, _ = run(Recorder(("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0")), environ, stdin)
    assert (rc, out) == (ref.returncode, ref.stdout.decode())


def test_version_answer_is_the_codec_s_and_needs_no_other_variable() -> None:
    from cnicore._json import marshal
    from cnicore.plugins._skel import version_text
    from cnicore.spec._environ import parse_environment, required_variables

    # run_exec answers VERSION before reading the environment: sound only while VERSION requires nothing else,
    # so that parse_environment passes whatever the other variables hold.
    assert required_variables("VERSION") == ("CNI_COMMAND",)
    assert parse_environment({"CNI_COMMAND": "VERSION", "CNI_CONTAINERID": "bad id!", "CNI_IFNAME": "x" * 40})
    for versions in (ALL, ("0.4.0",), (), ("1.0.0-rc\"1",)):
        expected = marshal({"cniVersion": "1.1.0", "supportedVersions": list(versions)}) + "\n"
        assert version_text(versions) == expected


def test_version_with_malformed_other_variables_is_answered() -> None:
    out = io.BytesIO()
    env = {"CNI_COMMAND": "VERSION", "CNI_CONTAINERID": "bad id!", "CNI_IFNAME": "x" * 40}
    assert run_plugin(Recorder(("0.4.0", "1.0.0")), environ=env, stdin=io.BytesIO(b"ignored"), stdout=out) == 0
    assert json.loads(out.getvalue()) == {"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0"]}


@pytest.mark.parametrize("field", ["container_id", "netns", "ifname", "args"])
def test_a_plugin_request_refuses_a_nul_in_what_travels_as_a_variable(field: str) -> None:
    # A library caller builds requests directly: the NUL is refused with code 4 when the request is made.

    with pytest.raises(InvalidEnvironmentError, match="contains a NUL character") as caught:
        PluginRequest(command="ADD", **{field: "x\0y"})
    assert caught.value.code == 4
