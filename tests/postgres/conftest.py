"""The PostgreSQL server the tests of this folder share, and a fresh schema per test.

One server per session (``synchronous_commit=off``, ``fsync=off``: fast, and still what a killed
client process sees); durability tests start their own with ``synchronous_commit=on``. If
PostgreSQL is not installed, the fixture fails saying to install the Debian package: nothing is
skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from persistence.testing._postgres_server import PostgresServer, remove, start_server

_schemas = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL 15 on 127.0.0.1 and a free port, stopped by its pid at the end."""
    try:
        server = start_server()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        remove(server)


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """The DSN of the shared server (database ``postgres``, trust authentication)."""
    return postgres_server.dsn


@pytest.fixture
def pg_schema() -> str:
    """A schema name no other test uses (the journal creates it on first use)."""
    return f"t{next(_schemas)}"
