"""The files a container sees about its network: ``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf``.

A runtime that puts a container on CNI networks also tells the container who it
is and where to resolve names. The Mesos ``network/cni`` isolator writes three
files into the container's directory and bind-mounts them over ``/etc``; this
module builds the same files from the ADD results, as plain text values
(:class:`ContainerFiles`, from :func:`container_files`), and writes them
atomically (:meth:`ContainerFiles.write`). Building is pure apart from reading
the host's resolv.conf when no network gives nameservers.

The rules, and where they differ from the isolator:

``hostname``
    The host name and a newline. (The isolator writes the name without a
    newline; hostname(5) asks for a newline-terminated name and every reader
    accepts both.) The name must be 1 to 64 bytes (``HOST_NAME_MAX``) without
    whitespace or control characters, else the hosts file would be corrupt.

``hosts``
    ``127.0.0.1 localhost``, then ``<address> <hostname>`` for the first IPv4
    address found, if any; each line ends in a newline. IPv4 only, as in the
    isolator. "First" is deterministic here: networks in attach order (the order
    of the sequence, or the mapping's iteration order), and within a result
    ``ip4`` (0.1.0/0.2.0) or the first IPv4 ``ips`` entry (0.3.0 and later) that
    is not tied to a host-side interface (one whose ``sandbox`` is empty). The
    isolator takes the first network in its hash map's iteration order, which
    need not be the first attached; and it reads only ``ip4``, so a 0.3+ result
    gives it no address at all, where every version works here.

``resolv.conf``
    Per network, the result's ``dns`` when it has at least one nameserver (a
    host-local result carries an empty ``dns``), else the default DNS for that
    network, if any. Merged across networks in attach order: nameservers,
    search domains and options appended (duplicates kept, as the isolator's
    protobuf merge keeps them), and a non-empty ``domain`` replaces an earlier
    one (the last wins). Rendered as resolv.conf(5) lines: ``domain``, then
    ``search`` and ``options`` (all their words on one line), then one
    ``nameserver`` line each, every line ending in a newline, lines without
    content left out. When the merge has no nameserver at all, the host's
    resolv.conf is used verbatim (search and options from defaults are then
    dropped, as in the isolator); with ``host_resolv_conf=None`` there is no
    resolv.conf instead (the isolator's layout writes one only when DNS is
    known). Every entry must be a non-empty word without whitespace or control
    characters: a value from a result goes into a file other programs parse.

Errors: :class:`~cnicore.InvalidInputError` (code 7) for a bad host name, a DNS
entry that cannot be written, or a per-network default with unnamed results;
:class:`~cnicore.NotFoundError` when the host's resolv.conf is needed and
missing; :class:`~cnicore.IOFailureError` (code 5) when reading or writing fails.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from cnicore._atomicfile import fsync_directory, replace_file
from cnicore._errors import InvalidInputError, IOFailureError, NotFoundError
from cnicore._readfile import MAX_DOCUMENT_BYTES, read_regular
from cnicore.spec._result import DNS, AnyResult, Result, Result020, Result040, go_ip_text

__all__ = ["HOST_NAME_MAX", "HOST_RESOLV_CONF", "ContainerFiles", "container_files", "merged_dns"]

#: The longest host name the kernel accepts (bytes).
HOST_NAME_MAX = 64
#: The host's resolver configuration, used when no network gives nameservers.
HOST_RESOLV_CONF = "/etc/resolv.conf"

_FILE_MODE = 0o644  # read by every process of the container
_DIR_MODE = 0o755
_HOSTS = "hosts"
_HOSTNAME = "hostname"
_RESOLV_CONF = "resolv.conf"


@attrs.frozen(kw_only=True)
class ContainerFiles:
    """The contents of a container's ``hosts``, ``hostname`` and ``resolv.conf`` files.

    Attributes:
        hosts: the ``/etc/hosts`` text.
        hostname: the ``/etc/hostname`` text (the name and a newline).
        resolv_conf: the ``/etc/resolv.conf`` text, or None for no file.
    """

    hosts: str
    hostname: str
    resolv_conf: str | None

    def write(self, directory: str | os.PathLike[str]) -> tuple[Path, ...]:
        """Write the files into ``directory`` (created if missing); return their paths.

        Each file is written to a temp file in the same directory, flushed to
        disk and renamed over its name, so a reader (or a crash) sees the old
        content or the new one, never a mix. Mode 0644. With ``resolv_conf``
        None an existing ``resolv.conf`` is removed, so the directory never
        keeps a resolver the networks no longer give. Idempotent.

        Raises:
            IOFailureError: (code 5) the directory or a file cannot be written.
        """
        base = Path(os.fspath(directory))
        try:
            base.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise IOFailureError(f"cannot create the container files directory {base}: {exc.strerror or exc}",
                                 key="directory", value=str(base)) from exc
        written = [_write_atomically(base, _HOSTNAME, self.hostname), _write_atomically(base, _HOSTS, self.hosts)]
        if self.resolv_conf is not None:
            written.append(_write_atomically(base, _RESOLV_CONF, self.resolv_conf))
        else:
            try:
                (base / _RESOLV_CONF).unlink(missing_ok=True)
            except OSError as exc:
                raise IOFailureError(f"cannot remove {base / _RESOLV_CONF}: {exc.strerror or exc}") from exc
        _sync_directory(base)
        return tuple(written)


def _write_atomically(base: Path, name: str, text: str) -> Path:
    target = base / name
    try:
        replace_file(str(target), text.encode("utf-8"), _FILE_MODE)
    except OSError as exc:
        raise IOFailureError(f"cannot write {target}: {exc.strerror or exc}", key="directory",
                             value=str(base)) from exc
    return target


def _sync_directory(base: Path) -> None:
    with contextlib.suppress(OSError):
        fsync_directory(str(base))


def _is_word(text: str) -> bool:
    return bool(text) and not any(ch.isspace() or not ch.isprintable() for ch in text)


def _check_hostname(hostname: str) -> None:
    if not isinstance(hostname, str) or not _is_word(hostname) or len(hostname.encode("utf-8")) > HOST_NAME_MAX:
        raise InvalidInputError(
            f"invalid container host name {hostname!r}: it must be 1 to {HOST_NAME_MAX} bytes without whitespace "
            "or control characters", key="hostname", value=hostname)


def _first_ipv4(result: AnyResult) -> str | None:
    """The result's first IPv4 address inside the container (see the module docstring), as Go prints it."""
    if isinstance(result, Result020):
        if result.ip4 is not None and result.ip4.family == 4:
            return go_ip_text(result.ip4.ip.ip)
        return None
    for ip in result.ips:
        if ip.family != 4:
            continue
        interface = result.interface_of(ip)  # type: ignore[arg-type]  # each class takes its own ips
        if interface is not None and not interface.sandbox:
            continue  # an address of a host-side interface (a bridge, the host end of a veth)
        return go_ip_text(ip.address.ip)
    return None


def _check_dns(dns: DNS, where: str) -> None:
    for field in ("nameservers", "search", "options"):
        for index, entry in enumerate(getattr(dns, field)):
            if not _is_word(entry):
                raise InvalidInputError(f"cannot write DNS {field} entry {entry!r} of {where} into resolv.conf: "
                                        "it must be a word without whitespace or control characters",
                                        key=f"{where}.dns.{field}[{index}]", value=entry)
    if dns.domain and not _is_word(dns.domain):
        raise InvalidInputError(f"cannot write DNS domain {dns.domain!r} of {where} into resolv.conf: it must "
                                "be a word without whitespace or control characters", key=f"{where}.dns.domain",
                                value=dns.domain)


def _render_resolv_conf(dns: DNS) -> str:
    lines = []
    if dns.domain:
        lines.append(f"domain {dns.domain}")
    if dns.search:
        lines.append("search " + " ".join(dns.search))
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    lines.extend(f"nameserver {server}" for server in dns.nameservers)
    return "".join(line + "\n" for line in lines)


def _read_host_resolv_conf(path: str) -> str:
    try:
        return read_regular(path, MAX_DOCUMENT_BYTES).decode("utf-8", "surrogateescape")
    except FileNotFoundError as exc:
        raise NotFoundError(f"cannot find the host's resolv.conf {path} (no network gave DNS nameservers, so the "
                            "container would use the host's)", key="host_resolv_conf", value=path) from exc
    except OSError as exc:
        raise IOFailureError(f"cannot read the host's resolv.conf {path}: {exc.strerror or exc}",
                             key="host_resolv_conf", value=path) from exc


def merged_dns(
    results: Sequence[AnyResult] | Mapping[str, AnyResult],
    default_dns: DNS | Mapping[str, DNS] | None = None,
) -> DNS:
    """The container's DNS settings: each network's result DNS or default, merged in attach order.

    See the module docstring for the rules. Entries are checked to be writable
    into resolv.conf.

    Raises:
        InvalidInputError: a per-network ``default_dns`` with results that are not keyed by
            network name; an entry that is empty or holds whitespace or control characters.
    """
    networks = _named(results)
    if isinstance(default_dns, Mapping) and not isinstance(results, Mapping):
        raise InvalidInputError("a per-network default DNS needs the results keyed by network name",
                                key="default_dns", value=sorted(default_dns))
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    domain = ""
    for name, where, result in networks:
        chosen: DNS | None
        if result.dns.nameservers:
            chosen, source = result.dns, where
        elif isinstance(default_dns, Mapping):
            chosen, source = default_dns.get(name or ""), f"default_dns[{name!r}]"
        else:
            chosen, source = default_dns, "default_dns"
        if chosen is None:
            continue
        _check_dns(chosen, source)
        nameservers += chosen.nameservers
        search += chosen.search
        options += chosen.options
        domain = chosen.domain or domain
    return DNS(nameservers=nameservers, domain=domain, search=search, options=options)


def _named(results: Sequence[AnyResult] | Mapping[str, AnyResult]) -> list[tuple[str | None, str, AnyResult]]:
    """(network name or None, key path for messages, result) in attach order, each checked to be a result."""
    if isinstance(results, Mapping):
        items: list[tuple[str | None, str, object]] = [(name, name, value) for name, value in results.items()]
    elif isinstance(results, str | bytes) or not isinstance(results, Sequence):
        raise InvalidInputError("results must be a sequence of results or a mapping of network name to result",
                                key="results", value=repr(results))
    else:
        items = [(None, f"results[{index}]", value) for index, value in enumerate(results)]
    checked: list[tuple[str | None, str, AnyResult]] = []
    for name, where, value in items:
        if not isinstance(value, Result | Result040 | Result020):
            raise InvalidInputError(f"{where} is not a CNI result (got {type(value).__name__}); parse it with "
                                    "cnicore.spec.parse_result", key=where, value=repr(value))
        checked.append((name, where, value))
    return checked


def container_files(
    results: Sequence[AnyResult] | Mapping[str, AnyResult],
    *,
    hostname: str,
    default_dns: DNS | Mapping[str, DNS] | None = None,
    host_resolv_conf: str | None = HOST_RESOLV_CONF,
) -> ContainerFiles:
    """Build a container's ``hosts``, ``hostname`` and ``resolv.conf`` from its ADD results.

    Args:
        results: the final result of each network the container joined, in attach
            order: a sequence, or a mapping from network name to result (needed for
            per-network defaults). Results of every spec version are accepted.
        hostname: the container's host name (Mesos: ``ContainerInfo.hostname``, else
            the container ID).
        default_dns: DNS to use for a network whose result has no nameserver: one
            value for every network, or one per network name (networks missing from
            the mapping get none).
        host_resolv_conf: the file to copy when no nameserver is known at all; None
            to have no resolv.conf then.

    Returns:
        The three file contents (see the module docstring for the rules).

    Raises:
        InvalidInputError: (code 7) a bad host name, DNS entry or argument.
        NotFoundError: the host's resolv.conf is needed and does not exist.
        IOFailureError: (code 5) it exists but cannot be read.

    Example::

        files = container_files({"mybridge0": result}, hostname="web-1")
        files.write("/var/run/mesos/isolators/network/cni/<container>")
    """
    _check_hostname(hostname)
    networks = _named(results)
    address = next((ip for ip in (_first_ipv4(result) for _, _, result in networks) if ip is not None), None)
    hosts = "127.0.0.1 localhost\n" + (f"{address} {hostname}\n" if address is not None else "")
    dns = merged_dns(results, default_dns)
    resolv_conf: str | None
    if dns.nameservers:
        resolv_conf = _render_resolv_conf(dns)
    elif host_resolv_conf is None:
        resolv_conf = None
    else:
        resolv_conf = _read_host_resolv_conf(host_resolv_conf)
    return ContainerFiles(hosts=hosts, hostname=hostname + "\n", resolv_conf=resolv_conf)
