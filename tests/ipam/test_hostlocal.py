"""ADD/DEL/CHECK/GC through the facade: the reference's host_local_test.go cases, on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from support import examples

from cnicore._errors import (
    AddressConflictError,
    AddressExhaustedError,
    InvalidConfigError,
    InvalidEnvironmentError,
    NotFoundError,
    UnknownContainerError,
)
from cnicore.ipam import HostLocalIPAM, add, check, delete, gc, load_ipam_config, make_owner
from cnicore.stores import MemoryStore, Owner, parse_ip
from cnicore.testing._ipam import ipam_configs

VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def config(data_dir: Path, version: str = "1.0.0", **ipam: Any) -> str:
    body = {"type": "host-local", "dataDir": str(data_dir), **ipam}
    return json.dumps({"cniVersion": version, "name": "mynet", "type": "ipvlan", "master": "foo0", "ipam": body})


@pytest.mark.parametrize("version", VERSIONS)
def test_add_and_del_dual_stack(tmp_path: Path, version: str) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.3\ndomain example.com\n")
    conf = config(tmp_path, version, resolvConf=str(resolv),
                  ranges=[[{"subnet": "10.1.2.0/24"}, {"subnet": "10.2.2.0/24"}], [{"subnet": "2001:db8:1::0/64"}]],
                  routes=[{"dst": "0.0.0.0/0"}, {"dst": "::/0"}, {"dst": "192.168.0.0/16", "gw": "1.1.1.1"},
                          {"dst": "2001:db8:2::0/64", "gw": "2001:db8:3::1"}])
    net = tmp_path / "mynet"
    with HostLocalIPAM() as ipam:
        got = ipam.add(conf, "dummy", "eth0")
        assert [(str(i.address), str(i.gateway)) for i in got.ips] == [
            ("10.1.2.2/24", "10.1.2.1"), ("2001:db8:1::2/64", "2001:db8:1::1")]
        assert [str(r.dst) for r in got.routes] == ["0.0.0.0/0", "::/0", "192.168.0.0/16", "2001:db8:2::/64"]
        assert got.dns.nameservers == ("192.0.2.3",) and got.dns.domain == "example.com"
        assert (net / "10.1.2.2").read_bytes() == b"dummy\r\neth0"
        assert (net / "2001:db8:1::2").read_bytes() == b"dummy\r\neth0"
        assert (net / "last_reserved_ip.0").read_bytes() == b"10.1.2.2"
        assert (net / "last_reserved_ip.1").read_bytes() == b"2001:db8:1::2"
        assert (net / "10.1.2.2").stat().st_mode & 0o777 == 0o600
        ipam.check(conf, "dummy", "eth0")
        ipam.delete(conf, "dummy", "eth0")
        assert not (net / "10.1.2.2").exists() and not (net / "2001:db8:1::2").exists()
        with pytest.raises(NotFoundError) as info:
            ipam.check(conf, "dummy", "eth0")
        assert info.value.msg == "host-local: Failed to find address added by container dummy"


def test_per_interface_and_networks(tmp_path: Path) -> None:
    conf = config(tmp_path, subnet="10.1.2.0/24")
    with HostLocalIPAM() as ipam:
        assert str(ipam.add(conf, "dummy", "eth0").ips[0].address) == "10.1.2.2/24"
        assert str(ipam.add(conf, "dummy", "eth1").ips[0].address) == "10.1.2.3/24"
        ipam.delete(conf, "dummy", "eth0")
        assert not (tmp_path / "mynet/10.1.2.2").exists()
        assert (tmp_path / "mynet/10.1.2.3").read_bytes() == b"dummy\r\neth1"


def test_repeat_add_fails_other_id_succeeds(tmp_path: Path) -> None:
    conf = config(tmp_path, subnet="10.1.2.0/24")
    with HostLocalIPAM() as ipam:
        ipam.add(conf, "dummy", "eth0")
        with pytest.raises(AddressConflictError) as info:
            ipam.add(conf, "dummy", "eth0")
        assert info.value.msg == ("failed to allocate for range 0: 10.1.2.2 has been allocated to dummy, "
                                  "duplicate allocation is not allowed")
        assert str(ipam.add(conf, "other", "eth0").ips[0].address) == "10.1.2.3/24"


def test_legacy_files_and_unknown_ids(tmp_path: Path) -> None:
    conf = config(tmp_path, subnet="10.1.2.0/24")
    net = tmp_path / "mynet"
    net.mkdir()
    (net / "10.1.2.23").write_bytes(b"dummy")
    with HostLocalIPAM() as ipam:
        ipam.check(conf, "dummy", "eth0")
        ipam.delete(conf, "unknown", "eth0")
        assert (net / "10.1.2.23").exists()
        ipam.delete(conf, "dummy", "eth0")
        assert not (net / "10.1.2.23").exists()


def test_whitespace_is_trimmed_from_container_ids(tmp_path: Path) -> None:
    conf = config(tmp_path, subnet="10.1.2.0/24")
    with HostLocalIPAM() as ipam:
        ipam.add(conf, "   dummy\n ", "eth0")
        assert (tmp_path / "mynet/10.1.2.2").read_bytes() == b"dummy\r\neth0"
        ipam.delete(conf, "dummy", "eth0")
        assert not (tmp_path / "mynet/10.1.2.2").exists()


def test_custom_ips(tmp_path: Path) -> None:
    base = {"cniVersion": "0.3.1", "name": "mynet",
            "ipam": {"type": "host-local", "dataDir": str(tmp_path),
                     "ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "10.1.3.0/24"}],
                                [{"subnet": "2001:db8:1::/64"}]]},
            "args": {"cni": {"ips": ["10.1.3.88", "2001:db8:1::999"]}}}
    with HostLocalIPAM() as ipam:
        got = ipam.add(json.dumps(base), "dummy", "eth0")
        assert [str(i.address) for i in got.ips] == ["10.1.3.88/24", "2001:db8:1::999/64"]
        assert [str(i.gateway) for i in got.ips] == ["10.1.3.1", "2001:db8:1::1"]
        leftover = {**base, "args": {"cni": {"ips": ["10.1.2.88", "10.1.2.99"]}}}
        with pytest.raises(InvalidConfigError) as info:
            ipam.add(json.dumps(leftover), "x2", "eth0")
        assert info.value.msg == "failed to allocate all requested IPs: 10.1.2.99"
        # All or nothing: nothing of the failed ADD remains.
        assert not (tmp_path / "mynet/10.1.2.88").exists()
        assert [p.name for p in (tmp_path / "mynet").iterdir() if p.name.startswith("2001")] == ["2001:db8:1::999"]


def test_two_ranges_custom_ips_need_0_3_0(tmp_path: Path) -> None:
    for version in ("0.1.0", "0.2.0"):
        conf = json.dumps({"cniVersion": version, "name": "mynet",
                           "ipam": {"type": "host-local", "dataDir": str(tmp_path),
                                    "ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/24"}]]},
                           "args": {"cni": {"ips": ["10.1.2.88", "10.1.3.77"]}}})
        with pytest.raises(InvalidConfigError, match=f"CNI version {version} does not support more than 1"):
            load_ipam_config(conf)


def test_failed_add_releases_only_its_own_reservations() -> None:
    conf = load_ipam_config({"cniVersion": "1.0.0", "name": "n",
                             "ipam": {"ranges": [[{"subnet": "10.0.0.0/24"}],
                                                 [{"subnet": "10.1.0.0/30"}]]}})
    store = MemoryStore()
    # The attachment already holds an address in set 1 (e.g. from an older config): ADD fails there.
    assert store.reserve(parse_ip("10.1.0.2"), Owner.attachment("c", "eth0"), "1")
    with pytest.raises(AddressConflictError, match="failed to allocate for range 1"):
        add(conf, store, "c", "eth0")
    assert [r.ip for r in store.reservations()] == [parse_ip("10.1.0.2")]


def test_gc_rules() -> None:
    conf = load_ipam_config({"cniVersion": "1.1.0", "name": "n", "ipam": {"subnet": "10.0.0.0/24"}})
    store = MemoryStore({parse_ip("10.0.0.50"): Owner(container_id="legacy-live"),
                         parse_ip("10.0.0.51"): Owner(container_id="legacy-dead"),
                         parse_ip("10.0.0.52"): None})
    for cid in ("a", "b", "c"):
        add(conf, store, cid, "eth0")
    released = gc(store, [("a", "eth0"), ("legacy-live", "eth1")])
    assert sorted(str(r.ip) for r in released) == ["10.0.0.3", "10.0.0.4", "10.0.0.51"]
    assert sorted(str(r.ip) for r in store.reservations()) == ["10.0.0.2", "10.0.0.50", "10.0.0.52"]
    assert gc(store, [("a", "eth0"), ("legacy-live", "eth1")]) == ()
    assert delete(conf, store, "a", "eth0") == (parse_ip("10.0.0.2"),)


@settings(max_examples=examples(scale=0.4))
@given(ipam_configs(max_sets=2, free=4))
def test_generated_configs_allocate_exactly_their_free_addresses(raw: dict[str, Any]) -> None:
    conf = load_ipam_config(raw)
    store = MemoryStore()
    for i in range(4):
        got = add(conf, store, f"c{i}", "eth0")
        assert all(rs.contains(ip.ip) for rs, ip in zip(conf.range_sets, got.ips, strict=True))
    with pytest.raises(AddressExhaustedError):
        add(conf, store, "one-too-many", "eth0")
    assert len(list(store.reservations())) == 4 * len(conf.range_sets)
    assert gc(store, []) and list(store.reservations()) == []


@pytest.mark.parametrize(("range_sets", "legacy_left"), [(1, True), (2, False), (3, False)])
def test_del_releases_once_per_range_set_so_legacy_reservations_go_with_two(range_sets: int,
                                                                            legacy_left: bool) -> None:
    # The reference's DEL runs its release once per range set: the first pass takes the attachment's own
    # reservations, a second finds none left and takes the container's legacy (ID-only) ones. One pass in all
    # would leave those behind with two range sets.
    subnets = ["10.7.0.0/24", "10.8.0.0/24", "fd00:7::/64"][:range_sets]
    conf = json.dumps({"cniVersion": "1.0.0", "name": "n", "ipam": {
        "type": "host-local", "ranges": [[{"subnet": s}] for s in subnets]}})
    store = MemoryStore()
    store.reserve(parse_ip("10.7.0.5"), Owner(container_id="c1", ifname="eth0"), "0")
    store.reserve(parse_ip("10.7.0.6"), Owner(container_id="c1"), "0")
    store.reserve(parse_ip("10.7.0.7"), Owner(container_id="c2"), "0")
    released = delete(load_ipam_config(conf), store, "c1", "eth0")
    expected = ["10.7.0.5"] if legacy_left else ["10.7.0.5", "10.7.0.6"]
    assert sorted(map(str, released)) == expected
    assert (store.reservation(parse_ip("10.7.0.6")) is not None) == legacy_left
    assert store.reservation(parse_ip("10.7.0.7")) is not None


def test_check_finds_an_address_whatever_the_configured_ranges(tmp_path: Path) -> None:
    """As the reference's CHECK (FindByID): the owner is looked up; the configuration's ranges are not consulted."""
    store = MemoryStore()
    first = load_ipam_config(config(tmp_path, subnet="10.1.2.0/24"))
    elsewhere = load_ipam_config(config(tmp_path, ranges=[[{"subnet": "10.9.0.0/24"}],
                                                          [{"subnet": "2001:db8:9::/64"}]]))
    held = add(first, store, "c1", "eth0")
    assert check(elsewhere, store, "c1", "eth0") == tuple(ip.ip for ip in held.ips) == (parse_ip("10.1.2.2"),)
    with pytest.raises(NotFoundError):
        check(elsewhere, store, "c2", "eth0")
    assert delete(elsewhere, store, "c1", "eth0") == (parse_ip("10.1.2.2"),)
    with pytest.raises(NotFoundError):
        check(first, store, "c1", "eth0")


def test_make_owner_is_the_owner_an_add_records(tmp_path: Path) -> None:
    store = MemoryStore()
    owner = make_owner(" c1\t", "eth0")
    assert owner == Owner.attachment("c1", "eth0")
    held = add(load_ipam_config(config(tmp_path, subnet="10.1.2.0/24")), store, " c1\t", "eth0")
    reservation = store.reservation(held.ips[0].ip)
    assert reservation is not None and reservation.owner == owner
    with pytest.raises(UnknownContainerError) as missing:
        make_owner(" ", "eth0")
    assert missing.value.msg == "missing containerID"
    with pytest.raises(InvalidEnvironmentError, match="invalid container ID for a reservation: 'c 1'"):
        make_owner("c 1", "eth0")
    with pytest.raises(InvalidEnvironmentError, match="invalid interface name for a reservation: ''"):
        make_owner("c1", "")
