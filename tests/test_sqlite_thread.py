"""The thread each SQLite store runs its connection on: order, outcomes, cancellation, closing;
and the group commit that hands the SQLite journal's batches to it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from persistence import JournalClosedError, JournalError
from persistence._sqlite_db import SqliteThread, ThreadClosedError
from persistence.journal import AtomicWrite, PersistentRecord, SqliteJournal

SCHEMA = "CREATE TABLE IF NOT EXISTS t (x INTEGER)"


async def open_thread(path: Path) -> SqliteThread:
    return await SqliteThread.open(path, "normal", SCHEMA)


def sqlite_threads(path: Path) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == f"sqlite {path}"]


async def test_calls_run_one_after_another_in_call_order_on_one_thread_off_the_loop(
    tmp_path: Path,
) -> None:
    thread = await open_thread(tmp_path / "t.db")
    seen: list[tuple[int, int]] = []

    def record(conn: sqlite3.Connection, i: int) -> int:
        conn.execute("INSERT INTO t VALUES (?)", (i,))
        seen.append((i, threading.get_ident()))
        return i * 10

    try:
        results = await asyncio.gather(*(thread.run(record, i) for i in range(20)))
    finally:
        await thread.close()

    assert results == [i * 10 for i in range(20)]
    assert [i for i, _ in seen] == list(range(20))
    assert len({ident for _, ident in seen}) == 1
    assert seen[0][1] != threading.get_ident()


async def test_an_exception_raised_on_the_thread_reaches_its_caller_and_the_thread_goes_on(
    tmp_path: Path,
) -> None:
    thread = await open_thread(tmp_path / "t.db")

    def fail(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM missing")

    try:
        with pytest.raises(sqlite3.OperationalError, match="no such table: missing"):
            await thread.run(fail)
        assert await thread.run(lambda conn: conn.execute("SELECT 7").fetchone()[0]) == 7
    finally:
        await thread.close()


async def test_a_cancelled_caller_leaves_the_thread_serving_the_next_calls(tmp_path: Path) -> None:
    thread = await open_thread(tmp_path / "t.db")
    release = threading.Event()

    def blocked(conn: sqlite3.Connection) -> str:
        release.wait(timeout=10)
        return "late"

    try:
        waiting = asyncio.ensure_future(thread.run(blocked))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        assert await thread.run(lambda conn: "next") == "next"
    finally:
        await thread.close()


async def test_close_lets_the_calls_before_it_finish_then_ends_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    thread = await open_thread(path)
    calls = [asyncio.ensure_future(thread.run(lambda conn, i=i: i)) for i in range(5)]
    await asyncio.sleep(0)  # the calls are queued

    await thread.close()
    await thread.close()  # closing twice is harmless

    assert [await call for call in calls] == list(range(5))
    worker = thread._worker
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert sqlite_threads(path) == []


async def test_a_call_after_close_raises_instead_of_waiting_forever(tmp_path: Path) -> None:
    thread = await open_thread(tmp_path / "t.db")
    await thread.close()

    with pytest.raises(ThreadClosedError) as raised:
        await thread.run(lambda conn: None)
    assert str(raised.value) == "the SQLite connection is closed"


async def test_a_failed_open_raises_its_cause_and_ends_its_thread(tmp_path: Path) -> None:
    path = tmp_path / "a-directory"
    path.mkdir()

    with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
        await open_thread(path)

    for worker in sqlite_threads(path):
        worker.join(timeout=5)
    assert sqlite_threads(path) == []


async def test_a_store_call_that_meets_a_closed_thread_says_the_store_is_closed(
    tmp_path: Path,
) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    thread = await journal._db.connection("read the highest sequence number")
    await journal.close()

    with pytest.raises(JournalClosedError) as raised:
        await journal._db.run_on(thread, "replay events", lambda conn: None)
    assert str(raised.value) == (
        f"cannot replay events: sqlite journal {str(tmp_path / 'j.db')!r} is closed; create a "
        "new instance to use it again"
    )


async def test_submit_answers_on_the_loop_thread_with_the_result_or_the_exception(
    tmp_path: Path,
) -> None:
    thread = await open_thread(tmp_path / "t.db")
    answers: list[tuple[object, BaseException | None, int]] = []
    answered = asyncio.Event()

    def answer(result: object, error: BaseException | None) -> None:
        answers.append((result, error, threading.get_ident()))
        if len(answers) == 2:
            answered.set()

    def fail(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM missing")

    try:
        thread.submit(answer, lambda conn, x: x * 2, 21)
        thread.submit(answer, fail)
        await answered.wait()
    finally:
        await thread.close()

    [(result, error, ident), (_, failure, _)] = answers
    assert (result, error, ident) == (42, None, threading.get_ident())
    assert type(failure) is sqlite3.OperationalError
    assert str(failure) == "no such table: missing"
    with pytest.raises(ThreadClosedError, match=r"^the SQLite connection is closed$"):
        thread.submit(answer, lambda conn: None)


# -- group commit on the thread (the SQLite journal's writes) ----------------------------------


def event(pid: str, seq: int) -> AtomicWrite:
    return AtomicWrite([PersistentRecord(pid, seq, "Evt", b"e", "w", 7, ())])


async def hold_the_thread(journal: SqliteJournal) -> tuple[threading.Event, asyncio.Future[None]]:
    """Occupy the journal's thread until the returned event is set."""
    release = threading.Event()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def hold(conn: sqlite3.Connection) -> None:
        loop.call_soon_threadsafe(started.set)
        release.wait(timeout=10)

    held = asyncio.ensure_future(journal._db.run("hold", hold))
    await started.wait()
    return release, held


async def test_writes_made_while_a_batch_is_in_flight_share_the_next_transaction(
    tmp_path: Path,
) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    statements: list[str] = []
    try:
        await journal._db.run("trace", lambda conn: conn.set_trace_callback(statements.append))
        release, held = await hold_the_thread(journal)
        first = asyncio.ensure_future(journal.write([event("a", 1)]))
        await asyncio.sleep(0)  # its batch is handed to the thread, behind the held call
        later = []
        for pid in "bcd":  # one per loop turn
            later.append(asyncio.ensure_future(journal.write([event(pid, 1)])))
            await asyncio.sleep(0)
        release.set()
        await held
        assert await first == [None]
        assert [await write for write in later] == [[None]] * 3
        assert statements.count("COMMIT") == 2
        assert await journal.persistence_ids() == ["a", "b", "c", "d"]
    finally:
        await journal.close()


async def test_a_writer_cancelled_while_its_batch_is_in_flight_leaves_the_batch_to_finish(
    tmp_path: Path,
) -> None:
    """Its event may be stored (the outcome was in doubt); the other writers get answers."""
    journal = SqliteJournal(tmp_path / "j.db")
    try:
        await journal.highest_sequence_nr("open")
        release, held = await hold_the_thread(journal)
        cancelled = asyncio.ensure_future(journal.write([event("a", 1)]))
        other = asyncio.ensure_future(journal.write([event("b", 1)]))
        await asyncio.sleep(0)
        cancelled.cancel()
        release.set()
        await held
        assert await other == [None]
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert await journal.persistence_ids() == ["a", "b"]
        assert await journal.write([event("c", 1)]) == [None]
    finally:
        await journal.close()


async def test_every_write_waiting_for_a_failed_open_gets_the_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    journal = SqliteJournal(tmp_path / "file" / "j.db")
    try:
        outcomes = await asyncio.gather(
            *(journal.write([event(f"w{i}", 1)]) for i in range(3)), return_exceptions=True
        )
        assert [type(outcome) for outcome in outcomes] == [JournalError] * 3
        assert all(str(outcome).startswith("cannot open sqlite journal ") for outcome in outcomes)
    finally:
        await journal.close()


async def test_close_waits_for_the_writes_queued_behind_the_batch_in_flight(
    tmp_path: Path,
) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    await journal.highest_sequence_nr("open")
    release, held = await hold_the_thread(journal)
    first = asyncio.ensure_future(journal.write([event("a", 1)]))
    await asyncio.sleep(0)
    queued = asyncio.ensure_future(journal.write([event("b", 1)]))
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(journal.close())
    await asyncio.sleep(0)
    assert not closing.done()
    release.set()
    await held
    await closing
    assert await first == await queued == [None]
    again = SqliteJournal(tmp_path / "j.db")
    try:
        assert await again.persistence_ids() == ["a", "b"]
    finally:
        await again.close()
