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

from cnicore import _ruleplan as _plan

from ._rules import RuleEdit, typed_edit

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

# The layouts are cnicore._ruleplan's, on strings; these functions adapt them to the typed values.
PORTMAP_DNAT_CHAIN: Final = _plan.PORTMAP_DNAT_CHAIN
PORTMAP_SETMARK_CHAIN: Final = _plan.PORTMAP_SETMARK_CHAIN
PORTMAP_MASQ_CHAIN: Final = _plan.PORTMAP_MASQ_CHAIN
#: The nftables table of upstream's portmap (in family ``ip`` and ``ip6``).
NFT_PORTMAP_TABLE: Final = _plan.NFT_PORTMAP_TABLE
#: The chains holding per-container rules (comment: the container ID), as DEL looks at them.
NFT_PORTMAP_CHAINS: Final = _plan.NFT_PORTMAP_CHAINS
portmap_chain_name = _plan.portmap_chain_name
portmap_nft_delete_script = _plan.portmap_nft_delete_script


@attrs.frozen(kw_only=True)
class PortMapping:
    """One entry of the ``portMappings`` capability."""

    host_port: int
    container_port: int
    protocol: str = ""
    host_ip: str = ""


def _plain(mappings: list[PortMapping]) -> list[dict[str, object]]:
    return [{"hostPort": m.host_port, "containerPort": m.container_port, "protocol": m.protocol,
             "hostIP": m.host_ip} for m in mappings]


def portmap_dnat_rules(mappings: list[PortMapping], container: netaddr.IPNetwork, *, network_name: str,
                       container_id: str, snat: bool, masq_all: bool, set_mark_chain: str,
                       conditions: list[str]) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """The container chain's entry rules (without ``-j``) and rules, in the reference's order."""
    return _plan.portmap_dnat_rules(_plain(mappings), str(container), network_name=network_name,
                                    container_id=container_id, snat=snat, masq_all=masq_all,
                                    set_mark_chain=set_mark_chain, conditions=conditions)


def portmap_add_edit(mappings: list[PortMapping], container: netaddr.IPNetwork, *, network_name: str,
                     container_id: str, snat: bool = True, masq_all: bool = False, mark_bit: int = 13,
                     external_set_mark_chain: str | None = None, conditions: list[str] | None = None) -> RuleEdit:
    """What ADD does for one container address (``container`` keeps its prefix: ``10.1.2.3/24``)."""
    return typed_edit(_plan.portmap_add_edit(_plain(mappings), str(container), network_name=network_name,
                                         container_id=container_id, snat=snat, masq_all=masq_all, mark_bit=mark_bit,
                                         external_set_mark_chain=external_set_mark_chain, conditions=conditions))


def portmap_del_edit(version: int, network_name: str, container_id: str) -> RuleEdit:
    """What DEL does in one family: the container's chain and the jumps to it go (and an old ``CNI-SN-`` chain)."""
    return typed_edit(_plan.portmap_del_edit(version, network_name, container_id))


def portmap_nft_add_script(mappings: list[PortMapping], container: netaddr.IPNetwork, *, container_id: str,
                           snat: bool = True, conditions: list[str] | None = None) -> str:
    """What ADD does for one container address, as one ``nft -f -`` transaction."""
    return _plan.portmap_nft_add_script(_plain(mappings), str(container), container_id=container_id, snat=snat,
                                        conditions=conditions)


def portmap_nft_expected_rules(mappings: list[PortMapping], container: netaddr.IPNetwork, *,
                               snat: bool = True) -> dict[str, int]:
    """How many rules with the container's comment ADD put in each chain of the address's family (CHECK)."""
    return _plan.portmap_nft_expected_rules(_plain(mappings), str(container), snat=snat)
