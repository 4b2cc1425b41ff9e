"""host-local IPAM: ranges, range sets, configuration loading, the allocator and ADD/DEL/CHECK/GC.

The decisions live here and are pure; reservations live in a store
(:mod:`cnicore.stores`) behind a small port. Typical use::

    from cnicore.ipam import HostLocalIPAM

    with HostLocalIPAM() as ipam:
        allocation = ipam.add(stdin_bytes, container_id, ifname, cni_args)
        for ip in allocation.ips:
            print(ip.address, ip.gateway)

With an explicit store (e.g. :class:`~cnicore.stores.MemoryStore`) use the
functions: ``add(load_ipam_config(conf), store, cid, ifname)``.
"""

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
