"""The in-memory reservation index shared by the memory store and the file store.

Three views of the same facts, kept in step by :meth:`ReservationIndex.put` and
:meth:`ReservationIndex.discard`:

* address -> owner (None for unreadable content), for "who holds X";
* owner -> addresses, for DEL/CHECK/duplicate checks without a scan;
* per family, the maximal runs of consecutive reserved addresses, for "first free
  address in [low, high]" in O(log runs) however many addresses are taken.

Nothing here grows with the size of a range: a /8 or an IPv6 /64 costs what its
reservations cost.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator

from netaddr import IPAddress  # type: ignore[import-untyped, unused-ignore]

from cnicore.stores._port import Owner, Reservation

__all__ = ["ReservationIndex", "Runs"]


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
        # Runs are maximal, so the address right after a run is free.
        return candidate if candidate <= high else None


class ReservationIndex:
    """Address <-> owner maps plus free-address search. Not thread-safe: callers lock."""

    __slots__ = ("_by_ip", "_by_owner", "_runs")

    def __init__(self) -> None:
        self._by_ip: dict[IPAddress, Owner | None] = {}
        self._by_owner: dict[Owner, set[IPAddress]] = {}
        self._runs = {4: Runs(), 6: Runs()}

    def __len__(self) -> int:
        return len(self._by_ip)

    def __contains__(self, ip: object) -> bool:
        return ip in self._by_ip

    def clear(self) -> None:
        """Forget everything."""
        self._by_ip.clear()
        self._by_owner.clear()
        self._runs = {4: Runs(), 6: Runs()}

    def put(self, ip: IPAddress, owner: Owner | None) -> None:
        """Record that ``ip`` is reserved by ``owner`` (replacing any previous owner)."""
        if ip in self._by_ip:
            self.discard(ip)
        self._by_ip[ip] = owner
        if owner is not None:
            self._by_owner.setdefault(owner, set()).add(ip)
        self._runs[ip.version].add(ip.value)

    def discard(self, ip: IPAddress) -> Owner | None:
        """Forget the reservation of ``ip``; returns its owner (None if unreadable or absent)."""
        if ip not in self._by_ip:
            return None
        owner = self._by_ip.pop(ip)
        if owner is not None:
            held = self._by_owner.get(owner)
            if held is not None:
                held.discard(ip)
                if not held:
                    del self._by_owner[owner]
        self._runs[ip.version].remove(ip.value)
        return owner

    def get(self, ip: IPAddress) -> Reservation | None:
        """The reservation of ``ip`` or None."""
        if ip not in self._by_ip:
            return None
        return Reservation(ip=ip, owner=self._by_ip[ip])

    def held_by(self, owner: Owner) -> list[IPAddress]:
        """Addresses held by exactly ``owner``, sorted."""
        return sorted(self._by_owner.get(owner, ()))

    def first_free(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        """Lowest unreserved address in ``[low, high]``."""
        if low.version != high.version:
            raise ValueError("first_free: low and high must be of one family")
        found = self._runs[low.version].first_absent(low.value, high.value)
        return None if found is None else IPAddress(found, low.version)

    def items(self) -> Iterator[Reservation]:
        """A snapshot of every reservation."""
        return iter([Reservation(ip=ip, owner=owner) for ip, owner in self._by_ip.items()])
