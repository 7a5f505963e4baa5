"""Local mode: every shard lives on this node (no cluster configured)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actorsys import ActorRef
from cluster._errors import ShardingConfigError
from cluster._placement import LOCAL_NODE, GetShardStats, ShardStats, ShardUnavailableError


class LocalPlacement:
    """The placement of a process without a cluster: every shard's home is this node, leases
    are a set of held shards, and epochs are None (nothing else can write)."""

    __slots__ = ("_held", "_regions")

    def __init__(self) -> None:
        self._regions: dict[str, ActorRef] = {}
        self._held: set[tuple[str, str]] = set()

    @property
    def node(self) -> str:
        return LOCAL_NODE

    def register_region(self, type_name: str, region: ActorRef, *, role: str | None = None) -> None:
        self._regions[type_name] = region

    def unregister_region(self, type_name: str) -> None:
        self._regions.pop(type_name, None)

    def cached_home(self, type_name: str, shard_id: str) -> str | None:
        return LOCAL_NODE

    async def home_of(self, type_name: str, shard_id: str) -> str:
        return LOCAL_NODE

    async def acquire(
        self, type_name: str, shard_id: str, on_lost: Callable[[], None]
    ) -> int | None:
        key = (type_name, shard_id)
        if key in self._held:
            raise ShardUnavailableError(
                f"shard {shard_id!r} of {type_name!r} is already held on this node"
            )
        self._held.add(key)
        return None

    async def release(self, type_name: str, shard_id: str) -> None:
        self._held.discard((type_name, shard_id))

    def send(self, node: str, type_name: str, message: Any, sender: ActorRef | None) -> None:
        region = self._regions.get(type_name)
        if node != LOCAL_NODE or region is None:
            raise ShardingConfigError(
                f"cannot send to node {node!r}, type_name={type_name!r}: this process runs "
                "without a cluster (every shard is local); configure a Cluster extension"
            )
        region.tell(message, sender)

    async def cluster_stats(
        self,
        type_name: str,
        timeout: float,  # noqa: ASYNC109 - the ask timeout, by the system's clock
    ) -> dict[str, dict[str, int]]:
        region = self._regions.get(type_name)
        if region is None:
            return {}
        stats: ShardStats = await region.ask(GetShardStats(), timeout)
        return {stats.node: stats.shards}

    def __repr__(self) -> str:
        return "LocalPlacement()"
