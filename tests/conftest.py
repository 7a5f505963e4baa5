"""Shared test set-up: every async test runs twice, on the default asyncio loop and on uvloop;
structlog output is captured; a manual clock; probes and dead letters for tests that define a
``system``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import pytest
import uvloop
from structlog.testing import capture_logs

from actorsys import ActorSystem, DeadLetter
from actorsys.testing import ManualClock, TestProbe


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so: ``ActorSystem(clock=clock)``, then
    ``await clock.advance(seconds)`` fires the timers, receive and ask timeouts due by then."""
    return ManualClock()


@pytest.fixture
def probe(system: ActorSystem) -> TestProbe:
    """A probe named ``probe`` in the test's system (observer and sender of commands)."""
    return TestProbe(system, "probe")


@pytest.fixture
def dead_letters(system: ActorSystem) -> list[DeadLetter]:
    """Every dead letter the test's system publishes, in order."""
    letters: list[DeadLetter] = []
    system.event_stream.subscribe(letters.append, DeadLetter)
    return letters


@pytest.fixture(autouse=True)
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """The structlog events emitted during the test (captured, not rendered: rendering the
    tracebacks of the failures tests provoke on purpose is slow)."""
    with capture_logs() as entries:
        yield entries
