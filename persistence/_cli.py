"""``python -m persistence``: look into a journal from the command line.

::

    python -m persistence ids URL                  every persistence id, one per line
    python -m persistence dump URL PERSISTENCE_ID  the id's events as JSON lines
    python -m persistence verify URL               check every record's checksum

URLs as for :func:`persistence.open_journal`: ``file:DIR`` (a
:class:`~persistence.journal.FileJournal` directory), ``sqlite:PATH``, or a scheme a backend
registered (:func:`persistence.register_journal_scheme`; ``verify`` knows the built-in files only).
Exit status: 0 on success, 1 when ``verify`` finds damage, 2 on any other error (one line on
stderr).

A file journal is only read: opened with ``read_only=True``, it is neither locked nor changed, so
the commands work on read-only media and while an application has the journal open (they see the
records complete when they started). A torn tail is reported as a warning on stderr and left for
the application's next open to truncate.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from persistence._errors import JournalCorruptedError, PersistenceError
from persistence._urls import open_journal
from persistence.journal._file import FileJournal
from persistence.journal._file_format import KIND_EVENTS, JournalScan
from persistence.journal._protocol import Journal, PersistentRecord, ReadJournal
from persistence.journal._sqlite import SqliteJournal
from persistence.serialization import Serializer


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _locate(url: str) -> tuple[Journal, str, str]:
    """The (not yet opened) journal behind ``url``, its scheme and path. The journal must
    already exist: the CLI never creates one, and opens it read-only (no lock, no new file)."""
    journal = open_journal(url)  # any registered scheme; checks the URL; touches nothing
    scheme, _, rest = url.partition(":")
    path = rest.partition("?")[0]
    if scheme == "memory":
        raise CliError("a memory: journal lives inside one process: there is nothing to inspect")
    if scheme == "file" and not os.path.isdir(path):
        raise CliError(f"no file journal at {path!r}: the directory does not exist")
    if scheme == "sqlite" and not os.path.isfile(path):
        raise CliError(f"no sqlite journal at {path!r}: the file does not exist")
    if scheme == "file":
        journal = FileJournal(path, read_only=True)
    elif scheme == "sqlite":
        journal = SqliteJournal(path, read_only=True)
    return journal, scheme, path


def _payload_primitive(serializer: Serializer, manifest: str, payload: bytes) -> Any:
    """The payload as plain JSON values, decoded without the registered classes."""
    try:
        return serializer.to_primitive(manifest, payload)
    except PersistenceError as exc:
        return {"$undecodable": base64.b64encode(payload).decode("ascii"), "$error": str(exc)}


def _dump_line(serializer: Serializer, record: PersistentRecord) -> str:
    return json.dumps(
        {
            "sequence_nr": record.sequence_nr,
            "manifest": record.manifest,
            "timestamp": record.timestamp,
            "writer_id": record.writer_id,
            "tags": list(record.tags),
            "payload": _payload_primitive(serializer, record.manifest, record.payload),
        },
        ensure_ascii=False,
    )


async def _ids(url: str, out: TextIO) -> int:
    journal, _, _ = _locate(url)
    try:
        if not isinstance(journal, ReadJournal):
            raise CliError(f"the journal behind {url!r} cannot list persistence ids")
        for persistence_id in await journal.persistence_ids():
            out.write(persistence_id + "\n")
    finally:
        await journal.close()
    return 0


async def _dump(url: str, persistence_id: str, out: TextIO) -> int:
    journal, _, _ = _locate(url)
    serializer = Serializer()
    try:
        async for page in journal.replay(persistence_id):
            out.write("".join(_dump_line(serializer, record) + "\n" for record in page))
    finally:
        await journal.close()
    return 0


def _verify(url: str, out: TextIO) -> int:
    _, scheme, path = _locate(url)
    if scheme == "sqlite":
        return _verify_sqlite(path, out)
    if scheme != "file":
        raise CliError(
            f"verify checks file: and sqlite: journals only, not {scheme}: ({url!r}); check it "
            "with its backend's own tools"
        )
    scan = JournalScan(path)
    records = events = deletions = 0
    ids: set[str] = set()
    try:
        for _, _, _, value in scan.records():
            records += 1
            if value[0] == KIND_EVENTS:
                events += len(value[3])
                ids.add(value[2])
            else:
                deletions += 1
    except JournalCorruptedError as exc:
        out.write(f"corrupted: {exc.path} at offset {exc.offset}: {exc.reason}\n")
        out.write(f"checked {records} good records before it\n")
        return 1
    size = sum(os.path.getsize(segment) for _, segment in scan.segments)
    out.write(
        f"ok: {records} records ({events} events of {len(ids)} persistence ids, {deletions} "
        f"deletions) in {len(scan.segments)} segment files of {size} bytes in all, highest "
        f"ordering {scan.last_ordering}\n"
    )
    if scan.torn is not None:
        torn_path, torn = scan.torn
        out.write(
            f"torn tail: {torn_path} at offset {torn.offset}, {torn.size} bytes ({torn.reason}): a "
            "write cut short by a crash or a damaged last record, possibly acknowledged (the "
            "files do not record the fsync mode they were written with); the next read-write "
            "open truncates it\n"
        )
    return 0


def _verify_sqlite(path: str, out: TextIO) -> int:
    """sqlite's integrity_check, reading only: nothing is created or changed beside the file
    (see :func:`~persistence._sqlite_db.read_only_uri`), so it works on read-only media and
    next to a live writer. Only damage is reported as "corrupted"; a file that cannot be read
    (permissions, a lock held too long) is an error."""
    from pathlib import Path

    from persistence._sqlite_db import DEFAULT_BUSY_TIMEOUT, describe, read_only_uri

    database = Path(path)
    uri = read_only_uri(database)
    before = os.stat(database)
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=DEFAULT_BUSY_TIMEOUT)) as db:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise CliError(
                f"cannot verify {path!r}: {describe(exc, DEFAULT_BUSY_TIMEOUT)}"
            ) from exc
        problems = [str(exc)]
    after = os.stat(database)
    changed = (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size)
    if changed and uri.endswith("immutable=1"):
        # Read without locks (there was no -wal file: nobody had it open), yet someone wrote it.
        raise CliError(
            f"cannot verify {path!r}: it changed while it was checked (another process opened "
            "it for writing meanwhile); run verify again"
        )
    if problems == ["ok"]:
        out.write(f"ok: {path} passes sqlite's integrity_check\n")
        return 0
    for problem in problems:
        out.write(f"corrupted: {path}: {problem}\n")
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m persistence",
        description="Inspect an event journal. URL is file:DIR or sqlite:PATH.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ids = commands.add_parser("ids", help="list every persistence id, one per line")
    ids.add_argument("url", metavar="URL", help="the journal: file:DIR or sqlite:PATH")
    dump = commands.add_parser(
        "dump",
        help="print one id's events as JSON lines",
        description="Print the events of PERSISTENCE_ID as JSON lines (sequence_nr, manifest, "
        "timestamp, writer_id, tags, payload decoded to plain JSON).",
    )
    dump.add_argument("url", metavar="URL", help="the journal: file:DIR or sqlite:PATH")
    dump.add_argument("persistence_id", metavar="PERSISTENCE_ID", help="whose events to print")
    verify = commands.add_parser(
        "verify",
        help="check every record's checksum (exit 1 on damage)",
        description="Check a journal without changing it: for file:DIR every record's checksums "
        "and framing, for sqlite:PATH sqlite's integrity_check. Exit 1 naming the file and offset "
        "of the first damage.",
    )
    verify.add_argument("url", metavar="URL", help="the journal: file:DIR or sqlite:PATH")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "ids":
            return asyncio.run(_ids(args.url, out))
        if args.command == "dump":
            return asyncio.run(_dump(args.url, args.persistence_id, out))
        return _verify(args.url, out)
    except (CliError, PersistenceError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):  # e.g. piped into head: not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
