"""Fixtures for the actor-core tests: a running system on the test's manual clock (the clock,
probes and logs: tests/conftest.py).

No actor-core test waits for real time: timers, receive timeouts, ask timeouts, backoff and
restart windows move only when a test advances ``clock``, so a loaded machine cannot change
what a test sees.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from actorsys import ActorSystem
from actorsys.testing import ManualClock


@pytest.fixture
async def system(clock: ManualClock) -> AsyncIterator[ActorSystem]:
    """A started actor system on ``clock``, shut down after the test."""
    async with ActorSystem("test", clock=clock) as system:
        yield system
