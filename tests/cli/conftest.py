"""Fixtures for the command-line tests: an isolated environment (every directory under tmp_path)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The suite imports test modules by path; make this folder's helper module importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_helpers import CLI


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    """``cnicore`` run in process with its configuration, plugin, cache and data directories in tmp_path."""
    return CLI(tmp_path, capsys)
