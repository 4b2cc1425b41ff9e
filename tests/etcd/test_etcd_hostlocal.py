"""host-local IPAM on the etcd store, selected by ``ipam.store``, against a real etcd: the facade end to end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netaddr import IPAddress

from cnicore._errors import AddressExhaustedError, InvalidConfigError, NotFoundError
from cnicore.ipam import HostLocalIPAM
from cnicore.stores import EtcdStore, Owner, Reservation


@pytest.fixture
def ipam() -> Iterator[HostLocalIPAM]:
    with HostLocalIPAM() as facade:
        yield facade


def network(server: Any, prefix: str, host: str, ranges: list[Any] | None = None, data_dir: Path | None = None,
            **store: Any) -> dict[str, Any]:
    settings = {"type": "etcd", "endpoints": server.endpoints, "prefix": prefix, "host": host, "blockSize": 30,
                **store}
    ipam = {"type": "host-local", "ranges": ranges or [[{"subnet": "10.40.0.0/28"}]], "store": settings}
    if data_dir is not None:
        ipam["dataDir"] = str(data_dir)
    return {"cniVersion": "1.0.0", "name": "etcdnet", "type": "bridge", "ipam": ipam}


def test_add_check_delete_gc_through_the_facade(ipam: HostLocalIPAM, etcd_server: Any, etcd_prefix: str,
                                                tmp_path: Path) -> None:
    # dataDir is set on purpose: with a store selected, nothing may be written there.
    conf = network(etcd_server, etcd_prefix, "h1", data_dir=tmp_path,
                   ranges=[[{"subnet": "10.40.0.0/28"}], [{"subnet": "2001:db8:40::/120"}]])
    store = ipam.store_for(ipam.load(conf))
    assert isinstance(store, EtcdStore) and store.host == "h1"

    first = ipam.add(conf, "c1", "eth0")
    assert [(str(i.address), str(i.gateway)) for i in first.ips] == [
        ("10.40.0.2/28", "10.40.0.1"), ("2001:db8:40::2/120", "2001:db8:40::1")]
    second = ipam.add(conf, "c2", "eth0")
    assert [str(i.address) for i in second.ips] == ["10.40.0.3/28", "2001:db8:40::3/120"]
    assert {str(ip) for ip, _ in store.host_reservations()} == {"10.40.0.2", "10.40.0.3", "2001:db8:40::2",
                                                                "2001:db8:40::3"}

    assert [str(ip) for ip in ipam.check(conf, "c1", "eth0")] == ["10.40.0.2", "2001:db8:40::2"]
    with pytest.raises(NotFoundError) as info:
        ipam.check(conf, "c1", "eth1")
    assert info.value.msg == "host-local: Failed to find address added by container c1"

    released = ipam.gc(conf, [("c1", "eth0")])
    c2 = Owner.attachment("c2", "eth0")
    assert released == (Reservation(ip=IPAddress("10.40.0.3"), owner=c2),
                        Reservation(ip=IPAddress("2001:db8:40::3"), owner=c2))
    assert ipam.gc(conf, [("c1", "eth0")]) == ()

    assert sorted(str(ip) for ip in ipam.delete(conf, "c1", "eth0")) == ["10.40.0.2", "2001:db8:40::2"]
    assert ipam.delete(conf, "c1", "eth0") == ()
    with pytest.raises(NotFoundError):
        ipam.check(conf, "c1", "eth0")
    assert store.host_reservations() == []
    assert list(tmp_path.iterdir()) == []


def test_a_second_facade_sees_the_same_reservations(etcd_server: Any, etcd_prefix: str) -> None:
    conf = network(etcd_server, etcd_prefix, "h1")
    with HostLocalIPAM() as one:
        one.add(conf, "c1", "eth0")
    with HostLocalIPAM() as two:  # a new process on the same host: nothing cached, all read from etcd
        assert [str(ip) for ip in two.check(conf, "c1", "eth0")] == ["10.40.0.2"]
        assert str(two.add(conf, "c2", "eth0").ips[0].address) == "10.40.0.3/28"


def test_two_hosts_get_distinct_addresses_and_each_gcs_only_its_own(
        ipam: HostLocalIPAM, etcd_server: Any, etcd_prefix: str) -> None:
    h1, h2 = network(etcd_server, etcd_prefix, "h1"), network(etcd_server, etcd_prefix, "h2")
    got: dict[str, list[str]] = {"h1": [], "h2": []}
    for i in range(6):
        for name, conf in (("h1", h1), ("h2", h2)):
            got[name].append(str(ipam.add(conf, f"{name}-c{i}", "eth0").ips[0].ip))
    every = got["h1"] + got["h2"]
    assert len(set(every)) == 12
    assert "10.40.0.1" not in every  # the gateway
    # Block affinity: each host's addresses come from blocks affine to it.
    blocks = ipam.store_for(ipam.load(h1)).blocks()  # type: ignore[attr-defined]
    for name, ips in got.items():
        for ip in ips:
            assert [host for block, host in blocks.items() if IPAddress(ip) in block] == [name]

    # h1's valid list does not name h2's attachments: h2's reservations must survive h1's GC.
    released = ipam.gc(h1, [])
    assert sorted(str(r.ip) for r in released) == sorted(got["h1"])
    for i in range(6):
        assert [str(ip) for ip in ipam.check(h2, f"h2-c{i}", "eth0")] == [got["h2"][i]]


def test_exhaustion_gives_the_references_message(ipam: HostLocalIPAM, etcd_server: Any, etcd_prefix: str) -> None:
    ranges = [[{"subnet": "10.41.0.0/29"}]]  # .2-.6 allocatable (.1 is the gateway)
    h1 = network(etcd_server, etcd_prefix, "h1", ranges=ranges)
    h2 = network(etcd_server, etcd_prefix, "h2", ranges=ranges)
    taken = [str(ipam.add(conf, f"c{i}", "eth0").ips[0].ip) for i, conf in enumerate([h1, h2, h1, h2, h1])]
    assert sorted(taken) == ["10.41.0.2", "10.41.0.3", "10.41.0.4", "10.41.0.5", "10.41.0.6"]
    for conf in (h1, h2):
        with pytest.raises(AddressExhaustedError) as info:
            ipam.add(conf, "late", "eth0")
        assert info.value.msg == ("failed to allocate for range 0: "
                                  "no IP addresses available in range set: 10.41.0.1-10.41.0.6")
    # A release by one host makes the address available to the other.
    ipam.delete(h1, "c0", "eth0")
    assert str(ipam.add(h2, "late", "eth0").ips[0].ip) == taken[0]


def test_concurrent_hosts_never_share_an_address(etcd_server: Any, etcd_prefix: str) -> None:
    confs = [network(etcd_server, etcd_prefix, f"h{n}", ranges=[[{"subnet": "10.42.0.0/27"}]]) for n in range(3)]
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            with HostLocalIPAM() as facade:
                results[n] = [str(facade.add(confs[n], f"h{n}-c{i}", "eth0").ips[0].ip) for i in range(8)]
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    every = [ip for ips in results.values() for ip in ips]
    assert len(every) == 24 and len(set(every)) == 24
    assert "10.42.0.1" not in every


@pytest.mark.parametrize(("change", "key"), [
    ({"endpoints": ["127.0.0.1:2379"]}, "ipam.store.endpoints[0]"),
    ({"type": "consul"}, "ipam.store.type"),
    ({"blockSize": 0}, "ipam.store.blockSize"),
])
def test_bad_store_config_is_code_7_with_the_key_path(ipam: HostLocalIPAM, etcd_server: Any, etcd_prefix: str,
                                                       change: dict[str, Any], key: str) -> None:
    conf = network(etcd_server, etcd_prefix, "h1")
    conf["ipam"]["store"].update(change)
    for operation in (ipam.add, ipam.check, ipam.delete):
        with pytest.raises(InvalidConfigError) as info:
            operation(conf, "c1", "eth0")
        assert info.value.code == 7
        assert info.value.key == key
