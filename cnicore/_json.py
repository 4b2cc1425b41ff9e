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
from typing import Any

from cnicore._errors import DecodingError

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


def _check_serialisable(value: Any) -> Any:
    # Lone surrogates cannot be written as UTF-8; Go replaces invalid UTF-8 with U+FFFD.
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if _has_surrogate(value) \
            else value
    if isinstance(value, dict):
        return {(_check_serialisable(k) if isinstance(k, str) else k): _check_serialisable(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_check_serialisable(v) for v in value]
    return value


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def marshal_indent(value: Any) -> str:
    """Serialise like Go's ``json.MarshalIndent(v, "", "    ")`` (no trailing newline)."""
    text = json.dumps(_check_serialisable(value), indent=4, ensure_ascii=False, allow_nan=False)
    return _go_escape(text)


def marshal(value: Any) -> str:
    """Serialise like Go's ``json.Marshal`` (compact, no trailing newline)."""
    text = json.dumps(_check_serialisable(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return _go_escape(text)


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


def decode(data: str | bytes | bytearray, *, what: str = "JSON", max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Decode one JSON document strictly.

    Args:
        data: the document, as text or UTF-8 bytes.
        what: what the document is, for the error message (``network config``).
        max_bytes: the largest document accepted.

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
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise DecodingError(go_error_text(exc)) from exc
    except ValueError as exc:  # NaN / Infinity
        raise DecodingError(str(exc)) from exc
    except RecursionError as exc:
        raise DecodingError("exceeded max depth") from exc
    if _depth(value) > MAX_DEPTH:
        raise DecodingError("exceeded max depth", f"{what} is nested deeper than {MAX_DEPTH} levels")
    return value
