"""Fixtures for the plugin tests: installed entry points, throwaway namespaces, the fake kernel file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The suite imports test modules by path; make this folder's helper module importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def plugin_bin(tmp_path: Path) -> Path:
    """Our plugins installed into a temporary CNI_PATH directory."""
    from cnicore.plugins import install_plugins

    directory = tmp_path / "bin"
    install_plugins(directory)
    return directory


@pytest.fixture
def fake_kernel(tmp_path: Path) -> dict[str, str]:
    """Environment for exec'd plugins to share one persisted fake kernel (no root needed)."""
    return {"CNICORE_BACKEND": "fake", "CNICORE_FAKE_STATE": str(tmp_path / "fake-kernel.state")}
