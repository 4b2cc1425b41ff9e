"""What the kernel backends share about links, on plain values and the standard library.

MTU bounds, the reference's link errors, veth peer names and reading or
writing a plugin sysctl (errno translation and the tool runner live in
:mod:`._tools`, and are re-exported here): the typed backends (through
:mod:`._common` and :mod:`._nsenter`) and the executed bridge's plain link port
(:mod:`._linkops`) call these same functions. Nothing here imports attrs,
netaddr, ``typing`` or :mod:`cnicore.links`.
"""

from __future__ import annotations

import errno
import os

from cnicore._errors import AlreadyExistsError, CNIError, InternalError, InvalidConfigError
from cnicore._gofmt import go_quote

from ._setns import run_in_netns
from ._tools import ToolRun, error_from_errno, find_program, namespace_gone, run_tool

__all__ = ["MAX_ALIAS_BYTES", "MAX_MTU", "MIN_MTU", "PEER_NAME_ATTEMPTS", "VETH_TXQUEUELEN", "ToolRun",
           "check_link_options", "check_mtu", "check_unicast_mac", "error_from_errno", "find_program", "namespace_gone",
           "not_a_bridge", "random_peer_name", "read_net_sysctl_path", "read_sysctl_path", "run_tool", "sysctl_error",
           "veth_exists", "write_net_sysctl_path", "write_sysctl_path"]

# The kernel's bounds for veth and bridge MTUs (ETH_MIN_MTU .. ETH_MAX_MTU).
MIN_MTU = 68
MAX_MTU = 65535
# The reference draws a new peer name up to 10 times before giving up.
PEER_NAME_ATTEMPTS = 10
# The transmit queue length of both ends of a veth pair. The reference's netlink library sends its
# zero-valued LinkAttrs.TxQLen (0) when it makes the pair; the kernel's default would be 1000. A veth
# has no qdisc queue anyway (noqueue), so this only keeps the state identical.
VETH_TXQUEUELEN = 0


def check_mtu(mtu: int) -> int:
    """Refuse an MTU outside what veths and bridges accept."""
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not MIN_MTU <= mtu <= MAX_MTU:
        raise InvalidConfigError(f"invalid MTU {mtu!r} (must be between {MIN_MTU} and {MAX_MTU})", key="mtu",
                                 value=mtu)
    return mtu


#: The kernel keeps at most this many bytes of an interface alias (IFALIASZ - 1).
MAX_ALIAS_BYTES = 255


def check_link_options(txqueuelen: int | None, alias: str | None) -> None:
    """Refuse a transmit queue length or alias the kernel would refuse (:meth:`LinkBackend.set_link_options`)."""
    if txqueuelen is not None and (isinstance(txqueuelen, bool) or not isinstance(txqueuelen, int)
                                   or not 0 <= txqueuelen <= 0xFFFFFFFF):
        raise InvalidConfigError(f"invalid transmit queue length {txqueuelen!r}", key="txqueuelen", value=txqueuelen)
    if alias is not None and (not isinstance(alias, str) or "\0" in alias
                              or len(alias.encode("utf-8", "surrogateescape")) > MAX_ALIAS_BYTES):
        raise InvalidConfigError(f"invalid interface alias {alias!r} (at most {MAX_ALIAS_BYTES} bytes, no NUL)",
                                 key="alias", value=alias)


def check_unicast_mac(text: str, given: str) -> str:
    """``text`` (a MAC as six lowercase colon-separated octets, read from ``given``) unless multicast or all zero."""
    if int(text[:2], 16) & 1 or text == "00:00:00:00:00:00":
        raise InvalidConfigError(f"invalid MAC address {given!r}: not a unicast address", key="mac", value=given)
    return text


def random_peer_name() -> str:
    """``veth`` + 8 random lowercase hex digits, as the reference names host ends."""
    return "veth" + os.urandom(4).hex()  # (os.urandom: the secrets module costs an exec'd plugin its import)


def veth_exists(name: str, peer: str) -> AlreadyExistsError:
    """The reference's error when the container end's name is taken."""
    return AlreadyExistsError(f"container veth name ({go_quote(name)}) peer provided ({go_quote(peer)}) already exists")


def not_a_bridge(name: str) -> AlreadyExistsError:
    """The reference's error when a non-bridge link holds the bridge's name."""
    return AlreadyExistsError(f"{go_quote(name)} already exists but is not a bridge")


def sysctl_error(exc: OSError, path: str) -> CNIError:
    """The cnicore error for a sysctl file's ``OSError`` (EINVAL: the kernel refused the value)."""
    if exc.errno == errno.EINVAL:
        return InternalError(f"sysctl {path}: invalid value")
    return error_from_errno(exc.errno, f"sysctl {path}")


def read_sysctl_path(ns_path: str | None, path: str) -> str:
    """The value of ``/proc/sys/<path>`` (stripped) as seen from the namespace at ``ns_path`` (None: ours).

    ``path`` must have been checked (:func:`cnicore._sysctlkey.sysctl_key_parts`).
    """
    full = "/proc/sys/" + path

    def read() -> str:
        try:
            with open(full, encoding="ascii") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise sysctl_error(exc, full) from exc

    return run_in_netns(ns_path, read)


def write_sysctl_path(ns_path: str | None, path: str, text: str) -> None:
    """Write ``text`` into ``/proc/sys/<path>`` as seen from the namespace at ``ns_path`` (None: ours).

    ``path`` and ``text`` must have been checked (:mod:`cnicore._sysctlkey`).
    """
    full = "/proc/sys/" + path

    def write() -> None:
        try:
            with open(full, "w", encoding="ascii") as handle:
                handle.write(text)
        except OSError as exc:
            raise sysctl_error(exc, full) from exc

    run_in_netns(ns_path, write)


def read_net_sysctl_path(ns_path: str | None, key: str) -> str:
    """Any network sysctl (``key`` below ``/proc/sys``, see :func:`cnicore._sysctlkey.check_net_sysctl_path`).

    Read as seen from the namespace at ``ns_path`` (None: ours), without its final newline.
    """
    from cnicore._sysctlkey import check_net_sysctl_path

    path = "/proc/sys/" + check_net_sysctl_path(key)

    def read() -> str:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                text = handle.read()
        except OSError as exc:
            raise sysctl_error(exc, path) from exc
        return text[:-1] if text.endswith("\n") else text

    return run_in_netns(ns_path, read)


def write_net_sysctl_path(ns_path: str | None, key: str, value: str) -> None:
    """Write ``value`` as it is into any network sysctl as seen from the namespace at ``ns_path`` (None: ours)."""
    from cnicore._sysctlkey import check_net_sysctl_path

    path = "/proc/sys/" + check_net_sysctl_path(key)
    data = value.encode("utf-8", "surrogateescape")

    def write() -> None:
        try:
            # One write(2) of the whole value, as Go's os.WriteFile does (the kernel parses each write).
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            raise sysctl_error(exc, path) from exc

    run_in_netns(ns_path, write)
