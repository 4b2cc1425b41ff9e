"""Fixtures for the runtime tests: directories, test plugins, our installed plugins, the fake kernel."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The suite imports test modules by path; make this folder's helper module importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from runtime_helpers import install_test_plugins

from cnicore.backends import FakeFirewall, FakeLinkBackend
from cnicore.runtime import Runtime


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    """config_dir, bin, cache and data folders under tmp_path (bin holds the test plugins)."""
    found = {name: tmp_path / name for name in ("net.d", "bin", "cache", "data")}
    found["net.d"].mkdir()
    install_test_plugins(found["bin"])
    return found


@pytest.fixture
def fake() -> FakeLinkBackend:
    """An in-memory kernel with the namespaces the tests use."""
    backend = FakeLinkBackend()
    for name in ("a", "b", "c"):
        backend.add_namespace(f"/var/run/netns/cnt-{name}")
    return backend


@pytest.fixture
def runtime(dirs: dict[str, Path], fake: FakeLinkBackend) -> Iterator[Runtime]:
    """A runtime over the fake kernel: our plugin types in process, test plugins executed."""
    rt = Runtime(config_dir=dirs["net.d"], plugin_path=[str(dirs["bin"])], cache_dir=dirs["cache"], backend=fake,
                 firewall=FakeFirewall(), timeout=30)
    try:
        yield rt
    finally:
        rt.close()
