"""The PostgreSQL journal passes the journal conformance suite against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import pytest
import pytest_asyncio

from persistence.journal import Journal, PostgresJournal
from persistence.testing import JournalConformance
from persistence.testing._journal_suite import Reopen


class TestPostgresJournal(JournalConformance):
    @pytest_asyncio.fixture
    async def journal(self, postgres_dsn: str, pg_schema: str) -> AsyncIterator[Journal]:
        journal = PostgresJournal(postgres_dsn, schema=pg_schema)
        try:
            yield journal
        finally:
            await journal.close()

    @pytest.fixture
    def reopen(self, postgres_dsn: str, pg_schema: str) -> Reopen:
        return partial(PostgresJournal, postgres_dsn, schema=pg_schema)


class TestPostgresJournalWithSmallPages(JournalConformance):
    """Pages of 3 events: every multi-page path is taken."""

    @pytest_asyncio.fixture
    async def journal(self, postgres_dsn: str, pg_schema: str) -> AsyncIterator[Journal]:
        journal = PostgresJournal(postgres_dsn, schema=pg_schema, page_size=3)
        try:
            yield journal
        finally:
            await journal.close()

    @pytest.fixture
    def reopen(self, postgres_dsn: str, pg_schema: str) -> Reopen:
        return partial(PostgresJournal, postgres_dsn, schema=pg_schema, page_size=3)
