"""The NATS server the tests of this folder share (stopped by its pid), and a fresh bucket and
subject prefix per test so that tests never see each other's keys."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from cluster.testing import NatsServer

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
