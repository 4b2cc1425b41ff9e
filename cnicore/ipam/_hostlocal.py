"""host-local IPAM as operations: ADD, DEL, CHECK and GC over a store port.

These functions are the engine's (:mod:`cnicore.ipam._engine`: ``add``,
``delete``, ``check``, ``gc``) with typed values at the edge: they return
:class:`Allocation` and netaddr addresses; turning them into a CNI result of
some version is the result module's business. Each runs as one store
transaction, so unlike the reference (which locks per range set) a concurrent
ADD never sees half of another ADD.

Differences from the reference, all deliberate:

* a failed ADD releases exactly the addresses this ADD reserved (the reference
  releases everything the attachment holds, including older reservations);
* GC exists (the reference's is a no-op). It releases every reservation whose
  owner is not among the valid attachments, with one exception: a legacy
  (container-ID-only) reservation survives when its container ID appears in any
  valid attachment, because such a file cannot say which interface it was for
  and releasing it would take an address from a live container. Reservations
  with unreadable content are never released by GC either. GC covers every
  reservation of the network, whatever the configured ranges, except in a
  store shared by several hosts (one with its own ``gc(valid_owners)``, the
  etcd store): there the valid attachments are only this host's, so the store's
  own GC runs instead, over this host's reservations only.

Where reservations live follows the configuration: files under ``ipam.dataDir``
(:class:`~cnicore.stores.FileStore`), or etcd when ``ipam.store`` says so
(:class:`~cnicore.stores.EtcdStore`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import attrs
from netaddr import IPAddress  # type: ignore[import-untyped, unused-ignore]

from cnicore.ipam import _engine
from cnicore.ipam._allocator import AllocatedIP
from cnicore.ipam._config import IPAMConfig, Route, load_ipam_config
from cnicore.ipam._dns import DNS
from cnicore.ipam._keyport import key_port
from cnicore.stores._index import key_ip, key_owner
from cnicore.stores._port import IPStore, Owner, Reservation

__all__ = ["Allocation", "HostLocalIPAM", "add", "check", "delete", "gc", "make_owner"]


@attrs.frozen(slots=True, kw_only=True)
class Allocation:
    """What an ADD produced: one address per range set (in order), plus routes and DNS from the config."""

    ips: tuple[AllocatedIP, ...]
    routes: tuple[Route, ...] = ()
    dns: DNS = attrs.field(factory=DNS)

    @classmethod
    def from_plain(cls, allocated: Iterable[_engine.Allocated], routes: Iterable[_engine.RouteValue],
                   dns: _engine.DNSValue) -> Allocation:
        """The typed value of what the engine's ADD returned, with the configuration's routes."""
        return cls(ips=tuple(AllocatedIP.from_plain(a) for a in allocated),
                   routes=tuple(Route.from_plain(r) for r in routes), dns=DNS.from_plain(dns))


def make_owner(container_id: str, ifname: str) -> Owner:
    """The reservation owner for an attachment, with cnicore errors for unusable identifiers."""
    trimmed, name = _engine.attachment_owner(container_id, ifname)
    return Owner(container_id=trimmed, ifname=name)


def add(config: IPAMConfig, store: IPStore, container_id: str, ifname: str) -> Allocation:
    """Allocate one address per range set for ``(container_id, ifname)``, all or nothing.

    Raises:
        InvalidConfigError: unreadable resolvConf, requested address unusable or left over.
        AddressConflictError / AddressExhaustedError: wrapped ``failed to allocate for range N: ...``.
    """
    return _add(config, lambda: store, container_id, ifname)


def _add(config: IPAMConfig, open_store: Callable[[], IPStore], container_id: str, ifname: str) -> Allocation:
    """:func:`add` on the store ``open_store`` gives, opened only once ``resolvConf`` has been read."""
    allocated, dns = _engine.add(config.plain(), lambda: key_port(open_store()), container_id, ifname)
    return Allocation(ips=tuple(AllocatedIP.from_plain(a) for a in allocated), routes=config.routes,
                      dns=DNS.from_plain(dns))


def delete(config: IPAMConfig, store: IPStore, container_id: str, ifname: str) -> tuple[IPAddress, ...]:
    """Release what ``(container_id, ifname)`` holds; unknown attachments succeed. Idempotent.

    As in the reference, the release runs once per range set: exact matches go
    first and a container's legacy ID-only reservations go when no exact match
    is left. Returns the released addresses.
    """
    return tuple(key_ip(key) for key in _engine.delete(config.plain(), key_port(store), container_id, ifname))


def check(config: IPAMConfig, store: IPStore, container_id: str, ifname: str) -> tuple[IPAddress, ...]:
    """Succeed when ``(container_id, ifname)`` (or its container's legacy form) holds an address.

    Any address in ``store`` counts, whatever ``config``'s ranges, as in the
    reference (``config`` is taken for the same call shape as :func:`add` and
    :func:`delete`; :class:`HostLocalIPAM` opens the store it names). Returns
    the addresses found. Raises :class:`NotFoundError`
    (``host-local: Failed to find address added by container <id>``) otherwise.
    """
    del config  # not consulted: see above
    return tuple(key_ip(key) for key in _engine.check(key_port(store), container_id, ifname))


def gc(store: IPStore, valid_attachments: Iterable[tuple[str, str]]) -> tuple[Reservation, ...]:
    """Release every reservation that belongs to no valid attachment (see the module notes on legacy files).

    Also sweeps the store's own debris. Returns the released reservations, by
    address. Idempotent. A store with its own ``gc`` (shared between hosts)
    decides what is this host's; the owners reported are then those read just
    before it ran.
    """
    released = _engine.gc(key_port(store), valid_attachments)
    return tuple(Reservation(ip=key_ip(key), owner=None if text is None else key_owner(text))
                 for key, text in released)


ConfigInput = IPAMConfig | str | bytes | bytearray | Mapping[str, Any]


class HostLocalIPAM:
    """host-local for a long-lived process (or one exec): config loading plus ADD/DEL/CHECK/GC.

    Stores are opened by ``store_factory`` and kept open, so their indexes make every
    operation cheap: one per ``(dataDir, network name)``, or per ``(ipam.store
    settings, network name)`` when ``ipam.store`` is set. The default factory opens
    a :class:`~cnicore.stores.FileStore`, or an :class:`~cnicore.stores.EtcdStore`
    when the configuration selects etcd. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, store_factory: Callable[[IPAMConfig], IPStore] | None = None) -> None:
        self._factory = store_factory or _default_store
        self._stores: dict[Hashable, IPStore] = {}

    def load(self, config: ConfigInput, cni_args: str = "") -> IPAMConfig:
        """Load the configuration (a loaded :class:`IPAMConfig` passes through)."""
        if isinstance(config, IPAMConfig):
            return config
        return load_ipam_config(config, cni_args)

    def store_for(self, config: IPAMConfig) -> IPStore:
        """The (cached) store of the configuration's network."""
        # The whole etcd settings (endpoints, prefix, host, block sizes...) are the key: two configurations that
        # differ in any of them must not share a store that was opened with the other's.
        key: Hashable = ("file", config.data_dir, config.name) if config.store is None else \
            ("etcd", config.store, config.name)
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = self._factory(config)
        return store

    def add(self, config: ConfigInput, container_id: str, ifname: str, cni_args: str = "") -> Allocation:
        """ADD: see :func:`add`."""
        loaded = self.load(config, cni_args)
        return _add(loaded, lambda: self.store_for(loaded), container_id, ifname)

    def delete(self, config: ConfigInput, container_id: str, ifname: str, cni_args: str = "") -> tuple[IPAddress, ...]:
        """DEL: see :func:`delete`."""
        loaded = self.load(config, cni_args)
        return delete(loaded, self.store_for(loaded), container_id, ifname)

    def check(self, config: ConfigInput, container_id: str, ifname: str, cni_args: str = "") -> tuple[IPAddress, ...]:
        """CHECK: see :func:`check`."""
        loaded = self.load(config, cni_args)
        return check(loaded, self.store_for(loaded), container_id, ifname)

    def gc(self, config: ConfigInput, valid_attachments: Iterable[tuple[str, str]]) -> tuple[Reservation, ...]:
        """GC: see :func:`gc`."""
        loaded = self.load(config)
        return gc(self.store_for(loaded), valid_attachments)

    def close(self) -> None:
        """Close every store opened here. Idempotent."""
        stores, self._stores = self._stores, {}
        for store in stores.values():
            store.close()

    def __enter__(self) -> HostLocalIPAM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _default_store(config: IPAMConfig) -> IPStore:
    """The store the configuration selects: etcd (``ipam.store``) or the reference's files (``ipam.dataDir``)."""
    # Imported here so that the decision-making modules load without the file or network machinery.
    if config.store is not None:
        from cnicore.stores._etcd import EtcdStore

        return EtcdStore(config.name, config.store)
    from cnicore.stores._file import FileStore

    return FileStore(config.data_dir, config.name)
