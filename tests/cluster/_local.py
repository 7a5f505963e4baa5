"""Entities and a scripted placement shared by the local-mode sharding tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actorsys import Actor, ActorRef
from cluster import Passivate
from cluster._placement import GetShardStats, ShardStats, ShardUnavailableError


@dataclass(frozen=True)
class Started:
    entity_id: str


@dataclass(frozen=True)
class Stopped:
    entity_id: str
    received: tuple[Any, ...]


@dataclass(frozen=True)
class Get:
    """Ask an entity what it received (in this incarnation)."""


@dataclass(frozen=True)
class Got:
    entity_id: str
    received: tuple[Any, ...]


class Recorder(Actor):
    """Keeps what it receives; reports its start and stop to ``observer``.

    ``Get()`` replies :class:`Got`; ``"passivate"`` passivates it (and replies ``"passivating"``
    to an asker); ``"stop"`` stops it by itself; ``"fail"`` raises.
    """

    def __init__(self, entity_id: str, observer: ActorRef) -> None:
        super().__init__()
        self.entity_id = entity_id
        self.observer = observer
        self.received: list[Any] = []

    def pre_start(self) -> None:
        self.observer.tell(Started(self.entity_id))

    def post_stop(self) -> None:
        self.observer.tell(Stopped(self.entity_id, tuple(self.received)))

    def receive(self, message: Any) -> None:
        context = self.context
        if isinstance(message, Get):
            context.sender.tell(Got(self.entity_id, tuple(self.received)))
        elif message == "passivate":
            context.parent.tell(Passivate(), context.self)
            context.sender.tell("passivating")
        elif message == "stop":
            context.stop(context.self)
        elif message == "fail":
            raise RuntimeError(f"{self.entity_id} failed on purpose")
        else:
            self.received.append(message)


def recorders(observer: ActorRef) -> Callable[[str], Recorder]:
    """The entity factory of :class:`Recorder` entities reporting to ``observer``."""
    return lambda entity_id: Recorder(entity_id, observer)


@dataclass
class ScriptedPlacement:
    """A placement a test drives: homes it sets, epochs counting up, and every call recorded."""

    node: str = "n1"
    homes: dict[str, str] = field(default_factory=dict)
    """shard id -> node; a shard missing here is at home on this node."""
    unavailable: set[str] = field(default_factory=set)
    """Shards whose ``acquire`` raises ShardUnavailableError."""
    home_errors: dict[str, Exception] = field(default_factory=dict)
    epoch: int = 0
    acquired: list[tuple[str, int]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    sent: list[tuple[str, str, Any, ActorRef | None]] = field(default_factory=list)
    lost: dict[str, Callable[[], None]] = field(default_factory=dict)
    regions: dict[str, ActorRef] = field(default_factory=dict)

    def register_region(self, type_name: str, region: ActorRef, *, role: str | None = None) -> None:
        self.regions[type_name] = region

    def unregister_region(self, type_name: str) -> None:
        self.regions.pop(type_name, None)

    def cached_home(self, type_name: str, shard_id: str) -> str | None:
        return None

    async def home_of(self, type_name: str, shard_id: str) -> str:
        await asyncio.sleep(0)
        if shard_id in self.home_errors:
            raise self.home_errors[shard_id]
        return self.homes.get(shard_id, self.node)

    async def acquire(
        self, type_name: str, shard_id: str, on_lost: Callable[[], None]
    ) -> int | None:
        await asyncio.sleep(0)
        if shard_id in self.unavailable:
            raise ShardUnavailableError(f"shard {shard_id} is held by another node")
        self.epoch += 1
        self.acquired.append((shard_id, self.epoch))
        self.lost[shard_id] = on_lost
        return self.epoch

    async def release(self, type_name: str, shard_id: str) -> None:
        await asyncio.sleep(0)
        self.released.append(shard_id)

    def send(self, node: str, type_name: str, message: Any, sender: ActorRef | None) -> None:
        self.sent.append((node, type_name, message, sender))

    async def cluster_stats(
        self,
        type_name: str,
        timeout: float,  # noqa: ASYNC109 - the protocol's signature
    ) -> dict[str, dict[str, int]]:
        stats: ShardStats = await self.regions[type_name].ask(GetShardStats(), timeout)
        return {stats.node: stats.shards}
