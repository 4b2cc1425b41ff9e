"""GC's keep/release decision, through HostLocalIPAM on the memory and the file store.

The rule (the reference's GC): a reservation is kept when its owner is one of the valid attachments
``(containerID, ifname)``; a legacy ID-only reservation (written before interface names were recorded) is
kept when its container has any valid attachment; a file whose content names no owner is never released.
A live container does not keep its other interfaces' addresses: an attachment the runtime no longer lists is
a leak, whatever else its container still holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import examples

from cnicore import NotFoundError
from cnicore.ipam import HostLocalIPAM, IPAMConfig
from cnicore.stores import FileStore, IPStore, MemoryStore, Owner, parse_ip

NETWORK = "gcnet"
Factory = Callable[[IPAMConfig], IPStore]


def _config(data_dir: Path, version: str = "1.1.0") -> dict[str, Any]:
    return {"cniVersion": version, "name": NETWORK,
            "ipam": {"type": "host-local", "subnet": "10.50.0.0/24", "dataDir": str(data_dir)}}


def _factories(data_dir: Path) -> dict[str, Factory]:
    memory = MemoryStore()
    return {"memory": lambda _config: memory,
            "file": lambda config: FileStore(config.data_dir, config.name)}


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_a_live_container_keeps_only_its_valid_attachments(tmp_path: Path, kind: str) -> None:
    config = _config(tmp_path)
    with HostLocalIPAM(_factories(tmp_path)[kind]) as ipam:
        held = {(cid, ifname): str(ipam.add(config, cid, ifname).ips[0].ip)
                for cid, ifname in [("c1", "eth0"), ("c1", "eth1"), ("c2", "eth0"), ("c3", "eth0")]}
        # c1 is live with eth0 only; c2 is live, but with another interface; c3 is gone.
        released = ipam.gc(config, [("c1", "eth0"), ("c2", "eth1")])
        assert sorted(str(r.ip) for r in released) == sorted(held[a] for a in [("c1", "eth1"), ("c2", "eth0"),
                                                                                ("c3", "eth0")])
        assert {r.owner for r in released} == {Owner.attachment("c1", "eth1"), Owner.attachment("c2", "eth0"),
                                               Owner.attachment("c3", "eth0")}
        assert [str(ip) for ip in ipam.check(config, "c1", "eth0")] == [held[("c1", "eth0")]]
        for cid, ifname in [("c1", "eth1"), ("c2", "eth0"), ("c3", "eth0")]:
            with pytest.raises(NotFoundError):
                ipam.check(config, cid, ifname)
        # Released addresses are free again; a second GC with the same list finds nothing.
        store = ipam.store_for(ipam.load(config))
        assert all(store.reservation(r.ip) is None for r in released)
        assert ipam.gc(config, [("c1", "eth0"), ("c2", "eth1")]) == ()


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_gc_with_no_valid_attachment_releases_every_owned_reservation(tmp_path: Path, kind: str) -> None:
    config = _config(tmp_path)
    with HostLocalIPAM(_factories(tmp_path)[kind]) as ipam:
        for cid in ("a", "b"):
            ipam.add(config, cid, "eth0")
        assert sorted(str(r.ip) for r in ipam.gc(config, [])) == ["10.50.0.2", "10.50.0.3"]
        assert [str(r.ip) for r in ipam.store_for(ipam.load(config)).reservations()] == []


def test_legacy_reservations_follow_their_container(tmp_path: Path) -> None:
    """A legacy ``<containerID>`` file is kept while any attachment of that container is valid."""
    net = tmp_path / NETWORK
    config = _config(tmp_path)
    with HostLocalIPAM() as ipam:
        ipam.add(config, "live", "eth0")
        for ip, content in [("10.50.0.10", b"live"), ("10.50.0.11", b"dead"), ("10.50.0.12", b"")]:
            (net / ip).write_bytes(content)
        released = ipam.gc(config, [("live", "eth5")])
        # live's eth0 is not in the list: its exact reservation goes, its legacy one stays (live is live).
        assert sorted(str(r.ip) for r in released) == ["10.50.0.11", "10.50.0.2"]
        assert sorted(p.name for p in net.iterdir() if parse_ip(p.name) is not None) == ["10.50.0.10",
                                                                                          "10.50.0.12"]


_CIDS = ["a", "b", "c"]
_IFNAMES = ["eth0", "eth1"]
_OWNERS = st.one_of(st.none(), st.builds(Owner, container_id=st.sampled_from(_CIDS)),
                    st.builds(Owner.attachment, st.sampled_from(_CIDS), st.sampled_from(_IFNAMES)))


@settings(max_examples=examples())
@given(st.dictionaries(st.integers(2, 40), _OWNERS, max_size=12),
       st.lists(st.tuples(st.sampled_from(_CIDS), st.sampled_from(_IFNAMES)), max_size=4))
def test_gc_releases_exactly_the_reservations_of_no_valid_attachment(held: dict[int, Owner | None],
                                                                      valid: list[tuple[str, str]]) -> None:
    store = MemoryStore({parse_ip(f"10.50.0.{n}"): owner for n, owner in held.items()})
    live = {cid for cid, _ifname in valid}

    def kept(owner: Owner | None) -> bool:
        if owner is None:
            return True  # unreadable content: never ours to release
        if owner.legacy:
            return owner.container_id in live
        return (owner.container_id, owner.ifname) in valid

    with HostLocalIPAM(lambda _config: store) as ipam:
        released = ipam.gc(_config(Path("/nonexistent")), valid)
    assert sorted((r.ip.value, r.owner) for r in released) == sorted(
        (parse_ip(f"10.50.0.{n}").value, owner) for n, owner in held.items() if not kept(owner))
    assert sorted(r.ip.value for r in store.reservations()) == sorted(
        parse_ip(f"10.50.0.{n}").value for n, owner in held.items() if kept(owner))
