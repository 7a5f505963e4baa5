"""Where projections keep their offsets: the protocol, in memory, and in SQLite.

SQLite schema (one small table; it may live in the SQLite journal's own file)::

    projection_offsets   (projection_id PRIMARY KEY, last_offset): the offset of the last
                         event each projection handled, 0 for none
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from persistence._errors import PersistenceError
from persistence._sqlite_db import SqliteThread, Synchronous, check_synchronous

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projection_offsets (
    projection_id TEXT NOT NULL PRIMARY KEY,
    last_offset INTEGER NOT NULL
) WITHOUT ROWID
"""
_LOAD = "SELECT last_offset FROM projection_offsets WHERE projection_id = ?"
_SAVE = (
    "INSERT INTO projection_offsets (projection_id, last_offset) VALUES (?, ?)"
    " ON CONFLICT (projection_id) DO UPDATE SET last_offset = excluded.last_offset"
)


class OffsetStoreError(PersistenceError):
    """An offset store could not load or save an offset, or was used after ``close()``."""


@runtime_checkable
class OffsetStore(Protocol):
    """Keeps the offset each projection has handled up to."""

    async def load(self, projection_id: str) -> int:
        """The last saved offset of the projection, 0 if none was saved."""
        ...

    async def save(self, projection_id: str, offset: int) -> None:
        """Store ``offset`` for the projection, replacing the previous one; durable on return."""
        ...


class InMemoryOffsetStore:
    """An :class:`OffsetStore` in a dict: for tests; nothing survives the process."""

    __slots__ = ("_offsets",)

    def __init__(self) -> None:
        self._offsets: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<InMemoryOffsetStore {self._offsets!r}>"

    async def load(self, projection_id: str) -> int:
        """The last saved offset of the projection, 0 if none was saved."""
        return self._offsets.get(projection_id, 0)

    async def save(self, projection_id: str, offset: int) -> None:
        """Store ``offset`` for the projection."""
        self._offsets[projection_id] = offset


def _load(conn: sqlite3.Connection, projection_id: str) -> int:
    row = conn.execute(_LOAD, (projection_id,)).fetchone()
    return 0 if row is None else int(row[0])


def _save(conn: sqlite3.Connection, projection_id: str, offset: int) -> None:
    conn.execute(_SAVE, (projection_id, offset))


class SqliteOffsetStore:
    """An :class:`OffsetStore` in a SQLite file (WAL mode); may share the SQLite journal's file.

    The file is opened on first use; ``synchronous`` as for the SQLite journal (``"full"``: a
    saved offset survives a power loss). Close it with :meth:`close`.
    """

    __slots__ = ("_closed", "_opening", "_path", "_synchronous", "_thread")

    def __init__(self, path: str | os.PathLike[str], *, synchronous: Synchronous = "full") -> None:
        self._path = Path(path)
        self._synchronous = check_synchronous(synchronous)
        self._thread: SqliteThread | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._thread else "not opened"
        return f"<SqliteOffsetStore {str(self._path)!r} {state}>"

    def __del__(self) -> None:
        if getattr(self, "_thread", None) is not None and not self._closed:
            warnings.warn(
                f"{self!r} was opened and never closed: await offset_store.close()",
                ResourceWarning,
                stacklevel=1,
            )

    def _error(self, operation: str, problem: object) -> OffsetStoreError:
        return OffsetStoreError(
            f"cannot {operation}: sqlite offset store {str(self._path)!r} {problem}"
        )

    async def _connection(self, operation: str) -> SqliteThread:
        if self._closed:
            raise self._error(operation, "is closed")
        if self._thread is not None:
            return self._thread
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._closed:
                raise self._error(operation, "is closed")
            if self._thread is None:
                try:
                    self._thread = await SqliteThread.open(self._path, self._synchronous, _SCHEMA)
                except (sqlite3.Error, OSError) as exc:
                    raise self._error(operation, f"cannot be opened: {exc}") from exc
            return self._thread

    async def _run(self, operation: str, fn: Callable[..., Any], *args: Any) -> Any:
        thread = await self._connection(operation)
        try:
            return await thread.run(fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise self._error(operation, f"failed: {exc}") from exc
        except ValueError as exc:  # aiosqlite: "Connection closed" while we were on our way
            if self._closed:
                raise self._error(operation, "is closed") from exc
            raise

    async def load(self, projection_id: str) -> int:
        """The last saved offset of the projection, 0 if none was saved."""
        offset: int = await self._run(
            f"load the offset of projection {projection_id!r}", _load, projection_id
        )
        return offset

    async def save(self, projection_id: str, offset: int) -> None:
        """Store ``offset`` for the projection (one committed transaction)."""
        await self._run(
            f"save the offset of projection {projection_id!r}", _save, projection_id, offset
        )

    async def close(self) -> None:
        """Close the file; later calls raise :class:`OffsetStoreError`. Closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        if self._opening is not None:
            async with self._opening:  # let an open in progress finish
                pass
        thread, self._thread = self._thread, None
        if thread is not None:
            try:
                await thread.close()
            except (sqlite3.Error, OSError) as exc:
                raise self._error("close", f"failed: {exc}") from exc
