"""What the PostgreSQL journal adds to the conformance suite: text PostgreSQL cannot store, the
optional dependency, the schema it creates."""

from __future__ import annotations

import subprocess
import sys

import asyncpg
import pytest

from persistence import JournalError
from persistence.journal import AtomicWrite, PersistentRecord, PostgresJournal
from persistence.testing._journal_suite import atomic, collect, seqs


async def test_a_write_holding_a_nul_character_is_rejected_alone_naming_the_field(
    postgres_dsn: str, pg_schema: str
) -> None:
    journal = PostgresJournal(postgres_dsn, schema=pg_schema)
    try:
        nul = AtomicWrite([PersistentRecord("a", 1, "Man\x00ifest", b"")])
        results = await journal.write([atomic("b", 1), nul, atomic("b", 2)])
        assert results[0] is None
        assert results[2] is None
        assert type(results[1]) is JournalError
        assert str(results[1]) == (
            "invalid atomic write, persistence_id='a', sequence_nr=1: the manifest "
            "'Man\\x00ifest' holds a NUL character, which PostgreSQL cannot store"
        )
        assert seqs(await collect(journal.replay("b"))) == [1, 2]
        assert await collect(journal.replay("a\x00")) == []
        assert await journal.highest_sequence_nr("a") == 0
    finally:
        await journal.close()


async def test_the_schema_is_created_on_first_use_with_its_version_and_reused_after(
    postgres_dsn: str, pg_schema: str
) -> None:
    for _ in range(2):
        journal = PostgresJournal(postgres_dsn, schema=pg_schema)
        try:
            assert await journal.highest_ordering() == 0
        finally:
            await journal.close()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        versions = await conn.fetch(f"SELECT version FROM {pg_schema}.schema_version")
        assert [row["version"] for row in versions] == [1]
    finally:
        await conn.close()


def test_persistence_journal_imports_without_asyncpg_and_postgres_journal_says_so() -> None:
    script = (
        "import sys\n"
        "sys.modules['asyncpg'] = None\n"
        "import persistence.journal\n"
        "try:\n"
        "    persistence.journal.PostgresJournal\n"
        "except ImportError:\n"
        "    print('needs asyncpg')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout == "needs asyncpg\n"


async def test_tables_of_a_newer_schema_version_are_refused_saying_to_upgrade(
    postgres_dsn: str, pg_schema: str
) -> None:
    journal = PostgresJournal(postgres_dsn, schema=pg_schema)
    await journal.highest_ordering()
    await journal.close()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(f"UPDATE {pg_schema}.schema_version SET version = 2")
    finally:
        await conn.close()
    again = PostgresJournal(postgres_dsn, schema=pg_schema)
    try:
        with pytest.raises(JournalError) as raised:
            await again.highest_ordering()
        port = postgres_dsn.rsplit(":", 1)[1].split("/", maxsplit=1)[0]
        assert str(raised.value) == (
            f"cannot open the postgresql journal at 127.0.0.1:{port}/postgres: schema "
            f"{pg_schema!r} has version 2, written by a newer version of this library (this one "
            "knows version 1); upgrade the library"
        )
    finally:
        await again.close()
