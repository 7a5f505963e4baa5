"""Every bundled snapshot store passes the conformance suite of persistence.testing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import pytest_asyncio

from persistence import SnapshotStoreError
from persistence.journal import MAX_SEQUENCE_NR
from persistence.snapshot import (
    MAX_TIMESTAMP,
    FileSnapshotStore,
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStore,
    SqliteSnapshotStore,
)
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


@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_bundled_store_says_whether_it_was_closed(backend: str, tmp_path: Path) -> None:
    """Whoever is handed a store (the Persistence extension) can refuse a closed one."""
    store = make_store(backend, tmp_path)
    assert store.closed is False  # type: ignore[attr-defined]
    assert await store.load("a", SnapshotSelectionCriteria.latest()) is None
    await store.close()
    assert store.closed is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("save", "message"),
    [
        (
            (SnapshotMetadata("id\udc80", 1), "State", b""),
            "cannot save a snapshot, persistence_id='id\\udc80': the persistence id cannot be "
            "encoded as UTF-8 (surrogates not allowed: '\\udc80' at index 2)",
        ),
        (
            (SnapshotMetadata("a", 3), "State\ud800", b""),
            "cannot save a snapshot, persistence_id='a', sequence_nr=3: the manifest "
            "'State\\ud800' cannot be encoded as UTF-8 (surrogates not allowed: '\\ud800' at "
            "index 5)",
        ),
        (
            (SnapshotMetadata("", 1), "State", b""),
            "cannot save a snapshot: persistence_id must be a non-empty str, not ''",
        ),
        (
            (SnapshotMetadata("a", -1), "State", b""),
            "cannot save a snapshot, persistence_id='a', sequence_nr=-1: sequence_nr must be an "
            f"int from 0 to {MAX_SEQUENCE_NR}",
        ),
        (
            (SnapshotMetadata("a", 1, 1 << 63), "State", b""),
            "cannot save a snapshot, persistence_id='a', sequence_nr=1: timestamp must be an int "
            f"from 0 to {MAX_TIMESTAMP}",
        ),
        (
            (SnapshotMetadata("a", 1), "State", "text"),
            "cannot save a snapshot, persistence_id='a', sequence_nr=1: the manifest must be a "
            "str and the payload bytes",
        ),
    ],
    ids=["id", "manifest", "empty-id", "negative-sequence-nr", "timestamp", "payload-not-bytes"],
)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_bundled_store_refuses_an_unstorable_snapshot_naming_the_problem(
    backend: str, tmp_path: Path, save: tuple[SnapshotMetadata, str, bytes], message: str
) -> None:
    store = make_store(backend, tmp_path)
    try:
        with pytest.raises(SnapshotStoreError) as raised:
            await store.save(*save)
        assert type(raised.value) is SnapshotStoreError
        assert str(raised.value) == message
        assert await store.load("a", SnapshotSelectionCriteria.latest()) is None
    finally:
        await store.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_bundled_store_refuses_to_load_an_id_that_is_not_utf8(
    backend: str, tmp_path: Path
) -> None:
    store = make_store(backend, tmp_path)
    try:
        with pytest.raises(SnapshotStoreError) as raised:
            await store.load("id\udc80", SnapshotSelectionCriteria.latest())
        assert str(raised.value) == (
            "cannot load a snapshot, persistence_id='id\\udc80': the persistence id cannot be "
            "encoded as UTF-8 (surrogates not allowed: '\\udc80' at index 2)"
        )
    finally:
        await store.close()
