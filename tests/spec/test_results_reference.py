"""Differential tests: results printed by the reference host-local plugin, read and re-printed by us.

The reference binary prints a result at every version it supports; re-printing
what we parsed must give the same bytes, and converting its newest result down
must give the bytes it prints for the older versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import support
from hypothesis import assume, given
from hypothesis import strategies as st

from cnicore._errors import CNIError
from cnicore.spec._convert import convert_result
from cnicore.spec._result import (
    Interface,
    IPConfig,
    Result,
    Result020,
    Result040,
    parse_prev_result,
    parse_result,
)
from cnicore.spec._version import result_family
from cnicore.testing._results import mutated_result_objects, results

pytestmark = pytest.mark.reference

OLD_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0"]
RESOLV_CONF = """# written by the test
nameserver 192.0.2.53
nameserver 2001:db8::53
domain example.com
search example.net example.org
options ndots:5 rotate
"""


def _config(version: str | None, data_dir: Path, resolv_conf: Path) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "cnt-results",
        "type": "host-local",
        "ipam": {
            "type": "host-local",
            "dataDir": str(data_dir),
            "resolvConf": str(resolv_conf),
            # The IPv6 range makes Go choose between two equal zero runs (2001:db8::1:0:0:2).
            "ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:0:0:1::/80"}]],
            "routes": [
                {"dst": "0.0.0.0/0"},
                {"dst": "::/0"},
                {"dst": "192.168.0.0/16", "gw": "1.1.1.1"},
                {"dst": "2001:DB8:2::0/64", "gw": "2001:db8:3::1"},
                {"dst": "10.9.8.7/8", "gw": "::ffff:10.1.2.1"},  # host bits kept; mapped gw prints as IPv4
                {"dst": "::ffff:172.16.0.0/108"},  # an IPv4 route once Go has parsed it
                {"dst": "2001:db8:0:0:1:0:0:0/96"},
            ],
        },
    }
    if version is not None:
        config["cniVersion"] = version
    return config


def _run(command: str, config: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    plugin = support.reference_plugin("host-local")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "cnt-results-container",
        "CNI_NETNS": str(tmp_path / "netns"),  # host-local never opens it
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(plugin.parent),
    }
    return subprocess.run([str(plugin)], input=json.dumps(config).encode(), env=env, capture_output=True,
                          timeout=60, check=False)


def _add_then_del(version: str | None, tmp_path: Path) -> bytes:
    """ADD (and DEL, to leave nothing behind) against a fresh store; the ADD's stdout."""
    data_dir = tmp_path / f"data-{version}"
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(RESOLV_CONF)
    config = _config(version, data_dir, resolv_conf)
    added = _run("ADD", config, tmp_path)
    try:
        assert added.returncode == 0, added.stdout + added.stderr
    finally:
        deleted = _run("DEL", config, tmp_path)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert not [p for p in (data_dir / "cnt-results").iterdir() if p.name[0].isdigit()]
    return added.stdout


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp_path = tmp_path_factory.mktemp("host-local")
    return {version: _add_then_del(version, tmp_path) for version in [*OLD_VERSIONS, "1.0.0"]}


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_reprint_is_byte_identical(outputs: dict[str, bytes], version: str) -> None:
    printed = outputs[version]
    result = parse_result(printed)
    assert result.cni_version == version
    assert type(result) is (Result020 if version in ("0.1.0", "0.2.0") else Result040)
    assert result.to_json().encode() == printed


def test_reprint_of_100(outputs: dict[str, bytes]) -> None:
    printed = outputs["1.0.0"]
    result = parse_result(printed)
    assert isinstance(result, Result)
    ours = result.to_json().encode()
    if ours != printed:
        # The installed plugins predate the reference's sorted 1.x printing (struct order there).
        # Then only the key order may differ.
        assert json.loads(ours) == json.loads(printed)
        assert list(json.loads(ours)) == sorted(json.loads(ours))


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_converting_the_newest_result_gives_the_older_bytes(outputs: dict[str, bytes], version: str) -> None:
    # host-local builds a current result and converts it to the config's version when printing.
    newest = parse_result(outputs["1.0.0"])
    assert convert_result(newest, version).to_json().encode() == outputs[version]
    assert convert_result(newest, "1.1.0").to_object() == {**json.loads(outputs["1.0.0"]), "cniVersion": "1.1.0"}


def test_addresses_print_as_go_prints_them(outputs: dict[str, bytes]) -> None:
    text = outputs["0.4.0"].decode()
    assert '"address": "2001:db8::1:0:0:2/80"' in text
    assert '"dst": "10.9.8.7/8"' in text
    assert '"gw": "10.1.2.1"' in text
    assert '"dst": "172.16.0.0/12"' in text
    assert '"dst": "2001:db8:2::/64"' in text
    assert '"dst": "2001:db8:0:0:1::/96"' in text
    # and the 0.2.0 form files the mapped route under ip4
    legacy = json.loads(outputs["0.2.0"])
    assert {"dst": "172.16.0.0/12"} in legacy["ip4"]["routes"]


def test_missing_version_prints_010(tmp_path: Path) -> None:
    printed = _add_then_del(None, tmp_path)
    result = parse_result(printed)
    assert isinstance(result, Result020)
    assert result.cni_version == "0.1.0"
    assert result.to_json().encode() == printed


# ----------------------------------------------------------------------------------------------
# portmap without port mappings parses prevResult with the reference's ParsePrevResult and prints
# it back at the configuration's version: an oracle for parse_prev_result + convert + print.
# ----------------------------------------------------------------------------------------------

PLUGIN_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]
# Fields the installed (older) reference library does not know, and so ignores.
_NEWER_FIELDS = {"mtu", "advmss", "priority", "table", "scope", "socketpath", "pciid"}


def _portmap(config: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    plugin = support.reference_plugin("portmap")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "cnt-results",
           "CNI_NETNS": "/nonexistent/cnt-results", "CNI_IFNAME": "eth0", "CNI_PATH": str(plugin.parent)}
    return subprocess.run([str(plugin)], input=json.dumps(config).encode(), env=env, capture_output=True,
                          timeout=60, check=False)


def _comparable(doc: Any) -> bool:
    """False for documents where the installed library is known to differ from the current reference
    or from our deliberate choices: newer fields, keys spelled twice (Go merges those), huge numbers."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            folded = [k.lower() for k in item]
            if len(set(folded)) != len(folded) or _NEWER_FIELDS & set(folded):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int | float) and not isinstance(item, bool) and abs(item) > 2**53:
            return False
    return True


def _strip_newer_fields(result: Any) -> Any:
    obj = result.to_object()

    def strip(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: strip(v) for k, v in item.items() if k.lower() not in _NEWER_FIELDS}
        if isinstance(item, list):
            return [strip(v) for v in item]
        return item

    return strip(obj)


def _check_against_portmap(config_version: str, prev: Any) -> None:
    config = {"cniVersion": config_version, "name": "cnt-results", "type": "portmap", "prevResult": prev}
    reference = _portmap(config)
    ours: str | None = None
    try:
        parsed = parse_prev_result(config)
        if parsed is not None:  # None: no prevResult, which portmap refuses
            ours = convert_result(parsed, config_version).to_json()
    except CNIError as exc:
        error = exc
    if reference.returncode != 0:
        # Failed (or, for a null entry, crashed) in the reference: we refuse it too.
        assert ours is None, (reference.stdout, reference.stderr, ours)
        if reference.returncode == 1:
            go_msg = json.loads(reference.stdout)["msg"].removeprefix("failed to parse config: ")
            if not go_msg.startswith("could not parse prevResult: "):
                return  # refused before the result was looked at (not an object, no prevResult)
            assert error.msg.startswith("could not parse prevResult: ")
            # The installed library words these slightly differently (its 1.x list is [1.0.0] and
            # portmap adds the prefix twice), so compare what follows the list.
            for marker in ("but unmarshalled CNIVersion is ", "unsupported CNI result version "):
                if marker in go_msg:
                    assert marker in error.msg
                    assert error.msg.split(marker)[1] == go_msg.split(marker)[1]
        return
    # Go before 1.22 wrote \b and \f as \u0008 and \u000c; the current reference (and we) write the short form.
    printed = reference.stdout.decode().replace("\\u0008", "\\b").replace("\\u000c", "\\f")
    if "<nil>" in json.loads(printed).__repr__():
        assert ours is None  # a missing address: the reference prints "<nil>", we refuse it
        return
    assert ours is not None, (printed, error)
    if config_version != "1.0.0":
        assert ours == printed
    else:
        theirs = json.loads(printed)
        if theirs.get("dns") == {}:
            del theirs["dns"]  # the installed library predates omitting an empty dns
        assert json.loads(ours) == theirs


@given(results().filter(lambda r: r.cni_version in PLUGIN_VERSIONS), st.data())
def test_prev_result_round_trips_through_portmap(result: Any, data: st.DataObject) -> None:
    same_family = [v for v in PLUGIN_VERSIONS if result_family(v) == result_family(result.cni_version)]
    config_version = data.draw(st.sampled_from(same_family))
    prev = _strip_newer_fields(result)
    assume(_comparable(prev))
    _check_against_portmap(config_version, prev)


@given(mutated_result_objects(), st.sampled_from(PLUGIN_VERSIONS), st.booleans())
def test_mutated_prev_results_agree_with_portmap(doc: Any, config_version: str, drop_version: bool) -> None:
    if drop_version and isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k != "cniVersion"}
    assume(_comparable(doc))
    _check_against_portmap(config_version, doc)


@pytest.mark.parametrize(("config_version", "prev"), [
    ("1.0.0", {"ips": [{"address": "10.0.0.2/8", "interface": 1.0}]}),  # read through float64: 1
    ("0.4.0", {"ips": [{"version": "4", "address": "10.0.0.2/8", "interface": 1e2}]}),
    ("0.4.0", {"ips": [{"version": "4", "address": "10.0.0.2/8", "interface": 1.5}]}),
    ("1.0.0", {"ips": [{"address": "10.0.0.2/8", "interface": 9007199254740993}]}),
    ("1.0.0", {"CNIVersion": "1.0.0", "cniversion": "0.4.0"}),
    ("1.0.0", {"cniVersion": ""}),
    ("0.2.0", {"cniVersion": ""}),
    ("0.2.0", {"cniVersion": 5}),
    ("0.4.0", {"cniVersion": "0.3.0", "IPS": [{"Version": "6", "ADDRESS": "::ffff:10.0.0.1/100"}]}),
    ("0.3.1", {"ips": [{"address": "1.2.3.4/24", "gateway": ""}], "routes": [{"dst": "0.0.0.0/0", "gw": None}]}),
    ("1.0.0", {"ips": [{"address": "01.2.3.4/24"}]}),
    ("1.0.0", {"ips": [{"address": "1.2.3.4/024"}]}),
    ("1.0.0", {"routes": [{"dst": "1:2:3:4:5:6:1.2.3.4/64"}]}),
    ("1.0.0", {"routes": [{"dst": "fe80::1%eth0/64"}]}),
    ("1.0.0", {"interfaces": [{"name": "a\\ud800"}], "dns": {"nameservers": [None, "x"]}}),
    ("0.1.0", {"ip4": {"ip": "10.0.0.1/8", "routes": [{"dst": "::/0"}]}, "ip6": None}),
    ("1.0.0", {"ips": [{"address": "10.0.0.2/8"}], "interfaces": [{"name": "a"}], "Dns": {"Domain": "x"}}),
])
def test_prev_result_corner_cases_agree_with_portmap(config_version: str, prev: Any) -> None:
    _check_against_portmap(config_version, prev)


# ----------------------------------------------------------------------------------------------
# loopback builds a 1.x-shaped result stamped with the configuration's version and prints it
# unchanged (no re-typing): the shape quirk our Result class models.
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def netns() -> Any:
    ip_tool = support.require_tool("ip")
    name = f"cnt-results-{uuid.uuid4().hex[:8]}"
    subprocess.run([ip_tool, "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        yield f"/var/run/netns/{name}"
    finally:
        subprocess.run([ip_tool, "netns", "del", name], check=False, capture_output=True, timeout=30)


def _loopback(command: str, version: str | None, netns: str) -> subprocess.CompletedProcess[bytes]:
    plugin = support.reference_plugin("loopback")
    config: dict[str, Any] = {"name": "cnt-results-lo", "type": "loopback"}
    if version is not None:
        config["cniVersion"] = version
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command, "CNI_CONTAINERID": "cnt-lo",
           "CNI_NETNS": netns, "CNI_IFNAME": "lo", "CNI_PATH": str(plugin.parent)}
    return subprocess.run([str(plugin)], input=json.dumps(config).encode(), env=env, capture_output=True,
                          timeout=60, check=False)


@support.requires_root
@pytest.mark.root
def test_loopback_shape_quirk(netns: str) -> None:
    for version in [None, *PLUGIN_VERSIONS]:
        added = _loopback("ADD", version, netns)
        try:
            assert added.returncode == 0, added.stdout + added.stderr
        finally:
            assert _loopback("DEL", version, netns).returncode == 0
        printed = added.stdout.decode()
        ips = [IPConfig(interface=0, address="127.0.0.1/8")]
        if '"::1/128"' in printed:
            ips.append(IPConfig(interface=0, address="::1/128"))
        quirk = Result(cni_version=version or "1.1.0", ips=ips,
                       interfaces=[Interface(name="lo", mac="00:00:00:00:00:00", sandbox=netns)])
        if version is None:
            # No cniVersion: the reference converts to 0.1.0, whose printing we match byte for byte.
            assert quirk.as_version("").to_json() == printed
            continue
        assert convert_result(quirk, version) is quirk
        theirs = json.loads(printed)
        if theirs.get("dns") == {}:
            del theirs["dns"]  # the installed library predates omitting an empty dns
        assert json.loads(quirk.to_json()) == theirs
        # A runtime reading it at that version sees what the reference's readers see:
        # 0.3.x/0.4.0 entries without a version, and no ip4/ip6 for 0.1.0/0.2.0.
        read = parse_result(printed)
        if isinstance(read, Result040):
            assert [ip.version for ip in read.ips] == [""] * len(ips)
        elif isinstance(read, Result020):
            assert read.ip_configs == ()
