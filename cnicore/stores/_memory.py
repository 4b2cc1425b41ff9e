"""The in-memory store: the reference semantics of the store port, and a product in its own right.

Use it for tests, dry runs and embedding; every other store is checked against
it. It is thread-safe (one re-entrant lock) and keeps nothing on disk.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager

from netaddr import IPAddress  # type: ignore[import-untyped, unused-ignore]

from cnicore.stores._goip import canonical_ip
from cnicore.stores._index import ReservationIndex, key_ip, owner_keys
from cnicore.stores._keyindex import find_owner_keys, release_owner_keys
from cnicore.stores._port import Owner, Reservation

__all__ = ["MemoryStore", "release_owner_in_index"]


def release_owner_in_index(index: ReservationIndex, owner: Owner) -> list[IPAddress]:
    """Which addresses DEL of ``owner`` releases: exact matches, else the legacy ID-only ones.

    Shared by the stores so that they cannot disagree on the rule (which is
    :func:`~cnicore.stores._keyindex.release_owner_keys`, on key texts).
    """
    return [key_ip(key) for key in release_owner_keys(index, *owner_keys(owner))]


def find_owner_in_index(index: ReservationIndex, owner: Owner) -> list[IPAddress]:
    """Addresses held by ``owner`` or by the legacy form of its container (the reference's GetByID)."""
    return [key_ip(key) for key in find_owner_keys(index, *owner_keys(owner))]


class MemoryStore:
    """A store port implementation that keeps reservations in memory.

    Args:
        reservations: optional initial ``{ip: owner}`` (owner None = unreadable content).
    """

    def __init__(self, reservations: dict[IPAddress, Owner | None] | None = None) -> None:
        self._lock = threading.RLock()
        self._index = ReservationIndex()
        self._last: dict[str, IPAddress] = {}
        for ip, owner in (reservations or {}).items():
            self._index.put(canonical_ip(ip), owner)

    def transaction(self) -> AbstractContextManager[None]:
        """Exclusive section (a re-entrant thread lock)."""
        return _Locked(self._lock)

    def reserve(self, ip: IPAddress, owner: Owner, range_id: str) -> bool:
        """Create-if-absent; records ``range_id``'s last reserved address. Not idempotent."""
        ip = canonical_ip(ip)
        with self._lock:
            if ip in self._index:
                return False
            self._index.put(ip, owner)
            self._last[range_id] = ip
            return True

    def release(self, ip: IPAddress, owner: Owner) -> bool:
        """Delete ``ip``'s reservation if ``owner`` holds it. Idempotent."""
        ip = canonical_ip(ip)
        with self._lock:
            current = self._index.get(ip)
            if current is None or current.owner != owner:
                return False
            self._index.discard(ip)
            return True

    def release_owner(self, owner: Owner) -> Sequence[IPAddress]:
        """Release all of ``owner`` (legacy fallback as in the reference). Idempotent."""
        with self._lock:
            released = release_owner_in_index(self._index, owner)
            for ip in released:
                self._index.discard(ip)
            return released

    def find_owner(self, owner: Owner) -> Sequence[IPAddress]:
        """Addresses held by ``owner`` or its container's legacy form. Read-only."""
        with self._lock:
            return find_owner_in_index(self._index, owner)

    def reservation(self, ip: IPAddress) -> Reservation | None:
        """The reservation of ``ip`` or None. Read-only."""
        with self._lock:
            return self._index.get(canonical_ip(ip))

    def first_free(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        """Lowest unreserved address in ``[low, high]``. Read-only."""
        with self._lock:
            return self._index.first_free(low, high)

    def last_reserved(self, range_id: str) -> IPAddress | None:
        """Last address reserved for ``range_id``. Read-only."""
        with self._lock:
            return self._last.get(range_id)

    def reservations(self) -> Iterator[Reservation]:
        """Snapshot of all reservations. Read-only."""
        with self._lock:
            return self._index.items()

    def sweep(self) -> int:
        """Nothing to sweep in memory. Idempotent."""
        return 0

    def close(self) -> None:
        """Nothing to release. Idempotent."""

    def __len__(self) -> int:
        return len(self._index)


class _Locked(AbstractContextManager[None]):
    __slots__ = ("_lock",)

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
