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
import subprocess
from collections.abc import Iterator

import pytest
from backends_support import Namespaces
from support import is_root, require_tool

from cnicore._errors import NamespaceNotFoundError, NotFoundError
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
