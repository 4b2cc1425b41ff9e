"""Joining a namespace (the one setns helper) and the exec'd bridge's pooled sockets, on the kernel (root only).

:func:`~cnicore.backends._setns.setns` calls libc through ``_ctypes`` alone on
Python 3.11 (``os.setns`` from 3.12); these tests hold it to what the kernel
says: the thread really is in the namespace, a refusal is the kernel's errno,
and the caller's thread never moves. :class:`~cnicore.backends._linkops.PlainLinkPort`
keeps one socket per namespace: the sockets really are the namespaces' own, a
refusal leaves the socket serving, and ``close`` closes them.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends_support import REAL_BACKENDS, Namespaces, make_backend, real_available
from support import is_root, require_tool, unblocked

from cnicore._errors import (
    InternalError,
    InvalidNetNSError,
    NamespaceNotFoundError,
    NotFoundError,
    PermissionDeniedError,
)
from cnicore.backends._linkops import PlainLinkPort
from cnicore.backends._setns import open_netns, run_in_netns, setns

pytestmark = pytest.mark.root


@pytest.fixture
def spaces() -> Iterator[Namespaces]:
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    require_tool("ip")
    made = Namespaces()
    try:
        yield made
    finally:
        made.cleanup()


def _inode(path: str) -> int:
    return os.stat(path).st_ino


def test_a_thread_joins_the_namespace_and_the_caller_stays(spaces: Namespaces) -> None:
    path = spaces.add()
    home = _inode("/proc/thread-self/ns/net")
    seen = run_in_netns(path, lambda: _inode("/proc/thread-self/ns/net"))
    assert seen == _inode(path) != home
    assert _inode("/proc/thread-self/ns/net") == home


def test_a_refusal_is_the_kernels_errno() -> None:
    if not is_root():
        pytest.skip("needs root (setns)")
    fd = os.open("/proc/self/stat", os.O_RDONLY | os.O_CLOEXEC)  # open, but no namespace
    try:
        with pytest.raises(OSError) as caught:
            run_in_netns(None, lambda: setns(fd))
        assert caught.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    with pytest.raises(OSError) as closed:
        setns(fd)  # closed now
    assert closed.value.errno == errno.EBADF
    with pytest.raises(NamespaceNotFoundError):
        open_netns("/var/run/netns/cnt-never-made")


def test_the_plain_port_keeps_one_socket_per_namespace(spaces: Namespaces) -> None:
    path = spaces.add()
    name = os.path.basename(path)
    subprocess.run(["ip", "-n", name, "link", "add", "cnt-d0", "type", "veth", "peer", "name", "cnt-d1"], check=True)
    port = PlainLinkPort()
    try:
        port.set_link_up(path, "cnt-d0", True)
        sock = port._sockets[path]
        with pytest.raises(NotFoundError):  # a refusal: the socket keeps serving
            port.get_link(path, "cnt-absent")
        port.add_address(path, "cnt-d0", "10.9.8.7/24")
        assert port._sockets[path] is sock and list(port._sockets) == [path]
        assert "10.9.8.7/24" in port.list_addresses(path, "cnt-d0")
        shown = subprocess.run(["ip", "-n", name, "-o", "addr", "show", "dev", "cnt-d0"], check=True,
                               capture_output=True, text=True).stdout
        assert "10.9.8.7/24" in shown  # done in the namespace itself, not in this one
    finally:
        port.close()
    assert port._sockets == {}
    port.close()  # idempotent


def _no_namespace(tmp_path: Path, kind: str) -> str:
    path = tmp_path / f"cnt-not-ns-{kind}"
    if kind == "file":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)
    return str(path)


@pytest.fixture
def bounded() -> Iterator[None]:
    """Fail instead of hanging: an open of a FIFO with no writer blocks until the alarm interrupts it."""
    with unblocked(10, "blocked: the path was opened"):
        yield


@pytest.mark.parametrize("kind", ["file", "directory", "fifo"])
def test_a_path_that_is_no_namespace_is_refused_before_it_is_opened(tmp_path: Path, kind: str,
                                                                   bounded: None) -> None:
    # As the reference's ns.GetNS: refused by the file system's magic number (code 999), never opened (a FIFO
    # would block the plugin for good).
    path = _no_namespace(tmp_path, kind)
    magic = subprocess.run(["stat", "-f", "-c", "%t", path], capture_output=True, text=True, check=True).stdout.strip()
    with pytest.raises(InvalidNetNSError) as caught:
        open_netns(path)
    assert (caught.value.code, caught.value.msg) == (999, f'unknown FS magic on "{path}": {magic}')
    with pytest.raises(InvalidNetNSError):
        run_in_netns(path, lambda: None)
    if kind == "fifo":
        assert stat.S_ISFIFO(os.stat(path).st_mode)


def test_namespace_files_are_taken(spaces: Namespaces) -> None:
    # A bind mount made by "ip netns add", a process's own file, another namespace type's (setns refuses that one
    # later, with the kernel's EINVAL, as the reference's setns does).
    for path in (spaces.add(), "/proc/self/ns/net", "/proc/self/ns/mnt"):
        os.close(open_netns(path))


@pytest.mark.parametrize("kind", REAL_BACKENDS)
def test_every_kernel_backend_refuses_a_path_that_is_no_namespace(kind: str, tmp_path: Path, bounded: None) -> None:
    why = real_available(kind)
    if why is not None:
        pytest.skip(why)
    backend = make_backend(kind)
    path = _no_namespace(tmp_path, "fifo")
    with pytest.raises(InvalidNetNSError, match=r'^unknown FS magic on ".*cnt-not-ns-fifo": [0-9a-f]+$'):
        backend.open_namespace(path)


def test_what_is_checked_is_what_is_opened(spaces: Namespaces, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           bounded: None) -> None:
    # The path is opened once, with O_PATH (never blocking, opening no device); the check is made on that
    # descriptor, and the namespace is then opened for reading through it, never by its path again. So nothing
    # put at the path in the meantime can be opened.
    namespace, fifo = spaces.add(), _no_namespace(tmp_path, "fifo")
    opened: list[tuple[str, int]] = []
    real_open = os.open

    def recording(target: str, flags: int, *args: object, **kwargs: object) -> int:
        opened.append((target, flags))
        return real_open(target, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", recording)
    os.close(open_netns(namespace))
    assert [flags & os.O_PATH for target, flags in opened if target == namespace] == [os.O_PATH]
    assert [target.startswith("/proc/self/fd/") for target, flags in opened if not flags & os.O_PATH] == [True]
    opened.clear()
    with pytest.raises(InvalidNetNSError):
        open_netns(fifo)
    assert opened == [(fifo, os.O_PATH | os.O_CLOEXEC)]


def test_without_proc_the_path_is_opened_again_only_if_it_names_the_file_checked(
        spaces: Namespaces, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bounded: None) -> None:
    from cnicore.backends import _setns

    monkeypatch.setattr(_setns, "_PROC_FD", str(tmp_path / "no-proc"))
    namespace = spaces.add()
    seen = run_in_netns(namespace, lambda: _inode("/proc/thread-self/ns/net"))
    assert seen == _inode(namespace)
    with pytest.raises(InvalidNetNSError, match="unknown FS magic"):
        open_netns(_no_namespace(tmp_path, "fifo"))
    # Replaced by another namespace between the check and the second open: refused.
    real_open = os.open

    def replaced(target: str, flags: int, *args: object, **kwargs: object) -> int:
        if target == namespace and flags & os.O_NONBLOCK:
            target = "/proc/self/ns/net"
        return real_open(target, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", replaced)
    with pytest.raises(InvalidNetNSError, match="was replaced while it was opened") as caught:
        open_netns(namespace)
    assert caught.value.code == 999


@pytest.mark.parametrize(("code", "kind"), [(errno.ENOTDIR, InvalidNetNSError), (errno.ELOOP, InvalidNetNSError),
                                            (errno.EACCES, PermissionDeniedError), (errno.EIO, InternalError)])
def test_a_path_that_cannot_be_looked_at_is_the_input_only_when_it_can_name_no_namespace(
        code: int, kind: type[Exception]) -> None:
    from cnicore.backends._setns import _cannot_look

    got = _cannot_look("/x/y", OSError(code, os.strerror(code)))
    reason = os.strerror(code)
    assert type(got) is kind
    assert (got.code, got.msg) == (999, f'failed to Statfs "/x/y": {reason[:1].lower()}{reason[1:]}')  # type: ignore[attr-defined]
