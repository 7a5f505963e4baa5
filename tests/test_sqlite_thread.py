"""The thread each SQLite store runs its connection on: order, outcomes, cancellation, closing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from persistence import JournalClosedError
from persistence._sqlite_db import SqliteThread, ThreadClosedError
from persistence.journal import SqliteJournal

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
