"""Behaviour of the SQLite journal and snapshot store beyond the conformance suites: files,
pragmas, failures of the store, locks held by other processes, group commit, paging, resource
warnings, and reading without writing (read-only journals, ``python -m persistence verify``)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from persistence import (
    JournalClosedError,
    JournalError,
    SnapshotStoreClosedError,
    SnapshotStoreError,
)
from persistence._cli import main
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
                f"cannot write events: sqlite journal {str(path)!r}: database is locked: another "
                "process (or another connection) holds the database; waited 0.05 s "
                "(busy_timeout) for it before giving up"
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


async def test_untagged_writes_after_deleting_the_newest_events_never_reuse_their_orderings(
    tmp_path: Path,
) -> None:
    """Untagged batches let SQLite number the rows, except while a deletion holds orderings."""
    journal = SqliteJournal(tmp_path / "j.db")
    try:
        three = AtomicWrite([PersistentRecord("a", n, "Evt", b"e", "w", 7, ()) for n in (1, 2, 3)])
        assert await journal.write([three]) == [None]
        await journal.delete_to("a", 3)
        assert await journal.write([event("b", 1), event("c", 1)]) == [None, None]
        assert await journal.write([event("b", 2), event("c", 2)]) == [None, None]
        assert await journal.write([event("d", 1)]) == [None]
        stored = [
            (t.ordering, t.record.persistence_id) async for p in journal.all_events() for t in p
        ]
        assert stored == [(4, "b"), (5, "c"), (6, "b"), (7, "c"), (8, "d")]
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
    worker = thread._worker  # the connection's thread, which ends when the journal is collected
    del thread
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del journal
        gc.collect()
    worker.join(timeout=5)
    assert not worker.is_alive()
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


# -- validation before the transaction ---------------------------------------------------------


async def test_a_lone_surrogate_in_one_write_of_a_group_commit_rejects_that_write_alone(
    tmp_path: Path,
) -> None:
    """The writes of one loop turn share a transaction; one unstorable tag must not sink it."""
    journal = SqliteJournal(tmp_path / "j.db")
    statements: list[str] = []
    try:
        await journal.highest_sequence_nr("open")

        def trace(conn: sqlite3.Connection) -> None:
            conn.set_trace_callback(statements.append)

        await journal._db.run("trace", trace)
        outcomes = await asyncio.gather(
            journal.write([event("a", 1)]),
            journal.write([event("bad", 1, tags=("ok", "x\udc80"))]),
            journal.write([event("b", 1)]),
        )
        assert outcomes[0] == outcomes[2] == [None]
        [rejection] = outcomes[1]
        assert type(rejection) is JournalError
        assert str(rejection) == (
            "invalid atomic write, persistence_id='bad', sequence_nr=1: the tag 'x\\udc80' cannot "
            "be encoded as UTF-8 (surrogates not allowed: '\\udc80' at index 1)"
        )
        assert statements.count("COMMIT") == 1
        assert await journal.persistence_ids() == ["a", "b"]
    finally:
        await journal.close()


# -- a lock held by another process --------------------------------------------------------------

HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("CREATE TABLE IF NOT EXISTS other (x)")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT INTO other VALUES (1)")
print("locked", flush=True)
sys.stdin.read()
"""
"""A child process that holds the write lock of the database ``argv[1]`` until killed."""


@asynccontextmanager
async def write_lock_held_by_a_child(path: Path) -> AsyncIterator[None]:
    """Another process holds the write lock of ``path`` until the block ends (then SIGKILL)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD_WRITE_LOCK,
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert await child.stdout.readline() == b"locked\n"
        yield
    finally:
        child.kill()  # the lock goes with the process
        await child.wait()


async def test_a_database_locked_by_another_process_fails_with_an_error_saying_so_and_how_long(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    journal = SqliteJournal(path, busy_timeout=0.05)
    store = SqliteSnapshotStore(path, busy_timeout=0.1)
    fresh = SqliteJournal(path, busy_timeout=0.05)
    try:
        await journal.write([event("a", 1)])
        async with write_lock_held_by_a_child(path):
            with pytest.raises(JournalError) as raised:
                await journal.write([event("a", 2)])
            locked = (
                "database is locked: another process (or another connection) holds the "
                "database; waited {} s (busy_timeout) for it before giving up"
            )
            assert type(raised.value) is JournalError
            assert str(raised.value) == (
                f"cannot write events: sqlite journal {str(path)!r}: {locked.format(0.05)}"
            )
            with pytest.raises(JournalError) as raised:  # opening applies the schema: a write
                await fresh.highest_sequence_nr("a")
            assert str(raised.value) == (
                f"cannot open sqlite journal {str(path)!r}: {locked.format(0.05)}"
            )
            with pytest.raises(SnapshotStoreError) as failed:
                await store.load("a", SnapshotSelectionCriteria.latest())
            assert str(failed.value) == (
                f"cannot open sqlite snapshot store {str(path)!r}: {locked.format(0.1)}"
            )
            assert [r.sequence_nr for r in await replayed(journal, "a")] == [1]  # reads go on
        assert await journal.write([event("a", 2)]) == [None]
        assert await fresh.highest_sequence_nr("a") == 2
    finally:
        await journal.close()
        await fresh.close()
        await store.close()


# -- reading without writing ---------------------------------------------------------------------


def names(directory: Path) -> list[str]:
    """The names of the files in ``directory``, sorted."""
    return sorted(entry.name for entry in directory.iterdir())


def snapshot_of(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Every file in ``directory``: its modification time (ns) and contents."""
    return {
        entry.name: (entry.stat().st_mtime_ns, entry.read_bytes())
        for entry in sorted(directory.iterdir())
    }


async def write_sample(path: Path) -> None:
    journal = SqliteJournal(path)
    try:
        await journal.write([event("acc-1", 1, tags=("t",)), event("acc-2", 1)])
        await journal.write([event("acc-1", 2, tags=("t",))])
    finally:
        await journal.close()


async def test_a_read_only_journal_reads_everything_and_creates_or_changes_no_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    await write_sample(path)
    before = snapshot_of(tmp_path)
    assert list(before) == ["j.db"]
    journal = SqliteJournal(path, read_only=True)
    try:
        assert journal.read_only
        assert await journal.persistence_ids() == ["acc-1", "acc-2"]
        assert [r.sequence_nr for r in await replayed(journal, "acc-1")] == [1, 2]
        assert await journal.highest_sequence_nr("acc-1") == 2
        tagged = [t.record.sequence_nr async for page in journal.events_by_tag("t") for t in page]
        assert tagged == [1, 2]
        assert await journal.highest_ordering() == 3
        assert snapshot_of(tmp_path) == before
    finally:
        await journal.close()
    assert snapshot_of(tmp_path) == before


async def test_a_read_only_journal_refuses_writes_and_deletions(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    await write_sample(path)
    journal = SqliteJournal(path, read_only=True)
    try:
        message = (
            "cannot {}: sqlite journal {!r} is open read-only; open it without read_only=True to "
            "change it"
        )
        with pytest.raises(JournalError) as raised:
            await journal.write([event("acc-1", 3)])
        assert str(raised.value) == message.format("write events", str(path))
        with pytest.raises(JournalError) as raised:
            await journal.delete_to("acc-1", 1)
        assert str(raised.value) == message.format("delete events", str(path))
        assert await journal.highest_sequence_nr("acc-1") == 2
    finally:
        await journal.close()


async def test_a_read_only_journal_sees_the_commits_still_in_the_wal_of_an_open_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    writer = SqliteJournal(path)
    reader = SqliteJournal(path, read_only=True)
    try:
        await writer.write([event("a", 1), event("b", 1)])
        assert (tmp_path / "j.db-wal").stat().st_size > 0  # not checkpointed yet
        assert await reader.persistence_ids() == ["a", "b"]
        await writer.write([event("a", 2)])
        assert [r.sequence_nr for r in await replayed(reader, "a")] == [1, 2]
    finally:
        await reader.close()
        await writer.close()


async def test_a_read_only_journal_reads_beside_another_process_holding_the_write_lock(
    tmp_path: Path,
) -> None:
    """A live writer has a -wal file: reading goes through it, without locks or new files."""
    path = tmp_path / "j.db"
    await write_sample(path)
    async with write_lock_held_by_a_child(path):
        files = names(tmp_path)
        assert files == ["j.db", "j.db-shm", "j.db-wal"]
        journal = SqliteJournal(path, read_only=True, busy_timeout=0.05)
        try:
            assert await journal.persistence_ids() == ["acc-1", "acc-2"]
            assert [r.sequence_nr for r in await replayed(journal, "acc-1")] == [1, 2]
        finally:
            await journal.close()
        assert names(tmp_path) == files


# -- python -m persistence verify ----------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def unprivileged(args: list[str]) -> list[str]:
    """``args`` run so that file permissions apply: root ignores them, but not inside a user
    namespace that does not map root (the files' owner bits apply then)."""
    return ["unshare", "--user", *args] if os.geteuid() == 0 else args


def test_verify_reads_an_intact_journal_without_creating_or_changing_any_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.db"
    asyncio.run(write_sample(path))
    before = snapshot_of(tmp_path)
    assert main(["verify", f"sqlite:{path}"]) == 0
    assert capsys.readouterr().out == f"ok: {path} passes sqlite's integrity_check\n"
    assert snapshot_of(tmp_path) == before


def test_verify_of_an_intact_journal_on_read_only_media_says_ok(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    path = media / "j.db"
    asyncio.run(write_sample(path))
    path.chmod(0o444)
    media.chmod(0o555)
    try:
        done = subprocess.run(
            unprivileged([sys.executable, "-m", "persistence", "verify", f"sqlite:{path}"]),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        media.chmod(0o755)
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"ok: {path} passes sqlite's integrity_check\n",
        "",
    )
    assert names(media) == ["j.db"]


def test_verify_of_a_file_it_may_not_read_is_an_error_not_corruption(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    asyncio.run(write_sample(path))
    path.chmod(0)
    done = subprocess.run(
        unprivileged([sys.executable, "-m", "persistence", "verify", f"sqlite:{path}"]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f"error: cannot verify {str(path)!r}: unable to open database file\n",
    )


def test_verify_beside_a_live_writer_holding_the_write_lock_says_ok_and_adds_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.db"
    asyncio.run(write_sample(path))
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "locked\n"
            files = names(tmp_path)
            database = path.read_bytes()
            assert main(["verify", f"sqlite:{path}"]) == 0
            assert capsys.readouterr().out == f"ok: {path} passes sqlite's integrity_check\n"
            assert names(tmp_path) == files
            assert path.read_bytes() == database
        finally:
            child.kill()


def test_verify_does_not_trust_a_lock_free_check_of_a_file_that_changed_meanwhile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.db"
    asyncio.run(write_sample(path))
    connect = sqlite3.connect

    def connect_then_write(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        with path.open("ab") as file:  # a writer that came along while verify was reading
            file.write(bytes(4096))
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect_then_write)
    assert main(["verify", f"sqlite:{path}"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        f"error: cannot verify {str(path)!r}: it changed while it was checked (another process "
        "opened it for writing meanwhile); run verify again\n",
    )


def test_verify_still_reports_a_damaged_file_as_corrupted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.db"
    path.write_bytes(b"this is not a database" * 100)
    assert main(["verify", f"sqlite:{path}"]) == 1
    assert capsys.readouterr().out == f"corrupted: {path}: file is not a database\n"


def test_ids_and_dump_read_an_sqlite_journal_on_read_only_media(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    path = media / "j.db"
    asyncio.run(write_sample(path))
    path.chmod(0o444)
    media.chmod(0o555)
    try:
        runs = [
            subprocess.run(
                unprivileged([sys.executable, "-m", "persistence", *args, f"sqlite:{path}", *ids]),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            for args, ids in ((["ids"], []), (["dump"], ["acc-1"]))
        ]
    finally:
        media.chmod(0o755)
    assert [(run.returncode, run.stderr) for run in runs] == [(0, ""), (0, "")]
    assert runs[0].stdout.split() == ["acc-1", "acc-2"]
    assert [json.loads(line)["sequence_nr"] for line in runs[1].stdout.splitlines()] == [1, 2]
    assert names(media) == ["j.db"]
