"""``CNI_ARGS`` parsing with the reference's rules and messages.

``CNI_ARGS`` is ``"K1=V1;K2=V2"``. The reference matches each key against the
Go struct field names of the plugin's argument type, case-sensitively, and
fails on unknown keys unless ``IgnoreUnknown`` is true. Here the plugin passes
the keys it understands and a parser per key.
"""

from __future__ import annotations

from cnicore._errors import InvalidConfigError
from cnicore._gofmt import go_quote, go_quote_list

TYPE_CHECKING = False  # typing is left to type checkers: an exec'd plugin with CNI_ARGS loads this module
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["parse_bool_arg", "parse_cni_args", "split_cni_args"]


def split_cni_args(cni_args: str) -> list[tuple[str, str]]:
    """Split ``CNI_ARGS`` into ordered (key, value) pairs.

    Raises:
        InvalidConfigError: ``ARGS: invalid pair "<pair>"`` when a pair does not have
            exactly one ``=`` (so ``A=B=C``, a trailing ``;`` or ``none`` fail).
    """
    if cni_args == "":
        return []
    pairs: list[tuple[str, str]] = []
    for item in cni_args.split(";"):
        parts = item.split("=")
        if len(parts) != 2:
            raise InvalidConfigError(f"ARGS: invalid pair {go_quote(item)}", key="CNI_ARGS", value=cni_args)
        pairs.append((parts[0], parts[1]))
    return pairs


def parse_bool_arg(value: str) -> bool:
    """Parse ``IgnoreUnknown``-style booleans: 1/true/0/false, case-insensitively."""
    lowered = value.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise ValueError(f"boolean unmarshal error: invalid input {value}")


def parse_cni_args(cni_args: str, fields: Mapping[str, Callable[[str], Any]]) -> dict[str, Any]:
    """Parse ``CNI_ARGS`` into the known fields.

    Args:
        cni_args: the raw ``CNI_ARGS`` value.
        fields: key -> parser for each key the plugin understands (``{"IP": parse_ip}``).
            ``IgnoreUnknown`` is always understood. A parser raises ``ValueError``
            with the reference's text on a bad value.

    Returns:
        The parsed values by key (later duplicates win, as in the reference).

    Raises:
        InvalidConfigError: an invalid pair, a bad value
            (``ARGS: error parsing value of pair "<pair>": <why>``), or unknown keys
            without ``IgnoreUnknown`` (``ARGS: unknown args ["K=V"]``).
    """
    parsed: dict[str, Any] = {}
    unknown: list[str] = []
    ignore_unknown = False
    for key, value in split_cni_args(cni_args):
        if key == "IgnoreUnknown":
            parser: Callable[[str], Any] | None = parse_bool_arg
        else:
            parser = fields.get(key)
        if parser is None:
            unknown.append(f"{key}={value}")
            continue
        try:
            result = parser(value)
        except ValueError as exc:
            raise InvalidConfigError(f"ARGS: error parsing value of pair {go_quote(key + '=' + value)}: {exc}",
                                     key=f"CNI_ARGS.{key}", value=value) from exc
        if key == "IgnoreUnknown":
            ignore_unknown = bool(result)
        else:
            parsed[key] = result
    if unknown and not ignore_unknown:
        raise InvalidConfigError(f"ARGS: unknown args {go_quote_list(unknown)}", key="CNI_ARGS", value=cni_args)
    return parsed
