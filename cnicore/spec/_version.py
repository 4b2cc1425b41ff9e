"""CNI specification versions: parsing, comparison, commands, selection.

Versions are plain strings (``"0.4.0"``), as they appear on the wire. The
empty or missing version means ``0.1.0``, as the reference implementation
decodes it (the spec's upgrade notes suggest 0.2.0; the reference wins).
"""

from __future__ import annotations

from cnicore._errors import DecodingError, IncompatibleVersionError
from cnicore._gofmt import go_quote as _go_quote
from cnicore._gofmt import go_type_name as _go_type

# typing is left to type checkers, and the two Literal aliases below are built on first
# use: an exec'd plugin reads versions first thing, and typing costs milliseconds to import.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Literal

    Command = Literal["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"]
    #: Result families: ``"020"`` (0.1.0/0.2.0 ``ip4``/``ip6``), ``"040"`` (0.3.x/0.4.0), ``"100"`` (1.x).
    ResultFamily = Literal["020", "040", "100"]

__all__ = [
    "ALL_VERSIONS",
    "COMMANDS",
    "CURRENT_VERSION",
    "FIREWALL_VERSIONS",
    "Command",
    "ResultFamily",
    "check_command_allowed",
    "command_allowed",
    "compare_versions",
    "decode_config_version",
    "parse_version",
    "result_family",
    "select_version",
    "version_greater",
    "versions_starting_from",
]

#: Every spec version the library speaks, oldest first.
ALL_VERSIONS: tuple[str, ...] = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
#: The newest spec version, the one the library implements.
CURRENT_VERSION = "1.1.0"
#: The versions the firewall plugin accepts: 0.4.0 and later, as upstream's current plugin. Here rather than
#: in the plugin's module so the exec entry point answers VERSION without loading that module.
FIREWALL_VERSIONS: tuple[str, ...] = ("0.4.0", "1.0.0", "1.1.0")

#: The CNI commands, in the order the spec introduces them.
COMMANDS: tuple[Command, ...] = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")


def __getattr__(name: str) -> object:
    # ``Command`` and ``ResultFamily``: the same Literal types the type checker sees above.
    if name == "Command":
        from typing import Literal

        value: object = Literal["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"]
    elif name == "ResultFamily":
        from typing import Literal

        value = Literal["020", "040", "100"]
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


_MIN_VERSION_FOR: dict[str, str] = {
    "ADD": "0.1.0",
    "DEL": "0.1.0",
    "VERSION": "0.2.0",
    "CHECK": "0.4.0",
    "GC": "1.1.0",
    "STATUS": "1.1.0",
}


def parse_version(version: str) -> tuple[int, int, int]:
    """Parse ``"major.minor.micro"`` the way the reference does.

    ``""`` is ``0.1.0``; missing parts are zero; four or more parts, or a
    non-numeric part, raise :class:`DecodingError` (code 6) with the reference's text.
    """
    if version == "":
        version = "0.1.0"
    parts = version.split(".")
    if len(parts) >= 4:
        raise DecodingError(f"invalid version {_go_quote(version)}: too many parts", key="cniVersion",
                            value=version)
    names = ("major", "minor", "micro")
    numbers = [0, 0, 0]
    for index, part in enumerate(parts):
        if not part.isascii() or not (part.isdigit() or (part.startswith(("+", "-")) and part[1:].isdigit())):
            raise DecodingError(
                f"failed to convert {names[index]} version part {_go_quote(part)}: "
                f"strconv.Atoi: parsing {_go_quote(part)}: invalid syntax",
                key="cniVersion",
                value=version,
            )
        numbers[index] = int(part)
    return numbers[0], numbers[1], numbers[2]


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is older than, equal to or newer than ``b``."""
    pa, pb = parse_version(a), parse_version(b)
    return (pa > pb) - (pa < pb)


def version_greater(a: str, b: str) -> bool:
    """True when version ``a`` is strictly newer than ``b``."""
    return compare_versions(a, b) > 0


def versions_starting_from(version: str) -> tuple[str, ...]:
    """The known versions from ``version`` on (``"0.3.1"`` -> 0.3.1, 0.4.0, 1.0.0, 1.1.0)."""
    return tuple(v for v in ALL_VERSIONS if compare_versions(v, version) >= 0)


def result_family(version: str) -> ResultFamily:
    """Which result shape a version uses. Raises :class:`DecodingError` for an unknown version."""
    if version in ("", "0.1.0", "0.2.0"):
        return "020"
    if version in ("0.3.0", "0.3.1", "0.4.0"):
        return "040"
    if version in ("1.0.0", "1.1.0"):
        return "100"
    raise DecodingError(f"unsupported CNI result version {_go_quote(version)}", key="cniVersion",
                        value=version)


def command_allowed(command: str, version: str) -> bool:
    """Whether a config of ``version`` may be used with ``command`` (CHECK >= 0.4.0, GC/STATUS >= 1.1.0)."""
    minimum = _MIN_VERSION_FOR.get(command)
    if minimum is None:
        return False
    return compare_versions(version, minimum) >= 0


def check_command_allowed(command: str, config_version: str, plugin_versions: Iterable[str]) -> None:
    """The reference skeleton's version gate for CHECK, GC and STATUS.

    Raises:
        IncompatibleVersionError: ``config version does not allow <CMD>`` or
            ``plugin version does not allow <CMD>`` (code 1).
        DecodingError: an unparsable version (code 6).
    """
    minimum = _MIN_VERSION_FOR.get(command)
    if minimum is None or minimum in ("0.1.0", "0.2.0"):
        return
    if compare_versions(config_version, minimum) < 0:
        raise IncompatibleVersionError(f"config version does not allow {command}")
    if not any(compare_versions(v, config_version) >= 0 for v in plugin_versions):
        raise IncompatibleVersionError(f"plugin version does not allow {command}")


def decode_config_version(config: Any) -> str:
    """The ``cniVersion`` of a decoded config object; missing or empty means ``"0.1.0"``.

    Raises:
        DecodingError: ``cniVersion`` is present but not a string.
    """
    if not isinstance(config, dict):
        raise DecodingError("decoding version from network config: config is not a JSON object",
                            value=config)
    version = config.get("cniVersion", "")
    if version is None:
        version = ""
    if not isinstance(version, str):
        raise DecodingError(
            "decoding version from network config: json: cannot unmarshal "
            f"{_go_type(version)} into Go struct field .cniVersion of type string",
            key="cniVersion",
            value=version,
        )
    return version or "0.1.0"


def select_version(cni_version: str | None, cni_versions: Iterable[str] | None) -> str:
    """libcni's version selection for a configuration list (spec 1.1.0).

    Entries of ``cniVersions`` newer than :data:`CURRENT_VERSION` are dropped;
    ``cniVersion`` (when not newer than current) joins them; the highest wins.
    A ``cniVersion`` alone is used verbatim even when newer than current.
    Nothing at all gives ``""``. An invalid entry raises :class:`DecodingError`.
    """
    candidates: list[str] = []
    versions = list(cni_versions or [])
    for entry in versions:
        parse_version(entry)
        if not version_greater(entry, CURRENT_VERSION):
            candidates.append(entry)
    if not versions:
        return cni_version or ""
    if cni_version:
        parse_version(cni_version)
        if not version_greater(cni_version, CURRENT_VERSION):
            candidates.append(cni_version)
    if not candidates:
        return cni_version or ""
    best = candidates[0]
    for entry in candidates[1:]:
        if version_greater(entry, best):
            best = entry
    return best
