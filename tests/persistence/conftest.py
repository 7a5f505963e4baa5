"""Fixtures for the persistent-actor tests: every test runs against the in-memory journal and
the SQLite journal (with a matching snapshot store), wrapped for fault injection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actorsys import ActorSystem
from persistence import Persistence
from persistence.journal import InMemoryJournal, SqliteJournal
from persistence.snapshot import InMemorySnapshotStore, SqliteSnapshotStore
from tests.persistence._actors import serializer
from tests.persistence._journals import ControlledJournal, ControlledSnapshotStore


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which journal (and snapshot store) the test runs against."""
    kind: str = request.param
    return kind


@pytest.fixture
def journal(backend: str, tmp_path: Path) -> ControlledJournal:
    """The journal of the test's system (closed by the system's shutdown)."""
    if backend == "memory":
        return ControlledJournal(InMemoryJournal())
    return ControlledJournal(SqliteJournal(tmp_path / "journal.db"))


@pytest.fixture
def snapshot_store(backend: str, tmp_path: Path) -> ControlledSnapshotStore:
    """The snapshot store of the test's system (closed by the system's shutdown)."""
    if backend == "memory":
        return ControlledSnapshotStore(InMemorySnapshotStore())
    return ControlledSnapshotStore(SqliteSnapshotStore(tmp_path / "journal.db"))


@pytest.fixture
async def system(
    journal: ControlledJournal, snapshot_store: ControlledSnapshotStore
) -> AsyncIterator[ActorSystem]:
    """A started system with persistence over the test's journal and snapshot store."""
    persistence = Persistence(journal, snapshot_store, serializer=serializer)
    async with ActorSystem("test", extensions=[persistence]) as system:
        try:
            yield system
        finally:
            journal.release_writes()
            journal.release_replays()
