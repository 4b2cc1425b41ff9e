"""The pyroute2 backend keeps a socket per namespace, and never keeps a deleted namespace alive for long.

A kept socket holds its namespace: a namespace deleted by its path would live on,
with its links (and the host ends of their veth pairs). The backend drops such
sockets before its next operation; these tests hold it to that, on the kernel.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from backends_support import Namespaces, make_env, real_available

from cnicore import NamespaceNotFoundError

pytestmark = pytest.mark.root


@pytest.fixture
def env(netns: Namespaces) -> Iterator[object]:
    reason = real_available("pyroute2")
    if reason is not None:
        pytest.skip(reason)
    made = make_env("pyroute2", netns)
    yield made
    made.backend.close()  # type: ignore[attr-defined]


def _host_names(env: object) -> list[str]:
    return [link.name for link in env.backend.list_links(env.host)]  # type: ignore[attr-defined]


def test_sockets_are_reused_per_namespace(env: object) -> None:
    b = env.backend  # type: ignore[attr-defined]
    b.list_links(env.host)  # type: ignore[attr-defined]
    b.list_links(env.container)  # type: ignore[attr-defined]
    kept = dict(b._sockets)
    for _ in range(20):
        b.get_link(env.host, "lo")  # type: ignore[attr-defined]
        b.get_link(env.container, "lo")  # type: ignore[attr-defined]
    assert len(b._sockets) == 2
    assert {key: ipr for key, (_path, ipr) in b._sockets.items()} == {key: ipr for key, (_p, ipr) in kept.items()}
    b.close()
    assert not b._sockets
    assert b.get_link(env.container, "lo").name == "lo"  # type: ignore[attr-defined]  # usable after close


def test_a_deleted_namespace_is_let_go_at_the_next_operation(env: object) -> None:
    b = env.backend  # type: ignore[attr-defined]
    pair = b.create_veth(env.container, "eth0", env.host)  # type: ignore[attr-defined]
    path = env.container.path  # type: ignore[attr-defined]
    subprocess.run(["ip", "netns", "delete", os.path.basename(path)], check=True)
    with pytest.raises(NamespaceNotFoundError):
        b.get_link(env.container, "eth0")  # type: ignore[attr-defined]
    # The host end goes with the container's namespace once nothing holds it (the kernel frees it
    # asynchronously): the backend's next operation let its socket go.
    deadline = time.monotonic() + 10
    while pair.host.name in _host_names(env) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pair.host.name not in _host_names(env)
    assert len(b._sockets) == 1
