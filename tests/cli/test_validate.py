"""``cnicore validate``: every error of every file, with its key path and CNI code."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from cli_helpers import CLI, bridge_conflist
from hypothesis import given
from hypothesis import strategies as st

from cnicore.cli import main
from cnicore.testing import conflists, invalid_conflists, invalid_plugin_configs, ipam_configs, single_configs


def test_valid_files_pass_with_a_summary(cli: CLI) -> None:
    cli.write_conf("10-mynet.conflist", bridge_conflist("mynet", cli.data_dir))
    cli.write_conf("20-lo.conf", {"cniVersion": "0.3.1", "name": "lo", "type": "loopback"})
    run = cli("validate", str(cli.conf_dir))
    assert run.status == 0, run
    assert f"{cli.conf_dir}/10-mynet.conflist: ok (network mynet, cniVersion 1.0.0, plugins: bridge)" in run.out
    assert f"{cli.conf_dir}/20-lo.conf: ok (network lo, cniVersion 0.3.1, plugins: loopback)" in run.out
    assert run.out.rstrip().endswith("2 file(s) checked: 2 valid, 0 error(s)")
    assert cli("validate", "--json", str(cli.conf_dir)).json() == []


def test_every_error_of_every_file_is_reported(cli: CLI) -> None:
    # One list with a list-level error and two bad plugins; one .conf with two faults; one file that is not JSON.
    cli.write_conf("10-a.conflist", {
        "cniVersion": "1.0.0", "name": "a", "disableCheck": "maybe",
        "plugins": [
            {"type": "bridge", "vlan": 5000, "ipam": {"type": "host-local", "subnet": "10.1.0.0/33"}},
            {"type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.2.0.0/16",
                                                                            "rangeStart": "10.3.0.1"}]]}},
        ]})
    cli.write_conf("20-b.conf", {"cniVersion": "1.0.0", "name": "b", "type": "bridge", "ipMasqBackend": "ebpf",
                                 "ipam": {"type": "host-local", "subnet": "10.9.0.0/16", "rangeEnd": "10.8.0.1"}})
    cli.write_conf("30-c.json", '{"name": "c", ')
    run = cli("validate", str(cli.conf_dir))
    assert run.status == 1, run
    conf = cli.conf_dir
    expected = [
        f"{conf}/10-a.conflist: disableCheck: ",
        f"{conf}/10-a.conflist: plugins[0].ipam.subnet: invalid CIDR address: 10.1.0.0/33 (CNI code 7)",
        f"{conf}/10-a.conflist: plugins[0].vlan: invalid VLAN ID 5000 (must be between 0 and 4094) (CNI code 7)",
        f"{conf}/10-a.conflist: plugins[1].ipam.ranges[0][0].rangeStart: invalid range set 0: RangeStart 10.3.0.1 "
        "not in network 10.2.0.0/16 (CNI code 7)",
        f"{conf}/20-b.conf: ipam.rangeEnd: ",
        f'{conf}/20-b.conf: ipMasqBackend: unknown ipmasq backend "ebpf" (CNI code 7)',
        f"{conf}/30-c.json: error parsing configuration: unexpected end of JSON input (CNI code 6)",
    ]
    lines = run.out.splitlines()
    for prefix in expected:
        assert any(line.startswith(prefix) for line in lines), (prefix, run.out)
    assert lines[-1] == "3 file(s) checked: 0 valid, 7 error(s)"

    objects = cli("validate", "--json", str(conf)).json()
    assert len(objects) == 7
    by_key = {(Path(o["file"]).name, o["key"]): o for o in objects}
    assert by_key[("10-a.conflist", "plugins[0].ipam.subnet")] == {
        "file": f"{conf}/10-a.conflist", "key": "plugins[0].ipam.subnet", "message": "invalid CIDR address: "
        "10.1.0.0/33", "code": 7, "value": "10.1.0.0/33"}
    assert by_key[("30-c.json", None)]["code"] == 6


def test_duplicate_network_names_across_the_paths_given(cli: CLI, tmp_path: Path) -> None:
    first = cli.write_conf("10-x.conflist", bridge_conflist("same", cli.data_dir))
    other = tmp_path / "elsewhere"
    other.mkdir()
    second = other / "99-x.conf"
    second.write_text(json.dumps({"cniVersion": "0.4.0", "name": "same", "type": "loopback"}))
    run = cli("validate", str(cli.conf_dir), str(second))
    assert run.status == 1
    assert f'{second}: name: duplicate network name "same": also defined in {first} (CNI code 7)' in run.out
    # Either file alone is fine.
    assert cli("validate", str(first)).status == 0
    assert cli("validate", str(second)).status == 0


def test_a_missing_path_and_an_empty_directory_are_input_errors(cli: CLI, tmp_path: Path) -> None:
    run = cli("validate", str(tmp_path / "nope"))
    assert run.status == 1
    assert f"{tmp_path / 'nope'}: no such file or directory" in run.out
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("not a config")
    run = cli("validate", str(empty))
    assert run.status == 1 and "no .conf, .conflist, .json files in directory" in run.out


def test_an_unreadable_file_is_a_system_failure(cli: CLI, tmp_path: Path) -> None:
    dangling = cli.conf_dir / "10-dangling.conflist"
    dangling.symlink_to(tmp_path / "gone")  # listed in the directory, but reading it fails
    objects = cli("validate", "--json", str(cli.conf_dir)).json()
    assert [(o["file"], o["code"]) for o in objects] == [(str(dangling), 5)]
    assert cli("validate", str(cli.conf_dir)).status == 3


def test_sibling_plugins_are_validated_too(cli: CLI) -> None:
    cli.write_conf("10-sib.conflist", {"cniVersion": "1.0.0", "name": "sib"})
    sibling = cli.conf_dir / "sib"
    sibling.mkdir()
    (sibling / "10-bridge.conf").write_text(json.dumps(
        {"type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.5.0.0/16"}],
                                                                     [{"subnet": "10.5.1.0/24"}]]}}))
    run = cli("validate", "--json", str(cli.conf_dir))
    assert [(o["key"], o["message"]) for o in run.json()] == [
        ("plugins[0].ipam.ranges[1]", "range set 0 overlaps with 1")]


def test_through_the_console_script(cli: CLI) -> None:
    cli.write_conf("10-bad.conflist", {"cniVersion": "1.0.0", "name": "bad", "plugins": []})
    run = cli.script("validate", str(cli.conf_dir))
    assert run.status == 1
    assert "error parsing configuration list: no plugins in list (CNI code 7)" in run.out
    run = cli.script("--json", "validate", str(cli.conf_dir))
    assert run.status == 1 and run.json()[0]["code"] == 7


# -------------------------------------------------------------------------------- generated configurations


def _validate_one(name: str, data: bytes) -> tuple[int, list[dict[str, object]]]:
    with tempfile.TemporaryDirectory() as base:
        cli = CLI(Path(base))
        path = cli.conf_dir / name
        path.write_bytes(data)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main(["validate", "--json", str(path)], cli.env)
        return status, json.loads(out.getvalue())


@given(invalid_conflists())
def test_invalid_lists_are_refused_with_their_code(case: tuple[bytes, int]) -> None:
    data, code = case
    status, objects = _validate_one("10-x.conflist", data)
    assert status == 1
    assert objects and objects[0]["code"] == code, objects


@given(invalid_plugin_configs())
def test_invalid_single_configs_are_refused_with_their_code(case: tuple[bytes, int]) -> None:
    data, code = case
    status, objects = _validate_one("10-x.conf", data)
    assert status == 1
    assert objects and objects[0]["code"] == code, objects


@given(st.one_of(conflists().map(lambda d: ("10-x.conflist", d)), single_configs().map(lambda d: ("10-x.conf", d))))
def test_valid_generated_configs_pass(case: tuple[str, dict[str, object]]) -> None:
    name, document = case
    status, objects = _validate_one(name, json.dumps(document).encode())
    assert (status, objects) == (0, [])


@given(ipam_configs(data_dir="/nonexistent/never-created"), st.sampled_from(["0.4.0", "1.0.0", "1.1.0"]))
def test_valid_host_local_settings_in_a_bridge_list_pass(ipam: dict[str, object], version: str) -> None:
    document = {"cniVersion": version, "name": ipam["name"], "plugins": [{"type": "bridge", "ipam": ipam["ipam"]}]}
    status, objects = _validate_one("10-x.conflist", json.dumps(document).encode())
    assert (status, objects) == (0, [])
    assert not Path("/nonexistent/never-created").exists()  # validation never touches a store
