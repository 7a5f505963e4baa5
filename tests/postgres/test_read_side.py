"""The read side of the PostgreSQL journal: gap-free tag offsets under concurrent writers, and
live queries woken by NOTIFY."""

from __future__ import annotations

import asyncio

from persistence.journal import PostgresJournal
from persistence.query import EventQueries
from tests._query_support import Collector, record, serializer, write


async def test_a_live_tag_query_sees_every_event_of_concurrent_writers_once_in_offset_order(
    postgres_dsn: str, pg_schema: str
) -> None:
    """Three writers (three pools, as three processes) commit concurrently while the query
    follows: an event committed late must not be skipped by an offset that moved past it."""
    writers = [PostgresJournal(postgres_dsn, schema=pg_schema) for _ in range(3)]
    reader = PostgresJournal(postgres_dsn, schema=pg_schema, page_size=7)
    collector = Collector(EventQueries(reader, serializer, poll_interval=0.01).events_by_tag("t"))
    try:

        async def writer(journal: PostgresJournal, w: int) -> None:
            for seq in range(1, 21):
                await asyncio.gather(
                    *(write(journal, record(f"w{w}-{i}", seq, "t")) for i in range(10))
                )

        await asyncio.gather(*(writer(journal, w) for w, journal in enumerate(writers)))
        seen = await collector.wait_for(600)
        offsets = [envelope.offset for envelope in seen]
        assert offsets == sorted(set(offsets))
        assert len(seen) == 600
        assert {(e.persistence_id, e.sequence_nr) for e in seen} == {
            (f"w{w}-{i}", seq) for w in range(3) for i in range(10) for seq in range(1, 21)
        }
    finally:
        await collector.cancel()
        for journal in (*writers, reader):
            await journal.close()


async def test_a_live_query_wakes_on_another_processs_write_without_waiting_to_poll(
    postgres_dsn: str, pg_schema: str
) -> None:
    reader = PostgresJournal(postgres_dsn, schema=pg_schema)
    other = PostgresJournal(postgres_dsn, schema=pg_schema)
    queries = EventQueries(reader, serializer, poll_interval=3600)  # polling would hang
    by_tag = Collector(queries.events_by_tag("t"))
    by_id = Collector(queries.events_by_persistence_id("a"))
    try:
        await write(other, record("a", 1, "t"))
        assert [e.sequence_nr for e in await by_tag.wait_for(1)] == [1]
        await write(other, record("a", 2, "t"))
        assert [e.sequence_nr for e in await by_tag.wait_for(2)] == [1, 2]
        assert [e.sequence_nr for e in await by_id.wait_for(2)] == [1, 2]
    finally:
        await by_tag.cancel()
        await by_id.cancel()
        await reader.close()
        await other.close()
