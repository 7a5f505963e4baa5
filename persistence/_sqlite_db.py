"""One SQLite connection living on aiosqlite's worker thread, shared by the SQLite journal and
snapshot store.

Every awaited aiosqlite call is one hop to its thread and back (tens of microseconds), so the
stores run each whole operation (``BEGIN`` ... ``COMMIT``, or a page of a query) as one plain
function on that thread: :meth:`SqliteThread.run`.

Reading without writing (:func:`read_only_uri`): a ``mode=ro`` connection to a WAL database
still creates the ``-wal`` and ``-shm`` files next to it (and leaves them behind), and fails on
read-only media when they are missing. When there is no ``-wal`` file (no connection has the
database open, and every commit is in the main file), the file is opened ``immutable`` instead:
SQLite then creates nothing and takes no locks.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

import aiosqlite

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


class SqliteThread:
    """An open connection and the aiosqlite thread that owns it."""

    __slots__ = ("_conn", "_db")

    def __init__(self, db: aiosqlite.Connection, conn: sqlite3.Connection) -> None:
        self._db = db
        self._conn = conn

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
        opened: list[sqlite3.Connection] = []

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
                    opened.append(conn)
                    return conn
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode != "wal":
                    raise sqlite3.OperationalError(f"cannot switch to WAL mode (stays {mode!r})")
                conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
                conn.executescript(f"BEGIN IMMEDIATE; {schema}; COMMIT;")
            except BaseException:
                conn.close()
                raise
            opened.append(conn)
            return conn

        db = aiosqlite.Connection(connect, iter_chunk_size=64)
        worker = db._thread
        # aiosqlite's thread is not a daemon: a store the program forgot to close would keep the
        # interpreter from exiting. Committed transactions are on disk either way.
        worker.daemon = True
        try:
            await db
        except BaseException:
            # aiosqlite stops its thread; wait for it, or it may call back into a closed loop.
            worker.join(timeout=5)
            raise
        return cls(db, opened[0])

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the connection's thread: one hop for all of it."""
        # aiosqlite has no public way to run a function on its thread (each public call is one
        # hop); `_execute` is what all of them use. This is the only private use.
        return cast(T, await self._db._execute(fn, self._conn, *args))  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL) and stop the thread."""
        await self._db.close()


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

    async def run_closing(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """:meth:`run` for work submitted before :meth:`close` (which waits for it)."""
        return await self.run_on(
            await self.connection(operation, closing=True), operation, fn, *args
        )

    async def run_on(
        self, thread: SqliteThread, operation: str, fn: Callable[..., T], *args: Any
    ) -> T:
        """Run ``fn(connection, *args)`` on ``thread``."""
        try:
            return await thread.run(fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise self.error(operation, exc) from exc
        except ValueError as exc:  # aiosqlite: "Connection closed" under our feet
            if self.closed:
                raise self.closed_error(operation) from exc
            raise

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
