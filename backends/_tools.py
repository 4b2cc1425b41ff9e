"""Running iptables and nft on plain values: the tool runner and the rule tables every firewall uses.

:class:`IptablesTables` edits and lists iptables tables (one ``iptables-save``
and one ``iptables-restore --noflush`` per table and family);
:class:`NftTool` runs ``nft`` scripts and lists its objects. The typed
firewalls (:class:`~backends.IptablesFirewall`, :class:`~backends.NftablesFirewall`)
are these plus the masquerade and spoof-check layouts; an executed meta plugin
uses them as they are, with the rule plans of :mod:`cnicore._ruleplan`, so it
loads neither attrs nor netaddr. Commands are argv lists (never a shell), run
in another network namespace through ``nsenter`` when one is given.
"""

from __future__ import annotations

import errno
import os
import sys

from cnicore._errors import (
    AlreadyExistsError,
    CNIError,
    InternalError,
    NamespaceNotFoundError,
    NotFoundError,
    PermissionDeniedError,
)
from cnicore._gofmt import go_quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["IptablesTables", "NftTool", "ProcHost", "ToolRun", "error_from_errno", "find_program", "namespace_gone",
           "run_tool"]


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


def _strerror(code: int | None) -> str:
    return os.strerror(code) if code else "unknown error"


def find_program(name: str) -> str | None:
    """The first executable ``name`` on ``PATH``, as ``shutil.which`` finds it.

    (shutil's import costs an executed plugin bz2 and lzma.)
    """
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def namespace_gone(path: str) -> NamespaceNotFoundError:
    """The error for a namespace path that does not exist (any more), worded as the reference's ``ns.GetNS``.

    Loopback and tuning print it as it is; the bridge puts ``failed to open netns "<path>": `` before it, as the
    reference's bridge does.
    """
    return NamespaceNotFoundError(f"failed to Statfs {go_quote(path)}: no such file or directory")


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
                raise InternalError(f"{argv[0]} did not finish in {timeout}s")
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


_NAT = "nat"
_MISSING = ("No such file or directory", "does not exist")


class TableState:
    """The chains and rules of one table, as ``iptables-save`` printed them."""

    def __init__(self, text: str) -> None:
        self.chains: set[str] = set()
        self.rules: list[str] = []
        self.by_chain: dict[str, list[str]] = {}
        for line in text.splitlines():
            if line.startswith(":"):
                chain = line[1:].split(" ", 1)[0]
                self.chains.add(chain)
                self.by_chain.setdefault(chain, [])
            elif line.startswith("-A "):
                self.rules.append(line)
                self.by_chain.setdefault(line.split(" ", 2)[1], []).append(line)


class IptablesTables:
    """iptables tables (``iptables``/``ip6tables`` save and restore), edited and listed on plain values.

    Args:
        namespace_path: the network namespace the rules go in (None: the calling process's).
        iptables, ip6tables: paths of the binaries (default: found on ``PATH``);
            ``<path>-save`` and ``<path>-restore`` beside them are used.
        nsenter: path of ``nsenter`` for ``namespace_path``.
    """

    def __init__(self, *, namespace_path: str | None = None, iptables: str | None = None,
                 ip6tables: str | None = None, nsenter: str | None = None, timeout: float = 60.0) -> None:
        self._namespace_path = namespace_path
        self._binaries = {
            4: iptables or find_program("iptables") or "/usr/sbin/iptables",
            6: ip6tables or find_program("ip6tables") or "/usr/sbin/ip6tables",
        }
        self._nsenter = nsenter or find_program("nsenter") or "/usr/bin/nsenter"
        self._timeout = timeout

    def available(self) -> bool:
        """Whether ``iptables`` can be run here (the binary exists and is executable)."""
        return os.access(self._binaries[4], os.X_OK)

    def nftables(self) -> NftTool:
        """``nft`` in the same namespace."""
        return NftTool(namespace_path=self._namespace_path, nsenter=self._nsenter, timeout=self._timeout)

    def _run(self, argv: Sequence[str], stdin: str | None = None) -> ToolRun:
        return run_tool(argv, namespace_path=self._namespace_path, nsenter=self._nsenter, timeout=self._timeout,
                        stdin=stdin)

    @staticmethod
    def _failed(what: str, done: ToolRun) -> InternalError:
        message = done.stderr.strip() or f"exit status {done.returncode}"
        if "Permission denied" in message or "you must be root" in message:
            return PermissionDeniedError(f"{what}: {message}")
        return InternalError(f"{what}: {message}")

    def _save(self, version: int, table: str = _NAT) -> TableState:
        tool = self._binaries[version] + "-save"
        done = self._run([tool, "-t", table])
        if done.returncode != 0:
            raise self._failed(f"{os.path.basename(tool)} -t {table}", done)
        return TableState(done.stdout)

    def _restore(self, version: int, lines: list[str], table: str = _NAT) -> None:
        tool = self._binaries[version] + "-restore"
        script = "\n".join([f"*{table}", *lines, "COMMIT", ""])
        done = self._run([tool, "--noflush", "-w"], script)
        if done.returncode != 0:
            raise self._failed(f"{os.path.basename(tool)} --noflush", done)

    def edit_rules(self, edits: Sequence[Any]) -> None:
        """Carry out edits (:class:`cnicore._ruleplan.TableEdit` or ``RuleEdit``): one save and one restore per
        table and family."""
        grouped: dict[tuple[int, str], list[Any]] = {}
        for edit in edits:
            grouped.setdefault((edit.version, edit.table), []).append(edit)
        for (version, table), group in grouped.items():
            model = self._save(version, table).by_chain
            from cnicore._ruleplan import edit_lines  # the rule planner: not on the path of what runs no rules

            lines = [line for edit in group for line in edit_lines(model, edit)]
            if lines:
                self._restore(version, lines, table)

    def table_rules(self, version: int, table: str) -> dict[str, tuple[str, ...]]:
        """A table's chains and their rules, as ``iptables-save`` prints them."""
        return {chain: tuple(rules) for chain, rules in self._save(version, table).by_chain.items()}


class NftTool:
    """The ``nft`` command: scripts applied as one transaction, objects listed as its JSON.

    Args:
        namespace_path: the network namespace (None: the calling process's).
        nft, nsenter: binary paths (default: found on ``PATH``).
    """

    def __init__(self, *, namespace_path: str | None = None, nft: str | None = None, nsenter: str | None = None,
                 timeout: float = 60.0) -> None:
        self._namespace_path = namespace_path
        self._nft = nft or find_program("nft") or "/usr/sbin/nft"
        self._nsenter = nsenter or find_program("nsenter") or "/usr/bin/nsenter"
        self._timeout = timeout

    def available(self) -> bool:
        """Whether ``nft`` can be run here (the binary exists and is executable)."""
        return os.access(self._nft, os.X_OK)

    def usable(self) -> bool:
        """Whether nftables can be used here: ``nft`` runs and would accept a new table (``nft --check``).

        As upstream's ``SupportsNFTables``; nothing is changed.
        """
        if not self.available():
            return False
        try:
            done = self._run(["--check", "add", "table", "ip", "supports_nftables_test"])
        except CNIError:
            return False
        return done.returncode == 0

    def apply_script(self, script: str) -> None:
        """Run ``script`` with ``nft -f -``: one transaction (all of it or nothing). Errors: the ``nft`` message."""
        self._apply(script)

    def list_objects(self, *what: str) -> list[dict[str, Any]]:
        """``nft -j list <what>``'s objects (``{"rule": {...}}`` and so on); none if the table or chain is missing."""
        return self._list(*what)

    def _run(self, args: Sequence[str], script: str | None = None) -> ToolRun:
        return run_tool([self._nft, *args], namespace_path=self._namespace_path, nsenter=self._nsenter,
                        timeout=self._timeout, stdin=script)

    def _apply(self, script: str, *, json_input: bool = False) -> None:
        done = self._run(["-j", "-f", "-"] if json_input else ["-f", "-"], script)
        if done.returncode != 0:
            message = done.stderr.strip()
            if "Operation not permitted" in message:
                raise PermissionDeniedError(f"nft: {message}")
            raise InternalError(f"nft: {message or done.returncode}")

    def _list(self, *what: str) -> list[dict[str, Any]]:
        """``nft -j list <what>``'s objects; none if the table or chain does not exist."""
        from cnicore._json import decode

        done = self._run(["-j", "list", *what])
        if done.returncode != 0:
            if any(text in done.stderr for text in _MISSING):
                return []
            raise InternalError(f"nft list {' '.join(what)}: {done.stderr.strip()}")
        try:
            items = decode(done.stdout, what="nft -j list").get("nftables", [])
        except (CNIError, AttributeError) as exc:
            raise InternalError("nft -j printed something that is not its JSON") from exc
        return [item for item in items if isinstance(item, dict)]


class ProcHost:
    """The calling process's network namespace as ``/proc`` shows it: its IPv4 routes and its sysctls.

    What the executed portmap needs of the host (``route_localnet``) without a link backend.
    """

    def __init__(self, proc: str = "/proc") -> None:
        self._proc = proc

    def ipv4_routes(self) -> list[tuple[str, str]]:
        """The main table's IPv4 routes as ``(destination CIDR, device)`` (``/proc/net/route``)."""
        routes: list[tuple[str, str]] = []
        try:
            with open(f"{self._proc}/net/route", encoding="ascii") as lines:
                next(lines, None)  # the header
                for line in lines:
                    fields = line.split()
                    if len(fields) < 8:
                        continue
                    # Destination and mask: the network-order bytes printed as a host-order number, in hex.
                    dst = int.from_bytes(bytes.fromhex(fields[1]), sys.byteorder)
                    mask = int.from_bytes(bytes.fromhex(fields[7]), sys.byteorder)
                    dotted = ".".join(str(dst >> shift & 255) for shift in (24, 16, 8, 0))
                    routes.append((f"{dotted}/{bin(mask).count('1')}", fields[0]))
        except OSError as exc:
            raise error_from_errno(exc.errno, f"cannot read {self._proc}/net/route") from exc
        return routes

    def delete_conntrack_entries(self, version: int, protocol: int, dst_ports: Sequence[int]) -> int:
        """Delete the tracked flows of this namespace with ``protocol`` to one of ``dst_ports``
        (:func:`backends._conntrack.delete_entries`); how many. ``OSError`` when the kernel refuses."""
        from ._conntrack import delete_entries

        return delete_entries(version, protocol, dst_ports)

    def write_sysctl(self, key: str, value: int) -> None:
        """Write ``value`` to ``/proc/sys/<key>`` (``net/ipv4/conf/eth0/route_localnet``)."""
        try:
            with open(f"{self._proc}/sys/{key}", "w", encoding="ascii") as handle:
                handle.write(str(value))
        except OSError as exc:
            raise error_from_errno(exc.errno, f"cannot write sysctl {key}") from exc
