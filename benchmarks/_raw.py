"""The raw baselines' storage: a minimal SQLite table and a file of concatenated msgpack records.

Both hold what a journal must keep per event (persistence id, sequence number, type name,
payload, writer, timestamp) and nothing else: no checksums, no ordering column, no index, no
thread hop. They are the limit a journal built on the same storage can approach.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import msgpack

from benchmarks._common import Deposited

MANIFEST = "Deposited"
WRITER = "bench"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    persistence_id TEXT NOT NULL,
    sequence_nr INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    payload BLOB NOT NULL,
    writer_id TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (persistence_id, sequence_nr)
) WITHOUT ROWID
"""
INSERT = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)"
SELECT = (
    "SELECT manifest, payload FROM events WHERE persistence_id = ? AND sequence_nr >= ? "
    "ORDER BY sequence_nr"
)

Row = tuple[str, int, str, bytes, str, int]


def encode(event: Deposited) -> bytes:
    """The payload of one event."""
    return msgpack.packb({"amount": event.amount})  # type: ignore[no-any-return]


def decode(manifest: str, payload: bytes) -> Deposited:
    """The event back from its payload (the type name picks the class)."""
    if manifest != MANIFEST:
        raise ValueError(f"unknown type name {manifest!r}")
    return Deposited(**msgpack.unpackb(payload))


def row(persistence_id: str, sequence_nr: int, event: Deposited) -> Row:
    """One stored event, timestamped now (milliseconds)."""
    return (persistence_id, sequence_nr, MANIFEST, encode(event), WRITER, time.time_ns() // 10**6)


def open_sqlite(path: str, synchronous: str) -> sqlite3.Connection:
    """A WAL-mode connection in autocommit mode (transactions are explicit) with the table."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    conn.execute(SCHEMA)
    return conn


def open_append(path: str) -> int:
    """A file descriptor appending to ``path``."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def sync(fd: int) -> None:
    """Make what was written to ``fd`` durable (data, not metadata where the OS allows)."""
    getattr(os, "fdatasync", os.fsync)(fd)


def frame(record: Row) -> bytes:
    """One record as it goes into the raw file (msgpack arrays, back to back)."""
    return msgpack.packb(record)  # type: ignore[no-any-return]


def read_records(path: str, offset: int = 0) -> Iterator[Any]:
    """The records of a raw file from byte ``offset`` on, streamed in 1 MiB reads."""
    with open(path, "rb") as file:
        file.seek(offset)
        yield from msgpack.Unpacker(file, read_size=1 << 20, use_list=False)
