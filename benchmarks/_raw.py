"""The raw baselines' storage: the journals' own files, written and read without the journals.

Raw SQLite writes into a file that :class:`~persistence.journal.SqliteJournal` itself created,
so the schema, the indexes, the WAL mode and the durability (``PRAGMA synchronous``) are the
journal's; a raw write is the journal's ``INSERT`` with the row's ordering left to SQLite, in one
transaction per commit, without the journal's thread hop, ordering query or group committer.

Raw file writes append records in the file journal's format (see
:mod:`persistence.journal._file_format`: a checksummed frame around one msgpack ``events`` body
per atomic write) to the segment :class:`~persistence.journal.FileJournal` itself created, with
one ``write`` (and one ``fdatasync`` when durable) per commit. Raw file replay reads the journal's
own segments through an index of the id's records (built before the timing, as the journal builds
its index when it opens) and checks each record's checksum, as the journal does.

Payloads are what the serializer stores for the benchmark's events (``msgpack`` of the fields
by name), timestamps are milliseconds, the writer id is the benchmarks' one.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import sqlite3
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack

from benchmarks._common import AccountState, Deposited

MANIFEST = "Deposited"
WRITER = "bench"

INSERT = (
    "INSERT INTO journal (persistence_id, sequence_nr, manifest, payload, writer_id, timestamp)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
SELECT = (
    "SELECT manifest, payload FROM journal WHERE persistence_id = ? AND sequence_nr >= ?"
    " ORDER BY sequence_nr"
)
SELECT_SNAPSHOT = (
    "SELECT sequence_nr, manifest, payload FROM snapshots WHERE persistence_id = ?"
    " ORDER BY sequence_nr DESC LIMIT 1"
)

Row = tuple[str, int, str, bytes, str, int]

# The file journal's format (persistence.journal._file_format), restated.
SEGMENT_HEADER_SIZE = 8
FIRST_SEGMENT = "00000001.log"
KIND_EVENTS = 1
_LENGTH_AND_CRC = struct.Struct("<II")
_U32 = struct.Struct("<I")
RECORD_HEADER_SIZE = 12
_SNAPSHOT_HEADER = struct.Struct("<4sB3xqIII")

_packb = msgpack.packb
_unpackb = msgpack.unpackb
_crc32 = zlib.crc32


def encode(event: Deposited) -> bytes:
    """The payload of one event, as the serializer writes it."""
    return _packb({"amount": event.amount})  # type: ignore[no-any-return]


def decode(manifest: str, payload: bytes) -> Deposited:
    """The event back from its payload (the type name picks the class)."""
    if manifest != MANIFEST:
        raise ValueError(f"unknown type name {manifest!r}")
    return Deposited(**_unpackb(payload))


def decode_state(manifest: str, payload: bytes) -> AccountState:
    """A snapshot back from its payload."""
    if manifest != "AccountState":
        raise ValueError(f"unknown snapshot type name {manifest!r}")
    return AccountState(**_unpackb(payload))


def now_ms() -> int:
    """The timestamp stored with an event."""
    return time.time_ns() // 10**6


def row(persistence_id: str, sequence_nr: int, event: Deposited) -> Row:
    """One stored event, timestamped now."""
    return (persistence_id, sequence_nr, MANIFEST, encode(event), WRITER, now_ms())


# -- SQLite ---------------------------------------------------------------------------------


def create_sqlite_journal(path: str, synchronous: str) -> None:
    """Have :class:`~persistence.journal.SqliteJournal` create its file at ``path``."""
    from persistence.journal import SqliteJournal

    async def create() -> None:
        journal = SqliteJournal(path, synchronous=synchronous)  # type: ignore[arg-type]
        try:
            await journal.highest_sequence_nr("-")
        finally:
            await journal.close()

    asyncio.run(create())


def open_sqlite(path: str, synchronous: str) -> sqlite3.Connection:
    """A connection to a journal file as the journal opens it: WAL, ``synchronous``, autocommit
    (transactions are explicit)."""
    conn = sqlite3.connect(path, isolation_level=None)
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode != "wal":
        raise RuntimeError(f"{path}: cannot switch to WAL mode (stays {mode!r})")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    return conn


# -- files ------------------------------------------------------------------------------------


def create_file_journal(path: str) -> str:
    """Have :class:`~persistence.journal.FileJournal` create its directory; its first segment."""
    from persistence.journal import FileJournal

    async def create() -> None:
        journal = FileJournal(path)
        try:
            await journal.highest_sequence_nr("-")
        finally:
            await journal.close()

    asyncio.run(create())
    segment = os.path.join(path, FIRST_SEGMENT)
    if not os.path.exists(segment):
        raise RuntimeError(f"the file journal did not create {segment}")
    return segment


def open_append(path: str) -> int:
    """A file descriptor appending to ``path``."""
    return os.open(path, os.O_WRONLY | os.O_APPEND)


def sync(fd: int) -> None:
    """Make what was written to ``fd`` durable (data, not metadata where the OS allows), as the
    file journal does."""
    getattr(os, "fdatasync", os.fsync)(fd)


def frame(ordering: int, record: Row) -> bytes:
    """One atomic write of one event as a file journal record (header and body)."""
    persistence_id, sequence_nr, manifest, payload, writer_id, timestamp = record
    body: bytes = _packb(
        (
            KIND_EVENTS,
            ordering,
            persistence_id,
            ((sequence_nr, manifest, payload, writer_id, timestamp, ()),),
        )
    )
    header = _LENGTH_AND_CRC.pack(len(body), _crc32(body))
    return header + _U32.pack(_crc32(header)) + body


IndexEntry = tuple[int, int, int, int]
"""Where a record of one id is: its first sequence number, segment number, offset, size."""


def segments(directory: str) -> list[tuple[int, str]]:
    """The journal's segment files, by number."""
    found = []
    for name in os.listdir(directory):
        stem, _, extension = name.partition(".")
        if extension == "log" and stem.isdigit():
            found.append((int(stem), os.path.join(directory, name)))
    return sorted(found)


def index_file_journal(directory: str) -> dict[str, list[IndexEntry]]:
    """Every id's records in the journal's segments, in file order (not timed: see the module)."""
    index: dict[str, list[IndexEntry]] = {}
    for number, path in segments(directory):
        data = Path(path).read_bytes()
        offset = SEGMENT_HEADER_SIZE
        while offset + RECORD_HEADER_SIZE <= len(data):
            length, _ = _LENGTH_AND_CRC.unpack_from(data, offset)
            start = offset + RECORD_HEADER_SIZE
            kind, *rest = _unpackb(data[start : start + length], use_list=False)
            if kind == KIND_EVENTS:
                _, persistence_id, events = rest
                index.setdefault(persistence_id, []).append(
                    (events[0][0], number, offset, RECORD_HEADER_SIZE + length)
                )
            offset = start + length
    return index


def read_events(
    directory: str, entries: list[IndexEntry], from_sequence_nr: int
) -> Iterator[tuple[Any, ...]]:
    """The stored events of ``entries`` from ``from_sequence_nr`` on, checksums checked."""
    maps: dict[int, mmap.mmap] = {}
    files = dict(segments(directory))
    unpack_header = _LENGTH_AND_CRC.unpack_from
    crc32 = _crc32
    unpackb = _unpackb
    try:
        for first, number, offset, _ in entries:
            if first < from_sequence_nr:
                continue
            view = maps.get(number)
            if view is None:
                with open(files[number], "rb") as file:
                    view = maps[number] = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
            length, body_crc = unpack_header(view, offset)
            start = offset + RECORD_HEADER_SIZE
            body = view[start : start + length]
            if crc32(body) != body_crc:
                raise RuntimeError(f"checksum mismatch at {files[number]}:{offset}")
            yield from unpackb(body, use_list=False)[3]
    finally:
        for view in maps.values():
            view.close()


def load_file_snapshot(directory: str, persistence_id: str) -> tuple[int, AccountState] | None:
    """The youngest snapshot of ``persistence_id`` in a file snapshot store, read directly
    (the format is in :mod:`persistence.snapshot._file`); ids here need no escaping."""
    id_directory = Path(directory) / persistence_id
    numbers = sorted(
        (int(name.stem) for name in id_directory.glob("*.snap") if name.stem.isdigit()),
        reverse=True,
    )
    if not numbers:
        return None
    data = (id_directory / f"{numbers[0]}.snap").read_bytes()
    magic, _, _, length, body_crc, _ = _SNAPSHOT_HEADER.unpack_from(data)
    body = data[_SNAPSHOT_HEADER.size : _SNAPSHOT_HEADER.size + length]
    if magic != b"ASNP" or _crc32(body) != body_crc:
        raise RuntimeError(f"unreadable snapshot {id_directory / f'{numbers[0]}.snap'}")
    _, sequence_nr, manifest, payload = _unpackb(body)
    return sequence_nr, decode_state(manifest, payload)
