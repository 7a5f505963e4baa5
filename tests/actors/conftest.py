"""Fixtures for the actor-core tests: a running system, its dead letters, captured logs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from actorsys import ActorSystem, DeadLetter
from actorsys.testing import TestProbe


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    """A started actor system, shut down after the test."""
    async with ActorSystem("test") as system:
        yield system


@pytest.fixture
def probe(system: ActorSystem) -> TestProbe:
    """A probe named ``probe`` in the test's system."""
    return TestProbe(system, "probe")


@pytest.fixture
def dead_letters(system: ActorSystem) -> list[DeadLetter]:
    """Every dead letter the test's system publishes, in order."""
    letters: list[DeadLetter] = []
    system.event_stream.subscribe(letters.append, DeadLetter)
    return letters


@pytest.fixture(autouse=True)
def logs() -> Iterator[list[dict[str, Any]]]:
    """The structlog events emitted during the test (captured, not rendered: failures log
    tracebacks, and rendering them would dominate the run time)."""
    with capture_logs() as entries:
        yield cast(list[dict[str, Any]], entries)
