"""Helpers shared by the test suite (importable as ``support``): root and reference-plugin gates, namespaces."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

REFERENCE_PLUGIN_DIR = Path(os.environ.get("CNICORE_REFERENCE_PLUGINS", "/usr/lib/cni"))


def is_root() -> bool:
    return os.geteuid() == 0


requires_root = pytest.mark.skipif(not is_root(), reason="needs root (network namespaces and links)")


def reference_plugin(name: str) -> Path:
    """Path of a reference Go plugin, or skip the test with the reason."""
    path = REFERENCE_PLUGIN_DIR / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(f"reference plugin {path} not installed (Debian package containernetworking-plugins)")
    return path


def require_tool(name: str) -> str:
    """Path of a system tool, or skip the test with the reason."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed")
    return found


class Namespaces:
    """Throwaway kernel namespaces named ``cnt-<tag>-<random>``; :meth:`remove_all` deletes them.

    A namespace whose tag starts with ``host`` plays the host: its ``lo`` is up, as a real host's is.
    """

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, tag: str) -> str:
        name = f"cnt-{tag}-{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.names.append(name)
        if tag.startswith("host"):
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        return name

    def remove_all(self) -> None:
        for name in reversed(self.names):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        self.names.clear()
