"""Recovery reads pages of rows and decodes each page in one pass; the events the actor sees,
their order and their sequence numbers are those of decoding event by event, also when a page
mixes current events with old versions, deep payloads and an undecodable event.

Real journals, used directly: SQLite with pages of 3 events (every page boundary is crossed),
the file journal (both hand out rows), and the in-memory journal (its pages of records are turned
into rows).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest

from actorsys import ActorSystem
from persistence import (
    Persistence,
    PersistentActor,
    RecoveryCompleted,
    SerializationError,
    Serializer,
)
from persistence.journal import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    FileJournal,
    InMemoryJournal,
    Journal,
    PersistentRecord,
    SqliteJournal,
)


@dataclass(frozen=True, slots=True)
class Tick:
    n: int


@dataclass(frozen=True)
class Note:
    text: str
    origin: str


@dataclass(frozen=True)
class Bag:
    items: list[dict[str, int]]


def registry() -> Serializer:
    serializer = Serializer()
    serializer.register(Tick, "Tick")
    serializer.register(Note, "Note", version=2)
    serializer.register(Bag, "Bag")
    serializer.add_upcaster("Note", lambda fields: [("Note", {**fields, "origin": "v1"})])
    serializer.add_upcaster(
        "Pair",
        lambda fields: [
            ("Note#2", {"text": fields["left"], "origin": "pair"}),
            ("Note#2", {"text": fields["right"], "origin": "pair"}),
        ],
    )
    serializer.add_upcaster("Obsolete", lambda fields: [])
    return serializer


DEEP = Bag([{"k": n} for n in range(150)])
"""150 maps: more bytes that can open a level than the quick depth check lets through."""


def history(serializer: Serializer) -> list[tuple[str, bytes]]:
    """``(manifest, payload)`` of sequence numbers 1..12: current events, old versions that
    upcast to one, two and no events, and a payload that takes the depth-checked path."""
    old_note = ("Note", msgpack.packb({"text": "old"}))
    pair = ("Pair", msgpack.packb({"left": "l", "right": "r"}))
    obsolete = ("Obsolete", msgpack.packb({}))
    return [
        serializer.encode(Tick(1)),
        serializer.encode(Tick(2)),
        old_note,
        serializer.encode(Tick(4)),
        pair,
        serializer.encode(Note("new", "v2")),
        obsolete,
        serializer.encode(DEEP),
        serializer.encode(Tick(9)),
        serializer.encode(Tick(10)),
        serializer.encode(Tick(11)),
        serializer.encode(Tick(12)),
    ]


EXPECTED = [
    (Tick(1), 1),
    (Tick(2), 2),
    (Note("old", "v1"), 3),
    (Tick(4), 4),
    (Note("l", "pair"), 5),
    (Note("r", "pair"), 5),
    (Note("new", "v2"), 6),
    (DEEP, 8),
    (Tick(9), 9),
    (Tick(10), 10),
    (Tick(11), 11),
    (Tick(12), 12),
]


class Recorder(PersistentActor):
    """Records each replayed event with ``last_sequence_nr`` as it was handed over."""

    def __init__(self, outcome: asyncio.Future[Any]) -> None:
        super().__init__()
        self.persistence_id = "recorder"
        self.outcome = outcome
        self.seen: list[tuple[Any, int]] = []

    def receive_recover(self, message: Any) -> None:
        if message is RecoveryCompleted:
            self.outcome.set_result(("completed", self.seen, self.last_sequence_nr))
        else:
            self.seen.append((message, self.last_sequence_nr))

    def receive_command(self, command: Any) -> None:
        pass

    def on_recovery_failure(self, cause: BaseException, message: Any) -> None:
        self.outcome.set_result((cause, self.seen, self.last_sequence_nr, message))


@pytest.fixture(params=["sqlite", "file", "memory"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    journal: Journal
    if request.param == "sqlite":
        journal = SqliteJournal(tmp_path / "journal.db", page_size=3)
    elif request.param == "file":
        journal = FileJournal(tmp_path / "journal")
    else:
        journal = InMemoryJournal()
    yield journal
    await journal.close()


async def store(journal: Journal, stored: list[tuple[str, bytes]]) -> None:
    records = [
        PersistentRecord("recorder", n, manifest, payload)
        for n, (manifest, payload) in enumerate(stored, start=1)
    ]
    assert await journal.write([AtomicWrite(records)]) == [None]


async def recover(journal: Journal, serializer: Serializer) -> Any:
    persistence = Persistence(journal, serializer=serializer)
    async with ActorSystem("replay", extensions=[persistence]) as system:
        outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        system.spawn(lambda: Recorder(outcome))
        return await outcome


async def test_current_upcast_split_dropped_and_deep_events_replay_in_order_with_their_numbers(
    journal: Journal,
) -> None:
    serializer = registry()
    await store(journal, history(serializer))

    assert await recover(journal, serializer) == ("completed", EXPECTED, 12)


async def test_an_undecodable_event_fails_recovery_after_every_event_before_it_was_applied(
    journal: Journal,
) -> None:
    serializer = registry()
    stored = history(serializer)
    stored[10] = ("Tick", msgpack.packb({"n": 11, "extra": 1}))
    await store(journal, stored)

    cause, seen, last_sequence_nr, message = await recover(journal, serializer)

    assert type(cause) is SerializationError
    assert str(cause) == (
        "cannot decode 'Tick' (persistence_id='recorder', sequence_nr=11): stored field(s) "
        "'extra' are not fields of Tick; register an upcaster for 'Tick' that renames or drops "
        "them"
    )
    assert seen == EXPECTED[:10]
    assert last_sequence_nr == 11
    assert message is None


class HidingJournal(SqliteJournal):
    """A journal that overrides ``replay`` alone: it hides the events of sequence number 2."""

    async def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        async for page in super().replay(
            persistence_id, from_sequence_nr, to_sequence_nr, max_count
        ):
            yield [record for record in page if record.sequence_nr != 2]


async def test_recovery_reads_through_a_replay_overridden_in_a_subclass(tmp_path: Path) -> None:
    serializer = registry()
    journal = HidingJournal(tmp_path / "journal.db", page_size=3)
    await store(journal, history(serializer))
    try:
        outcome = await recover(journal, serializer)
    finally:
        await journal.close()

    assert outcome == ("completed", [EXPECTED[0], *EXPECTED[2:]], 12)


async def test_recovery_reads_through_a_replay_set_on_the_instance(tmp_path: Path) -> None:
    serializer = registry()
    journal = SqliteJournal(tmp_path / "journal.db")
    await store(journal, history(serializer))
    replay = journal.replay

    async def hiding(*args: Any) -> AsyncIterator[list[PersistentRecord]]:
        async for page in replay(*args):
            yield [record for record in page if record.sequence_nr != 2]

    journal.replay = hiding  # type: ignore[method-assign,assignment]
    try:
        outcome = await recover(journal, serializer)
    finally:
        await journal.close()

    assert outcome == ("completed", [EXPECTED[0], *EXPECTED[2:]], 12)
