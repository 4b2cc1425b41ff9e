"""The in-memory reservation index shared by the memory store and the file store.

:class:`ReservationIndex` is :class:`~cnicore.stores._keyindex.KeyIndex` (three
views of the same facts: address -> owner, owner -> addresses, runs of taken
addresses for "first free"; see there) plus the address and owner objects the
store port speaks in.

Internally an address is an integer *key* (:func:`ip_key`: the IPv4 value, or
the IPv6 value with bit 128 set, so that keys of the two families never meet
and sort IPv4 first) and an owner is a *key text* (:func:`owner_key`:
``<containerID>`` or ``<containerID> <ifname>``; neither part holds whitespace).
Plain integers and strings make the index cheap to rebuild in bulk from a
persisted copy (:meth:`KeyIndex.load <cnicore.stores._keyindex.KeyIndex.load>`):
no address or owner object is made until a caller asks for one.
"""

from __future__ import annotations

from collections.abc import Iterator

from netaddr import IPAddress  # type: ignore[import-untyped, unused-ignore]

from cnicore.stores._keyindex import V6_TAG, KeyIndex, Runs, owner_key_from_text
from cnicore.stores._port import Owner, Reservation

__all__ = ["V6_TAG", "KeyIndex", "ReservationIndex", "Runs", "ip_key", "key_ip", "key_owner", "owner_key",
           "owner_key_from_text", "owner_keys"]


def ip_key(ip: IPAddress) -> int:
    """The index key of an address."""
    return int(ip.value) if ip.version == 4 else int(ip.value) | V6_TAG


def key_ip(key: int) -> IPAddress:
    """The address of an index key."""
    return IPAddress(key, 4) if key < V6_TAG else IPAddress(key ^ V6_TAG, 6)


def owner_key(owner: Owner) -> str:
    """The key text of an owner: ``id`` (legacy) or ``id ifname``."""
    return owner.container_id if owner.ifname is None else owner.container_id + " " + owner.ifname


def owner_keys(owner: Owner) -> tuple[str, str | None]:
    """The key texts DEL and lookups of ``owner`` match: its own, and its container's legacy one (None if legacy)."""
    if owner.ifname is None:
        return owner.container_id, None
    return owner.container_id + " " + owner.ifname, owner.container_id


def key_owner(key: str) -> Owner:
    """The owner of a key text."""
    container_id, sep, ifname = key.partition(" ")
    return Owner(container_id=container_id, ifname=ifname if sep else None)


class ReservationIndex(KeyIndex):
    """Address <-> owner maps plus free-address search. Not thread-safe: callers lock."""

    __slots__ = ()

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, IPAddress) and ip_key(ip) in self._owners

    # ------------------------------------------------------------------ addresses and owners

    def put(self, ip: IPAddress, owner: Owner | None) -> None:
        """Record that ``ip`` is reserved by ``owner`` (replacing any previous owner)."""
        self.put_key(ip_key(ip), None if owner is None else owner_key(owner))

    def discard(self, ip: IPAddress) -> Owner | None:
        """Forget the reservation of ``ip``; returns its owner (None if unreadable or absent)."""
        key = ip_key(ip)
        text = self._owners.get(key)
        self.discard_key(key)
        return None if text is None else key_owner(text)

    def get(self, ip: IPAddress) -> Reservation | None:
        """The reservation of ``ip`` or None."""
        key = ip_key(ip)
        if key not in self._owners:
            return None
        text = self._owners[key]
        return Reservation(ip=ip, owner=None if text is None else key_owner(text))

    def held_by(self, owner: Owner) -> list[IPAddress]:
        """Addresses held by exactly ``owner``, sorted."""
        return [key_ip(key) for key in self.keys_held_by(owner_key(owner))]

    def first_free(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        """Lowest unreserved address in ``[low, high]``."""
        if low.version != high.version:
            raise ValueError("first_free: low and high must be of one family")
        found = self._runs.first_absent(ip_key(low), ip_key(high))
        return None if found is None else key_ip(found)

    def items(self) -> Iterator[Reservation]:
        """A snapshot of every reservation."""
        return iter([Reservation(ip=key_ip(key), owner=None if text is None else key_owner(text))
                     for key, text in self._owners.items()])
