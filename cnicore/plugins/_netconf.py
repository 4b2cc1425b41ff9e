"""Reading a meta plugin's configuration as Go's ``encoding/json`` fills the reference plugin's struct.

The reference's chained plugins (tuning, firewall, portmap) decode their stdin
into a Go struct; a field of the wrong JSON type fails the whole decode with
``json: cannot unmarshal <json type> into Go struct field <Struct>.<path> of type
<Go type>``, where ``<Struct>`` is the innermost named struct type (empty for an
anonymous one) and ``<path>`` the full key path. :class:`GoStruct` reads one
object that way, on plain values (standard library only: an exec'd meta plugin
pays for nothing more).
"""

from __future__ import annotations

from cnicore._errors import InvalidConfigError
from cnicore._gofmt import go_field, go_type_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["GoStruct"]


class GoStruct:
    """One JSON object read as a Go struct.

    Args:
        obj: the decoded object (a non-object is read as empty).
        struct: the Go struct type's name in messages (``TuningConf``; ``""`` for an anonymous struct).
        path: the key path to this object, with a trailing dot (``"args.cni."``), ``""`` at the top.
        prefix: what the plugin puts before Go's message (``"failed to load netconf: "``).
    """

    __slots__ = ("obj", "path", "prefix", "struct")

    def __init__(self, obj: Any, struct: str, path: str = "", prefix: str = "") -> None:
        self.obj: Mapping[str, Any] = obj if isinstance(obj, dict) else {}
        self.struct = struct
        self.path = path
        self.prefix = prefix

    def error(self, value: Any, name: str, go_type: str) -> InvalidConfigError:
        """Go's type error for field ``name``."""
        shown = go_type_name(value)
        if shown == "number" and go_type in ("int", "uint", "int32", "uint32", "int64", "uint64", "uint16"):
            shown = f"number {_go_number(value)}"
        return InvalidConfigError(f"{self.prefix}json: cannot unmarshal {shown} into Go struct field "
                                  f"{self.struct}.{self.path}{name} of type {go_type}",
                                  key=self.path + name, value=value)

    def raw(self, name: str, *, pointer: bool = False) -> Any:
        """The field's JSON value (None when absent; null clears only a pointer, slice or map)."""
        return go_field(self.obj, name, null_keeps=not pointer)[1]

    def get_bool(self, name: str, *, pointer: bool = False) -> bool | None:
        """A ``bool`` (or ``*bool``) field; None when absent or null."""
        value = self.raw(name, pointer=pointer)
        if value is None or isinstance(value, bool):
            return value
        raise self.error(value, name, "bool")

    def get_int(self, name: str, *, pointer: bool = False, go_type: str = "int") -> int | None:
        """An integer field; None when absent or null."""
        value = self.raw(name, pointer=pointer)
        if value is None:
            return None
        # Go reads an integer field only from an integer literal: "1500.0" or "1e3" is refused as 1.5 is. The
        # one float the decoder gives for an integer literal is -0.0 (for "-0", kept for values Go writes back).
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value == 0
                                                                      and str(value) == "-0.0")):
            raise self.error(value, name, go_type)
        return int(value)

    def get_str(self, name: str, *, pointer: bool = False) -> str | None:
        """A ``string`` field; None when absent or null."""
        value = self.raw(name, pointer=pointer)
        if value is None or isinstance(value, str):
            return value
        raise self.error(value, name, "string")

    def get_str_map(self, name: str) -> dict[str, str] | None:
        """A ``map[string]string`` field, in the document's order; None when absent or null."""
        value = self.raw(name, pointer=True)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(value, name, "map[string]string")
        for item in value.values():
            if not isinstance(item, str):
                raise self.error(item, name, "string")
        return dict(value)

    def get_strings(self, name: str) -> list[str] | None:
        """A ``[]string`` field; None when absent or null."""
        value = self.raw(name, pointer=True)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(value, name, "[]string")
        for item in value:
            if not isinstance(item, str):
                raise self.error(item, name, "string")
        return list(value)

    def get_struct(self, name: str, struct: str, *, pointer: bool = False) -> GoStruct | None:
        """A nested struct field (``struct``: its Go type name, ``""`` if anonymous); None when absent or null."""
        value = self.raw(name, pointer=pointer)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(value, name, struct or "struct")
        return GoStruct(value, struct, f"{self.path}{name}.", self.prefix)


def _go_number(value: Any) -> str:
    text = getattr(value, "text", None)  # a literal beyond float64's range, as the document spells it
    if isinstance(text, str):
        return text
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return f"{int(value)}.0"  # the usual spelling of an integral float literal ("1500.0")
    return str(value)
