"""Every bundled snapshot store passes the conformance suite of persistence.testing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import pytest_asyncio

from persistence.snapshot import FileSnapshotStore, SnapshotStore, SqliteSnapshotStore
from persistence.testing import InMemorySnapshotStore, SnapshotStoreConformance
from persistence.testing._snapshot_suite import ReopenStore

BACKENDS = ["memory", "sqlite", "file"]


def make_store(backend: str, directory: Path) -> SnapshotStore:
    if backend == "memory":
        return InMemorySnapshotStore()
    if backend == "sqlite":
        return SqliteSnapshotStore(directory / "snapshots.db")
    return FileSnapshotStore(directory / "snapshots")


class TestSnapshotStoreConformance(SnapshotStoreConformance):
    @pytest.fixture(params=BACKENDS)
    def backend(self, request: pytest.FixtureRequest) -> str:
        backend: str = request.param
        return backend

    @pytest_asyncio.fixture
    async def snapshot_store(self, backend: str, tmp_path: Path) -> AsyncIterator[SnapshotStore]:
        store = make_store(backend, tmp_path)
        try:
            yield store
        finally:
            await store.close()

    @pytest.fixture
    def reopen(self, backend: str, tmp_path: Path) -> ReopenStore | None:
        return None if backend == "memory" else partial(make_store, backend, tmp_path)
