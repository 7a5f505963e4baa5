"""Group commit and the single-writer fence of the PostgreSQL journal, against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from actorsys import ActorSystem
from actorsys.testing import TestProbe
from persistence import OwnerEpochFencedError, Persistence, SequenceNrConflictError
from persistence.journal import AtomicWrite, PersistentRecord, PostgresJournal
from persistence.testing._journal_suite import atomic, collect, record, seqs
from tests.persistence._actors import Append, Appended, Failed, Stored, serializer, start_log
from tests.persistence._actors import stored_events as decoded_events


class CountingConnection(asyncpg.Connection):  # type: ignore[misc]
    """Counts the statements that store events."""

    inserts = 0

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        if "INSERT INTO" in query and ".journal" in query:
            CountingConnection.inserts += 1
        result: str = await super().execute(query, *args, **kwargs)
        return result


async def test_writes_of_many_ids_that_arrive_together_are_stored_by_one_statement(
    postgres_dsn: str, pg_schema: str
) -> None:
    pool = await asyncpg.create_pool(postgres_dsn, connection_class=CountingConnection)
    journal = PostgresJournal(pool=pool, schema=pg_schema)
    try:
        await journal.highest_ordering()  # opened: only the writes below count
        CountingConnection.inserts = 0
        results = await asyncio.gather(
            *(journal.write([atomic(f"id{i}", 1, 3, tags=("t",))]) for i in range(200))
        )
        assert results == [[None]] * 200
        assert CountingConnection.inserts == 1
        assert seqs(await collect(journal.replay("id199"))) == [1, 2, 3]
    finally:
        await journal.close()
        assert not pool._closed  # the caller's pool is the caller's to close
        await pool.close()


async def test_two_journals_racing_for_one_id_store_exactly_one_event_per_number(
    postgres_dsn: str, pg_schema: str
) -> None:
    """Two writers (two pools, as two processes would have): each number has one winner, the
    loser gets the conflict error, nothing is overwritten."""
    first = PostgresJournal(postgres_dsn, schema=pg_schema)
    second = PostgresJournal(postgres_dsn, schema=pg_schema)
    try:

        async def race(journal: PostgresJournal, name: str) -> list[BaseException | None]:
            outcomes = []
            for n in range(1, 41):
                mine = AtomicWrite([PersistentRecord("contested", n, name, name.encode())])
                [outcome] = await journal.write([mine])
                outcomes.append(outcome)
            return outcomes

        one, two = await asyncio.gather(race(first, "one"), race(second, "two"))
        stored = await collect(first.replay("contested"))
        assert seqs(stored) == list(range(1, 41))
        for n, (a, b, event) in enumerate(zip(one, two, stored, strict=True), start=1):
            winner = "one" if a is None else "two"
            loser = b if a is None else a
            assert event.manifest == winner
            assert isinstance(loser, SequenceNrConflictError)
            assert (loser.persistence_id, loser.sequence_nr) == ("contested", n)
    finally:
        await first.close()
        await second.close()


async def test_a_second_writer_in_another_process_fails_with_the_conflict_and_stops(
    postgres_dsn: str, pg_schema: str
) -> None:
    journal_a = PostgresJournal(postgres_dsn, schema=pg_schema)
    journal_b = PostgresJournal(postgres_dsn, schema=pg_schema)
    async with (
        ActorSystem("a", extensions=[Persistence(journal_a, serializer=serializer)]) as a,
        ActorSystem("b", extensions=[Persistence(journal_b, serializer=serializer)]) as b,
    ):
        probe_a, probe_b = TestProbe(a), TestProbe(b)
        writer_a, _ = await start_log(a, probe_a, "contested")
        writer_b, _ = await start_log(b, probe_b, "contested")
        probe_b.watch(writer_b)

        probe_a.send(writer_a, Append("from-a"))
        await probe_a.expect_message(Stored("from-a", 1))
        probe_b.send(writer_b, Append("from-b"))

        failed = await probe_b.expect_message_type(Failed)
        assert str(failed.cause) == (
            "sequence number already taken, persistence_id='contested', sequence_nr=1: "
            "is another writer running for this id?"
        )
        await probe_b.expect_terminated(writer_b)
        assert await decoded_events(journal_a, "contested") == [(1, Appended("from-a"))]


async def test_a_batch_with_one_conflict_stores_the_other_writes_of_the_batch(
    postgres_dsn: str, pg_schema: str
) -> None:
    journal = PostgresJournal(postgres_dsn, schema=pg_schema)
    try:
        await journal.write([atomic("a", 1)])
        outcomes = await asyncio.gather(
            journal.write([atomic("b", 1)]),
            journal.write([atomic("a", 1, 2)]),
            journal.write([atomic("c", 1)]),
        )
        assert outcomes[0] == [None]
        assert outcomes[2] == [None]
        [conflict] = outcomes[1]
        assert isinstance(conflict, SequenceNrConflictError)
        assert await collect(journal.replay("a")) == [record("a", 1)]
        assert seqs(await collect(journal.replay("c"))) == [1]
    finally:
        await journal.close()


async def test_an_old_owner_in_another_process_never_appends_after_the_new_owner_started(
    postgres_dsn: str, pg_schema: str
) -> None:
    """The epoch fence across two pools: once epoch 2 stored an event, epoch 1 is refused."""
    old = PostgresJournal(postgres_dsn, schema=pg_schema)
    new = PostgresJournal(postgres_dsn, schema=pg_schema)
    try:

        async def owner(journal: PostgresJournal, epoch: int, base: int) -> list[bool]:
            stored = []
            for n in range(1, 31):
                write = atomic("entity", base + n)._replace(owner_epoch=epoch)
                [outcome] = await journal.write([write])
                assert outcome is None or isinstance(outcome, OwnerEpochFencedError), outcome
                stored.append(outcome is None)
            return stored

        await asyncio.gather(owner(old, 1, 0), owner(new, 2, 1000))
        events = await collect(old.replay("entity"))
        numbers = seqs(events)
        first_new = next(i for i, n in enumerate(numbers) if n > 1000)
        assert all(n > 1000 for n in numbers[first_new:])
        assert numbers[first_new:] == list(range(1001, 1031))
    finally:
        await old.close()
        await new.close()
