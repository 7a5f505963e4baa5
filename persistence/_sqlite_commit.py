"""Group commit on a SQLite connection's thread: concurrent submissions share one transaction.

The SQLite journal's writes go through :class:`GroupCommit`. It hands each batch to the thread
with :meth:`~persistence._sqlite_db.SqliteThread.submit` and a plain callback for the answer, and
sends the batch that queued meanwhile from that callback: no task, no future and no coroutine
chain between the loop and the thread (each of those cost a loop turn or more per commit). A
sequential writer pays the two thread wake-ups and one loop turn per commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from persistence._sqlite_db import LazySqlite, ThreadClosedError

I = TypeVar("I")  # noqa: E741 (the item type of a group commit)
R = TypeVar("R")


class GroupCommit(Generic[I, R]):
    """Concurrent submissions share one call of ``fn(connection, items)`` on the connection's
    thread (one transaction); ``fn`` returns one result per item, in order.

    The submissions of one loop turn go together: the first schedules the call for the end of
    the turn. While a call is in flight, later submissions queue; its answer (a plain callback
    from the thread) settles its submitters' futures and sends everything queued meanwhile as
    the next call, at most ``max_batch`` items per call (a larger submission goes alone). A
    failure fails every submission of that call with the error of
    :meth:`~persistence._sqlite_db.LazySqlite.translate`; ``done()`` runs after every call that
    succeeded.
    """

    __slots__ = (
        "_db",
        "_done",
        "_fn",
        "_idle",
        "_in_flight",
        "_max_batch",
        "_opener",
        "_operation",
        "_pending",
        "_sending",
    )

    def __init__(
        self,
        db: LazySqlite,
        operation: str,
        fn: Callable[[sqlite3.Connection, list[I]], list[R]],
        *,
        max_batch: int,
        done: Callable[[], None],
    ) -> None:
        self._db = db
        self._operation = operation
        self._fn = fn
        self._max_batch = max_batch
        self._done = done
        self._pending: list[tuple[Sequence[I], asyncio.Future[list[R]]]] = []
        self._in_flight: list[tuple[Sequence[I], asyncio.Future[list[R]]]] = []
        self._sending = False
        """Whether a call is scheduled, opening the file or in flight."""
        self._idle: list[asyncio.Future[None]] = []
        self._opener: asyncio.Task[None] | None = None

    def submit(self, items: Sequence[I]) -> asyncio.Future[list[R]]:
        """Queue ``items``; the future resolves with their results."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[R]] = loop.create_future()
        self._pending.append((items, future))
        if not self._sending:
            self._sending = True
            loop.call_soon(self._send)
        return future

    async def drain(self) -> None:
        """Wait until everything submitted so far has been answered."""
        while self._sending:
            idle: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle.append(idle)
            await idle

    def _send(self) -> None:
        thread = self._db.thread
        if thread is None:  # first use: open the file, then send
            self._opener = asyncio.ensure_future(self._open_and_send())
            return
        batch = self._take_batch()
        self._in_flight = batch
        items = list(batch[0][0]) if len(batch) == 1 else [i for items, _ in batch for i in items]
        try:
            thread.submit(self._answered, self._fn, items)
        except ThreadClosedError as exc:
            self._answered([], exc)

    async def _open_and_send(self) -> None:
        try:
            await self._db.connection(self._operation, closing=True)
        except BaseException as exc:  # every waiting submitter learns why
            batch, self._pending = self._pending, []
            for _, future in batch:
                if not future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
            self._now_idle()
            if not isinstance(exc, Exception):
                raise
            return  # the submitters have the error: the task itself ends quietly
        finally:
            self._opener = None
        self._send()

    def _answered(self, results: list[R], error: BaseException | None) -> None:
        batch, self._in_flight = self._in_flight, []
        if error is not None:
            failure = self._db.translate(self._operation, error)
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
        elif len(batch) == 1:
            future = batch[0][1]
            if not future.done():
                future.set_result(results)
            self._done()
        else:
            start = 0
            for items, future in batch:
                end = start + len(items)
                if not future.done():
                    future.set_result(results[start:end])
                start = end
            self._done()
        if self._pending:
            self._send()
        else:
            self._now_idle()

    def _now_idle(self) -> None:
        self._sending = False
        idle, self._idle = self._idle, []
        for waiter in idle:
            if not waiter.done():
                waiter.set_result(None)

    def _take_batch(self) -> list[tuple[Sequence[I], asyncio.Future[list[R]]]]:
        count = 0
        for index, (items, _) in enumerate(self._pending):
            count += len(items)
            if count >= self._max_batch:
                batch, self._pending = self._pending[: index + 1], self._pending[index + 1 :]
                return batch
        batch, self._pending = self._pending, []
        return batch
