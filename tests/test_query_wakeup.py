"""Live queries on the in-process journals wake when events are stored, not at the next poll."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from persistence.journal import InMemoryJournal, SqliteJournal
from persistence.query import EventQueries
from tests._query_support import Collector, record, serializer, write


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_live_queries_wake_on_a_write_although_their_poll_interval_is_an_hour(
    kind: str, tmp_path: Path
) -> None:
    journal: Any = InMemoryJournal() if kind == "memory" else SqliteJournal(tmp_path / "j.db")
    queries = EventQueries(journal, serializer, poll_interval=3600)
    collectors = [
        Collector(queries.events_by_tag("t")),
        Collector(queries.all_events()),
        Collector(queries.events_by_persistence_id("a")),
    ]
    try:
        for seq in (1, 2, 3):
            await write(journal, record("a", seq, "t"))
            for collector in collectors:
                assert [e.sequence_nr for e in await collector.wait_for(seq)] == list(
                    range(1, seq + 1)
                )
    finally:
        for collector in collectors:
            await collector.cancel()
        await journal.close()
