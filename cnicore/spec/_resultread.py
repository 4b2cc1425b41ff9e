"""Reading CNI results on plain values: the one reader, for the result types and for executed plugins.

The reference decoder's rules (see :mod:`cnicore.spec._result`, whose types are
built from what this module reads): unknown keys ignored, keys matched
case-insensitively with the last match winning, ``null`` meaning "absent" for
scalars, a wrong type or an unparsable address raising
:class:`~cnicore.DecodingError` (code 6) with the key path. Addresses come back
as Go prints them (``10.1.2.3/24``, an IPv4-mapped address as IPv4).

A result reads into a plain dict of its family (``"family"``: ``"020"``,
``"040"`` or ``"100"``) whose fields are the result types' constructor
arguments with addresses as text; :func:`plain_result_object` writes one
through the one result writer (:mod:`cnicore.spec._resultobj`), at its own
version or another of its family (within a family a conversion only changes
the version). Standard library only: an executed meta plugin passes its
``prevResult`` through without attrs or netaddr.
"""

from __future__ import annotations

# collections.abc's own Mapping, from the module os has already loaded: collections.abc would load collections
# (a millisecond of an exec'd meta plugin's start) for nothing more.
from _collections_abc import Mapping

from cnicore._errors import DecodingError
from cnicore._gofmt import go_fold, go_quote, go_type_name
from cnicore._json import decode
from cnicore.spec import _resultobj as _writer
from cnicore.spec._goint import cidr_value_text, ip_value_text, parse_cidr_value, parse_ip_value
from cnicore.spec._version import decode_config_version, result_family

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from cnicore.spec._version import ResultFamily

__all__ = ["RESULT_VERSIONS", "plain_result_object", "read_prev_result", "read_result", "result_addresses"]

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
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

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
        if isinstance(value, float) or not INT_MIN <= value <= INT_MAX:
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

    def network(self, name: str) -> str:
        value = self.raw(name)
        if value is _ABSENT or value is None:
            value = ""
        if not isinstance(value, str):
            # types.IPNet decodes into a plain string first.
            raise DecodingError(f"json: cannot unmarshal {go_type_name(value)} into Go value of type string",
                                key=self.key(name), value=value)
        parsed = parse_cidr_value(value)
        if parsed is None:
            raise DecodingError(f"invalid CIDR address: {value}", key=self.key(name), value=value)
        return cidr_value_text(*parsed)

    def address(self, name: str) -> str | None:
        value = self.raw(name)
        if value is _ABSENT or value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.type_error(name, value, "net.IP")
        parsed = parse_ip_value(value)
        if parsed is None:
            raise DecodingError(f"invalid IP address: {value}", key=self.key(name), value=value)
        return ip_value_text(*parsed)

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
    try:
        text.encode()
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


def _read_dns(reader: _Reader) -> dict[str, Any]:
    obj = reader.object("dns", "types.DNS", pointer=False)
    if obj is None:
        return {"nameservers": (), "domain": "", "search": (), "options": ()}
    sub = _Reader(obj, reader.key("dns"), f"{reader.struct}.dns")
    return {"nameservers": sub.strings("nameservers"), "domain": sub.string("domain"), "search": sub.strings("search"),
            "options": sub.strings("options")}


def _read_route(obj: Mapping[str, Any], path: str) -> dict[str, Any]:
    reader = _Reader(obj, path, "route")
    return {"dst": reader.network("dst"), "gw": reader.address("gw"), "mtu": reader.integer("mtu") or 0,
            "advmss": reader.integer("advmss") or 0, "priority": reader.integer("priority") or 0,
            "table": reader.integer("table", pointer=True), "scope": reader.integer("scope", pointer=True)}


def _read_100(reader: _Reader, version: str) -> dict[str, Any]:
    interfaces = []
    for obj, path in reader.objects("interfaces", "*types100.Interface"):
        sub = _Reader(obj, path, f"{reader.struct}.interfaces")
        interfaces.append({"name": sub.string("name"), "mac": sub.string("mac"), "mtu": sub.integer("mtu") or 0,
                           "sandbox": sub.string("sandbox"), "socket_path": sub.string("socketPath"),
                           "pci_id": sub.string("pciID")})
    ips = []
    for obj, path in reader.objects("ips", "*types100.IPConfig"):
        sub = _Reader(obj, path, "ipConfig")
        # Checked in struct order (interface, address, gateway) so the first error matches the reference.
        index = sub.integer("interface", pointer=True)
        ips.append({"interface": index, "address": sub.network("address"), "gateway": sub.address("gateway")})
    routes = [_read_route(obj, path) for obj, path in reader.objects("routes", "*types.Route")]
    return {"family": "100", "cni_version": version, "interfaces": interfaces, "ips": ips, "routes": routes,
            "dns": _read_dns(reader)}


def _read_040(reader: _Reader, version: str) -> dict[str, Any]:
    interfaces = []
    for obj, path in reader.objects("interfaces", "*types040.Interface"):
        sub = _Reader(obj, path, f"{reader.struct}.interfaces")
        interfaces.append({"name": sub.string("name"), "mac": sub.string("mac"), "sandbox": sub.string("sandbox")})
    ips = []
    for obj, path in reader.objects("ips", "*types040.IPConfig"):
        sub = _Reader(obj, path, "ipConfig")
        ip_version = sub.string("version")
        index = sub.integer("interface", pointer=True)
        ips.append({"version": ip_version, "interface": index, "address": sub.network("address"),
                    "gateway": sub.address("gateway")})
    routes = [_read_route(obj, path) for obj, path in reader.objects("routes", "*types.Route")]
    return {"family": "040", "cni_version": version, "interfaces": interfaces, "ips": ips, "routes": routes,
            "dns": _read_dns(reader)}


def _read_020(reader: _Reader, version: str) -> dict[str, Any]:
    configs: dict[str, dict[str, Any] | None] = {}
    for name in ("ip4", "ip6"):
        obj = reader.object(name, "types020.IPConfig", pointer=True)
        if obj is None:
            configs[name] = None
            continue
        sub = _Reader(obj, reader.key(name), "ipConfig")
        routes = [_read_route(r, path) for r, path in sub.objects("routes", "types.Route")]
        configs[name] = {"ip": sub.network("ip"), "gateway": sub.address("gateway"), "routes": routes}
    return {"family": "020", "cni_version": version or "0.1.0", "ip4": configs["ip4"], "ip6": configs["ip6"],
            "dns": _read_dns(reader)}


def _create(version: str, doc: Any, path: str) -> dict[str, Any]:
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
        from decimal import Decimal  # rare

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




def read_result(data: str | bytes | bytearray | Mapping[str, Any], version: str | None = None) -> dict[str, Any]:
    """A result document read as the reference runtime reads it (see :func:`cnicore.spec.parse_result`)."""
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


def read_prev_result(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """A configuration's ``prevResult`` read as the reference's ``ParsePrevResult`` reads it; None without one.

    See :func:`cnicore.spec.parse_prev_result` (the typed result built from this).
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


def result_addresses(result: Mapping[str, Any]) -> list[tuple[str, int | None]]:
    """A read result's addresses as ``(address, interface index)``, in the current shape's ``ips`` order.

    A 0.1.0/0.2.0 result's ``ip4`` then ``ip6``, without an index (as they are once converted upwards).
    """
    if result["family"] == "020":
        return [(config["ip"], None) for config in (result["ip4"], result["ip6"]) if config is not None]
    return [(ip["address"], ip["interface"]) for ip in result["ips"]]


def _route_object(route: Mapping[str, Any], *, sort: bool) -> dict[str, Any]:
    return _writer.route_object(route["dst"], route["gw"], mtu=route["mtu"], advmss=route["advmss"],
                                priority=route["priority"], table=route["table"], scope=route["scope"], sort=sort)


def _dns_object(dns: Mapping[str, Any], *, sort: bool) -> dict[str, Any]:
    return _writer.dns_object(dns["nameservers"], dns["domain"], dns["search"], dns["options"], sort=sort)


def _ip_object_020(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return _writer.ip_object_020(config["ip"], config["gateway"],
                                 [_route_object(route, sort=False) for route in config["routes"]])


def plain_result_object(result: Mapping[str, Any], version: str) -> dict[str, Any]:
    """A read result written at ``version`` of its own family (the object the reference marshals).

    Raises:
        InternalError: ``version`` belongs to another family (that takes the result types' conversion).
    """
    family = result["family"]
    if result_family(version or "0.1.0") != family:
        from cnicore._errors import InternalError

        raise InternalError(f"no plain conversion of a {result['cni_version']} result to {version}",
                            key="cniVersion", value=version)
    if family == "100":
        return _writer.result_object_100(
            version, [_writer.interface_object(i["name"], i["mac"], mtu=i["mtu"], sandbox=i["sandbox"],
                                               socket_path=i["socket_path"], pci_id=i["pci_id"])
                      for i in result["interfaces"]],
            [_writer.ip_object_100(ip["address"], ip["gateway"], ip["interface"]) for ip in result["ips"]],
            [_route_object(route, sort=True) for route in result["routes"]], _dns_object(result["dns"], sort=True))
    if family == "040":
        return _writer.result_object_040(
            version, [_writer.interface_object(i["name"], i["mac"], sandbox=i["sandbox"], current=False)
                      for i in result["interfaces"]],
            [_writer.ip_object_040(ip["version"], ip["address"], ip["gateway"], ip["interface"])
             for ip in result["ips"]],
            [_route_object(route, sort=False) for route in result["routes"]], _dns_object(result["dns"], sort=False))
    return _writer.result_object_020(version or "0.1.0", _ip_object_020(result["ip4"]), _ip_object_020(result["ip6"]),
                                     _dns_object(result["dns"], sort=False))
