"""System shutdown flushes the writes in flight before it closes the journal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actorsys import ActorSystem
from actorsys.testing import TestProbe
from persistence import Persistence
from persistence.journal import SqliteJournal
from tests.persistence._actors import (
    Append,
    Appended,
    ItemLog,
    Recovered,
    serializer,
    stored_events,
)
from tests.persistence._journals import ControlledJournal


async def reopened(path: Path, persistence_id: str) -> list[tuple[int, Any]]:
    """The events stored in the SQLite file, read by a fresh journal."""
    journal = SqliteJournal(path)
    try:
        return await stored_events(journal, persistence_id)
    finally:
        await journal.close()


async def test_shutdown_waits_for_a_write_in_flight_and_it_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = ControlledJournal(SqliteJournal(path))
    async with ActorSystem(
        "flushing", extensions=[Persistence(journal, serializer=serializer)]
    ) as system:
        probe = TestProbe(system)
        ref = system.spawn(lambda: ItemLog("in-flight", probe.ref))
        await probe.expect_message_type(Recovered)
        journal.hold_writes()
        probe.send(ref, Append("last-words"))
        await journal.wait_for_write_calls(1)

        shutdown = asyncio.ensure_future(system.shutdown())
        try:
            await asyncio.sleep(0.02)
            assert not shutdown.done()  # held by the write in flight
        finally:
            journal.release_writes()
        await shutdown

    assert await reopened(path, "in-flight") == [(1, Appended("last-words"))]


@dataclass(frozen=True)
class Burst:
    count: int


class Bursting(ItemLog):
    """Persists ``count`` events with ``persist_async`` in one command and says so."""

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, Burst):
            for n in range(command.count):
                self.persist_async(Appended(str(n)))
            self.observer.tell("issued")
            return None
        return super().receive_command(command)


async def test_events_persisted_just_before_shutdown_are_stored(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    async with ActorSystem(
        "flushing", extensions=[Persistence(SqliteJournal(path), serializer=serializer)]
    ) as system:
        probe = TestProbe(system)
        ref = system.spawn(lambda: Bursting("burst", probe.ref))
        await probe.expect_message_type(Recovered)
        probe.send(ref, Burst(50))
        await probe.expect_message("issued")
        # leaving the block shuts the system down at once

    assert await reopened(path, "burst") == [(n + 1, Appended(str(n))) for n in range(50)]
