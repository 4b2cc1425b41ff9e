"""The file store's persisted index: a checksummed snapshot plus an append-only log, bound to a directory state.

Why. Opening a file store must know every reservation; reading every file of a
directory with tens of thousands of them takes seconds, and a plugin that is
executed once per operation would pay that every time. So each store keeps a
copy of its index in ``<dataDir>/../.cnicore/<basename of dataDir>/<network>.index``
and trusts it only when it provably describes the directory as it is now.

Where. Outside the data directory: the reference plugin reads every file of the
network directory on each ADD and DEL, and its DEL removes any file there
(whatever its name, in subdirectories too) whose content matches the
attachment; and the data directory stays byte for byte what the reference
would write.

Format. A sequence of frames ``magic | length | crc32 | payload | trailer``: one
snapshot (the whole index, with each file's inode and ctime) followed by records
(what one transaction changed). The trailer (with its own checksum) says which
directory state the frame leaves behind, ``(st_dev, st_ino, st_mtime_ns,
st_ctime_ns)`` of the network directory as *sealed* by the writer (the file
store makes sure any later change of the directory's entries alters it), plus
how many records and changed entries follow the snapshot. A record also names
the state it applies to; records are applied while they chain. A writer that
finds records it did not write after its own last one adds their keys to its
own changes (it knows every key's value now, not what the others started from). The index is used as is when
the last state equals the directory's state now; otherwise it is a starting
point that the store checks file by file (inode, ctime) without reading unchanged
files. A torn or corrupt frame ends the log (checksums); a missing or foreign
file is just a miss. Nothing here is ever the only copy of anything: the
directory is the truth, this is a cache of it. What the store believes of it,
and what it verifies again (ownership and mode of where the file lives, the
directory's entries, contents before acting on them), is said in
:mod:`cnicore.stores._file`.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from itertools import compress
from operator import itemgetter

from cnicore.stores._keyindex import V6_TAG, KeyIndex, Runs

TYPE_CHECKING = False
if TYPE_CHECKING:  # an executed plugin loads indexes: typing is left to type checkers
    from collections.abc import Iterator, Sequence

__all__ = ["DirState", "LoadedIndex", "Signatures", "Tip", "encode_record", "encode_snapshot", "follow", "parse_index"]

#: ``(st_dev, st_ino, st_mtime_ns, st_ctime_ns)`` of a network directory.
DirState = tuple[int, int, int, int]

_SNAPSHOT = b"CNIs"
_RECORD = b"CNIr"
_END = b"CNIe"
_HEAD = struct.Struct("<4sII")
_TAIL_FIELDS = struct.Struct("<IQQQQqqq")
_CHECK = struct.Struct("<I4s")
_TAIL = struct.Struct("<IQQQQqqqI4s")
_crc32 = zlib.crc32
_FORMAT = b"1" + (b"l" if sys.byteorder == "little" else b"b")
_LOW64 = (1 << 64) - 1
_MISSING = object()
_NO_SIG = (0, 0)
# One change of a record: (key, signature or None when no longer reserved, owner text).
_Change = tuple[int, tuple[int, int] | None, str | None]


class Tip:
    """Where a log ends: the state its last frame leaves, and how much follows its snapshot."""

    __slots__ = ("changes", "records", "state", "tau")

    def __init__(self, state: DirState, tau: int, records: int = 0, changes: int = 0) -> None:
        #: The directory state the index describes.
        self.state = state
        #: Coarse clock reading taken before that state was sealed: a file changed later has a ctime >= tau.
        self.tau = tau
        #: Records after the snapshot, and entries they change (what replaying them costs).
        self.records = records
        self.changes = changes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tip) and (self.state, self.tau, self.records, self.changes) == (
            other.state, other.tau, other.records, other.changes)

    def __hash__(self) -> int:
        return hash((self.state, self.tau, self.records, self.changes))

    def __repr__(self) -> str:
        return f"Tip({self.state}, {self.tau}, {self.records}, {self.changes})"


def _frame(magic: bytes, payload: bytes, tip: Tip) -> bytes:
    size = len(payload)
    dev, ino, mtime, ctime = tip.state
    fields = _TAIL_FIELDS.pack(size, tip.records, tip.changes, dev, ino, mtime, ctime, tip.tau)
    return b"".join((_HEAD.pack(magic, size, _crc32(payload)), payload, fields, _CHECK.pack(_crc32(fields), _END)))


def _unpack_tail(data: bytes | memoryview, offset: int) -> tuple[int, Tip] | None:
    """(payload length, tip) of the trailer at ``offset``, or None if it is corrupt."""
    length, records, changes, dev, ino, mtime, ctime, tau, crc, end = _TAIL.unpack_from(data, offset)
    if end != _END or zlib.crc32(memoryview(data)[offset:offset + _TAIL_FIELDS.size]) != crc:
        return None
    return length, Tip((dev, ino, mtime, ctime), tau, records, changes)


def _unframe(data: bytes, offset: int) -> tuple[bytes, memoryview, int, Tip] | None:
    """(magic, payload, end offset, tip) of the frame at ``offset``; None if torn or corrupt."""
    if offset + _HEAD.size > len(data):
        return None
    magic, length, crc = _HEAD.unpack_from(data, offset)
    start = offset + _HEAD.size
    end = start + length + _TAIL.size
    if end > len(data) or magic not in (_SNAPSHOT, _RECORD):
        return None
    payload = memoryview(data)[start:start + length]
    tail = _unpack_tail(data, start + length)
    if tail is None or tail[0] != length or zlib.crc32(payload) != crc:
        return None
    return magic, payload, end, tail[1]


class Signatures:
    """``key -> (inode, ctime_ns)`` of each reservation file as last read; built from a load only when used."""

    __slots__ = ("_base", "_map")

    def __init__(self) -> None:
        self._map: dict[int, tuple[int, int] | None] = {}
        self._base: tuple[list[int], array[int], array[int]] | None = None

    @classmethod
    def from_columns(cls, keys: list[int], inos: array[int], ctimes: array[int]) -> Signatures:
        """Signatures from aligned columns (turned into a mapping on the first lookup of a key not set since)."""
        sigs = cls()
        sigs._base = (keys, inos, ctimes)
        return sigs

    def _materialise(self) -> dict[int, tuple[int, int] | None]:
        if self._base is not None:
            keys, inos, ctimes = self._base
            self._base = None
            merged: dict[int, tuple[int, int] | None] = dict(zip(keys, zip(inos, ctimes, strict=True), strict=True))
            merged.update(self._map)
            self._map = merged
        return self._map

    def mapping(self) -> dict[int, tuple[int, int] | None]:
        """Every recorded signature (None for keys forgotten since a load): the table itself, for lookups."""
        return self._materialise()

    def get(self, key: int) -> tuple[int, int] | None:
        """The signature recorded for ``key``, or None."""
        found = self._map.get(key, _MISSING)
        if found is _MISSING:
            found = self._materialise().get(key) if self._base is not None else None
        return found  # type: ignore[return-value]

    def set(self, key: int, sig: tuple[int, int] | None) -> None:
        """Record (or with None, forget) the signature of ``key``."""
        if sig is None and self._base is None:
            self._map.pop(key, None)
        else:
            self._map[key] = sig

    def clear(self) -> None:
        """Forget everything."""
        self._map = {}
        self._base = None

    def columns(self, keys: list[int]) -> tuple[array[int], array[int]]:
        """Inodes and ctimes aligned with ``keys`` (0 where unknown)."""
        table = self._materialise()
        sigs = [sig or _NO_SIG for sig in map(table.get, keys)]
        return array("Q", map(itemgetter(0), sigs)), array("q", map(itemgetter(1), sigs))


class LoadedIndex:
    """What :func:`parse_index` found: the index, where its log ends, and how many bytes of the file are valid."""

    __slots__ = ("index", "sigs", "size", "tip")

    def __init__(self, index: KeyIndex, sigs: Signatures, tip: Tip, size: int) -> None:
        self.index = index
        self.sigs = sigs
        self.tip = tip
        #: Bytes of valid frames (anything after is a torn write).
        self.size = size


def _halves(values: list[int]) -> tuple[bytes, bytes]:
    return (array("Q", [v >> 64 for v in values]).tobytes(), array("Q", [v & _LOW64 for v in values]).tobytes())


def encode_snapshot(tip: Tip, index: KeyIndex, sigs: Signatures) -> bytes:
    """One snapshot frame holding ``index`` as of ``tip`` (whose record and change counts must be 0)."""
    keys, texts, starts, ends = index.export()
    inos, ctimes = sigs.columns(keys)
    v6 = list(compress(range(len(keys)), map(V6_TAG.__le__, keys)))
    if v6:
        # IPv4 first: their keys fit one 64-bit column, IPv6 values take two.
        v4 = list(compress(range(len(keys)), map(V6_TAG.__gt__, keys)))
        order = v4 + v6
        keys = [keys[i] for i in order]
        texts = [texts[i] for i in order]
        inos = array("Q", [inos[i] for i in order])
        ctimes = array("q", [ctimes[i] for i in order])
    n4 = len(keys) - len(v6)
    r4 = len(starts) - sum(map(V6_TAG.__le__, starts))
    values6 = [key ^ V6_TAG for key in keys[n4:]]
    starts6 = [s ^ V6_TAG for s in starts[r4:]]
    ends6 = [e ^ V6_TAG for e in ends[r4:]]
    named: list[str] = [t or "" for t in texts] if None in texts else texts  # type: ignore[assignment]
    joined = "\n".join(named)
    parts = [
        b"%s %d %d %d %d\n" % (_FORMAT, n4, len(values6), r4, len(starts6)),
        array("Q", keys[:n4]).tobytes(), *_halves(values6),
        inos.tobytes(), ctimes.tobytes(),
        array("Q", starts[:r4]).tobytes(), array("Q", ends[:r4]).tobytes(), *_halves(starts6), *_halves(ends6),
        joined.encode("utf-8", "surrogatepass"),
    ]
    return _frame(_SNAPSHOT, b"".join(parts), tip)


def encode_record(prev: DirState, tip: Tip, changes: Sequence[_Change]) -> bytes:
    """A record taking the index from state ``prev`` to ``tip``.

    ``changes`` are ``(key, signature, owner text)``, the signature None for a
    key that is no longer reserved.
    """
    dev, ino, mtime, ctime = prev
    lines = [f"{dev} {ino} {mtime} {ctime}"]
    for key, sig, text in changes:
        if sig is None:
            lines.append(f"-{key:x}")
        else:
            sig_ino, sig_ctime = sig
            lines.append(f"+{key:x} {sig_ino} {sig_ctime} {text or ''}")
    lines.append("")
    return _frame(_RECORD, "\n".join(lines).encode("utf-8", "surrogatepass"), tip)


def _column(payload: memoryview, offset: int, count: int, code: str) -> tuple[array[int], int]:
    end = offset + 8 * count
    if end > len(payload):
        raise ValueError("short column")
    column = array(code)
    column.frombytes(payload[offset:end])
    return column, end


def _combine(high: array[int], low: array[int]) -> list[int]:
    return [(h << 64) | lo | V6_TAG for h, lo in zip(high, low, strict=True)]


def _parse_snapshot(payload: memoryview, tip: Tip, index_class: type[KeyIndex]) -> LoadedIndex | None:
    newline = bytes(payload[:128]).find(b"\n")
    if newline < 0:
        return None
    fields = bytes(payload[:newline]).split(b" ")
    if len(fields) != 5 or fields[0] != _FORMAT:
        return None
    n4, n6, r4, r6 = (int(f) for f in fields[1:])
    if min(n4, n6, r4, r6) < 0:
        return None
    offset = newline + 1
    keys4, offset = _column(payload, offset, n4, "Q")
    high6, offset = _column(payload, offset, n6, "Q")
    low6, offset = _column(payload, offset, n6, "Q")
    inos, offset = _column(payload, offset, n4 + n6, "Q")
    ctimes, offset = _column(payload, offset, n4 + n6, "q")
    starts4, offset = _column(payload, offset, r4, "Q")
    ends4, offset = _column(payload, offset, r4, "Q")
    starts_high, offset = _column(payload, offset, r6, "Q")
    starts_low, offset = _column(payload, offset, r6, "Q")
    ends_high, offset = _column(payload, offset, r6, "Q")
    ends_low, offset = _column(payload, offset, r6, "Q")
    keys = keys4.tolist() + _combine(high6, low6)
    n = n4 + n6
    texts: list[str | None] = []
    if n:
        texts = list(bytes(payload[offset:]).decode("utf-8", "surrogatepass").split("\n"))
        if "" in texts:  # unreadable content is stored as an empty owner
            texts = [t or None for t in texts]
    elif offset != len(payload):
        return None
    if len(texts) != n:
        return None
    owners = dict(zip(keys, texts, strict=True))
    starts = starts4.tolist() + _combine(starts_high, starts_low)
    ends = ends4.tolist() + _combine(ends_high, ends_low)
    # Checksums catch damage; this catches a writer that got the runs wrong: they must cover as many addresses
    # as there are (distinct) keys.
    if len(owners) != n or sum(ends) - sum(starts) + len(starts) != n:
        return None
    index = index_class.load(owners, Runs.from_bounds(starts, ends))
    return LoadedIndex(index, Signatures.from_columns(keys, inos, ctimes), tip, 0)


def _parse_record(payload: memoryview) -> tuple[DirState, list[_Change]]:
    lines = bytes(payload).decode("utf-8", "surrogatepass").split("\n")
    if len(lines) < 2 or lines[-1] != "":
        raise ValueError("unterminated record")
    dev, ino, mtime, ctime = (int(f) for f in lines[0].split(" "))
    changes: list[_Change] = []
    for line in lines[1:-1]:
        if line[:1] == "+":
            key_text, sig_ino, sig_ctime, text = line[1:].split(" ", 3)
            changes.append((int(key_text, 16), (int(sig_ino), int(sig_ctime)), text or None))
        elif line[:1] == "-":
            changes.append((int(line[1:], 16), None, None))
        else:
            raise ValueError("bad record line")
        if not 0 <= changes[-1][0] < 2 * V6_TAG:
            raise ValueError("bad key")
    return (dev, ino, mtime, ctime), changes


def _chained_records(data: bytes, offset: int, tip: Tip) -> Iterator[tuple[int, Tip, list[_Change]]]:
    """The records from ``offset`` on, each continuing from the one before (the first from ``tip``).

    Yields (end offset, tip after it, its changes); stops at the first torn, corrupt or unchained frame.
    """
    while offset < len(data):
        frame = _unframe(data, offset)
        if frame is None or frame[0] != _RECORD:
            return
        following = frame[3]
        try:
            prev, changes = _parse_record(frame[1])
        except (ValueError, UnicodeDecodeError):
            return
        if (prev != tip.state or following.state[:2] != tip.state[:2] or following.records != tip.records + 1
                or following.changes != tip.changes + len(changes)):
            return
        offset, tip = frame[2], following
        yield offset, tip, changes


def parse_index(data: bytes, directory: tuple[int, int], index_class: type[KeyIndex] = KeyIndex) -> LoadedIndex | None:
    """The index in ``data`` if it is a valid snapshot of ``directory`` (``(st_dev, st_ino)``), plus its records.

    Records are applied while each one starts from the state the previous one
    left; the first torn, corrupt or unchained frame ends the log. The index is
    an ``index_class`` (a :class:`~cnicore.stores._keyindex.KeyIndex`, or a
    subclass such as :class:`~cnicore.stores._index.ReservationIndex`).
    """
    try:
        first = _unframe(data, 0)
        if first is None or first[0] != _SNAPSHOT or first[3].state[:2] != directory or first[3].records:
            return None
        loaded = _parse_snapshot(first[1], first[3], index_class)
    except (ValueError, UnicodeDecodeError, OverflowError):
        return None
    if loaded is None:
        return None
    loaded.size = first[2]
    index, sigs = loaded.index, loaded.sigs
    for end, tip, changes in _chained_records(data, first[2], loaded.tip):
        for key, sig, text in changes:
            if sig is None:
                index.discard_key(key)
            else:
                index.put_key(key, text)
            sigs.set(key, sig)
        loaded.tip, loaded.size = tip, end
    return loaded


def follow(data: bytes, tip: Tip) -> tuple[Tip, set[int]] | None:
    """Records another writer appended after ``tip``: where they end, and every key they change.

    ``data`` is what the file holds after the frame that ended at ``tip``. None
    unless it is whole records, each continuing from the one before.
    """
    keys: set[int] = set()
    end = 0
    for record_end, following, changes in _chained_records(data, 0, tip):
        keys.update(key for key, _, _ in changes)
        end, tip = record_end, following
    return (tip, keys) if end == len(data) else None
