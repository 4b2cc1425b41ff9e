"""Real backends in a process that runs other threads: no thread changes namespace, results stay right."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from backends_support import REAL_BACKENDS, Namespaces, make_env, real_available

pytestmark = pytest.mark.root


def namespace_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


@pytest.mark.parametrize("kind", REAL_BACKENDS)
def test_concurrent_operations(kind: str, netns: Namespaces) -> None:
    reason = real_available(kind)
    if reason is not None:
        pytest.skip(reason)
    env = make_env(kind, netns)
    b = env.backend
    home = namespace_inode()

    def work(i: int) -> tuple[int, str]:
        pair = b.create_veth(env.container, f"eth{i}", env.host)
        b.set_link_up(env.container, f"eth{i}")
        # The worker thread itself never left its namespace.
        return namespace_inode(), pair.host.name

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(8)))
    assert {inode for inode, _ in results} == {home}
    assert namespace_inode() == home
    container_names = sorted(link.name for link in b.list_links(env.container))
    assert container_names == ["eth0", "eth1", "eth2", "eth3", "eth4", "eth5", "eth6", "eth7", "lo"]
    host_names = {link.name for link in b.list_links(env.host)}
    assert host_names == {"lo", *(name for _, name in results)}
    # Nothing landed in the test process's own namespace.
    assert not any(name in host_names for name in os.listdir("/sys/class/net") if name != "lo")
