"""The portmap plugin's iptables layout (table ``nat``), as plain :class:`~cnicore.links.RuleEdit` values.

The reference's layout, chain for chain and comment for comment, so a host can
run both and either removes what the other added:

* ``PREROUTING`` and ``OUTPUT`` jump to ``CNI-HOSTPORT-DNAT`` for traffic to a
  local address (``-m addrtype --dst-type LOCAL``);
* ``CNI-HOSTPORT-DNAT`` jumps to the container's chain ``CNI-DN-<hash>`` (see
  :func:`~cnicore.links.masquerade_chain_name`) for its protocols and host ports
  (``-m multiport``, at most 15 ports a rule, comment ``dnat name: "<net>" id:
  "<cid>"``, plus ``conditionsV4``/``conditionsV6``). Upstream's current plugin
  puts these jumps first in the chain (the container that claimed a port last
  wins); Debian's 1.1.1 appends them. We follow upstream.
* ``CNI-DN-<hash>`` holds per mapping: with ``snat`` (the default), a jump to
  the set-mark chain for hairpin traffic (from the container's subnet, or from
  anywhere with ``masqAll``) and, for IPv4 without ``masqAll``, for traffic
  from 127.0.0.1; then the DNAT to the container's address and port. A
  ``hostIP`` (not ``0.0.0.0``/``::``) restricts the mapping to that destination
  and to its address family;
* ``CNI-HOSTPORT-SETMARK`` sets the mark bit ``markMasqBit`` (default 13;
  comment ``CNI portfwd masquerade mark``), unless ``externalSetMarkChain``
  names a chain of the administrator's; ``CNI-HOSTPORT-MASQ``, jumped to first
  from ``POSTROUTING`` (comment ``CNI portfwd requiring masquerade``),
  masquerades what carries the mark.

DEL drops the container's chain and every jump to it (and the ``CNI-SN-``
chain of plugins older than the reference's current layout); the shared chains
stay.
"""

from __future__ import annotations

from typing import Final

import attrs
import netaddr

from ._masquerade import masquerade_chain_name
from ._rules import RuleEdit, RuleOp

__all__ = [
    "PORTMAP_DNAT_CHAIN",
    "PORTMAP_MASQ_CHAIN",
    "PORTMAP_SETMARK_CHAIN",
    "PortMapping",
    "portmap_add_edit",
    "portmap_chain_name",
    "portmap_del_edit",
    "portmap_dnat_rules",
]

PORTMAP_DNAT_CHAIN: Final = "CNI-HOSTPORT-DNAT"
PORTMAP_SETMARK_CHAIN: Final = "CNI-HOSTPORT-SETMARK"
PORTMAP_MASQ_CHAIN: Final = "CNI-HOSTPORT-MASQ"
_MULTIPORT_MAX = 15
_COMMENT_MAX = 255


@attrs.frozen(kw_only=True)
class PortMapping:
    """One entry of the ``portMappings`` capability."""

    host_port: int
    container_port: int
    protocol: str = ""
    host_ip: str = ""


def portmap_chain_name(network_name: str, container_id: str) -> str:
    """``CNI-DN-`` + hex digits: the container's chain."""
    return masquerade_chain_name(network_name, container_id, "DN-")


def _mark(bit: int) -> str:
    value = 1 << bit
    return f"{value:#x}/{value:#x}"


def _ip_port(ip: netaddr.IPAddress, port: int) -> str:
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def portmap_dnat_rules(mappings: list[PortMapping], container: netaddr.IPNetwork, *, network_name: str,
                       container_id: str, snat: bool, masq_all: bool, set_mark_chain: str,
                       conditions: list[str]) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """The container chain's entry rules (without ``-j``) and rules, in the reference's order."""
    v6 = container.version == 6
    comment = f'dnat name: "{network_name}" id: "{container_id}"'
    if len(comment.encode()) > _COMMENT_MAX:
        comment = comment.encode()[:253].decode("utf-8", "ignore") + "..."
    by_protocol: dict[str, list[int]] = {}
    for mapping in mappings:
        by_protocol.setdefault(mapping.protocol, []).append(mapping.host_port)
    entry_rules: list[tuple[str, ...]] = []
    for protocol in sorted(by_protocol):
        ports = [str(p) for p in by_protocol[protocol]]
        for start in range(0, len(ports), _MULTIPORT_MAX):
            entry_rules.append(("-m", "comment", "--comment", comment, "-m", "multiport", "-p", protocol,
                                "--destination-ports", ",".join(ports[start:start + _MULTIPORT_MAX]),
                                *conditions))
    rules: list[tuple[str, ...]] = []
    for mapping in mappings:
        base: tuple[str, ...] = ("-p", mapping.protocol, "--dport", str(mapping.host_port))
        if mapping.host_ip:
            host = _go_parse_ip(mapping.host_ip)
            if (host is None or host.version == 6) != v6:
                continue
            if host is not None and int(host) != 0:
                base += ("-d", mapping.host_ip)
        if snat:
            source = ("::/0" if v6 else "0.0.0.0/0") if masq_all else str(container)
            rules.append((*base, "-s", source, "-j", set_mark_chain))
            if not v6 and not masq_all:
                rules.append((*base, "-s", "127.0.0.1", "-j", set_mark_chain))
        rules.append((*base, "-j", "DNAT", "--to-destination", _ip_port(container.ip, mapping.container_port)))
    return entry_rules, rules


def _go_parse_ip(text: str) -> netaddr.IPAddress | None:
    try:
        ip = netaddr.IPAddress(text, flags=netaddr.INET_PTON)
    except (netaddr.AddrFormatError, ValueError):
        return None
    # Go treats an IPv4-mapped IPv6 address as IPv4.
    return ip.ipv4() if ip.version == 6 and ip.is_ipv4_mapped() else ip


def portmap_add_edit(mappings: list[PortMapping], container: netaddr.IPNetwork, *, network_name: str,
                     container_id: str, snat: bool = True, masq_all: bool = False, mark_bit: int = 13,
                     external_set_mark_chain: str | None = None, conditions: list[str] | None = None) -> RuleEdit:
    """What ADD does for one container address (``container`` keeps its prefix: ``10.1.2.3/24``)."""
    chain = portmap_chain_name(network_name, container_id)
    ops: list[RuleOp] = []
    chains: list[str] = []
    if snat and external_set_mark_chain is None:
        chains += [PORTMAP_SETMARK_CHAIN, PORTMAP_MASQ_CHAIN]
        ops += [RuleOp("append", PORTMAP_SETMARK_CHAIN, ("-m", "comment", "--comment", "CNI portfwd masquerade mark",
                                                         "-j", "MARK", "--set-xmark", _mark(mark_bit))),
                RuleOp("append", PORTMAP_MASQ_CHAIN, ("-m", "mark", "--mark", _mark(mark_bit), "-j", "MASQUERADE")),
                RuleOp("insert", "POSTROUTING", ("-m", "comment", "--comment", "CNI portfwd requiring masquerade",
                                                 "-j", PORTMAP_MASQ_CHAIN))]
    chains.append(PORTMAP_DNAT_CHAIN)
    ops += [RuleOp("append", entry, ("-m", "addrtype", "--dst-type", "LOCAL", "-j", PORTMAP_DNAT_CHAIN))
            for entry in ("PREROUTING", "OUTPUT")]
    entry_rules, rules = portmap_dnat_rules(
        mappings, container, network_name=network_name, container_id=container_id, snat=snat, masq_all=masq_all,
        set_mark_chain=external_set_mark_chain or PORTMAP_SETMARK_CHAIN, conditions=conditions or [])
    chains.append(chain)
    ops += [RuleOp("append", chain, rule) for rule in rules]
    ops += [RuleOp("insert", PORTMAP_DNAT_CHAIN, (*rule, "-j", chain)) for rule in entry_rules]
    return RuleEdit(version=int(container.version), table="nat", chains=tuple(chains), ops=tuple(ops))


def portmap_del_edit(version: int, network_name: str, container_id: str) -> RuleEdit:
    """What DEL does in one family: the container's chain and the jumps to it go (and an old ``CNI-SN-`` chain)."""
    old_snat = masquerade_chain_name(network_name, container_id, "SN-")
    return RuleEdit(version=version, table="nat", drop_chains=(portmap_chain_name(network_name, container_id),
                                                                old_snat))
