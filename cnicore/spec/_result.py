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

import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeAlias, cast

import attrs
from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore._errors import DecodingError
from cnicore._gofmt import go_fold, go_quote, go_type_name
from cnicore._json import decode, marshal_indent
from cnicore.spec import _resultobj as _writer
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
from cnicore.spec._version import ALL_VERSIONS, CURRENT_VERSION, ResultFamily, decode_config_version, result_family

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
]

#: The result versions each family's creator accepts (as the reference's ``supportedVersions``).
RESULT_VERSIONS: dict[ResultFamily, tuple[str, ...]] = {
    "020": ("0.1.0", "0.2.0"),
    "040": ("0.3.0", "0.3.1", "0.4.0"),
    "100": ("1.0.0", "1.1.0"),
}

# How the reference's creators print their version list in "result type supports %v ...".
_SUPPORTED_TEXT: dict[ResultFamily, str] = {
    "020": "[ 0.1.0 0.2.0]",  # Go's list starts with "" (an empty version), hence the leading space
    "040": "[0.3.0 0.3.1 0.4.0]",
    "100": "[1.0.0 1.1.0]",
}

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")

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
# Parsing
# --------------------------------------------------------------------------------------------------

_ABSENT: Any = object()


# Go matches JSON keys to struct fields with Unicode simple case folding; for the ASCII field names of results
# only the Kelvin sign and the long s fold onto ASCII letters.
_fold = go_fold


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Reader:
    """Reads the fields of one JSON object the way Go's decoder fills a struct."""

    def __init__(self, obj: Mapping[str, Any], path: str, struct: str) -> None:
        self.path = path
        self.struct = struct
        # Per field, the last value and the last non-null value: Go's decoder lets the last match
        # win, except that null leaves a string, number or struct field as it was.
        self.fields: dict[str, Any] = {}
        self.non_null: dict[str, Any] = {}
        for key, value in obj.items():
            folded = _fold(key) if isinstance(key, str) else None
            if folded is not None:
                self.fields[folded] = value
                if value is not None:
                    self.non_null[folded] = value

    def raw(self, name: str, *, null_resets: bool = True) -> Any:
        """The value for field ``name``; ``null_resets`` for pointer and slice fields, which a null clears."""
        source = self.fields if null_resets else self.non_null
        return source.get(name.lower(), _ABSENT)

    def key(self, name: str) -> str:
        return _join(self.path, name)

    def type_error(self, name: str, value: Any, go_type: str) -> DecodingError:
        shown = go_type_name(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            shown = f"number {value}"
        return DecodingError(
            f"json: cannot unmarshal {shown} into Go struct field {self.struct}.{name} of type {go_type}",
            key=self.key(name), value=value)

    def string(self, name: str) -> str:
        value = self.raw(name, null_resets=False)
        if value is _ABSENT or value is None:
            return ""
        if not isinstance(value, str):
            raise self.type_error(name, value, "string")
        return _clean(value)

    def integer(self, name: str, *, pointer: bool = False) -> int | None:
        value = self.raw(name, null_resets=pointer)
        if value is _ABSENT or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.type_error(name, value, "int")
        # Go reads an int field with ParseInt: "1.0", "1e3" and out-of-range numbers all fail.
        if isinstance(value, float) or not _INT_MIN <= value <= _INT_MAX:
            raise self.type_error(name, value, "int")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.raw(name)
        if value is _ABSENT or value is None:
            return ()
        if not isinstance(value, list):
            raise self.type_error(name, value, "[]string")
        out: list[str] = []
        for index, item in enumerate(value):
            if item is None:
                out.append("")
            elif isinstance(item, str):
                out.append(_clean(item))
            else:
                raise DecodingError(
                    f"json: cannot unmarshal {go_type_name(item)} into Go struct field {self.struct}.{name} "
                    "of type string", key=f"{self.key(name)}[{index}]", value=item)
        return tuple(out)

    def network(self, name: str) -> IPNetwork:
        value = self.raw(name)
        if value is _ABSENT or value is None:
            value = ""
        if not isinstance(value, str):
            # types.IPNet decodes into a plain string first.
            raise DecodingError(f"json: cannot unmarshal {go_type_name(value)} into Go value of type string",
                                key=self.key(name), value=value)
        parsed = go_parse_cidr(value)
        if parsed is None:
            raise DecodingError(f"invalid CIDR address: {value}", key=self.key(name), value=value)
        return parsed

    def address(self, name: str) -> IPAddress | None:
        value = self.raw(name)
        if value is _ABSENT or value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.type_error(name, value, "net.IP")
        parsed = go_parse_ip(value)
        if parsed is None:
            raise DecodingError(f"invalid IP address: {value}", key=self.key(name), value=value)
        return parsed

    def objects(self, name: str, go_type: str) -> list[tuple[Mapping[str, Any], str]]:
        value = self.raw(name)
        if value is _ABSENT or value is None:
            return []
        if not isinstance(value, list):
            raise self.type_error(name, value, f"[]{go_type}")
        out: list[tuple[Mapping[str, Any], str]] = []
        for index, item in enumerate(value):
            path = f"{self.key(name)}[{index}]"
            if not isinstance(item, Mapping):
                if item is None:
                    raise DecodingError(f"a null entry in {name} is not a valid {go_type.lstrip('*')}", key=path,
                                        value=item)
                raise DecodingError(f"json: cannot unmarshal {go_type_name(item)} into Go struct field "
                                    f"{self.struct}.{name} of type {go_type.lstrip('*')}", key=path, value=item)
            out.append((item, path))
        return out

    def object(self, name: str, go_type: str, *, pointer: bool) -> Mapping[str, Any] | None:
        value = self.raw(name, null_resets=pointer)
        if value is _ABSENT or value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.type_error(name, value, go_type)
        return value


def _clean(text: str) -> str:
    # Go's decoder turns unpaired surrogate escapes into U+FFFD.
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _read_dns(reader: _Reader) -> DNS:
    obj = reader.object("dns", "types.DNS", pointer=False)
    if obj is None:
        return DNS()
    sub = _Reader(obj, reader.key("dns"), f"{reader.struct}.dns")
    return DNS(nameservers=sub.strings("nameservers"), domain=sub.string("domain"), search=sub.strings("search"),
               options=sub.strings("options"))


def _read_route(obj: Mapping[str, Any], path: str) -> Route:
    reader = _Reader(obj, path, "route")
    return Route(
        dst=reader.network("dst"),
        gw=reader.address("gw"),
        mtu=reader.integer("mtu") or 0,
        advmss=reader.integer("advmss") or 0,
        priority=reader.integer("priority") or 0,
        table=reader.integer("table", pointer=True),
        scope=reader.integer("scope", pointer=True),
    )


def _read_100(reader: _Reader, version: str) -> Result:
    interfaces = []
    for obj, path in reader.objects("interfaces", "*types100.Interface"):
        sub = _Reader(obj, path, f"{reader.struct}.interfaces")
        interfaces.append(Interface(name=sub.string("name"), mac=sub.string("mac"), mtu=sub.integer("mtu") or 0,
                                    sandbox=sub.string("sandbox"), socket_path=sub.string("socketPath"),
                                    pci_id=sub.string("pciID")))
    ips = []
    for obj, path in reader.objects("ips", "*types100.IPConfig"):
        sub = _Reader(obj, path, "ipConfig")
        # Checked in struct order (interface, address, gateway) so the first error matches the reference.
        index = sub.integer("interface", pointer=True)
        ips.append(IPConfig(interface=index, address=sub.network("address"), gateway=sub.address("gateway")))
    routes = [_read_route(obj, path) for obj, path in reader.objects("routes", "*types.Route")]
    return Result(cni_version=version, interfaces=interfaces, ips=ips, routes=routes, dns=_read_dns(reader))


def _read_040(reader: _Reader, version: str) -> Result040:
    interfaces = []
    for obj, path in reader.objects("interfaces", "*types040.Interface"):
        sub = _Reader(obj, path, f"{reader.struct}.interfaces")
        interfaces.append(Interface040(name=sub.string("name"), mac=sub.string("mac"), sandbox=sub.string("sandbox")))
    ips = []
    for obj, path in reader.objects("ips", "*types040.IPConfig"):
        sub = _Reader(obj, path, "ipConfig")
        ip_version = sub.string("version")
        index = sub.integer("interface", pointer=True)
        ips.append(IPConfig040(version=ip_version, interface=index, address=sub.network("address"),
                               gateway=sub.address("gateway")))
    routes = [_read_route(obj, path) for obj, path in reader.objects("routes", "*types.Route")]
    return Result040(cni_version=version, interfaces=interfaces, ips=ips, routes=routes, dns=_read_dns(reader))


def _read_020(reader: _Reader, version: str) -> Result020:
    configs: dict[str, IPConfig020 | None] = {}
    for name in ("ip4", "ip6"):
        obj = reader.object(name, "types020.IPConfig", pointer=True)
        if obj is None:
            configs[name] = None
            continue
        sub = _Reader(obj, reader.key(name), "ipConfig")
        routes = [_read_route(r, path) for r, path in sub.objects("routes", "types.Route")]
        configs[name] = IPConfig020(ip=sub.network("ip"), gateway=sub.address("gateway"), routes=routes)
    return Result020(cni_version=version or "0.1.0", ip4=configs["ip4"], ip6=configs["ip6"], dns=_read_dns(reader))


def _create(version: str, doc: Any, path: str) -> AnyResult:
    """The reference's ``Create(version, bytes)``: the family's creator, then its version check."""
    family = result_family(version or "0.1.0")
    go_type = {"020": "types020.Result", "040": "types040.Result", "100": "types100.Result"}[family]
    if not isinstance(doc, Mapping):
        raise DecodingError(f"json: cannot unmarshal {go_type_name(doc)} into Go value of type {go_type}",
                            key=path or None, value=doc)
    reader = _Reader(doc, path, "Result")
    embedded = reader.string("cniVersion")
    accepted = RESULT_VERSIONS[family] + (("",) if family == "020" else ())
    if embedded not in accepted:
        raise DecodingError(
            f"result type supports {_SUPPORTED_TEXT[family]} but unmarshalled CNIVersion is {go_quote(embedded)}",
            key=reader.key("cniVersion"), value=embedded)
    if family == "100":
        return _read_100(reader, embedded)
    if family == "040":
        return _read_040(reader, embedded)
    return _read_020(reader, embedded)


def _through_float64(value: Any) -> Any:
    """A decoded document after the reference's round trip through ``map[string]interface{}``.

    Go reads every JSON number of such a map as a float64 and writes it back as
    the shortest decimal: integers beyond 2**53 are rounded, and integral
    floats (``1.0``, ``1e3``) come back as plain integers.
    """
    if isinstance(value, Mapping):
        return {k: _through_float64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_through_float64(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _writer.go_float_int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        from decimal import Decimal

        return int(Decimal(repr(value)))
    return value


def _remarshalled(doc: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return _through_float64(doc)  # type: ignore[no-any-return]
    except RecursionError:
        raise DecodingError("exceeded max depth") from None


def _load(data: str | bytes | bytearray | Mapping[str, Any] | None, what: str) -> Any:
    if isinstance(data, str | bytes | bytearray):
        return decode(data, what=what)
    return data


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
    doc = _load(data, "result")
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise DecodingError("failed to unmarshal raw result: json: cannot unmarshal "
                            f"{go_type_name(doc)} into Go value of type map[string]interface {{}}", value=doc)
    embedded = doc.get("cniVersion")
    if isinstance(embedded, str) and embedded:
        return _create(embedded, doc, "")
    assumed = version or "0.1.0"
    # Every spelling of the key goes: the injected version is the one the decoder must see.
    # The reference re-marshals the document to inject the version (numbers pass through float64).
    fixed = _remarshalled({k: v for k, v in doc.items() if not (isinstance(k, str) and _fold(k) == "cniversion")})
    fixed["cniVersion"] = assumed
    return _create(assumed, fixed, "")


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
    if not isinstance(config, Mapping):
        raise DecodingError("network config is not a JSON object", value=repr(config))
    raw = _Reader(config, "", "NetConf").raw("prevResult")
    if raw is _ABSENT or raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise DecodingError(f"json: cannot unmarshal {go_type_name(raw)} into Go struct field NetConf.prevResult "
                            "of type map[string]interface {}", key="prevResult", value=raw)
    config_version = decode_config_version(dict(config))
    prev = {key: value for key, value in raw.items() if isinstance(key, str)}
    if prev.get("CNIVersion", "") == "":
        prev["CNIVersion"] = config_version
    # The reference re-marshals the map (keys sorted, numbers through float64) before decoding
    # it, so of several spellings of "cniVersion" the last in sorted order is the one that counts.
    ordered = _remarshalled({key: prev[key] for key in sorted(prev)})
    try:
        return _create(config_version, ordered, "prevResult")
    except DecodingError as exc:
        raise DecodingError(f"could not parse prevResult: {exc.msg}", key=exc.key,
                            value=exc.value if exc.has_value else None) from exc
