"""A snapshot store in a SQLite file (WAL mode), whose connection lives on a thread of its own.

Schema::

    snapshots  (persistence_id, sequence_nr) primary key, timestamp (ms), manifest, payload

It may share the file of a :class:`~persistence.journal.SqliteJournal` (each has its own
connection; SQLite serializes their writes). Every call is one statement (one transaction) run
in one hop to the connection's thread.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from pathlib import Path

from persistence._errors import SnapshotStoreClosedError, SnapshotStoreError
from persistence._sqlite_db import DEFAULT_BUSY_TIMEOUT, LazySqlite, Synchronous
from persistence.snapshot._memory import now_ms
from persistence.snapshot._protocol import (
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    StoredSnapshot,
)
from persistence.snapshot._validation import check_persistence_id, check_snapshot

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    persistence_id TEXT NOT NULL,
    sequence_nr INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (persistence_id, sequence_nr)
)
"""
_SAVE = (
    "INSERT INTO snapshots (persistence_id, sequence_nr, timestamp, manifest, payload)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (persistence_id, sequence_nr) DO UPDATE SET"
    " timestamp = excluded.timestamp, manifest = excluded.manifest, payload = excluded.payload"
)
_MATCHING = "persistence_id = ? AND sequence_nr BETWEEN ? AND ? AND timestamp BETWEEN ? AND ?"
_LOAD = (
    f"SELECT sequence_nr, timestamp, manifest, payload FROM snapshots WHERE {_MATCHING}"
    " ORDER BY sequence_nr DESC, timestamp DESC LIMIT 1"
)


def _bounds(
    persistence_id: str, criteria: SnapshotSelectionCriteria
) -> tuple[str, int, int, int, int]:
    return (
        persistence_id,
        criteria.min_sequence_nr,
        criteria.max_sequence_nr,
        criteria.min_timestamp,
        criteria.max_timestamp,
    )


def _execute(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> None:
    conn.execute(sql, params)


def _load(
    conn: sqlite3.Connection, persistence_id: str, criteria: SnapshotSelectionCriteria
) -> StoredSnapshot | None:
    row = conn.execute(_LOAD, _bounds(persistence_id, criteria)).fetchone()
    if row is None:
        return None
    sequence_nr, timestamp, manifest, payload = row
    return StoredSnapshot(
        SnapshotMetadata(persistence_id, sequence_nr, timestamp), manifest, payload
    )


class SqliteSnapshotStore:
    """A :class:`~persistence.snapshot.SnapshotStore` in one SQLite file.

    ``synchronous`` and ``busy_timeout`` as for :class:`~persistence.journal.SqliteJournal`.
    The file (and its parent directories) is created on first use. Closing is final: after
    :meth:`close` (see :attr:`closed`) every call raises
    :class:`~persistence.SnapshotStoreClosedError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "full",
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        self._db = LazySqlite(
            path,
            synchronous,
            _SCHEMA,
            name="sqlite snapshot store",
            error=SnapshotStoreError,
            closed_error=SnapshotStoreClosedError,
            busy_timeout=busy_timeout,
        )

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._db.path

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every later call raises)."""
        return self._db.closed

    def __repr__(self) -> str:
        return f"<SqliteSnapshotStore {str(self._db.path)!r} {self._db.state}>"

    def _check(self, operation: str, persistence_id: str) -> None:
        self._db.check_open(operation)
        check_persistence_id(operation, persistence_id)

    async def save(
        self, metadata: SnapshotMetadata, manifest: str, payload: bytes
    ) -> SnapshotMetadata:
        """Store the snapshot (replacing one at the same sequence number); stamp it with the
        current time unless ``metadata`` has a timestamp."""
        self._check("save a snapshot", metadata.persistence_id)
        check_snapshot(metadata, manifest, payload)
        if metadata.timestamp == 0:
            metadata = replace(metadata, timestamp=now_ms())
        params = (
            metadata.persistence_id,
            metadata.sequence_nr,
            metadata.timestamp,
            manifest,
            bytes(payload),
        )
        await self._db.run("save a snapshot", _execute, _SAVE, params)
        return metadata

    async def load(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> StoredSnapshot | None:
        """The youngest snapshot matching ``criteria``, or ``None``."""
        self._check("load a snapshot", persistence_id)
        return await self._db.run("load a snapshot", _load, persistence_id, criteria)

    async def delete(self, metadata: SnapshotMetadata) -> None:
        """Delete the snapshot of ``metadata.persistence_id`` at ``metadata.sequence_nr``."""
        self._check("delete a snapshot", metadata.persistence_id)
        await self._db.run(
            "delete a snapshot",
            _execute,
            "DELETE FROM snapshots WHERE persistence_id = ? AND sequence_nr = ?",
            (metadata.persistence_id, metadata.sequence_nr),
        )

    async def delete_matching(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> None:
        """Delete every snapshot of the id matching ``criteria``."""
        self._check("delete snapshots", persistence_id)
        await self._db.run(
            "delete snapshots",
            _execute,
            f"DELETE FROM snapshots WHERE {_MATCHING}",
            _bounds(persistence_id, criteria),
        )

    async def close(self) -> None:
        """Close the file; later calls raise :class:`~persistence.SnapshotStoreClosedError`
        (closing is final). Closing twice is harmless."""
        await self._db.close()
