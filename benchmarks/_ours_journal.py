"""Journal-level variants: our journals called directly, without actors (their own overhead).

Also what the actor-level variants share: opening a journal or snapshot store by kind and mode,
the serializer with the benchmark's types registered, and preparing stored histories.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks._common import AccountState, Deposited, clock, rate, recovery_result, rss_bytes
from benchmarks._harness import Result
from persistence.journal import (
    AtomicWrite,
    FileJournal,
    Journal,
    PersistentRecord,
    SqliteJournal,
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


def serializer() -> Serializer:
    """The default serializer with the benchmark's event and snapshot types registered."""
    default_serializer.register(Deposited, "Deposited")
    default_serializer.register(AccountState, "AccountState")
    return default_serializer


def open_journal(kind: str, mode: str, path: str) -> Journal:
    """``SqliteJournal(path, synchronous=mode)`` or ``FileJournal(path, fsync=mode)``."""
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


async def _write(journal: Journal, records: list[PersistentRecord]) -> None:
    [outcome] = await journal.write([AtomicWrite(records)])
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
            await _write(journal, [record(codec, "acc-0", seq, Deposited(seq))])
        elapsed = clock() - started
    finally:
        await journal.close()
    return {"events/s": rate(n, elapsed)}


async def write_many(n: int, kind: str, mode: str, path: str, actors: int) -> Result:
    """``actors`` concurrent writers, each writing its events one atomic write at a time."""
    per = n // actors
    codec = serializer()
    journal = open_journal(kind, mode, path)

    async def writer(persistence_id: str) -> None:
        for seq in range(1, per + 1):
            await _write(journal, [record(codec, persistence_id, seq, Deposited(seq))])

    try:
        await journal.highest_sequence_nr("acc-0")
        started = clock()
        async with asyncio.TaskGroup() as group:
            for a in range(actors):
                group.create_task(writer(f"acc-{a}"))
        elapsed = clock() - started
    finally:
        await journal.close()
    return {"events/s": rate(actors * per, elapsed)}


async def prepare(
    n: int, kind: str, path: str, actors: int, snapshot_before_end: int = 0
) -> Result:
    """Store ``n // actors`` events for each of ``actors`` ids, maybe with a snapshot each."""
    per = n // actors
    codec = serializer()
    journal = open_journal(kind, "normal" if kind == "sqlite" else "never", path)
    try:
        for a in range(actors):
            persistence_id = f"acc-{a}"
            for start in range(1, per + 1, _PREPARE_BATCH):
                stop = min(start + _PREPARE_BATCH, per + 1)
                await _write(
                    journal,
                    [
                        record(codec, persistence_id, seq, Deposited(seq))
                        for seq in range(start, stop)
                    ],
                )
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
        decode = codec.decode_one
        async for page in journal.replay(persistence_id, events + 1):
            for stored in page:
                event: Any = decode(stored.manifest, stored.payload, persistence_id)
                events += 1
                balance += event.amount
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
