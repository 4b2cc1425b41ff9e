"""``cnicore ls``: a network's host-local reservations, read without changing anything."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import CLI, bridge_conflist

from cnicore.cli import _ls as ls_module
from cnicore.config import build_request, load_network_config
from cnicore.ipam import HostLocalIPAM

DUAL = [[{"subnet": "10.23.0.0/24"}], [{"subnet": "fd00:23::/64"}]]


def _allocate(cli: CLI, network: str, *owners: tuple[str, str]) -> None:
    config = load_network_config(cli.conf_dir, network)
    request = build_request(config, 0)
    with HostLocalIPAM() as ipam:
        for container, ifname in owners:
            ipam.add(request, container, ifname)


def _snapshot(directory: Path) -> dict[str, tuple[bytes | str, int]]:
    state: dict[str, tuple[bytes | str, int]] = {}
    for entry in sorted(directory.iterdir()):
        st = entry.lstat()
        content: bytes | str = os.readlink(entry) if entry.is_symlink() else entry.read_bytes()
        state[entry.name] = (content, st.st_mtime_ns)
    return state


def test_lists_owner_range_set_and_age(cli: CLI) -> None:
    cli.write_conf("10-mynet.conflist", bridge_conflist("mynet", cli.data_dir, ranges=DUAL))
    _allocate(cli, "mynet", ("web-1", "eth0"), ("db-1", "eth1"))
    store = cli.data_dir / "mynet"
    hour_ago = time.time() - 3600
    os.utime(store / "10.23.0.2", (hour_ago, hour_ago))
    rows = cli("ls", "mynet", "--json").json()
    assert [(r["ip"], r["containerId"], r["ifName"], r["rangeSet"], r["store"], r["location"]) for r in rows] == [
        ("10.23.0.2", "web-1", "eth0", 0, "file", str(store)),
        ("10.23.0.3", "db-1", "eth1", 0, "file", str(store)),
        ("fd00:23::2", "web-1", "eth0", 1, "file", str(store)),
        ("fd00:23::3", "db-1", "eth1", 1, "file", str(store)),
    ]
    assert 3600 <= rows[0]["ageSeconds"] < 86400
    assert 0 <= rows[1]["ageSeconds"] < 3600

    run = cli("ls", "mynet")
    assert run.status == 0
    lines = run.out.splitlines()
    assert lines[0] == f"network mynet: 4 reservation(s) in file store {store}"
    assert lines[1].split() == ["ADDRESS", "CONTAINER", "IFNAME", "RANGE", "SET", "AGE"]
    assert lines[2].split()[:4] == ["10.23.0.2", "web-1", "eth0", "0"]
    assert lines[2].split()[4].startswith("1h")


def test_foreign_and_legacy_content_is_shown_not_hidden(cli: CLI) -> None:
    cli.write_conf("10-mynet.conflist", bridge_conflist("mynet", cli.data_dir))
    _allocate(cli, "mynet", ("web-1", "eth0"))
    store = cli.data_dir / "mynet"
    (store / "10.23.0.50").write_text("legacy-id")  # written by host-local before v0.8.0
    (store / "10.23.0.51").write_text("")  # unreadable: keeps its address occupied
    (store / "10.23.0.52").symlink_to("/etc/hostname")  # never followed
    (store / "10.23.0.99").write_text("old\r\neth0")
    (store / "10.99.0.1").write_text("moved\r\neth0")  # outside every range set of today's config
    (store / "not-an-address").write_text("x")
    rows = {r["ip"]: r for r in cli("ls", "mynet", "--json").json()}
    assert sorted(rows) == ["10.23.0.2", "10.23.0.50", "10.23.0.51", "10.23.0.52", "10.23.0.99", "10.99.0.1"]
    assert (rows["10.23.0.50"]["containerId"], rows["10.23.0.50"]["ifName"]) == ("legacy-id", None)
    assert (rows["10.23.0.51"]["containerId"], rows["10.23.0.52"]["containerId"]) == (None, None)
    assert rows["10.99.0.1"]["rangeSet"] is None and rows["10.23.0.99"]["rangeSet"] == 0
    out = cli("ls", "mynet").out
    assert "(unreadable)" in out and "(legacy: any)" in out


def test_ls_changes_nothing_and_creates_nothing(cli: CLI) -> None:
    cli.write_conf("10-mynet.conflist", bridge_conflist("mynet", cli.data_dir))
    assert cli("ls", "mynet").out == "network mynet: 0 reservation(s)\n"
    assert not cli.data_dir.exists()  # no store directory, no lock file made by a listing
    _allocate(cli, "mynet", ("a", "eth0"), ("b", "eth0"))
    store = cli.data_dir / "mynet"
    (store / ".cnicore-1-dead.tmp").write_text("debris a store would sweep")
    before = _snapshot(store)
    cli("ls", "mynet")
    cli("ls", "mynet", "--json")
    assert _snapshot(store) == before


def test_ls_does_not_wait_for_a_busy_store(cli: CLI) -> None:
    cli.write_conf("10-mynet.conflist", bridge_conflist("mynet", cli.data_dir))
    _allocate(cli, "mynet", ("a", "eth0"))
    fd = os.open(cli.data_dir / "mynet" / "lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # an allocation in progress, for as long as it likes
        rows = cli("ls", "mynet", "--json").json()
    finally:
        os.close(fd)
    assert [r["containerId"] for r in rows] == ["a"]


def test_a_file_seen_mid_write_is_read_again_under_the_lock(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.write_conf("10-mynet.conflist", bridge_conflist("mynet", cli.data_dir))
    _allocate(cli, "mynet", ("a", "eth0"))
    store = cli.data_dir / "mynet"
    # A writer (the reference plugin creates, then writes) holds the lock with the file still empty.
    writer = os.open(store / "lock", os.O_RDONLY)
    fcntl.flock(writer, fcntl.LOCK_EX)
    (store / "10.23.0.7").write_text("")
    waits: list[float] = []

    def writer_finishes(seconds: float) -> None:
        # ls is waiting for the lock: the writer completes its file and lets go.
        if not waits:
            (store / "10.23.0.7").write_text("late\r\neth3")
            fcntl.flock(writer, fcntl.LOCK_UN)
        waits.append(seconds)

    monkeypatch.setattr(ls_module, "_sleep", writer_finishes)
    try:
        rows = {r["ip"]: r for r in cli("ls", "mynet", "--json").json()}
    finally:
        os.close(writer)
    assert waits, "ls should have waited for the writer"
    assert (rows["10.23.0.7"]["containerId"], rows["10.23.0.7"]["ifName"]) == ("late", "eth3")


def test_every_host_local_store_of_the_network_and_the_default_data_dir(cli: CLI) -> None:
    other = cli.base / "other-data"
    document: dict[str, Any] = bridge_conflist("mynet", cli.data_dir)
    document["plugins"].append({"type": "bridge", "bridge": "cnt-br1",
                                "ipam": {"type": "host-local", "dataDir": str(other),
                                         "ranges": [[{"subnet": "10.24.0.0/24"}]]}})
    cli.write_conf("10-mynet.conflist", document)
    config = load_network_config(cli.conf_dir, "mynet")
    with HostLocalIPAM() as ipam:
        ipam.add(build_request(config, 0), "a", "eth0")
        ipam.add(build_request(config, 1), "a", "eth1")
    rows = cli("ls", "mynet", "--json").json()
    assert [(r["ip"], r["location"]) for r in rows] == [("10.23.0.2", str(cli.data_dir / "mynet")),
                                                        ("10.24.0.2", str(other / "mynet"))]
    assert "STORE" in cli("ls", "mynet").out.splitlines()[1]


def test_a_network_without_host_local_and_an_unknown_network_are_input_errors(cli: CLI) -> None:
    cli.write_conf("10-lo.conf", {"cniVersion": "1.0.0", "name": "lo", "type": "loopback"})
    run = cli("ls", "lo")
    assert run.status == 1
    assert run.err == "cnicore: network lo has no plugin with host-local IPAM; key plugins = [\"loopback\"]\n"
    run = cli("ls", "nope", "--json")
    assert run.status == 1
    assert json.loads(run.out)["msg"] == f'no net configuration with name "nope" in {cli.conf_dir}'


def test_a_bad_ipam_config_names_the_plugin_and_key(cli: CLI) -> None:
    cli.write_conf("10-x.conflist", bridge_conflist("x", cli.data_dir, ranges=[[{"subnet": "10.0.0.0/40"}]]))
    run = cli("ls", "x", "--json")
    assert run.status == 1
    assert json.loads(run.out)["code"] == 7
    assert "plugins[0].ipam.ranges[0][0].subnet" in json.loads(run.out)["details"]


# ---------------------------------------------------------------------------------------------- etcd store

ETCD = "/usr/bin/etcd"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def etcd_endpoint(tmp_path: Path) -> Iterator[str]:
    """A throwaway single-member etcd on loopback, stopped and removed afterwards."""
    if not os.access(ETCD, os.X_OK):
        pytest.skip(f"etcd server not installed ({ETCD} missing)")
    pytest.importorskip("etcd3gw", reason="the etcd extra (etcd3gw) is not installed")
    client, peer = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
    proc = subprocess.Popen(
        [ETCD, "--name", "cli", "--data-dir", str(tmp_path / "etcd"), "--listen-client-urls", client,
         "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"cli={peer}", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=1) as response:
                    if json.loads(response.read()).get("health") == "true":
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("etcd did not become healthy")
        yield client
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_ls_reads_the_etcd_store_when_configured(cli: CLI, etcd_endpoint: str) -> None:
    document = bridge_conflist("shared", cli.data_dir, ranges=DUAL)
    store = {"type": "etcd", "endpoints": [etcd_endpoint], "prefix": "/cli-test", "host": "node-a"}
    document["plugins"][0]["ipam"]["store"] = store
    cli.write_conf("10-shared.conflist", document)
    _allocate(cli, "shared", ("web-1", "eth0"), ("db-1", "net1"))
    rows = cli("ls", "shared", "--json").json()
    assert [(r["ip"], r["containerId"], r["ifName"], r["rangeSet"], r["ageSeconds"], r["store"]) for r in rows] == [
        ("10.23.0.2", "web-1", "eth0", 0, None, "etcd"),
        ("10.23.0.3", "db-1", "net1", 0, None, "etcd"),
        ("fd00:23::2", "web-1", "eth0", 1, None, "etcd"),
        ("fd00:23::3", "db-1", "net1", 1, None, "etcd"),
    ]
    assert rows[0]["location"] == f"{etcd_endpoint} /cli-test/shared"
    assert not cli.data_dir.exists()  # nothing went to the file store
    out = cli("ls", "shared").out.splitlines()
    assert out[0] == f"network shared: 4 reservation(s) in etcd store {etcd_endpoint} /cli-test/shared"
    assert out[2].split() == ["10.23.0.2", "web-1", "eth0", "0", "-"]
