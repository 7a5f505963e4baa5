"""The read side: current and live queries over every journal, and resumable projections."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import persistence.query
from persistence import JournalClosedError, PersistenceConfigError, SerializationError
from persistence.journal import Journal, PersistentRecord, ReadJournal
from persistence.journal._memory import InMemoryJournal
from persistence.journal._sqlite import SqliteJournal
from persistence.query import (
    EventEnvelope,
    EventQueries,
    InMemoryOffsetStore,
    OffsetStore,
    OffsetStoreError,
    Projection,
    ProjectionStoppedError,
    SqliteOffsetStore,
)
from persistence.serialization import Serializer
from tests import _query_support as support
from tests._query_support import (
    POLL,
    Collector,
    Deposited,
    JournalOnly,
    Recorder,
    Withdrawn,
    collect,
    envelope,
    only_this_task_runs,
    record,
    serializer,
    wait_until,
    write,
)

open_journal = support.open_journal
journal = support.journal
queries = support.queries


# -- the public face ---------------------------------------------------------------------------


def test_the_package_exports_exactly_its_public_names_sorted() -> None:
    assert persistence.query.__all__ == [
        "EventEnvelope",
        "EventQueries",
        "Handler",
        "HandlerRecovery",
        "InMemoryOffsetStore",
        "OffsetStore",
        "OffsetStoreError",
        "Projection",
        "ProjectionStoppedError",
        "SqliteOffsetStore",
    ]


def test_offset_stores_implement_the_offset_store_protocol(tmp_path: Path) -> None:
    assert isinstance(InMemoryOffsetStore(), OffsetStore)
    assert isinstance(SqliteOffsetStore(tmp_path / "offsets.db"), OffsetStore)


def test_poll_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^poll_interval must be positive seconds, got 0$"):
        EventQueries(InMemoryJournal(), serializer, poll_interval=0)


# -- current queries by persistence id ---------------------------------------------------------


async def test_current_events_by_persistence_id_yields_decoded_events_in_sequence_order(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1, "t"), record("a", 2))
    await write(journal, record("b", 1, "t"))
    await write(journal, record("a", 3, "t", "u"))

    assert await collect(queries.current_events_by_persistence_id("a")) == [
        envelope(1, "a", 1, "t"),
        envelope(2, "a", 2),
        envelope(3, "a", 3, "t", "u"),
    ]


async def test_current_events_by_persistence_id_respects_inclusive_bounds(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, *(record("a", seq) for seq in range(1, 6)))

    found = await collect(queries.current_events_by_persistence_id("a", 2, 4))
    assert [e.sequence_nr for e in found] == [2, 3, 4]
    assert await collect(queries.current_events_by_persistence_id("a", 6)) == []
    assert await collect(queries.current_events_by_persistence_id("unknown")) == []


async def test_current_events_by_persistence_id_skips_deleted_events(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, *(record("a", seq) for seq in range(1, 5)))
    await journal.delete_to("a", 2)

    found = await collect(queries.current_events_by_persistence_id("a"))
    assert [e.sequence_nr for e in found] == [3, 4]


async def test_current_events_by_persistence_id_ends_at_the_highest_number_of_the_call(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1), record("a", 2))

    async with aclosing(queries.current_events_by_persistence_id("a")) as events:
        first = await anext(events)
        await write(journal, record("a", 3))
        rest = [e async for e in events]

    assert [first.sequence_nr] + [e.sequence_nr for e in rest] == [1, 2]


# -- current queries by tag --------------------------------------------------------------------


async def test_current_events_by_tag_yields_tagged_events_of_all_ids_in_journal_order(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1, "t"))  # ordering 1
    await write(journal, record("b", 1))  # 2, untagged
    await write(journal, record("a", 2, "t", "u"), record("a", 3))  # 3, 4
    await write(journal, record("b", 2, "t"))  # 5

    assert await collect(queries.current_events_by_tag("t")) == [
        envelope(1, "a", 1, "t"),
        envelope(3, "a", 2, "t", "u"),
        envelope(5, "b", 2, "t"),
    ]
    assert await collect(queries.current_events_by_tag("u")) == [envelope(3, "a", 2, "t", "u")]
    assert await collect(queries.current_events_by_tag("unknown")) == []


async def test_tag_offsets_are_exclusive(journal: Any, queries: EventQueries) -> None:
    for seq in range(1, 5):
        await write(journal, record("a", seq, "t"))

    found = await collect(queries.current_events_by_tag("t", offset=2))
    assert [e.offset for e in found] == [3, 4]
    assert await collect(queries.current_events_by_tag("t", offset=4)) == []


async def test_current_events_by_tag_ends_at_the_journal_end_of_the_call(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1, "t"), record("a", 2, "t"))

    async with aclosing(queries.current_events_by_tag("t")) as events:
        first = await anext(events)
        await write(journal, record("b", 1, "t"))
        rest = [e async for e in events]

    assert [first.offset] + [e.offset for e in rest] == [1, 2]


async def test_queries_stream_histories_longer_than_a_page(
    journal: Any, queries: EventQueries
) -> None:
    for first in range(1, 2500, 500):
        await write(journal, *(record("a", seq, "t") for seq in range(first, first + 500)))

    by_tag = await collect(queries.current_events_by_tag("t", offset=10))
    by_id = await collect(queries.current_events_by_persistence_id("a", 2, 2400))

    assert [e.offset for e in by_tag] == list(range(11, 2501))
    assert [e.sequence_nr for e in by_id] == list(range(2, 2401))


async def test_a_negative_tag_offset_is_an_error(queries: EventQueries) -> None:
    with pytest.raises(ValueError, match=r"^offset must be 0 or a journal ordering, got -1$"):
        queries.current_events_by_tag("t", offset=-1)


async def test_an_event_split_by_upcasters_yields_one_envelope_per_event_with_one_offset(
    journal: Any,
) -> None:
    @dataclass(frozen=True)
    class Moved:  # the old form: one event for both accounts
        source: str
        target: str
        amount: int

    old = Serializer()
    old.register(Moved, "Moved")
    manifest, payload = old.encode(Moved("a", "b", 5))
    await write(journal, PersistentRecord("a", 1, manifest, payload, "w", 7, ("t",)))
    await write(journal, record("a", 2, "t"))
    current = Serializer()
    current.register(Deposited, "Deposited")
    current.register(Withdrawn, "Withdrawn")
    current.add_upcaster(
        "Moved",
        lambda f: [
            ("Withdrawn", {"account": f["source"], "amount": f["amount"]}),
            ("Deposited", {"account": f["target"], "amount": f["amount"]}),
        ],
    )
    queries = EventQueries(journal, current, poll_interval=POLL)

    assert await collect(queries.current_events_by_tag("t")) == [
        EventEnvelope(1, "a", 1, Withdrawn("a", 5), 7, ("t",)),
        EventEnvelope(1, "a", 1, Deposited("b", 5), 7, ("t",)),
        envelope(2, "a", 2, "t"),
    ]
    by_id = await collect(queries.current_events_by_persistence_id("a"))
    assert [(e.offset, e.event) for e in by_id] == [
        (1, Withdrawn("a", 5)),
        (1, Deposited("b", 5)),
        (2, Deposited("a", 20)),
    ]


# -- live queries ------------------------------------------------------------------------------


async def test_events_by_tag_follows_events_written_after_it_started(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1, "t"))
    collector = Collector(queries.events_by_tag("t"))
    await collector.wait_for(1)

    await write(journal, record("b", 1, "t"), record("b", 2))
    await write(journal, record("a", 2, "t"))
    found = await collector.wait_for(3)
    await collector.cancel()

    assert found == [envelope(1, "a", 1, "t"), envelope(2, "b", 1, "t"), envelope(4, "a", 2, "t")]


async def test_events_by_tag_from_an_offset_yields_only_later_events(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1, "t"), record("a", 2, "t"))
    collector = Collector(queries.events_by_tag("t", offset=1))
    await collector.wait_for(1)
    await write(journal, record("a", 3, "t"))
    found = await collector.wait_for(2)
    await collector.cancel()

    assert [e.offset for e in found] == [2, 3]


async def test_events_by_persistence_id_follows_new_events_and_ends_at_to_sequence_nr(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1), record("a", 2))
    collector = Collector(queries.events_by_persistence_id("a", 2, 4))
    await collector.wait_for(1)

    await write(journal, record("b", 1))
    await write(journal, record("a", 3))
    await write(journal, record("a", 4), record("a", 5))
    await asyncio.wait_for(collector.task, 10)

    assert collector.items == [envelope(2, "a", 2), envelope(3, "a", 3), envelope(4, "a", 4)]


async def test_events_by_persistence_id_waits_for_an_id_with_no_events_yet(
    journal: Any, queries: EventQueries
) -> None:
    collector = Collector(queries.events_by_persistence_id("late", to_sequence_nr=1))
    await asyncio.sleep(3 * POLL)  # let it poll an empty journal a few times
    await write(journal, record("late", 1))
    await asyncio.wait_for(collector.task, 10)

    assert collector.items == [envelope(1, "late", 1)]


async def test_breaking_out_of_a_live_query_closes_it_and_leaves_no_task(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1, "t"), record("a", 2, "t"))

    async with aclosing(queries.events_by_tag("t")) as events:
        async for event in events:
            if event.offset == 2:
                break
    async with aclosing(queries.events_by_persistence_id("a")) as events:
        async for _ in events:
            break

    assert only_this_task_runs()


async def test_cancelling_the_consumer_of_a_waiting_live_query_ends_it_cleanly(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1, "t"))
    by_tag = Collector(queries.events_by_tag("t"))
    by_id = Collector(queries.events_by_persistence_id("a"))
    ids = Collector(queries.persistence_ids())
    await by_tag.wait_for(1)
    await by_id.wait_for(1)
    await ids.wait_for(1)

    await by_tag.cancel()
    await by_id.cancel()
    await ids.cancel()

    assert only_this_task_runs()


async def test_a_live_query_raises_journal_closed_error_once_the_journal_is_closed(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1, "t"))
    by_tag = Collector(queries.events_by_tag("t"))
    by_id = Collector(queries.events_by_persistence_id("a"))
    ids = Collector(queries.persistence_ids())
    await by_tag.wait_for(1)
    await by_id.wait_for(1)
    await ids.wait_for(1)

    await journal.close()

    for collector in (by_tag, by_id, ids):
        await asyncio.wait([collector.task])
        with pytest.raises(JournalClosedError, match="closed"):
            collector.task.result()


# -- persistence ids ---------------------------------------------------------------------------


async def test_current_persistence_ids_lists_each_id_once_in_first_write_order(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("b", 1))
    await write(journal, record("a", 1))
    await write(journal, record("b", 2))
    await write(journal, record("c", 1))

    assert await collect(queries.current_persistence_ids()) == ["b", "a", "c"]


async def test_persistence_ids_yields_new_ids_as_they_appear(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1))
    collector = Collector(queries.persistence_ids())
    await collector.wait_for(1)

    await write(journal, record("a", 2))
    await write(journal, record("b", 1))
    await write(journal, record("b", 2))
    await write(journal, record("c", 1))
    found = await collector.wait_for(3)
    await write(journal, record("d", 1))
    found = await collector.wait_for(4)
    await collector.cancel()

    assert found == ["a", "b", "c", "d"]


# -- journals without the read side ------------------------------------------------------------


async def test_tag_all_events_and_id_queries_need_a_journal_with_the_read_side() -> None:
    journal = JournalOnly()
    assert isinstance(journal, Journal)
    assert not isinstance(journal, ReadJournal)
    queries = EventQueries(journal, serializer)
    message = (
        "^cannot {}: the journal <JournalOnly> does not support tag, all-events and "
        r"persistence-id queries \(it does not implement ReadJournal: persistence_ids, "
        r"events_by_tag, highest_ordering, all_events\); use a journal that does, such as the "
        "in-memory, SQLite or file journal$"
    )

    with pytest.raises(PersistenceConfigError, match=message.format("query events by tag")):
        queries.events_by_tag("t")
    with pytest.raises(PersistenceConfigError, match=message.format("query events by tag")):
        queries.current_events_by_tag("t")
    with pytest.raises(PersistenceConfigError, match=message.format("query all events")):
        queries.all_events()
    with pytest.raises(PersistenceConfigError, match=message.format("query all events")):
        queries.current_all_events()
    with pytest.raises(PersistenceConfigError, match=message.format("list persistence ids")):
        queries.persistence_ids()
    with pytest.raises(PersistenceConfigError, match=message.format("list persistence ids")):
        queries.current_persistence_ids()
    projection = Projection("p", queries, None, Recorder(), InMemoryOffsetStore())
    with pytest.raises(PersistenceConfigError, match=message.format("query all events")):
        await projection.start()
    assert not projection.is_running

    await write(journal, record("a", 1))
    found = await collect(queries.current_events_by_persistence_id("a"))
    assert found == [envelope(1, "a", 1)]
    await journal.close()


# -- offset stores -----------------------------------------------------------------------------


async def test_sqlite_offset_store_keeps_offsets_across_reopening(tmp_path: Path) -> None:
    store = SqliteOffsetStore(tmp_path / "offsets.db")
    assert await store.load("p") == 0
    await store.save("p", 3)
    await store.save("p", 7)
    await store.save("q", 1)
    await store.close()

    reopened = SqliteOffsetStore(tmp_path / "offsets.db")
    try:
        assert [await reopened.load("p"), await reopened.load("q")] == [7, 1]
    finally:
        await reopened.close()


async def test_sqlite_offset_store_shares_the_sqlite_journal_file(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    journal = SqliteJournal(path)
    store = SqliteOffsetStore(path)
    try:
        await write(journal, record("a", 1, "t"))
        await store.save("p", 1)
        await write(journal, record("a", 2, "t"))
        assert await store.load("p") == 1
        assert await journal.highest_ordering() == 2
    finally:
        await store.close()
        await journal.close()


async def test_a_closed_sqlite_offset_store_raises_offset_store_error(tmp_path: Path) -> None:
    store = SqliteOffsetStore(tmp_path / "offsets.db")
    await store.save("p", 1)
    await store.close()
    await store.close()  # closing twice is fine

    where = str(tmp_path / "offsets.db")
    with pytest.raises(OffsetStoreError) as raised:
        await store.save("p", 2)
    assert str(raised.value) == (
        f"cannot save the offset of projection 'p': sqlite offset store {where!r} is closed; "
        "create a new instance to use it again"
    )
    with pytest.raises(OffsetStoreError) as raised:
        await store.load("p")
    assert str(raised.value) == (
        f"cannot load the offset of projection 'p': sqlite offset store {where!r} is closed; "
        "create a new instance to use it again"
    )


async def test_a_sqlite_offset_store_opens_its_file_on_first_use_and_names_it_when_it_cannot(
    tmp_path: Path,
) -> None:
    store = SqliteOffsetStore(tmp_path / "new" / "offsets.db")
    assert repr(store) == f"<SqliteOffsetStore {str(tmp_path / 'new' / 'offsets.db')!r} not opened>"
    assert not (tmp_path / "new").exists()
    await store.save("p", 1)
    assert (tmp_path / "new" / "offsets.db").is_file()
    await store.close()

    (tmp_path / "a-directory").mkdir()
    broken = SqliteOffsetStore(tmp_path / "a-directory")
    with pytest.raises(OffsetStoreError) as raised:
        await broken.load("p")
    assert str(raised.value) == (
        f"cannot open sqlite offset store {str(tmp_path / 'a-directory')!r}: unable to open "
        "database file"
    )
    await broken.close()


async def test_an_unclosed_sqlite_offset_store_warns(tmp_path: Path) -> None:
    store = SqliteOffsetStore(tmp_path / "offsets.db")
    await store.load("p")
    thread = store._db._thread
    assert thread is not None

    with pytest.warns(
        ResourceWarning,
        match=re.escape(
            f"sqlite offset store {str(tmp_path / 'offsets.db')!r} was opened and never closed: "
            "await its close()"
        ),
    ):
        del store  # the last reference: CPython finalizes it here
    await thread.close()


# -- projections -------------------------------------------------------------------------------


async def test_a_projection_handles_tagged_events_and_saves_each_offset(
    journal: Any, queries: EventQueries
) -> None:
    store = InMemoryOffsetStore()
    handler = Recorder()
    await write(journal, record("a", 1, "t"), record("a", 2))
    projection = Projection("balances", queries, "t", handler, store)

    async with projection:
        await projection.caught_up()
        assert await store.load("balances") == 1
        await write(journal, record("b", 1, "t"))
        await projection.caught_up()
        assert await store.load("balances") == 3
        assert projection.is_running

    assert not projection.is_running
    assert handler.handled == [envelope(1, "a", 1, "t"), envelope(3, "b", 1, "t")]
    assert only_this_task_runs()


async def test_a_restarted_projection_resumes_after_the_offset_in_a_reopened_sqlite_store(
    open_journal: Callable[[], Any], tmp_path: Path
) -> None:
    journal = open_journal()
    queries = EventQueries(journal, serializer, poll_interval=POLL)
    for seq in range(1, 4):
        await write(journal, record("a", seq, "t"))
    store = SqliteOffsetStore(tmp_path / "offsets.db")
    first = Recorder()
    async with Projection("p", queries, "t", first, store) as projection:
        await projection.caught_up()
    await store.close()
    await write(journal, record("a", 4, "t"), record("a", 5, "t"))

    reopened = SqliteOffsetStore(tmp_path / "offsets.db")
    second = Recorder()
    try:
        async with Projection("p", queries, "t", second, reopened) as projection:
            await projection.caught_up()
            assert projection.offset == 5
    finally:
        await reopened.close()

    assert first.offsets == [1, 2, 3]
    assert second.offsets == [4, 5]


async def test_a_projection_over_the_sqlite_journal_file_resumes_after_reopening_both(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.db"
    journal = SqliteJournal(path)
    store = SqliteOffsetStore(path)
    first = Recorder()
    try:
        await write(journal, record("a", 1, "t"), record("a", 2, "t"))
        async with Projection(
            "p", EventQueries(journal, serializer, poll_interval=POLL), "t", first, store
        ) as projection:
            await projection.caught_up()
        await write(journal, record("a", 3, "t"))
    finally:
        await store.close()
        await journal.close()

    journal = SqliteJournal(path)
    store = SqliteOffsetStore(path)
    second = Recorder()
    try:
        queries = EventQueries(journal, serializer, poll_interval=POLL)
        async with Projection("p", queries, "t", second, store) as projection:
            await projection.caught_up()
    finally:
        await store.close()
        await journal.close()

    assert first.offsets == [1, 2]
    assert second.offsets == [3]


async def test_a_projection_saves_every_n_events_and_on_stop(
    journal: Any, queries: EventQueries
) -> None:
    store = InMemoryOffsetStore()
    handler = Recorder()
    for seq in range(1, 4):
        await write(journal, record("a", seq, "t"))
    projection = Projection("p", queries, "t", handler, store, save_every=2)

    await projection.start()
    await projection.caught_up()
    assert await store.load("p") == 2  # a crash now would handle event 3 again
    await projection.stop()

    assert await store.load("p") == 3


async def test_a_failing_handler_ends_the_projection_and_stop_raises_its_error(
    journal: Any, queries: EventQueries
) -> None:
    store = InMemoryOffsetStore()
    for seq in range(1, 6):
        await write(journal, record("a", seq, "t"))
    failing = Recorder(fail_on=4)
    projection = Projection("p", queries, "t", failing, store, save_every=10)

    await projection.start()
    with pytest.raises(ProjectionStoppedError) as stopped:
        await projection.caught_up()
    assert isinstance(stopped.value.__cause__, RuntimeError)
    with pytest.raises(RuntimeError, match=r"^cannot handle offset 4$"):
        await projection.stop()
    assert await store.load("p") == 3

    again = Recorder()
    async with Projection("p", queries, "t", again, store) as projection:
        await projection.caught_up()

    assert failing.offsets == [1, 2, 3]
    assert again.offsets == [4, 5]


async def test_a_projection_commits_a_split_event_only_after_all_its_envelopes(
    journal: Any,
) -> None:
    @dataclass(frozen=True)
    class Moved:
        source: str
        target: str
        amount: int

    old = Serializer()
    old.register(Moved, "Moved")
    manifest, payload = old.encode(Moved("a", "b", 5))
    await write(journal, PersistentRecord("a", 1, manifest, payload, "w", 7, ("t",)))
    current = Serializer()
    current.register(Deposited, "Deposited")
    current.register(Withdrawn, "Withdrawn")
    current.add_upcaster(
        "Moved",
        lambda f: [
            ("Withdrawn", {"account": f["source"], "amount": f["amount"]}),
            ("Deposited", {"account": f["target"], "amount": f["amount"]}),
        ],
    )
    queries = EventQueries(journal, current, poll_interval=POLL)
    store = InMemoryOffsetStore()

    again = Recorder()
    events: list[object] = []

    def fail_on_deposit(envelope: EventEnvelope) -> None:
        if isinstance(envelope.event, Deposited):
            raise RuntimeError("cannot deposit")
        events.append(envelope.event)

    projection = Projection("p", queries, "t", fail_on_deposit, store)
    await projection.start()
    with pytest.raises(ProjectionStoppedError):
        await projection.caught_up()
    with pytest.raises(RuntimeError, match=r"^cannot deposit$"):
        await projection.stop()

    assert events == [Withdrawn("a", 5)]
    assert await store.load("p") == 0  # the event is handled again, both halves
    async with Projection("p", queries, "t", again, store) as projection:
        await projection.caught_up()
    assert [e.event for e in again.handled] == [Withdrawn("a", 5), Deposited("b", 5)]
    assert await store.load("p") == 1


async def test_stop_lets_the_event_being_handled_finish_and_handles_no_more(
    journal: Any, queries: EventQueries
) -> None:
    store = InMemoryOffsetStore()
    started = asyncio.Event()
    release = asyncio.Event()
    handled: list[int] = []

    async def slow(envelope: EventEnvelope) -> None:
        if envelope.offset == 2:
            started.set()
            await release.wait()
        handled.append(envelope.offset)

    for seq in range(1, 4):
        await write(journal, record("a", seq, "t"))
    projection = Projection("p", queries, "t", slow, store)
    await projection.start()
    await asyncio.wait_for(started.wait(), 10)

    stopping = asyncio.get_running_loop().create_task(projection.stop())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not stopping.done()
    release.set()
    await stopping

    assert handled == [1, 2]
    assert await store.load("p") == 2
    assert not projection.is_running
    assert only_this_task_runs()


async def test_a_projection_ends_quietly_when_its_journal_is_closed(
    journal: Any, queries: EventQueries
) -> None:
    store = InMemoryOffsetStore()
    handler = Recorder()
    await write(journal, record("a", 1, "t"))
    projection = Projection("p", queries, "t", handler, store, save_every=5)
    await projection.start()
    await projection.caught_up()

    await journal.close()
    await wait_until(lambda: not projection.is_running)
    with pytest.raises(
        ProjectionStoppedError, match=r"^projection 'p' stopped before catching up \(offset 1\)$"
    ):
        await projection.caught_up()
    await projection.stop()

    assert await store.load("p") == 1


async def test_a_projection_can_be_restarted_but_not_started_twice(
    journal: Any, queries: EventQueries
) -> None:
    store = InMemoryOffsetStore()
    handler = Recorder()
    await write(journal, record("a", 1, "t"))
    projection = Projection("p", queries, "t", handler, store)
    await projection.start()
    with pytest.raises(
        RuntimeError, match=r"^projection 'p' is already started; stop\(\) it first$"
    ):
        await projection.start()
    await projection.caught_up()
    await projection.stop()
    await projection.stop()  # stopping a stopped projection does nothing

    await write(journal, record("a", 2, "t"))
    await projection.start()
    await projection.caught_up()
    await projection.stop()

    assert handler.offsets == [1, 2]


def test_projection_arguments_are_checked(journal: Any, queries: EventQueries) -> None:
    store = InMemoryOffsetStore()
    with pytest.raises(ValueError, match=r"^save_every must be at least 1, got 0$"):
        Projection("p", queries, "t", Recorder(), store, save_every=0)
    with pytest.raises(ValueError, match=r"^projection_id must be a non-empty str$"):
        Projection("", queries, "t", Recorder(), store)


async def test_an_async_handler_is_awaited_before_the_next_event(
    journal: Any, queries: EventQueries
) -> None:
    order: list[str] = []

    async def handler(envelope: EventEnvelope) -> None:
        order.append(f"start {envelope.offset}")
        await asyncio.sleep(0)
        order.append(f"end {envelope.offset}")

    await write(journal, record("a", 1, "t"), record("a", 2, "t"))
    async with Projection("p", queries, "t", handler, InMemoryOffsetStore()) as projection:
        await projection.caught_up()

    assert order == ["start 1", "end 1", "start 2", "end 2"]


async def test_an_undecodable_stored_event_fails_the_query_naming_its_id_and_sequence_nr(
    journal: Any, queries: EventQueries
) -> None:
    good = record("a", 1)
    await write(journal, good, good._replace(sequence_nr=2, payload=b"\xc1"))  # 0xc1: never used
    with pytest.raises(SerializationError, match=r"\(persistence_id='a', sequence_nr=2\)"):
        await collect(queries.current_events_by_persistence_id("a"))
