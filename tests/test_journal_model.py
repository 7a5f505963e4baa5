"""Stateful property test: random writes, deletions, replays and reopenings of a journal agree
with a plain model of the journal rules (dicts of stored events and highest numbers)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from persistence import JournalError, SequenceNrConflictError
from persistence.journal import (
    AtomicWrite,
    InMemoryJournal,
    Journal,
    PersistentRecord,
    ReadJournal,
    SqliteJournal,
)

T = TypeVar("T")
IDS = ["a", "b", "c"]
TAGS = [(), ("t",), ("t", "u"), ("u",)]
HOW = ["next", "taken", "after_gap", "with_gap", "mixed_ids"]


def record(pid: str, seq: int, tags: tuple[str, ...]) -> PersistentRecord:
    return PersistentRecord(pid, seq, f"E{seq % 4}", f"{pid}/{seq}".encode(), "w", seq, tags)


class Model:
    """The journal rules, plainly: stored events, highest numbers, first-write order."""

    def __init__(self) -> None:
        self.events: dict[str, dict[int, PersistentRecord]] = {}
        self.highest: dict[str, int] = {}
        self.written: list[PersistentRecord] = []  # every stored event, in write order
        self.ids: list[str] = []

    def write(self, write: AtomicWrite) -> type[BaseException] | None:
        records = write.records
        pid = records[0].persistence_id
        if any(r.persistence_id != pid for r in records) or [
            r.sequence_nr for r in records
        ] != list(range(records[0].sequence_nr, records[0].sequence_nr + len(records))):
            return JournalError
        stored = self.events.setdefault(pid, {})
        if any(r.sequence_nr in stored for r in records):
            return SequenceNrConflictError
        for r in records:
            stored[r.sequence_nr] = r
        self.written.extend(records)
        self.highest[pid] = max(self.highest.get(pid, 0), records[-1].sequence_nr)
        if pid not in self.ids:
            self.ids.append(pid)
        return None

    def delete_to(self, pid: str, to: int) -> None:
        stored = self.events.get(pid, {})
        for seq in [seq for seq in stored if seq <= to]:
            del stored[seq]

    def replay(self, pid: str, low: int, high: int, most: int) -> list[PersistentRecord]:
        stored = self.events.get(pid, {})
        return [stored[seq] for seq in sorted(stored) if low <= seq <= high][:most]

    def live(self, r: PersistentRecord) -> bool:
        return self.events.get(r.persistence_id, {}).get(r.sequence_nr) is r


def run_on(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    return loop.run_until_complete(coroutine)


async def collect(
    journal: Journal, pid: str, low: int, high: int, most: int
) -> list[PersistentRecord]:
    return [r async for page in journal.replay(pid, low, high, most) for r in page]


class JournalMatchesTheModel(RuleBasedStateMachine):
    backend = "memory"
    loop_name = "asyncio"

    def __init__(self) -> None:
        super().__init__()
        self.loop = (
            uvloop.new_event_loop() if self.loop_name == "uvloop" else asyncio.new_event_loop()
        )
        self.directory = Path(tempfile.mkdtemp(prefix="journal-model-"))
        self.model = Model()
        self.journal = self.open()

    def open(self) -> Journal:
        if self.backend == "memory":
            return InMemoryJournal()
        return SqliteJournal(self.directory / "j.db", synchronous="off", page_size=2)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return run_on(self.loop, coroutine)

    def teardown(self) -> None:
        try:
            self.run(self.journal.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    @rule(
        writes=st.lists(
            st.tuples(
                st.sampled_from(IDS), st.sampled_from(HOW), st.integers(1, 3), st.sampled_from(TAGS)
            ),
            min_size=1,
            max_size=4,
        )
    )
    def write(self, writes: list[tuple[str, str, int, tuple[str, ...]]]) -> None:
        batch = []
        for pid, how, count, tags in writes:
            highest = self.model.highest.get(pid, 0)
            first = {"next": highest + 1, "taken": max(1, highest), "after_gap": highest + 2}.get(
                how, highest + 1
            )
            records = [record(pid, n, tags) for n in range(first, first + count)]
            if how == "with_gap":
                records.append(record(pid, first + count + 1, tags))
            elif how == "mixed_ids":
                records.append(record(pid + "x", first + count, tags))
            batch.append(AtomicWrite(records))
        expected = [self.model.write(write) for write in batch]
        actual = self.run(self.journal.write(batch))
        assert [None if r is None else type(r) for r in actual] == expected

    @rule(pid=st.sampled_from(IDS), back=st.integers(-1, 4))
    def delete_to(self, pid: str, back: int) -> None:
        to = self.model.highest.get(pid, 0) - back
        self.model.delete_to(pid, to)
        self.run(self.journal.delete_to(pid, to))

    @rule(
        pid=st.sampled_from(IDS),
        low=st.integers(0, 12),
        span=st.integers(0, 12),
        most=st.integers(0, 12),
    )
    def replay(self, pid: str, low: int, span: int, most: int) -> None:
        actual = self.run(collect(self.journal, pid, low, low + span, most))
        assert actual == self.model.replay(pid, low, low + span, most)

    @precondition(lambda self: self.backend != "memory")
    @rule()
    def reopen(self) -> None:
        self.run(self.journal.close())
        self.journal = self.open()

    @invariant()
    def highest_sequence_nrs_agree(self) -> None:
        for pid in IDS:
            assert self.run(self.journal.highest_sequence_nr(pid)) == self.model.highest.get(pid, 0)

    @invariant()
    def the_read_side_agrees(self) -> None:
        journal = self.journal
        assert isinstance(journal, ReadJournal)
        assert self.run(journal.persistence_ids()) == self.model.ids
        for tag in ("t", "u"):

            async def by_tag(tag: str = tag) -> list[Any]:
                return [t async for page in journal.events_by_tag(tag) for t in page]

            tagged = self.run(by_tag())
            expected = [r for r in self.model.written if tag in r.tags and self.model.live(r)]
            assert [t.record for t in tagged] == expected
            orderings = [t.ordering for t in tagged]
            assert orderings == sorted(set(orderings))


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_journal_behaves_like_the_model(backend: str, loop: str) -> None:
    class Machine(JournalMatchesTheModel):
        pass

    Machine.backend = backend
    Machine.loop_name = loop
    run_state_machine_as_test(
        Machine,
        settings=settings(max_examples=25, stateful_step_count=25, deadline=None),
    )
