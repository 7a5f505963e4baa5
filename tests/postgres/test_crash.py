"""Crash safety of the PostgreSQL journal: a writer process killed with SIGKILL at random
moments; the PostgreSQL server itself killed with SIGKILL and restarted; a restart under load."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import msgpack
import pytest

from persistence import JournalError
from persistence.journal import PersistentRecord, PostgresJournal
from persistence.testing._journal_suite import atomic, collect, seqs
from persistence.testing._postgres_server import PostgresServer, remove, start_server
from tests._crash_child import payload

ROOT = Path(__file__).resolve().parent.parent.parent


def run_child(
    dsn: str, schema: str, seed: int, kill_after: int, kill: Callable[[int], None]
) -> dict[str, int]:
    """Start a writing child; after ``kill_after`` acknowledgements call ``kill(child_pid)``;
    return the highest acknowledged number per id (also those printed while dying)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.postgres._writer_child", dsn, schema, "4", str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, child.kill)
    watchdog.start()
    acked: dict[str, int] = {}
    seen = 0
    try:
        assert child.stdout is not None
        for line in child.stdout:
            _, persistence_id, _, highest = line.split()
            acked[persistence_id] = max(acked.get(persistence_id, 0), int(highest))
            seen += 1
            if seen == kill_after:
                kill(child.pid)
        child.wait(timeout=30)
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()  # type: ignore[union-attr]
        errors = child.stderr.read()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]
    assert seen >= kill_after, f"the child ended after {seen} writes: {errors}"
    return acked


async def writes_of_killed_clients_finished(dsn: str) -> None:
    """Wait until the killed clients' server processes are gone: a killed client's last
    statement still runs (and commits) on the server, whose process exits only when it reads
    the end of the closed connection, after every statement sent before."""
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(30):
            while await conn.fetchval(  # noqa: ASYNC110 - polls the server's state
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                " AND pid <> pg_backend_pid()"
            ):
                await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def check_recovered(dsn: str, schema: str, acked: dict[str, int]) -> None:
    """Every acknowledged event is there, intact, in order, without gaps, duplicates or half
    atomic writes; the tag index agrees."""
    await writes_of_killed_clients_finished(dsn)
    journal = PostgresJournal(dsn, schema=schema)
    try:
        tagged = 0
        persistence_ids = await journal.persistence_ids()
        assert set(acked) <= set(persistence_ids)
        for persistence_id in persistence_ids:
            records: list[PersistentRecord] = await collect(journal.replay(persistence_id))
            last = len(records)
            assert seqs(records) == list(range(1, last + 1))
            assert last >= acked.get(persistence_id, 0)
            assert await journal.highest_sequence_nr(persistence_id) == last
            for record in records:
                lowest, highest = msgpack.unpackb(record.payload)["write"]
                assert record.payload == payload(
                    persistence_id, record.sequence_nr, lowest, highest
                )
                assert highest <= last, f"half of atomic write {lowest}..{highest} was stored"
                assert record.tags == (("crash",) if record.sequence_nr % 3 == 0 else ())
            tagged += last // 3
        orderings = [t.ordering async for page in journal.events_by_tag("crash") for t in page]
        assert len(orderings) == tagged
        assert orderings == sorted(set(orderings))
    finally:
        await journal.close()


def merge(into: dict[str, int], acked: dict[str, int]) -> None:
    for persistence_id, highest in acked.items():
        into[persistence_id] = max(into.get(persistence_id, 0), highest)


@pytest.mark.slow
def test_acknowledged_writes_survive_20_sigkills_of_the_writer_process(
    postgres_dsn: str, pg_schema: str
) -> None:
    rng = random.Random(20)
    acked: dict[str, int] = {}
    for round_nr in range(20):
        kill_after = rng.randint(1, 150)
        merge(
            acked,
            run_child(
                postgres_dsn,
                pg_schema,
                round_nr,
                kill_after,
                lambda pid: os.kill(pid, signal.SIGKILL),
            ),
        )
        asyncio.run(check_recovered(postgres_dsn, pg_schema, acked))
    assert sum(acked.values()) >= 20


@pytest.fixture
def durable_server() -> Iterator[PostgresServer]:
    """A server of its own with ``synchronous_commit=on`` and ``fsync=on``."""
    server = start_server(synchronous_commit=True)
    try:
        yield server
    finally:
        remove(server)


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkills_of_the_postgresql_server(
    durable_server: PostgresServer, pg_schema: str
) -> None:
    rng = random.Random(5)
    acked: dict[str, int] = {}
    for round_nr in range(4):

        def kill_server(_: int) -> None:
            durable_server.kill()

        merge(
            acked,
            run_child(durable_server.dsn, pg_schema, round_nr, rng.randint(20, 200), kill_server),
        )
        durable_server.start()  # crash recovery replays the WAL
        asyncio.run(check_recovered(durable_server.dsn, pg_schema, acked))
    assert sum(acked.values()) >= 80


@pytest.mark.slow
async def test_a_server_restart_fails_the_writes_in_flight_then_the_pool_reconnects(
    durable_server: PostgresServer, pg_schema: str
) -> None:
    journal = PostgresJournal(durable_server.dsn, schema=pg_schema)
    try:
        await journal.write([atomic("a", 1, 3)])
        await asyncio.to_thread(durable_server.kill)
        with pytest.raises(JournalError) as raised:
            await journal.write([atomic("a", 4)])
        assert str(raised.value).startswith(
            f"cannot write events: postgresql journal at 127.0.0.1:{durable_server.port}/postgres"
        )
        await asyncio.to_thread(durable_server.start)
        # The pool replaces its dead connections: at most one more failure per connection.
        result: BaseException | None = JournalError("not written")
        for _ in range(10):
            try:
                [result] = await journal.write([atomic("a", 4)])
                break
            except JournalError:
                continue
        assert result is None
        assert seqs(await collect(journal.replay("a"))) == [1, 2, 3, 4]
    finally:
        await journal.close()
