"""Go formatting verbs the reference's messages use (``%q``, ``%v`` of slices).

Error texts are part of the interface: runtimes grep them, and differential
tests compare them with the reference plugins' output.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is left to type checkers: it slows an exec'd plugin's start
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

__all__ = ["go_quote", "go_quote_list", "go_type_name", "go_value_list"]


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
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
