"""The one error tree of cnicore.

Every error the library raises is a :class:`CNIError`. Each carries the CNI
error code it is reported under (``code``), the short message (``msg``) and an
optional longer explanation (``details``), and serialises to the CNI error
object a plugin prints on failure. Errors also say whose fault they were: the
caller's input (:class:`InvalidInputError`) or the system (:class:`SystemFailure`).
Where the library knows which configuration key was at fault it records the key
path (``key``, e.g. ``ipam.ranges[0][1].subnet``) and the offending ``value``.

::

    CNIError (Exception)                          code from the subclass, or any code given
    ├── InvalidInputError                         the caller's input is wrong
    │   ├── IncompatibleVersionError      1       version not supported / command not allowed
    │   ├── UnsupportedFieldError         2       a configuration field this plugin refuses
    │   ├── UnknownContainerError         3       container unknown or missing ID
    │   ├── InvalidEnvironmentError       4       CNI_* variables missing or malformed
    │   ├── DecodingError (ValueError)    6       JSON or value that cannot be decoded
    │   ├── InvalidConfigError (ValueError) 7     well-formed but invalid configuration
    │   └── InvalidNetNSError             8       CNI_NETNS is the plugin's own namespace, or no namespace
    └── SystemFailure                             the system failed; the input may be fine
        ├── IOFailureError                5       reading or writing failed
        ├── TryAgainLaterError            11      transient: a lock, a quorum; retry later
        ├── PluginNotAvailableError       50      STATUS: cannot service ADD
        ├── LimitedConnectivityError      51      STATUS: existing containers degraded
        └── InternalError                 999     anything else, including plugin-specific codes
            ├── AddressConflictError              an address is taken / already allocated
            ├── AddressExhaustedError             no free address in a range set
            ├── NotFoundError (LookupError)       a link, address, reservation or plugin is missing
            │   └── NamespaceNotFoundError        the network namespace is gone
            ├── AlreadyExistsError                a link or object of that name exists
            └── PermissionDeniedError             the operation needs privileges we lack

Foreign exceptions (``OSError``, ``CalledProcessError``, pyroute2's errors,
etcd client errors) never cross a public boundary: they are translated into
one of these with ``raise ... from exc`` so the cause stays attached.
"""

from __future__ import annotations

# Imported only by type checkers: an exec'd plugin imports this module first thing, and
# ``typing`` would add milliseconds to its start (see cnicore._plugin_main).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, ClassVar

__all__ = [
    "AddressConflictError",
    "AddressExhaustedError",
    "AlreadyExistsError",
    "CNIError",
    "DecodingError",
    "IOFailureError",
    "IncompatibleVersionError",
    "InternalError",
    "InvalidConfigError",
    "InvalidEnvironmentError",
    "InvalidInputError",
    "InvalidNetNSError",
    "LimitedConnectivityError",
    "NamespaceNotFoundError",
    "NotFoundError",
    "PermissionDeniedError",
    "PluginNotAvailableError",
    "SystemFailure",
    "TryAgainLaterError",
    "UnknownContainerError",
    "UnsupportedFieldError",
    "error_from_object",
]

_MISSING = object()


class CNIError(Exception):
    """Root of every error cnicore raises.

    Args:
        msg: the short message, as a plugin would print it in ``msg``.
        details: optional longer explanation (``details`` in the CNI error object).
        code: override the class's CNI code (e.g. a plugin-specific code >= 100).
        key: the configuration key path at fault, if known (``ipam.subnet``).
        value: the offending value, if known.
    """

    default_code: ClassVar[int] = 999

    def __init__(
        self,
        msg: str,
        details: str = "",
        *,
        code: int | None = None,
        key: str | None = None,
        value: Any = _MISSING,
    ) -> None:
        self.msg = msg
        self.code = self.default_code if code is None else code
        self.key = key
        self.value: Any = None if value is _MISSING else value
        self.has_value = value is not _MISSING
        if not details and key is not None:
            details = f"key {key!s}" + (f" = {_short_repr(value)}" if value is not _MISSING else "")
        self.details = details
        super().__init__(str(self))

    def __str__(self) -> str:
        # The same rendering as the reference's types.Error.Error().
        if self.details:
            return f"{self.msg}; {self.details}"
        return self.msg

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, msg={self.msg!r}, details={self.details!r})"

    def to_object(self) -> dict[str, Any]:
        """The CNI error object: ``{"code": ..., "msg": ..., "details": ...}``.

        ``details`` is omitted when empty and, as in the reference implementation,
        no ``cniVersion`` key is written.
        """
        obj: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.details:
            obj["details"] = self.details
        return obj

    def to_json(self) -> str:
        """The error object as the reference prints it (4-space indent, no newline)."""
        from cnicore._json import marshal_indent

        return marshal_indent(self.to_object())

    @property
    def is_input_error(self) -> bool:
        """True when the caller's input is at fault rather than the system."""
        return isinstance(self, InvalidInputError)


def _short_repr(value: Any) -> str:
    import json

    text = json.dumps(value, default=str) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 200 else text[:197] + "..."


class InvalidInputError(CNIError):
    """The caller's input (configuration, environment, arguments) is wrong."""

    default_code = 7


class IncompatibleVersionError(InvalidInputError):
    """Code 1: the CNI version is not supported, or does not allow the command."""

    default_code = 1


class UnsupportedFieldError(InvalidInputError):
    """Code 2: a configuration field (named in the message) is not supported."""

    default_code = 2


class UnknownContainerError(InvalidInputError):
    """Code 3: the container is unknown or does not exist."""

    default_code = 3


class InvalidEnvironmentError(InvalidInputError):
    """Code 4: required ``CNI_*`` variables are missing or invalid."""

    default_code = 4


class DecodingError(InvalidInputError, ValueError):
    """Code 6: content (JSON, a version, an address) could not be decoded."""

    default_code = 6


class InvalidConfigError(InvalidInputError, ValueError):
    """Code 7: the network configuration is well-formed but invalid."""

    default_code = 7


class InvalidNetNSError(InvalidInputError):
    """Code 8: ``CNI_NETNS`` is the plugin's own network namespace; or (sent with code 999, as the reference
    does) a path that exists but is no namespace file: ``unknown FS magic on "<path>": <magic>``."""

    default_code = 8


class SystemFailure(CNIError):
    """The system failed; the caller's input may be perfectly fine."""

    default_code = 999


class IOFailureError(SystemFailure):
    """Code 5: an I/O operation failed (reading stdin, writing a store)."""

    default_code = 5


class TryAgainLaterError(SystemFailure):
    """Code 11: a transient condition (a held lock, lost quorum); retry later."""

    default_code = 11


class PluginNotAvailableError(SystemFailure):
    """Code 50: STATUS says the plugin cannot service ADD requests."""

    default_code = 50


class LimitedConnectivityError(SystemFailure):
    """Code 51: STATUS says existing containers may have limited connectivity."""

    default_code = 51


class InternalError(SystemFailure):
    """Code 999 (or a plugin-specific code): any other failure."""

    default_code = 999


class AddressConflictError(InternalError):
    """An address is already reserved (by someone else, or a duplicate ADD)."""


class AddressExhaustedError(InternalError):
    """No address is free in a range set."""


class NotFoundError(InternalError, LookupError):
    """Something named does not exist: a link, an address, a plugin binary."""


class NamespaceNotFoundError(NotFoundError):
    """The network namespace path does not exist (any more)."""


class AlreadyExistsError(InternalError):
    """An object of that name already exists (a link, a reservation file)."""


class PermissionDeniedError(InternalError, PermissionError):
    """The operation needs privileges (e.g. CAP_NET_ADMIN) that the process lacks."""


_BY_CODE: dict[int, type[CNIError]] = {
    1: IncompatibleVersionError,
    2: UnsupportedFieldError,
    3: UnknownContainerError,
    4: InvalidEnvironmentError,
    5: IOFailureError,
    6: DecodingError,
    7: InvalidConfigError,
    8: InvalidNetNSError,
    11: TryAgainLaterError,
    50: PluginNotAvailableError,
    51: LimitedConnectivityError,
}


def error_from_object(obj: Mapping[str, Any]) -> CNIError:
    """Build the matching error from a CNI error object a plugin printed.

    Unknown or plugin-specific codes give an :class:`InternalError` that keeps
    the code. Malformed objects raise :class:`DecodingError`.
    """
    code = obj.get("code")
    if isinstance(code, bool) or not isinstance(code, int) or code < 0:
        raise DecodingError("invalid CNI error object: 'code' must be a non-negative integer", key="code",
                            value=code)
    msg = obj.get("msg", "")
    details = obj.get("details", "")
    if not isinstance(msg, str):
        raise DecodingError("invalid CNI error object: 'msg' must be a string", key="msg", value=msg)
    if not isinstance(details, str):
        raise DecodingError("invalid CNI error object: 'details' must be a string", key="details",
                            value=details)
    cls = _BY_CODE.get(code, InternalError)
    return cls(msg, details, code=code)
