"""Projection.caught_up: wait until every event stored before the call was handled (read your
own writes through a projection), on every journal, without polling the handler's state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from persistence.query import (
    EventEnvelope,
    EventQueries,
    InMemoryOffsetStore,
    Projection,
    ProjectionStoppedError,
)
from tests import _query_support as support
from tests._query_support import Recorder, record, write

open_journal = support.open_journal
journal = support.journal
queries = support.queries


async def test_caught_up_returns_once_the_events_stored_before_the_call_were_handled(
    journal: Any, queries: EventQueries
) -> None:
    handler = Recorder()
    async with Projection("p", queries, "t", handler, InMemoryOffsetStore()) as projection:
        for seq in range(1, 4):
            await write(journal, record("a", seq, "t"))
            await projection.caught_up()
            assert handler.offsets == list(range(1, seq + 1))


async def test_caught_up_does_not_wait_for_newer_events_without_the_tag(
    journal: Any, queries: EventQueries
) -> None:
    handler = Recorder()
    await write(journal, record("a", 1, "t"))
    await write(journal, record("b", 1, "other"), record("b", 2))  # the journal's end
    async with Projection("p", queries, "t", handler, InMemoryOffsetStore()) as projection:
        await projection.caught_up()
        assert projection.offset == 1  # the tag's last event, below the journal's end
        await write(journal, record("a", 2, "t"))
        await projection.caught_up()

    assert handler.offsets == [1, 4]


async def test_caught_up_returns_at_once_when_the_saved_offset_covers_the_journal(
    journal: Any, queries: EventQueries
) -> None:
    await write(journal, record("a", 1, "t"))
    store = InMemoryOffsetStore()
    await store.save("p", 1)
    handler = Recorder()
    async with Projection("p", queries, "t", handler, store) as projection:
        await projection.caught_up()
    assert handler.offsets == []


async def test_caught_up_on_a_projection_that_is_not_running_is_a_runtime_error(
    queries: EventQueries,
) -> None:
    projection = Projection("p", queries, "t", Recorder(), InMemoryOffsetStore())
    with pytest.raises(RuntimeError, match=r"^projection 'p' is not running: start\(\) it first$"):
        await projection.caught_up()


async def test_caught_up_gives_up_after_its_timeout_saying_how_far_the_projection_got(
    journal: Any, queries: EventQueries
) -> None:
    release = asyncio.Event()

    async def slow(envelope: EventEnvelope) -> None:
        if envelope.offset == 2:
            await release.wait()

    for seq in range(1, 3):
        await write(journal, record("a", seq, "t"))
    async with Projection("p", queries, "t", slow, InMemoryOffsetStore()) as projection:
        with pytest.raises(
            TimeoutError,
            match=(
                r"^projection 'p' did not catch up with ordering 2 within 0\.05 s: "
                r"it has handled up to 1$"
            ),
        ):
            await projection.caught_up(timeout=0.05)
        release.set()
        await projection.caught_up()


async def test_stopping_the_projection_fails_a_waiting_caught_up(
    journal: Any, queries: EventQueries
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(envelope: EventEnvelope) -> None:
        started.set()
        await release.wait()

    await write(journal, record("a", 1, "t"))
    await write(journal, record("a", 2, "t"))
    projection = Projection("p", queries, "t", slow, InMemoryOffsetStore())
    await projection.start()
    await asyncio.wait_for(started.wait(), 10)
    waiting = asyncio.get_running_loop().create_task(projection.caught_up())
    stopping = asyncio.get_running_loop().create_task(projection.stop())
    release.set()  # event 1 finishes; the stopping projection handles no more
    await asyncio.wait_for(stopping, 10)
    await asyncio.wait([waiting])

    with pytest.raises(
        ProjectionStoppedError,
        match=r"^projection 'p' stopped before catching up with ordering 2 \(offset 1\)$",
    ):
        waiting.result()
