"""Journal-level variants: our journals called directly, without actors (their own overhead).

Also what the actor-level variants share: opening a journal or snapshot store by kind and mode,
the serializer with the benchmark's types registered, and preparing stored histories.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from benchmarks import _raw
from benchmarks._common import AccountState, Deposited, clock, rate, recovery_result, rss_bytes
from benchmarks._counters import Counter, calls, gc_allocations
from benchmarks._harness import Result, Unavailable
from persistence.journal import (
    AtomicWrite,
    FileJournal,
    Journal,
    PersistentRecord,
    SqliteJournal,
    row_pages,
)
from persistence.serialization import Serializer, default_serializer
from persistence.snapshot import (
    FileSnapshotStore,
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStore,
    SqliteSnapshotStore,
)

WRITER = "bench"
_PREPARE_BATCH = 1000
"""Atomic writes per ``write()`` while storing a history (one event each)."""


def serializer() -> Serializer:
    """The default serializer with the benchmark's event and snapshot types registered."""
    default_serializer.register(Deposited, "Deposited")
    default_serializer.register(AccountState, "AccountState")
    return default_serializer


def open_journal(kind: str, mode: str, path: str) -> Journal:
    """``SqliteJournal(path, synchronous=mode)`` or ``FileJournal(path, fsync=mode)``; for
    ``kind="postgres"``, ``PostgresJournal(path)`` (``path`` is a DSN, durability the server's)."""
    if kind == "postgres":
        from persistence.journal import PostgresJournal

        return PostgresJournal(path)
    if kind == "sqlite":
        return SqliteJournal(path, synchronous=mode)  # type: ignore[arg-type]
    return FileJournal(path, fsync=mode)  # type: ignore[arg-type]


def open_snapshot_store(kind: str, path: str) -> SnapshotStore:
    """The snapshot store that goes with the journal ``kind``."""
    if kind == "sqlite":
        return SqliteSnapshotStore(path)
    return FileSnapshotStore(path)


def snapshot_path(kind: str, path: str) -> str:
    """Where the snapshots of the journal at ``path`` live."""
    return f"{path}.snapshots.db" if kind == "sqlite" else f"{path}.snapshots"


def record(
    codec: Serializer, persistence_id: str, sequence_nr: int, event: object
) -> PersistentRecord:
    """One event as the journal stores it."""
    manifest, payload = codec.encode(event)
    return PersistentRecord(
        persistence_id, sequence_nr, manifest, payload, WRITER, time.time_ns() // 10**6
    )


async def _write(journal: Journal, writes: list[AtomicWrite]) -> None:
    for outcome in await journal.write(writes):
        if outcome is not None:
            raise outcome


async def write_one(n: int, kind: str, mode: str, path: str) -> Result:
    """One writer, ``n`` events, each its own atomic write awaited before the next."""
    codec = serializer()
    journal = open_journal(kind, mode, path)
    try:
        await journal.highest_sequence_nr("acc-0")  # opens it, outside the timing
        started = clock()
        for seq in range(1, n + 1):
            await _write(journal, [AtomicWrite([record(codec, "acc-0", seq, Deposited(seq))])])
        elapsed = clock() - started
    finally:
        await journal.close()
    return {"events/s": rate(n, elapsed)}


def _round(codec: Serializer, seq: int, actors: int) -> list[AtomicWrite]:
    """One event for each of ``actors`` ids, one atomic write each."""
    return [AtomicWrite([record(codec, f"acc-{a}", seq, Deposited(seq))]) for a in range(actors)]


async def write_rounds(n: int, kind: str, mode: str, path: str, actors: int) -> Result:
    """Rounds of one event per id, each round one ``write()`` of one atomic write per id.

    That is how the actor layer calls the journal: the persists of one loop turn in one batch.
    """
    per = n // actors
    codec = serializer()
    journal = open_journal(kind, mode, path)
    try:
        await journal.highest_sequence_nr("acc-0")  # opens it, outside the timing
        started = clock()
        for seq in range(1, per + 1):
            for outcome in await journal.write(_round(codec, seq, actors)):
                if outcome is not None:
                    raise outcome
        elapsed = clock() - started
    finally:
        await journal.close()
    return {"events/s": rate(actors * per, elapsed)}


def write_batch_sync(n: int, mode: str, path: str, actors: int) -> Result:
    """The SQLite journal's own transaction function called on this thread, one call per round
    of one event per id: the journal's SQL without its thread hop and group committer."""
    try:
        from persistence.journal._sqlite import _write_batch
    except ImportError as exc:
        raise Unavailable(f"the SQLite journal's _write_batch is gone: {exc}") from exc
    per = n // actors
    codec = serializer()
    _raw.create_sqlite_journal(path, mode)
    conn = _raw.open_sqlite(path, mode)
    try:
        started = clock()
        for seq in range(1, per + 1):
            for outcome in _write_batch(conn, _round(codec, seq, actors)):
                if outcome is not None:
                    raise outcome
        elapsed = clock() - started
    finally:
        conn.close()
    return {"events/s": rate(actors * per, elapsed)}


async def _counted(counter: Counter, n: int, kind: str, mode: str, path: str, actors: int) -> int:
    per = n // actors
    codec = serializer()
    journal = open_journal(kind, mode, path)
    try:
        await journal.highest_sequence_nr("acc-0")
        with counter() as counted:
            for seq in range(1, per + 1):
                await _write(journal, _round(codec, seq, actors))
    finally:
        await journal.close()
    return counted.value


async def hidden_costs(n: int, kind: str, mode: str, path: str, actors: int) -> Result:
    """GC-tracked allocations and calls per event (see :mod:`benchmarks._counters`) of
    :func:`write_one` (one actor) or :func:`write_rounds`, each counted in a run of its own."""
    allocations = await _counted(gc_allocations, n, kind, mode, f"{path}-allocs", actors)
    called = await _counted(calls, n, kind, mode, f"{path}-calls", actors)
    events = n // actors * actors
    return {"GC allocs/event": allocations / events, "calls/event": called / events}


def history(actors: int, per: int, background: int) -> Iterator[tuple[str, int]]:
    """The ``(persistence_id, sequence_nr)`` of a stored history, in the order it is written.

    Interleaved, as running actors write: rounds of one event for each of ``acc-0`` ...
    ``acc-{actors - 1}``, each round followed by one event of one of ``background`` other ids
    (``bg-0``, ``bg-1``, ... in turn) when there are any. The replayed ids are the ``acc-`` ones.
    """
    for seq in range(1, per + 1):
        for a in range(actors):
            yield f"acc-{a}", seq
        if background:
            turn = seq - 1
            yield f"bg-{turn % background}", turn // background + 1


async def prepare(
    n: int,
    kind: str,
    path: str,
    actors: int,
    background: int = 0,
    snapshot_before_end: int = 0,
) -> Result:
    """Store ``n // actors`` events for each of ``actors`` ids, interleaved (see
    :func:`history`), and maybe a snapshot of each ``acc-`` id."""
    per = n // actors
    codec = serializer()
    journal = open_journal(kind, "normal" if kind == "sqlite" else "never", path)
    try:
        batch: list[AtomicWrite] = []
        for persistence_id, seq in history(actors, per, background):
            batch.append(AtomicWrite([record(codec, persistence_id, seq, Deposited(seq))]))
            if len(batch) == _PREPARE_BATCH:
                await _write(journal, batch)
                batch = []
        if batch:
            await _write(journal, batch)
    finally:
        await journal.close()
    if snapshot_before_end:
        await _save_snapshots(codec, kind, path, actors, per - snapshot_before_end)
    return {}


async def _save_snapshots(codec: Serializer, kind: str, path: str, actors: int, at: int) -> None:
    store = open_snapshot_store(kind, snapshot_path(kind, path))
    try:
        state = AccountState(events=at, balance=at * (at + 1) // 2)
        manifest, payload = codec.encode(state)
        for a in range(actors):
            await store.save(SnapshotMetadata(f"acc-{a}", at), manifest, payload)
    finally:
        await store.close()


async def replay(n: int, kind: str, path: str, actors: int, snapshot_before_end: int = 0) -> Result:
    """Read every id's events (concurrently) and fold them into state; speed and peak memory."""
    per = n // actors
    codec = serializer()
    before = rss_bytes()
    journal = open_journal(kind, "full" if kind == "sqlite" else "always", path)
    store = open_snapshot_store(kind, snapshot_path(kind, path)) if snapshot_before_end else None

    async def recover(persistence_id: str) -> None:
        events = balance = 0
        if store is not None:
            offered = await store.load(persistence_id, SnapshotSelectionCriteria.latest())
            if offered is None:
                raise AssertionError(f"{persistence_id}: no snapshot stored")
            state: Any = codec.decode_one(offered.manifest, offered.payload, persistence_id)
            events, balance = state.events, state.balance
        # As recovery reads: pages of rows, decoded a page at a time (upcasted or failing rows,
        # none here, would be left to ``decode``).
        async for rows in row_pages(journal, persistence_id, events + 1):
            decoded: list[Any] = codec.decode_rows(rows)
            if len(decoded) != len(rows):
                raise AssertionError(f"{persistence_id}: a row left to the slow decode path")
            for event in decoded:
                balance += event.amount
            events += len(decoded)
        if events != per:
            raise AssertionError(f"{persistence_id}: recovered {events} events, expected {per}")

    try:
        await journal.highest_sequence_nr("acc-0")  # opens it (and builds any index) untimed
        started = clock()
        async with asyncio.TaskGroup() as group:
            for a in range(actors):
                group.create_task(recover(f"acc-{a}"))
        elapsed = clock() - started
    finally:
        await journal.close()
        if store is not None:
            await store.close()
    return recovery_result(n, elapsed, before, snapshot_before_end * actors)
