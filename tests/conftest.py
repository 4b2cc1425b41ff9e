"""Suite-wide settings and fixtures: Hypothesis profiles, throwaway namespaces. Shared helpers live in
tests/support.py."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from support import HYPOTHESIS_PROFILE, Namespaces, is_root, require_tool

# "ci" keeps the whole suite well inside its time budget on a 2-core machine;
# HYPOTHESIS_PROFILE=thorough digs deeper when run by hand. Every property and state machine takes its
# example count from the loaded profile (support.examples scales the costly ones down under "ci" only).
settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
# `make mutate` runs the fast tests once per mutant: few examples, the same ones every run (so a mutant's verdict
# does not depend on the draw), and no example database carried from one mutant to the next.
settings.register_profile("mutate", max_examples=20, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(HYPOTHESIS_PROFILE)

if HYPOTHESIS_PROFILE == "mutate":
    # mutmut's trampolines track calls in a context variable. A cyclic collection that starts inside
    # ContextVar.set and runs a store's finalizer (Python code that goes through trampolines too) leaves that
    # variable corrupted (LookupError, or a crash). So `make mutate` collects between tests only.
    gc.disable()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(item: pytest.Item) -> None:
        gc.collect()


@pytest.fixture
def netns() -> Iterator[Namespaces]:
    """Kernel namespaces ``cnt-*`` created on demand, always removed afterwards (root only)."""
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    require_tool("ip")
    spaces = Namespaces()
    try:
        yield spaces
    finally:
        spaces.remove_all()
