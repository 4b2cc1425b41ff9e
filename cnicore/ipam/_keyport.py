"""The engine's key-level store port over any typed store (:class:`~cnicore.stores.IPStore`).

The engine (:mod:`cnicore.ipam._engine`) speaks in address keys and owner key
texts. The file store's core has that face already, so a
:class:`~cnicore.stores.FileStore` is used as it is; any other store (the
memory store, the etcd store, a user's) is wrapped here: each call converts
keys to netaddr addresses and key texts to :class:`~cnicore.stores.Owner`
values and back, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from netaddr import IPAddress  # type: ignore[import-untyped, unused-ignore]

from cnicore.stores._index import ip_key, key_ip, key_owner, owner_key
from cnicore.stores._port import IPStore, Owner

if TYPE_CHECKING:
    from cnicore.ipam._engine import KeyStore, OwnerValue

__all__ = ["key_port"]


@runtime_checkable
class _CollectsOwnGarbage(Protocol):
    """A store shared between hosts that knows which reservations are this host's to collect."""

    def gc(self, valid: Iterable[Owner]) -> Sequence[IPAddress]:
        ...


class _PortKeys:
    """An :class:`~cnicore.stores.IPStore` seen through the engine's key-level port."""

    __slots__ = ("picks_own_order", "store")

    def __init__(self, store: IPStore) -> None:
        self.store = store
        self.picks_own_order = bool(getattr(store, "picks_own_order", False))

    def transaction(self) -> AbstractContextManager[None]:
        return self.store.transaction()

    def reserve_key(self, key: int, owner_text: str, range_id: str) -> bool:
        return self.store.reserve(key_ip(key), key_owner(owner_text), range_id)

    def release_key(self, key: int, owner_text: str) -> bool:
        return self.store.release(key_ip(key), key_owner(owner_text))

    def release_owner_keys(self, exact_text: str, legacy_text: str | None) -> list[int]:
        # The port's release_owner applies the legacy fallback itself (legacy_text is the exact owner's container).
        return [ip_key(ip) for ip in self.store.release_owner(key_owner(exact_text))]

    def find_owner_keys(self, exact_text: str, legacy_text: str | None) -> list[int]:
        return [ip_key(ip) for ip in self.store.find_owner(key_owner(exact_text))]

    def first_free_key(self, low: int, high: int) -> int | None:
        found = self.store.first_free(key_ip(low), key_ip(high))
        return None if found is None else ip_key(found)

    def last_reserved_key(self, range_id: str) -> int | None:
        found = self.store.last_reserved(range_id)
        return None if found is None else ip_key(found)

    def reservation_keys(self) -> list[tuple[int, str | None]]:
        return [(ip_key(r.ip), None if r.owner is None else owner_key(r.owner)) for r in self.store.reservations()]

    def sweep(self) -> int:
        return self.store.sweep()


class _SharedPortKeys(_PortKeys):
    """A store shared between hosts: it decides which reservations GC may release (see the engine's ``gc``)."""

    __slots__ = ()

    def collect_garbage_keys(self, valid: Iterable[OwnerValue]) -> list[int]:
        store = self.store
        assert isinstance(store, _CollectsOwnGarbage)
        owners = [Owner(container_id=container_id, ifname=ifname) for container_id, ifname in valid]
        return [ip_key(ip) for ip in store.gc(owners)]


def key_port(store: IPStore) -> KeyStore:
    """``store`` as the engine's :class:`~cnicore.ipam._engine.KeyStore` (a file store as it is)."""
    from cnicore.stores._filecore import FileStoreCore

    if isinstance(store, FileStoreCore):
        return store
    if isinstance(store, _CollectsOwnGarbage):
        return _SharedPortKeys(store)
    return _PortKeys(store)
