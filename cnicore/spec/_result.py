"""CNI results for every spec version: immutable values, parsing, and printing identical to the reference.

A plugin reports what it did as a *result*. The spec changed the result's shape
twice, so there are three families of result types, one class each:

``020`` — :class:`Result020` (versions 0.1.0, 0.2.0)
    ``ip4`` and ``ip6`` (:class:`IPConfig020`: ``ip``, ``gateway``, ``routes``)
    and ``dns``. Keys in struct order; ``dns`` is always printed (``{}`` when
    empty).
``040`` — :class:`Result040` (versions 0.3.0, 0.3.1, 0.4.0)
    ``interfaces`` (:class:`Interface040`), ``ips`` (:class:`IPConfig040`, with a
    ``version`` of ``"4"``/``"6"``), top-level ``routes`` (:class:`Route`) and
    ``dns``. Keys in struct order; ``dns`` is always printed.
``100`` — :class:`Result` (versions 1.0.0, 1.1.0)
    As 040 without ``ips[].version``; interfaces (:class:`Interface`) gain
    ``mtu``, ``socketPath`` and ``pciID``. The reference prints it through a
    generic map, so **every key at every level is sorted alphabetically**,
    ``dns`` is left out when empty, and integers pass through a float64 (exact
    below 2**53; larger ones print as the nearest float would).

Addresses are ``netaddr`` values that keep their host part (``10.1.2.3/24``
stays ``.3``), parsed with the strictness of Go's ``net.ParseIP`` /
``net.ParseCIDR`` and printed as Go's ``net.IP.String()`` does: RFC 5952
compression (longest run of two or more zero groups, leftmost on a tie, lower
case) and IPv4-mapped IPv6 addresses as dotted IPv4. Because Go treats an
IPv4-mapped address as IPv4 everywhere (printing, ``To4()`` family tests), such
an address is stored as IPv4 from the start; a mapped network's prefix becomes
what Go prints (``::ffff:1.2.3.4/120`` is ``1.2.3.4/24``).

Parsing follows the reference decoder: unknown keys are ignored, keys match
case-insensitively (the last match wins), ``null`` means "absent" for scalars,
and a wrong type raises :class:`~cnicore.DecodingError` (code 6) naming the key
path and value. Deliberate differences, where Go would build a value it cannot
print back or later use: a missing or ``null`` address (``ips[].address``,
``routes[].dst``, ``ip4.ip``) is rejected as ``invalid CIDR address: `` and a
``null`` entry in ``interfaces``/``ips``/``routes`` is rejected. Smaller ones:
a key given twice (in any spelling) takes its last value whole, where Go would
merge two objects field by field; an empty ``cniVersion`` accepted by the
0.1.0/0.2.0 creator is stored as ``0.1.0`` (Go keeps it empty and omits the
key when printing). Parse errors are code 6 here where a reference plugin would
report its plain Go error as 999.

Conversion between versions lives in :mod:`cnicore.spec._convert`
(:func:`~cnicore.spec._convert.convert_result`), whose docstring gives each rule.
In short, every version converts to every other one::

    0.1.0 <-> 0.2.0 --> 0.3.0/0.3.1/0.4.0 <-> 1.0.0 <-> 1.1.0
                   <--  (first IPv4/IPv6 only; fails without any address)

going down from 1.x to 0.1.0/0.2.0 through 0.4.0, and up from 0.1.0/0.2.0 to
1.x through 0.4.0. Converting to a result's own version returns it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeAlias, cast

import attrs
from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore._errors import DecodingError
from cnicore._json import marshal_indent
from cnicore.spec import _resultobj as _writer
from cnicore.spec import _resultread as _reader
from cnicore.spec._goaddr import (
    canonical_ip as _canonical_ip,
)
from cnicore.spec._goaddr import (
    canonical_network as _canonical_network,
)
from cnicore.spec._goaddr import (
    go_cidr_text,
    go_ip_text,
    go_parse_cidr,
    go_parse_ip,
)
from cnicore.spec._resultread import INT_MAX as _INT_MAX
from cnicore.spec._resultread import INT_MIN as _INT_MIN
from cnicore.spec._resultread import RESULT_VERSIONS
from cnicore.spec._version import ALL_VERSIONS, CURRENT_VERSION, ResultFamily

__all__ = [
    "DNS",
    "AnyResult",
    "IPConfig",
    "IPConfig020",
    "IPConfig040",
    "Interface",
    "Interface040",
    "RESULT_VERSIONS",
    "Result",
    "Result020",
    "Result040",
    "Route",
    "go_cidr_text",
    "go_ip_text",
    "go_parse_cidr",
    "go_parse_ip",
    "parse_prev_result",
    "parse_result",
    "result_from_plain",
]


# --------------------------------------------------------------------------------------------------
# Converters and validators for the value classes
# --------------------------------------------------------------------------------------------------


def _to_network(value: IPNetwork | str) -> IPNetwork:
    if isinstance(value, IPNetwork):
        return _canonical_network(value)
    parsed = go_parse_cidr(value) if isinstance(value, str) else None
    if parsed is None:
        raise DecodingError(f"invalid CIDR address: {value}", value=value if isinstance(value, str) else repr(value))
    return parsed


def _to_address(value: IPAddress | str | None) -> IPAddress | None:
    if value is None or isinstance(value, IPAddress):
        return None if value is None else _canonical_ip(value)
    parsed = go_parse_ip(value) if isinstance(value, str) else None
    if parsed is None:
        raise DecodingError(f"invalid IP address: {value}", value=value if isinstance(value, str) else repr(value))
    return parsed


def _to_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise DecodingError(f"expected a list, got {type(value).__name__}", value=repr(value))
    return tuple(value)


def _check_str(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise DecodingError(f"{attr.name} must be a string", key=attr.name, value=repr(value))


def _check_int(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is None and attr.default is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not _INT_MIN <= value <= _INT_MAX:
        raise DecodingError(f"{attr.name} must be a 64-bit integer", key=attr.name, value=repr(value))


def _check_version(family: ResultFamily | None) -> Any:
    allowed = ALL_VERSIONS if family is None else RESULT_VERSIONS[family]

    def check(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value not in allowed:
            raise DecodingError(f"{attr.name} must be one of {', '.join(allowed)}", key=attr.name,
                                value=repr(value))

    return check


def _check_items(kind: type) -> Any:
    def check(_inst: Any, attr: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
        for index, item in enumerate(value):
            if not isinstance(item, kind):
                raise DecodingError(f"{attr.name}[{index}] must be a {kind.__name__}",
                                    key=f"{attr.name}[{index}]", value=repr(item))

    return check


def _check_instance(kind: type, optional: bool = False) -> Any:
    def check(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if not (isinstance(value, kind) or (optional and value is None)):
            raise DecodingError(f"{attr.name} must be a {kind.__name__}", key=attr.name, value=repr(value))

    return check


def _network_key(net: IPNetwork) -> tuple[int, int, int]:
    # netaddr compares networks without their host part; results must not.
    return (net.version, int(net.ip), net.prefixlen)


# --------------------------------------------------------------------------------------------------
# The value classes
# --------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DNS:
    """DNS settings of a result (all versions): ``nameservers``, ``domain``, ``search``, ``options``.

    Nameservers are kept as the strings given (the reference does not parse them).
    """

    nameservers: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple, validator=_check_items(str))
    domain: str = attrs.field(default="", validator=_check_str)
    search: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple, validator=_check_items(str))
    options: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple, validator=_check_items(str))

    @property
    def is_empty(self) -> bool:
        """True when nothing is set (1.x results then leave ``dns`` out)."""
        return not (self.nameservers or self.domain or self.search or self.options)


@attrs.frozen(kw_only=True)
class Route:
    """A route (``routes[]`` in 0.3.0+, ``ip4.routes[]``/``ip6.routes[]`` in 0.1.0/0.2.0).

    ``dst`` keeps its host part as given; ``gw`` None means "no gateway" (the
    runtime picks the interface's); ``mtu``/``advmss``/``priority`` 0 mean unset;
    ``table``/``scope`` None mean unset (0 is a value and is printed).
    """

    dst: IPNetwork = attrs.field(converter=_to_network, eq=_network_key)
    gw: IPAddress | None = attrs.field(default=None, converter=_to_address)
    mtu: int = attrs.field(default=0, validator=_check_int)
    advmss: int = attrs.field(default=0, validator=_check_int)
    priority: int = attrs.field(default=0, validator=_check_int)
    table: int | None = attrs.field(default=None, validator=_check_int)
    scope: int | None = attrs.field(default=None, validator=_check_int)

    @property
    def family(self) -> int:
        """4 or 6, the family of ``dst``."""
        return int(self.dst.version)


@attrs.frozen(kw_only=True)
class Interface:
    """An interface of a 1.x result. ``mac`` is kept exactly as given (Go does not re-format it)."""

    name: str = attrs.field(validator=_check_str)
    mac: str = attrs.field(default="", validator=_check_str)
    mtu: int = attrs.field(default=0, validator=_check_int)
    sandbox: str = attrs.field(default="", validator=_check_str)
    socket_path: str = attrs.field(default="", validator=_check_str)
    pci_id: str = attrs.field(default="", validator=_check_str)


@attrs.frozen(kw_only=True)
class Interface040:
    """An interface of a 0.3.x/0.4.0 result: ``name``, ``mac``, ``sandbox``."""

    name: str = attrs.field(validator=_check_str)
    mac: str = attrs.field(default="", validator=_check_str)
    sandbox: str = attrs.field(default="", validator=_check_str)


@attrs.frozen(kw_only=True)
class IPConfig:
    """An ``ips[]`` entry of a 1.x result.

    ``interface`` is an index into the result's ``interfaces`` (None: not tied
    to an interface, e.g. an IPAM result; 0 is a real index and is printed).
    """

    address: IPNetwork = attrs.field(converter=_to_network, eq=_network_key)
    gateway: IPAddress | None = attrs.field(default=None, converter=_to_address)
    interface: int | None = attrs.field(default=None, validator=_check_int)

    @property
    def family(self) -> int:
        """4 or 6, the family of ``address``."""
        return int(self.address.version)


def _default_ip_version(config: IPConfig040) -> str:
    return "4" if config.address.version == 4 else "6"


@attrs.frozen(kw_only=True)
class IPConfig040:
    """An ``ips[]`` entry of a 0.3.x/0.4.0 result.

    ``version`` is ``"4"`` or ``"6"`` and defaults to the family of ``address``.
    The reference neither checks nor derives it when parsing, so any string read
    from a document is kept (only ``"4"``/``"6"`` entries survive conversion to 0.2.0).
    """

    address: IPNetwork = attrs.field(converter=_to_network, eq=_network_key)
    gateway: IPAddress | None = attrs.field(default=None, converter=_to_address)
    interface: int | None = attrs.field(default=None, validator=_check_int)
    version: str = attrs.field(default=attrs.Factory(_default_ip_version, takes_self=True), validator=_check_str)

    @property
    def family(self) -> int:
        """4 or 6, the family of ``address`` (not of the ``version`` text)."""
        return int(self.address.version)


@attrs.frozen(kw_only=True)
class IPConfig020:
    """``ip4`` or ``ip6`` of a 0.1.0/0.2.0 result: ``ip``, ``gateway`` and that family's ``routes``."""

    ip: IPNetwork = attrs.field(converter=_to_network, eq=_network_key)
    gateway: IPAddress | None = attrs.field(default=None, converter=_to_address)
    routes: tuple[Route, ...] = attrs.field(default=(), converter=_to_tuple, validator=_check_items(Route))

    @property
    def family(self) -> int:
        """4 or 6, the family of ``ip``."""
        return int(self.ip.version)


class _ResultMethods:
    """Behaviour shared by the three result classes."""

    __slots__ = ()
    #: The result family of the class (``"020"``, ``"040"`` or ``"100"``).
    FAMILY: ClassVar[ResultFamily]
    cni_version: str

    def to_object(self) -> dict[str, Any]:
        """The result as the reference marshals it: a dict with the reference's key order."""
        raise NotImplementedError

    def to_json(self) -> str:
        """The result exactly as a reference plugin prints it (4-space indent, no trailing newline)."""
        return marshal_indent(self.to_object())

    def as_version(self, version: str) -> AnyResult:
        """This result converted to ``version`` (see :func:`~cnicore.spec._convert.convert_result`)."""
        from cnicore.spec._convert import convert_result

        return convert_result(cast("AnyResult", self), version)


def _interfaces_of(result: Result | Result040, ip: IPConfig | IPConfig040) -> Interface | Interface040 | None:
    index = ip.interface
    if index is None or not 0 <= index < len(result.interfaces):
        return None
    return result.interfaces[index]


@attrs.frozen(kw_only=True)
class Result(_ResultMethods):
    """A 1.0.0/1.1.0 result (the current shape).

    ``cni_version`` may also be any older version: the reference lets a plugin
    build a current-shaped result stamped with an old version (loopback does),
    and printing it at that version prints it unchanged, in this shape.
    """

    FAMILY: ClassVar[ResultFamily] = "100"
    cni_version: str = attrs.field(default=CURRENT_VERSION, validator=_check_version(None))
    interfaces: tuple[Interface, ...] = attrs.field(default=(), converter=_to_tuple,
                                                    validator=_check_items(Interface))
    ips: tuple[IPConfig, ...] = attrs.field(default=(), converter=_to_tuple, validator=_check_items(IPConfig))
    routes: tuple[Route, ...] = attrs.field(default=(), converter=_to_tuple, validator=_check_items(Route))
    dns: DNS = attrs.field(factory=DNS, validator=_check_instance(DNS))

    def ips_of_family(self, family: int) -> tuple[IPConfig, ...]:
        """The ``ips`` entries whose address is IPv4 (``family=4``) or IPv6 (``6``), in order."""
        return tuple(ip for ip in self.ips if ip.family == family)

    def interface_of(self, ip: IPConfig) -> Interface | None:
        """The interface an ``ips`` entry points at, or None (no index, or out of range)."""
        found = _interfaces_of(self, ip)
        return found if isinstance(found, Interface) else None

    def to_object(self) -> dict[str, Any]:
        """The result as the reference marshals it: every key sorted, ``dns`` only when set."""
        return _writer.result_object_100(self.cni_version, [_interface_object(i) for i in self.interfaces],
                                         [_ip_object_100(ip) for ip in self.ips],
                                         [_route_object(r, sort=True) for r in self.routes],
                                         _dns_object(self.dns, sort=True))


@attrs.frozen(kw_only=True)
class Result040(_ResultMethods):
    """A 0.3.0/0.3.1/0.4.0 result."""

    FAMILY: ClassVar[ResultFamily] = "040"
    cni_version: str = attrs.field(default="0.4.0", validator=_check_version("040"))
    interfaces: tuple[Interface040, ...] = attrs.field(default=(), converter=_to_tuple,
                                                       validator=_check_items(Interface040))
    ips: tuple[IPConfig040, ...] = attrs.field(default=(), converter=_to_tuple, validator=_check_items(IPConfig040))
    routes: tuple[Route, ...] = attrs.field(default=(), converter=_to_tuple, validator=_check_items(Route))
    dns: DNS = attrs.field(factory=DNS, validator=_check_instance(DNS))

    def ips_of_family(self, family: int) -> tuple[IPConfig040, ...]:
        """The ``ips`` entries whose address is IPv4 (``family=4``) or IPv6 (``6``), in order."""
        return tuple(ip for ip in self.ips if ip.family == family)

    def interface_of(self, ip: IPConfig040) -> Interface040 | None:
        """The interface an ``ips`` entry points at, or None (no index, or out of range)."""
        found = _interfaces_of(self, ip)
        return found if isinstance(found, Interface040) else None

    def to_object(self) -> dict[str, Any]:
        """The result in struct order; ``dns`` always present."""
        return _writer.result_object_040(self.cni_version, [_interface040_object(i) for i in self.interfaces],
                                         [_ip_object_040(ip) for ip in self.ips],
                                         [_route_object(r, sort=False) for r in self.routes],
                                         _dns_object(self.dns, sort=False))


@attrs.frozen(kw_only=True)
class Result020(_ResultMethods):
    """A 0.1.0/0.2.0 result: at most one IPv4 (``ip4``) and one IPv6 (``ip6``) configuration."""

    FAMILY: ClassVar[ResultFamily] = "020"
    cni_version: str = attrs.field(default="0.2.0", validator=_check_version("020"))
    ip4: IPConfig020 | None = attrs.field(default=None,
                                          validator=_check_instance(IPConfig020, optional=True))
    ip6: IPConfig020 | None = attrs.field(default=None,
                                          validator=_check_instance(IPConfig020, optional=True))
    dns: DNS = attrs.field(factory=DNS, validator=_check_instance(DNS))

    @property
    def ip_configs(self) -> tuple[IPConfig020, ...]:
        """``ip4`` then ``ip6``, whichever are set."""
        return tuple(c for c in (self.ip4, self.ip6) if c is not None)

    def to_object(self) -> dict[str, Any]:
        """The result in struct order; ``dns`` always present."""
        return _writer.result_object_020(self.cni_version, None if self.ip4 is None else _ip_object_020(self.ip4),
                                         None if self.ip6 is None else _ip_object_020(self.ip6),
                                         _dns_object(self.dns, sort=False))


#: Any CNI result, whichever its family.
AnyResult: TypeAlias = Result | Result040 | Result020

# --------------------------------------------------------------------------------------------------
# Emission
# --------------------------------------------------------------------------------------------------


# The objects come from the one result writer, on plain values (cnicore.spec._resultobj); here each typed
# value is handed to it as the reference's text.


def _dns_object(dns: DNS, *, sort: bool) -> dict[str, Any]:
    return _writer.dns_object(dns.nameservers, dns.domain, dns.search, dns.options, sort=sort)


def _route_object(route: Route, *, sort: bool) -> dict[str, Any]:
    return _writer.route_object(go_cidr_text(route.dst), None if route.gw is None else go_ip_text(route.gw),
                                mtu=route.mtu, advmss=route.advmss, priority=route.priority, table=route.table,
                                scope=route.scope, sort=sort)


def _interface_object(interface: Interface) -> dict[str, Any]:
    return _writer.interface_object(interface.name, interface.mac, mtu=interface.mtu, sandbox=interface.sandbox,
                                    socket_path=interface.socket_path, pci_id=interface.pci_id)


def _interface040_object(interface: Interface040) -> dict[str, Any]:
    return _writer.interface_object(interface.name, interface.mac, sandbox=interface.sandbox, current=False)


def _ip_object_100(ip: IPConfig) -> dict[str, Any]:
    return _writer.ip_object_100(go_cidr_text(ip.address), None if ip.gateway is None else go_ip_text(ip.gateway),
                                 ip.interface)


def _ip_object_040(ip: IPConfig040) -> dict[str, Any]:
    return _writer.ip_object_040(ip.version, go_cidr_text(ip.address),
                                 None if ip.gateway is None else go_ip_text(ip.gateway), ip.interface)


def _ip_object_020(ip: IPConfig020) -> dict[str, Any]:
    return _writer.ip_object_020(go_cidr_text(ip.ip), None if ip.gateway is None else go_ip_text(ip.gateway),
                                 [_route_object(r, sort=False) for r in ip.routes])


# --------------------------------------------------------------------------------------------------
# Parsing: the plain reader (cnicore.spec._resultread) reads; the types are built from what it read.
# --------------------------------------------------------------------------------------------------


def _typed_route(route: Mapping[str, Any]) -> Route:
    return Route(**route)


def result_from_plain(plain: Mapping[str, Any]) -> AnyResult:
    """The result types of a result read on plain values (:mod:`cnicore.spec._resultread`)."""
    dns = DNS(**plain["dns"])
    if plain["family"] == "100":
        return Result(cni_version=plain["cni_version"], interfaces=[Interface(**i) for i in plain["interfaces"]],
                      ips=[IPConfig(**ip) for ip in plain["ips"]], routes=[_typed_route(r) for r in plain["routes"]],
                      dns=dns)
    if plain["family"] == "040":
        return Result040(cni_version=plain["cni_version"],
                         interfaces=[Interface040(**i) for i in plain["interfaces"]],
                         ips=[IPConfig040(**ip) for ip in plain["ips"]],
                         routes=[_typed_route(r) for r in plain["routes"]], dns=dns)
    configs = {name: None if plain[name] is None else
               IPConfig020(ip=plain[name]["ip"], gateway=plain[name]["gateway"],
                           routes=[_typed_route(r) for r in plain[name]["routes"]]) for name in ("ip4", "ip6")}
    return Result020(cni_version=plain["cni_version"], ip4=configs["ip4"], ip6=configs["ip6"], dns=dns)


def parse_result(data: str | bytes | bytearray | Mapping[str, Any], version: str | None = None) -> AnyResult:
    """Parse a result document into the class of its version.

    The rules are the reference runtime's (``invoke.ExecPluginWithResult``): a
    non-empty string ``cniVersion`` in the document picks the result type; when
    it is missing, empty or not a string, ``version`` (the configuration's
    version, ``0.1.0`` when not given) is written into the document instead.
    A JSON ``null`` document is an empty result of that version. As in the
    reference, that injection re-encodes the document, so its numbers pass
    through a float64 (``1.0`` reads as ``1``; integers beyond 2**53 are rounded).

    Args:
        data: the JSON text (str or UTF-8 bytes) or an already decoded object.
        version: the version to assume when the document does not say.

    Raises:
        DecodingError: (code 6) invalid JSON; ``unsupported CNI result version "x"``;
            a value of the wrong type or an unparsable address, naming the key path.
    """
    return result_from_plain(_reader.read_result(data, version))


def parse_prev_result(config: Mapping[str, Any]) -> AnyResult | None:
    """The ``prevResult`` of a plugin configuration, parsed as the reference's ``ParsePrevResult`` does.

    The result type is the one of the configuration's ``cniVersion``; a
    ``prevResult`` without a version is taken to be of the configuration's
    version, and one whose version belongs to another family is refused. Unknown
    keys (such as a stray ``version`` in a 1.x ``ips`` entry) are ignored. The
    reference holds ``prevResult`` as a generic map, so numbers pass through a
    float64 first (``"interface": 1.0`` reads as ``1``).

    Returns:
        The parsed result, or None when the configuration has no ``prevResult`` (or it is null).

    Raises:
        DecodingError: (code 6) ``could not parse prevResult: <reason>``, e.g.
            ``could not parse prevResult: result type supports [1.0.0 1.1.0] but unmarshalled
            CNIVersion is "0.2.0"``; or a configuration whose ``cniVersion`` is not a string.
    """
    plain = _reader.read_prev_result(config)
    return None if plain is None else result_from_plain(plain)
