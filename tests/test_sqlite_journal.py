"""Behaviour of the SQLite journal and snapshot store beyond the conformance suites: files,
pragmas, failures of the store, group commit, paging and resource warnings."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import warnings
from pathlib import Path

import pytest

from persistence import (
    JournalClosedError,
    JournalError,
    SnapshotStoreClosedError,
    SnapshotStoreError,
)
from persistence.journal import AtomicWrite, PersistentRecord, SqliteJournal
from persistence.journal._group_commit import GroupCommitter
from persistence.snapshot import SnapshotMetadata, SnapshotSelectionCriteria, SqliteSnapshotStore


def event(pid: str, seq: int, payload: bytes = b"e", tags: tuple[str, ...] = ()) -> AtomicWrite:
    return AtomicWrite([PersistentRecord(pid, seq, "Evt", payload, "w", 7, tags)])


async def replayed(journal: SqliteJournal, pid: str) -> list[PersistentRecord]:
    return [r async for page in journal.replay(pid) for r in page]


async def pragma(journal: SqliteJournal, name: str) -> object:
    def read(conn: sqlite3.Connection) -> object:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]

    return await journal._db.run("read a pragma", read)


async def test_the_file_and_its_directories_are_created_on_first_use_not_before(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a" / "b" / "journal.db"
    journal = SqliteJournal(path)
    assert not (tmp_path / "a").exists()
    try:
        assert await journal.highest_sequence_nr("x") == 0
        assert path.is_file()
    finally:
        await journal.close()


async def test_a_relative_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    journal = SqliteJournal("data/bank.db")
    try:
        assert await journal.write([event("a", 1)]) == [None]
    finally:
        await journal.close()
    assert (tmp_path / "data" / "bank.db").is_file()


@pytest.mark.parametrize(("synchronous", "level"), [("full", 2), ("normal", 1), ("off", 0)])
async def test_the_file_is_in_wal_mode_with_the_chosen_synchronous_level(
    tmp_path: Path, synchronous: str, level: int
) -> None:
    journal = SqliteJournal(tmp_path / "j.db", synchronous=synchronous)  # type: ignore[arg-type]
    try:
        assert await pragma(journal, "journal_mode") == "wal"
        assert await pragma(journal, "synchronous") == level
    finally:
        await journal.close()


def test_bad_constructor_arguments_fail_fast_with_the_accepted_values(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"^synchronous must be one of \('full', 'normal', 'off'\), got 'fast'$"
    ):
        SqliteJournal(tmp_path / "j.db", synchronous="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^page_size must be at least 1, got 0$"):
        SqliteJournal(tmp_path / "j.db", page_size=0)
    with pytest.raises(ValueError, match=r"^busy_timeout must not be negative, got -1$"):
        SqliteSnapshotStore(tmp_path / "s.db", busy_timeout=-1)


async def test_a_file_that_is_not_a_database_fails_with_a_journal_error_naming_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    journal = SqliteJournal(path)
    try:
        with pytest.raises(JournalError) as raised:
            await journal.highest_sequence_nr("a")
        assert str(raised.value) == (
            f"cannot open sqlite journal {str(path)!r}: file is not a database"
        )
        assert isinstance(raised.value.__cause__, sqlite3.DatabaseError)
    finally:
        await journal.close()


async def test_a_path_below_a_regular_file_fails_with_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    journal = SqliteJournal(tmp_path / "file" / "j.db")
    try:
        with pytest.raises(JournalError, match=r"^cannot open sqlite journal .*: ") as raised:
            await journal.write([event("a", 1)])
        assert isinstance(raised.value.__cause__, OSError)
    finally:
        await journal.close()


async def test_a_locked_database_fails_the_batch_and_the_journal_recovers(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = SqliteJournal(path, busy_timeout=0.05)
    try:
        await journal.write([event("a", 1)])
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            with pytest.raises(JournalError) as raised:
                await journal.write([event("a", 2)])
            assert str(raised.value) == (
                f"cannot write events: sqlite journal {str(path)!r}: database is locked"
            )
            assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        assert await journal.write([event("a", 2)]) == [None]
        assert [r.sequence_nr for r in await replayed(journal, "a")] == [1, 2]
    finally:
        await journal.close()


async def test_a_full_disk_fails_the_batch_with_a_journal_error_and_stores_nothing_of_it(
    tmp_path: Path,
) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    try:
        await journal.write([event("a", 1)])
        pages = await pragma(journal, "page_count")
        await pragma(journal, f"max_page_count = {pages}")
        with pytest.raises(
            JournalError, match=r"^cannot write events: .*: database or disk is full$"
        ):
            await journal.write([event("a", 2), event("b", 1, payload=bytes(1_000_000))])
        await pragma(journal, "max_page_count = 1073741823")
        assert [r.sequence_nr for r in await replayed(journal, "a")] == [1]
        assert await journal.highest_sequence_nr("b") == 0
        assert await journal.write([event("a", 2)]) == [None]
    finally:
        await journal.close()


async def test_concurrent_writes_share_one_transaction(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    statements: list[str] = []
    try:
        await journal.highest_sequence_nr("open")

        def trace(conn: sqlite3.Connection) -> None:
            conn.set_trace_callback(statements.append)

        await journal._db.run("trace", trace)
        results = await asyncio.gather(*(journal.write([event(f"w{i}", 1)]) for i in range(50)))
        assert results == [[None]] * 50
        assert statements.count("COMMIT") == 1
    finally:
        await journal.close()


async def test_replay_and_events_by_tag_read_one_page_per_round_trip(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db", page_size=3)
    try:
        await journal.write([event("a", n, tags=("t",)) for n in range(1, 11)])
        assert [len(page) async for page in journal.replay("a")] == [3, 3, 3, 1]
        assert [len(page) async for page in journal.replay("a", max_count=7)] == [3, 3, 1]
        assert [len(page) async for page in journal.events_by_tag("t", 2)] == [3, 3, 2]
    finally:
        await journal.close()


@pytest.mark.parametrize(
    "tags",
    [("-",), ("",), ("x", "x"), ('"quoted"', "a,b", "[1]", "ünï 😀"), ("null",)],
    ids=["dash", "empty", "duplicate", "json-like", "null"],
)
async def test_any_tags_come_back_unchanged_and_index_the_event_once(
    tmp_path: Path, tags: tuple[str, ...]
) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    try:
        await journal.write([event("a", 1, tags=tags)])
        [stored] = await replayed(journal, "a")
        assert stored.tags == tags
        assert isinstance(stored.tags, tuple)
        for tag in set(tags):
            by_tag = [t async for page in journal.events_by_tag(tag) for t in page]
            assert [t.record for t in by_tag] == [stored]
    finally:
        await journal.close()


async def test_a_never_opened_journal_closes_without_creating_its_file(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    await journal.close()
    with pytest.raises(JournalClosedError) as raised:
        await journal.write([event("a", 1)])
    assert str(raised.value) == (
        f"cannot write events: sqlite journal {str(tmp_path / 'j.db')!r} is closed; create a new "
        "instance to use it again"
    )
    assert journal.closed
    assert not (tmp_path / "j.db").exists()


async def test_writes_called_before_close_on_a_fresh_journal_are_stored(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    writes = [asyncio.ensure_future(journal.write([event(f"w{i}", 1)])) for i in range(5)]
    await asyncio.sleep(0)
    await journal.close()
    assert [await write for write in writes] == [[None]] * 5
    again = SqliteJournal(tmp_path / "j.db")
    try:
        assert await again.persistence_ids() == [f"w{i}" for i in range(5)]
    finally:
        await again.close()


async def test_an_opened_journal_that_is_never_closed_warns_when_collected(
    tmp_path: Path,
) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    await journal.highest_sequence_nr("a")
    thread = journal._db._thread
    assert thread is not None
    worker = thread._db._thread  # aiosqlite's thread, stopped when its connection is collected
    del thread
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del journal
        gc.collect()
    worker.join(timeout=5)
    await asyncio.sleep(0)  # its last callback into the loop
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert (
        f"sqlite journal {str(tmp_path / 'j.db')!r} was opened and never closed: await its close()"
        in messages
    )


async def test_a_journal_that_was_never_opened_does_not_warn(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    del journal
    gc.collect()  # a ResourceWarning would fail the test (warnings are errors)


async def test_journal_and_snapshot_store_can_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    journal = SqliteJournal(path)
    store = SqliteSnapshotStore(path)
    try:
        await journal.write([event("a", 1)])
        await store.save(SnapshotMetadata("a", 1, 10), "State", b"s")
        await journal.write([event("a", 2)])
    finally:
        await journal.close()
        await store.close()
    journal, store = SqliteJournal(path), SqliteSnapshotStore(path)
    try:
        assert [r.sequence_nr for r in await replayed(journal, "a")] == [1, 2]
        loaded = await store.load("a", SnapshotSelectionCriteria.latest())
        assert loaded is not None
        assert loaded.metadata == SnapshotMetadata("a", 1, 10)
    finally:
        await journal.close()
        await store.close()


async def test_a_snapshot_store_on_a_file_that_is_not_a_database_raises_snapshot_store_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"not a database at all" * 100)
    store = SqliteSnapshotStore(path)
    try:
        with pytest.raises(SnapshotStoreError) as raised:
            await store.load("a", SnapshotSelectionCriteria.latest())
        assert str(raised.value) == (
            f"cannot open sqlite snapshot store {str(path)!r}: file is not a database"
        )
    finally:
        await store.close()


async def test_a_closed_snapshot_store_says_so_and_what_to_do(tmp_path: Path) -> None:
    store = SqliteSnapshotStore(tmp_path / "s.db")
    await store.close()
    assert store.closed
    with pytest.raises(SnapshotStoreClosedError) as raised:
        await store.save(SnapshotMetadata("a", 1), "S", b"")
    assert str(raised.value) == (
        f"cannot save a snapshot: sqlite snapshot store {str(tmp_path / 's.db')!r} is closed; "
        "create a new instance to use it again"
    )


async def test_an_unreadable_tags_column_fails_the_replay_with_a_journal_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    journal = SqliteJournal(path)
    try:
        await journal.write([event("a", 1, tags=("t",))])
        damage = sqlite3.connect(path, isolation_level=None)
        try:
            damage.execute("UPDATE journal SET tags = '[oops' WHERE persistence_id = 'a'")
        finally:
            damage.close()
        with pytest.raises(JournalError) as raised:
            await replayed(journal, "a")
        assert str(raised.value).startswith(
            f"cannot replay events: sqlite journal {str(path)!r}: unreadable tags column b'[oops': "
        )
    finally:
        await journal.close()


async def test_group_commit_cancels_waiting_writers_when_its_flush_is_cancelled() -> None:
    """A cancelled flush (e.g. at loop shutdown) never leaves a writer waiting forever."""
    started = asyncio.Event()

    async def stuck_flush(writes: list[AtomicWrite]) -> list[BaseException | None]:
        started.set()
        await asyncio.Event().wait()
        return []

    committer = GroupCommitter(stuck_flush)
    first = committer.submit([])
    await started.wait()
    second = committer.submit([])  # queued behind the stuck flush
    assert committer._task is not None
    committer._task.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert first.cancelled()
    assert second.cancelled()
