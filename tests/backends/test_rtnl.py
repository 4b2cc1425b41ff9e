"""The route netlink socket of the exec'd loopback, against the kernel and against ``ip``'s view of it.

Each test works in throwaway namespaces ``cnt-<random>`` (root only) and compares
what :class:`RouteSocket` reads and does with what ``ip -json`` reports, on ``lo``
and on dummy links with IPv4, IPv6 and IPv4-mapped addresses.
"""

from __future__ import annotations

import ipaddress
import json
import os
import struct
import subprocess
import threading
from collections.abc import Iterator

import pytest
from backends_support import Namespaces
from support import is_root, require_tool

from cnicore._errors import InternalError, InvalidNetNSError, NamespaceNotFoundError, NotFoundError
from cnicore.backends._rtnl import RawAddress, RouteSocket, Rtnl

pytestmark = pytest.mark.root


@pytest.fixture
def space() -> Iterator[str]:
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    require_tool("ip")
    spaces = Namespaces()
    try:
        yield spaces.add()
    finally:
        spaces.cleanup()


def ip(path: str, *args: str) -> str:
    name = os.path.basename(path)
    return subprocess.run(["ip", "-n", name, *args], check=True, capture_output=True, text=True).stdout


def ip_view(path: str, link: str) -> tuple[bool, tuple[RawAddress, ...]]:
    """``ip``'s view of a link: admin up, and its addresses as the port reports them."""
    (info,) = json.loads(ip(path, "-json", "address", "show", "dev", link))
    found = []
    for entry in info.get("addr_info", []):
        if entry["family"] not in ("inet", "inet6"):
            continue
        address = ipaddress.ip_address(entry["local"])
        if address.version == 6 and address in ipaddress.ip_network("fe80::/10"):
            continue
        found.append((address.version, int(address), int(entry["prefixlen"])))
    return "UP" in info["flags"], tuple(sorted(found))


def view(path: str, link: str) -> tuple[bool, tuple[RawAddress, ...]]:
    with RouteSocket.open(path) as links:
        return links.link_is_up(link), links.addresses(link)


def test_loopback_up_and_down(space: str) -> None:
    assert view(space, "lo") == ip_view(space, "lo") == (False, ())
    with RouteSocket.open(space) as links:
        links.set_link_up("lo", True)
        links.set_link_up("lo", True)  # idempotent
        assert links.addresses("lo") == ((4, 0x7F000001, 8), (6, 1, 128))
    assert view(space, "lo") == ip_view(space, "lo")
    with RouteSocket.open(space) as links:
        links.set_link_up("lo", False)
    assert view(space, "lo") == ip_view(space, "lo")
    assert not view(space, "lo")[0]


def test_addresses_of_several_families_in_port_order(space: str) -> None:
    ip(space, "link", "add", "cnt-d0", "type", "veth", "peer", "name", "cnt-p0")
    for address in ("10.9.0.7/24", "10.1.0.1/16", "10.1.0.1/24", "2001:db8::5/64", "::ffff:10.0.0.9/120",
                    "fd00::1/128"):
        ip(space, "address", "add", address, "dev", "cnt-d0")
    for link in ("cnt-d0", "cnt-p0"):  # with carrier the kernel adds IPv6 link-local addresses: not reported
        ip(space, "link", "set", link, "up")
    assert "fe80::" in ip(space, "address", "show", "dev", "cnt-d0")
    up, addresses = view(space, "cnt-d0")
    assert (up, addresses) == ip_view(space, "cnt-d0")
    assert [a[0] for a in addresses] == [4, 4, 4, 6, 6, 6]
    assert addresses[:3] == ((4, 0x0A010001, 16), (4, 0x0A010001, 24), (4, 0x0A090007, 24))
    # Addresses of other links in the namespace are not this link's.
    with RouteSocket.open(space) as links:
        links.set_link_up("lo")
        assert links.addresses("lo") == ((4, 0x7F000001, 8), (6, 1, 128))
        links.set_link_up("cnt-d0", False)
        assert not links.link_is_up("cnt-d0")
    assert view(space, "cnt-d0") == ip_view(space, "cnt-d0")


def test_many_addresses_span_several_answers(space: str) -> None:
    ip(space, "link", "add", "cnt-d1", "type", "veth", "peer", "name", "cnt-p1")
    batch = "".join(f"address add 10.77.{i // 250}.{i % 250 + 1}/32 dev cnt-d1\n" for i in range(600))
    subprocess.run(["ip", "-n", os.path.basename(space), "-batch", "-"], input=batch, text=True, check=True)
    assert len(view(space, "cnt-d1")[1]) == 600
    assert view(space, "cnt-d1") == ip_view(space, "cnt-d1")


def test_errors_are_cnicore_errors(space: str) -> None:
    with RouteSocket.open(space) as links:
        with pytest.raises(NotFoundError, match="ENODEV"):
            links.set_link_up("cnt-none", True)
        with pytest.raises(NotFoundError):
            links.link_is_up("cnt-none")
        with pytest.raises(NotFoundError):
            links.addresses("cnt-none")
        assert not links.link_is_up("lo")  # the socket still answers after errors
    with pytest.raises(NamespaceNotFoundError, match=r'failed to Statfs ".*cnt-gone": no such file or directory'):
        RouteSocket.open("/var/run/netns/cnt-gone")
    with pytest.raises(InvalidNetNSError, match=r'^unknown FS magic on "/etc/hostname": [0-9a-f]+$'):
        RouteSocket.open("/etc/hostname")  # a file, but no namespace
    mnt = "/proc/self/ns/mnt"  # a namespace, but not a network namespace: the kernel's EINVAL
    with pytest.raises(InternalError, match=f"^error switching to ns {mnt}: Error switching to ns {mnt}: invalid "
                                            "argument$"):
        RouteSocket.open(mnt)


def test_the_callers_thread_never_changes_namespace_and_nothing_leaks(space: str) -> None:
    before = os.stat("/proc/thread-self/ns/net").st_ino
    descriptors = len(os.listdir("/proc/self/fd"))
    threads = threading.active_count()
    for _ in range(200):
        with RouteSocket.open(space) as links:
            links.link_is_up("lo")
    assert os.stat("/proc/thread-self/ns/net").st_ino == before
    assert len(os.listdir("/proc/self/fd")) == descriptors
    assert threading.active_count() == threads
    # The calling thread's own namespace, read in place.
    with RouteSocket.open(None) as links:
        assert links.link_is_up("lo")


class _ScriptedSocket:
    """Stands in for the kernel's socket: answers every request with the given bytes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def sendto(self, message: bytes, address: object) -> int:
        return len(message)

    def recv(self, size: int) -> bytes:
        return self.answer

    def close(self) -> None:
        pass


def test_a_malformed_answer_is_an_error_not_a_hang() -> None:
    # A header claiming fewer bytes than a header has: nothing more can be read from the buffer.
    answer = struct.pack("=IHHII", 8, 16, 0, 1, 0)
    links = RouteSocket(Rtnl(_ScriptedSocket(answer)))  # type: ignore[arg-type]
    with pytest.raises(InternalError, match="get link lo: malformed netlink message"):
        links.link_is_up("lo")


class _ChangingKernel:
    """Answers like the kernel: the link ``lo`` (index 1, up), and an address dump that the first
    ``interruptions`` times is marked interrupted (NLM_F_DUMP_INTR) and holds nothing."""

    def __init__(self, interruptions: int) -> None:
        self.interruptions = interruptions
        self.dumps = 0
        self._pending: list[bytes] = []

    @staticmethod
    def _message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
        return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body

    def sendto(self, message: bytes, address: object) -> int:
        _length, kind, _flags, seq, _port = struct.unpack_from("=IHHII", message)
        if kind == 18:  # RTM_GETLINK: one RTM_NEWLINK
            self._pending.append(self._message(16, 0, seq, struct.pack("=BxHiII", 0, 0, 1, 1, 0)))
        else:  # RTM_GETADDR dump
            self.dumps += 1
            interrupted = self.dumps <= self.interruptions
            body = b""
            if not interrupted:
                local = struct.pack("=HH", 8, 2) + bytes([127, 0, 0, 1])
                body = self._message(20, 2, seq, struct.pack("=BBBBI", 2, 8, 0, 254, 1) + local)
            done = self._message(3, 2 | (0x10 if interrupted else 0), seq, struct.pack("=i", 0))
            self._pending.append(body + done)
        return len(message)

    def recv(self, size: int) -> bytes:
        return self._pending.pop(0)

    def close(self) -> None:
        pass


def test_an_interrupted_dump_is_asked_for_again() -> None:
    kernel = _ChangingKernel(interruptions=2)
    links = RouteSocket(Rtnl(kernel))  # type: ignore[arg-type]
    assert links.addresses("lo") == ((4, 0x7F000001, 8),)
    assert kernel.dumps == 3
    # One that never settles is an error, not a wrong answer.
    restless = RouteSocket(Rtnl(_ChangingKernel(interruptions=1000)))  # type: ignore[arg-type]
    with pytest.raises(InternalError, match="list addresses of lo: the dump kept changing"):
        restless.addresses("lo")
