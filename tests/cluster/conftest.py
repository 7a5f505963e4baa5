"""The NATS server the tests of this folder share (stopped by its pid), and a fresh bucket and
subject prefix per test so that tests never see each other's keys; for the multi-node tests, the
PostgreSQL server of ``tests/postgres`` (the same session fixture, a fresh schema per test) and
the ``nodes`` of a test (child processes, stopped at its end)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.testing import NatsServer
from tests.cluster._procs import Nodes
from tests.postgres.conftest import pg_schema, postgres_dsn, postgres_server

__all__ = ["pg_schema", "postgres_dsn", "postgres_server"]  # fixtures shared with tests/postgres

_names = itertools.count(1)


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """A running ``nats-server -js`` on 127.0.0.1 and free ports, for the whole session."""
    try:
        server = NatsServer.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
def cluster_name() -> str:
    """A cluster name no other test uses (it prefixes subjects and KV buckets)."""
    return f"t{next(_names)}"


@pytest.fixture
def nodes(
    nats_url: str, cluster_name: str, postgres_dsn: str, pg_schema: str, tmp_path: Path
) -> Iterator[Nodes]:
    """Node processes of one cluster (short TTLs) on a fresh journal schema; each node still
    running at the end leaves (or is killed after a while). Their stderr is in ``tmp_path``."""
    group = Nodes(nats_url, cluster_name, postgres_dsn, pg_schema, tmp_path)
    try:
        yield group
    finally:
        group.stop_all()
