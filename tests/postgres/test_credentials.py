"""Opening the PostgreSQL stores by DSN or URL; passwords as libpq users give them, and never
printed (errors and repr name host, port and database only)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from persistence import JournalError, SnapshotStoreError
from persistence.journal import PostgresJournal
from persistence.snapshot import PostgresSnapshotStore, SnapshotSelectionCriteria
from persistence.testing._postgres_server import PASSWORD_USER, PostgresServer, free_port

PASSWORD = "s3cr3t-Pa55"


@pytest.fixture
async def password_role(postgres_server: PostgresServer) -> PostgresServer:
    """The server, with PASSWORD_USER's password set to PASSWORD."""
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", PASSWORD_USER)
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(f"{verb} ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    finally:
        await conn.close()
    return postgres_server


def dsn(server: PostgresServer, password: str | None = None, scheme: str = "postgresql") -> str:
    auth = PASSWORD_USER if password is None else f"{PASSWORD_USER}:{password}"
    return f"{scheme}://{auth}@127.0.0.1:{server.port}/postgres"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_from_url_opens_the_journal_and_store_of_both_url_schemes(
    password_role: PostgresServer, pg_schema: str, scheme: str
) -> None:
    url = dsn(password_role, PASSWORD, scheme)
    journal = PostgresJournal.from_url(url, schema=pg_schema)
    store = PostgresSnapshotStore.from_url(url, schema=pg_schema)
    try:
        assert await journal.highest_sequence_nr("a") == 0
        assert await store.load("a", SnapshotSelectionCriteria.latest()) is None
        assert PASSWORD not in repr(journal)
        assert repr(journal) == (
            f"<PostgresJournal 127.0.0.1:{password_role.port}/postgres schema={pg_schema!r} open>"
        )
        assert PASSWORD not in repr(store)
    finally:
        await journal.close()
        await store.close()


def test_from_url_refuses_other_schemes_without_printing_the_password() -> None:
    with pytest.raises(ValueError, match="PostgreSQL URL") as raised:
        PostgresJournal.from_url(f"mysql://u:{PASSWORD}@h/db")
    assert str(raised.value) == (
        "not a PostgreSQL URL for a journal: 'mysql://u:***@h/db'; write "
        "postgresql://USER@HOST:PORT/DATABASE (or postgres://...)"
    )


async def test_the_password_may_come_from_pgpassword(
    password_role: PostgresServer, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    journal = PostgresJournal(dsn(password_role), schema=pg_schema)
    try:
        assert await journal.highest_ordering() == 0
    finally:
        await journal.close()


async def test_the_password_may_come_from_the_libpq_password_file(
    password_role: PostgresServer,
    pg_schema: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{password_role.port}:postgres:{PASSWORD_USER}:{PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    store = PostgresSnapshotStore(dsn(password_role), schema=pg_schema)
    try:
        assert await store.load("a", SnapshotSelectionCriteria.latest()) is None
    finally:
        await store.close()


async def test_a_wrong_password_fails_naming_host_port_and_database_never_the_password(
    password_role: PostgresServer, pg_schema: str
) -> None:
    wrong = "wr0ng-Pa55"
    journal = PostgresJournal(dsn(password_role, wrong), schema=pg_schema)
    try:
        assert await journal.write([]) == []  # nothing to write: nothing opened
        with pytest.raises(JournalError) as raised:
            await journal.highest_sequence_nr("a")
        message = str(raised.value)
        assert message == (
            f"cannot read the highest sequence number: postgresql journal at "
            f"127.0.0.1:{password_role.port}/postgres (schema {pg_schema!r}) failed: "
            f'InvalidPasswordError: password authentication failed for user "{PASSWORD_USER}"'
        )
        assert wrong not in message
        assert wrong not in repr(journal)
    finally:
        await journal.close()


async def test_an_unreachable_server_fails_the_store_call_naming_where_it_was_sought(
    pg_schema: str,
) -> None:
    port = free_port()
    store = PostgresSnapshotStore(
        f"postgresql://someone:{PASSWORD}@127.0.0.1:{port}/bank?password={PASSWORD}",
        schema=pg_schema,
    )
    try:
        with pytest.raises(SnapshotStoreError) as raised:
            await store.load("a", SnapshotSelectionCriteria.latest())
        message = str(raised.value)
        assert message.startswith(
            f"cannot load a snapshot: postgresql snapshot store at 127.0.0.1:{port}/bank "
            f"(schema {pg_schema!r}) failed: "
        )
        assert PASSWORD not in message
    finally:
        await store.close()
