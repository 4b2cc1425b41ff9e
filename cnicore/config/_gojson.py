"""How Go's ``encoding/json`` sees a configuration, for byte- and message-exact parity.

libcni handles configurations in two ways, and both leave traces that runtimes and
plugins can observe:

* As ``map[string]interface{}``: every JSON number becomes a ``float64`` (so a
  number outside float64's range fails to decode, and numbers are written back in
  Go's float format: ``1500``, ``0.00001``, ``1e+21``, ``1e-7``), and re-marshalling
  sorts object keys at every level. :func:`check_go_numbers` and
  :func:`go_map_marshal` reproduce both.
* As the ``types.PluginConf`` struct: known fields are matched by name (exactly, or
  else ignoring case, as Go does) and must have the field's type, otherwise
  ``json: cannot unmarshal <json type> into Go struct field <Struct>.<path> of type
  <Go type>``. :func:`decode_plugin_struct` reproduces that check and returns the
  fields' values.

``%T`` of a decoded value is :func:`go_dynamic_type` (``float64``, ``bool``,
``[]interface {}``, ``map[string]interface {}``, ``<nil>``).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from cnicore._errors import DecodingError
from cnicore._gofmt import go_type_name
from cnicore._json import marshal

__all__ = [
    "PluginStruct",
    "check_go_numbers",
    "go_dynamic_type",
    "go_float_text",
    "go_map_marshal",
    "decode_plugin_struct",
    "rebuild",
]


def go_dynamic_type(value: Any) -> str:
    """Go's ``%T`` of a value decoded into ``interface{}``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"


def rebuild(
    root: Any,
    *,
    finish_map: Callable[[dict[Any, Any]], Any] = dict,
    finish_seq: Callable[[list[Any]], Any] = list,
    leaf: Callable[[Any], Any] = lambda v: v,
    sort_keys: bool = False,
) -> Any:
    """Copy a JSON-like tree bottom-up without recursion.

    Documents may be nested hundreds of levels deep (the decoder allows
    ``MAX_DEPTH``), deeper than Python's recursion limit allows a recursive copy
    to go, so the walk keeps its own stack. Mappings are rebuilt through
    ``finish_map``, lists and tuples through ``finish_seq``, anything else through ``leaf``.
    """

    def open_frame(node: Any) -> list[Any] | None:
        if isinstance(node, Mapping):
            keys = sorted(node) if sort_keys else list(node)
            return [True, node, keys, 0, {}]
        if isinstance(node, list | tuple):
            return [False, node, None, 0, []]
        return None

    first = open_frame(root)
    if first is None:
        return leaf(root)
    stack = [first]
    while True:
        frame = stack[-1]
        is_map, node, keys, index, acc = frame
        size = len(keys) if is_map else len(node)
        if index < size:
            frame[3] = index + 1
            child = node[keys[index]] if is_map else node[index]
            sub = open_frame(child)
            if sub is not None:
                stack.append(sub)
                continue
            built = leaf(child)
        else:
            stack.pop()
            built = finish_map(acc) if is_map else finish_seq(acc)
            if not stack:
                return built
            frame = stack[-1]
            is_map, _node, keys, index, acc = frame
            index -= 1
        if is_map:
            acc[keys[index]] = built
        else:
            acc.append(built)


def _walk(value: Any, path: str) -> Iterator[tuple[str, int | float]]:
    # Iterative depth-first walk yielding (path, scalar) for numbers.
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, int | float) and not isinstance(item, bool):
            yield where, item


def check_go_numbers(value: Any, *, prefix: str, what: str) -> None:
    """Reject numbers a Go ``float64`` cannot hold, as Go's decoder does.

    Raises:
        DecodingError: ``<prefix>json: cannot unmarshal number <n> into Go value of type float64``.
    """
    for where, number in _walk(value, ""):
        try:
            ok = math.isfinite(float(number))
        except OverflowError:
            ok = False
        if not ok:
            shown = str(number) if isinstance(number, int) and len(str(number)) <= 40 else "out of range"
            raise DecodingError(
                f"{prefix}json: cannot unmarshal number {shown} into Go value of type float64",
                f"{what}: key {where or '(document)'} holds a number outside the float64 range",
                key=where or None,
            )


def go_float_text(number: float | int) -> str:
    """The text Go's ``json.Marshal`` writes for a ``float64``."""
    value = float(number)
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    magnitude = abs(value)
    if 1e-6 <= magnitude < 1e21:
        text = format(Decimal(repr(value)), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    sign = exponent[0]
    digits = exponent[1:].lstrip("0") or "0"
    # Go keeps at least two exponent digits, then encoding/json trims e-07 to e-7.
    if sign == "+" and len(digits) < 2:
        digits = digits.rjust(2, "0")
    return f"{mantissa}e{sign}{digits}"


def _go_number_leaf(numbers: dict[str, str], token: str) -> Callable[[Any], Any]:
    def leaf(value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = go_float_text(value)
            if text.lstrip("-").isdigit() and text != "-0":
                return int(text)
            # json.dumps cannot write this spelling, so a unique placeholder string is
            # written and replaced by the number text afterwards.
            placeholder = f"{token}{len(numbers)}"
            numbers[f'"{placeholder}"'] = text
            return placeholder
        return value

    return leaf


def go_map_marshal(document: Mapping[str, Any], verbatim: Mapping[str, Any] | None = None) -> bytes:
    """Compact JSON of ``document`` as Go marshals a ``map[string]interface{}``.

    Keys are sorted at every level and numbers use Go's ``float64`` spelling. Entries
    of ``verbatim`` are added at the top level but keep their own key order and
    numbers (they stand for Go structs, which marshal in field order).
    """
    numbers: dict[str, str] = {}
    token = "\u0000gonum" + secrets.token_hex(8) + ":"
    merged: dict[str, Any] = dict(document)
    merged.update(verbatim or {})
    out: dict[str, Any] = {}
    leaf = _go_number_leaf(numbers, token)
    for key in sorted(merged):
        if verbatim is not None and key in verbatim:
            out[key] = merged[key]
        else:
            out[key] = rebuild(merged[key], leaf=leaf, sort_keys=True)
    try:
        text = marshal(out)
    except RecursionError as exc:
        # The shared encoder recurses; a document near the decoder's depth limit can
        # exhaust Python's stack there. It is refused like an over-deep document.
        raise DecodingError("exceeded max depth", "document is nested too deeply to be written") from exc
    for placeholder, number in numbers.items():
        # json escapes the NUL as \u0000 in the written placeholder.
        text = text.replace(placeholder.replace("\u0000", "\\u0000"), number)
    return text.encode("utf-8")


# --- the types.PluginConf struct -------------------------------------------------------------

class PluginStruct:
    """The fields of ``types.PluginConf`` as Go would decode them."""

    __slots__ = ("capabilities", "cni_version", "ipam_type", "name", "type")

    def __init__(self) -> None:
        self.cni_version = ""
        self.name = ""
        self.type = ""
        self.capabilities: dict[str, bool] = {}
        self.ipam_type = ""


def _type_error(value: Any, struct: str, field: str, go_type: str) -> DecodingError:
    return DecodingError(
        f"json: cannot unmarshal {go_type_name(value)} into Go struct field {struct}.{field} of type {go_type}",
        key=field,
        value=value,
    )


def _match(raw: Mapping[str, Any], fields: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(field, key, value) for each key of ``raw`` that Go maps onto a struct field."""
    lowered = {name.lower(): name for name in fields}
    found: list[tuple[str, str, Any]] = []
    for key, value in raw.items():
        field = key if key in fields else lowered.get(key.lower())
        if field is not None:
            found.append((field, key, value))
    return found


def _string(value: Any, struct: str, field: str) -> str | None:
    if value is None:
        return None  # null leaves a Go string untouched
    if not isinstance(value, str):
        raise _type_error(value, struct, field, "string")
    return value


def _string_list(value: Any, struct: str, field: str) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise _type_error(value, struct, field, "[]string")
    for item in value:
        _string(item, struct, field)


def _decode_ipam(value: Any, out: PluginStruct) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _type_error(value, "PluginConf", "ipam", "types.IPAM")
    for _field, _key, item in _match(value, {"type": None}):
        text = _string(item, "IPAM", "ipam.type")
        if text is not None:
            out.ipam_type = text


def _decode_dns(value: Any, out: PluginStruct) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _type_error(value, "PluginConf", "dns", "types.DNS")
    for field, _key, item in _match(value, {"nameservers": None, "domain": None, "search": None,
                                            "options": None}):
        if field == "domain":
            _string(item, "DNS", "dns.domain")
        else:
            _string_list(item, "DNS", f"dns.{field}")


def _decode_capabilities(value: Any, out: PluginStruct) -> None:
    if value is None:
        out.capabilities = {}
        return
    if not isinstance(value, dict):
        raise _type_error(value, "PluginConf", "capabilities", "map[string]bool")
    for name, flag in value.items():
        if flag is None:
            continue  # null decodes to the zero value, false
        if not isinstance(flag, bool):
            raise _type_error(flag, "PluginConf", "capabilities", "bool")
        out.capabilities[name] = flag


def _decode_prev_result(value: Any, out: PluginStruct) -> None:
    if value is not None and not isinstance(value, dict):
        raise _type_error(value, "PluginConf", "prevResult", "map[string]interface {}")


def _decode_attachments(value: Any, out: PluginStruct) -> None:
    field = "cni.dev/valid-attachments"
    if value is None:
        return
    if not isinstance(value, list):
        raise _type_error(value, "PluginConf", field, "[]types.GCAttachment")
    for item in value:
        if item is None:
            continue
        if not isinstance(item, dict):
            raise _type_error(item, "PluginConf", field, "types.GCAttachment")
        for sub, _key, text in _match(item, {"containerID": None, "ifname": None}):
            _string(text, "GCAttachment", f"{field}.{sub}")


def _simple(attr: str) -> Callable[[Any, PluginStruct], None]:
    def decode(value: Any, out: PluginStruct) -> None:
        field = {"cni_version": "cniVersion"}.get(attr, attr)
        text = _string(value, "PluginConf", field)
        if text is not None:
            setattr(out, attr, text)

    return decode


_PLUGIN_FIELDS: dict[str, Callable[[Any, PluginStruct], None]] = {
    "cniVersion": _simple("cni_version"),
    "name": _simple("name"),
    "type": _simple("type"),
    "capabilities": _decode_capabilities,
    "ipam": _decode_ipam,
    "dns": _decode_dns,
    "prevResult": _decode_prev_result,
    "cni.dev/valid-attachments": _decode_attachments,
}


def decode_plugin_struct(document: Any) -> PluginStruct:
    """Decode ``document`` into ``types.PluginConf`` the way Go's ``json.Unmarshal`` does.

    ``null`` decodes to the zero value. The first type mismatch in document order is
    reported (Go keeps decoding but returns the first error).

    Raises:
        DecodingError: ``json: cannot unmarshal ...`` with the Go wording.
    """
    out = PluginStruct()
    if document is None:
        return out
    if not isinstance(document, dict):
        raise DecodingError(
            f"json: cannot unmarshal {go_type_name(document)} into Go value of type types.PluginConf",
            value=document,
        )
    for field, _key, value in _match(document, _PLUGIN_FIELDS):
        _PLUGIN_FIELDS[field](value, out)
    return out
