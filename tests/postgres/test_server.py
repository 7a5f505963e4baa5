"""The test server fixture itself: PostgreSQL runs, as a separate user when we are root."""

from __future__ import annotations

import asyncpg

from persistence.testing._postgres_server import PostgresServer


async def test_the_session_server_accepts_connections_and_runs_postgresql_15_or_newer(
    postgres_server: PostgresServer,
) -> None:
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        version = await conn.fetchval("SHOW server_version_num")
        assert int(version) >= 150000
        assert await conn.fetchval("SHOW synchronous_commit") == "off"
    finally:
        await conn.close()
    assert postgres_server.process is not None
    assert postgres_server.process.poll() is None
