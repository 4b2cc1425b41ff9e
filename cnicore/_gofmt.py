"""Go formatting verbs the reference's messages use (``%q``, ``%v`` of slices), and Go's JSON field lookup.

Error texts are part of the interface: runtimes grep them, and differential
tests compare them with the reference plugins' output. :func:`go_field` finds
a struct field's value in a decoded JSON object the way Go's decoder does.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is left to type checkers: it slows an exec'd plugin's start
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = ["GO_SPACE", "go_errno", "go_field", "go_fold", "go_has_space", "go_quote", "go_quote_list", "go_type_name",
           "go_value_list"]

#: Go's ``strings.TrimSpace`` set: ASCII whitespace plus the Unicode White_Space characters.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
           "\u2028\u2029\u202f\u205f\u3000"
# A set, not a regular expression: compiling one (and importing ``re``, which an exec'd plugin's VERSION
# never needs) costs more than all its lookups.
_SPACE = frozenset(GO_SPACE)


def go_has_space(text: str) -> bool:
    """Whether ``text`` holds any character of :data:`GO_SPACE`."""
    return not _SPACE.isdisjoint(text)


def go_errno(reason: str) -> str:
    """A C library's errno text (``File exists``) as Go's ``syscall.Errno`` prints it: first letter lower-cased."""
    return reason[:1].lower() + reason[1:]


def go_fold(key: str) -> str | None:
    """The form under which Go's decoder matches a JSON key to an ASCII field name, or None if none can match.

    Case-insensitive, with the two non-ASCII letters that fold onto ASCII ones:
    the Kelvin sign (U+212A, to ``k``) and the long s (U+017F, to ``s``).
    """
    key = key.replace("\u212a", "k").replace("\u017f", "s")
    return key.lower() if key.isascii() else None


def go_field(obj: Mapping[str, Any], name: str, *, null_keeps: bool = False, missing: Any = None) -> tuple[str, Any]:
    """``(key as written, value)`` of struct field ``name`` in a decoded JSON object, as Go's decoder fills it.

    Every key that matches (exactly or by :func:`go_fold`) is decoded in turn, so
    the last one wins, whatever its case. ``null_keeps`` is for fields a JSON
    ``null`` leaves as they were (strings, numbers, booleans, structs): a null
    then does not replace an earlier value. When no key matches, the value is
    ``missing`` and the key ``name``.
    """
    found_key, found = name, missing
    folded = name.lower()
    for key, value in obj.items():
        if key != name:
            if not isinstance(key, str):
                continue
            # ASCII keys fold by lower(); only a non-ASCII key can fold onto an ASCII name (go_fold).
            if (key.lower() if key.isascii() else go_fold(key)) != folded:
                continue
        if value is None and null_keeps and found is not missing:
            continue
        found_key, found = key, value
    return found_key, found


# strconv.Quote's single-letter escapes.
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_quote_list(items: Iterable[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]`` (space separated, no commas)."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def go_value_list(items: Iterable[Any]) -> str:
    """Go's ``%v`` of a slice: ``[a b]``."""
    return "[" + " ".join(str(i) for i in items) + "]"


def go_type_name(value: Any) -> str:
    """The JSON type word Go's decoder uses in 'cannot unmarshal X into ...'."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    return "string"
