"""Where projections keep their offsets: the protocol, in memory, and in SQLite.

SQLite schema (one small table; it may live in the SQLite journal's own file)::

    projection_offsets   (projection_id PRIMARY KEY, last_offset): the offset of the last
                         event each projection handled, 0 for none
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Protocol, runtime_checkable

from persistence._errors import PersistenceError
from persistence._sqlite_db import LazySqlite, Synchronous

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

    __slots__ = ("_db",)

    def __init__(self, path: str | os.PathLike[str], *, synchronous: Synchronous = "full") -> None:
        self._db = LazySqlite(
            path,
            synchronous,
            _SCHEMA,
            name="sqlite offset store",
            error=OffsetStoreError,
            closed_error=OffsetStoreError,
        )

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._db.path

    def __repr__(self) -> str:
        return f"<SqliteOffsetStore {str(self._db.path)!r} {self._db.state}>"

    async def load(self, projection_id: str) -> int:
        """The last saved offset of the projection, 0 if none was saved."""
        return await self._db.run(
            f"load the offset of projection {projection_id!r}", _load, projection_id
        )

    async def save(self, projection_id: str, offset: int) -> None:
        """Store ``offset`` for the projection (one committed transaction)."""
        await self._db.run(
            f"save the offset of projection {projection_id!r}", _save, projection_id, offset
        )

    async def close(self) -> None:
        """Close the file; later calls raise :class:`OffsetStoreError`. Closing twice is fine."""
        await self._db.close()
