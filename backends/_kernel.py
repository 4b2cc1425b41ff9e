"""What the kernel backends share, on plain values and the standard library.

Errno translation, the reference's link errors, veth peer names, running a
command-line tool in a namespace and reading or writing a plugin sysctl: the
typed backends (through :mod:`._common` and :mod:`._nsenter`) and the executed
bridge's plain link port (:mod:`._linkops`) call these same functions. Nothing
here imports attrs, netaddr, ``typing`` or :mod:`cnicore.links`.
"""

from __future__ import annotations

import errno
import os

from cnicore._errors import (
    AlreadyExistsError,
    CNIError,
    InternalError,
    InvalidConfigError,
    NamespaceNotFoundError,
    NotFoundError,
    PermissionDeniedError,
)
from cnicore._gofmt import go_quote

from ._setns import run_in_netns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MAX_MTU", "MIN_MTU", "PEER_NAME_ATTEMPTS", "VETH_TXQUEUELEN", "ToolRun", "check_mtu", "error_from_errno",
           "find_program", "namespace_gone", "not_a_bridge", "random_peer_name", "read_sysctl_path", "run_tool",
           "sysctl_error", "veth_exists", "write_sysctl_path"]

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


def find_program(name: str) -> str | None:
    """The first executable ``name`` on ``PATH``, as ``shutil.which`` finds it.

    (shutil's import costs an executed plugin bz2 and lzma.)
    """
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def random_peer_name() -> str:
    """``veth`` + 8 random lowercase hex digits, as the reference names host ends."""
    return "veth" + os.urandom(4).hex()  # (os.urandom: the secrets module costs an exec'd plugin its import)


def veth_exists(name: str, peer: str) -> AlreadyExistsError:
    """The reference's error when the container end's name is taken."""
    return AlreadyExistsError(f"container veth name ({go_quote(name)}) peer provided ({go_quote(peer)}) already exists")


def not_a_bridge(name: str) -> AlreadyExistsError:
    """The reference's error when a non-bridge link holds the bridge's name."""
    return AlreadyExistsError(f"{go_quote(name)} already exists but is not a bridge")


def error_from_errno(code: int | None, what: str) -> CNIError:
    """The cnicore error for a kernel errno while doing ``what`` (caller raises it ``from`` exc)."""
    detail = f"{what}: {errno.errorcode.get(code or 0, str(code))} ({_strerror(code)})"
    if code == errno.EEXIST:
        return AlreadyExistsError(detail)
    if code in (errno.ENODEV, errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL, errno.ENXIO):
        return NotFoundError(detail)
    if code in (errno.EPERM, errno.EACCES):
        return PermissionDeniedError(detail)
    return InternalError(detail)


def namespace_gone(path: str) -> NamespaceNotFoundError:
    """The error for a namespace path that does not exist (any more)."""
    return NamespaceNotFoundError(f"failed to open netns {go_quote(path)}: no such namespace")


def _strerror(code: int | None) -> str:
    return os.strerror(code) if code else "unknown error"


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


class ToolRun:
    """What a tool run by :func:`run_tool` did: its ``args``, ``returncode``, ``stdout`` and ``stderr`` (text)."""

    __slots__ = ("args", "returncode", "stderr", "stdout")

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def run_tool(argv: Sequence[str], *, namespace_path: str | None, nsenter: str, timeout: float,
             stdin: str | None = None) -> ToolRun:
    """Run a command-line tool (iptables, nft) in a namespace through ``nsenter``; what it did.

    ``namespace_path`` None means the caller's own namespace. The tool gets
    ``stdin`` (nothing when None) and this process's environment; its output is
    read as text. Raises :class:`~cnicore.NamespaceNotFoundError` when the
    namespace is gone, the errno's error when the tool cannot be started, and
    :class:`~cnicore.InternalError` when it does not finish within ``timeout``
    seconds (it is killed); a non-zero exit is the caller's to judge.

    Spawned with ``os.posix_spawnp`` and read with ``select.poll``: the
    ``subprocess`` module's import (locale, threading, selectors...) would cost
    an executed plugin milliseconds per run.
    """
    argv = list(argv)
    if namespace_path is not None:
        if not os.path.exists(namespace_path):
            raise namespace_gone(namespace_path)
        argv = [nsenter, f"--net={namespace_path}", "--", *argv]
    try:
        return _spawn(argv, (stdin or "").encode(), timeout)
    except OSError as exc:
        raise error_from_errno(exc.errno, f"cannot run {argv[0]}") from exc


def _text(data: bytes) -> str:
    # As subprocess's text mode: UTF-8 here, universal newlines.
    return data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def _spawn(argv: list[str], data: bytes, timeout: float) -> ToolRun:
    import select
    import time

    stdin_r, stdin_w = os.pipe()  # (non-inheritable: only the dup2'd ends reach the tool)
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin_r, 0), (os.POSIX_SPAWN_DUP2, stdout_w, 1), (os.POSIX_SPAWN_DUP2, stderr_w, 2)])
    except BaseException:
        for fd in (stdin_r, stdin_w, stdout_r, stdout_w, stderr_r, stderr_w):
            os.close(fd)
        raise
    for fd in (stdin_r, stdout_w, stderr_w):
        os.close(fd)
    chunks: dict[int, list[bytes]] = {stdout_r: [], stderr_r: []}
    open_fds = {stdout_r, stderr_r}
    poller = select.poll()
    for fd in open_fds:
        poller.register(fd, select.POLLIN)
    pending = memoryview(data)
    if pending:
        os.set_blocking(stdin_w, False)
        poller.register(stdin_w, select.POLLOUT)
    else:
        os.close(stdin_w)
        stdin_w = -1
    deadline = time.monotonic() + timeout
    try:
        while open_fds or stdin_w >= 0:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                from cnicore._errors import InternalError as _Timeout

                raise _Timeout(f"{argv[0]} did not finish in {timeout}s")
            for fd, _event in poller.poll(left * 1000):
                if fd == stdin_w:
                    try:
                        written = os.write(stdin_w, pending[:65536])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        written = len(pending)  # the tool stopped reading: as subprocess, not an error
                    pending = pending[written:]
                    if not pending:
                        poller.unregister(stdin_w)
                        os.close(stdin_w)
                        stdin_w = -1
                    continue
                chunk = os.read(fd, 65536)
                if chunk:
                    chunks[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    os.close(fd)
        _pid, status = os.waitpid(pid, 0)
    finally:
        for fd in (*open_fds, stdin_w):
            if fd >= 0:
                os.close(fd)
    return ToolRun(argv, os.waitstatus_to_exitcode(status), _text(b"".join(chunks[stdout_r])),
                   _text(b"".join(chunks[stderr_r])))
