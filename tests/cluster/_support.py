"""Helpers for the cluster tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cluster._cluster import ClusterSettings

FAST = ClusterSettings(
    heartbeat_interval=0.3,
    heartbeat_ttl=1,
    lease_ttl=2,
    lease_renew_interval=0.3,
    lease_margin=0.8,
    coordinator_ttl=1,
    rebalance_interval=0.3,
)
"""Short TTLs: failover in a test takes about two seconds."""


async def eventually(condition: Callable[[], bool], within: float = 15.0) -> None:
    """Wait (polling the real clock) until ``condition()`` holds; fail after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "the condition never held"
        await asyncio.sleep(0.02)
