"""host-local IPAM: ranges, range sets, configuration loading, the allocator and ADD/DEL/CHECK/GC.

The decisions are the engine's (:mod:`cnicore.ipam._engine`: standard library
only, on plain values; the executed host-local plugin runs it directly). The
names here are its typed face: attrs values with netaddr addresses, over any
store of :mod:`cnicore.stores` through the store port. Typical use::

    from cnicore.ipam import HostLocalIPAM

    with HostLocalIPAM() as ipam:
        allocation = ipam.add(stdin_bytes, container_id, ifname, cni_args)
        for ip in allocation.ips:
            print(ip.address, ip.gateway)

With an explicit store (e.g. :class:`~cnicore.stores.MemoryStore`) use the
functions: ``add(load_ipam_config(conf), store, cid, ifname)``.

The names load on first use: importing the engine (a submodule) must not load
attrs and netaddr.
"""

from cnicore._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cnicore.ipam._allocator import AllocatedIP, allocate, candidate_spans
    from cnicore.ipam._config import DEFAULT_DATA_DIR, IPAMConfig, Route, load_ipam_config, parse_requested_ip
    from cnicore.ipam._dns import DNS, load_resolv_conf, parse_resolv_conf
    from cnicore.ipam._hostlocal import Allocation, HostLocalIPAM, add, check, delete, gc, make_owner
    from cnicore.ipam._range import Range, RangeSet, network_text

__all__ = [
    "DEFAULT_DATA_DIR",
    "DNS",
    "AllocatedIP",
    "Allocation",
    "HostLocalIPAM",
    "IPAMConfig",
    "Range",
    "RangeSet",
    "Route",
    "add",
    "allocate",
    "candidate_spans",
    "check",
    "delete",
    "gc",
    "load_ipam_config",
    "load_resolv_conf",
    "make_owner",
    "network_text",
    "parse_requested_ip",
    "parse_resolv_conf",
]

_LAZY = {
    "AllocatedIP": "_allocator", "allocate": "_allocator", "candidate_spans": "_allocator",
    "DEFAULT_DATA_DIR": "_config", "IPAMConfig": "_config", "Route": "_config", "load_ipam_config": "_config",
    "parse_requested_ip": "_config",
    "DNS": "_dns", "load_resolv_conf": "_dns", "parse_resolv_conf": "_dns",
    "Allocation": "_hostlocal", "HostLocalIPAM": "_hostlocal", "add": "_hostlocal", "check": "_hostlocal",
    "delete": "_hostlocal", "gc": "_hostlocal", "make_owner": "_hostlocal",
    "Range": "_range", "RangeSet": "_range", "network_text": "_range",
}

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
