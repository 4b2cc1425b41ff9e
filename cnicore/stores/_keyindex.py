"""The reservation index on plain keys: the standard-library core of :mod:`cnicore.stores._index`.

Three views of the same facts, kept in step by :meth:`KeyIndex.put_key` and
:meth:`KeyIndex.discard_key`:

* address -> owner (None for unreadable content), for "who holds X";
* owner -> addresses, for DEL/CHECK/duplicate checks without a scan;
* the maximal runs of consecutive reserved addresses, for "first free address in
  [low, high]" in O(log runs) however many addresses are taken.

Nothing here grows with the size of a range: a /8 or an IPv6 /64 costs what its
reservations cost.

An address is an integer *key* (the IPv4 value, or the IPv6 value with bit 128
set, :data:`V6_TAG`, so that keys of the two families never meet and sort IPv4
first) and an owner is a *key text* (``<containerID>`` or ``<containerID>
<ifname>``; neither part holds whitespace). Plain integers and strings make the
index cheap to rebuild in bulk from a persisted copy (:meth:`KeyIndex.load`), and
keep this module free of netaddr and attrs: an executed plugin can use the file
store without importing either. :class:`~cnicore.stores._index.ReservationIndex`
adds the address and owner objects on top.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import compress, repeat
from operator import eq

# One Go whitespace set and one key encoding for the whole library (re-exported here for the store modules).
from cnicore._gofmt import GO_SPACE as _GO_SPACE
from cnicore._gofmt import go_has_space as _has_space
from cnicore.spec._goint import V6_TAG, key_value, value_key
from cnicore.spec._validate import MAX_OWNER_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self

__all__ = ["LINE_BREAK", "MAX_OWNER_BYTES", "V6_TAG", "KeyIndex", "Runs", "find_owner_keys", "key_value",
           "owner_key_from_text", "release_owner_keys", "value_key"]

# Owner lookups answered by a scan before the owner -> addresses map is built (after a bulk load a
# store that serves one operation never pays for the map).
_SCANS_BEFORE_MAP = 4

#: Between the container ID and the interface name in a reservation file.
LINE_BREAK = "\r\n"


def owner_key_from_text(text: str) -> str | None:
    """:func:`~cnicore.stores.owner_from_text` straight to a key text (None when unreadable)."""
    trimmed = text.strip(_GO_SPACE)
    container_id, sep, ifname = trimmed.partition(LINE_BREAK)
    if not container_id or _has_space(container_id):
        return None
    if not sep:
        return container_id
    if not ifname or _has_space(ifname):
        return None
    return container_id + " " + ifname


class Runs:
    """A set of integers stored as sorted, disjoint, non-adjacent inclusive runs."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __len__(self) -> int:
        return len(self._starts)

    def _find(self, value: int) -> int:
        """Index of the run that starts at or before ``value`` (-1 if none)."""
        return bisect_right(self._starts, value) - 1

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        i = self._find(value)
        return i >= 0 and self._ends[i] >= value

    def add(self, value: int) -> None:
        """Insert ``value`` (no-op if present), merging with neighbouring runs."""
        i = self._find(value)
        starts, ends = self._starts, self._ends
        if i >= 0 and ends[i] >= value:
            return
        joins_left = i >= 0 and ends[i] == value - 1
        joins_right = i + 1 < len(starts) and starts[i + 1] == value + 1
        if joins_left and joins_right:
            ends[i] = ends[i + 1]
            del starts[i + 1]
            del ends[i + 1]
        elif joins_left:
            ends[i] = value
        elif joins_right:
            starts[i + 1] = value
        else:
            starts.insert(i + 1, value)
            ends.insert(i + 1, value)

    def remove(self, value: int) -> None:
        """Delete ``value`` (no-op if absent), splitting its run."""
        i = self._find(value)
        starts, ends = self._starts, self._ends
        if i < 0 or ends[i] < value:
            return
        start, end = starts[i], ends[i]
        if start == end:
            del starts[i]
            del ends[i]
        elif value == start:
            starts[i] = value + 1
        elif value == end:
            ends[i] = value - 1
        else:
            ends[i] = value - 1
            starts.insert(i + 1, value + 1)
            ends.insert(i + 1, end)

    def first_absent(self, low: int, high: int) -> int | None:
        """The smallest integer in ``[low, high]`` not in the set, or None."""
        if low > high:
            return None
        i = self._find(low)
        candidate = self._ends[i] + 1 if i >= 0 and self._ends[i] >= low else low
        # Runs are maximal, so the integer right after a run is free.
        return candidate if candidate <= high else None

    def bounds(self) -> tuple[list[int], list[int]]:
        """The run starts and ends (copies)."""
        return list(self._starts), list(self._ends)

    @classmethod
    def from_bounds(cls, starts: list[int], ends: list[int]) -> Runs:
        """Runs from :meth:`bounds` output (trusted: the caller checked them)."""
        runs = cls()
        runs._starts, runs._ends = starts, ends
        return runs


class KeyIndex:
    """Key <-> owner key text maps plus free-key search. Not thread-safe: callers lock."""

    __slots__ = ("_by_owner", "_owners", "_runs", "_scans_left")

    def __init__(self) -> None:
        self._owners: dict[int, str | None] = {}
        self._by_owner: dict[str, set[int]] | None = {}
        self._runs = Runs()
        self._scans_left = 0

    def __len__(self) -> int:
        return len(self._owners)

    def clear(self) -> None:
        """Forget everything."""
        self._owners = {}
        self._by_owner = {}
        self._runs = Runs()
        self._scans_left = 0

    def has_key(self, key: int) -> bool:
        """Whether the address with this key is reserved."""
        return key in self._owners

    def owner_text(self, key: int) -> str | None:
        """The owner key text of a reserved address (None if unreadable or absent)."""
        return self._owners.get(key)

    def keys(self) -> list[int]:
        """Every reserved key (a copy, unordered)."""
        return list(self._owners)

    def put_key(self, key: int, owner: str | None) -> bool:
        """Record ``key`` as reserved by ``owner``; returns whether anything changed."""
        owners = self._owners
        if key in owners:
            old = owners[key]
            if old == owner:
                return False
            by_owner = self._by_owner
            if by_owner is not None:
                if old is not None:
                    self._unlink_owner(by_owner, old, key)
                if owner is not None:
                    by_owner.setdefault(owner, set()).add(key)
            owners[key] = owner
            return True
        owners[key] = owner
        if owner is not None and self._by_owner is not None:
            self._by_owner.setdefault(owner, set()).add(key)
        self._runs.add(key)
        return True

    def discard_key(self, key: int) -> bool:
        """Forget ``key``; returns whether it was reserved."""
        owners = self._owners
        if key not in owners:
            return False
        old = owners.pop(key)
        if old is not None and self._by_owner is not None:
            self._unlink_owner(self._by_owner, old, key)
        self._runs.remove(key)
        return True

    @staticmethod
    def _unlink_owner(by_owner: dict[str, set[int]], owner: str, key: int) -> None:
        held = by_owner.get(owner)
        if held is not None:
            held.discard(key)
            if not held:
                del by_owner[owner]

    def keys_held_by(self, owner: str) -> list[int]:
        """Keys held by exactly the owner key text ``owner``, ascending."""
        by_owner = self._by_owner
        if by_owner is None:
            if self._scans_left > 0:
                self._scans_left -= 1
                owners = self._owners
                return sorted(compress(owners, map(eq, repeat(owner), owners.values())))
            by_owner = self._by_owner = {}
            for key, text in self._owners.items():
                if text is not None:
                    held = by_owner.get(text)
                    if held is None:
                        by_owner[text] = {key}
                    else:
                        held.add(key)
        return sorted(by_owner.get(owner, ()))

    def first_free_key(self, low: int, high: int) -> int | None:
        """Smallest key in ``[low, high]`` not reserved."""
        return self._runs.first_absent(low, high)

    def export(self) -> tuple[list[int], list[str | None], list[int], list[int]]:
        """Keys, their owner texts (aligned) and the run bounds, for persisting."""
        starts, ends = self._runs.bounds()
        return list(self._owners), list(self._owners.values()), starts, ends

    @classmethod
    def load(cls, owners: dict[int, str | None], runs: Runs) -> Self:
        """An index over ``owners`` and ``runs`` (taken, not copied; the runs must describe exactly its keys)."""
        index = cls()
        index._owners = owners
        index._by_owner = None
        index._scans_left = _SCANS_BEFORE_MAP
        index._runs = runs
        return index


def release_owner_keys(index: KeyIndex, exact_text: str, legacy_text: str | None) -> list[int]:
    """Which keys DEL releases: those held by ``exact_text``, else those held by ``legacy_text`` (if given).

    ``exact_text`` is the owner's key text and ``legacy_text`` its container's
    legacy (ID-only) key text, None when the owner is itself legacy. Ascending.
    The one rule every store follows (the owner-level form is
    :func:`cnicore.stores._memory.release_owner_in_index`).
    """
    exact = index.keys_held_by(exact_text)
    if exact or legacy_text is None:
        return exact
    return index.keys_held_by(legacy_text)


def find_owner_keys(index: KeyIndex, exact_text: str, legacy_text: str | None) -> list[int]:
    """Keys held by ``exact_text`` or by ``legacy_text`` (if given), ascending (the reference's GetByID)."""
    found = index.keys_held_by(exact_text)
    if legacy_text is not None:
        found += index.keys_held_by(legacy_text)
    return sorted(found)
