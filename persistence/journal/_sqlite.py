"""A journal in one SQLite file (WAL mode), whose connection lives on a thread of its own.

One module on purpose (just over 500 lines): the schema, its statements and the functions that
run them on the connection's thread are read together; the thread itself is ``_sqlite_db``.

Schema::

    journal        one row per stored event; ``ordering`` (the journal-wide offset) is the
                   rowid, ``(persistence_id, sequence_nr)`` a unique key (the replay index);
                   ``tags`` is a JSON array or NULL
    event_tags     (tag, ordering): one row per tag of an event, the index of events_by_tag
    id_metadata    (persistence_id, highest_sequence_nr, first_ordering), written by delete_to:
                   what the deleted rows can no longer tell (the highest number, first-write
                   order)
    journal_state  one row: the highest ordering handed out before a delete_to, so that
                   orderings are never reused after the newest events were deleted
    owner_epochs   (persistence_id, epoch): the highest owner epoch stored per id (the fence
                   against an old owner; writes carrying an epoch take the write-by-write path)

Why a rowid table and not one clustered on ``(persistence_id, sequence_nr)`` (WITHOUT ROWID):
events arrive interleaved across many ids, and appending rows in ordering order dirties a few
pages per transaction, where a clustered table dirties one page per id written. Measured with
1,000 ids and 100 transactions of 1,000 events, the clustered table stored 4x fewer events per
second, while replay (an index range scan plus rowid lookups) was as fast.

Writes: each batch from the group committer is one transaction, run as one function on the
connection's thread. The rows of all its atomic writes go in with one ``executemany``; only if
that hits a taken ``(persistence_id, sequence_nr)`` is the batch redone with a savepoint per
atomic write, so that the conflicting writes alone are rejected.

Orderings are handed out inside the write transaction (``BEGIN IMMEDIATE`` holds the file's write
lock), so commit order and ordering order agree; a rejected write leaves a gap. An untagged batch
leaves them to SQLite (a row inserted without a rowid gets the largest one + 1, the same number)
unless a deletion of the newest events holds orderings back (``journal_state``); one untagged
event is a single ``INSERT`` that draws its ordering itself.

Every atomic write is checked (:func:`~persistence.journal._validation.check_atomic_write`)
before the transaction, so a write SQLite could not store (say, a tag holding a lone surrogate,
which is not UTF-8) is rejected alone instead of failing the whole batch. Reads of an id or tag
that is not valid UTF-8 find nothing, as nothing can have been stored under it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

from persistence._errors import (
    JournalClosedError,
    JournalError,
    OwnerEpochFencedError,
    SequenceNrConflictError,
)
from persistence._sqlite_commit import GroupCommit
from persistence._sqlite_db import DEFAULT_BUSY_TIMEOUT, LazySqlite, Synchronous
from persistence.journal._changes import Changes
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    PersistentRecord,
    TaggedRecord,
    check_owner_epoch,
)
from persistence.journal._validation import check_atomic_write, utf8_problem

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    ordering INTEGER PRIMARY KEY,
    persistence_id TEXT NOT NULL,
    sequence_nr INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    payload BLOB NOT NULL,
    writer_id TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    tags TEXT,
    UNIQUE (persistence_id, sequence_nr)
);
CREATE TABLE IF NOT EXISTS event_tags (
    tag TEXT NOT NULL,
    ordering INTEGER NOT NULL,
    PRIMARY KEY (tag, ordering)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS id_metadata (
    persistence_id TEXT NOT NULL PRIMARY KEY,
    highest_sequence_nr INTEGER NOT NULL,
    first_ordering INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    highest_ordering INTEGER NOT NULL
);
INSERT OR IGNORE INTO journal_state (id, highest_ordering) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS owner_epochs (
    persistence_id TEXT NOT NULL PRIMARY KEY,
    epoch INTEGER NOT NULL
) WITHOUT ROWID
"""

_INSERT = (
    "INSERT INTO journal (ordering, persistence_id, sequence_nr, manifest, payload, writer_id,"
    " timestamp, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_TAG = "INSERT INTO event_tags (tag, ordering) VALUES (?, ?)"
_STORED_EPOCH = "SELECT epoch FROM owner_epochs WHERE persistence_id = ?"
_RAISE_EPOCH = (
    "INSERT INTO owner_epochs (persistence_id, epoch) VALUES (?, ?) ON CONFLICT (persistence_id)"
    " DO UPDATE SET epoch = max(epoch, excluded.epoch)"
)
_HIGHEST_ORDERING = (
    "SELECT max(coalesce((SELECT max(ordering) FROM journal), 0),"
    " (SELECT highest_ordering FROM journal_state))"
)
# An untagged batch while no deletion holds back the next ordering: SQLite's own rowid for a row
# inserted without one is the largest rowid + 1, the very ordering the journal would hand out.
_INSERT_UNTAGGED = (
    "INSERT INTO journal (persistence_id, sequence_nr, manifest, payload, writer_id, timestamp)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_ORDERINGS = (
    "SELECT coalesce((SELECT max(ordering) FROM journal), 0),"
    " (SELECT highest_ordering FROM journal_state)"
)
_FIELDS_BUT_TAGS = itemgetter(slice(0, 6))
_TAGS = itemgetter(6)
# One untagged event (a sequential persist): its ordering drawn inside the insert itself.
_INSERT_NEXT = (
    "INSERT INTO journal (ordering, persistence_id, sequence_nr, manifest, payload, writer_id,"
    f" timestamp, tags) SELECT ({_HIGHEST_ORDERING}) + 1, ?, ?, ?, ?, ?, ?, NULL"
)
_HIGHEST_SEQUENCE_NR = (
    "SELECT max(coalesce((SELECT max(sequence_nr) FROM journal WHERE persistence_id = ?1), 0),"
    " coalesce((SELECT highest_sequence_nr FROM id_metadata WHERE persistence_id = ?1), 0))"
)
_FIRST_CONFLICT = (
    "SELECT sequence_nr FROM journal WHERE persistence_id = ? AND sequence_nr BETWEEN ? AND ?"
    " ORDER BY sequence_nr LIMIT 1"
)
# The tags column goes through the `persistence_tags` converter (registered below); every
# selected row then has exactly the fields of a PersistentRecord, in order.
_RECORD_COLUMNS = (
    "persistence_id, sequence_nr, manifest, payload, writer_id, timestamp,"
    " coalesce(tags, '-') AS \"tags [persistence_tags]\""
)
_REPLAY_PAGE = (
    f"SELECT {_RECORD_COLUMNS} FROM journal WHERE persistence_id = ?"
    " AND sequence_nr >= ? AND sequence_nr <= ? ORDER BY sequence_nr LIMIT ?"
)
_REPLAY_ROWS = (
    "SELECT sequence_nr, manifest, payload FROM journal WHERE persistence_id = ?"
    " AND sequence_nr >= ? AND sequence_nr <= ? ORDER BY sequence_nr LIMIT ?"
)
_TAG_PAGE = (
    f"SELECT t.ordering, {_RECORD_COLUMNS} FROM event_tags AS t"
    " JOIN journal ON journal.ordering = t.ordering"
    " WHERE t.tag = ? AND t.ordering > ? ORDER BY t.ordering LIMIT ?"
)
_PERSISTENCE_IDS = (
    "SELECT persistence_id FROM ("
    " SELECT persistence_id, min(ordering) AS first FROM journal GROUP BY persistence_id"
    " UNION ALL SELECT persistence_id, first_ordering FROM id_metadata"
    ") GROUP BY persistence_id ORDER BY min(first)"
)

_NO_TAGS: tuple[str, ...] = ()


def _encode_tags(tags: Sequence[str]) -> str | None:
    return json.dumps(list(tags), separators=(",", ":")) if tags else None


def _decode_tags(stored: bytes) -> tuple[str, ...]:
    # "-" stands for NULL: sqlite3 hands converters None, not b"", for NULL and empty values.
    if stored == b"-":
        return _NO_TAGS
    try:
        return tuple(json.loads(stored))
    except ValueError as exc:  # raised as a store failure, like any other unreadable row
        raise sqlite3.DataError(f"unreadable tags column {stored!r}: {exc}") from exc


# Converters are registered by name for the whole sqlite3 module; this name is ours alone. It
# turns the tags column into the tuple a PersistentRecord holds without a Python-level call per
# row for the rest of the record.
sqlite3.register_converter("persistence_tags", _decode_tags)

# A row of _RECORD_COLUMNS has the record's fields in order: build the tuple directly (what
# PersistentRecord._make does, minus its Python-level length check).
_as_record: Callable[[Any], PersistentRecord] = partial(tuple.__new__, PersistentRecord)

Row = tuple[int, str, int, str, bytes, str, int, str | None]

_EventRow = tuple[int, str, bytes]
"""A row of :meth:`SqliteJournal.replay_rows`: ``(sequence_nr, manifest, payload)``."""

_Replayed = TypeVar("_Replayed", PersistentRecord, _EventRow)
_SEQUENCE_NR_OF_RECORD: Callable[[PersistentRecord], int] = itemgetter(1)
_SEQUENCE_NR_OF_ROW: Callable[[_EventRow], int] = itemgetter(0)


def _add_rows(
    write: AtomicWrite, ordering: int, rows: list[Row], tag_rows: list[tuple[str, int]]
) -> int:
    """Append the journal and event_tags rows of ``write`` with orderings after ``ordering``;
    return the last ordering used."""
    for pid, seq, manifest, payload, writer_id, timestamp, tags in write.records:
        ordering += 1
        if tags:
            tag_rows.extend((tag, ordering) for tag in dict.fromkeys(tags))
            rows.append(
                (ordering, pid, seq, manifest, payload, writer_id, timestamp, _encode_tags(tags))
            )
        else:
            rows.append((ordering, pid, seq, manifest, payload, writer_id, timestamp, None))
    return ordering


def _write_batch(conn: sqlite3.Connection, writes: list[AtomicWrite]) -> list[BaseException | None]:
    """One transaction storing ``writes``; runs on the connection's thread."""
    if len(writes) == 1:
        write = writes[0]
        if len(write.records) == 1 and write.owner_epoch is None and not write.records[0].tags:
            return [_write_single(conn, write.records[0])]
    conn.execute("BEGIN IMMEDIATE")
    try:
        highest, kept = conn.execute(_ORDERINGS).fetchone()
        try:
            if any(write.owner_epoch is not None for write in writes):
                raise _Fenced  # epochs are checked write by write, below
            records = [record for write in writes for record in write.records]
            if kept <= highest and not any(map(_TAGS, records)):
                conn.executemany(_INSERT_UNTAGGED, map(_FIELDS_BUT_TAGS, records))
            else:
                ordering = max(highest, kept)
                rows: list[Row] = []
                tag_rows: list[tuple[str, int]] = []
                for write in writes:
                    ordering = _add_rows(write, ordering, rows, tag_rows)
                conn.executemany(_INSERT, rows)
                if tag_rows:
                    conn.executemany(_INSERT_TAG, tag_rows)
            results: list[BaseException | None] = [None] * len(writes)
        except (sqlite3.IntegrityError, _Fenced):
            # A (persistence_id, sequence_nr) is taken: redo write by write to reject only those.
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            (ordering,) = conn.execute(_HIGHEST_ORDERING).fetchone()
            results = []
            for write in writes:
                rows, tag_rows = [], []
                ordering = _add_rows(write, ordering, rows, tag_rows)
                results.append(_write_one(conn, write, rows, tag_rows))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return results


def _write_single(conn: sqlite3.Connection, record: PersistentRecord) -> JournalError | None:
    """One transaction storing one untagged event of a write without an owner epoch: one
    statement between ``BEGIN`` and ``COMMIT``, the sequential writer's case."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        try:
            conn.execute(_INSERT_NEXT, record[:6])
            result = None
        except sqlite3.IntegrityError:  # (persistence_id, sequence_nr) is taken
            result = SequenceNrConflictError(record.persistence_id, record.sequence_nr)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


class _Fenced(Exception):
    """A batch holds writes with owner epochs: they take the write-by-write path."""


def _write_one(
    conn: sqlite3.Connection,
    write: AtomicWrite,
    rows: list[Row],
    tag_rows: list[tuple[str, int]],
) -> JournalError | None:
    epoch = write.owner_epoch
    if epoch is not None:
        stored = conn.execute(_STORED_EPOCH, (write.persistence_id,)).fetchone()
        if stored is not None and stored[0] > epoch:
            return OwnerEpochFencedError(write.persistence_id, epoch, stored[0])
    conn.execute("SAVEPOINT write")
    try:
        conn.executemany(_INSERT, rows)
        conn.executemany(_INSERT_TAG, tag_rows)
    except sqlite3.IntegrityError:
        conn.execute("ROLLBACK TO write")
        conn.execute("RELEASE write")
        pid, low, high = write.persistence_id, write.lowest_sequence_nr, write.highest_sequence_nr
        taken = conn.execute(_FIRST_CONFLICT, (pid, low, high)).fetchone()
        return SequenceNrConflictError(pid, low if taken is None else taken[0])
    if epoch is not None:
        conn.execute(_RAISE_EPOCH, (write.persistence_id, epoch))
    conn.execute("RELEASE write")
    return None


def _read_page(
    conn: sqlite3.Connection, pid: str, low: int, high: int, limit: int
) -> list[PersistentRecord]:
    return list(map(_as_record, conn.execute(_REPLAY_PAGE, (pid, low, high, limit)).fetchall()))


def _read_rows(
    conn: sqlite3.Connection, pid: str, low: int, high: int, limit: int
) -> list[_EventRow]:
    rows: list[_EventRow] = conn.execute(_REPLAY_ROWS, (pid, low, high, limit)).fetchall()
    return rows


def _read_tag_page(
    conn: sqlite3.Connection, tag: str, after: int, limit: int
) -> list[TaggedRecord]:
    rows = conn.execute(_TAG_PAGE, (tag, after, limit)).fetchall()
    return [TaggedRecord(row[0], _as_record(row[1:])) for row in rows]


def _scalar(conn: sqlite3.Connection, sql: str, *params: Any) -> Any:
    return conn.execute(sql, params).fetchone()[0]


def _persistence_ids(conn: sqlite3.Connection) -> list[str]:
    return [pid for (pid,) in conn.execute(_PERSISTENCE_IDS)]


def _delete_to(conn: sqlite3.Connection, pid: str, to_sequence_nr: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # An index-only scan: the (persistence_id, sequence_nr) index holds the rowid (ordering).
        (first,) = conn.execute(
            "SELECT min(ordering) FROM journal WHERE persistence_id = ?", (pid,)
        ).fetchone()
        if first is not None:
            highest = _scalar(conn, _HIGHEST_SEQUENCE_NR, pid)
            conn.execute(
                "INSERT INTO id_metadata (persistence_id, highest_sequence_nr, first_ordering)"
                " VALUES (?, ?, ?) ON CONFLICT (persistence_id) DO UPDATE SET"
                " highest_sequence_nr = max(highest_sequence_nr, excluded.highest_sequence_nr)",
                (pid, highest, first),
            )
            conn.execute(f"UPDATE journal_state SET highest_ordering = ({_HIGHEST_ORDERING})")
            tagged = conn.execute(
                "SELECT ordering, tags FROM journal WHERE persistence_id = ?"
                " AND sequence_nr <= ? AND tags IS NOT NULL",
                (pid, to_sequence_nr),
            ).fetchall()
            conn.executemany(
                "DELETE FROM event_tags WHERE tag = ? AND ordering = ?",
                [
                    (tag, ordering)
                    for ordering, tags in tagged
                    for tag in set(_decode_tags(tags.encode()))
                ],
            )
            conn.execute(
                "DELETE FROM journal WHERE persistence_id = ? AND sequence_nr <= ?",
                (pid, to_sequence_nr),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SqliteJournal:
    """A :class:`~persistence.journal.Journal` and :class:`~persistence.journal.ReadJournal`
    in one SQLite file.

    ``synchronous="full"`` (default) makes every acknowledged write survive a power loss;
    ``"normal"`` is faster and still survives a killed process (a power loss may lose the last
    commits); ``"off"`` never syncs (a power loss may corrupt the file). The file (and its
    parent directories) is created on first use. Concurrent ``write`` calls share one
    transaction (group commit, at most ``max_batch`` atomic writes); replay reads ``page_size``
    events per round trip to the connection's thread. A statement waits up to ``busy_timeout``
    seconds for another connection's lock on the file.

    ``read_only=True`` opens an existing file for reading only (for tools such as
    ``python -m persistence``, and read-only media): no schema, no pragmas, no ``-wal``/``-shm``
    files created, and ``write``/``delete_to`` raise :class:`~persistence.JournalError`. When
    no other connection has the file open, it is read without locks (see
    :func:`~persistence._sqlite_db.read_only_uri`): a writer that starts meanwhile can make a
    read fail.

    Closing is final: after :meth:`close` (see :attr:`closed`) every call raises
    :class:`~persistence.JournalClosedError`; create a new instance to use the file again.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "full",
        page_size: int = 2000,
        max_batch: int = 10_000,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        read_only: bool = False,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self._db = LazySqlite(
            path,
            synchronous,
            _SCHEMA,
            name="sqlite journal",
            error=JournalError,
            closed_error=JournalClosedError,
            busy_timeout=busy_timeout,
            read_only=read_only,
        )
        self._page_size = page_size
        self.changes = Changes()
        """Bumped after every batch written by this instance (live queries wait on it)."""
        self._committer: GroupCommit[AtomicWrite, BaseException | None] = GroupCommit(
            self._db, "write events", _write_batch, max_batch=max_batch, done=self.changes.bump
        )

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._db.path

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every later call raises)."""
        return self._db.closed

    @property
    def read_only(self) -> bool:
        """Whether the journal was opened for reading only."""
        return self._db.read_only

    def __repr__(self) -> str:
        read_only = " read-only" if self._db.read_only else ""
        return f"<SqliteJournal {str(self._db.path)!r}{read_only} {self._db.state}>"

    def _check_writable(self, operation: str) -> None:
        self._db.check_open(operation)
        if self._db.read_only:
            raise JournalError(
                f"cannot {operation}: {self._db.name} is open read-only; open it without "
                "read_only=True to change it"
            )

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        """Store the batch; per write ``None`` (stored) or the exception that rejected it."""
        # No await before submitting: a write called before close() is one close() waits for.
        if self._db.closed or self._db.read_only:
            self._check_writable("write events")
        for write in writes:
            if check_atomic_write(write) is not None or (
                write.owner_epoch is not None and check_owner_epoch(write) is not None
            ):
                return await self._write_well_formed(writes)
        if not writes:
            return []
        return await self._committer.submit(writes)

    async def _write_well_formed(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        """Reject the malformed atomic writes, submit the rest."""
        errors = [check_atomic_write(write) or check_owner_epoch(write) for write in writes]
        valid = [write for write, error in zip(writes, errors, strict=True) if error is None]
        if not valid:
            return list(errors)
        stored = iter(await self._committer.submit(valid))
        return [next(stored) if error is None else error for error in errors]

    def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        """Yield the events of ``persistence_id`` within the inclusive bounds, in pages."""
        return self._replay_pages(
            _read_page,
            _SEQUENCE_NR_OF_RECORD,
            persistence_id,
            from_sequence_nr,
            to_sequence_nr,
            max_count,
        )

    def replay_rows(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[_EventRow]]:
        """:meth:`replay` as ``(sequence_nr, manifest, payload)`` rows (what recovery reads)."""
        return self._replay_pages(
            _read_rows,
            _SEQUENCE_NR_OF_ROW,
            persistence_id,
            from_sequence_nr,
            to_sequence_nr,
            max_count,
        )

    async def _replay_pages(
        self,
        read: Callable[[sqlite3.Connection, str, int, int, int], list[_Replayed]],
        sequence_nr_of: Callable[[_Replayed], int],
        persistence_id: str,
        from_sequence_nr: int,
        to_sequence_nr: int,
        max_count: int,
    ) -> AsyncIterator[list[_Replayed]]:
        self._db.check_open("replay events")
        if utf8_problem(persistence_id) is not None:
            return  # nothing can be stored under it
        remaining = max_count
        low = from_sequence_nr
        while remaining > 0 and low <= to_sequence_nr:
            limit = min(remaining, self._page_size)
            page = await self._db.run(
                "replay events", read, persistence_id, low, to_sequence_nr, limit
            )
            if not page:
                return
            remaining -= len(page)
            low = sequence_nr_of(page[-1]) + 1
            yield page
            if len(page) < limit:
                return

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        """The highest sequence number ever stored for the id (0 if unknown)."""
        self._db.check_open("read the highest sequence number")
        if utf8_problem(persistence_id) is not None:
            return 0
        highest: int = await self._db.run(
            "read the highest sequence number", _scalar, _HIGHEST_SEQUENCE_NR, persistence_id
        )
        return highest

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        """Delete the stored events of the id up to and including ``to_sequence_nr``."""
        self._check_writable("delete events")
        if utf8_problem(persistence_id) is not None:
            return
        await self._db.run("delete events", _delete_to, persistence_id, to_sequence_nr)

    async def persistence_ids(self) -> list[str]:
        """Every id that has stored at least one event, in first-write order."""
        return await self._db.run("list persistence ids", _persistence_ids)

    async def events_by_tag(
        self, tag: str, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Yield the events carrying ``tag`` with ``ordering > after_ordering``, in pages."""
        self._db.check_open("query events by tag")
        if utf8_problem(tag) is not None:
            return
        remaining = max_count
        after = after_ordering
        while remaining > 0:
            limit = min(remaining, self._page_size)
            page = await self._db.run("query events by tag", _read_tag_page, tag, after, limit)
            if not page:
                return
            remaining -= len(page)
            after = page[-1].ordering
            yield page
            if len(page) < limit:
                return

    async def highest_ordering(self) -> int:
        """The highest ordering ever handed out (0 if none)."""
        highest: int = await self._db.run("read the highest ordering", _scalar, _HIGHEST_ORDERING)
        return highest

    async def close(self) -> None:
        """Finish pending writes and close the file; later calls raise
        :class:`~persistence.JournalClosedError` (closing is final). Closing twice is
        harmless."""
        await self._db.close(self._committer.drain)

    # -- all events (the read side's notification log): ordering is the rowid, a range scan

    _ALL_EVENTS_PAGE = (
        f"SELECT ordering, {_RECORD_COLUMNS} FROM journal WHERE ordering > ?"
        " ORDER BY ordering LIMIT ?"
    )

    @staticmethod
    def _read_all_events_page(
        conn: sqlite3.Connection, after: int, limit: int
    ) -> list[TaggedRecord]:
        rows = conn.execute(SqliteJournal._ALL_EVENTS_PAGE, (after, limit)).fetchall()
        return [TaggedRecord(row[0], _as_record(row[1:])) for row in rows]

    async def all_events(
        self, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Yield every stored event with ``ordering > after_ordering``, in pages."""
        self._db.check_open("query all events")
        remaining = max_count
        after = after_ordering
        while remaining > 0:
            limit = min(remaining, self._page_size)
            page = await self._db.run("query all events", self._read_all_events_page, after, limit)
            if not page:
                return
            remaining -= len(page)
            after = page[-1].ordering
            yield page
            if len(page) < limit:
                return
