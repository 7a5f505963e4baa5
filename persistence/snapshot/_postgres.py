"""A snapshot store in PostgreSQL, through asyncpg (next to :mod:`persistence.journal._postgres`).

Schema (in one PostgreSQL schema, ``public`` unless told; created on first use, idempotently,
version recorded in ``schema_version``, which it shares with a journal in the same schema)::

    snapshots  (persistence_id, sequence_nr) primary key, timestamp (ms), manifest, payload

Every call is one statement (one round trip, one transaction).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import asyncpg

from persistence._errors import SnapshotStoreClosedError, SnapshotStoreError
from persistence._postgres_db import LazyPostgres, check_url, keep_session
from persistence.snapshot._memory import now_ms
from persistence.snapshot._protocol import (
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    StoredSnapshot,
)
from persistence.snapshot._validation import check_persistence_id, check_snapshot

_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.schema_version (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS {schema}.snapshots (
    persistence_id text NOT NULL,
    sequence_nr bigint NOT NULL,
    timestamp bigint NOT NULL,
    manifest text NOT NULL,
    payload bytea NOT NULL,
    PRIMARY KEY (persistence_id, sequence_nr)
);
"""
_MATCHING = "persistence_id = $1 AND sequence_nr BETWEEN $2 AND $3 AND timestamp BETWEEN $4 AND $5"


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


def _check_nul(operation: str, persistence_id: str, manifest: str = "") -> None:
    if "\x00" in persistence_id:
        raise SnapshotStoreError(
            f"cannot {operation}, persistence_id={persistence_id!r}: the persistence id holds a "
            "NUL character, which PostgreSQL cannot store"
        )
    if "\x00" in manifest:
        raise SnapshotStoreError(
            f"cannot {operation}, persistence_id={persistence_id!r}: the manifest {manifest!r} "
            "holds a NUL character, which PostgreSQL cannot store"
        )


class PostgresSnapshotStore:
    """A :class:`~persistence.snapshot.SnapshotStore` in PostgreSQL.

    Opened like :class:`~persistence.journal.PostgresJournal`: from a DSN (password from the
    DSN, ``PGPASSWORD`` or the libpq password file) or an asyncpg ``pool`` you own; the table
    lives in ``schema``. Closing is final (see :attr:`closed`).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: asyncpg.Pool | None = None,
        schema: str = "public",
        pool_options: dict[str, Any] | None = None,
    ) -> None:
        self._db = LazyPostgres(
            dsn,
            pool,
            schema=schema,
            ddl=_DDL,
            name="postgresql snapshot store",
            error=SnapshotStoreError,
            closed_error=SnapshotStoreClosedError,
            pool_options={
                "min_size": 1,
                "max_size": 4,
                "reset": keep_session,
                **(pool_options or {}),
            },
        )
        s = f'"{schema}".snapshots'
        self._save_sql = (
            f"INSERT INTO {s} (persistence_id, sequence_nr, timestamp, manifest, payload)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (persistence_id, sequence_nr) DO UPDATE"
            " SET timestamp = excluded.timestamp, manifest = excluded.manifest,"
            " payload = excluded.payload"
        )
        self._load_sql = (
            f"SELECT sequence_nr, timestamp, manifest, payload FROM {s} WHERE {_MATCHING}"
            " ORDER BY sequence_nr DESC, timestamp DESC LIMIT 1"
        )
        self._delete_sql = f"DELETE FROM {s} WHERE persistence_id = $1 AND sequence_nr = $2"
        self._delete_matching_sql = f"DELETE FROM {s} WHERE {_MATCHING}"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresSnapshotStore:
        """The store of a ``postgresql://`` or ``postgres://`` URL (an asyncpg DSN)."""
        return cls(check_url(url, "snapshot store"), **options)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every later call raises)."""
        return self._db.closed

    def __repr__(self) -> str:
        return (
            f"<PostgresSnapshotStore {self._db.where} schema={self._db.schema!r} {self._db.state}>"
        )

    def _check(self, operation: str, persistence_id: str) -> None:
        self._db.check_open(operation)
        check_persistence_id(operation, persistence_id)
        _check_nul(operation, persistence_id)

    async def save(
        self, metadata: SnapshotMetadata, manifest: str, payload: bytes
    ) -> SnapshotMetadata:
        """Store the snapshot (replacing one at the same sequence number); stamp it with the
        current time unless ``metadata`` has a timestamp."""
        operation = "save a snapshot"
        self._check(operation, metadata.persistence_id)
        check_snapshot(metadata, manifest, payload)
        _check_nul(operation, metadata.persistence_id, manifest)
        if metadata.timestamp == 0:
            metadata = replace(metadata, timestamp=now_ms())
        params = (
            metadata.persistence_id,
            metadata.sequence_nr,
            metadata.timestamp,
            manifest,
            bytes(payload),
        )
        await self._db.run(operation, lambda pool: pool.execute(self._save_sql, *params))
        return metadata

    async def load(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> StoredSnapshot | None:
        """The youngest snapshot matching ``criteria``, or ``None``."""
        operation = "load a snapshot"
        self._check(operation, persistence_id)
        bounds = _bounds(persistence_id, criteria)
        row = await self._db.run(operation, lambda pool: pool.fetchrow(self._load_sql, *bounds))
        if row is None:
            return None
        sequence_nr, timestamp, manifest, payload = row
        return StoredSnapshot(
            SnapshotMetadata(persistence_id, sequence_nr, timestamp), manifest, payload
        )

    async def delete(self, metadata: SnapshotMetadata) -> None:
        """Delete the snapshot of ``metadata.persistence_id`` at ``metadata.sequence_nr``."""
        operation = "delete a snapshot"
        self._check(operation, metadata.persistence_id)
        pid, seq = metadata.persistence_id, metadata.sequence_nr
        await self._db.run(operation, lambda pool: pool.execute(self._delete_sql, pid, seq))

    async def delete_matching(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> None:
        """Delete every snapshot of the id matching ``criteria``."""
        operation = "delete snapshots"
        self._check(operation, persistence_id)
        bounds = _bounds(persistence_id, criteria)
        await self._db.run(operation, lambda pool: pool.execute(self._delete_matching_sql, *bounds))

    async def close(self) -> None:
        """Close the pool (if the store opened it); later calls raise
        :class:`~persistence.SnapshotStoreClosedError` (closing is final). Closing twice is
        harmless."""
        await self._db.close()
