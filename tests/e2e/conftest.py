"""Fixtures for the end-to-end suite: podman on throwaway hosts, one with our plugins only, one with the
reference plugins only. Root, podman (``make sysdeps`` installs it) and a machine where podman can run
containers are needed; otherwise every test here skips and says which of these is missing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The suite imports test modules by path; make this folder's helper module importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from podman_host import PodmanHost, PodmanRefused, missing_tools
from support import REFERENCE_PLUGIN_DIR, is_root

_REFERENCE_NEEDED = ("bridge", "host-local", "loopback", "portmap", "firewall", "tuning")


def _why_not() -> str | None:
    if not is_root():
        return "needs root (podman's CNI networks, namespaces)"
    missing = missing_tools()
    if missing:
        return (f"{', '.join(missing)} not installed (as root, make sysdeps installs podman runc conmon "
                "busybox-static fuse-overlayfs)")
    absent = [name for name in _REFERENCE_NEEDED if not (REFERENCE_PLUGIN_DIR / name).is_file()]
    if absent:
        return f"reference plugins {', '.join(absent)} not in {REFERENCE_PLUGIN_DIR} (containernetworking-plugins)"
    return None


def _host(label: str, plugin_dirs: list[Path], *, hide: Path | None = None) -> Iterator[PodmanHost]:
    reason = _why_not()
    if reason is not None:
        pytest.skip(reason)
    host = PodmanHost(label, plugin_dirs, hide=hide)
    try:
        host.start()
    except PodmanRefused as exc:
        host.close()
        pytest.skip(f"podman cannot run containers here: {exc}")
    except BaseException:
        host.close()
        raise
    try:
        yield host
    finally:
        host.close()


@pytest.fixture(scope="session")
def our_plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our plugins, installed as ``cnicore install-plugins`` installs them."""
    from cnicore.plugins import install_plugins

    directory = tmp_path_factory.mktemp("cnicore-plugins")
    install_plugins(directory)
    return directory


@pytest.fixture(scope="session")
def ours(our_plugin_dir: Path) -> Iterator[PodmanHost]:
    """podman with our plugins only: ``cni_plugin_dirs`` is our directory alone, so the default chain (bridge,
    portmap, firewall, tuning; host-local and loopback) runs on cnicore with no reference plugin to fall back on.
    The reference's directory is hidden in that host (an empty tmpfs over it, see ``PodmanHost``): no reference
    plugin can run there, except where a scenario switches to ``hidden_copy`` on purpose (``mixed_use``)."""
    yield from _host("ours", [our_plugin_dir], hide=REFERENCE_PLUGIN_DIR)


@pytest.fixture(scope="session")
def reference() -> Iterator[PodmanHost]:
    """podman with the reference plugins only."""
    yield from _host("ref", [REFERENCE_PLUGIN_DIR])
