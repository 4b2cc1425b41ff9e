"""The executed meta plugins' plain pieces: the host's IPv4 routes as /proc shows them, and the route chosen."""

from __future__ import annotations

import subprocess
import sys

import pytest
from plugin_helpers import Namespaces

from cnicore.backends._tools import ProcHost
from cnicore.plugins._portmap import route_device


def test_route_device_takes_the_most_specific_route_with_a_device() -> None:
    routes = [("0.0.0.0/0", "eth0"), ("10.1.0.0/16", "br1"), ("10.1.2.0/24", "br0"), ("10.1.2.0/24", "other"),
              ("10.1.2.3/32", "")]
    assert route_device(routes, "10.1.2.3/24") == "br0"
    assert route_device(routes, "10.1.9.9/24") == "br1"
    assert route_device(routes, "192.0.2.1/24") == "eth0"
    assert route_device(routes[1:], "192.0.2.1/24") is None
    assert route_device(routes, "2001:db8::3/64") is None


@pytest.mark.root
def test_proc_routes_are_the_main_tables_ipv4_routes(netns: Namespaces) -> None:
    # In a namespace of our own: a link with two addresses and a route through it.
    name = netns.add("mpl")
    run = ["ip", "netns", "exec", name]
    for argv in (["ip", "link", "add", "cnt-mpl0", "type", "veth", "peer", "name", "cnt-mpl1"],
                 ["ip", "link", "set", "cnt-mpl1", "up"], ["ip", "link", "set", "cnt-mpl0", "up"],
                 ["ip", "addr", "add", "10.91.2.1/24", "dev", "cnt-mpl0"],
                 ["ip", "route", "add", "10.92.0.0/16", "via", "10.91.2.9"],
                 ["ip", "route", "add", "default", "via", "10.91.2.1"]):
        subprocess.run([*run, *argv], check=True)
    script = "from cnicore.backends._tools import ProcHost; print(sorted(ProcHost().ipv4_routes()))"
    out = subprocess.run([*run, sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted([("10.91.2.0/24", "cnt-mpl0"), ("10.92.0.0/16", "cnt-mpl0"),
                                             ("0.0.0.0/0", "cnt-mpl0")]))


def test_proc_host_reads_this_namespace() -> None:
    assert all(device for _dst, device in ProcHost().ipv4_routes())
