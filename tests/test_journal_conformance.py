"""Every bundled journal passes the conformance suite of persistence.testing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import pytest_asyncio

from persistence import testing
from persistence.journal import FileJournal, Journal, SqliteJournal
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
