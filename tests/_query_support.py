"""Shared by the read-side tests: events, records, a parametrized journal, collectors.

Test modules import the fixtures they use (``journal``, ``queries``, ``open_journal``) by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from persistence.journal import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    FileJournal,
    Journal,
    PersistentRecord,
)
from persistence.journal._memory import InMemoryJournal
from persistence.journal._sqlite import SqliteJournal
from persistence.query import EventEnvelope, EventQueries
from persistence.serialization import Serializer

T = TypeVar("T")

POLL = 0.01
BASE_TIMESTAMP = 1_700_000_000_000

serializer = Serializer()


@serializer.type("Deposited")
@dataclass(frozen=True)
class Deposited:
    account: str
    amount: int


@serializer.type("Withdrawn")
@dataclass(frozen=True)
class Withdrawn:
    account: str
    amount: int


def record(pid: str, seq: int, *tags: str, event: object = None) -> PersistentRecord:
    """A stored Deposited(pid, seq * 10) unless another event is given."""
    manifest, payload = serializer.encode(Deposited(pid, seq * 10) if event is None else event)
    return PersistentRecord(pid, seq, manifest, payload, "writer-1", BASE_TIMESTAMP + seq, tags)


def envelope(offset: int, pid: str, seq: int, *tags: str) -> EventEnvelope:
    return EventEnvelope(offset, pid, seq, Deposited(pid, seq * 10), BASE_TIMESTAMP + seq, tags)


async def write(journal: Journal, *records: PersistentRecord) -> None:
    """Store ``records`` (one id, consecutive numbers) as one atomic write."""
    assert await journal.write([AtomicWrite(list(records))]) == [None]


async def collect(iterator: AsyncIterator[T]) -> list[T]:
    return [item async for item in iterator]


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Yield to the loop until ``predicate`` holds (a guard against hangs, not a timing check)."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - polls state that no event signals
            await asyncio.sleep(0.002)


class Collector:
    """Consumes a live query in a task of its own, closing it when stopped."""

    def __init__(self, iterator: AsyncGenerator[Any, None]) -> None:
        self.items: list[Any] = []
        self.task = asyncio.get_running_loop().create_task(self._consume(iterator))

    async def _consume(self, iterator: AsyncGenerator[Any, None]) -> None:
        async with aclosing(iterator):
            async for item in iterator:
                self.items.append(item)

    async def wait_for(self, count: int) -> list[Any]:
        await wait_until(lambda: len(self.items) >= count or self.task.done())
        if self.task.done():
            self.task.result()  # surface the query's error
        return self.items

    async def cancel(self) -> None:
        self.task.cancel()
        await asyncio.wait([self.task])
        assert self.task.cancelled()


def only_this_task_runs() -> bool:
    return asyncio.all_tasks() == {asyncio.current_task()}


# -- journals ----------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "file"])
async def open_journal(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], Any]]:
    """Opens the parametrized journal (again, on the same files); closes all of them after."""
    opened: list[Any] = []

    def open_() -> Any:
        kind = request.param
        journal: Any
        if kind == "memory":
            journal = InMemoryJournal()
        elif kind == "sqlite":
            journal = SqliteJournal(tmp_path / "journal.db", page_size=2)  # many pages
        else:
            journal = FileJournal(tmp_path / "journal")
        opened.append(journal)
        return journal

    yield open_
    for journal in opened:
        await journal.close()


@pytest.fixture
def journal(open_journal: Callable[[], Any]) -> Any:
    return open_journal()


@pytest.fixture
def queries(journal: Any) -> EventQueries:
    return EventQueries(journal, serializer, poll_interval=POLL)


class JournalOnly:
    """A journal without the read side: only the Journal protocol of an in-memory journal."""

    def __init__(self) -> None:
        self._journal = InMemoryJournal()

    def __repr__(self) -> str:
        return "<JournalOnly>"

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        return await self._journal.write(writes)

    def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        return self._journal.replay(persistence_id, from_sequence_nr, to_sequence_nr, max_count)

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        return await self._journal.highest_sequence_nr(persistence_id)

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        await self._journal.delete_to(persistence_id, to_sequence_nr)

    async def close(self) -> None:
        await self._journal.close()


class Recorder:
    """A projection handler recording what it handled; optionally async or failing once."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.handled: list[EventEnvelope] = []
        self.fail_on = fail_on

    def __call__(self, envelope: EventEnvelope) -> None:
        if envelope.offset == self.fail_on:
            raise RuntimeError(f"cannot handle offset {envelope.offset}")
        self.handled.append(envelope)

    @property
    def offsets(self) -> list[int]:
        return [e.offset for e in self.handled]
