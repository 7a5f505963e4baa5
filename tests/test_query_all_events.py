"""The all-events query (the journal's notification log): every persistence id, in offset
order, on every journal, as a current and a live query and as a projection's source."""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from persistence import JournalClosedError
from persistence.journal import FileJournal, TaggedRecord
from persistence.query import EventQueries, InMemoryOffsetStore, Projection
from tests import _query_support as support
from tests._query_support import (
    Collector,
    Recorder,
    collect,
    envelope,
    record,
    serializer,
    write,
)

open_journal = support.open_journal
journal = support.journal
queries = support.queries


async def stored(journal: Any, after: int = 0, max_count: int | None = None) -> list[Any]:
    """``(ordering, persistence_id, sequence_nr)`` of what ``all_events`` yields."""
    pages = journal.all_events(after) if max_count is None else journal.all_events(after, max_count)
    found: list[TaggedRecord] = [tagged async for page in pages for tagged in page]
    return [(t.ordering, t.record.persistence_id, t.record.sequence_nr) for t in found]


async def test_all_events_yields_every_id_in_ordering_order(journal: Any) -> None:
    await write(journal, record("a", 1, "t"), record("a", 2))
    await write(journal, record("b", 1))
    await write(journal, record("a", 3, "u"))

    assert await stored(journal) == [(1, "a", 1), (2, "a", 2), (3, "b", 1), (4, "a", 3)]
    [first, *_] = [t async for page in journal.all_events() for t in page]
    assert first == TaggedRecord(1, record("a", 1, "t"))


async def test_all_events_offsets_are_exclusive_and_max_count_bounds_the_result(
    journal: Any,
) -> None:
    for seq in range(1, 6):
        await write(journal, record("a", seq))

    assert await stored(journal, after=2) == [(3, "a", 3), (4, "a", 4), (5, "a", 5)]
    assert await stored(journal, after=1, max_count=2) == [(2, "a", 2), (3, "a", 3)]
    assert await stored(journal, after=5) == []


async def test_all_events_leaves_deleted_events_out_and_keeps_the_other_orderings(
    journal: Any,
) -> None:
    await write(journal, record("a", 1), record("a", 2))
    await write(journal, record("b", 1))
    await write(journal, record("a", 3))
    await journal.delete_to("a", 2)

    assert await stored(journal) == [(3, "b", 1), (4, "a", 3)]


async def test_all_events_streams_more_events_than_a_page(journal: Any) -> None:
    for first in range(1, 2500, 500):
        await write(journal, *(record("a", seq) for seq in range(first, first + 500)))
    await write(journal, record("b", 1))

    found = await stored(journal, after=10)
    assert len(found) == 2491
    assert found[0] == (11, "a", 11)
    assert found[-1] == (2501, "b", 1)


async def test_all_events_on_a_closed_journal_raises_journal_closed_error(journal: Any) -> None:
    await write(journal, record("a", 1))
    await journal.close()
    with pytest.raises(
        JournalClosedError,
        match=r"^cannot query all events: .*is closed; create a new instance to use it again$",
    ):
        await stored(journal)


async def test_the_file_journal_finds_all_events_after_reopening_and_across_segments(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal"
    journal = FileJournal(path, segment_size=300)  # a few records per segment
    try:
        for seq in range(1, 5):
            await write(journal, record("a", seq))
            await write(journal, record("b", seq))
        await journal.delete_to("a", 1)  # ordering 1
        assert len(await stored(journal)) == 7
        await write(journal, record("late", 1))  # written after the first scan
        assert (await stored(journal, after=8)) == [(9, "late", 1)]
    finally:
        await journal.close()
    assert len([p for p in path.iterdir() if p.suffix == ".log"]) > 2

    reopened = FileJournal(path, segment_size=300)
    try:
        found = await stored(reopened)
    finally:
        await reopened.close()
    assert found[:3] == [(2, "b", 1), (3, "a", 2), (4, "b", 2)]
    assert [ordering for ordering, _, _ in found] == [2, 3, 4, 5, 6, 7, 8, 9]


async def test_current_all_events_decodes_every_event_up_to_the_end_of_the_call(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1, "t"), record("a", 2))
    await write(journal, record("b", 1))

    async with aclosing(queries.current_all_events(offset=1)) as events:
        first = await anext(events)
        await write(journal, record("c", 1))  # stored after the query started: not included
        rest = await collect(events)

    assert [first, *rest] == [envelope(2, "a", 2), envelope(3, "b", 1)]
    assert await collect(queries.current_all_events(3)) == [envelope(4, "c", 1)]


async def test_all_events_follows_events_of_new_ids_as_they_are_stored(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1))
    collector = Collector(queries.all_events())
    await collector.wait_for(1)
    await write(journal, record("b", 1))
    await write(journal, record("a", 2, "t"))
    found = await collector.wait_for(3)
    await collector.cancel()

    assert found == [envelope(1, "a", 1), envelope(2, "b", 1), envelope(3, "a", 2, "t")]


async def test_a_projection_without_a_tag_handles_every_event(
    journal: Any, queries: EventQueries
) -> None:
    store = InMemoryOffsetStore()
    handler = Recorder()
    await write(journal, record("a", 1, "t"), record("a", 2))
    projection = Projection("everything", queries, None, handler, store)
    assert repr(projection) == "<Projection 'everything' all events offset=0 stopped>"

    async with projection:
        await projection.caught_up()
        await write(journal, record("b", 1))
        await projection.caught_up()

    assert handler.offsets == [1, 2, 3]
    assert await store.load("everything") == 3
    assert serializer.is_registered(type(handler.handled[0].event))
