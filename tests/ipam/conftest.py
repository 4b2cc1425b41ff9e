"""Fixtures for the IPAM tests: every store-level test runs against each store implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cnicore.stores import FileStore, IPStore, MemoryStore

StoreFactory = Callable[[], IPStore]


@pytest.fixture(params=["memory", "file", "file-nowatch"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of fresh stores of one kind (closed after the test)."""
    opened: list[IPStore] = []
    counter = [0]

    def factory() -> IPStore:
        counter[0] += 1
        store: IPStore
        if request.param == "memory":
            store = MemoryStore()
        else:
            store = FileStore(tmp_path, f"net{counter[0]}", watch=request.param == "file", lock_timeout=10)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
