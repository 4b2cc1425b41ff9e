"""Fixtures for the backend contract: each backend with a throwaway "host" and "container" namespace.

Real backends need root: they run in namespaces named ``cnt-<random>`` that the
fixture creates with ``ip netns add`` and always removes (even when the test
fails), so nothing touches the machine's own interfaces. The fake gets namespaces
at the same paths in its model.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The suite imports test modules by path; make this folder's helper module importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends_support import BACKENDS, Env, Namespaces, make_env, real_available
from support import is_root


@pytest.fixture
def netns() -> Iterator[Namespaces]:
    """Make throwaway kernel namespaces; all removed afterwards."""
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    spaces = Namespaces()
    try:
        yield spaces
    finally:
        spaces.cleanup()


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    """Each backend in turn (real ones skip with the reason when they cannot run)."""
    kind = request.param
    if kind == "fake":
        yield make_env(kind, None)
        return
    reason = real_available(kind)
    if reason is not None:
        pytest.skip(reason)
    spaces = Namespaces()
    try:
        yield make_env(kind, spaces)
    finally:
        spaces.cleanup()


@pytest.fixture
def fake_env() -> Env:
    """The fake, for comparing a real backend's observations with the model's."""
    return make_env("fake", None)
