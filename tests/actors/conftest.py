"""Fixtures for the actor-core tests: a running system (probes and logs: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from actorsys import ActorSystem


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    """A started actor system, shut down after the test."""
    async with ActorSystem("test") as system:
        yield system
