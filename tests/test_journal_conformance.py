"""Every bundled journal passes the conformance suite of persistence.testing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import pytest_asyncio

from persistence import JournalError, testing
from persistence.journal import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    FileJournal,
    Journal,
    PersistentRecord,
    RowReplay,
    SqliteJournal,
)
from persistence.testing import InMemoryJournal, JournalConformance
from persistence.testing._journal_suite import Reopen

BACKENDS = ["memory", "sqlite", "file"]


def make_journal(backend: str, directory: Path) -> Journal:
    if backend == "memory":
        return InMemoryJournal()
    if backend == "sqlite":
        return SqliteJournal(directory / "journal.db")
    return FileJournal(directory / "journal")


class TestJournalConformance(JournalConformance):
    @pytest.fixture(params=BACKENDS)
    def backend(self, request: pytest.FixtureRequest) -> str:
        backend: str = request.param
        return backend

    @pytest_asyncio.fixture
    async def journal(self, backend: str, tmp_path: Path) -> AsyncIterator[Journal]:
        journal = make_journal(backend, tmp_path)
        try:
            yield journal
        finally:
            await journal.close()

    @pytest.fixture
    def reopen(self, backend: str, tmp_path: Path) -> Reopen | None:
        return None if backend == "memory" else partial(make_journal, backend, tmp_path)


class TestSqliteJournalWithSmallPages(JournalConformance):
    """The SQLite journal again, with pages of 3 events: every multi-page path is taken."""

    @pytest_asyncio.fixture
    async def journal(self, tmp_path: Path) -> AsyncIterator[Journal]:
        journal = SqliteJournal(tmp_path / "journal.db", page_size=3)
        try:
            yield journal
        finally:
            await journal.close()

    @pytest.fixture
    def reopen(self, tmp_path: Path) -> Reopen:
        return partial(SqliteJournal, tmp_path / "journal.db", page_size=3)


def test_persistence_testing_exports_the_backends_and_suites() -> None:
    expected = {
        "InMemoryJournal",
        "InMemorySnapshotStore",
        "JournalConformance",
        "SnapshotStoreConformance",
    }
    assert expected <= set(testing.__all__)  # others may add more names
    assert testing.__all__ == sorted(testing.__all__)
    for name in testing.__all__:
        assert getattr(testing, name).__name__ == name


def test_the_in_memory_backends_import_without_pytest_installed() -> None:
    script = (
        "import sys\n"
        "sys.modules['pytest'] = sys.modules['pytest_asyncio'] = None\n"
        "from persistence.testing import InMemoryJournal, InMemorySnapshotStore\n"
        "try:\n"
        "    from persistence.testing import JournalConformance\n"
        "except ImportError:\n"
        "    print('suite needs pytest')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout == "suite needs pytest\n"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_bundled_journal_says_whether_it_was_closed(
    backend: str, tmp_path: Path
) -> None:
    """Whoever is handed a journal (the Persistence extension) can refuse a closed one."""
    journal = make_journal(backend, tmp_path)
    assert journal.closed is False  # type: ignore[attr-defined]
    assert await journal.highest_sequence_nr("a") == 0
    await journal.close()
    assert journal.closed is True  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["sqlite", "file"])
async def test_the_sqlite_and_file_journals_hand_recovery_rows_without_records(
    backend: str, tmp_path: Path
) -> None:
    journal = make_journal(backend, tmp_path)
    assert isinstance(journal, RowReplay)
    assert not isinstance(InMemoryJournal(), RowReplay)  # its records become rows in row_pages
    written = PersistentRecord("a", 1, "M", b"x", "w", 5, ("t",))
    assert await journal.write([AtomicWrite([written])]) == [None]
    [[row]] = [page async for page in journal.replay_rows("a")]
    assert type(row) is tuple
    assert row[:3] == (1, "M", b"x")
    await journal.close()


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            AtomicWrite([PersistentRecord("id\udc80", 1, "M", b"")]),
            "invalid atomic write, persistence_id='id\\udc80': the persistence id cannot be "
            "encoded as UTF-8 (surrogates not allowed: '\\udc80' at index 2)",
        ),
        (
            AtomicWrite(
                [PersistentRecord("a", 1, "M", b""), PersistentRecord("a", 2, "\ud800", b"")]
            ),
            "invalid atomic write, persistence_id='a', sequence_nr=2: the manifest '\\ud800' "
            "cannot be encoded as UTF-8 (surrogates not allowed: '\\ud800' at index 0)",
        ),
        (
            AtomicWrite([PersistentRecord("a", 1, "M", b"", "w\udfff")]),
            "invalid atomic write, persistence_id='a', sequence_nr=1: the writer_id 'w\\udfff' "
            "cannot be encoded as UTF-8 (surrogates not allowed: '\\udfff' at index 1)",
        ),
        (
            AtomicWrite([PersistentRecord("a", 1, "M", b"", "w", 0, ("ünï", "t\udc00"))]),
            "invalid atomic write, persistence_id='a', sequence_nr=1: the tag 't\\udc00' cannot "
            "be encoded as UTF-8 (surrogates not allowed: '\\udc00' at index 1)",
        ),
        (
            AtomicWrite([PersistentRecord("a", 1, "M", b"", "w", 1 << 63)]),
            "invalid atomic write, persistence_id='a', sequence_nr=1: manifest, writer_id and "
            "tags must be str, timestamp an int and payload bytes",
        ),
        (
            AtomicWrite([PersistentRecord(None, 1, "M", b"")]),  # type: ignore[arg-type]
            "invalid atomic write: the persistence id must be a str, not None",
        ),
        (
            AtomicWrite([PersistentRecord("a", MAX_SEQUENCE_NR + 1, "M", b"")]),
            f"invalid atomic write, persistence_id='a': sequence numbers go beyond "
            f"{MAX_SEQUENCE_NR}",
        ),
        (
            AtomicWrite([PersistentRecord("a", 1.0, "M", b"")]),  # type: ignore[arg-type]
            "invalid atomic write, persistence_id='a': sequence_nr=1.0 is not an int of at least "
            "1 (sequence numbers start at 1)",
        ),
    ],
    ids=[
        "id",
        "manifest",
        "writer-id",
        "tag",
        "timestamp-beyond-64-bits",
        "id-not-str",
        "sequence-nr-beyond-max",
        "sequence-nr-not-int",
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_bundled_journal_rejects_an_unstorable_write_naming_its_id_and_the_problem(
    backend: str, tmp_path: Path, write: AtomicWrite, message: str
) -> None:
    journal = make_journal(backend, tmp_path)
    try:
        [rejection] = await journal.write([write])
        assert type(rejection) is JournalError
        assert str(rejection) == message
        assert await journal.highest_sequence_nr("a") == 0
    finally:
        await journal.close()
