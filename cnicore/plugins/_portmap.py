"""The portmap meta plugin: publish container ports on the host, as the reference ``portmap`` does.

Chained after bridge with ``prevResult`` (ADD: ``must be called as chained
plugin``); the mappings come from the ``portMappings`` capability
(``runtimeConfig.portMappings``: ``hostPort``, ``containerPort``, ``protocol``,
``hostIP``). The container's addresses are the first IPv4 and the first IPv6
address of ``prevResult`` that do not belong to another interface than
``CNI_IFNAME`` or to one outside the sandbox. The rules (see
:mod:`cnicore.links._portmap`) go into table ``nat`` through iptables, or into
table ``cni_hostport`` through nftables; the output is ``prevResult`` in the
configuration's version. DEL (only with mappings, as the reference) removes the
container's chain (iptables) or the rules carrying its ID (nftables) in both
families and is idempotent; CHECK looks for the container's chain, its rules
and the jumps to it (iptables), or for its rules in each chain (nftables).

The backend (``backend``: ``iptables`` or ``nftables``) is chosen as upstream's
current plugin chooses it (Debian's 1.1.1 portmap predates nftables support, so
upstream's code is the oracle here): unset, it is iptables unless iptables is
unusable (``iptables`` missing or unable to list table ``filter``) and nftables
usable (``nft --check`` accepts a table). Options of the other backend are
refused (``externalSetMarkChain``; conditions whose first word starts with
``-`` are iptables', others nftables'), as is any other backend name.

Options: ``snat`` (default true), ``masqAll``, ``markMasqBit`` (0 to 31, default
13), ``externalSetMarkChain`` (not with ``markMasqBit``), ``conditionsV4`` and
``conditionsV6`` (extra iptables arguments of the jumps to the container's
chain). Messages are the reference's.

CHECK with nftables counts the container's rules in each chain against what
ADD adds for the address (one per mapping in ``hostports`` or
``hostip_hostports``, two masquerade rules for IPv4 and one for IPv6 with
``snat``). Upstream counts one masquerade rule per mapping (two for IPv6), more
than its ADD adds with ``snat`` on IPv6 or with three mappings or more on IPv4,
so its CHECK fails right after its own ADD there: we count what ADD adds.

After the rules of an ADD are in place, the host's tracked UDP flows to the
published UDP host ports are deleted (per family of the container's addresses),
as the reference does: a failure is reported on stderr and does not fail ADD.

This module is the engine on plain values (standard library only): ``prevResult``
is read and written back by :mod:`cnicore.spec._resultread`, the rules are
planned by :mod:`cnicore._ruleplan`, and the interface for ``route_localnet`` is
found on the host's routes as plain pairs. The typed result is built only for
callers in process (:meth:`PortMapPlugin.add`) or for a conversion to another
result family.
"""

from __future__ import annotations

import sys

from cnicore._errors import CNIError, InternalError
from cnicore._gofmt import go_quote
from cnicore.plugins._meta import result_output, typed_result
from cnicore.plugins._netconf import GoStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from cnicore._ruleplan import TableEdit
    from cnicore.links import LinkBackend, RuleTables
    from cnicore.plugins._meta import MetaRequest
    from cnicore.spec._result import AnyResult

__all__ = ["PortMapConfig", "PortMapPlugin", "load_portmap_config"]

_PREFIX = "failed to parse network configuration: "
DEFAULT_MARK_BIT = 13
_IPTABLES, _NFTABLES = "iptables", "nftables"
_IPPROTO_UDP = 17


class PortMapConfig:
    """The portmap plugin's options (plain values; built by :func:`load_portmap_config`)."""

    __slots__ = ("backend", "conditions_v4", "conditions_v6", "external_set_mark_chain", "mappings", "mark_bit",
                 "masq_all", "snat")

    def __init__(self, *, mappings: list[dict[str, Any]], snat: bool, masq_all: bool, mark_bit: int,
                 external_set_mark_chain: str | None, conditions_v4: list[str], conditions_v6: list[str],
                 backend: str | None) -> None:
        self.mappings = mappings
        self.snat = snat
        self.masq_all = masq_all
        self.mark_bit = mark_bit
        self.external_set_mark_chain = external_set_mark_chain
        self.conditions_v4 = conditions_v4
        self.conditions_v6 = conditions_v6
        #: ``iptables`` or ``nftables``; None while unset and not yet needed (see :meth:`PortMapPlugin.backend_for`).
        self.backend = backend


def _conditions_backend(conditions: list[str]) -> str:
    # iptables conditions start with an option ("-d", "-m", "--sport"); no nftables expression does. Upstream's
    # current code looks at the first word alone, so it calls ["!", "-s", "10.0.0.0/8"] (a negated iptables match)
    # nftables and refuses it with the iptables backend, where Debian's 1.1.1 (which has no nftables backend)
    # runs it. We follow the reference binary there: a leading "!" is judged by the word after it.
    if not conditions or not conditions[0]:
        return ""
    first = conditions[1] if conditions[0] == "!" and len(conditions) > 1 else conditions[0]
    return _IPTABLES if first.startswith("-") else _NFTABLES


def load_portmap_config(config: Mapping[str, Any], default_backend: Callable[[], str] | None = None) -> PortMapConfig:
    """Read and check the options as the reference's ``parseConfig`` does (without ``prevResult``).

    ``default_backend`` says which backend an unset ``backend`` means here (see the
    module docstring; default iptables); it is asked only when options of one backend
    need checking against it.
    """
    top = GoStruct(config, "PortMapConf", prefix=_PREFIX)
    runtime = top.get_struct("runtimeConfig", "")
    raw = runtime.raw("portMappings", pointer=True) if runtime is not None else None
    if raw is not None and not isinstance(raw, list):
        assert runtime is not None
        raise runtime.error(raw, "portMappings", "[]main.PortMapEntry")
    mappings: list[dict[str, Any]] = []
    for item in raw or ():
        if item is not None and not isinstance(item, dict):
            assert runtime is not None
            raise runtime.error(item, "portMappings", "main.PortMapEntry")
        entry = GoStruct(item, "PortMapEntry", "runtimeConfig.portMappings.", _PREFIX)
        mappings.append({"hostPort": entry.get_int("hostPort") or 0,
                         "containerPort": entry.get_int("containerPort") or 0,
                         "protocol": entry.get_str("protocol") or "", "hostIP": entry.get_str("hostIP") or ""})
    snat = top.get_bool("snat", pointer=True)
    mark_bit = top.get_int("markMasqBit", pointer=True)
    external = top.get_str("externalSetMarkChain", pointer=True)
    conf = PortMapConfig(mappings=mappings, snat=True if snat is None else snat,
                         masq_all=bool(top.get_bool("masqAll")), mark_bit=DEFAULT_MARK_BIT,
                         external_set_mark_chain=external, conditions_v4=top.get_strings("conditionsV4") or [],
                         conditions_v6=top.get_strings("conditionsV6") or [],
                         backend=top.get_str("backend", pointer=True))
    if mark_bit is not None and external is not None:
        raise InternalError("Cannot specify externalSetMarkChain and markMasqBit")
    if mark_bit is not None:
        conf.mark_bit = mark_bit
    if not 0 <= conf.mark_bit <= 31:
        raise InternalError("MasqMarkBit must be between 0 and 31")
    _check_backend(conf, default_backend or (lambda: _IPTABLES))
    for mapping in mappings:
        if mapping["containerPort"] <= 0:
            raise InternalError(f"Invalid container port number: {mapping['containerPort']}")
        if mapping["hostPort"] <= 0:
            raise InternalError(f"Invalid host port number: {mapping['hostPort']}")
    return conf


def _check_backend(conf: PortMapConfig, default_backend: Callable[[], str]) -> None:
    # Upstream's validateBackend, then its choice of mapper.
    specific: dict[str, list[str]] = {}
    if conf.external_set_mark_chain is not None:
        specific.setdefault(_IPTABLES, []).append("externalSetMarkChain")
    for key, conditions in (("conditionsV4", conf.conditions_v4), ("conditionsV6", conf.conditions_v6)):
        kind = _conditions_backend(conditions)
        if kind:
            specific.setdefault(kind, []).append(key)
    if conf.backend is None and specific:
        conf.backend = default_backend()
    if conf.backend is None:
        return  # decided when a mapping needs it
    wrong = _NFTABLES if conf.backend == _IPTABLES else _IPTABLES
    if specific.get(wrong):
        raise InternalError(f"{conf.backend} backend was requested but configuration contains {wrong}-specific "
                            f"options [{' '.join(specific[wrong])}]")
    if conf.backend not in (_IPTABLES, _NFTABLES):
        raise InternalError(f"unrecognized backend {go_quote(conf.backend)}")


def _prev_result(config: Mapping[str, Any]) -> dict[str, Any] | None:
    from cnicore.spec._resultread import read_prev_result

    try:
        return read_prev_result(config)
    except CNIError as exc:
        raise InternalError(f"could not parse prevResult: {exc.msg}") from exc


def _container_addresses(result: Mapping[str, Any], ifname: str) -> list[str]:
    # The first IPv4 and the first IPv6 address not known to belong elsewhere (reference's parseConfig), as
    # CIDR text keeping the host part.
    from cnicore.spec._resultread import result_addresses

    interfaces = result.get("interfaces", ())
    found: dict[int, str] = {}
    for address, index in result_addresses(result):
        version = 6 if ":" in address.partition("/")[0] else 4
        if version in found:
            continue
        if index is not None and 0 <= index < len(interfaces):
            interface = interfaces[index]
            if interface["name"] != ifname or not interface["sandbox"]:
                continue
        found[version] = address
    return [found[v] for v in (4, 6) if v in found]


def route_device(routes: list[tuple[str, str]], address: str) -> str | None:
    """The device of the most specific IPv4 route (``(destination CIDR, device)``) containing ``address``'s IP."""
    from cnicore.spec._goint import parse_cidr_value, parse_ip_value

    ip = parse_ip_value(address.partition("/")[0])
    best: tuple[int, str] | None = None
    for dst, device in routes:
        net = parse_cidr_value(dst)
        if ip is None or net is None or net[0] != ip[0] or not device:
            continue
        shift = (32 if ip[0] == 4 else 128) - net[2]
        if ip[1] >> shift == net[1] >> shift and (best is None or net[2] > best[0]):
            best = (net[2], device)
    return None if best is None else best[1]


class _BackendHost:
    """The host's IPv4 routes and sysctls through a link backend (in process, the fake kernel)."""

    def __init__(self, backend: LinkBackend) -> None:
        self._backend = backend

    def ipv4_routes(self) -> list[tuple[str, str]]:
        host = self._backend.host_namespace()
        return [(str(r.dst), r.device) for r in self._backend.list_routes(host, version=4) if r.device is not None]

    def write_sysctl(self, key: str, value: int) -> None:
        self._backend.write_sysctl(self._backend.host_namespace(), key, value)

    def delete_conntrack_entries(self, version: int, protocol: int, dst_ports: Sequence[int]) -> int:
        # The core imports no backend statically (the architecture test): the kernel's ones are found by name.
        import importlib

        kernel = importlib.import_module("cnicore.backends._nsenter").KernelNamespaces
        if not isinstance(self._backend, kernel):
            return 0  # the fake kernel tracks no flows
        conntrack = importlib.import_module("cnicore.backends._conntrack")
        deleted: int = conntrack.delete_entries(version, protocol, dst_ports)  # the host: this process's namespace
        return deleted


class PortMapPlugin:
    """The ``portmap`` plugin in process (see the module docstring).

    Args:
        firewall: the iptables tables (or a callable building them on first use).
    """

    name = "portmap"

    def __init__(self, firewall: RuleTables | Callable[[], RuleTables], backend: LinkBackend | None = None, *,
                 host: Any = None) -> None:
        from cnicore.spec._version import ALL_VERSIONS

        self.supported_versions: tuple[str, ...] = ALL_VERSIONS
        self._firewall = firewall
        #: The host's routes and sysctls (``ipv4_routes()``, ``write_sysctl(key, value)``): ``host``, or the
        #: link backend's.
        self._host = host if host is not None else None if backend is None else _BackendHost(backend)
        self._default_backend: str | None = None

    def default_backend(self) -> str:
        """What an unset ``backend`` means here: iptables, unless only nftables is usable (probed once)."""
        if self._default_backend is None:
            tables = self._rule_tables()
            chosen = _IPTABLES
            if not _iptables_usable(tables):
                nft = getattr(tables, "nftables", None)
                if nft is not None:
                    nftables = nft()
                    usable = getattr(nftables, "usable", nftables.available)
                    if usable():
                        chosen = _NFTABLES
            self._default_backend = chosen
        return self._default_backend

    def backend_for(self, conf: PortMapConfig) -> str:
        """The backend ``conf`` asks for (``backend``, or :meth:`default_backend` when unset)."""
        if conf.backend is None:
            conf.backend = self.default_backend()
        return conf.backend

    def _load(self, config: Mapping[str, Any]) -> PortMapConfig:
        return load_portmap_config(config, self.default_backend)

    def _route_localnet(self, addresses: list[str]) -> None:
        """Let 127/8 cross into the container: ``route_localnet=1`` on the host interface routing to it (SNAT only).

        As the reference's ADD (``getRoutableHostIF`` + ``enableLocalnetRouting``): without it a port
        published on ``127.0.0.1`` is DNATed but the kernel drops the packet (a loopback source cannot be
        routed out of another interface). The reference never turns it off again, nor does this.
        """
        if self._host is None:
            return
        routes: list[tuple[str, str]] | None = None
        for address in addresses:
            if ":" in address:
                continue
            if routes is None:
                routes = self._host.ipv4_routes()
            device = route_device(routes, address)
            if device is None:
                continue
            try:
                self._host.write_sysctl(f"net/ipv4/conf/{device}/route_localnet", 1)
            except CNIError as exc:
                raise InternalError(f"unable to enable route_localnet: {exc.msg}") from exc

    def _rule_tables(self) -> RuleTables:
        if callable(self._firewall) and not hasattr(self._firewall, "edit_rules"):
            self._firewall = self._firewall()
        return self._firewall  # type: ignore[return-value]

    def _tables(self, conf: PortMapConfig) -> RuleTables:
        # The iptables tables (the caller has seen backend_for(conf) say iptables).
        return self._rule_tables()

    def _nftables(self) -> Any:
        tables = self._rule_tables()
        nft = getattr(tables, "nftables", None)
        nftables = nft() if nft is not None else None
        if nftables is None or not hasattr(nftables, "apply_script"):
            raise InternalError("the nftables backend of portmap needs the nft command (this firewall has none)")
        return nftables

    def _nft_rules(self, nftables: Any, version: int) -> list[dict[str, Any]]:
        from cnicore._ruleplan import NFT_PORTMAP_CHAINS, NFT_PORTMAP_TABLE

        objects = nftables.list_objects("table", "ip6" if version == 6 else "ip", NFT_PORTMAP_TABLE)
        return [item["rule"] for item in objects
                if isinstance(item.get("rule"), dict) and item["rule"].get("chain") in NFT_PORTMAP_CHAINS]

    def _edits(self, conf: PortMapConfig, request: MetaRequest, addresses: list[str]) -> list[TableEdit]:
        from cnicore._ruleplan import portmap_add_edit

        return [portmap_add_edit(conf.mappings, address, network_name=_network(request),
                                 container_id=request.container_id, snat=conf.snat, masq_all=conf.masq_all,
                                 mark_bit=conf.mark_bit, external_set_mark_chain=conf.external_set_mark_chain,
                                 conditions=conf.conditions_v6 if ":" in address else conf.conditions_v4)
                for address in addresses]

    def add(self, request: MetaRequest) -> AnyResult:
        """ADD: publish the mappings on the container's addresses; return ``prevResult``."""
        return typed_result(self._add(request), request.cni_version)

    def add_output(self, request: MetaRequest) -> str:
        """ADD as an executed plugin prints it: ``prevResult`` at the request's version (standard library)."""
        return result_output(self._add(request), request.cni_version)

    def _add(self, request: MetaRequest) -> dict[str, Any]:
        try:
            conf = self._load(request.config)
            prev = _prev_result(request.config)
        except CNIError as exc:
            raise InternalError(f"failed to parse config: {exc.msg}") from exc
        if prev is None:
            raise InternalError("must be called as chained plugin")
        if conf.mappings:
            addresses = _container_addresses(prev, request.ifname)
            if self.backend_for(conf) == _NFTABLES:
                self._nft_add(conf, request, addresses)
            else:
                tables = self._tables(conf)
                for edit in self._edits(conf, request, addresses):
                    tables.edit_rules([edit])  # type: ignore[list-item]  # a TableEdit has RuleEdit's fields
            if conf.snat:
                self._route_localnet(addresses)
            self._delete_stale_udp_flows(conf, addresses)
        return prev

    def _delete_stale_udp_flows(self, conf: PortMapConfig, addresses: list[str]) -> None:
        """Forget the host's tracked UDP flows to the published UDP ports, once the rules are in place.

        As the reference's ADD: a flow tracked before the DNAT rule existed keeps its old (absent)
        translation while its packets keep coming, so the port would stay a black hole for that peer.
        Per family of the container's addresses; a failure is reported on stderr and never fails ADD,
        as the reference only logs it.
        """
        clear = getattr(self._host, "delete_conntrack_entries", None)
        ports = sorted({mapping["hostPort"] for mapping in conf.mappings if mapping["protocol"].lower() == "udp"})
        if clear is None or not ports:
            return
        for version in sorted({6 if ":" in address else 4 for address in addresses}):
            try:
                clear(version, _IPPROTO_UDP, ports)
            except (OSError, CNIError) as exc:
                address = next(a for a in addresses if (":" in a) == (version == 6))
                sys.stderr.write(f"failed to delete stale UDP conntrack entries for {address.split('/')[0]}: "
                                 f"{exc}\n")

    def delete(self, request: MetaRequest) -> None:
        """DEL: the container's chain goes, in both families; idempotent."""
        from cnicore._ruleplan import portmap_del_edit

        try:
            conf = self._load(request.config)
            _prev_result(request.config)
        except CNIError as exc:
            raise InternalError(f"failed to parse config: {exc.msg}") from exc
        if not conf.mappings:
            return
        if self.backend_for(conf) == _NFTABLES:
            self._nft_delete(request)
            return
        tables = self._tables(conf)
        failures: list[str] = []
        for version in (4, 6):
            try:
                tables.edit_rules([portmap_del_edit(version, _network(request), request.container_id)])  # type: ignore[list-item]
            except CNIError as exc:
                # As the reference: a family whose iptables is unusable is skipped, unless both are.
                failures.append(f"({'iptables' if version == 4 else 'ip6tables'}) {exc.msg}")
        if len(failures) == 2:
            raise InternalError("neither iptables nor ip6tables is usable, " + ", ".join(failures))

    def check(self, request: MetaRequest) -> None:
        """CHECK: the container's chain, its rules and the jumps to it are there."""
        from cnicore._ruleplan import PORTMAP_DNAT_CHAIN, iptables_rule_text

        conf = self._load(request.config)
        current = _prev_result(request.config)
        if current is None:
            raise InternalError("Required prevResult missing")
        if not conf.mappings:
            return
        if self.backend_for(conf) == _NFTABLES:
            self._nft_check(conf, request, _container_addresses(current, request.ifname))
            return
        tables = self._tables(conf)
        for edit in self._edits(conf, request, _container_addresses(current, request.ifname)):
            family = "ipv6" if edit.version == 6 else "ipv4"
            present = tables.table_rules(edit.version, "nat")
            chain = edit.chains[-1]
            rules = [op.rule for op in edit.ops if op.chain == chain]
            entries = [op.rule[:-2] for op in edit.ops if op.chain == PORTMAP_DNAT_CHAIN]
            if chain not in present:
                raise InternalError(f"could not check {family} dnat: chain {chain} not found in iptables table nat")
            for rule in reversed(rules):
                if iptables_rule_text(chain, rule) not in present[chain]:
                    raise InternalError(f"could not check {family} dnat: rule {_go_lists(rules)} in chain {chain} "
                                        "not found in table nat")
            for rule in reversed(entries):
                if iptables_rule_text(PORTMAP_DNAT_CHAIN, (*rule, "-j", chain)) not in present.get(
                        PORTMAP_DNAT_CHAIN, ()):
                    raise InternalError(f"could not check {family} dnat: rule {_go_lists(entries)} in chain "
                                        f"{PORTMAP_DNAT_CHAIN} not found in table nat")


    # -- nftables -----------------------------------------------------------------------------------------------

    def _nft_add(self, conf: PortMapConfig, request: MetaRequest, addresses: list[str]) -> None:
        from cnicore._ruleplan import portmap_nft_add_script

        nftables = self._nftables()
        for address in addresses:
            script = portmap_nft_add_script(
                conf.mappings, address, container_id=request.container_id, snat=conf.snat,
                conditions=conf.conditions_v6 if ":" in address else conf.conditions_v4)
            try:
                nftables.apply_script(script)
            except CNIError as exc:
                raise InternalError(f"unable to set up nftables rules for port mappings: {exc.msg}") from exc

    def _nft_delete(self, request: MetaRequest) -> None:
        # Both families, always; nothing there (no nft, no table) is nothing to do.
        from cnicore._ruleplan import NFT_PORTMAP_TABLE, portmap_nft_delete_script

        try:
            nftables = self._nftables()
        except CNIError:
            return
        if not nftables.available():
            return
        for version in (4, 6):
            try:
                rules = self._nft_rules(nftables, version)
            except CNIError as exc:
                raise InternalError(f"could not list rules in table {NFT_PORTMAP_TABLE}: {exc.msg}") from exc
            doomed = [(str(rule["chain"]), int(rule["handle"])) for rule in rules
                      if rule.get("comment") == request.container_id and "handle" in rule]
            if not doomed:
                continue
            try:
                nftables.apply_script(portmap_nft_delete_script(version, doomed))
            except CNIError as exc:
                raise InternalError(f"error deleting nftables rules: {exc.msg}") from exc

    def _nft_check(self, conf: PortMapConfig, request: MetaRequest, addresses: list[str]) -> None:
        from cnicore._ruleplan import portmap_nft_expected_rules

        nftables = self._nftables()
        for address in addresses:
            found: dict[str, int] = {}
            for rule in self._nft_rules(nftables, 6 if ":" in address else 4):
                if rule.get("comment") == request.container_id:
                    found[str(rule["chain"])] = found.get(str(rule["chain"]), 0) + 1
            for chain, wanted in portmap_nft_expected_rules(conf.mappings, address, snat=conf.snat).items():
                if found.get(chain, 0) < wanted:
                    raise InternalError(f'missing hostport rules in "{chain}" chain')


def _iptables_usable(tables: Any) -> bool:
    # Upstream's SupportsIPTables: the binary runs and can look at table filter.
    available = getattr(tables, "available", None)
    if available is not None and not available():
        return False
    try:
        tables.table_rules(4, "filter")
    except CNIError:
        return False
    return True


def _network(request: MetaRequest) -> str:
    name = request.config.get("name", "")
    return name if isinstance(name, str) else ""


def _go_lists(rules: list[tuple[str, ...]]) -> str:
    # Go's %s of a [][]string.
    return "[" + " ".join("[" + " ".join(rule) + "]" for rule in rules) + "]"
