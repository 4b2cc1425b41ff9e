"""The ``ipam.store`` object that selects the etcd store, parsed and validated.

Host-local IPAM keeps its configuration; one extra key chooses where the
reservations live::

    "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.1.0.0/16"}]],
        "store": {
            "type": "etcd",
            "endpoints": ["http://10.0.0.1:2379", "http://10.0.0.2:2379"],
            "prefix": "/cnicore/ipam",
            "host": "node-17",
            "blockSize": 26,
            "blockSize6": 122,
            "blockAffinity": true,
            "timeout": 5,
            "caFile": "/etc/etcd/ca.pem",
            "certFile": "/etc/etcd/client.pem",
            "keyFile": "/etc/etcd/client-key.pem"
        }
    }

Only ``type`` and ``endpoints`` are required. ``host`` defaults to the machine's
host name when the store opens (it must be stable and unique per node: the
node name is the right choice). ``blockSize`` / ``blockSize6`` are the prefix
lengths of the per-host blocks for IPv4 / IPv6 (every host of a network should
use the same ones). Unknown keys are rejected so that a typo does not silently
fall back to a default.

This module is pure: it imports neither etcd3gw nor anything that does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from cnicore._errors import InvalidConfigError

__all__ = ["DEFAULT_BLOCK_SIZE", "DEFAULT_BLOCK_SIZE6", "DEFAULT_PREFIX", "DEFAULT_TIMEOUT", "EtcdStoreConfig",
           "parse_etcd_store_config"]

DEFAULT_PREFIX = "/cnicore/ipam"
DEFAULT_BLOCK_SIZE = 26
DEFAULT_BLOCK_SIZE6 = 122
DEFAULT_TIMEOUT = 5.0

_KNOWN_KEYS = frozenset({"type", "endpoints", "prefix", "host", "blockSize", "blockSize6", "blockAffinity",
                         "timeout", "caFile", "certFile", "keyFile"})


@attrs.frozen(slots=True, kw_only=True)
class EtcdStoreConfig:
    """Where and how to reach etcd, and how a host claims blocks. See the module docstring for the JSON form.

    Build it with :func:`parse_etcd_store_config` (which validates); constructing
    it directly trusts the caller.
    """

    endpoints: tuple[str, ...]
    prefix: str = DEFAULT_PREFIX
    host: str | None = None
    block_size: int = DEFAULT_BLOCK_SIZE
    block_size6: int = DEFAULT_BLOCK_SIZE6
    block_affinity: bool = True
    timeout: float = DEFAULT_TIMEOUT
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def _fail(msg: str, key: str, value: Any) -> InvalidConfigError:
    return InvalidConfigError(msg, key=key, value=value)


def _string(obj: Mapping[str, Any], name: str, path: str) -> str | None:
    if name not in obj:
        return None
    value = obj[name]
    if not isinstance(value, str) or not value:
        raise _fail(f"{path}.{name} must be a non-empty string", f"{path}.{name}", value)
    return value


def _int(obj: Mapping[str, Any], name: str, path: str, default: int, low: int, high: int) -> int:
    if name not in obj:
        return default
    value = obj[name]
    # JSON true is a Python int too; it is not a prefix length.
    # The range is compared first: infinity and NaN fall outside it (int() of them would raise).
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high \
            or value != int(value):
        raise _fail(f"{path}.{name} must be an integer from {low} to {high}", f"{path}.{name}", value)
    return int(value)


def _endpoint(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise _fail("etcd endpoint must be a URL string", key, value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise _fail(f"invalid etcd endpoint: {exc}", key, value) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise _fail("etcd endpoint must look like http://host:port or https://host:port", key, value)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise _fail("etcd endpoint must be scheme://host:port only (no path, query or credentials)", key, value)
    return f"{parts.scheme}://{parts.netloc}"


def parse_etcd_store_config(value: Any, *, key: str = "ipam.store") -> EtcdStoreConfig:
    """Validate the decoded JSON of ``ipam.store`` (``type`` must be ``"etcd"``).

    Args:
        value: the decoded JSON value of the key.
        key: the key path of ``value``, used in error messages.

    Raises:
        InvalidConfigError: code 7, naming the offending key path and value.
    """
    if not isinstance(value, Mapping):
        raise _fail(f"{key} must be an object", key, value)
    for name in value:
        if name not in _KNOWN_KEYS:
            raise _fail(f"unknown key {name!r} in {key}", f"{key}.{name}", value[name])
    if value.get("type") != "etcd":
        raise _fail(f'{key}.type must be "etcd"', f"{key}.type", value.get("type"))

    raw_endpoints = value.get("endpoints")
    if not isinstance(raw_endpoints, list) or not raw_endpoints:
        raise _fail(f"{key}.endpoints must be a non-empty list of URLs", f"{key}.endpoints", raw_endpoints)
    endpoints = tuple(_endpoint(item, f"{key}.endpoints[{i}]") for i, item in enumerate(raw_endpoints))

    prefix = _string(value, "prefix", key)
    if prefix is None:
        prefix = DEFAULT_PREFIX
    elif not prefix.startswith("/") or prefix.endswith("/") or "//" in prefix or not prefix.isprintable():
        # Keys are <prefix>/<network>/...; a trailing or doubled slash would make two spellings of one tree.
        raise _fail(f"{key}.prefix must start with '/', not end with '/' and hold no '//'", f"{key}.prefix",
                    prefix)

    host = _string(value, "host", key)
    if host is not None and ("/" in host or not host.isprintable() or host != host.strip()):
        # The host name is a key segment (last/<host>/...): a '/' would change the key's shape.
        raise _fail(f"{key}.host must not contain '/', whitespace at its ends or control characters",
                    f"{key}.host", host)

    block_size = _int(value, "blockSize", key, DEFAULT_BLOCK_SIZE, 1, 32)
    block_size6 = _int(value, "blockSize6", key, DEFAULT_BLOCK_SIZE6, 1, 128)

    affinity = value.get("blockAffinity", True)
    if not isinstance(affinity, bool):
        raise _fail(f"{key}.blockAffinity must be true or false", f"{key}.blockAffinity", affinity)

    timeout = value.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise _fail(f"{key}.timeout must be a positive number of seconds", f"{key}.timeout", timeout)

    ca_file = _string(value, "caFile", key)
    cert_file = _string(value, "certFile", key)
    key_file = _string(value, "keyFile", key)
    if (cert_file is None) != (key_file is None):
        missing = "keyFile" if key_file is None else "certFile"
        raise _fail(f"{key}.certFile and {key}.keyFile go together", f"{key}.{missing}", None)
    if (ca_file or cert_file) and not all(e.startswith("https://") for e in endpoints):
        raise _fail(f"{key}.caFile/certFile need https:// endpoints", f"{key}.endpoints", raw_endpoints)

    return EtcdStoreConfig(endpoints=endpoints, prefix=prefix, host=host, block_size=block_size,
                           block_size6=block_size6, block_affinity=affinity, timeout=float(timeout),
                           ca_file=ca_file, cert_file=cert_file, key_file=key_file)
