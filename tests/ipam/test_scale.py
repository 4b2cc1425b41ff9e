"""Correctness at scale: tens of thousands of reservations, and ranges far larger than memory.

No timing assertions here (benchmarks live elsewhere); the sizes are what would
make a scanning implementation visibly slow or memory-hungry.
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest
from netaddr import IPAddress

from cnicore._errors import AddressExhaustedError
from cnicore.ipam import RangeSet, add, allocate, delete, load_ipam_config
from cnicore.stores import FileStore, IPStore, MemoryStore, Owner, ip_text

N = 20_000


def conf(data_dir: Path, subnet: str, **extra: str) -> object:
    return load_ipam_config({"cniVersion": "1.0.0", "name": "big",
                             "ipam": {"dataDir": str(data_dir), "ranges": [[{"subnet": subnet, **extra}]]}})


@pytest.mark.slow
def test_twenty_thousand_reservations_written_by_others(tmp_path: Path) -> None:
    net = tmp_path / "big"
    net.mkdir()
    base = int(IPAddress("10.0.0.2"))
    # Written the way the reference plugin writes them: a block, then every other address.
    for i in range(N):
        value = base + i if i < N // 2 else base + N // 2 + 2 * (i - N // 2)
        (net / ip_text(IPAddress(value, 4))).write_bytes(f"c{i}\r\neth0".encode())
    (net / "last_reserved_ip.0").write_bytes(b"10.0.0.1")
    c = conf(tmp_path, "10.0.0.0/16")
    with FileStore(tmp_path, "big") as store:
        assert len(store) == N
        got = add(c, store, "new", "eth0").ips[0].ip  # type: ignore[arg-type]
        assert got.value == base + N // 2 + 1  # the first hole after the solid block
        assert store.find_owner(Owner.attachment("c12345", "eth0")) != []
        for i in range(0, N, 997):
            assert len(delete(c, store, f"c{i}", "eth0")) == 1  # type: ignore[arg-type]
        # Someone else adds and removes files while the store is open: it keeps up.
        (net / "10.0.255.200").write_bytes(b"late\r\neth0")
        os.unlink(net / ip_text(IPAddress(base + 1, 4)))
        assert store.find_owner(Owner.attachment("late", "eth0")) == [IPAddress("10.0.255.200")]
        assert store.reservation(IPAddress(base + 1, 4)) is None
        on_disk = sum(1 for p in net.iterdir() if p.name[0].isdigit())
        assert len(store) == on_disk


def test_full_range_is_reported_exhausted_without_a_scan() -> None:
    rs_conf = load_ipam_config({"name": "x", "ipam": {"subnet": "10.0.0.0/16"}})
    rs: RangeSet = rs_conf.range_sets[0]
    store = MemoryStore({IPAddress(v, 4): Owner.attachment(f"c{v}", "eth0")
                         for v in range(int(IPAddress("10.0.0.2")), int(IPAddress("10.0.255.254")) + 1)})
    with pytest.raises(AddressExhaustedError):
        allocate(store, rs, 0, Owner.attachment("one-more", "eth0"))


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_huge_ranges_cost_nothing_until_used(tmp_path: Path, kind: str) -> None:
    store: IPStore = MemoryStore() if kind == "memory" else FileStore(tmp_path, "big")
    try:
        tracemalloc.start()
        small = conf(tmp_path, "10.0.0.0/24")
        before = tracemalloc.get_traced_memory()[0]
        for subnet, extra in (("10.0.0.0/8", {}), ("2001:db8::/64", {}), ("2001:db9::/32", {}),
                              ("11.0.0.0/8", {"rangeStart": "11.255.255.250"})):
            c = conf(tmp_path, subnet, **extra)
            for i in range(3):
                add(c, store, f"{subnet}-{i}", "eth0")  # type: ignore[arg-type]
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert after - before < 2_000_000  # a materialised /8 alone would be hundreds of megabytes
        assert small.range_sets[0].ranges[0].range_end == IPAddress("10.0.0.254")
        last = [r.ip for r in store.reservations() if r.ip.version == 4 and r.ip.value > int(IPAddress("11.0.0.0"))]
        assert sorted(str(ip) for ip in last) == ["11.255.255.250", "11.255.255.251", "11.255.255.252"]
    finally:
        store.close()


@pytest.mark.slow
def test_twenty_thousand_reservations_reopen_without_reading_them(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    net = tmp_path / "big"
    net.mkdir()
    base = int(IPAddress("10.0.0.2"))
    for i in range(N):
        (net / ip_text(IPAddress(base + i, 4))).write_bytes(f"c{i}\r\neth0".encode())
    c = conf(tmp_path, "10.0.0.0/16")
    with FileStore(tmp_path, "big") as store:  # reads them all once, and records what it read
        assert len(store) == N
    reads: list[str] = []
    original = FileStore._refresh

    def counting(self: FileStore, name: str, key: int) -> None:
        reads.append(name)
        original(self, name, key)

    monkeypatch.setattr(FileStore, "_refresh", counting)
    with FileStore(tmp_path, "big") as store:
        assert len(store) == N and reads == []
        got = add(c, store, "new", "eth0").ips[0].ip  # type: ignore[arg-type]
        assert got == IPAddress(base + N, 4)
        assert delete(c, store, "c12345", "eth0") == (IPAddress(base + 12345, 4),)  # type: ignore[arg-type]
        assert reads == [ip_text(IPAddress(base + 12345, 4))]  # verified before removing it
    # Another writer (the reference) while no store is open: the next open reads only what changed.
    (net / "10.0.200.1").write_bytes(b"go\r\neth0")
    os.unlink(net / ip_text(IPAddress(base + 7, 4)))
    reads.clear()
    with FileStore(tmp_path, "big") as store:
        assert "10.0.200.1" in reads and len(reads) < 50
        assert store.find_owner(Owner.attachment("go", "eth0")) == [IPAddress("10.0.200.1")]
        assert store.reservation(IPAddress(base + 7, 4)) is None
        assert len(store) == N
