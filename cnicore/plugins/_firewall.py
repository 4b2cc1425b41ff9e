"""The firewall meta plugin: let a container's traffic through the host's FORWARD chain, as the reference does.

Chained after bridge with ``prevResult`` (ADD and CHECK need it: ``missing
prevResult from earlier plugin``). For each address of ``prevResult`` it accepts,
in ``filter``'s ``CNI-FORWARD`` chain, what the container sends and the replies
to it; ``CNI-FORWARD`` is jumped to first from ``FORWARD`` and itself jumps
first to the admin chain (``iptablesAdminChainName``, default ``CNI-ADMIN``),
where an administrator's overrides go (see :mod:`cnicore.links._rules` for the
exact rules). DEL removes the address rules and leaves the chains. With
``ingressPolicy: same-bridge`` ADD also isolates the bridge (the first interface
of ``prevResult``) from traffic that enters it from elsewhere; those rules are
shared by the bridge's containers and never removed. ``ingressPolicy`` ``open``
(or absent) does nothing; any other value fails ADD and DEL, after their rules
were handled, as in the reference. The output is ``prevResult`` in the
configuration's version.

Backends: ``iptables``. The reference picks ``firewalld`` when it runs on the
host's D-Bus (or when asked); cnicore always uses iptables and refuses
``backend: firewalld``. Versions: 0.4.0 and later (upstream's current plugin;
Debian's 1.1.1 stops at 1.0.0).

This module is the engine on plain values (standard library only): ``prevResult``
is read by :mod:`cnicore.spec._resultread`, the rules are planned by
:mod:`cnicore._ruleplan`, the firewall is built on first use. The output is
written on plain values for a 1.x configuration; an older one (whose output the
reference converts to the current shape and back) goes through the result types.
"""

from __future__ import annotations

from cnicore._errors import CNIError, InternalError
from cnicore._gofmt import go_quote
from cnicore.plugins._netconf import GoStruct
from cnicore.spec._version import FIREWALL_VERSIONS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from cnicore.links import RuleTables
    from cnicore.plugins._meta import MetaRequest
    from cnicore.spec._result import AnyResult

__all__ = ["FirewallConfig", "FirewallPlugin", "load_firewall_config"]

_PREFIX = "failed to load netconf: "


class FirewallConfig:
    """The firewall plugin's options (plain values; built by :func:`load_firewall_config`)."""

    __slots__ = ("admin_chain", "backend", "ingress_policy")

    def __init__(self, *, backend: str, admin_chain: str, ingress_policy: str) -> None:
        self.backend = backend
        self.admin_chain = admin_chain
        self.ingress_policy = ingress_policy


def load_firewall_config(config: Mapping[str, Any]) -> FirewallConfig:
    """Read the options as the reference's ``parseConf`` does (``failed to load netconf: ...`` on a bad type)."""
    top = GoStruct(config, "FirewallNetConf", prefix=_PREFIX)
    top.get_str("firewalldZone")
    policy = top.raw("ingressPolicy")
    if policy is not None and not isinstance(policy, str):
        raise top.error(policy, "ingressPolicy", "main.IngressPolicy")
    return FirewallConfig(backend=top.get_str("backend") or "",
                          admin_chain=top.get_str("iptablesAdminChainName") or "CNI-ADMIN",
                          ingress_policy=policy or "")


def _prev_result(config: Mapping[str, Any]) -> dict[str, Any] | None:
    from cnicore.spec._resultread import read_prev_result

    try:
        return read_prev_result(config)
    except CNIError as exc:
        # The reference wraps the library's own "could not parse prevResult: ..." once more.
        raise InternalError(f"could not parse prevResult: {exc.msg}") from exc


def _addresses(result: Mapping[str, Any] | None) -> tuple[dict[int, list[str]], list[int]]:
    # Per family, each address as a host route (/32, /128); and each address's family in order (the current
    # shape's ips: a 0.1.0/0.2.0 result's ip4, then ip6).
    from cnicore.spec._resultread import result_addresses

    by_version: dict[int, list[str]] = {}
    versions: list[int] = []
    for address, _index in result_addresses(result) if result is not None else ():
        ip = address.partition("/")[0]
        version = 6 if ":" in ip else 4
        by_version.setdefault(version, []).append(f"{ip}/{32 if version == 4 else 128}")
        versions.append(version)
    return by_version, versions


def _output(result: Mapping[str, Any], version: str) -> str:
    # The reference prints prevResult converted to the current version, then to the configuration's: for a 1.x
    # result that changes the version alone (plain); an older one goes through the result types' conversions.
    from cnicore._json import marshal_indent
    from cnicore.spec._resultread import plain_result_object
    from cnicore.spec._version import result_family

    if result["family"] == "100" and result_family(version or "0.1.0") == "100":
        return marshal_indent(plain_result_object(result, version))
    return _typed(result, version).to_json()


def _typed(result: Mapping[str, Any], version: str) -> AnyResult:
    from cnicore.spec._convert import convert_result
    from cnicore.spec._result import result_from_plain

    try:
        current = convert_result(result_from_plain(result), "1.0.0")
    except CNIError as exc:
        raise InternalError(f"could not convert result to current version: {exc.msg}") from exc
    return current.as_version(version)


def _go_list(rule: tuple[str, ...]) -> str:
    return "[" + " ".join(rule) + "]"


class FirewallPlugin:
    """The ``firewall`` plugin in process (see the module docstring).

    Args:
        firewall: the iptables tables (or a callable building them on first use).
    """

    name = "firewall"
    supported_versions = FIREWALL_VERSIONS

    def __init__(self, firewall: RuleTables | Callable[[], RuleTables]) -> None:
        self._firewall = firewall

    def _tables(self, conf: FirewallConfig) -> RuleTables:
        if conf.backend == "firewalld":
            raise InternalError('firewall backend "firewalld" is not supported by cnicore (use "iptables")')
        if callable(self._firewall) and not hasattr(self._firewall, "edit_rules"):
            self._firewall = self._firewall()
        return self._firewall  # type: ignore[return-value]

    def add(self, request: MetaRequest) -> AnyResult:
        """ADD: the accept rules for ``prevResult``'s addresses, then the ingress policy."""
        return _typed(self._add(request), request.cni_version)

    def add_output(self, request: MetaRequest) -> str:
        """ADD as an executed plugin prints it (see :func:`_output`)."""
        return _output(self._add(request), request.cni_version)

    def _add(self, request: MetaRequest) -> dict[str, Any]:
        from cnicore._ruleplan import firewall_add_edits, isolation_edits

        conf = load_firewall_config(request.config)
        result = _prev_result(request.config)
        if result is None:
            raise InternalError("missing prevResult from earlier plugin")
        tables = self._tables(conf)
        by_version, versions = _addresses(result)
        tables.edit_rules(firewall_add_edits(by_version, conf.admin_chain))  # type: ignore[arg-type]
        if conf.ingress_policy == "same-bridge":
            interfaces = result.get("interfaces") or ()
            if not interfaces:
                raise InternalError(f"interface needs to be set for ingress policy {go_quote(conf.ingress_policy)}, "
                                    'make sure to chain "firewall" plugin with "bridge"')
            bridge = interfaces[0]["name"]
            if not bridge:
                raise InternalError("got empty bridge name")
            tables.edit_rules(isolation_edits(bridge, versions))  # type: ignore[arg-type]
        elif conf.ingress_policy not in ("", "open"):
            raise InternalError(f"unknown ingress policy: {go_quote(conf.ingress_policy)}")
        return result

    def delete(self, request: MetaRequest) -> None:
        """DEL: the address rules go (chains and the bridge's isolation stay); idempotent."""
        from cnicore._ruleplan import firewall_del_edits

        conf = load_firewall_config(request.config)
        result = _prev_result(request.config)
        tables = self._tables(conf)
        by_version, _versions = _addresses(result)
        tables.edit_rules(firewall_del_edits(by_version))  # type: ignore[arg-type]
        if conf.ingress_policy not in ("", "open", "same-bridge"):
            raise InternalError(f"unknown ingress policy: {go_quote(conf.ingress_policy)}")

    def check(self, request: MetaRequest) -> None:
        """CHECK: the jumps and every address rule are in place (the chains are created if missing, as the
        reference's CHECK does)."""
        from cnicore._ruleplan import (
            FIREWALL_FORWARD_CHAIN,
            TableEdit,
            firewall_address_rules,
            firewall_admin_rule,
            firewall_forward_rule,
            iptables_rule_text,
        )

        conf = load_firewall_config(request.config)
        result = _prev_result(request.config)
        if result is None:
            raise InternalError("missing prevResult from earlier plugin")
        tables = self._tables(conf)
        by_version, _versions = _addresses(result)
        for version in (4, 6):
            if not by_version.get(version):
                continue
            tables.edit_rules([TableEdit(version=version, table="filter",  # type: ignore[list-item]
                                         chains=(FIREWALL_FORWARD_CHAIN, conf.admin_chain))])
            present = tables.table_rules(version, "filter")
            expected = [("FORWARD", firewall_forward_rule(), "expected FORWARD rule {rule} not found"),
                        (FIREWALL_FORWARD_CHAIN, firewall_admin_rule(conf.admin_chain),
                         f"expected {FIREWALL_FORWARD_CHAIN} rule {{rule}} not found")]
            expected += [(FIREWALL_FORWARD_CHAIN, rule, "expected rule {rule} not found")
                         for address in by_version[version] for rule in firewall_address_rules(address)]
            for chain, rule, message in expected:
                if iptables_rule_text(chain, rule) not in present.get(chain, ()):
                    raise InternalError(message.format(rule=_go_list(rule)))
