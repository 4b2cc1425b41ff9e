"""Global options, environment, cnitool's defaults, exit codes and help texts."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from cli_helpers import CLI, bridge_conflist

from cnicore import (
    CNIError,
    DecodingError,
    InternalError,
    InvalidConfigError,
    IOFailureError,
    TryAgainLaterError,
    error_from_object,
)
from cnicore.cli import EXIT_INPUT, EXIT_SYSTEM, cnitool_container_id, exit_status, main


def test_container_id_is_cnitools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # cnitool: "cnitool-" + hex(sha512(filepath.Abs(netns))[:10]).
    expected = "cnitool-" + hashlib.sha512(b"/var/run/netns/c1").hexdigest()[:20]
    assert cnitool_container_id("/var/run/netns/c1") == expected
    assert cnitool_container_id("/var/run/netns/../netns/./c1") == expected  # cleaned, as Go's Abs does
    assert cnitool_container_id("//var/run/netns/c1") == expected  # Go's Clean collapses "//" too
    monkeypatch.chdir(tmp_path)
    assert cnitool_container_id("ns") == "cnitool-" + hashlib.sha512(f"{tmp_path}/ns".encode()).hexdigest()[:20]


@pytest.mark.parametrize(("exc", "status"), [
    (InvalidConfigError("x"), EXIT_INPUT),
    (DecodingError("x"), EXIT_INPUT),
    (IOFailureError("x"), EXIT_SYSTEM),
    (TryAgainLaterError("x"), EXIT_SYSTEM),
    (InternalError("x"), EXIT_SYSTEM),
    (error_from_object({"code": 4, "msg": "x"}), EXIT_INPUT),
    (error_from_object({"code": 1234, "msg": "x"}), EXIT_SYSTEM),
    (CNIError("x", code=2), EXIT_INPUT),
    (CNIError("x", code=11), EXIT_SYSTEM),
    (CNIError("x", code=999), EXIT_SYSTEM),
])
def test_exit_status_follows_the_error_family(exc: CNIError, status: int) -> None:
    assert exit_status(exc) == status


def test_conf_dir_option_wins_over_netconfpath(cli: CLI, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "10-x.conflist").write_text(json.dumps(bridge_conflist("only-in-other", cli.data_dir)))
    assert cli("ls", "only-in-other").status == 1  # NETCONFPATH points at cli.conf_dir
    assert cli("ls", "only-in-other", "--conf-dir", str(other)).status == 0
    assert cli("--conf-dir", str(other), "ls", "only-in-other").status == 0  # before the subcommand too
    assert cli("ls", "only-in-other", env={"NETCONFPATH": str(other)}).status == 0


def test_default_conf_dir_is_etc_cni_net_d(cli: CLI) -> None:
    env = {k: v for k, v in cli.env.items() if k != "NETCONFPATH"}
    status = main(["ls", "surely-not-a-network-here"], env)
    assert status == 1
    assert "/etc/cni/net.d" in cli.capsys.readouterr().err  # type: ignore[union-attr]


def test_usage_errors_exit_2_and_bad_environment_exits_1(cli: CLI) -> None:
    assert cli("ls").status == 2
    assert cli("nope").status == 2
    assert cli("ls", "x", "--backend", "kernel").status == 2
    assert cli("ls", "x", "--timeout", "-1").status == 2
    assert cli("gc", "--live", "web/").status == 2
    run = cli("ls", "x", env={"CNICORE_BACKEND": "kernel"})
    assert (run.status, run.err) == (1, "cnicore: unknown link backend CNICORE_BACKEND=kernel (expected one of "
                                        "auto, netlink, iproute2, fake); key CNICORE_BACKEND = \"kernel\"\n")
    run = cli("--json", "ls", "x", env={"CNICORE_TIMEOUT": "soon"})
    assert run.status == 1 and json.loads(run.out)["code"] == 4


@pytest.mark.parametrize("bad", ["A", "A=", "=B", "A=B=C", "A=B;", "A=B;;C=D"])
def test_bad_cni_args_are_refused_before_anything_runs(cli: CLI, bad: str) -> None:
    run = cli("--json", "add", "net", "/var/run/netns/none", "--args", bad)
    assert run.status == 1
    error = json.loads(run.out)
    assert error["code"] == 4 and "invalid --args pair" in error["msg"]
    run = cli("add", "net", "/var/run/netns/none", env={"CNI_ARGS": bad})
    assert run.status == 1 and "invalid CNI_ARGS pair" in run.err


@pytest.mark.parametrize("bad", ["{", "[]", "5", '"x"'])
def test_bad_capability_args_are_refused(cli: CLI, bad: str) -> None:
    run = cli("--json", "add", "net", "/var/run/netns/none", "--capability-args", bad)
    assert run.status == 1 and json.loads(run.out)["code"] == 6
    run = cli("add", "net", "/var/run/netns/none", env={"CAP_ARGS": bad})
    assert run.status == 1 and "invalid CAP_ARGS" in run.err


def test_help_documents_exit_codes_environment_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"], {}) == 0
    text = capsys.readouterr().out
    for needle in ("exit status:", "1  the input was wrong", "3  the system failed", "NETCONFPATH", "CNI_PATH",
                   "CNICORE_BACKEND", "CAP_ARGS"):
        assert needle in text
    commands = ["add", "del", "check", "gc", "status", "validate", "ls"]
    for command in commands:
        assert main([command, "--help"], {}) == 0
        text = capsys.readouterr().out
        assert "examples:\n  " in text and f"cnicore {command}" in text.split("examples:")[1], command
        assert "exit status:" in text
    for command in ("demo", "install-plugins"):
        assert main([command, "--help"], {}) == 0
        assert f"usage: cnicore {command}" in capsys.readouterr().out


def test_install_plugins_is_unchanged(cli: CLI, tmp_path: Path) -> None:
    run = cli("install-plugins", str(tmp_path / "bin2"))
    assert run.status == 0
    assert sorted(Path(p).name for p in run.out.split()) == ["bridge", "firewall", "host-local", "loopback",
                                                             "mesos-cni-port-mapper", "portmap", "tuning"]
    assert all(os.access(p, os.X_OK) for p in run.out.split())


def test_console_script_runs_and_reports_usage_errors(cli: CLI) -> None:
    run = cli.script("--help")
    assert run.status == 0 and "exit status:" in run.out
    run = cli.script("add")
    assert run.status == 2 and "usage: cnicore add" in run.err
    run = cli.script("ls", "nothing-here")
    assert run.status == 1
    assert run.err == f'cnicore: no net configurations found in {cli.conf_dir}; key name = "nothing-here"\n'
