"""JSON in and out, the way the reference implementation does it.

Emission matches Go's ``encoding/json`` byte for byte for the values CNI uses
(strings, integers, booleans, lists, objects, null): ``<``, ``>``, ``&``,
U+2028 and U+2029 are escaped, other non-ASCII text is written as UTF-8,
``marshal_indent`` uses four spaces and no trailing newline (as
``json.MarshalIndent(v, "", "    ")``) and ``marshal`` is compact
(as ``json.Marshal``). Key order is the caller's: pass objects in the order the
reference writes them (struct field order, or sorted for Go maps).

Decoding is strict and bounded: invalid JSON, NaN/Infinity, documents that are
too large or nested too deeply all raise :class:`~cnicore.DecodingError`
(code 6) with a Go-like description, never a bare ``ValueError`` or
``RecursionError``.
"""

from __future__ import annotations

import json

from cnicore._errors import DecodingError

TYPE_CHECKING = False  # typing is left to type checkers: it slows an exec'd plugin's start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

__all__ = ["MAX_DEPTH", "MAX_DOCUMENT_BYTES", "decode", "go_error_text", "marshal", "marshal_indent"]

#: Largest document accepted by :func:`decode` (configs and results are small).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: Deepest nesting accepted by :func:`decode` (Go's decoder stops at 10000).
MAX_DEPTH = 512

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_escape(text: str) -> str:
    if any(ch in text for ch in _ESCAPES):
        for ch, rep in _ESCAPES.items():
            text = text.replace(ch, rep)
    return text


def _clean_text(text: str) -> str:
    # Lone surrogates cannot be written as UTF-8; Go replaces invalid UTF-8 with U+FFFD.
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


_END: Any = object()


def _members(container: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> Iterator[tuple[Any, Any]]:
    if isinstance(container, dict):
        return ((_clean_text(k) if isinstance(k, str) else k, v) for k, v in container.items())
    return ((None, v) for v in container)


def _serialisable(value: Any) -> Any:
    """``value`` with every text cleaned and tuples as lists, rebuilt without recursion.

    Iterative, so that any document :func:`decode` accepts can be written back:
    Python's recursion limit would stop a recursive walk a few hundred levels down.
    A container that contains itself raises ``ValueError``, as ``json.dumps`` does.
    """
    if isinstance(value, str):
        return _clean_text(value)
    if not isinstance(value, dict | list | tuple):
        return value
    root: dict[Any, Any] | list[Any] = {} if isinstance(value, dict) else []
    stack = [(_members(value), root, id(value))]
    on_path = {id(value)}
    while stack:
        members, target, ident = stack[-1]
        entry = next(members, _END)
        if entry is _END:
            stack.pop()
            on_path.discard(ident)
            continue
        key, child = entry
        if isinstance(child, dict | list | tuple):
            if id(child) in on_path:
                raise ValueError("Circular reference detected")
            copy: dict[Any, Any] | list[Any] = {} if isinstance(child, dict) else []
            on_path.add(id(child))
            stack.append((_members(child), copy, id(child)))
            child = copy
        elif isinstance(child, str):
            child = _clean_text(child)
        if isinstance(target, dict):
            target[key] = child
        else:
            target.append(child)
    return root


def _key_text(key: Any) -> str:
    # The keys json.dumps accepts, written as it writes them.
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None or isinstance(key, int | float):
        return json.dumps(key, allow_nan=False)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _dumps_iteratively(value: Any, *, indent: bool) -> str:
    """What ``json.dumps`` writes for ``value`` (indent 4 or compact), without recursion.

    Used for documents nested too deeply for the C encoder, which recurses once per level.
    Scalars and keys are written by ``json.dumps`` itself, so the two agree byte for byte.
    """
    key_separator = ": " if indent else ":"
    out: list[str] = []
    # Each frame: the members still to write, whether it is an object, its level, and whether it wrote one.
    stack: list[list[Any]] = []

    def begin(item: Any, level: int) -> None:
        if isinstance(item, dict | list) and item:
            out.append("{" if isinstance(item, dict) else "[")
            stack.append([iter(item.items()) if isinstance(item, dict) else iter(item), isinstance(item, dict),
                          level + 1, False])
        else:
            out.append(json.dumps(item, ensure_ascii=False, allow_nan=False))

    begin(value, 0)
    while stack:
        frame = stack[-1]
        members, is_object, level, wrote = frame
        entry = next(members, _END)
        if entry is _END:
            stack.pop()
            if indent:
                out.append("\n" + "    " * (level - 1))
            out.append("}" if is_object else "]")
            continue
        if wrote:
            out.append(",")
        frame[3] = True
        if indent:
            out.append("\n" + "    " * level)
        if is_object:
            key, entry = entry
            out.append(json.dumps(_key_text(key), ensure_ascii=False) + key_separator)
        begin(entry, level)
    return "".join(out)


def _serialisable_recursively(value: Any) -> Any:
    # The common case (shallow documents), about five times faster than the iterative walk.
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return {(_clean_text(k) if isinstance(k, str) else k): _serialisable_recursively(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_serialisable_recursively(v) for v in value]
    return value


def _dumps(value: Any, *, indent: bool) -> str:
    try:
        clean = _serialisable_recursively(value)
    except RecursionError:  # deep (or circular: the iterative walk says so) documents
        clean = _serialisable(value)
    try:
        if indent:
            text = json.dumps(clean, indent=4, ensure_ascii=False, allow_nan=False)
        else:
            text = json.dumps(clean, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        text = _dumps_iteratively(clean, indent=indent)
    return _go_escape(text)


def marshal_indent(value: Any) -> str:
    """Serialise like Go's ``json.MarshalIndent(v, "", "    ")`` (no trailing newline)."""
    return _dumps(value, indent=True)


def marshal(value: Any) -> str:
    """Serialise like Go's ``json.Marshal`` (compact, no trailing newline)."""
    return _dumps(value, indent=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _depth(value: Any) -> int:
    # Iterative so that a pathological document cannot exhaust the C stack.
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest


def go_error_text(exc: json.JSONDecodeError) -> str:
    """Describe a decode error the way Go's encoding/json words it."""
    doc, pos = exc.doc, exc.pos
    if pos >= len(doc.rstrip()) and exc.msg != "Extra data":
        return "unexpected end of JSON input"
    ch = doc[pos] if pos < len(doc) else ""
    shown = repr(ch)[1:-1] if ch not in ("'", '"') else ch
    if exc.msg == "Extra data":
        return f"invalid character '{shown}' after top-level value"
    if exc.msg.startswith("Expecting property name"):
        return f"invalid character '{shown}' looking for beginning of object key string"
    if exc.msg.startswith("Expecting ':'"):
        return f"invalid character '{shown}' after object key"
    if exc.msg.startswith("Expecting ','"):
        # Python does not say whether it was inside an object or a list; look back.
        opener = _innermost_opener(doc, pos)
        where = "object key:value pair" if opener == "{" else "array element"
        return f"invalid character '{shown}' after {where}"
    if exc.msg.startswith("Invalid control character"):
        return f"invalid character '{shown}' in string literal"
    if exc.msg.startswith("Invalid \\escape") or exc.msg.startswith("Invalid \\u"):
        return f"invalid character '{shown}' in string escape code"
    return f"invalid character '{shown}' looking for beginning of value"


def _innermost_opener(doc: str, pos: int) -> str:
    depth: list[str] = []
    in_string = escaped = False
    for ch in doc[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth.append(ch)
        elif ch in "}]" and depth:
            depth.pop()
    return depth[-1] if depth else ""


def _int_keeping_negative_zero(text: str) -> int | float:
    # Go decodes every number of an interface{} value as float64, so "-0" stays -0 and is written back as
    # "-0"; Python's int has no negative zero.
    return -0.0 if text == "-0" else int(text)


class OutOfRangeNumber(float):
    """A number literal beyond float64's range (``1e999``): infinite, with the document's spelling kept in
    :attr:`text`, as Go's decoder names it (``cannot unmarshal number 1e999 into ...``)."""

    __slots__ = ("text",)
    text: str


def _float_keeping_text(text: str) -> float:
    value = float(text)
    if value in (_INF, -_INF):
        big = OutOfRangeNumber(value)
        big.text = text
        return big
    return value


_INF = float("inf")


def decode(data: str | bytes | bytearray, *, what: str = "JSON", max_bytes: int = MAX_DOCUMENT_BYTES,
           keep_negative_zero: bool = False) -> Any:
    """Decode one JSON document strictly.

    Args:
        data: the document, as text or UTF-8 bytes.
        what: what the document is, for the error message (``network config``).
        max_bytes: the largest document accepted.
        keep_negative_zero: decode the integer ``-0`` as ``-0.0``, as Go decodes a number
            into ``interface{}`` (so re-encoding writes ``-0`` again); leave it off where
            the values are typed (Go reads ``-0`` into an ``int`` as 0).

    Raises:
        DecodingError: (code 6) for anything that is not one bounded JSON value.
    """
    size = len(data)
    if size > max_bytes:
        raise DecodingError(f"error decoding {what}: document of {size} bytes exceeds the limit of "
                            f"{max_bytes} bytes")
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodingError(f"error decoding {what}: invalid UTF-8 at byte {exc.start}") from exc
    else:
        text = data
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_float_keeping_text,
                           parse_int=_int_keeping_negative_zero if keep_negative_zero else None)
    except json.JSONDecodeError as exc:
        raise DecodingError(go_error_text(exc)) from exc
    except ValueError as exc:  # NaN / Infinity
        raise DecodingError(str(exc)) from exc
    except RecursionError as exc:
        raise DecodingError("exceeded max depth") from exc
    if _depth(value) > MAX_DEPTH:
        raise DecodingError("exceeded max depth", f"{what} is nested deeper than {MAX_DEPTH} levels")
    return value
