"""Interoperability with the reference host-local plugin sharing one data directory.

Skipped when the reference plugin is not installed (Debian: containernetworking-plugins).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import support

from cnicore import CNIError
from cnicore.ipam import HostLocalIPAM
from cnicore.spec._validate import MAX_CONTAINER_ID_BYTES
from cnicore.stores import FileStore, parse_ip
from cnicore.stores._file import index_path

pytestmark = pytest.mark.reference


def network(data_dir: Path, name: str = "interop", **extra: Any) -> dict[str, Any]:
    return {"cniVersion": "0.4.0", "name": name,
            "ipam": {"type": "host-local", "dataDir": str(data_dir),
                     "ranges": [[{"subnet": "10.30.0.0/24"}, {"subnet": "10.31.0.0/28"}],
                                [{"subnet": "2001:db8:30::/64"}]]}, **extra}


def go(command: str, conf: dict[str, Any], cid: str, ifname: str = "eth0", cni_args: str = "",
       check: bool = True) -> dict[str, Any]:
    plugin = support.reference_plugin("host-local")
    env = {**os.environ, "CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/x",
           "CNI_IFNAME": ifname, "CNI_PATH": str(plugin.parent), "CNI_ARGS": cni_args}
    out = subprocess.run([str(plugin)], input=json.dumps(conf).encode(), env=env, capture_output=True, check=False)
    if check:
        assert out.returncode == 0, out.stdout
    return json.loads(out.stdout) if out.stdout.strip() else {}


def contents(net: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(net.iterdir())}


def addresses(result: dict[str, Any]) -> list[str]:
    return [ip["address"] for ip in result.get("ips", [])]


def test_same_operations_leave_identical_files(tmp_path: Path) -> None:
    ours_dir, theirs_dir = tmp_path / "ours", tmp_path / "theirs"
    script: list[tuple[str, str, str, str]] = [
        ("ADD", "a", "eth0", ""), ("ADD", "b", "eth0", ""), ("ADD", "a", "eth1", ""), ("DEL", "a", "eth0", ""),
        ("ADD", "c", "eth0", "IP=10.31.0.9"), ("ADD", "d", "eth0", ""), ("DEL", "b", "eth0", ""),
        ("DEL", "nobody", "eth0", ""), ("ADD", "e", "eth0", "IgnoreUnknown=1;K8S_POD_NAME=e;IP=10.30.0.200"),
        ("ADD", "f", "eth0", ""), ("DEL", "c", "eth0", ""),
    ]
    with HostLocalIPAM() as ipam:
        for command, cid, ifname, cni_args in script:
            theirs = go(command, network(theirs_dir), cid, ifname, cni_args)
            if command == "ADD":
                mine = ipam.add(json.dumps(network(ours_dir)), cid, ifname, cni_args)
                assert [str(ip.address) for ip in mine.ips] == addresses(theirs)
                assert [str(ip.gateway) for ip in mine.ips] == [ip["gateway"] for ip in theirs["ips"]]
            else:
                ipam.delete(json.dumps(network(ours_dir)), cid, ifname, cni_args)
            assert contents(ours_dir / "interop") == contents(theirs_dir / "interop"), (command, cid, ifname)
        # Legacy (ID-only) files written by old plugins: both release them the same way.
        for d in (ours_dir, theirs_dir):
            (d / "interop" / "10.30.0.77").write_bytes(b"old")
        go("DEL", network(theirs_dir), "old", "eth0")
        ipam.delete(json.dumps(network(ours_dir)), "old", "eth0")
        assert contents(ours_dir / "interop") == contents(theirs_dir / "interop")


@pytest.mark.parametrize("range_sets", [1, 2])
def test_del_takes_legacy_reservations_as_the_reference_does(tmp_path: Path, range_sets: int) -> None:
    # The reference releases once per range set, so with two sets one DEL also takes the container's legacy
    # (ID-only) files; the exec'd handler, the library and the reference must leave the same files.
    import io

    from cnicore.plugins._hostlocal import HostLocalExecHandler
    from cnicore.plugins._skel import run_exec

    def conf(data_dir: Path) -> dict[str, Any]:
        sets = [[{"subnet": "10.30.0.0/24"}], [{"subnet": "2001:db8:30::/64"}]][:range_sets]
        return {"cniVersion": "0.4.0", "name": "interop",
                "ipam": {"type": "host-local", "dataDir": str(data_dir), "ranges": sets}}

    seed = {"10.30.0.5": b"c1\r\neth0", "10.30.0.6": b"c1", "2001:db8:30::6": b"c1", "10.30.0.7": b"c2"}
    sides = ("theirs", "exec", "library")
    for side in sides:
        (tmp_path / side / "interop").mkdir(parents=True)
        for name, data in seed.items():
            (tmp_path / side / "interop" / name).write_bytes(data)
    go("DEL", conf(tmp_path / "theirs"), "c1")
    env = {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x", "CNI_IFNAME": "eth0",
           "CNI_PATH": "/opt/cni/bin"}
    handler = HostLocalExecHandler()
    try:
        assert run_exec(handler, environ=env, stdin=io.BytesIO(json.dumps(conf(tmp_path / "exec")).encode()),
                        stdout=io.BytesIO(), stderr=io.BytesIO(), reference_codes=True) == 0
    finally:
        handler.close()
    with HostLocalIPAM() as ipam:
        ipam.delete(conf(tmp_path / "library"), "c1", "eth0")
    theirs = {name: data for name, data in contents(tmp_path / "theirs" / "interop").items() if name in seed}
    assert sorted(theirs) == (["10.30.0.6", "10.30.0.7", "2001:db8:30::6"] if range_sets == 1 else ["10.30.0.7"])
    for side in sides[1:]:
        assert {name: data for name, data in contents(tmp_path / side / "interop").items() if name in seed} == theirs


def test_each_releases_the_others_reservations(tmp_path: Path) -> None:
    conf = network(tmp_path)
    with HostLocalIPAM() as ipam:
        go_result = go("ADD", conf, "from-go")
        mine = ipam.add(json.dumps(conf), "from-us", "eth0")
        assert set(addresses(go_result)).isdisjoint(str(ip.address) for ip in mine.ips)
        go("CHECK", conf, "from-us")
        ipam.check(json.dumps(conf), "from-go", "eth0")
        go("DEL", conf, "from-us")
        ipam.delete(json.dumps(conf), "from-go", "eth0")
        assert [n for n in os.listdir(tmp_path / "interop") if parse_ip(n)] == []
        failed = go("CHECK", conf, "from-us", check=False)
        assert failed["msg"] == "host-local: Failed to find address added by container from-us"


def test_concurrent_allocation_from_one_directory(tmp_path: Path) -> None:
    conf = network(tmp_path)
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def go_worker(n: int) -> None:
        try:
            for i in range(10):
                results[f"go{n}-{i}"] = addresses(go("ADD", conf, f"go{n}-{i}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=go_worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    with HostLocalIPAM() as ipam:
        for i in range(40):
            results[f"py-{i}"] = [str(ip.address) for ip in ipam.add(json.dumps(conf), f"py-{i}", "eth0").ips]
        for t in threads:
            t.join()
    assert errors == []
    flat = [ip for ips in results.values() for ip in ips]
    assert len(flat) == len(set(flat)) == 2 * 70
    files = contents(tmp_path / "interop")
    for cid, ips in results.items():
        for address in ips:
            assert files[address.split("/")[0]] == f"{cid}\r\neth0".encode()


def test_flock_excludes_the_reference_plugin(tmp_path: Path) -> None:
    conf = network(tmp_path)
    plugin = support.reference_plugin("host-local")
    with FileStore(tmp_path, "interop") as store, store.transaction():
        env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "blocked", "CNI_NETNS": "x",
               "CNI_IFNAME": "eth0", "CNI_PATH": str(plugin.parent)}
        proc = subprocess.Popen([str(plugin)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(conf).encode())
        proc.stdin.close()
        time.sleep(0.5)
        assert proc.poll() is None  # waiting for our lock
        assert [n for n in os.listdir(tmp_path / "interop") if parse_ip(n)] == []
    assert proc.stdout is not None
    out = proc.stdout.read()
    assert proc.wait(timeout=30) == 0 and addresses(json.loads(out)) == ["10.30.0.2/24", "2001:db8:30::2/64"]


def test_the_reference_reads_every_file_of_the_network_but_not_the_index(tmp_path: Path) -> None:
    # Why the persisted index lives beside the data directory and not among the reservations: the reference's
    # DEL removes every file of the network directory (whatever its name, in subdirectories too) whose content
    # matches, and reads them all on every ADD and DEL.
    conf = network(tmp_path)
    FileStore(tmp_path, "interop").close()  # writes the index
    net = tmp_path / "interop"
    (net / "notes.txt").write_bytes(b"victim\r\neth0")
    (net / ".hidden").write_bytes(b"victim\r\neth0")
    (net / "sub").mkdir()
    (net / "sub" / "x").write_bytes(b"victim\r\neth0")
    index = index_path(tmp_path, "interop")
    assert index is not None
    before = index.read_bytes()
    go("DEL", conf, "victim")
    assert sorted(p.name for p in net.iterdir()) == ["lock", "sub"] and list((net / "sub").iterdir()) == []
    assert index.read_bytes() == before
    go("ADD", conf, "after")
    assert index.read_bytes() == before  # the reference leaves the index alone


def test_alternating_with_the_reference_with_the_persisted_index(tmp_path: Path) -> None:
    # The reference, executed-style stores of ours (one store per operation, as an exec'd plugin) and a
    # long-lived one take turns on one directory; the persisted index must never mislead any of ours.
    import random

    from cnicore.stores._index import ReservationIndex
    from cnicore.stores._indexfile import parse_index

    rng = random.Random(5)
    conf = network(tmp_path)
    raw = json.dumps(conf)
    live: dict[str, list[str]] = {}
    steps = 0
    with HostLocalIPAM() as long_lived:
        while steps < 60:
            steps += 1
            who = rng.choice(["go", "exec", "long"])
            if live and rng.random() < 0.4:
                cid = rng.choice(sorted(live))
                if who == "go":
                    go("DEL", conf, cid)
                elif who == "exec":
                    with HostLocalIPAM() as once:
                        once.delete(raw, cid, "eth0")
                else:
                    long_lived.delete(raw, cid, "eth0")
                del live[cid]
                continue
            cid = f"{who}-{steps}"
            if who == "go":
                got = addresses(go("ADD", conf, cid))
            else:
                ipam = HostLocalIPAM() if who == "exec" else long_lived
                got = [str(ip.address) for ip in ipam.add(raw, cid, "eth0").ips]
                if who == "exec":
                    ipam.close()
            held = {a for ips in live.values() for a in ips}
            assert held.isdisjoint(got), (cid, got)
            live[cid] = got
            if rng.random() < 0.2:
                with HostLocalIPAM() as once:
                    for other in live:
                        once.check(raw, other, "eth0")
                go("CHECK", conf, rng.choice(sorted(live)))
    files = {name: data for name, data in contents(tmp_path / "interop").items() if parse_ip(name) is not None}
    assert files == {a.split("/")[0]: f"{cid}\r\neth0".encode() for cid, ips in live.items() for a in ips}
    st = os.stat(tmp_path / "interop")
    index = index_path(tmp_path, "interop")
    assert index is not None
    loaded = parse_index(index.read_bytes(), (st.st_dev, st.st_ino), ReservationIndex)
    if loaded is not None and loaded.tip.state == (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns):
        assert {str(r.ip): r.owner.text().encode() for r in loaded.index.items() if r.owner} == files


# Keys as Go's decoder matches them (the last matching key wins, whatever its case; the long s folds to "s")
# and nulls as it treats them (a null CIDR fails to parse, a null address or list is absent).
_DECODING_CASES = [
    '"ranges":[[{"subnet":"10.41.0.0/24"}]],"Ranges":[[{"subnet":"10.42.0.0/24"}]]',
    '"Ranges":[[{"subnet":"10.42.0.0/24"}]],"ranges":[[{"subnet":"10.41.0.0/24"}]]',
    '"ranges":[[{"\u017fubnet":"10.43.0.0/24"}]]',
    '"ranges":[[{"subnet":null}]]',
    '"subnet":null,"ranges":[[{"subnet":"10.44.0.0/24"}]]',
    '"ranges":[[{"subnet":"10.45.0.0/24","gateway":null,"rangeStart":null}]],"routes":null',
    '"ranges":[[{"subnet":"10.46.0.0/24"}]],"routes":[{"dst":null}]',
    '"ranges":[[{"subnet":"10.47.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0","gw":null,"mtu":null}]',
    '"ranges":[[{"subnet":"10.48.0.0/24"}]],"resolvConf":null,"type":null',
    '"ranges":[[{"subnet":"10.49.0.0/24","Subnet":"10.50.0.0/24"}]]',
    '"ranges":[null]',
]


@pytest.mark.parametrize("ipam", _DECODING_CASES)
def test_keys_and_nulls_decode_as_the_reference_decodes_them(tmp_path: Path, ipam: str) -> None:
    import io

    from cnicore.plugins import HostLocalPlugin, run_plugin
    from cnicore.plugins._hostlocal import HostLocalExecHandler
    from cnicore.plugins._skel import run_exec

    def text(data_dir: Path) -> bytes:
        return ('{"cniVersion":"0.4.0","name":"dec","ipam":{"type":"host-local",' + ipam +
                f',"dataDir":"{data_dir}"}}}}').encode()

    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x", "CNI_IFNAME": "eth0",
           "CNI_PATH": "/opt/cni/bin"}
    plugin = support.reference_plugin("host-local")
    done = subprocess.run([str(plugin)], input=text(tmp_path / "go"), env={**env, "CNI_PATH": str(plugin.parent)},
                          capture_output=True, check=False)
    expected = json.loads(done.stdout)
    for kind in ("exec", "plugin"):
        out = io.BytesIO()
        common: dict[str, Any] = {"environ": env, "stdin": io.BytesIO(text(tmp_path / kind)), "stdout": out,
                                  "stderr": io.BytesIO(), "reference_codes": True}
        target = HostLocalExecHandler() if kind == "exec" else HostLocalPlugin()
        try:
            code = (run_exec if kind == "exec" else run_plugin)(target, **common)  # type: ignore[operator]
        finally:
            target.close()
        got = json.loads(out.getvalue())
        assert (code != 0) == (done.returncode != 0), (kind, got, expected)
        if code:
            assert (got["code"], got["msg"]) == (expected["code"], expected["msg"]), kind
        else:
            assert addresses(got) == addresses(expected), kind
            assert got.get("routes") == expected.get("routes"), kind


def test_a_route_without_dst_is_the_default_route_where_the_reference_prints_nil(tmp_path: Path) -> None:
    # The one decoding deviation, on purpose: the reference's zero IPNet prints as "<nil>", which no runtime can
    # parse back; ours is 0.0.0.0/0.
    conf = network(tmp_path)
    conf["ipam"]["routes"] = [{"gw": "10.30.0.1"}]
    expected = go("ADD", conf, "c1")
    assert expected["routes"] == [{"dst": "<nil>", "gw": "10.30.0.1"}]
    with HostLocalIPAM() as ipam:
        ours = ipam.add(conf, "c2", "eth0")
    assert [(str(r.dst), str(r.gw)) for r in ours.routes] == [("0.0.0.0/0", "10.30.0.1")]


@pytest.mark.parametrize("length", [5000, MAX_CONTAINER_ID_BYTES])
def test_a_long_container_id_owns_its_one_address_as_in_the_reference(tmp_path: Path, length: int) -> None:
    # Up to the longest CNI_CONTAINERID the kernel passes: the owner text reads back as itself, so a second ADD
    # is refused as a duplicate, CHECK finds the address and DEL frees it, as the reference does.
    from cnicore.plugins import install_plugins

    install_plugins(tmp_path / "bin")
    cid = "c" * length
    runs: dict[str, list[tuple[int, Any]]] = {}
    files: dict[str, list[dict[str, bytes]]] = {}
    for who, plugin in (("ours", tmp_path / "bin" / "host-local"), ("theirs", support.reference_plugin("host-local"))):
        conf = network(tmp_path / who)
        env = {**os.environ, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/x", "CNI_IFNAME": "eth0",
               "CNI_PATH": str(plugin.parent), "CNI_ARGS": ""}
        runs[who], files[who] = [], []
        for command in ("ADD", "ADD", "CHECK", "DEL", "DEL"):
            out = subprocess.run([str(plugin)], input=json.dumps(conf).encode(), env={**env, "CNI_COMMAND": command},
                                 capture_output=True, check=False, timeout=60)
            runs[who].append((out.returncode, json.loads(out.stdout) if out.stdout.strip() else None))
            files[who].append({name: data for name, data in contents(tmp_path / who / "interop").items()
                               if parse_ip(name) is not None})
    assert runs["ours"] == runs["theirs"]
    assert files["ours"] == files["theirs"]
    assert [code for code, _ in runs["ours"]] == [0, 1, 0, 0, 0]
    assert "duplicate allocation is not allowed" in runs["ours"][1][1]["msg"]
    assert files["ours"][-1] == {}


def test_check_ignores_the_configured_ranges_as_the_reference_does(tmp_path: Path) -> None:
    """CHECK with a configuration whose ranges no longer hold the address: both succeed (owner lookup only)."""
    conf = network(tmp_path)
    moved = {**conf, "ipam": {**conf["ipam"], "ranges": [[{"subnet": "10.99.0.0/24"}]]}}
    with HostLocalIPAM() as ipam:
        ipam.add(json.dumps(conf), "from-us", "eth0")
        go("ADD", conf, "from-go")
        go("CHECK", moved, "from-us")
        assert ipam.check(json.dumps(moved), "from-go", "eth0")
        failed = go("CHECK", moved, "nobody", check=False)
        assert failed["msg"] == "host-local: Failed to find address added by container nobody"


def test_a_long_lived_store_follows_the_reference_between_its_own_operations(tmp_path: Path) -> None:
    # A watching store announces its own events and skips them on its next look at the queue: what the reference
    # does in between (create and write a file, rewrite the cursor with O_TRUNC, remove a file) must all be seen.
    conf = network(tmp_path)

    def v4(result: Any) -> ipaddress.IPv4Address:
        texts = addresses(result) if isinstance(result, dict) else [str(ip.address) for ip in result.ips]
        return next(ipaddress.IPv4Address(t.split("/")[0]) for t in texts if "." in t)

    with HostLocalIPAM() as ipam:
        for i in range(6):
            mine = v4(ipam.add(json.dumps(conf), f"ours-{i}", "eth0"))
            theirs = v4(go("ADD", conf, f"go-{i}"))
            assert theirs == mine + 1
            ipam.check(json.dumps(conf), f"go-{i}", "eth0")
            go("DEL", conf, f"go-{i}")
            # The reference's cursor now names the address it freed: the next ADD goes on after it, as the
            # reference's own would; a store that missed the rewrite would go on from its own and take it again.
            assert v4(ipam.add(json.dumps(conf), f"ours-{i}", "eth1")) == mine + 2
            go("CHECK", conf, f"ours-{i}")
            go("DEL", conf, f"ours-{i}")  # eth0's files, removed behind the store's back
            with pytest.raises(CNIError):
                ipam.check(json.dumps(conf), f"ours-{i}", "eth0")
            ipam.delete(json.dumps(conf), f"ours-{i}", "eth1")
        assert [n for n in os.listdir(tmp_path / "interop") if parse_ip(n)] == []
