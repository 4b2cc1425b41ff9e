"""Thousands of operations leave nothing behind: no links, no namespaces, no file descriptors.

Creates and deletes veth pairs between two throwaway namespaces through each real
backend: 1,000 through netlink; 200 through iproute2 (two processes per
operation) and 100 through pyroute2 (an event loop per socket), for which 1,000
would be too slow for the suite's budget. Open descriptors are counted in /proc/self/fd
before and after.
"""

from __future__ import annotations

import gc
import os
import subprocess
import threading

import pytest
from backends_support import Namespaces, make_env, real_available

pytestmark = [pytest.mark.root, pytest.mark.slow]

ROUNDS = {"netlink": 1000, "iproute2": 200, "pyroute2": 100}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("kind", sorted(ROUNDS))
def test_create_and_delete_veths_leaks_nothing(kind: str, netns: Namespaces) -> None:
    reason = real_available(kind)
    if reason is not None:
        pytest.skip(reason)
    env = make_env(kind, netns)
    b = env.backend
    # Warm up: lazily opened resources (module-level ones; the sockets a backend keeps per namespace) are not leaks.
    b.list_links(env.host)
    b.list_links(env.container)
    gc.collect()  # what earlier tests left for the collector is not this backend's
    before = open_fds()
    for i in range(ROUNDS[kind]):
        name = f"eth{i % 7}"
        pair = b.create_veth(env.container, name, env.host)
        b.delete_link(env.host, pair.host.name)
    assert open_fds() == before
    assert [link.name for link in b.list_links(env.container)] == ["lo"]
    assert [link.name for link in b.list_links(env.host)] == ["lo"]
    assert not any(t.name.startswith("netns ") for t in threading.enumerate())


def test_namespaces_are_removed(netns: Namespaces) -> None:
    """The fixture's namespaces go away, and with them everything inside."""
    path = netns.add()
    name = os.path.basename(path)
    netns.cleanup()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert name not in listed
    assert not os.path.exists(path)
