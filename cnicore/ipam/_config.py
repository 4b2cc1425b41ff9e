"""host-local's IPAM configuration as a typed value, loaded by the engine.

:func:`load_ipam_config` reads the full plugin configuration and ``CNI_ARGS``
exactly as the reference does (the engine's
:func:`~cnicore.ipam._engine.decode_config`, whose notes give the order of the
checks, Go's key matching and ``null`` rules) and returns an
:class:`IPAMConfig` of netaddr addresses and attrs values. Errors are
:class:`~cnicore.InvalidConfigError` (code 7) naming the key path and value.
(The reference plugin reports all of these as code 999; the exec layer decides
which code it prints.)

One key goes beyond the reference: ``ipam.store`` chooses where reservations
live. Absent (or ``null``), they are files under ``ipam.dataDir`` exactly as the
reference keeps them. ``{"type": "etcd", ...}`` selects the etcd store, shared by
every host of the network (see :func:`~cnicore.stores.parse_etcd_store_config`
for its keys); any other ``type`` is rejected. The reference plugin ignores keys
it does not know, so it still reads such a configuration without error, but it
would keep its reservations in ``dataDir``, apart from the etcd ones: every host
of a network using the etcd store must run cnicore. The store object is checked
after everything the reference checks, so a configuration with several faults
reports the reference's error first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore.ipam import _engine
from cnicore.ipam._engine import DEFAULT_DATA_DIR, STORE_TYPES, PlainConfig
from cnicore.ipam._range import RangeSet

if TYPE_CHECKING:
    # Loaded with ipam.store only: an exec'd host-local on the file store does without it.
    from cnicore.stores._etcd_config import EtcdStoreConfig

__all__ = ["DEFAULT_DATA_DIR", "STORE_TYPES", "IPAMConfig", "Route", "load_ipam_config", "parse_requested_ip"]


@attrs.frozen(slots=True, kw_only=True)
class Route:
    """A route from ``ipam.routes``, copied into results as given (``dst`` keeps host bits)."""

    dst: IPNetwork = attrs.field(eq=False)
    gw: IPAddress | None = None
    mtu: int | None = None
    advmss: int | None = None
    priority: int | None = None
    table: int | None = None
    scope: int | None = None
    _dst_key: tuple[int, int, int] = attrs.field(init=False, repr=False)

    @_dst_key.default
    def _key(self) -> tuple[int, int, int]:
        return (self.dst.version, int(self.dst.ip), self.dst.prefixlen)

    @classmethod
    def from_plain(cls, route: _engine.RouteValue) -> Route:
        """The typed value of an engine route."""
        (version, value, prefix), gw, mtu, advmss, priority, table, scope = route
        return cls(dst=IPNetwork((value, prefix), version=version),
                   gw=None if gw is None else IPAddress(gw[1], gw[0]), mtu=mtu, advmss=advmss, priority=priority,
                   table=table, scope=scope)

    def plain(self) -> _engine.RouteValue:
        """The engine's value of this route."""
        gw = None if self.gw is None else (int(self.gw.version), int(self.gw))
        return ((int(self.dst.version), int(self.dst.ip), int(self.dst.prefixlen)), gw, self.mtu, self.advmss,
                self.priority, self.table, self.scope)


@attrs.frozen(slots=True, kw_only=True)
class IPAMConfig:
    """host-local's configuration, canonical and checked.

    Attributes:
        name: the network name (also the store directory's name).
        cni_version: the configuration's ``cniVersion`` ("" when absent).
        type: ``ipam.type``.
        range_sets: one address is allocated from each, in this order.
        requested_ips: addresses asked for by ``CNI_ARGS`` ``IP``, ``args.cni.ips`` and
            ``runtimeConfig.ips``, in that order, duplicates removed.
        routes: ``ipam.routes``.
        data_dir: ``ipam.dataDir`` or ``/var/lib/cni/networks``.
        resolv_conf: ``ipam.resolvConf`` ("" when absent).
        store: the etcd store's settings from ``ipam.store``, or None (absent): the
            file store under ``data_dir``. The reference plugin ignores ``ipam.store``.
    """

    name: str
    cni_version: str
    type: str = "host-local"
    range_sets: tuple[RangeSet, ...]
    requested_ips: tuple[IPAddress, ...] = ()
    routes: tuple[Route, ...] = ()
    data_dir: str = DEFAULT_DATA_DIR
    resolv_conf: str = ""
    store: EtcdStoreConfig | None = None

    def plain(self) -> PlainConfig:
        """What the engine's operations need of this configuration (its ``store`` is the typed adapter's)."""
        return PlainConfig(self.name, self.cni_version, self.type, [s.plain for s in self.range_sets],
                           [(int(ip.version), int(ip)) for ip in self.requested_ips], (), self.data_dir,
                           self.resolv_conf)

    @classmethod
    def from_plain(cls, plain: PlainConfig) -> IPAMConfig:
        """The typed value of an engine configuration; reads the etcd store's settings when ``ipam.store`` is set.

        Raises:
            InvalidConfigError: bad etcd store settings.
        """
        store = None
        if plain.store is not None:
            from cnicore.stores._etcd_config import parse_etcd_store_config

            store = parse_etcd_store_config(plain.store, key=plain.store_key)
        return cls(name=plain.name, cni_version=plain.cni_version, type=plain.type,
                   range_sets=tuple(RangeSet.from_plain(s) for s in plain.range_sets),
                   requested_ips=tuple(IPAddress(value, version) for version, value in plain.requested),
                   routes=tuple(Route.from_plain(r) for r in plain.routes), data_dir=plain.data_dir,
                   resolv_conf=plain.resolv_conf, store=store)


def parse_requested_ip(text: str) -> IPAddress:
    """An ``ip.IP`` value (``CNI_ARGS`` ``IP``, ``args.cni.ips``, ``runtimeConfig.ips``): an address or a CIDR.

    The prefix of a CIDR is ignored, as in the reference.

    Raises:
        ValueError: ``invalid IP address <text>``.
    """
    version, value = _engine.parse_requested_ip(text)
    return IPAddress(value, version)


def load_ipam_config(config: str | bytes | bytearray | Mapping[str, Any], cni_args: str = "") -> IPAMConfig:
    """Load host-local's configuration from the full plugin configuration and ``CNI_ARGS``.

    Args:
        config: the plugin's stdin (JSON text) or an already decoded object.
        cni_args: the ``CNI_ARGS`` value; only ``IP`` (and ``IgnoreUnknown``) are understood.

    Raises:
        DecodingError: the JSON text is invalid (code 6).
        InvalidConfigError: anything the reference rejects, with its message (code 7).
    """
    if isinstance(config, Mapping) and not isinstance(config, dict):
        config = dict(config)
    return IPAMConfig.from_plain(_engine.decode_config(config, cni_args))
