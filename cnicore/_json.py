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

Both directions run on the interpreter's JSON accelerator (``_json``: the C
scanner, string escaper and compact encoder the ``json`` package itself uses)
rather than through the ``json`` package: the package's Python layer imports
``re`` and ``enum`` for its fallbacks, which costs an executed plugin about 8 ms
of its start here, nearly as much as the interpreter's own start. The results
are the package's, byte for byte and error for error (differential tests in
``tests/spec/test_json.py``); on an interpreter without the accelerator the
package's own pure-Python parts are used.
"""

from __future__ import annotations

import sys

from cnicore._errors import DecodingError

TYPE_CHECKING = False  # typing is left to type checkers: it slows an exec'd plugin's start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

__all__ = ["MAX_DEPTH", "MAX_DOCUMENT_BYTES", "decode", "go_error_text", "marshal", "marshal_indent"]

#: Largest document accepted by :func:`decode` (configs and results are small).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: Deepest nesting accepted by :func:`decode` (Go's decoder stops at 10000).
MAX_DEPTH = 512


def _accelerator() -> Any:
    try:
        import _json
    except ImportError:  # an interpreter without the C accelerator
        return None
    return _json


def _package_scanner(context: Any) -> Any:
    # Without the accelerator: the json package's pure-Python scanner, with the same settings.
    import json

    decoder: Any = json.JSONDecoder(parse_float=context.parse_float, parse_int=context.parse_int,
                                    parse_constant=context.parse_constant, strict=True)
    return decoder.scan_once


def _package_string_text(text: str) -> str:
    from json.encoder import py_encode_basestring

    return py_encode_basestring(text)


_ACCELERATOR = _accelerator()
#: ``json.dumps`` of one string (ensure_ascii=False): quoted, with JSON's escapes.
_string_text: Any = _package_string_text if _ACCELERATOR is None else _ACCELERATOR.encode_basestring
_make_scanner: Any = _package_scanner if _ACCELERATOR is None else _ACCELERATOR.make_scanner
#: The C compact encoder json.dumps uses; None without the accelerator (the iterative writer then serves).
_make_compact_encoder: Any = None if _ACCELERATOR is None else _ACCELERATOR.make_encoder

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


def _scalar_text(value: Any) -> str:
    """A scalar (or an empty container) as ``json.dumps(value, ensure_ascii=False, allow_nan=False)`` writes it."""
    if isinstance(value, str):
        text: str = _string_text(value)
        return text
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value or value in (_INF, -_INF):
            raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
        return float.__repr__(value)
    if isinstance(value, dict | list | tuple) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    raise _not_serialisable(value)


def _not_serialisable(value: Any) -> TypeError:
    return TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _key_text(key: Any) -> str:
    # The keys json.dumps accepts, written as it writes them.
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None or isinstance(key, int | float):
        return _scalar_text(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _dumps_iteratively(value: Any, *, indent: bool) -> str:
    """What ``json.dumps`` writes for ``value`` (indent 4 or compact), without recursion.

    The indented writer, and the compact one for documents nested too deeply for the C
    encoder (which recurses once per level). Scalars and keys are written as the C encoder
    writes them (its string escaper, ``int`` and ``float`` reprs), so the two agree byte for byte.
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
            out.append(_scalar_text(item))

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
            out.append(_string_text(_key_text(key)) + key_separator)
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
    if indent or _make_compact_encoder is None:
        # json.dumps writes indented documents with its pure-Python encoder too (the C one is compact only).
        text = _dumps_iteratively(clean, indent=indent)
    else:
        # What json.dumps(clean, separators=(",", ":"), ensure_ascii=False, allow_nan=False) runs.
        encoder = _make_compact_encoder({}, _not_serialisable_default, _string_text, None, ":", ",", False, False,
                                        False)
        try:
            text = "".join(encoder(clean, 0))
        except RecursionError:
            text = _dumps_iteratively(clean, indent=False)
    return _go_escape(text)


def _not_serialisable_default(value: Any) -> Any:
    raise _not_serialisable(value)


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


def go_error_text(msg: str, doc: str, pos: int) -> str:
    """Describe a decode error (``json.JSONDecodeError``'s ``msg``, ``doc`` and ``pos``) the way Go's
    encoding/json words it."""
    if (pos >= len(doc.rstrip()) and msg != "Extra data") or msg.startswith("Unterminated string"):
        return "unexpected end of JSON input"  # (a string without its closing quote runs to the end)
    ch = doc[pos] if pos < len(doc) else ""
    shown = repr(ch)[1:-1] if ch not in ("'", '"') else ch
    if msg == "Extra data":
        return f"invalid character '{shown}' after top-level value"
    if msg.startswith("Expecting property name"):
        return f"invalid character '{shown}' looking for beginning of object key string"
    if msg.startswith("Expecting ':'"):
        return f"invalid character '{shown}' after object key"
    if msg.startswith("Expecting ','"):
        # Python does not say whether it was inside an object or a list; look back.
        opener = _innermost_opener(doc, pos)
        where = "object key:value pair" if opener == "{" else "array element"
        return f"invalid character '{shown}' after {where}"
    if msg.startswith("Invalid control character"):
        return f"invalid character '{shown}' in string literal"
    if msg.startswith("Invalid \\escape") or msg.startswith("Invalid \\u"):
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


class _ScanContext:
    """The settings the scanner reads, as ``json.loads`` would pass them (strict, NaN refused)."""

    def __init__(self, parse_int: Any, pairs_hook: Any = None) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = pairs_hook
        self.parse_float = _float_keeping_text
        self.parse_int = parse_int
        self.parse_constant = _reject_constant
        self.memo: dict[str, str] = {}


#: One scanner per integer rule, keyed by ``keep_negative_zero``.
_SCANNERS = {False: _make_scanner(_ScanContext(int)), True: _make_scanner(_ScanContext(_int_keeping_negative_zero))}
_WHITESPACE = " \t\n\r"


class _SyntaxError(Exception):
    """A syntax error found around the scanner (what json.loads raises as JSONDecodeError)."""

    def __init__(self, msg: str, doc: str, pos: int) -> None:
        super().__init__(msg)
        self.msg, self.doc, self.pos = msg, doc, pos


def _loads(text: str, scan: Any) -> Any:
    """``json.loads(text)``'s steps around the scanner: BOM refused, whitespace either side, nothing after."""
    if text.startswith("\ufeff"):
        raise _SyntaxError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = scan(text, start)
    except StopIteration as stop:
        raise _SyntaxError("Expecting value", text, stop.value) from None
    except SystemError:
        # Python 3.11's accelerator reports a syntax error inside a string, object or array as
        # json.decoder.JSONDecodeError, which it looks up in sys.modules without importing it: before the json
        # package is loaded it raises nothing, which Python turns into a SystemError. On this error path alone
        # the package is loaded and the document scanned again, for its JSONDecodeError (a ValueError).
        if "json.decoder" in sys.modules:
            raise
        import json.decoder  # noqa: F401

        value, end = scan(text, start)
    end = len(text) - len(text[end:].lstrip(_WHITESPACE))
    if end != len(text):
        raise _SyntaxError("Extra data", text, end)
    return value


def decode(data: str | bytes | bytearray, *, what: str = "JSON", max_bytes: int = MAX_DOCUMENT_BYTES,
           keep_negative_zero: bool = False, pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """Decode one JSON document strictly.

    Args:
        data: the document, as text or UTF-8 bytes.
        what: what the document is, for the error message (``network config``).
        max_bytes: the largest document accepted.
        keep_negative_zero: decode the integer ``-0`` as ``-0.0``, as Go decodes a number
            into ``interface{}`` (so re-encoding writes ``-0`` again); leave it off where
            the values are typed (Go reads ``-0`` into an ``int`` as 0).
        pairs_hook: called with each object's members as ``(key, value)`` pairs, in the
            document's order and duplicates included (``json.loads``'s
            ``object_pairs_hook``); its return value stands for the object.

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
        scanner = _SCANNERS[keep_negative_zero] if pairs_hook is None else _make_scanner(
            _ScanContext(_int_keeping_negative_zero if keep_negative_zero else int, pairs_hook))
        value = _loads(text, scanner)
    except _SyntaxError as exc:
        raise DecodingError(go_error_text(exc.msg, exc.doc, exc.pos)) from None
    except ValueError as exc:  # NaN / Infinity, or the scanner's own syntax error (json.JSONDecodeError)
        pos = getattr(exc, "pos", None)
        if pos is not None:
            raise DecodingError(go_error_text(exc.msg, exc.doc, pos)) from exc  # type: ignore[attr-defined]
        raise DecodingError(str(exc)) from exc
    except RecursionError as exc:
        raise DecodingError("exceeded max depth") from exc
    if _depth(value) > MAX_DEPTH:
        raise DecodingError("exceeded max depth", f"{what} is nested deeper than {MAX_DEPTH} levels")
    return value
