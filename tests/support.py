"""Helpers shared by the test suite (importable as ``support``): root and reference-plugin gates."""

from __future__ import annotations

import os
import shutil
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
