"""Special files wherever cnicore opens a file it did not create: FIFOs, devices, huge files.

A FIFO must never make a command wait for a writer that never comes, and a symlink to ``/dev/zero`` or a huge
file must never be read without bound: each place answers with one CNI error object (or treats the file as
absent where that is its contract), with no traceback and nothing else changed. The CLI drives the runtime,
the plugins and the store, as a user would; the places the CLI does not reach are called through the library.
Every test runs under an alarm, so a hang fails instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import CLI, Run, bridge_conflist
from support import unblocked

from cnicore import CNIError, InvalidConfigError, IOFailureError
from cnicore._readfile import MAX_DOCUMENT_BYTES, read_regular
from cnicore.cli import cnitool_container_id
from cnicore.ipam import load_resolv_conf
from cnicore.plugins import install_plugins, is_cnicore_plugin
from cnicore.runtime import container_files
from cnicore.stores import FileStore
from cnicore.stores._file import index_path

NETNS = "/var/run/netns/cnt-special"
CID = cnitool_container_id(NETNS)


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    with unblocked(60, "blocked on a special file"):
        yield


@pytest.fixture
def fake(cli: CLI) -> CLI:
    """The CLI on the persisted fake kernel with a bridge network ``mynet``."""
    install_plugins(cli.plugin_dir)
    cli.env.update(CNICORE_BACKEND="fake", CNICORE_FAKE_STATE=str(cli.base / "fake-kernel.state"))
    cli.write_conf("10-mynet.conflist", bridge_conflist("mynet", cli.data_dir, isGateway=False))
    return cli


def _special(path: Path, kind: str) -> None:
    """Put a FIFO, a symlink to /dev/zero, or a huge (sparse) file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    else:
        with path.open("wb") as handle:
            handle.truncate(MAX_DOCUMENT_BYTES + 1)


def _one_error(out: str) -> dict[str, object]:
    error = json.loads(out)  # exactly one JSON document
    assert isinstance(error, dict) and isinstance(error.get("code"), int) and error.get("msg"), error
    return error


def _no_traceback(run: Run, argv: list[str]) -> None:
    """Success, or an exit status of the CLI's error families with one error object."""
    assert run.status in (0, 1, 3, 4) and "Traceback" not in run.err, (argv, run)
    if run.status:
        _one_error(run.out)


KINDS = ["fifo", "zero", "huge"]


def test_the_helper_refuses_each_kind_and_says_what_it_is(tmp_path: Path) -> None:
    for kind, reason in (("fifo", "a FIFO"), ("zero", "a character device"), ("huge", "larger than")):
        _special(tmp_path / kind, kind)
        with pytest.raises(OSError, match=reason):
            read_regular(tmp_path / kind, MAX_DOCUMENT_BYTES)
    (tmp_path / "dir").mkdir()
    with pytest.raises(IsADirectoryError):
        read_regular(tmp_path / "dir", 10)
    # Where only the start matters, a large file gives its first bytes.
    (tmp_path / "big").write_bytes(b"x" * 100)
    assert read_regular(tmp_path / "big", 10, whole=False) == b"x" * 10


@pytest.mark.parametrize("kind", KINDS)
def test_a_cache_entry_that_is_no_file_fails_del_cleanly_and_is_skipped_by_gc_and_ls(fake: CLI, kind: str) -> None:
    entry = fake.cache_dir / "results" / f"mynet-{CID}-eth0"
    _special(entry, kind)
    # Unreadable, it is no attachment: listing skips it (as libcni skips unreadable entries), DEL runs without
    # a cached result (DEL is best effort), GC and ls carry on.
    for argv in (["ls", "mynet", "--json"], ["gc", "--none-live", "--json"], ["gc", "--json"],
                 ["del", "mynet", NETNS, "--json"], ["del", "mynet", NETNS, "--ifname", "eth0", "--json"],
                 ["status", "mynet", "--json"]):
        _no_traceback(fake(*argv), argv)


@pytest.mark.parametrize("kind", KINDS)
def test_a_configuration_that_is_no_file_is_no_network(fake: CLI, kind: str) -> None:
    _special(fake.conf_dir / "05-odd.conflist", kind)
    _special(fake.conf_dir / "06-odd.conf", kind)
    for argv in (["add", "mynet", NETNS, "--json"], ["ls", "mynet", "--json"], ["del", "mynet", NETNS, "--json"],
                 ["gc", "--json"]):
        _no_traceback(fake(*argv), argv)
    run = fake("validate", str(fake.conf_dir / "05-odd.conflist"), "--json")
    assert run.status != 0 and "Traceback" not in run.err
    assert [problem["code"] for problem in json.loads(run.out)] == [5]
    run = fake("add", "odd", NETNS, "--json")
    assert run.status != 0 and "Traceback" not in run.err
    _one_error(run.out)


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_store_lock_that_is_no_file_fails_add_instead_of_hanging(fake: CLI, kind: str) -> None:
    # The reference hangs on a FIFO here.
    _special(fake.data_dir / "mynet" / "lock", kind)
    run = fake("add", "mynet", NETNS, "--json")
    assert run.status != 0 and "Traceback" not in run.err
    assert "lock" in str(_one_error(run.out)["msg"])
    assert not any((fake.data_dir / "mynet").glob("10.*"))
    with pytest.raises(IOFailureError, match="cannot open lock file"):
        FileStore(fake.data_dir, "mynet")


@pytest.mark.parametrize("kind", KINDS)
def test_a_persisted_index_that_is_no_file_is_a_miss(fake: CLI, kind: str) -> None:
    assert fake("add", "mynet", NETNS, "--json").status == 0
    index = index_path(fake.data_dir, "mynet")
    assert index is not None and index.exists()
    index.unlink()
    _special(index, kind)
    # The directory is the truth: the reservation is found by reading it.
    run = fake("add", "mynet", "/var/run/netns/cnt-special-2", "--json")
    assert run.status == 0, run
    assert sorted(p.name for p in (fake.data_dir / "mynet").glob("10.*")) == ["10.23.0.2", "10.23.0.3"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_resolv_conf_that_is_no_file_is_an_error(fake: CLI, tmp_path: Path, kind: str) -> None:
    _special(tmp_path / "resolv.conf", kind)
    with pytest.raises(InvalidConfigError, match=r"resolv\.conf"):
        load_resolv_conf(str(tmp_path / "resolv.conf"))
    conf = bridge_conflist("dnsnet", fake.data_dir, isGateway=False)
    conf["plugins"][0]["ipam"]["resolvConf"] = str(tmp_path / "resolv.conf")
    fake.write_conf("30-dnsnet.conflist", conf)
    run = fake("add", "dnsnet", NETNS, "--json")
    assert run.status != 0 and "Traceback" not in run.err
    assert "resolv.conf" in str(_one_error(run.out)["msg"])
    assert not any((fake.data_dir / "dnsnet").glob("10.*"))
    # The host's resolv.conf, for containers that get no nameservers.
    with pytest.raises(CNIError, match=r"resolv\.conf"):
        container_files([], hostname="c1", host_resolv_conf=str(tmp_path / "resolv.conf"))


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_plugin_on_the_path_that_is_no_file_is_not_ours(tmp_path: Path, kind: str) -> None:
    _special(tmp_path / "host-local", kind)
    assert not is_cnicore_plugin(str(tmp_path / "host-local"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_journal_entry_that_is_no_file_does_not_stop_recovery(fake: CLI, kind: str) -> None:
    from cnicore.runtime import Runtime

    pending = fake.cache_dir / "cnicore" / "pending"
    _special(pending / f"mynet-{CID}-eth0", kind)
    with Runtime(config_dir=fake.conf_dir, plugin_path=[str(fake.plugin_dir)], cache_dir=fake.cache_dir) as rt:
        try:
            rt.recover()
        except CNIError as exc:
            assert "journal" in exc.msg
