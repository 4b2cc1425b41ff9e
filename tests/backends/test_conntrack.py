"""backends._conntrack against the kernel: flows tracked in a throwaway namespace, listed and deleted by filter."""

from __future__ import annotations

import socket
import subprocess

import pytest
from backends_support import Namespaces
from support import send_tracked_flows

from backends._conntrack import delete_entries, list_entries
from cnicore import NamespaceNotFoundError

pytestmark = pytest.mark.root


def _tracking(netns: Namespaces) -> str:
    """A namespace with ``lo`` up whose locally sent packets are tracked (a conntrack rule registers the hooks)."""
    path = netns.add()
    name = path.rsplit("/", 1)[1]
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    for tool in ("iptables", "ip6tables"):
        subprocess.run(["ip", "netns", "exec", name, tool, "-w", "-A", "OUTPUT", "-m", "conntrack", "--ctstate",
                        "NEW", "-j", "ACCEPT"], check=True, capture_output=True)
    return path


def _ports(flows: list[tuple[int, str, str, int | None, int | None]]) -> list[tuple[int, str, int | None]]:
    return sorted((proto, dst, dport) for proto, _src, dst, _sport, dport in flows)


def test_deletes_only_the_protocol_and_ports_asked_for(netns: Namespaces) -> None:
    path = _tracking(netns)
    send_tracked_flows(path.rsplit("/", 1)[1], (5001, 5002), 5001)
    udp, tcp = socket.IPPROTO_UDP, socket.IPPROTO_TCP
    assert _ports(list_entries(4, netns=path)) == [(tcp, "127.0.0.1", 5001), (udp, "127.0.0.1", 5001),
                                                   (udp, "127.0.0.1", 5002)]
    assert _ports(list_entries(6, netns=path)) == [(tcp, "::1", 5001), (udp, "::1", 5001), (udp, "::1", 5002)]
    assert delete_entries(4, udp, [5001], netns=path) == 1
    assert _ports(list_entries(4, netns=path)) == [(tcp, "127.0.0.1", 5001), (udp, "127.0.0.1", 5002)]
    # The other family's table is its own.
    assert len(list_entries(6, netns=path)) == 3
    assert delete_entries(6, udp, {5001, 5002, 7}, netns=path) == 2
    assert _ports(list_entries(6, netns=path)) == [(tcp, "::1", 5001)]
    # Deleting again finds nothing; no port asked for deletes nothing.
    assert delete_entries(4, udp, [5001], netns=path) == 0
    assert delete_entries(4, tcp, [], netns=path) == 0
    assert _ports(list_entries(4, netns=path)) == [(tcp, "127.0.0.1", 5001), (udp, "127.0.0.1", 5002)]


def test_a_missing_namespace_is_named(netns: Namespaces) -> None:
    with pytest.raises(NamespaceNotFoundError):
        delete_entries(4, socket.IPPROTO_UDP, [1], netns="/run/netns/cnt-no-such-namespace")
