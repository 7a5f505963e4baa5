"""PostgreSQL variants: a server for the run, a fresh database per run, raw asyncpg baselines.

The server is PostgreSQL from the Debian package, started once by the process that declares the
cases (as user ``postgres`` when root; see :mod:`persistence.testing._postgres_server`) with the
durable defaults (``fsync=on``, ``synchronous_commit=on``), and stopped by its pid when that process
exits. Every measured run gets a database of its own (created untimed).

Raw baselines write the journal's own table (created by :class:`PostgresJournal`, so indexes and
the NOTIFY trigger are the same) with the same rows: one ``INSERT`` per event in autocommit for
the sequential case, one ``executemany`` transaction per round of one event per id for the
concurrent one; raw replay is one ``fetch`` of the id's rows plus the same decode.
"""

from __future__ import annotations

import asyncio
import atexit
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import _ours_actor, _ours_journal, _raw
from benchmarks._common import Deposited, clock, rate, recovery_result, rss_bytes
from benchmarks._harness import Result, Unavailable

_server: Any = None


def server_dsn() -> str:
    """The DSN of this run's server (database ``postgres``), started on first call."""
    global _server
    if _server is None:
        from persistence.testing._postgres_server import remove, start_server

        try:
            _server = start_server(synchronous_commit=True)
        except RuntimeError as exc:
            raise Unavailable(str(exc).splitlines()[0]) from exc
        atexit.register(remove, _server)
    dsn: str = _server.dsn
    return dsn


async def _database(admin: str) -> str:
    """A new, empty database on the server of ``admin`` (a DSN); its DSN."""
    import asyncpg

    name = f"bench_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return f"{admin.rsplit('/', 1)[0]}/{name}"


async def _schema(dsn: str) -> None:
    """The journal's tables in ``dsn``'s database, created by the journal itself."""
    journal = _ours_journal.open_journal("postgres", "", dsn)
    try:
        await journal.highest_sequence_nr("acc-0")
    finally:
        await journal.close()


_INSERT = (
    "INSERT INTO journal (ordering, persistence_id, sequence_nr, manifest, payload, writer_id,"
    " timestamp) VALUES (nextval('journal_ordering'), $1, $2, $3, $4, $5, $6)"
)
_SELECT = (
    "SELECT manifest, payload FROM journal WHERE persistence_id = $1 AND sequence_nr >= $2"
    " ORDER BY sequence_nr"
)


def _row(persistence_id: str, seq: int) -> tuple[str, int, str, bytes, str, int]:
    return (
        persistence_id,
        seq,
        _raw.MANIFEST,
        _raw.encode(Deposited(seq)),
        _raw.WRITER,
        time.time_ns() // 10**6,
    )


async def raw_one(n: int, admin: str) -> Result:
    """``n`` events, one autocommitted ``INSERT`` each, awaited before the next."""
    import asyncpg

    dsn = await _database(admin)
    await _schema(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        started = clock()
        for seq in range(1, n + 1):
            await conn.execute(_INSERT, *_row("acc-0", seq))
        elapsed = clock() - started
    finally:
        await conn.close()
    return {"events/s": rate(n, elapsed)}


async def raw_rounds(n: int, admin: str, actors: int) -> Result:
    """Rounds of one event per id, each round one ``executemany`` in one transaction."""
    import asyncpg

    per = n // actors
    dsn = await _database(admin)
    await _schema(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        started = clock()
        for seq in range(1, per + 1):
            rows = [_row(f"acc-{a}", seq) for a in range(actors)]
            async with conn.transaction():
                await conn.executemany(_INSERT, rows)
        elapsed = clock() - started
    finally:
        await conn.close()
    return {"events/s": rate(actors * per, elapsed)}


async def ours(n: int, admin: str, level: str, shape: str, actors: int = 1) -> Result:
    """The journal (``level="journal"``) or persistent actors (``"actor"``) on a new database:
    ``shape="one"`` (one writer, one event per command) or ``"rounds"``."""
    dsn = await _database(admin)
    module: Any = _ours_journal if level == "journal" else _ours_actor
    if shape == "one":
        result: Result = await module.write_one(n, "postgres", "", dsn)
    else:
        result = await module.write_rounds(n, "postgres", "", dsn, actors)
    return result


async def prepare_history(n: int, path: str, admin: str, actors: int, background: int) -> Result:
    """Store the interleaved history (see :func:`benchmarks._ours_journal.history`) in a new
    database; its DSN goes into the file at ``path``."""
    dsn = await _database(admin)
    await _ours_journal.prepare(n, "postgres", dsn, actors, background)
    await asyncio.to_thread(Path(path).write_text, dsn, encoding="utf-8")
    return {}


def _dsn_of(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


async def raw_replay(n: int, path: str, actors: int) -> Result:
    """For each id: one ``fetch`` of its rows, decode, apply."""
    import asyncpg

    per = n // actors
    before = rss_bytes()
    conn = await asyncpg.connect(_dsn_of(path))
    try:
        started = clock()
        for a in range(actors):
            persistence_id = f"acc-{a}"
            events = balance = 0
            decode = _raw.decode
            for manifest, payload in await conn.fetch(_SELECT, persistence_id, 1):
                event = decode(manifest, payload)
                events += 1
                balance += event.amount
            if events != per:
                raise AssertionError(f"{persistence_id}: {events} events, expected {per}")
        elapsed = clock() - started
    finally:
        await conn.close()
    return recovery_result(n, elapsed, before, 0)


async def ours_replay(n: int, path: str, level: str, actors: int) -> Result:
    """The journal's replay (``level="journal"``) or recovering actors (``"actor"``)."""
    module: Any = _ours_journal if level == "journal" else _ours_actor
    result: Result = await module.replay(n, "postgres", _dsn_of(path), actors)
    return result
