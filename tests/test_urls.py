"""Journal and snapshot-store URLs: memory:, sqlite:PATH, file:DIR, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistence import PersistenceConfigError
from persistence._urls import open_journal, open_snapshot_store
from persistence.journal import FileJournal, InMemoryJournal, SqliteJournal
from persistence.snapshot import FileSnapshotStore, InMemorySnapshotStore, SqliteSnapshotStore

JOURNAL_FORMS = (
    "'memory:', 'sqlite:PATH' (e.g. 'sqlite:data/bank.db', optionally "
    "'?synchronous=full|normal|off') or 'file:DIR' (e.g. 'file:data/journal', optionally "
    "'?fsync=always|batch|never')"
)


def test_memory_url_gives_an_in_memory_journal_and_store() -> None:
    assert isinstance(open_journal("memory:"), InMemoryJournal)
    assert isinstance(open_snapshot_store("memory:"), InMemorySnapshotStore)


def test_sqlite_url_takes_a_relative_or_absolute_path() -> None:
    relative = open_journal("sqlite:data/bank.db")
    assert isinstance(relative, SqliteJournal)
    assert relative.path == Path("data/bank.db")
    absolute = open_snapshot_store("sqlite:/var/lib/app/bank.db")
    assert isinstance(absolute, SqliteSnapshotStore)
    assert absolute.path == Path("/var/lib/app/bank.db")


async def test_sqlite_url_chooses_the_synchronous_mode(tmp_path: Path) -> None:
    journal = open_journal(f"sqlite:{tmp_path}/j.db?synchronous=normal")
    assert isinstance(journal, SqliteJournal)
    try:

        def level(conn: object) -> object:
            return conn.execute("PRAGMA synchronous").fetchone()[0]  # type: ignore[attr-defined]

        assert await journal._db.run("read", level) == 1
    finally:
        await journal.close()


def test_file_url_gives_file_backends_with_their_options() -> None:
    journal = open_journal("file:data/journal?fsync=batch")
    assert isinstance(journal, FileJournal)
    assert repr(journal) == "<FileJournal 'data/journal' fsync='batch' not opened>"
    assert isinstance(open_journal("file:data/journal"), FileJournal)
    assert isinstance(open_snapshot_store("file:data/snapshots"), FileSnapshotStore)


def test_opening_a_url_touches_nothing(tmp_path: Path) -> None:
    open_journal(f"sqlite:{tmp_path}/a/j.db")
    open_snapshot_store(f"sqlite:{tmp_path}/b/s.db")
    open_journal(f"file:{tmp_path}/c")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["postgres://localhost/db", "data/bank.db", "", "SQLITE:x.db"])
def test_an_unknown_scheme_lists_the_accepted_forms(url: str) -> None:
    with pytest.raises(PersistenceConfigError) as raised:
        open_journal(url)
    assert str(raised.value) == f"unsupported journal URL {url!r}: use {JOURNAL_FORMS}"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "sqlite:",
            "bad journal URL 'sqlite:': write sqlite:PATH with a file system path (relative or "
            "absolute, e.g. 'sqlite:data/bank.db' or 'sqlite:/var/lib/bank.db')",
        ),
        (
            "sqlite:///data/bank.db",
            "bad journal URL 'sqlite:///data/bank.db': write sqlite:PATH with a file system path "
            "(relative or absolute, e.g. 'sqlite:data/bank.db' or 'sqlite:/var/lib/bank.db')",
        ),
        ("memory:x", "bad journal URL 'memory:x': write just 'memory:'"),
        (
            "sqlite:a.db?synchronous=fast",
            "bad journal URL 'sqlite:a.db?synchronous=fast': synchronous must be one of full, "
            "normal, off, got 'fast'",
        ),
        (
            "sqlite:a.db?fsync=always",
            "bad journal URL 'sqlite:a.db?fsync=always': unknown option(s) fsync "
            "(accepted: synchronous)",
        ),
        (
            "file:j?fsync",
            "bad journal URL 'file:j?fsync': option 'fsync' has no value; accepted forms: "
            + JOURNAL_FORMS,
        ),
        ("memory:?x=1", "bad journal URL 'memory:?x=1': write just 'memory:'"),
    ],
)
def test_a_malformed_url_says_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(PersistenceConfigError) as raised:
        open_journal(url)
    assert str(raised.value) == message


def test_a_snapshot_store_url_takes_no_journal_options() -> None:
    with pytest.raises(PersistenceConfigError) as raised:
        open_snapshot_store("file:snaps?fsync=never")
    assert (
        str(raised.value)
        == "bad snapshot store URL 'file:snaps?fsync=never': unknown option(s) fsync"
    )
