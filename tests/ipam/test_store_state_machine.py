"""The file store agrees with the memory store, operation by operation (a Hypothesis state machine).

Both stores are driven through the host-local operations (ADD with and without
requested addresses, DEL, CHECK, GC), plus a reservation written directly into
each (for the file store: a file written behind its back, as the reference
plugin would), operations through a second file store on the same directory (as
another process would), and reopening the file store: plainly (from its
persisted index), after files changed while it was closed, after its persisted
index was damaged or removed. After every step both hold the same reservations,
no address is held twice, the directory holds exactly those files with the
reference's bytes, and the persisted index, whenever it claims to describe the
directory as it is, names exactly its entries and, for every file whose identity
(inode, ctime) it recorded, its owner. Owners include IDs past a page and the
longest a plugin can be given, unreadable (over-long) contents, and files
rewritten in place, both while the stores are closed and behind their backs while
they are open (followed at once by an operation of the new owner).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from support import examples

from cnicore._errors import CNIError
from cnicore.ipam import IPAMConfig, add, check, delete, gc, load_ipam_config
from cnicore.spec._validate import MAX_CONTAINER_ID_BYTES
from cnicore.stores import FileStore, IPStore, MemoryStore, Owner, ip_text, parse_ip
from cnicore.stores import _filecore as core_module
from cnicore.stores._file import index_path
from cnicore.stores._index import ReservationIndex, ip_key
from cnicore.stores._indexfile import parse_index
from cnicore.stores._keyindex import MAX_OWNER_BYTES


class _LongID(str):
    """A long container ID that prints short (in Hypothesis' reports)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{self[:1]!r} * {len(self)}"


# Long IDs too: past a page, and the longest a plugin can be given (the owner text must read back as itself).
CIDS = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h", _LongID("L" * 5000),
                        _LongID("M" * MAX_CONTAINER_ID_BYTES)])
IFNAMES = st.sampled_from(["eth0", "eth1"])
ADDRESSES = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.1.2", "10.0.1.3",
                             "2001:db8::2", "2001:db8::4", "2001:db8::9"])


def _config(data_dir: str, requested: list[str] | None = None) -> IPAMConfig:
    raw: dict[str, Any] = {
        "cniVersion": "1.0.0", "name": "sm",
        "ipam": {"dataDir": data_dir, "ranges": [
            [{"subnet": "10.0.0.0/29", "rangeEnd": "10.0.0.4"}, {"subnet": "10.0.1.0/30"}],
            [{"subnet": "2001:db8::/64", "rangeEnd": "2001:db8::5"}]]},
    }
    if requested:
        raw["args"] = {"cni": {"ips": requested}}
    return load_ipam_config(raw)


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except CNIError as exc:
        return ("error", type(exc).__name__, exc.msg)


class StoresAgree(RuleBasedStateMachine):
    watch: bool | None = True
    # The most reservations a store follows by its directory's state alone (watch=None), None for the default.
    state_only_up_to: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self._saved_limit = core_module._STATE_ONLY_UP_TO
        if self.state_only_up_to is not None:
            core_module._STATE_ONLY_UP_TO = self.state_only_up_to
        # The data directory sits inside its own temp directory: the store keeps its index beside it.
        self.base = tempfile.mkdtemp(prefix="cnicore-sm-")
        self.dir = os.path.join(self.base, "data")
        self.file: IPStore = FileStore(self.dir, "sm", watch=self.watch, lock_timeout=10)
        self.other: IPStore = FileStore(self.dir, "sm", watch=not self.watch, lock_timeout=10)
        self.memory = MemoryStore()
        self.unreadable: dict[str, bytes] = {}  # file name -> content no owner has

    def teardown(self) -> None:
        self.file.close()
        self.other.close()
        shutil.rmtree(self.base, ignore_errors=True)
        core_module._STATE_ONLY_UP_TO = self._saved_limit

    @property
    def net(self) -> Path:
        return Path(self.dir) / "sm"

    @property
    def index_file(self) -> Path:
        found = index_path(self.dir, "sm")
        assert found is not None
        return found

    @rule(cid=CIDS, ifname=IFNAMES)
    def add(self, cid: str, ifname: str) -> None:
        conf = _config(self.dir)
        assert _outcome(add, conf, self.memory, cid, ifname) == _outcome(add, conf, self.file, cid, ifname)

    @rule(cid=CIDS, ifname=IFNAMES, ips=st.lists(ADDRESSES, min_size=1, max_size=2))
    def add_requested(self, cid: str, ifname: str, ips: list[str]) -> None:
        conf = _config(self.dir, ips)
        assert _outcome(add, conf, self.memory, cid, ifname) == _outcome(add, conf, self.file, cid, ifname)

    @rule(cid=CIDS, ifname=IFNAMES)
    def delete(self, cid: str, ifname: str) -> None:
        conf = _config(self.dir)
        assert _outcome(delete, conf, self.memory, cid, ifname) == _outcome(delete, conf, self.file, cid, ifname)

    @rule(cid=CIDS, ifname=IFNAMES)
    def check(self, cid: str, ifname: str) -> None:
        conf = _config(self.dir)
        assert _outcome(check, conf, self.memory, cid, ifname) == _outcome(check, conf, self.file, cid, ifname)

    @rule(valid=st.lists(st.tuples(CIDS, IFNAMES), max_size=4))
    def gc(self, valid: list[tuple[str, str]]) -> None:
        assert _outcome(gc, self.memory, valid) == _outcome(gc, self.file, valid)

    @rule(ip=ADDRESSES, cid=CIDS, legacy=st.booleans())
    def written_behind_the_back(self, ip: str, cid: str, legacy: bool) -> None:
        owner = Owner(container_id=cid) if legacy else Owner.attachment(cid, "eth0")
        path = Path(self.dir) / "sm" / ip_text(parse_ip(ip))
        if not path.exists():
            path.write_bytes(owner.text().encode())
            assert self.memory.reserve(parse_ip(ip), owner, "external")

    @rule(ip=ADDRESSES, extra=st.integers(1, 3))
    def unreadable_written_behind_the_back(self, ip: str, extra: int) -> None:
        # Longer than any owner a store writes: nobody's (taken, never released), never read whole.
        path = Path(self.dir) / "sm" / ip_text(parse_ip(ip))
        if not path.exists():
            path.write_bytes(b"x" * (MAX_OWNER_BYTES + extra))
            self.memory._index.put(parse_ip(ip), None)
            self.unreadable[path.name] = path.read_bytes()

    @rule(ifname=IFNAMES)
    def overlong_owner(self, ifname: str) -> None:
        # An owner no store could read back is refused by both, with the same error, and nothing is written.
        conf = _config(self.dir)
        cid = _LongID("N" * MAX_OWNER_BYTES)
        outcome = _outcome(add, conf, self.memory, cid, ifname)
        assert outcome[0] == "error"
        assert outcome == _outcome(add, conf, self.file, cid, ifname)

    @rule(ip=ADDRESSES)
    def removed_behind_the_back(self, ip: str) -> None:
        path = Path(self.dir) / "sm" / ip_text(parse_ip(ip))
        found = self.memory.reservation(parse_ip(ip))
        if path.exists():
            path.unlink()
            assert found is not None
            if found.owner is None:
                self.memory._index.discard(parse_ip(ip))
                del self.unreadable[path.name]
            else:
                assert self.memory.release(parse_ip(ip), found.owner)

    @rule(cid=CIDS, ifname=IFNAMES, release=st.booleans())
    def through_another_store(self, cid: str, ifname: str, release: bool) -> None:
        # Another process's store on the same directory (with the other watch mode): both append to one index.
        conf = _config(self.dir)
        op = delete if release else add
        assert _outcome(op, conf, self.memory, cid, ifname) == _outcome(op, conf, self.other, cid, ifname)

    @rule()
    def reopen(self) -> None:
        self.file.close()
        self.file = FileStore(self.dir, "sm", watch=self.watch, lock_timeout=10)

    @rule(changes=st.lists(st.tuples(ADDRESSES, CIDS, st.sampled_from(["add", "remove", "replace"])),
                           min_size=1, max_size=4))
    def changed_while_closed(self, changes: list[tuple[str, str, str]]) -> None:
        # Files added, removed or replaced (same name, same size, another owner, maybe the same inode number)
        # while no store of ours is open, as the reference plugin or an operator would; then reopen.
        self.file.close()
        self.other.close()
        for ip_string, cid, kind in changes:
            ip = parse_ip(ip_string)
            path = self.net / ip_text(ip)
            owner = Owner.attachment(cid, "eth0")
            found = self.memory.reservation(ip)
            if kind == "add" and found is None:
                path.write_bytes(owner.text().encode())
                assert self.memory.reserve(ip, owner, "external")
            elif kind == "remove" and found is not None and found.owner is not None:
                path.unlink()
                assert found.owner is not None and self.memory.release(ip, found.owner)
            elif kind == "replace" and found is not None and found.owner is not None:
                path.unlink()
                path.write_bytes(owner.text().encode())
                assert self.memory.release(ip, found.owner)
                assert self.memory.reserve(ip, owner, "external")
        self.file = FileStore(self.dir, "sm", watch=self.watch, lock_timeout=10)
        self.other = FileStore(self.dir, "sm", watch=not self.watch, lock_timeout=10)

    @rule(changes=st.lists(st.tuples(ADDRESSES, CIDS, IFNAMES), min_size=1, max_size=3))
    def rewritten_in_place(self, changes: list[tuple[str, str, str]]) -> None:
        # Reservation files rewritten in place (same inode, another owner: a hand edit) while the stores are
        # closed: the directory's state does not change, so the persisted index still matches it. A store
        # re-reads contents loaded from it before acting on or listing them (the invariants list every
        # store's reservations, as GC does: see the file store's notes for what a lookup by owner sees).
        self.file.close()
        self.other.close()
        for ip_string, cid, ifname in changes:
            ip = parse_ip(ip_string)
            path = self.net / ip_text(ip)
            found = self.memory.reservation(ip)
            if found is None or found.owner is None:
                continue
            owner = Owner.attachment(cid, ifname)
            inode = path.stat().st_ino
            with path.open("r+b") as handle:
                handle.write(owner.text().encode())
                handle.truncate()
            assert path.stat().st_ino == inode
            assert self.memory.release(ip, found.owner)
            assert self.memory.reserve(ip, owner, "external")
        self.file = FileStore(self.dir, "sm", watch=self.watch, lock_timeout=10)
        self.other = FileStore(self.dir, "sm", watch=not self.watch, lock_timeout=10)
        self.other.reservations()  # (self.file is listed by the invariants)

    @rule(ip=ADDRESSES, cid=CIDS, ifname=IFNAMES, op=st.sampled_from(["add", "delete", "check"]),
          through_other=st.booleans())
    def rewritten_in_place_while_open(self, ip: str, cid: str, ifname: str, op: str, through_other: bool) -> None:
        # A reservation file rewritten in place (same inode, another owner, maybe a long one) while both stores
        # are open, then at once an operation of the new owner through either store (one watches, one does
        # not): its ADD is refused as a duplicate, its DEL frees the file, its CHECK finds it. The invariants
        # list everything afterwards; this step acts before anything else looked.
        address = parse_ip(ip)
        found = self.memory.reservation(address)
        path = self.net / ip_text(address)
        if found is None or found.owner is None:
            return
        owner = Owner.attachment(cid, ifname)
        inode = path.stat().st_ino
        with path.open("r+b") as handle:
            handle.write(owner.text().encode())
            handle.truncate()
        assert path.stat().st_ino == inode
        assert self.memory.release(address, found.owner)
        assert self.memory.reserve(address, owner, "external")
        conf = _config(self.dir)
        store = self.other if through_other else self.file
        operation = {"add": add, "delete": delete, "check": check}[op]
        assert _outcome(operation, conf, self.memory, cid, ifname) == _outcome(operation, conf, store, cid, ifname)

    @rule(cut=st.integers(0, 10_000), flip=st.booleans())
    def damaged_index(self, cut: int, flip: bool) -> None:
        # A crash while writing the index (a torn end) or a damaged byte: opening must not believe it.
        self.file.close()
        if self.index_file.exists():
            data = bytearray(self.index_file.read_bytes())
            if flip and data:
                data[cut % len(data)] ^= 0x20
            else:
                del data[cut % (len(data) + 1):]
            self.index_file.write_bytes(bytes(data))
        self.file = FileStore(self.dir, "sm", watch=self.watch, lock_timeout=10)

    @rule()
    def index_removed(self) -> None:
        self.file.close()
        if self.index_file.exists():
            self.index_file.unlink()
        self.file = FileStore(self.dir, "sm", watch=self.watch, lock_timeout=10)

    @invariant()
    def same_reservations(self) -> None:
        mine = sorted((r.ip.version, r.ip.value, r.owner) for r in self.file.reservations())
        theirs = sorted((r.ip.version, r.ip.value, r.owner) for r in self.memory.reservations())
        assert mine == theirs
        assert len({(v, i) for v, i, _ in mine}) == len(mine)
        on_disk = {p.name: p.read_bytes() for p in self.net.iterdir() if parse_ip(p.name) is not None}
        assert on_disk == {ip_text(r.ip): r.owner.text().encode() if r.owner else self.unreadable[ip_text(r.ip)]
                           for r in self.memory.reservations()}
        for range_id in ("0", "1"):
            assert self.file.last_reserved(range_id) == self.memory.last_reserved(range_id)

    @invariant()
    def persisted_index_is_never_wrong(self) -> None:
        # Whenever the persisted index names the directory's current state, its content is the directory's.
        if not self.index_file.exists():
            return
        st = os.stat(self.net)
        loaded = parse_index(self.index_file.read_bytes(), (st.st_dev, st.st_ino), ReservationIndex)
        if loaded is None or loaded.tip.state != (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns):
            return
        # Every entry, and the owner of every file whose identity (inode, ctime) it recorded: a file rewritten in
        # place changes nothing in the directory's state, so an index saved before the rewrite (or one whose
        # later records were cut off) still names the state; what vouches for an owner is the file's identity.
        assert sorted(ip_key(r.ip) for r in loaded.index.items()) == sorted(
            ip_key(r.ip) for r in self.memory.reservations())
        for reservation in self.memory.reservations():
            st_file = os.stat(self.net / ip_text(reservation.ip), follow_symlinks=False)
            if loaded.sigs.get(ip_key(reservation.ip)) == (st_file.st_ino, st_file.st_ctime_ns):
                assert loaded.index.get(reservation.ip) == reservation


StoresAgree.TestCase.settings = settings(max_examples=examples(scale=1 / 2), stateful_step_count=30, deadline=None)
TestStoresAgreeWithInotify = StoresAgree.TestCase


class StoresAgreeWithoutInotify(StoresAgree):
    watch = False


StoresAgreeWithoutInotify.TestCase.settings = settings(max_examples=examples(scale=1 / 3), stateful_step_count=30,
                                                       deadline=None)
TestStoresAgreeWithoutInotify = StoresAgreeWithoutInotify.TestCase


class StoresAgreeFollowingByState(StoresAgree):
    # The default store: in steady use on this small directory it keeps no watch and follows the directory's
    # state alone (where the file system stamps changes at fine grain; elsewhere it watches), beside one that
    # watches.
    watch = None


StoresAgreeFollowingByState.TestCase.settings = settings(max_examples=examples(scale=1 / 2),
                                                         stateful_step_count=30, deadline=None)
TestStoresAgreeFollowingByState = StoresAgreeFollowingByState.TestCase


class StoresAgreeOutgrowingTheirState(StoresAgree):
    # The same with room for only three reservations: past them the store starts its watch, mid-run.
    watch = None
    state_only_up_to = 3


StoresAgreeOutgrowingTheirState.TestCase.settings = settings(max_examples=examples(scale=1 / 3),
                                                             stateful_step_count=30, deadline=None)
TestStoresAgreeOutgrowingTheirState = StoresAgreeOutgrowingTheirState.TestCase
