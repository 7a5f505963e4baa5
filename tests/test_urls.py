"""Journal and snapshot-store URLs: memory:, sqlite:PATH, file:DIR, clear errors, and the
registry through which third-party backends add their schemes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import persistence
from examples.client.shell import open_shell
from persistence import PersistenceConfigError, _urls, open_journal, open_snapshot_store
from persistence._cli import main as cli_main
from persistence.journal import (
    AtomicWrite,
    FileJournal,
    InMemoryJournal,
    Journal,
    PersistentRecord,
    SqliteJournal,
)
from persistence.snapshot import (
    FileSnapshotStore,
    InMemorySnapshotStore,
    SnapshotStore,
    SqliteSnapshotStore,
)

JOURNAL_FORMS = (
    "'memory:', 'sqlite:PATH' (e.g. 'sqlite:data/bank.db', optionally "
    "'?synchronous=full|normal|off'), 'file:DIR' (e.g. 'file:data/journal', optionally "
    "'?fsync=always|batch|never') or 'postgresql://USER@HOST:PORT/DB' (or 'postgres://...')"
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


@pytest.mark.parametrize("url", ["mysql://localhost/db", "data/bank.db", "", "SQLITE:x.db"])
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


# -- the scheme registry: third-party backends ---------------------------------------------------


@pytest.fixture
def registry() -> Iterator[None]:
    """Schemes a test registers are gone after it."""
    saved = [
        (schemes, dict(schemes._factories), dict(schemes._forms))
        for schemes in (_urls._JOURNALS, _urls._SNAPSHOT_STORES)
    ]
    yield
    for schemes, factories, forms in saved:
        schemes._factories, schemes._forms = factories, forms


class Backend:
    """A third-party backend: one journal and one snapshot store per URL, remembered."""

    def __init__(self) -> None:
        self.journals: dict[str, InMemoryJournal] = {}
        self.stores: dict[str, InMemorySnapshotStore] = {}

    def journal(self, url: str) -> Journal:
        if not url.startswith("memo://"):
            raise PersistenceConfigError(f"bad journal URL {url!r}: write memo://NAME")
        return self.journals.setdefault(url, InMemoryJournal())

    def store(self, url: str) -> SnapshotStore:
        return self.stores.setdefault(url, InMemorySnapshotStore())


@pytest.fixture
def memo(registry: None) -> Backend:
    backend = Backend()
    persistence.register_journal_scheme("memo", backend.journal, form="'memo://NAME'")
    persistence.register_snapshot_store_scheme("memo", backend.store, form="'memo://NAME'")
    return backend


async def test_a_registered_scheme_resolves_everywhere_a_url_is_accepted(
    memo: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = persistence.open_journal("memo://bank")
    assert journal is memo.journals["memo://bank"]
    assert persistence.open_snapshot_store("memo://bank") is memo.stores["memo://bank"]

    extension = persistence.Persistence("memo://bank", "memo://bank")
    assert extension.journal is journal
    assert extension.snapshot_store is memo.stores["memo://bank"]

    await journal.write([AtomicWrite([PersistentRecord("acc-1", 1, "M", b"\x01", "w", 5)])])
    assert await asyncio.to_thread(cli_main, ["ids", "memo://bank"]) == 0
    assert capsys.readouterr().out == "acc-1\n"


async def test_the_example_shell_runs_on_a_registered_scheme(memo: Backend) -> None:
    async with open_shell("memo://clients", "memo://clients") as shell:
        assert shell.journal is memo.journals["memo://clients"]
        await shell.execute("register c-1 Ann")
        assert "Ann" in await shell.execute("show c-1")


def test_an_unsupported_url_lists_the_registered_forms_after_the_built_in_ones(
    memo: Backend,
) -> None:
    with pytest.raises(PersistenceConfigError) as raised:
        persistence.open_journal("mongodb://x")
    assert str(raised.value) == (
        "unsupported journal URL 'mongodb://x': use 'memory:', 'sqlite:PATH' (e.g. "
        "'sqlite:data/bank.db', optionally '?synchronous=full|normal|off'), 'file:DIR' (e.g. "
        "'file:data/journal', optionally '?fsync=always|batch|never'), "
        "'postgresql://USER@HOST:PORT/DB' (or 'postgres://...') or 'memo://NAME'"
    )
    with pytest.raises(PersistenceConfigError) as raised:
        persistence.Persistence("memory:", "mongodb://x")
    assert str(raised.value).endswith(
        "'postgresql://USER@HOST:PORT/DB' (or 'postgres://...') or 'memo://NAME'"
    )


def test_a_factory_says_what_is_wrong_with_its_own_urls(memo: Backend) -> None:
    with pytest.raises(PersistenceConfigError) as raised:
        persistence.Persistence("memo:bank")
    assert str(raised.value) == "bad journal URL 'memo:bank': write memo://NAME"


def test_python_m_persistence_verify_refuses_a_registered_scheme_it_cannot_check(
    memo: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["verify", "memo://bank"]) == 2
    assert capsys.readouterr().err == (
        "error: verify checks file: and sqlite: journals only, not memo: ('memo://bank'); check "
        "it with its backend's own tools\n"
    )


def test_a_scheme_is_registered_once_unless_replaced(memo: Backend) -> None:
    with pytest.raises(PersistenceConfigError) as raised:
        persistence.register_journal_scheme("memo", InMemoryJournal, form="'memo:'")
    assert str(raised.value) == (
        "journal URL scheme 'memo' is already registered (as 'memo://NAME'); pass replace=True "
        "to replace it"
    )

    persistence.register_journal_scheme(
        "sqlite", lambda url: InMemoryJournal(), form="'sqlite:'", replace=True
    )
    assert isinstance(persistence.open_journal("sqlite:x.db"), InMemoryJournal)


@pytest.mark.parametrize("scheme", ["Postgres", "postgres:", "", "1db", "pg sql"])
def test_a_scheme_that_no_url_could_name_is_refused(registry: None, scheme: str) -> None:
    with pytest.raises(PersistenceConfigError) as raised:
        persistence.register_snapshot_store_scheme(scheme, InMemorySnapshotStore, form="'x:'")
    assert str(raised.value) == (
        f"cannot register snapshot store URL scheme {scheme!r}: a scheme is a lower-case letter "
        "followed by lower-case letters, digits, '+', '-' or '.', without the colon "
        "(e.g. 'postgresql')"
    )


def test_a_scheme_needs_a_factory_and_a_form(registry: None) -> None:
    with pytest.raises(PersistenceConfigError) as raised:
        persistence.register_journal_scheme("pg", "not a factory", form="'pg:'")  # type: ignore[arg-type]
    assert str(raised.value) == (
        "cannot register journal URL scheme 'pg': the factory 'not a factory' is not callable; "
        "pass a function that takes the URL and returns the store"
    )
    with pytest.raises(PersistenceConfigError) as raised:
        persistence.register_journal_scheme("pg", InMemoryJournal, form="")
    assert str(raised.value) == (
        "cannot register journal URL scheme 'pg': give the form error messages list, "
        "e.g. form=\"'pg:...'\""
    )
