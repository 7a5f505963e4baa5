"""The PostgreSQL snapshot store passes the snapshot store conformance suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import pytest
import pytest_asyncio

from persistence import SnapshotStoreError
from persistence.snapshot import (
    PostgresSnapshotStore,
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStore,
)
from persistence.testing import SnapshotStoreConformance
from persistence.testing._snapshot_suite import ReopenStore


class TestPostgresSnapshotStore(SnapshotStoreConformance):
    @pytest_asyncio.fixture
    async def snapshot_store(
        self, postgres_dsn: str, pg_schema: str
    ) -> AsyncIterator[SnapshotStore]:
        store = PostgresSnapshotStore(postgres_dsn, schema=pg_schema)
        try:
            yield store
        finally:
            await store.close()

    @pytest.fixture
    def reopen(self, postgres_dsn: str, pg_schema: str) -> ReopenStore:
        return partial(PostgresSnapshotStore, postgres_dsn, schema=pg_schema)


async def test_a_snapshot_holding_a_nul_character_is_refused_naming_the_field(
    postgres_dsn: str, pg_schema: str
) -> None:
    store = PostgresSnapshotStore(postgres_dsn, schema=pg_schema)
    try:
        with pytest.raises(SnapshotStoreError) as raised:
            await store.save(SnapshotMetadata("a", 1), "St\x00ate", b"")
        assert str(raised.value) == (
            "cannot save a snapshot, persistence_id='a': the manifest 'St\\x00ate' holds a NUL "
            "character, which PostgreSQL cannot store"
        )
        assert await store.load("a", SnapshotSelectionCriteria.latest()) is None
    finally:
        await store.close()
