"""One SQLite connection living on a worker thread of its own, shared by the SQLite journal,
snapshot store and offset store.

Every call is one hop to that thread and back, so the stores run each whole operation
(``BEGIN`` ... ``COMMIT``, or a page of a query) as one plain function on that thread:
:meth:`SqliteThread.run`. The thread is ours rather than aiosqlite's: aiosqlite has no public way
to run a function on its thread, and its public calls take one hop per statement (measured: 30-45%
fewer sequential writes and small reads per second).

The hop is a queue to the thread and ``loop.call_soon_threadsafe`` back, nothing else:
:meth:`SqliteThread.submit` answers with a plain callback, which the journal's group commit
(:mod:`persistence._sqlite_commit`) uses so that no task, future or coroutine chain stands
between the loop and the thread.

Reading without writing (:func:`read_only_uri`): a ``mode=ro`` connection to a WAL database
still creates the ``-wal`` and ``-shm`` files next to it (and leaves them behind), and fails on
read-only media when they are missing. When there is no ``-wal`` file (no connection has the
database open, and every commit is in the main file), the file is opened ``immutable`` instead:
SQLite then creates nothing and takes no locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import warnings
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from queue import SimpleQueue
from typing import Any, Literal, TypeVar, cast, get_args

from persistence._errors import PersistenceError

Synchronous = Literal["full", "normal", "off"]
"""``PRAGMA synchronous``: ``full`` syncs the WAL on every commit (survives power loss);
``normal`` syncs at checkpoints only (survives a killed process, may lose the last commits on
power loss); ``off`` never syncs (survives a killed process, a power loss may corrupt the file)."""

DEFAULT_BUSY_TIMEOUT = 10.0
"""Seconds a statement waits for another connection's write lock (the journal and the snapshot
store may share one file) before failing with "database is locked"."""

T = TypeVar("T")


def read_only_uri(path: Path) -> str:
    """A URI that opens ``path`` for reading only, creating and changing nothing next to it.

    With a ``-wal`` (or rollback ``-journal``) file beside it, the database is open or was not
    cleanly closed: ``mode=ro`` reads those commits too, through the existing files. Without
    one, ``immutable=1`` reads the main file without locks or side files; it assumes nobody
    writes meanwhile, so callers that must be sure compare the file before and after reading.
    """
    uri = path.absolute().as_uri()
    if any(os.path.exists(f"{path}{suffix}") for suffix in ("-wal", "-journal")):
        return f"{uri}?mode=ro"
    return f"{uri}?mode=ro&immutable=1"


def describe(exc: BaseException, busy_timeout: float) -> str:
    """The message for a SQLite or OS failure; a lock held too long says who and how long."""
    if (
        isinstance(exc, sqlite3.OperationalError)
        and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # "database is locked"
    ):
        return (
            f"{exc}: another process (or another connection) holds the database; waited "
            f"{busy_timeout:g} s (busy_timeout) for it before giving up"
        )
    return str(exc)


def check_synchronous(synchronous: str) -> Synchronous:
    """``synchronous`` if it names a mode, else a ``ValueError`` listing the modes."""
    modes = get_args(Synchronous)
    if synchronous not in modes:
        raise ValueError(f"synchronous must be one of {modes}, got {synchronous!r}")
    return cast(Synchronous, synchronous)


Answer = Callable[[Any, "BaseException | None"], None]
"""Called on the loop once a call is done: ``(result, None)`` or ``(None, exception)``."""

_Call = tuple[
    "asyncio.AbstractEventLoop | None", "Answer | None", Callable[..., Any], tuple[Any, ...]
]
"""``(loop, answer, fn, args)``: run ``fn(*args)`` on the thread, then ``answer`` (if any) on
``loop`` with its outcome."""


class ThreadClosedError(Exception):
    """A call reached a :class:`SqliteThread` after :meth:`SqliteThread.close`."""


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller may have been cancelled meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _serve(calls: SimpleQueue[_Call | None]) -> None:
    """The worker thread: run each call in turn, answer it on its loop; stop at None."""
    error: BaseException | None
    while (call := calls.get()) is not None:
        loop, answer, fn, args = call
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # handed to the caller, whatever it is
            result, error = None, exc
        if answer is not None and loop is not None:
            # A closed loop raises RuntimeError: nobody waits for the outcome any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(answer, result, error)
        del call, loop, answer, fn, args, result, error  # hold nothing while waiting


class SqliteThread:
    """An open connection and the thread that owns it: every call runs there, in order."""

    __slots__ = ("_calls", "_closed", "_conn", "_worker")

    def __init__(
        self,
        calls: SimpleQueue[_Call | None],
        worker: threading.Thread,
        conn: sqlite3.Connection,
    ) -> None:
        self._calls = calls
        self._worker = worker
        self._conn = conn
        self._closed = False

    def __del__(self) -> None:
        # Never closed (the store warns about that): close the connection on its thread, which
        # then ends.
        if not getattr(self, "_closed", True):
            self._calls.put((None, None, sqlite3.Connection.close, (self._conn,)))
            self._calls.put(None)

    @classmethod
    async def open(
        cls,
        path: Path,
        synchronous: Synchronous,
        schema: str,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        *,
        read_only: bool = False,
    ) -> SqliteThread:
        """Create the parent directory, open ``path`` in WAL mode and apply ``schema``; with
        ``read_only``, open the existing file through :func:`read_only_uri` and nothing else.

        All of it runs on the new connection's thread; failures raise ``sqlite3.Error`` or
        ``OSError``.
        """

        def connect() -> sqlite3.Connection:
            # PARSE_COLNAMES lets a query name a converter for one column ("x [converter]").
            if read_only:
                conn = sqlite3.connect(
                    read_only_uri(path),
                    uri=True,
                    isolation_level=None,
                    detect_types=sqlite3.PARSE_COLNAMES,
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    path, isolation_level=None, detect_types=sqlite3.PARSE_COLNAMES
                )
            try:
                conn.execute(f"PRAGMA busy_timeout = {round(busy_timeout * 1000)}")
                if read_only:
                    conn.execute("PRAGMA query_only = ON")
                    return conn
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode != "wal":
                    raise sqlite3.OperationalError(f"cannot switch to WAL mode (stays {mode!r})")
                conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
                conn.executescript(f"BEGIN IMMEDIATE; {schema}; COMMIT;")
            except BaseException:
                conn.close()
                raise
            return conn

        calls: SimpleQueue[_Call | None] = SimpleQueue()
        # A daemon: a store the program forgot to close must not keep the interpreter from
        # exiting. Committed transactions are on disk either way.
        worker = threading.Thread(target=_serve, args=(calls,), name=f"sqlite {path}", daemon=True)
        worker.start()
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[sqlite3.Connection] = loop.create_future()
        calls.put((loop, partial(_settle, opened), connect, ()))
        try:
            conn = await opened
        except BaseException:
            calls.put(None)  # the thread ends once the open is over
            raise
        return cls(calls, worker, conn)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the connection's thread: one hop for all of it.

        Raises :class:`ThreadClosedError` after :meth:`close`.
        """
        if self._closed:
            raise ThreadClosedError("the SQLite connection is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, partial(_settle, future), fn, (self._conn, *args)))
        return await future

    def submit(self, answer: Answer, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(connection, *args)`` on the connection's thread, then ``answer(result,
        None)`` or ``answer(None, exception)`` on the running loop: the lean form of
        :meth:`run`. Raises :class:`ThreadClosedError` after :meth:`close`."""
        if self._closed:
            raise ThreadClosedError("the SQLite connection is closed")
        self._calls.put((asyncio.get_running_loop(), answer, fn, (self._conn, *args)))

    async def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL) once the calls before it are done,
        and end the thread. Later calls raise :class:`ThreadClosedError`."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()
        self._calls.put((loop, partial(_settle, closed), sqlite3.Connection.close, (self._conn,)))
        self._calls.put(None)
        await closed


class LazySqlite:
    """A SQLite file opened on first use: the state machine the SQLite stores share.

    Not opened -> open (first :meth:`run`, once, under a lock) -> closed (:meth:`close`). Every
    SQLite or OS failure is raised as ``error(...)`` naming the operation and the file (a lock
    held too long by someone else says so, and how long it waited); any call after ``close()``
    raises ``closed_error(...)``: closing is final. Opened and never closed, it warns with
    ``ResourceWarning`` when collected.
    """

    __slots__ = (
        "_busy_timeout",
        "_closed_error",
        "_error",
        "_opening",
        "_schema",
        "_synchronous",
        "_thread",
        "closed",
        "name",
        "path",
        "read_only",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        synchronous: str,
        schema: str,
        *,
        name: str,
        error: Callable[[str], PersistenceError],
        closed_error: Callable[[str], PersistenceError],
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        read_only: bool = False,
    ) -> None:
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must not be negative, got {busy_timeout}")
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self.name = f"{name} {str(self.path)!r}"
        self._synchronous = check_synchronous(synchronous)
        self._schema = schema
        self._error = error
        self._closed_error = closed_error
        self._thread: SqliteThread | None = None
        self._opening: asyncio.Lock | None = None
        self.read_only = read_only
        """Whether the file is opened through :func:`read_only_uri` (no schema, no writes)."""
        self.closed = False
        """Whether :meth:`close` was called."""

    @property
    def state(self) -> str:
        """``"not opened"``, ``"open"`` or ``"closed"``."""
        return "closed" if self.closed else "open" if self._thread else "not opened"

    def __del__(self) -> None:
        if getattr(self, "_thread", None) is not None and not getattr(self, "closed", True):
            warnings.warn(
                f"{self.name} was opened and never closed: await its close()",
                ResourceWarning,
                stacklevel=1,
            )

    def check_open(self, operation: str) -> None:
        """Raise the closed error if :meth:`close` was called."""
        if self.closed:
            raise self.closed_error(operation)

    def closed_error(self, operation: str) -> PersistenceError:
        """The error for ``operation`` attempted after :meth:`close`."""
        return self._closed_error(
            f"cannot {operation}: {self.name} is closed; create a new instance to use it again"
        )

    def error(self, operation: str, exc: BaseException) -> PersistenceError:
        """The error for ``operation`` failing with the SQLite or OS error ``exc``."""
        return self._error(f"cannot {operation}: {self.name}: {describe(exc, self._busy_timeout)}")

    def translate(self, operation: str, exc: BaseException) -> BaseException:
        """What a call of ``operation`` that failed on the thread with ``exc`` raises: the
        store's error (caused by ``exc``) for a SQLite or OS failure, the closed error if
        :meth:`close` came first, anything else as it is."""
        if isinstance(exc, sqlite3.Error | OSError):
            error = self.error(operation, exc)
        elif isinstance(exc, ThreadClosedError):  # close() came first: only it closes the thread
            error = self.closed_error(operation)
        else:
            return exc
        error.__cause__ = exc
        return error

    @property
    def thread(self) -> SqliteThread | None:
        """The open connection's thread, or None before the first use and after closing."""
        return self._thread

    async def connection(self, operation: str, *, closing: bool = False) -> SqliteThread:
        """The open connection, opening the file on first use.

        ``closing=True`` is for work submitted before :meth:`close` that close waits for: it
        may still open the file.
        """
        if self.closed and not closing:
            raise self.closed_error(operation)
        thread = self._thread
        if thread is not None:
            return thread
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self.closed and not closing:
                raise self.closed_error(operation)
            if self._thread is None:
                try:
                    self._thread = await SqliteThread.open(
                        self.path,
                        self._synchronous,
                        self._schema,
                        self._busy_timeout,
                        read_only=self.read_only,
                    )
                except (sqlite3.Error, OSError) as exc:
                    raise self._error(
                        f"cannot open {self.name}: {describe(exc, self._busy_timeout)}"
                    ) from exc
            return self._thread

    async def run(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the connection's thread, opening it if need be."""
        return await self.run_on(await self.connection(operation), operation, fn, *args)

    async def run_on(
        self, thread: SqliteThread, operation: str, fn: Callable[..., T], *args: Any
    ) -> T:
        """Run ``fn(connection, *args)`` on ``thread``."""
        try:
            return await thread.run(fn, *args)
        except (sqlite3.Error, OSError, ThreadClosedError) as exc:
            raise self.translate(operation, exc) from exc

    async def close(self, before_close: Callable[[], Awaitable[None]] | None = None) -> None:
        """Refuse new calls, await ``before_close()`` (e.g. pending writes), close the file.

        Closing twice is harmless.
        """
        if self.closed:
            return
        self.closed = True
        try:
            if before_close is not None:
                await before_close()
        finally:
            if self._opening is not None:
                async with self._opening:  # let an open in progress finish
                    pass
            thread, self._thread = self._thread, None
            if thread is not None:
                try:
                    await thread.close()
                except (sqlite3.Error, OSError) as exc:
                    raise self._error(
                        f"cannot close {self.name}: {describe(exc, self._busy_timeout)}"
                    ) from exc
