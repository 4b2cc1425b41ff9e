"""``ls``: the reservations of a network's host-local stores (address, owner, range set, age), read-only.

The file store is read with :func:`cnicore.stores.read_reservations` (no lock held, nothing created), the etcd
store through its store port.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from cnicore._errors import CNIError, InvalidConfigError
from cnicore.cli._output import EXIT_OK

if TYPE_CHECKING:
    from cnicore.config import NetworkConfigList
    from cnicore.ipam import IPAMConfig

# How long to wait for a shared hold of the store's lock to re-read files that looked mid-write.
_LS_LOCK_WAIT = 1.0
_sleep = time.sleep  # how ls waits for the lock (a seam for the tests)


class _Listed:
    """One reservation as ``ls`` shows it."""

    def __init__(self, ip: Any, owner: Any, range_set: int | None, mtime: float | None, store: str,
                 location: str) -> None:
        self.ip = ip
        self.owner = owner
        self.range_set = range_set
        self.mtime = mtime
        self.store = store
        self.location = location



def _ipam_configs(network: NetworkConfigList) -> list[IPAMConfig]:
    """The host-local configuration of each plugin using it, one per distinct store."""
    from cnicore.config import build_request
    from cnicore.ipam import load_ipam_config

    configs: list[IPAMConfig] = []
    seen: set[Any] = set()
    for index, plugin in enumerate(network.plugins):
        if plugin.ipam_type != "host-local":
            continue
        try:
            config = load_ipam_config(build_request(network, index))
        except CNIError as exc:
            raise _with_key_prefix(exc, f"plugins[{index}].") from exc
        identity = ("etcd", config.store) if config.store is not None else ("file", config.data_dir)
        if identity not in seen:
            seen.add(identity)
            configs.append(config)
    if not configs:
        raise InvalidConfigError(f"network {network.name} has no plugin with host-local IPAM", key="plugins",
                                 value=[p.type for p in network.plugins])
    return configs


def _with_key_prefix(exc: CNIError, prefix: str) -> CNIError:
    """The same error with its key path under ``prefix`` (and the details saying so)."""
    if not exc.key:
        return exc
    extra: dict[str, Any] = {"value": exc.value} if exc.has_value else {}
    return type(exc)(exc.msg, code=exc.code, key=prefix + exc.key, **extra)


def _range_set_of(config: IPAMConfig, ip: Any) -> int | None:
    return next((index for index, range_set in enumerate(config.range_sets) if range_set.contains(ip)), None)



def _list_file_store(network: str, config: IPAMConfig) -> list[_Listed]:
    """The reservation files of a network, as the file store's read-only listing gives them."""
    from cnicore.stores import network_dir, read_reservations

    path = str(network_dir(config.data_dir, network))
    found = read_reservations(config.data_dir, network, lock_wait=_LS_LOCK_WAIT, sleep=lambda s: _sleep(s))
    return [_Listed(r.ip, r.owner, _range_set_of(config, r.ip), mtime, "file", path) for r, mtime in found]


def _list_etcd_store(network: str, config: IPAMConfig) -> list[_Listed]:
    from cnicore.stores import EtcdStore

    assert config.store is not None
    location = ",".join(config.store.endpoints) + " " + f"{config.store.prefix}/{network}"
    with EtcdStore(network, config.store) as store:
        return [_Listed(r.ip, r.owner, _range_set_of(config, r.ip), None, "etcd", location)
                for r in store.reservations()]


def _age_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size or parts:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    parts.append(f"{seconds}s")
    return "".join(parts[:2])


def ls(args: argparse.Namespace) -> int:
    from cnicore.config import load_network_config
    from cnicore.spec import go_ip_text

    settings, out = args.settings, args.output
    network = load_network_config(settings.conf_dir, args.network)
    listed: list[_Listed] = []
    for config in _ipam_configs(network):
        entries = _list_etcd_store(network.name, config) if config.store else _list_file_store(network.name, config)
        listed += sorted(entries, key=lambda e: (e.ip.version, int(e.ip)))
    now = time.time()
    if out.json:
        out.document([{
            "ip": go_ip_text(e.ip),
            "containerId": e.owner.container_id if e.owner is not None else None,
            "ifName": e.owner.ifname if e.owner is not None else None,
            "rangeSet": e.range_set,
            "ageSeconds": None if e.mtime is None else round(max(0.0, now - e.mtime), 3),
            "store": e.store,
            "location": e.location,
        } for e in listed])
        return EXIT_OK
    stores = sorted({(e.store, e.location) for e in listed})
    where = f" in {stores[0][0]} store {stores[0][1]}" if len(stores) == 1 else ""
    out.line(f"network {network.name}: {len(listed)} reservation(s){where}")
    if not listed:
        return EXIT_OK
    rows = [["ADDRESS", "CONTAINER", "IFNAME", "RANGE SET", "AGE"] + (["STORE"] if len(stores) > 1 else [])]
    for e in listed:
        container = e.owner.container_id if e.owner is not None else "(unreadable)"
        ifname = (e.owner.ifname or "(legacy: any)") if e.owner is not None else "-"
        row = [go_ip_text(e.ip), container, ifname, "-" if e.range_set is None else str(e.range_set),
               "-" if e.mtime is None else _age_text(now - e.mtime)]
        rows.append(row + ([f"{e.store} {e.location}"] if len(stores) > 1 else []))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.line("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK
