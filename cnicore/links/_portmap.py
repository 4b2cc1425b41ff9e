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

The nftables layout (``backend: nftables``) is upstream's current plugin's
(Debian's 1.1.1 portmap predates it: upstream's code is the oracle), table
``cni_hostport`` in family ``ip`` or ``ip6`` (comment ``CNI portmap plugin``):

* base chains ``prerouting`` (NAT, hook prerouting, priority ``dstnat``) and
  ``output`` (NAT, hook output, priority -100), rewritten by every ADD: each
  jumps to ``hostip_hostports`` and to ``hostports`` (``output`` the latter only
  ``fib daddr type local``), behind the ``conditionsV4``/``conditionsV6`` of
  that ADD (nft expressions here);
* per mapping, one rule ``<proto> dport <host> dnat to <container>:<port>``
  (``[<container>]:<port>`` for IPv6) in ``hostports``, or, with a ``hostIP``
  of the container's family that is not unspecified, in ``hostip_hostports``
  behind ``<ip|ip6> daddr <hostIP>``;
* with ``snat``, in ``masquerading`` (NAT, hook postrouting, priority
  ``srcnat``): masquerade what the container sends to itself (hairpin) and,
  for IPv4, what ``127.0.0.1`` sends it.

Every per-container rule carries the container ID as its comment: DEL deletes
the rules with that comment from the three chains, in both families; the table
and chains stay. ``markMasqBit``, ``externalSetMarkChain`` and ``masqAll`` are
iptables options.
"""

from __future__ import annotations

from typing import Final

import attrs
import netaddr

from ._masquerade import masquerade_chain_name
from ._rules import RuleEdit, RuleOp

__all__ = [
    "NFT_PORTMAP_CHAINS",
    "NFT_PORTMAP_TABLE",
    "PORTMAP_DNAT_CHAIN",
    "PORTMAP_MASQ_CHAIN",
    "PORTMAP_SETMARK_CHAIN",
    "PortMapping",
    "portmap_add_edit",
    "portmap_chain_name",
    "portmap_del_edit",
    "portmap_dnat_rules",
    "portmap_nft_add_script",
    "portmap_nft_delete_script",
    "portmap_nft_expected_rules",
]

PORTMAP_DNAT_CHAIN: Final = "CNI-HOSTPORT-DNAT"
PORTMAP_SETMARK_CHAIN: Final = "CNI-HOSTPORT-SETMARK"
PORTMAP_MASQ_CHAIN: Final = "CNI-HOSTPORT-MASQ"
#: The nftables table of upstream's portmap (in family ``ip`` and ``ip6``).
NFT_PORTMAP_TABLE: Final = "cni_hostport"
_NFT_HOSTPORTS, _NFT_HOSTIP_HOSTPORTS, _NFT_MASQUERADING = "hostports", "hostip_hostports", "masquerading"
#: The chains holding per-container rules (comment: the container ID), as DEL looks at them.
NFT_PORTMAP_CHAINS: Final = (_NFT_HOSTPORTS, _NFT_HOSTIP_HOSTPORTS, _NFT_MASQUERADING)
_NFT_TABLE_COMMENT = "CNI portmap plugin"
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
        destination = _host_destination(mapping, v6)
        if destination is None:
            continue
        if destination:
            base += ("-d", mapping.host_ip)
        if snat:
            source = ("::/0" if v6 else "0.0.0.0/0") if masq_all else str(container)
            rules.append((*base, "-s", source, "-j", set_mark_chain))
            if not v6 and not masq_all:
                rules.append((*base, "-s", "127.0.0.1", "-j", set_mark_chain))
        rules.append((*base, "-j", "DNAT", "--to-destination", _ip_port(container.ip, mapping.container_port)))
    return entry_rules, rules


def _host_destination(mapping: PortMapping, v6: bool) -> bool | None:
    """Whether the mapping's rules match its ``hostIP`` as destination; None: not in this family at all.

    As Go's ``net.ParseIP`` judges it: a ``hostIP`` of the other family is skipped, an
    unspecified one (``0.0.0.0``, ``::``) maps every local address.
    """
    if not mapping.host_ip:
        return False
    host = _go_parse_ip(mapping.host_ip)
    if (host is None or host.version == 6) != v6:
        return None
    return host is not None and int(host) != 0


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


# ----------------------------------------------------------------------------- nftables (upstream's current plugin)


def _nft_family(version: int) -> str:
    return "ip6" if version == 6 else "ip"


def _nft_mapping_rules(mappings: list[PortMapping], container: netaddr.IPNetwork,
                       snat: bool) -> list[tuple[str, str]]:
    # (chain, rule without its comment) per container rule, in the order ADD adds them.
    v6 = container.version == 6
    family = _nft_family(int(container.version))
    ip = str(container.ip)
    rules: list[tuple[str, str]] = []
    # The shape upstream's tests document ("tcp dport 8080 dnat to 10.0.0.2:80"). A later upstream variant
    # ("ip protocol tcp th dport 8080 dnat ip addr . port to ...") writes "ip6 protocol" for IPv6, which nft
    # refuses (1.0.6 here): not followed. Rules are found by their comment, so either shape is removed by either.
    target = f"[{ip}]" if v6 else ip
    for mapping in mappings:
        destination = _host_destination(mapping, v6)
        if destination is None:
            continue
        dnat = f"{mapping.protocol} dport {mapping.host_port} dnat to {target}:{mapping.container_port}"
        if destination:
            rules.append((_NFT_HOSTIP_HOSTPORTS, f"{family} daddr {mapping.host_ip} {dnat}"))
        else:
            rules.append((_NFT_HOSTPORTS, dnat))
    if snat:
        rules.append((_NFT_MASQUERADING, f"{family} saddr {ip} {family} daddr {ip} masquerade"))
        if not v6:
            rules.append((_NFT_MASQUERADING, f"{family} saddr 127.0.0.1 {family} daddr {ip} masquerade"))
    return rules


def portmap_nft_add_script(mappings: list[PortMapping], container: netaddr.IPNetwork, *, container_id: str,
                           snat: bool = True, conditions: list[str] | None = None) -> str:
    """What ADD does for one container address, as one ``nft -f -`` transaction."""
    table = f"{_nft_family(int(container.version))} {NFT_PORTMAP_TABLE}"
    guard = " ".join(conditions or ())
    guard = f"{guard} " if guard else ""
    lines = [f'add table {table} {{ comment "{_NFT_TABLE_COMMENT}" ; }}',
             f"add chain {table} {_NFT_HOSTPORTS}",
             f"add chain {table} {_NFT_HOSTIP_HOSTPORTS}",
             f"add chain {table} prerouting {{ type nat hook prerouting priority dstnat ; }}",
             f"flush chain {table} prerouting",
             f"add rule {table} prerouting {guard}jump {_NFT_HOSTIP_HOSTPORTS}",
             f"add rule {table} prerouting {guard}jump {_NFT_HOSTPORTS}",
             # dstnat is not a priority nft accepts on the output hook: its number.
             f"add chain {table} output {{ type nat hook output priority -100 ; }}",
             f"flush chain {table} output",
             f"add rule {table} output {guard}jump {_NFT_HOSTIP_HOSTPORTS}",
             f"add rule {table} output {guard}fib daddr type local jump {_NFT_HOSTPORTS}"]
    if snat:
        lines.append(f"add chain {table} {_NFT_MASQUERADING} {{ type nat hook postrouting priority srcnat ; }}")
    lines += [f'add rule {table} {chain} {rule} comment "{container_id}"'
              for chain, rule in _nft_mapping_rules(mappings, container, snat)]
    return "\n".join(lines) + "\n"


def portmap_nft_expected_rules(mappings: list[PortMapping], container: netaddr.IPNetwork, *,
                               snat: bool = True) -> dict[str, int]:
    """How many rules with the container's comment ADD put in each chain of the address's family (CHECK)."""
    counts: dict[str, int] = {}
    for chain, _rule in _nft_mapping_rules(mappings, container, snat):
        counts[chain] = counts.get(chain, 0) + 1
    return counts


def portmap_nft_delete_script(version: int, handles: list[tuple[str, int]]) -> str:
    """Delete the rules ``(chain, handle)`` of the family's table, as one transaction ('' when there are none)."""
    table = f"{_nft_family(version)} {NFT_PORTMAP_TABLE}"
    return "".join(f"delete rule {table} {chain} handle {handle}\n" for chain, handle in handles)
