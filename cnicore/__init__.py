"""cnicore: the Container Network Interface (CNI) in Python.

A typed, pure core parses and validates CNI configurations and results for
every spec version (0.1.0 to 1.1.0); host-local IPAM allocates addresses from
crash-safe stores shared with the reference plugins; plugins describe link
changes that swappable backends carry out.

The error tree lives in :mod:`cnicore._errors` and is re-exported here.
"""

from cnicore._errors import (
    AddressConflictError,
    AddressExhaustedError,
    AlreadyExistsError,
    CNIError,
    DecodingError,
    IncompatibleVersionError,
    InternalError,
    InvalidConfigError,
    InvalidEnvironmentError,
    InvalidInputError,
    InvalidNetNSError,
    IOFailureError,
    LimitedConnectivityError,
    NamespaceNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    PluginNotAvailableError,
    SystemFailure,
    TryAgainLaterError,
    UnknownContainerError,
    UnsupportedFieldError,
    error_from_object,
)

__version__ = "0.1.0"

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
    "__version__",
    "error_from_object",
]
