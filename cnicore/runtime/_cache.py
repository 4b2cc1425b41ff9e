"""libcni's result cache, byte for byte: one file per attachment under ``<cache dir>/results``.

A runtime records every successful ADD so that DEL, CHECK and GC can find what
was set up: the result (DEL and CHECK pass it as ``prevResult``), the netns,
``CNI_ARGS`` and capability arguments (GC replays DEL with them), and the
network's configuration bytes. Tools built on libcni (containerd, CRI-O,
Podman, cnitool) read and write the very same files, so the format is libcni's
exactly:

* path ``<cache dir>/results/<network>-<container ID>-<ifname>`` (no
  extension); all three parts are required (``cache file path requires network
  name (""), container ID ("x"), and interface name ("eth0")``);
* content: one compact JSON object with the keys in this order::

      {"kind":"cniCacheV1","containerId":"...","config":"<base64 of the network's bytes>",
       "ifName":"eth0","networkName":"...","netns":"...","cniArgs":[["K","V"]],
       "capabilityArgs":{...},"result":{...}}

  ``netns``, ``cniArgs``, ``capabilityArgs`` and ``result`` are left out when
  empty; ``capabilityArgs`` and ``result`` are Go maps, so their keys are sorted
  at every level and numbers are written as Go writes a float64;
* the directory is made ``0700`` and the file is ``0600``.

Reading follows libcni too: a file that is not JSON, or whose ``kind`` is not
``cniCacheV1``, is a *legacy* cache holding just a result document; a cached
result is converted to the network's version before it is used (``failed to
convert cached result to config version "0.4.0": ...``). Listing
(:func:`list_cache_entries`, libcni's ``GetCachedAttachments``) skips legacy and
incomplete entries.

What cnicore adds, without changing a byte of the format: files are written to
a temporary name (a dot file, which listings skip), flushed to disk, renamed
into place and the directory flushed, so a reader never sees half a file and a
crash leaves either the old entry or the new one; removal flushes the
directory too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from cnicore._atomicfile import TEMP_PREFIX, fsync_directory, replace_file, temp_abandoned
from cnicore._errors import CNIError, DecodingError, InvalidInputError, IOFailureError
from cnicore._gofmt import go_field, go_quote
from cnicore._json import decode, marshal
from cnicore._readfile import MAX_DOCUMENT_BYTES, read_regular
from cnicore.config._gojson import go_map_marshal, rebuild
from cnicore.spec._result import AnyResult, Result, Result020, Result040, parse_result

__all__ = [
    "CACHE_KIND",
    "CACHE_TEMP_STALE_SECONDS",
    "CachedAttachment",
    "cache_file_path",
    "decode_cache_entry",
    "delete_cache_entry",
    "encode_cache_entry",
    "list_cache_entries",
    "read_cache_entry",
    "read_cached_result",
    "sweep_cache_temporaries",
    "write_cache_entry",
]

#: The ``kind`` of a current cache entry.
CACHE_KIND: Final = "cniCacheV1"
_RESULTS = "results"
#: A cache write's temporary file untouched for longer than this is debris (see :func:`sweep_cache_temporaries`).
CACHE_TEMP_STALE_SECONDS = 600.0
_DIR_MODE = 0o700
_FILE_MODE = 0o600


def freeze_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only deep copy (mappings as ``MappingProxyType``, sequences as tuples); None is empty."""
    frozen: Mapping[str, Any] = rebuild(dict(value or {}), finish_map=MappingProxyType, finish_seq=tuple)
    return frozen


def _freeze_optional(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else freeze_mapping(value)


def _pairs(value: Iterable[Iterable[str]]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for pair in value:
        key, val = tuple(pair)
        out.append((key, val))
    return tuple(out)


@attrs.frozen(kw_only=True)
class CachedAttachment:
    """One entry of the result cache: an attachment of a container to a network.

    Attributes:
        network: the network name (``networkName``).
        container_id: the container ID (``containerId``).
        ifname: the interface name (``ifName``).
        netns: the network namespace path the ADD was given (``""`` if none).
        cni_args: the ``CNI_ARGS`` pairs, in order.
        capability_args: the capability arguments (``portMappings``, ...).
        result: the cached result in its own version, or None when there is none or
            it cannot be parsed (:func:`read_cached_result` reports why).
        config: the network's configuration bytes as they were at ADD time.
        path: the cache file.
        raw_result: the result object as stored (None when absent).
        legacy: the file is a legacy cache (just a result document): only
            ``result`` and the names from the file name are known.
    """

    network: str
    container_id: str
    ifname: str
    netns: str = ""
    cni_args: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs)
    capability_args: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze_mapping, hash=False)
    result: AnyResult | None = attrs.field(default=None, hash=False)
    config: bytes = attrs.field(default=b"", repr=False)
    path: str = attrs.field(default="", eq=False)
    raw_result: Mapping[str, Any] | None = attrs.field(default=None, converter=_freeze_optional, hash=False,
                                                       repr=False)
    legacy: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        """``(network, container_id, ifname)``: what identifies the attachment."""
        return self.network, self.container_id, self.ifname

    def capability_args_dict(self) -> dict[str, Any]:
        """A mutable deep copy of :attr:`capability_args` (plain dicts and lists)."""
        plain: dict[str, Any] = rebuild(self.capability_args)
        return plain


def _check_part(label: str, value: str) -> None:
    if "/" in value or "\x00" in value:
        raise InvalidInputError(f"cache file path: {label} {go_quote(value)} contains '/' or a NUL byte",
                                key=label, value=value)


def cache_file_path(cache_dir: str | os.PathLike[str], network: str, container_id: str, ifname: str) -> str:
    """``<cache_dir>/results/<network>-<container_id>-<ifname>`` (libcni's ``getCacheFilePath``).

    Raises:
        InvalidInputError: (code 7) ``cache file path requires network name ("..."),
            container ID ("..."), and interface name ("...")`` when one is empty, or a
            part that would leave the directory (``/`` or NUL).
    """
    if not network or not container_id or not ifname:
        raise InvalidInputError(
            f"cache file path requires network name ({go_quote(network)}), container ID "
            f"({go_quote(container_id)}), and interface name ({go_quote(ifname)})")
    _check_part("network name", network)
    _check_part("container ID", container_id)
    _check_part("interface name", ifname)
    return os.path.join(os.fspath(cache_dir), _RESULTS, f"{network}-{container_id}-{ifname}")


def _result_object(result: AnyResult | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if result is None:
        return None
    if isinstance(result, Result | Result040 | Result020):
        return result.to_object()
    return result


def encode_cache_entry(*, network: str, container_id: str, ifname: str, config: bytes, netns: str = "",
                       cni_args: Iterable[tuple[str, str]] = (), capability_args: Mapping[str, Any] | None = None,
                       result: AnyResult | Mapping[str, Any] | None = None, kind: str = CACHE_KIND) -> bytes:
    """The exact bytes libcni writes for an entry (see the module docstring).

    Args:
        result: a result, or the result object as a mapping (stored as a Go map:
            keys sorted, numbers as float64).
        kind: the ``kind`` key (only for writing other kinds of record in this shape).

    Raises:
        InvalidConfigError: a capability argument or result value that JSON cannot hold.
    """
    fields: list[tuple[str, str]] = [
        ("kind", marshal(kind)),
        ("containerId", marshal(container_id)),
        ("config", marshal(base64.b64encode(config).decode("ascii"))),
        ("ifName", marshal(ifname)),
        ("networkName", marshal(network)),
    ]
    if netns:
        fields.append(("netns", marshal(netns)))
    pairs = [[key, value] for key, value in cni_args]
    if pairs:
        fields.append(("cniArgs", marshal(pairs)))
    if capability_args:
        fields.append(("capabilityArgs", go_map_marshal(rebuild(capability_args)).decode("utf-8")))
    result_obj = _result_object(result)
    if result_obj:
        fields.append(("result", go_map_marshal(rebuild(result_obj)).decode("utf-8")))
    return ("{" + ",".join(f"{marshal(name)}:{value}" for name, value in fields) + "}").encode("utf-8")


class _NotCurrent(Exception):
    """The document is not a current (``cniCacheV1``) entry: read it as a legacy cache (whatever the reason)."""


def _field(doc: Mapping[str, Any], name: str, *, null_keeps: bool = False) -> Any:
    # Go's decoder (go_field): the last matching key counts, whatever its case.
    return go_field(doc, name, null_keeps=null_keeps)[1]


def _string(doc: Mapping[str, Any], name: str) -> str:
    value = _field(doc, name, null_keeps=True)  # a null leaves a Go string as it was
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _NotCurrent
    return value


def _object(doc: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = _field(doc, name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _NotCurrent
    return value


def _config_bytes(doc: Mapping[str, Any]) -> bytes:
    value = _field(doc, "config")
    if value is None:
        return b""
    if not isinstance(value, str):
        raise _NotCurrent
    try:
        # Go's base64 decoder for []byte ignores line breaks.
        return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _NotCurrent from exc


def _cni_args(doc: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    value = _field(doc, "cniArgs")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _NotCurrent
    pairs: list[tuple[str, str]] = []
    for item in value:
        if item is None:
            pairs.append(("", ""))
            continue
        if not isinstance(item, list) or not all(isinstance(s, str) or s is None for s in item):
            raise _NotCurrent
        # A Go [2]string: missing elements stay empty, extra ones are dropped.
        first, second = [*item, None, None][:2]
        pairs.append((first or "", second or ""))
    return tuple(pairs)


def _lenient_result(raw: Mapping[str, Any] | None) -> AnyResult | None:
    if raw is None:
        return None
    try:
        return parse_result(raw)
    except CNIError:
        return None


def _current_entry(doc: dict[str, Any], data: bytes, path: str) -> CachedAttachment:
    if _string(doc, "kind") != CACHE_KIND:
        raise _NotCurrent
    raw_result = _object(doc, "result")
    capability_args = _object(doc, "capabilityArgs")
    if capability_args and b"-0" in data:
        # capabilityArgs is a Go map[string]interface{}: its -0 stays -0 (the typed result's does not).
        capability_args = _object(decode(data, keep_negative_zero=True), "capabilityArgs")
    return CachedAttachment(
        network=_string(doc, "networkName"),
        container_id=_string(doc, "containerId"),
        ifname=_string(doc, "ifName"),
        netns=_string(doc, "netns"),
        cni_args=_cni_args(doc),
        capability_args=capability_args or {},
        result=_lenient_result(raw_result),
        config=_config_bytes(doc),
        path=path,
        raw_result=raw_result or None,
    )


def decode_cache_entry(data: bytes, *, path: str = "", network: str = "", container_id: str = "",
                       ifname: str = "") -> CachedAttachment:
    """Decode a cache file's bytes.

    A current entry gives its own names; a legacy one (not JSON, or another
    ``kind``) gives the names passed in (from the file name) with ``legacy=True``
    and, when the bytes are a result document, that result.
    """
    raw: dict[str, Any] | None = None
    with contextlib.suppress(DecodingError):
        doc = decode(data)
        if isinstance(doc, dict):
            with contextlib.suppress(_NotCurrent):
                return _current_entry(doc, data, path)
            raw = doc
    return CachedAttachment(network=network, container_id=container_id, ifname=ifname, path=path,
                            result=_lenient_result(raw), raw_result=raw, legacy=True)


def _read(path: str) -> bytes | None:
    try:
        # Never blocking on a FIFO, never reading a symlink to /dev/zero without end.
        return read_regular(path, MAX_DOCUMENT_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IOFailureError(f"failed to read cache file {path}: {exc.strerror or exc}") from exc


def read_cache_entry(cache_dir: str | os.PathLike[str], network: str, container_id: str,
                     ifname: str) -> CachedAttachment | None:
    """The entry of one attachment, current or legacy; None when there is no file.

    Raises:
        InvalidInputError: see :func:`cache_file_path`.
        IOFailureError: (code 5) the file exists but cannot be read.
    """
    path = cache_file_path(cache_dir, network, container_id, ifname)
    data = _read(path)
    if data is None:
        return None
    return decode_cache_entry(data, path=path, network=network, container_id=container_id, ifname=ifname)


def read_cached_result(cache_dir: str | os.PathLike[str], network: str, container_id: str, ifname: str,
                       version: str | None = None) -> AnyResult | None:
    """The cached result of an attachment, strictly, as libcni's ``getCachedResult`` reads it.

    Args:
        version: convert the result to this version (the network's), as libcni does
            before passing it to plugins; None keeps the stored version.

    Returns:
        The result, or None when there is no cache file (or a current entry holds no result).

    Raises:
        DecodingError: (code 6) the stored result cannot be parsed.
        InternalError: ``failed to convert cached result to config version "<v>": ...``.
        IOFailureError: the file exists but cannot be read.
    """
    path = cache_file_path(cache_dir, network, container_id, ifname)
    data = _read(path)
    if data is None:
        return None
    entry = decode_cache_entry(data)  # only whether it is legacy, and its result, are used
    if entry.legacy:
        result = parse_result(data)
    elif entry.raw_result is None:
        return None
    else:
        result = parse_result(rebuild(entry.raw_result))
    if version is None:
        return result
    try:
        return result.as_version(version)
    except CNIError as exc:
        raise type(exc)(f"failed to convert cached result to config version {go_quote(version)}: {exc.msg}",
                        exc.details, code=exc.code) from exc


def _matches_container(name: str, container_id: str) -> bool:
    # libcni's filter: "-<id>-" somewhere after the first character, with something after it.
    part = f"-{container_id}-"
    pos = name.find(part)
    return pos > 0 and pos + len(part) < len(name)


def list_cache_entries(cache_dir: str | os.PathLike[str], container_id: str | None = None,
                       network: str | None = None) -> list[CachedAttachment]:
    """Every current, complete entry (libcni's ``GetCachedAttachments``), sorted by file name.

    Args:
        container_id: only this container's entries.
        network: only this network's entries (a cnicore addition; files named for
            other networks are not read).

    Unreadable files, legacy files and entries without a network or interface
    name are skipped, as libcni skips them.

    Raises:
        IOFailureError: (code 5) the directory exists but cannot be listed.
    """
    directory = os.path.join(os.fspath(cache_dir), _RESULTS)
    try:
        names = sorted(os.listdir(directory), key=lambda n: n.encode("utf-8", "surrogateescape"))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise IOFailureError(f"failed to list cache directory {directory}: {exc.strerror or exc}") from exc
    found: list[CachedAttachment] = []
    for name in names:
        if name.startswith("."):
            continue  # temporary files of a write in progress
        if container_id and not _matches_container(name, container_id):
            continue
        if network is not None and not name.startswith(network + "-"):
            continue  # entries are named <network>-<containerID>-<ifname>: another network's (read no further)
        path = os.path.join(directory, name)
        try:
            data = _read(path)
        except IOFailureError:
            continue
        if data is None:
            continue
        entry = decode_cache_entry(data, path=path)
        if entry.legacy or not entry.ifname or not entry.network:
            continue
        if container_id and entry.container_id != container_id:
            continue
        if network is not None and entry.network != network:
            continue
        found.append(entry)
    return found


def sweep_cache_temporaries(cache_dir: str | os.PathLike[str]) -> int:
    """Remove the temporary files that writers of cache entries left when they died; the number removed.

    A write (:func:`write_file_atomically`) renames its temporary file
    (``.tmp.<random>``) over the entry, or removes it when it fails: one still
    there is a crash's debris, or a write in progress. Its name does not say
    whose it is (a writer in another pid namespace, sharing the directory, could
    not be told from a dead one anyway), so only age decides
    (:func:`cnicore._atomicfile.temp_abandoned`), and generously: older than
    :data:`CACHE_TEMP_STALE_SECONDS`, so that a write stalled on a slow disk keeps
    its file (debris costs nothing meanwhile). Best effort: what cannot be
    examined or removed stays; other files are never touched.
    """
    directory = os.path.join(os.fspath(cache_dir), _RESULTS)
    try:
        names = [name for name in os.listdir(directory) if name.startswith(TEMP_PREFIX)]
    except OSError:
        return 0
    removed = 0
    now = time.time()
    for name in names:
        path = os.path.join(directory, name)
        try:
            st = os.stat(path, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or not temp_abandoned(None, st.st_mtime, now,
                                                                  stale_after=CACHE_TEMP_STALE_SECONDS):
                continue
            os.unlink(path)
        except OSError:
            continue
        removed += 1
    return removed


def make_private_dir(directory: str) -> None:
    """Create ``directory`` and its missing parents with mode 0700 (as libcni's ``MkdirAll(dir, 0700)``)."""
    try:
        os.makedirs(directory, mode=_DIR_MODE, exist_ok=True)
    except OSError as exc:
        raise IOFailureError(f"failed to create directory {directory}: {exc.strerror or exc}") from exc


def write_file_atomically(path: str, data: bytes) -> None:
    """:func:`replace_file` with mode 0600 in a private directory (created if missing), then flush the directory.

    Raises:
        IOFailureError: (code 5) the write failed (nothing is left behind).
    """
    directory = os.path.dirname(path)
    make_private_dir(directory)
    try:
        replace_file(path, data, _FILE_MODE)
        fsync_directory(directory)
    except OSError as exc:
        raise IOFailureError(f"failed to write {path}: {exc.strerror or exc}") from exc


def write_cache_entry(cache_dir: str | os.PathLike[str], *, network: str, container_id: str, ifname: str,
                      config: bytes, netns: str = "", cni_args: Iterable[tuple[str, str]] = (),
                      capability_args: Mapping[str, Any] | None = None,
                      result: AnyResult | Mapping[str, Any] | None = None) -> CachedAttachment:
    """Write (or replace) an attachment's entry atomically; return it as read back.

    Raises:
        InvalidInputError: see :func:`cache_file_path`.
        IOFailureError: (code 5) the entry could not be written.
    """
    path = cache_file_path(cache_dir, network, container_id, ifname)
    pairs = tuple(cni_args)
    data = encode_cache_entry(network=network, container_id=container_id, ifname=ifname, config=config,
                              netns=netns, cni_args=pairs, capability_args=capability_args, result=result)
    write_file_atomically(path, data)
    return decode_cache_entry(data, path=path)


def delete_cache_entry(cache_dir: str | os.PathLike[str], network: str, container_id: str, ifname: str) -> bool:
    """Remove an attachment's entry; True when there was one. Idempotent.

    Raises:
        InvalidInputError: see :func:`cache_file_path`.
        IOFailureError: (code 5) the file exists but cannot be removed.
    """
    path = cache_file_path(cache_dir, network, container_id, ifname)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise IOFailureError(f"failed to remove cache file {path}: {exc.strerror or exc}") from exc
    with contextlib.suppress(OSError):
        fsync_directory(os.path.dirname(path))
    return True
