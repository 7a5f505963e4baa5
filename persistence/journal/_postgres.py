"""A journal in PostgreSQL, through asyncpg: the shared, durable journal of many processes.

One module on purpose (over 500 lines): its SQL statements, the schema they assume and the
fences they implement are read together; the pool and DSN handling live in ``_postgres_db``.

Schema (in one PostgreSQL schema, ``public`` unless told; created on first use, idempotently,
version recorded in ``schema_version``)::

    journal          one row per stored event: primary key (persistence_id, sequence_nr), the
                     fence against two writers of one id (nothing is ever overwritten);
                     ``ordering`` (the journal-wide offset, from the sequence
                     ``journal_ordering``) unique; ``tags`` a text array or NULL
    event_tags       (tag, ordering) primary key: the index of events_by_tag
    id_metadata      (persistence_id, highest_sequence_nr, first_ordering), written by delete_to:
                     what the deleted rows can no longer tell
    journal_state    one row: the highest ordering handed out before a delete_to, so that
                     highest_ordering never goes back
    owner_epochs     (persistence_id, epoch): the highest owner epoch stored per id
    journal_notify   a statement trigger: every insert into journal sends a NOTIFY on the
                     channel ``journal_<crc32 of the schema>_<schema>`` (delivered on commit)
    schema_version   the version of these tables (see :mod:`persistence._postgres_db`)

Writes (group commit): the atomic writes that arrive while a batch is in flight are stored
together by one ``INSERT ... SELECT FROM unnest(...)`` statement (one round trip, one
transaction, one commit), which also fills ``event_tags``; a batch without tags takes a leaner
statement (no ``RETURNING``, no tag index to fill), and one untagged event a single-row one. Each
is prepared once per connection (asyncpg's statement cache). Measured for 1,000 events: the
``unnest`` statement stores them in about half the time of ``executemany`` in a transaction;
``COPY`` cannot draw orderings under the advisory lock in the same statement, so it would cost
extra round trips. If a ``(persistence_id, sequence_nr)`` is taken, the statement fails as a whole
and the batch is redone write by write, so that only the conflicting atomic writes are rejected,
with :class:`~persistence.SequenceNrConflictError`.

Gap-free offsets: a sequence column alone lets a reader see ordering 11 committed while 10, from
a slower concurrent transaction, is still in flight; a reader that moved its offset to 11 would
never see 10. Here every write statement first takes a transaction-level advisory lock (one key
per schema) and only then draws its orderings; the lock is released after the commit is
visible, so orderings become visible in ordering order, across every process writing the
journal. The price is that the writes of several processes to one journal are serialized (each
process's group commit keeps that to one statement per burst).

Owner epochs (the fence against an old owner that wakes up): a write carrying an epoch is one
statement of its own that, after the advisory lock, raises the id's epoch in ``owner_epochs``
unless a higher one is stored (``ON CONFLICT DO UPDATE ... WHERE``, which reads the newest
committed row, not the statement's snapshot) and inserts its events only if that succeeded; a
taken sequence number rolls the whole statement back, epoch included.

Live queries wake on new events: the journal's ``changes`` (see
:mod:`persistence.journal._changes`) is bumped by its own writes and, once a query waits on it,
by the NOTIFYs of every process, received on one pooled connection that LISTENs (re-established
after a connection loss; the queries' polling covers the time in between).

Text PostgreSQL cannot store (a NUL character) is rejected per atomic write, like every other
unstorable write (:func:`~persistence.journal._validation.check_atomic_write`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import asyncpg

from persistence._errors import (
    JournalClosedError,
    JournalError,
    OwnerEpochFencedError,
    SequenceNrConflictError,
)
from persistence._logging import get_logger
from persistence._postgres_db import LazyPostgres, check_url, keep_session
from persistence.journal._changes import Changes
from persistence.journal._group_commit import GroupCommitter
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    PersistentRecord,
    TaggedRecord,
    check_owner_epoch,
)
from persistence.journal._validation import check_atomic_write, utf8_problem

_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.schema_version (version integer NOT NULL);
CREATE SEQUENCE IF NOT EXISTS {schema}.journal_ordering AS bigint;
CREATE TABLE IF NOT EXISTS {schema}.journal (
    persistence_id text NOT NULL,
    sequence_nr bigint NOT NULL,
    ordering bigint NOT NULL,
    manifest text NOT NULL,
    payload bytea NOT NULL,
    writer_id text NOT NULL,
    timestamp bigint NOT NULL,
    tags text[],
    CONSTRAINT journal_pkey PRIMARY KEY (persistence_id, sequence_nr)
);
CREATE UNIQUE INDEX IF NOT EXISTS journal_ordering_idx ON {schema}.journal (ordering);
CREATE TABLE IF NOT EXISTS {schema}.event_tags (
    tag text NOT NULL,
    ordering bigint NOT NULL,
    PRIMARY KEY (tag, ordering)
);
CREATE TABLE IF NOT EXISTS {schema}.id_metadata (
    persistence_id text PRIMARY KEY,
    highest_sequence_nr bigint NOT NULL,
    first_ordering bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.journal_state (
    id integer PRIMARY KEY CHECK (id = 1),
    highest_ordering bigint NOT NULL
);
INSERT INTO {schema}.journal_state (id, highest_ordering) VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS {schema}.owner_epochs (
    persistence_id text PRIMARY KEY,
    epoch bigint NOT NULL
);
CREATE OR REPLACE FUNCTION {schema}.notify_journal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('%CHANNEL%', '');
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER journal_notify AFTER INSERT ON {schema}.journal
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_journal();
"""

log = get_logger(__name__)

_RECORD_COLUMNS = "persistence_id, sequence_nr, manifest, payload, writer_id, timestamp, tags"


class _Sql:
    """The statements of one schema (identifiers cannot be query parameters)."""

    def __init__(self, schema: str) -> None:
        s = f'"{schema}"'
        lock_key = zlib.crc32(schema.encode()) - (1 << 31)  # an int4 per schema
        lock = f"lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(1785949804, {lock_key}))"

        def insert(source: str) -> str:
            return f"""
stored AS (
    INSERT INTO {s}.journal (ordering, {_RECORD_COLUMNS})
    SELECT nextval('{s}.journal_ordering'), w.pid, w.seq, w.manifest, w.payload, w.writer, w.ts,
        CASE WHEN w.tags IS NULL THEN NULL
            ELSE ARRAY(SELECT jsonb_array_elements_text(w.tags::jsonb)) END
    FROM {source}, unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[], $5::text[],
        $6::bigint[], $7::text[]) WITH ORDINALITY AS w(pid, seq, manifest, payload, writer, ts,
        tags, n)
    ORDER BY w.n
    RETURNING ordering, tags
)"""

        tags = (
            f"INSERT INTO {s}.event_tags (tag, ordering)"
            " SELECT DISTINCT t.tag, stored.ordering FROM stored, unnest(stored.tags) AS t(tag)"
        )
        self.insert = f"WITH {lock}, {insert('lock')} {tags}"
        # A batch without tags: the rows alone, no RETURNING and no tag index to fill.
        self.insert_untagged = (
            f"WITH {lock} INSERT INTO {s}.journal (ordering, {_RECORD_COLUMNS})"
            f" SELECT nextval('{s}.journal_ordering'), w.pid, w.seq, w.manifest, w.payload,"
            " w.writer, w.ts, NULL FROM lock, unnest($1::text[], $2::bigint[], $3::text[],"
            " $4::bytea[], $5::text[], $6::bigint[]) WITH ORDINALITY"
            " AS w(pid, seq, manifest, payload, writer, ts, n) ORDER BY w.n"
        )
        # One untagged event (a sequential persist): no arrays, no tag index to fill.
        self.insert_one = (
            f"WITH {lock} INSERT INTO {s}.journal (ordering, {_RECORD_COLUMNS})"
            f" SELECT nextval('{s}.journal_ordering'), $1, $2, $3, $4, $5, $6, NULL FROM lock"
        )
        self.insert_fenced = f"""WITH {lock},
claimed AS (
    INSERT INTO {s}.owner_epochs (persistence_id, epoch) SELECT $8, $9 FROM lock
    ON CONFLICT (persistence_id) DO UPDATE SET epoch = excluded.epoch
    WHERE owner_epochs.epoch <= excluded.epoch
    RETURNING epoch
),
{insert("claimed")},
tagged AS ({tags})
SELECT count(*) FROM claimed"""
        self.stored_epoch = f"SELECT epoch FROM {s}.owner_epochs WHERE persistence_id = $1"
        self.first_conflict = (
            f"SELECT sequence_nr FROM {s}.journal WHERE persistence_id = $1"
            " AND sequence_nr BETWEEN $2 AND $3 ORDER BY sequence_nr LIMIT 1"
        )
        self.replay = (
            f"SELECT {_RECORD_COLUMNS} FROM {s}.journal WHERE persistence_id = $1"
            " AND sequence_nr >= $2 AND sequence_nr <= $3 ORDER BY sequence_nr LIMIT $4"
        )
        self.replay_rows = (
            f"SELECT sequence_nr, manifest, payload FROM {s}.journal WHERE persistence_id = $1"
            " AND sequence_nr >= $2 AND sequence_nr <= $3 ORDER BY sequence_nr LIMIT $4"
        )
        self.highest_sequence_nr = (
            f"SELECT greatest((SELECT max(sequence_nr) FROM {s}.journal"
            " WHERE persistence_id = $1),"
            f" (SELECT highest_sequence_nr FROM {s}.id_metadata WHERE persistence_id = $1), 0)"
        )
        self.highest_ordering = (
            f"SELECT greatest((SELECT max(ordering) FROM {s}.journal),"
            f" (SELECT highest_ordering FROM {s}.journal_state), 0)"
        )
        self.first_ordering = f"SELECT min(ordering) FROM {s}.journal WHERE persistence_id = $1"
        self.keep_metadata = (
            f"INSERT INTO {s}.id_metadata (persistence_id, highest_sequence_nr, first_ordering)"
            f" VALUES ($1, ({self.highest_sequence_nr}), $2)"
            " ON CONFLICT (persistence_id) DO UPDATE SET highest_sequence_nr ="
            " greatest(id_metadata.highest_sequence_nr, excluded.highest_sequence_nr)"
        )
        self.keep_highest_ordering = (
            f"UPDATE {s}.journal_state SET highest_ordering = ({self.highest_ordering})"
        )
        self.delete_tags = (
            f"DELETE FROM {s}.event_tags AS t USING (SELECT DISTINCT unnest(tags) AS tag,"
            f" ordering FROM {s}.journal WHERE persistence_id = $1 AND sequence_nr <= $2"
            " AND tags IS NOT NULL) AS d WHERE t.tag = d.tag AND t.ordering = d.ordering"
        )
        self.delete = f"DELETE FROM {s}.journal WHERE persistence_id = $1 AND sequence_nr <= $2"
        self.persistence_ids = (
            "SELECT persistence_id FROM ("
            f" SELECT persistence_id, min(ordering) AS first FROM {s}.journal"
            " GROUP BY persistence_id"
            f" UNION ALL SELECT persistence_id, first_ordering FROM {s}.id_metadata"
            ") AS ids GROUP BY persistence_id ORDER BY min(first)"
        )
        self.tag_page = (
            f"SELECT t.ordering, {', '.join('j.' + c for c in _RECORD_COLUMNS.split(', '))}"
            f" FROM {s}.event_tags AS t JOIN {s}.journal AS j ON j.ordering = t.ordering"
            " WHERE t.tag = $1 AND t.ordering > $2 ORDER BY t.ordering LIMIT $3"
        )
        self.all_page = (
            f"SELECT ordering, {_RECORD_COLUMNS} FROM {s}.journal WHERE ordering > $1"
            " ORDER BY ordering LIMIT $2"
        )


def _columns(records: Sequence[PersistentRecord]) -> tuple[Sequence[Any], ...]:
    """The seven arrays of the insert statements, one element per record, in order: the
    record's fields, its tags as a JSON array (or NULL)."""
    pids, seqs, manifests, payloads, writers, stamps, tags = zip(*records, strict=True)
    return (
        pids,
        seqs,
        manifests,
        payloads,
        writers,
        stamps,
        [json.dumps(list(record_tags)) if record_tags else None for record_tags in tags],
    )


def _nul_problem(write: AtomicWrite) -> JournalError | None:
    """The rejection of a write holding a NUL character (PostgreSQL text cannot), if any."""
    for pid, seq, manifest, _, writer_id, _, tags in write.records:
        if (
            "\x00" not in pid
            and "\x00" not in manifest
            and "\x00" not in writer_id
            and (not tags or not any("\x00" in tag for tag in tags))
        ):
            continue
        texts = (("persistence id", pid), ("manifest", manifest), ("writer_id", writer_id))
        for name, text in (*texts, *(("tag", tag) for tag in tags)):
            if "\x00" in text:
                return JournalError(
                    f"invalid atomic write, persistence_id={pid!r}, sequence_nr={seq}: the "
                    f"{name} {text!r} holds a NUL character, which PostgreSQL cannot store"
                )
    return None


async def _fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
    """``pool.fetch(sql, *args)``, the pool given last (for :func:`functools.partial`)."""
    *params, pool = args
    rows: list[asyncpg.Record] = await pool.fetch(sql, *params)
    return rows


_Replayed = TypeVar("_Replayed")


def _records(rows: list[asyncpg.Record]) -> list[PersistentRecord]:
    return [
        PersistentRecord(pid, seq, manifest, payload, writer_id, stamp, tuple(tags) if tags else ())
        for pid, seq, manifest, payload, writer_id, stamp, tags in rows
    ]


def _tagged(rows: list[asyncpg.Record]) -> list[TaggedRecord]:
    return [
        TaggedRecord(
            ordering,
            PersistentRecord(
                pid, seq, manifest, payload, writer_id, stamp, tuple(tags) if tags else ()
            ),
        )
        for ordering, pid, seq, manifest, payload, writer_id, stamp, tags in rows
    ]


def _usable(conn: asyncpg.Connection) -> bool:
    """Whether a pooled connection still works (the pool takes back one that died)."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # "released back to the pool" after it died
        return False


async def _give_back(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    """Release ``conn`` to ``pool`` unless the pool already took it back."""
    with contextlib.suppress(asyncpg.InterfaceError):
        await pool.release(conn)


def _settle(future: asyncio.Future[None], *_: object) -> None:
    if not future.done():
        future.set_result(None)


def _unreadable(text: str) -> bool:
    """Whether nothing can be stored under ``text`` (not UTF-8, or a NUL character)."""
    return utf8_problem(text) is not None or "\x00" in text


class PostgresJournal:
    """A :class:`~persistence.journal.Journal` and :class:`~persistence.journal.ReadJournal`
    in PostgreSQL, shared by any number of processes.

    Open it from a DSN (``postgresql://USER@HOST:PORT/DATABASE``; a password missing from it
    comes from ``PGPASSWORD`` or the libpq password file, as asyncpg does) or from an asyncpg
    ``pool`` you own (closing the journal leaves it open). The tables live in ``schema``
    (created on first use). Concurrent ``write`` calls share one statement (group commit, at
    most ``max_batch`` atomic writes); replay and queries read ``page_size`` events per round
    trip. ``pool_options`` go to ``asyncpg.create_pool``.

    Durability is the server's: with ``synchronous_commit=on`` (PostgreSQL's default) an
    acknowledged write survives a crash of the server. Errors and logs name host, port and
    database, never credentials. Closing is final (see :attr:`closed`).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: asyncpg.Pool | None = None,
        schema: str = "public",
        page_size: int = 5000,
        max_batch: int = 10_000,
        pool_options: dict[str, Any] | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self._channel = f"journal_{zlib.crc32(schema.encode()):08x}_{schema}"[:63]
        self._db = LazyPostgres(
            dsn,
            pool,
            schema=schema,
            ddl=_DDL.replace("%CHANNEL%", self._channel),
            name="postgresql journal",
            error=JournalError,
            closed_error=JournalClosedError,
            pool_options={
                "min_size": 1,
                "max_size": 10,
                "reset": keep_session,
                **(pool_options or {}),
            },
        )
        self._sql = _Sql(schema)
        self._page_size = page_size
        self._committer = GroupCommitter(self._flush, max_batch=max_batch)
        self.changes = Changes(on_first_wait=self._start_listening)
        """Bumped when events were stored, by this or (once a query waits) any process."""
        self._listener: asyncio.Task[None] | None = None
        self._writer: asyncpg.Connection | None = None
        """The pooled connection the group committer keeps between batches (they are serial)."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresJournal:
        """The journal of a ``postgresql://`` or ``postgres://`` URL (an asyncpg DSN)."""
        return cls(check_url(url, "journal"), **options)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every later call raises)."""
        return self._db.closed

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding the tables."""
        return self._db.schema

    def __repr__(self) -> str:
        return f"<PostgresJournal {self._db.where} schema={self._db.schema!r} {self._db.state}>"

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        """Store the batch; per atomic write ``None`` (stored) or the exception rejecting it."""
        self._db.check_open("write events")
        for write in writes:
            if (
                check_atomic_write(write) is not None
                or (write.owner_epoch is not None and check_owner_epoch(write) is not None)
                or _nul_problem(write) is not None
            ):
                return await self._write_well_formed(writes)
        if not writes:
            return []
        return await self._committer.submit(writes)

    async def _write_well_formed(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        """Reject the malformed atomic writes, submit the rest."""
        errors = [
            check_atomic_write(write) or check_owner_epoch(write) or _nul_problem(write)
            for write in writes
        ]
        valid = [write for write, error in zip(writes, errors, strict=True) if error is None]
        if not valid:
            return list(errors)
        stored = iter(await self._committer.submit(valid))
        return [next(stored) if error is None else error for error in errors]

    async def _flush(self, writes: list[AtomicWrite]) -> list[BaseException | None]:
        results = await self._db.run(
            "write events", lambda pool: self._store(pool, writes), closing=True
        )
        self.changes.bump()
        return results

    def _start_listening(self) -> None:
        if not self._db.closed:
            self._listener = asyncio.ensure_future(self._listen())

    def _notified(self, *_: object) -> None:
        self.changes.bump()

    async def _listen(self) -> None:
        """LISTEN on one pooled connection until closed; after a loss, listen again."""
        while not self._db.closed:
            try:
                pool = await self._db.pool("listen for new events")
                async with pool.acquire() as conn:
                    lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    conn.add_termination_listener(partial(_settle, lost))
                    await conn.add_listener(self._channel, self._notified)
                    try:
                        self.changes.bump()  # events may have come before LISTEN took effect
                        await lost
                    finally:
                        if _usable(conn):
                            await conn.remove_listener(self._channel, self._notified)
            except (JournalError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                if self._db.closed:
                    return
                log.warning("journal_listen_failed", where=self._db.where, error=str(exc))
                await asyncio.sleep(1.0)

    async def _drain(self) -> None:
        try:
            await self._committer.drain()
        finally:
            writer, self._writer = self._writer, None
            if writer is not None:
                await self._db.release(writer)
            listener, self._listener = self._listener, None
            if listener is not None:
                listener.cancel()
                await asyncio.wait([listener])

    async def _store(
        self, pool: asyncpg.Pool, writes: list[AtomicWrite]
    ) -> list[BaseException | None]:
        conn = self._writer
        if conn is None or not _usable(conn):
            self._writer = None
            if conn is not None:
                await _give_back(pool, conn)
            conn = self._writer = await pool.acquire()
        try:
            if len(writes) == 1:
                records = writes[0].records
                if len(records) == 1 and not records[0].tags and writes[0].owner_epoch is None:
                    return [await self._store_single(conn, writes[0])]
            if all(write.owner_epoch is None for write in writes):
                records = [record for write in writes for record in write.records]
                columns = _columns(records)
                try:
                    if any(columns[6]):
                        await conn.execute(self._sql.insert, *columns)
                    else:
                        await conn.execute(self._sql.insert_untagged, *columns[:6])
                except asyncpg.UniqueViolationError:
                    pass  # a number is taken: redo write by write, rejecting only those
                else:
                    return [None] * len(writes)
            return [await self._store_one(conn, write) for write in writes]
        except BaseException:
            self._writer = None  # lost or in doubt: the pool resets or replaces it
            await _give_back(pool, conn)
            raise

    async def _store_single(
        self, conn: asyncpg.Connection, write: AtomicWrite
    ) -> BaseException | None:
        """One untagged event without an owner epoch: the lean statement."""
        pid, seq, manifest, payload, writer_id, timestamp, _ = write.records[0]
        try:
            await conn.execute(
                self._sql.insert_one, pid, seq, manifest, payload, writer_id, timestamp
            )
        except asyncpg.UniqueViolationError:
            return SequenceNrConflictError(pid, seq)
        return None

    async def _store_one(
        self, conn: asyncpg.Connection, write: AtomicWrite
    ) -> BaseException | None:
        """One atomic write in a statement of its own: ``None`` or why it was refused."""
        sql = self._sql
        pid, epoch = write.persistence_id, write.owner_epoch
        try:
            if epoch is None:
                await conn.execute(sql.insert, *_columns(write.records))
                return None
            if await conn.fetchval(sql.insert_fenced, *_columns(write.records), pid, epoch):
                return None
        except asyncpg.UniqueViolationError:
            low, high = write.lowest_sequence_nr, write.highest_sequence_nr
            taken = await conn.fetchval(sql.first_conflict, pid, low, high)
            return SequenceNrConflictError(pid, low if taken is None else taken)
        stored: int = await conn.fetchval(sql.stored_epoch, pid)
        return OwnerEpochFencedError(pid, epoch, stored)

    def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        """Yield the events of ``persistence_id`` within the inclusive bounds, in pages."""
        return self._replay_pages(
            self._sql.replay, _records, persistence_id, from_sequence_nr, to_sequence_nr, max_count
        )

    def replay_rows(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[asyncpg.Record]]:
        """:meth:`replay` as ``(sequence_nr, manifest, payload)`` rows (what recovery reads):
        the rows asyncpg returns, with no record built per event."""
        return self._replay_pages(
            self._sql.replay_rows, list, persistence_id, from_sequence_nr, to_sequence_nr, max_count
        )

    async def _replay_pages(
        self,
        sql: str,
        convert: Callable[[list[asyncpg.Record]], list[_Replayed]],
        persistence_id: str,
        from_sequence_nr: int,
        to_sequence_nr: int,
        max_count: int,
    ) -> AsyncIterator[list[_Replayed]]:
        self._db.check_open("replay events")
        if _unreadable(persistence_id):
            return
        remaining = max_count
        low = max(from_sequence_nr, 0)
        high = min(to_sequence_nr, MAX_SEQUENCE_NR)
        while remaining > 0 and low <= high:
            limit = min(remaining, self._page_size)
            rows = await self._db.run(
                "replay events", partial(_fetch, sql, persistence_id, low, high, limit)
            )
            if not rows:
                return
            remaining -= len(rows)
            low = rows[-1]["sequence_nr"] + 1
            yield convert(rows)
            if len(rows) < limit:
                return

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        """The highest sequence number ever stored for the id (0 if unknown)."""
        operation = "read the highest sequence number"
        self._db.check_open(operation)
        if _unreadable(persistence_id):
            return 0
        sql = self._sql.highest_sequence_nr
        highest: int = await self._db.run(
            operation, lambda pool: pool.fetchval(sql, persistence_id)
        )
        return highest

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        """Delete the stored events of the id up to and including ``to_sequence_nr``."""
        self._db.check_open("delete events")
        if _unreadable(persistence_id):
            return
        to_sequence_nr = min(to_sequence_nr, MAX_SEQUENCE_NR)

        async def delete(pool: asyncpg.Pool) -> None:
            sql = self._sql
            async with pool.acquire() as conn, conn.transaction():
                first = await conn.fetchval(sql.first_ordering, persistence_id)
                if first is None:
                    return
                await conn.execute(sql.keep_metadata, persistence_id, first)
                await conn.execute(sql.keep_highest_ordering)
                await conn.execute(sql.delete_tags, persistence_id, to_sequence_nr)
                await conn.execute(sql.delete, persistence_id, to_sequence_nr)

        await self._db.run("delete events", delete)

    async def persistence_ids(self) -> list[str]:
        """Every id that has stored at least one event, in first-write order."""
        sql = self._sql.persistence_ids
        rows = await self._db.run("list persistence ids", lambda pool: pool.fetch(sql))
        return [pid for (pid,) in rows]

    async def events_by_tag(
        self, tag: str, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Yield the events carrying ``tag`` with ``ordering > after_ordering``, in pages."""
        self._db.check_open("query events by tag")
        if _unreadable(tag):
            return
        async for page in self._pages(
            "query events by tag", self._sql.tag_page, (tag,), after_ordering, max_count
        ):
            yield page

    async def all_events(
        self, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Yield every stored event with ``ordering > after_ordering``, in pages."""
        self._db.check_open("query all events")
        async for page in self._pages(
            "query all events", self._sql.all_page, (), after_ordering, max_count
        ):
            yield page

    async def _pages(
        self, operation: str, sql: str, args: tuple[str, ...], after: int, max_count: int
    ) -> AsyncIterator[list[TaggedRecord]]:
        remaining = max_count
        while remaining > 0:
            limit = min(remaining, self._page_size)
            rows = await self._db.run(operation, partial(_fetch, sql, *args, after, limit))
            if not rows:
                return
            page = _tagged(rows)
            remaining -= len(page)
            after = page[-1].ordering
            yield page
            if len(page) < limit:
                return

    async def highest_ordering(self) -> int:
        """The highest ordering ever handed out to a stored event (0 if none)."""
        sql = self._sql.highest_ordering
        highest: int = await self._db.run(
            "read the highest ordering", lambda pool: pool.fetchval(sql)
        )
        return highest

    async def close(self) -> None:
        """Finish pending writes and close the pool (if the journal opened it); later calls
        raise :class:`~persistence.JournalClosedError` (closing is final). Closing twice is
        harmless."""
        await self._db.close(self._drain)
