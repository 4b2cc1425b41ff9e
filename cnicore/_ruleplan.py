"""iptables edits and the firewall and portmap plugins' rule layouts on strings (standard library only).

The one implementation of an edit of an iptables table (:class:`TableEdit`,
carried out on a model of the table by :func:`edit_lines`), of a rule's text as
``iptables-save`` prints it (:func:`iptables_rule_text`), of the firewall
plugin's layout in ``filter`` (described in :mod:`cnicore.links._rules`) and of
the portmap plugin's iptables and nftables layouts (described in
:mod:`cnicore.links._portmap`); the typed functions there adapt these. An executed
plugin plans and applies its rules with this module and the tool runners of
``backends/_tools.py``, without attrs or netaddr.

Addresses are text: a container address keeps its prefix (``10.1.2.3/24``);
port mappings are the plugin's plain entries (``hostPort``, ``containerPort``,
``protocol``, ``hostIP``).
"""

from __future__ import annotations

from cnicore._linkplan import masquerade_chain_name
from cnicore.spec._goint import parse_ip_value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

__all__ = ["FIREWALL_ADMIN_CHAIN", "FIREWALL_FORWARD_CHAIN", "ISOLATION_STAGE1_CHAIN", "ISOLATION_STAGE2_CHAIN",
           "NFT_PORTMAP_CHAINS", "NFT_PORTMAP_TABLE", "PORTMAP_DNAT_CHAIN", "PORTMAP_MASQ_CHAIN",
           "PORTMAP_SETMARK_CHAIN", "RuleStep", "TableEdit", "edit_lines", "firewall_add_edits",
           "firewall_address_rules", "firewall_admin_rule", "firewall_del_edits", "firewall_forward_rule",
           "iptables_rule_text", "isolation_edits", "portmap_add_edit",
           "portmap_chain_name", "portmap_del_edit", "portmap_dnat_rules", "portmap_nft_add_script",
           "portmap_nft_delete_script", "portmap_nft_expected_rules"]


class RuleStep:
    """One step of an edit: ``insert`` (first in the chain), ``append`` or ``delete`` (one copy) a rule."""

    __slots__ = ("chain", "op", "rule")

    def __init__(self, op: str, chain: str, rule: tuple[str, ...]) -> None:
        self.op = op
        self.chain = chain
        self.rule = rule


class TableEdit:
    """Changes to one table of one address family (see :class:`cnicore.links.RuleEdit`, its typed form)."""

    __slots__ = ("chains", "drop_chains", "ops", "table", "version")

    def __init__(self, *, version: int, table: str, chains: tuple[str, ...] = (), ops: tuple[RuleStep, ...] = (),
                 drop_chains: tuple[str, ...] = ()) -> None:
        self.version = version
        self.table = table
        self.chains = chains
        self.ops = ops
        self.drop_chains = drop_chains


def edit_lines(chains: dict[str, list[str]], edit: Any) -> list[str]:
    """Carry ``edit`` out on a model of one table (chain -> rule lines, as ``iptables-save`` prints them).

    ``edit`` is a :class:`TableEdit` or a :class:`cnicore.links.RuleEdit` (the
    same fields). Returns the ``iptables-restore --noflush`` lines that do the
    same to the kernel's table (the caller adds the ``*table`` and ``COMMIT``
    lines): the fake firewall keeps the model, the iptables one sends the lines.
    """
    lines: list[str] = []
    for gone in edit.drop_chains:
        if gone not in chains:
            continue
        for rules in chains.values():
            for text in [r for r in rules if r.endswith(" -j " + gone)]:
                rules.remove(text)
                lines.append("-D" + text[2:])
        del chains[gone]
        lines += [f"-F {gone}", f"-X {gone}"]
    for chain in edit.chains:
        if chain not in chains:
            chains[chain] = []
            lines.append(f":{chain} - [0:0]")
    for step in edit.ops:
        text = iptables_rule_text(step.chain, step.rule)
        rules = chains.setdefault(step.chain, [])
        body = text[len("-A " + step.chain):]
        if step.op == "delete":
            if text in rules:
                rules.remove(text)
                lines.append(f"-D {step.chain}{body}")
        elif text not in rules:
            if step.op == "insert":
                rules.insert(0, text)
                lines.append(f"-I {step.chain} 1{body}")
            else:
                rules.append(text)
                lines.append(text)
    return lines


# The options iptables prints before the matches, in this order (iptables-save's order, whatever the argv's).
_BASIC_OPTIONS = ("-s", "-d", "-i", "-o", "-p")
# Long options iptables prints under another name.
_OPTION_ALIASES = {"--destination-ports": "--dports", "--source-ports": "--sports", "--destination-port": "--dport",
                   "--source-port": "--sport"}


def _network_text(value: str) -> str:
    # As iptables prints a -s/-d value: the network (host bits cleared) with its prefix; an address alone is /32 or
    # /128. An IPv4-mapped IPv6 network keeps its dotted tail, as ip6tables prints it (inet_ntop).
    from cnicore.spec._goint import ip_value_text, mask_value, parse_cidr_parts

    text = value if "/" in value else value + ("/128" if ":" in value else "/32")
    parts = parse_cidr_parts(text)
    if parts is None:
        raise ValueError(f"invalid address or network: {value!r}")
    version, address, prefix, bits = parts
    if bits == 32:
        return f"{ip_value_text(4, address & mask_value(4, prefix))}/{prefix}"
    if version == 4:  # written as IPv6 but IPv4-mapped: the whole 128 bits
        address |= 0xFFFF << 32
    network = address & mask_value(6, prefix)
    if network >> 32 == 0xFFFF:
        return f"::ffff:{ip_value_text(4, network & 0xFFFFFFFF)}/{prefix}"
    return f"{ip_value_text(6, network)}/{prefix}"


def iptables_rule_text(chain: str, rule: Sequence[str]) -> str:
    """One rule as ``iptables -S`` (and ``iptables-save``) prints it; ``iptables-restore`` reads it back.

    The basic options first (``-s``, ``-d``, ``-i``, ``-o``, ``-p``, each with
    its ``!``), then the ``-m`` matches in the order given, then the target
    with its options; addresses as networks, a comment double-quoted with
    backslash escapes.
    """
    words = list(rule)
    basic: dict[str, list[str]] = {}
    matches: list[list[str]] = []
    target: list[str] = []
    current: list[str] | None = None
    negate = False
    i = 0
    while i < len(words):
        word = words[i]
        if word == "!":
            negate = True
            i += 1
            continue
        prefix = ["!"] if negate else []
        negate = False
        if word in _BASIC_OPTIONS:
            # (An open match stays open: "-m multiport -p tcp --dports 80" keeps --dports in multiport.)
            value = words[i + 1]
            i += 2
            if word in ("-d", "-s"):
                value = _network_text(value)
                if value.endswith("/0") and not prefix:
                    continue  # matches everything: iptables does not keep it
            elif word == "-p":
                value = value.lower()
            basic[word] = [*prefix, word, value]
        elif word == "-j":
            target = ["-j", words[i + 1]]
            current = target
            i += 2
        elif word == "-m":
            current = ["-m", words[i + 1]]
            matches.append(current)
            i += 2
        elif word == "--comment" and current is not None and current[:2] == ["-m", "comment"]:
            # iptables -S escapes backslashes and double quotes inside the quoted comment.
            text = words[i + 1].replace("\\", "\\\\").replace('"', '\\"')
            current += [*prefix, word, f'"{text}"']
            i += 2
        else:
            if current is None:
                # An option of the protocol's implicit match (``-p tcp --dport 80``): iptables loads
                # ``-m tcp`` by itself and prints it.
                protocol = basic.get("-p", ["", ""])[-1]
                current = ["-m", protocol] if protocol else []
                matches.append(current)
            current += [*prefix, _OPTION_ALIASES.get(word, word)]
            i += 1
    ordered = [part for option in _BASIC_OPTIONS if option in basic for part in basic[option]]
    return " ".join(["-A", chain, *ordered, *(w for match in matches for w in match), *target])


# ----------------------------------------------------------------------------- the firewall plugin (filter)

#: The firewall plugin's chain in ``filter``, jumped to from ``FORWARD``.
FIREWALL_FORWARD_CHAIN = "CNI-FORWARD"
#: Its default admin override chain.
FIREWALL_ADMIN_CHAIN = "CNI-ADMIN"
#: The same-bridge ingress policy's chains.
ISOLATION_STAGE1_CHAIN = "CNI-ISOLATION-STAGE-1"
ISOLATION_STAGE2_CHAIN = "CNI-ISOLATION-STAGE-2"

_ISOLATION_COMMENT = "CNI firewall plugin rules (ingressPolicy: same-bridge)"


def firewall_forward_rule() -> tuple[str, ...]:
    """The rule in ``FORWARD`` that jumps to ``CNI-FORWARD``."""
    return ("-m", "comment", "--comment", "CNI firewall plugin rules", "-j", FIREWALL_FORWARD_CHAIN)


def firewall_admin_rule(admin_chain: str) -> tuple[str, ...]:
    """The first rule of ``CNI-FORWARD``: jump to the admin chain."""
    return ("-m", "comment", "--comment", "CNI firewall plugin admin overrides", "-j", admin_chain)


def firewall_address_rules(address: str) -> tuple[tuple[str, ...], ...]:
    """The two rules of one container address (``10.1.2.3/32`` or ``2001:db8::3/128``)."""
    return (("-d", address, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"),
            ("-s", address, "-j", "ACCEPT"))


def firewall_add_edits(addresses: Mapping[int, list[str]], admin_chain: str) -> list[TableEdit]:
    """What the firewall plugin's ADD does, per address family with addresses (``{4: ["10.1.2.3/32"]}``)."""
    edits = []
    for version in (4, 6):
        if not addresses.get(version):
            continue
        ops = [RuleStep("insert", "FORWARD", firewall_forward_rule()),
               RuleStep("insert", FIREWALL_FORWARD_CHAIN, firewall_admin_rule(admin_chain))]
        ops += [RuleStep("append", FIREWALL_FORWARD_CHAIN, rule)
                for address in addresses[version] for rule in firewall_address_rules(address)]
        edits.append(TableEdit(version=version, table="filter", chains=(FIREWALL_FORWARD_CHAIN, admin_chain),
                              ops=tuple(ops)))
    return edits


def firewall_del_edits(addresses: Mapping[int, list[str]]) -> list[TableEdit]:
    """What the firewall plugin's DEL does: the address rules go; the chains and jumps stay."""
    return [TableEdit(version=version, table="filter",
                     ops=tuple(RuleStep("delete", FIREWALL_FORWARD_CHAIN, rule)
                               for address in addresses[version] for rule in firewall_address_rules(address)))
            for version in (4, 6) if addresses.get(version)]


def isolation_edits(bridge: str, versions: list[int]) -> list[TableEdit]:
    """The same-bridge ingress policy for ``bridge`` (per family; never removed: other containers share it)."""
    def tagged(*rule: str) -> tuple[str, ...]:
        return (*rule, "-m", "comment", "--comment", _ISOLATION_COMMENT)

    ops = (RuleStep("insert", "FORWARD", tagged("-j", ISOLATION_STAGE1_CHAIN)),
           RuleStep("insert", ISOLATION_STAGE1_CHAIN, tagged("-i", bridge, "!", "-o", bridge, "-j",
                                                           ISOLATION_STAGE2_CHAIN)),
           RuleStep("append", ISOLATION_STAGE1_CHAIN, tagged("-j", "RETURN")),
           RuleStep("insert", ISOLATION_STAGE2_CHAIN, tagged("-o", bridge, "-j", "DROP")),
           RuleStep("append", ISOLATION_STAGE2_CHAIN, tagged("-j", "RETURN")))
    return [TableEdit(version=version, table="filter", chains=(ISOLATION_STAGE1_CHAIN, ISOLATION_STAGE2_CHAIN),
                     ops=ops) for version in dict.fromkeys(versions)]


# ----------------------------------------------------------------------------- portmap, iptables

PORTMAP_DNAT_CHAIN = "CNI-HOSTPORT-DNAT"
PORTMAP_SETMARK_CHAIN = "CNI-HOSTPORT-SETMARK"
PORTMAP_MASQ_CHAIN = "CNI-HOSTPORT-MASQ"
#: The nftables table of upstream's portmap (in family ``ip`` and ``ip6``).
NFT_PORTMAP_TABLE = "cni_hostport"
_NFT_HOSTPORTS, _NFT_HOSTIP_HOSTPORTS, _NFT_MASQUERADING = "hostports", "hostip_hostports", "masquerading"
#: The chains holding per-container rules (comment: the container ID), as DEL looks at them.
NFT_PORTMAP_CHAINS = (_NFT_HOSTPORTS, _NFT_HOSTIP_HOSTPORTS, _NFT_MASQUERADING)
_NFT_TABLE_COMMENT = "CNI portmap plugin"
_MULTIPORT_MAX = 15
_COMMENT_MAX = 255


def portmap_chain_name(network_name: str, container_id: str) -> str:
    """``CNI-DN-`` + hex digits: the container's chain."""
    return masquerade_chain_name(network_name, container_id, "DN-")


def _mark(bit: int) -> str:
    value = 1 << bit
    return f"{value:#x}/{value:#x}"


def _split(container: str) -> tuple[bool, str]:
    # (IPv6?, the address without its prefix) of a container address such as 10.1.2.3/24.
    ip = container.partition("/")[0]
    return ":" in ip, ip


def _host_destination(mapping: Mapping[str, Any], v6: bool) -> bool | None:
    """Whether the mapping's rules match its ``hostIP`` as destination; None: not in this family at all.

    As Go's ``net.ParseIP`` judges it: a ``hostIP`` of the other family is skipped, an
    unspecified one (``0.0.0.0``, ``::``) maps every local address; an IPv4-mapped one is IPv4.
    One that is no address at all is of no family Go knows, so the reference takes it for IPv6:
    skipped for an IPv4 container; for an IPv6 one its rule (``-d <hostIP>``) is refused by
    ip6tables and the ADD fails. It fails here, before anything is written: it must never
    become a mapping of every address.
    """
    host_ip = mapping["hostIP"]
    if not host_ip:
        return False
    host = parse_ip_value(host_ip)
    if (host is None or host[0] == 6) != v6:
        return None
    if host is None:
        from cnicore._errors import InternalError
        from cnicore._gofmt import go_quote

        raise InternalError(f"unable to setup DNAT: hostIP {go_quote(host_ip)} is not an IP address")
    return host[1] != 0


def portmap_dnat_rules(mappings: Sequence[Mapping[str, Any]], container: str, *, network_name: str,
                       container_id: str, snat: bool, masq_all: bool, set_mark_chain: str,
                       conditions: Sequence[str]) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """The container chain's entry rules (without ``-j``) and rules, in the reference's order."""
    v6, ip = _split(container)
    comment = f'dnat name: "{network_name}" id: "{container_id}"'
    if len(comment.encode()) > _COMMENT_MAX:
        comment = comment.encode()[:253].decode("utf-8", "ignore") + "..."
    by_protocol: dict[str, list[int]] = {}
    for mapping in mappings:
        by_protocol.setdefault(mapping["protocol"], []).append(mapping["hostPort"])
    entry_rules: list[tuple[str, ...]] = []
    for protocol in sorted(by_protocol):
        ports = [str(p) for p in by_protocol[protocol]]
        for start in range(0, len(ports), _MULTIPORT_MAX):
            entry_rules.append(("-m", "comment", "--comment", comment, "-m", "multiport", "-p", protocol,
                                "--destination-ports", ",".join(ports[start:start + _MULTIPORT_MAX]),
                                *conditions))
    rules: list[tuple[str, ...]] = []
    for mapping in mappings:
        base: tuple[str, ...] = ("-p", mapping["protocol"], "--dport", str(mapping["hostPort"]))
        destination = _host_destination(mapping, v6)
        if destination is None:
            continue
        if destination:
            base += ("-d", mapping["hostIP"])
        if snat:
            source = ("::/0" if v6 else "0.0.0.0/0") if masq_all else container
            rules.append((*base, "-s", source, "-j", set_mark_chain))
            if not v6 and not masq_all:
                rules.append((*base, "-s", "127.0.0.1", "-j", set_mark_chain))
        target = f"[{ip}]:{mapping['containerPort']}" if v6 else f"{ip}:{mapping['containerPort']}"
        rules.append((*base, "-j", "DNAT", "--to-destination", target))
    return entry_rules, rules


def portmap_add_edit(mappings: Sequence[Mapping[str, Any]], container: str, *, network_name: str,
                     container_id: str, snat: bool = True, masq_all: bool = False, mark_bit: int = 13,
                     external_set_mark_chain: str | None = None,
                     conditions: Sequence[str] | None = None) -> TableEdit:
    """What ADD does for one container address (``container`` keeps its prefix: ``10.1.2.3/24``)."""
    chain = portmap_chain_name(network_name, container_id)
    ops: list[RuleStep] = []
    chains: list[str] = []
    if snat and external_set_mark_chain is None:
        chains += [PORTMAP_SETMARK_CHAIN, PORTMAP_MASQ_CHAIN]
        ops += [RuleStep("append", PORTMAP_SETMARK_CHAIN, ("-m", "comment", "--comment",
                                                           "CNI portfwd masquerade mark", "-j", "MARK",
                                                           "--set-xmark", _mark(mark_bit))),
                RuleStep("append", PORTMAP_MASQ_CHAIN, ("-m", "mark", "--mark", _mark(mark_bit), "-j", "MASQUERADE")),
                RuleStep("insert", "POSTROUTING", ("-m", "comment", "--comment", "CNI portfwd requiring masquerade",
                                                   "-j", PORTMAP_MASQ_CHAIN))]
    chains.append(PORTMAP_DNAT_CHAIN)
    ops += [RuleStep("append", entry, ("-m", "addrtype", "--dst-type", "LOCAL", "-j", PORTMAP_DNAT_CHAIN))
            for entry in ("PREROUTING", "OUTPUT")]
    entry_rules, rules = portmap_dnat_rules(
        mappings, container, network_name=network_name, container_id=container_id, snat=snat, masq_all=masq_all,
        set_mark_chain=external_set_mark_chain or PORTMAP_SETMARK_CHAIN, conditions=conditions or ())
    chains.append(chain)
    ops += [RuleStep("append", chain, rule) for rule in rules]
    ops += [RuleStep("insert", PORTMAP_DNAT_CHAIN, (*rule, "-j", chain)) for rule in entry_rules]
    return TableEdit(version=6 if _split(container)[0] else 4, table="nat", chains=tuple(chains), ops=tuple(ops))


def portmap_del_edit(version: int, network_name: str, container_id: str) -> TableEdit:
    """What DEL does in one family: the container's chain and the jumps to it go (and an old ``CNI-SN-`` chain)."""
    old_snat = masquerade_chain_name(network_name, container_id, "SN-")
    return TableEdit(version=version, table="nat", drop_chains=(portmap_chain_name(network_name, container_id),
                                                                 old_snat))


# ----------------------------------------------------------------------------- portmap, nftables


def _nft_family(v6: bool) -> str:
    return "ip6" if v6 else "ip"


def _nft_mapping_rules(mappings: Iterable[Mapping[str, Any]], container: str, snat: bool) -> list[tuple[str, str]]:
    # (chain, rule without its comment) per container rule, in the order ADD adds them.
    v6, ip = _split(container)
    family = _nft_family(v6)
    rules: list[tuple[str, str]] = []
    # The shape upstream's tests document ("tcp dport 8080 dnat to 10.0.0.2:80"). A later upstream variant
    # ("ip protocol tcp th dport 8080 dnat ip addr . port to ...") writes "ip6 protocol" for IPv6, which nft
    # refuses (1.0.6 here): not followed. Rules are found by their comment, so either shape is removed by either.
    target = f"[{ip}]" if v6 else ip
    for mapping in mappings:
        destination = _host_destination(mapping, v6)
        if destination is None:
            continue
        dnat = f"{mapping['protocol']} dport {mapping['hostPort']} dnat to {target}:{mapping['containerPort']}"
        if destination:
            rules.append((_NFT_HOSTIP_HOSTPORTS, f"{family} daddr {mapping['hostIP']} {dnat}"))
        else:
            rules.append((_NFT_HOSTPORTS, dnat))
    if snat:
        rules.append((_NFT_MASQUERADING, f"{family} saddr {ip} {family} daddr {ip} masquerade"))
        if not v6:
            rules.append((_NFT_MASQUERADING, f"{family} saddr 127.0.0.1 {family} daddr {ip} masquerade"))
    return rules


def portmap_nft_add_script(mappings: Sequence[Mapping[str, Any]], container: str, *, container_id: str,
                           snat: bool = True, conditions: Sequence[str] | None = None) -> str:
    """What ADD does for one container address, as one ``nft -f -`` transaction."""
    table = f"{_nft_family(_split(container)[0])} {NFT_PORTMAP_TABLE}"
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


def portmap_nft_expected_rules(mappings: Sequence[Mapping[str, Any]], container: str, *,
                               snat: bool = True) -> dict[str, int]:
    """How many rules with the container's comment ADD put in each chain of the address's family (CHECK)."""
    counts: dict[str, int] = {}
    for chain, _rule in _nft_mapping_rules(mappings, container, snat):
        counts[chain] = counts.get(chain, 0) + 1
    return counts


def portmap_nft_delete_script(version: int, handles: Sequence[tuple[str, int]]) -> str:
    """Delete the rules ``(chain, handle)`` of the family's table, as one transaction ('' when there are none)."""
    table = f"{_nft_family(version == 6)} {NFT_PORTMAP_TABLE}"
    return "".join(f"delete rule {table} {chain} handle {handle}\n" for chain, handle in handles)
