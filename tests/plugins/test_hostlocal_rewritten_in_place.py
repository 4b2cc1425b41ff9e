"""A reservation file rewritten in place (same inode, another owner) is the new owner's, whatever the store saw.

Nothing in the directory's state changes when a file is rewritten in place, so a
store that does not watch with inotify (an executed plugin, a store opened with
``watch=False``, a long-lived store before it starts watching) verifies the
directory before every lookup by owner, and a watching store is told. Either
way the new owner's ADD is refused as a duplicate (no second address), its CHECK
finds the address and its DEL frees the file; the old owner's DEL leaves it.
Through the executed plugin's two paths (the exec handler and the library's
plugin, each opening a store per operation from the persisted index) and through
the library with long-lived stores in both watch modes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import run_host_local

from cnicore import AddressConflictError
from cnicore.ipam import add, check, delete, load_ipam_config
from cnicore.stores import FileStore, Owner

NET = "rw"
SUBNET = "10.9.0.0/24"
# Long owners too: an ID past a page (the reference reads such files whole; so must the store).
CIDS = [("old", "new"), ("o" * 5000, "n" * 5000)]


def _config(data_dir: Path) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": NET, "type": "host-local",
            "ipam": {"type": "host-local", "subnet": SUBNET, "dataDir": str(data_dir)}}


def _rewrite_in_place(path: Path, content: bytes) -> None:
    inode = path.stat().st_ino
    with path.open("r+b") as handle:
        handle.write(content)
        handle.truncate()
    assert path.stat().st_ino == inode


def _reservations(net: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in net.iterdir() if p.name[:1].isdigit()}


@pytest.mark.parametrize("kind", ["handler", "plugin"])
@pytest.mark.parametrize(("old", "new"), CIDS, ids=["short", "long"])
def test_exec_never_gives_the_new_owner_a_second_address(tmp_path: Path, kind: str, old: str, new: str) -> None:
    data_dir = tmp_path / "data"
    net = data_dir / NET
    config = _config(data_dir)

    def run(command: str, cid: str) -> tuple[int, str]:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/x",
               "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
        return run_host_local(kind, env, config, data_dir)

    assert run("ADD", old)[0] == 0
    assert run("ADD", "bystander")[0] == 0  # (a persisted index that names more than the rewritten file)
    (name,) = [n for n, content in _reservations(net).items() if content == f"{old}\r\neth0".encode()]
    _rewrite_in_place(net / name, f"{new}\r\neth0".encode())

    code, out = run("ADD", new)
    assert code != 0, out
    assert "duplicate allocation is not allowed" in json.loads(out)["msg"]
    assert run("CHECK", new)[0] == 0
    assert run("DEL", old)[0] == 0
    assert (net / name).read_bytes() == f"{new}\r\neth0".encode()  # not the old owner's to free
    assert run("DEL", new)[0] == 0
    assert name not in _reservations(net)
    assert len(_reservations(net)) == 1  # the bystander's
    code, out = run("ADD", new)
    assert code == 0, out


@pytest.mark.parametrize("watch", [False, True])
@pytest.mark.parametrize(("old", "new"), CIDS, ids=["short", "long"])
def test_library_store_never_gives_the_new_owner_a_second_address(tmp_path: Path, watch: bool, old: str,
                                                                  new: str) -> None:
    config = load_ipam_config(_config(tmp_path / "data"))
    net = tmp_path / "data" / NET
    with FileStore(tmp_path / "data", NET, watch=watch) as store:
        # Past the store's first operations: a watching store watches by now.
        for i in range(4):
            add(config, store, f"warm-{i}", "eth0")
        (allocated,) = add(config, store, old, "eth0").ips
        name = str(allocated.address.ip)
        _rewrite_in_place(net / name, f"{new}\r\neth0".encode())
        with pytest.raises(AddressConflictError, match="duplicate allocation is not allowed"):
            add(config, store, new, "eth0")
        assert [str(ip) for ip in store.find_owner(Owner.attachment(new, "eth0"))] == [name]
        assert check(config, store, new, "eth0")
        assert delete(config, store, old, "eth0") == ()
        assert (net / name).exists()
        assert [str(ip) for ip in delete(config, store, new, "eth0")] == [name]
        assert not (net / name).exists()
        assert len(_reservations(net)) == 4

