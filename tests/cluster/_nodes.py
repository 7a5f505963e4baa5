"""Cluster nodes in the test process: an ActorSystem with a Cluster and a sharded counter."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

from actorsys import Actor, ActorSystem
from cluster import Cluster, ClusterSettings, ClusterSharding, ShardingSettings
from cluster._distributed import NatsPlacement
from persistence.serialization import Serializer
from tests.cluster._support import FAST

serializer = Serializer()

DELIVERED: collections.Counter[str] = collections.Counter()
"""The amounts every counter entity received, all incarnations and nodes together."""


@serializer.type("test.Add")
@dataclass(frozen=True)
class Add:
    amount: int


@serializer.type("test.Get")
@dataclass(frozen=True)
class Get:
    pass


@serializer.type("test.Fail")
@dataclass(frozen=True)
class Fail:
    pass


@serializer.type("test.Total")
@dataclass(frozen=True)
class Total:
    entity_id: str
    node: str
    total: int


@dataclass(frozen=True)
class Unregistered:
    pass


class Counter(Actor):
    """Adds amounts; answers Get with its total and the node it runs on; Fail raises."""

    def __init__(self, entity_id: str, node: str) -> None:
        super().__init__()
        self.entity_id = entity_id
        self.node = node
        self.total = 0

    def receive(self, message: Any) -> None:
        if isinstance(message, Add):
            self.total += message.amount
            DELIVERED[self.entity_id] += message.amount
        elif isinstance(message, Get):
            self.context.sender.tell(Total(self.entity_id, self.node, self.total))
        elif isinstance(message, Fail):
            raise ValueError(f"counter {self.entity_id} cannot do that")
        else:
            self.unhandled(message)


SHARDS = 6


async def start_node(
    url: str, name: str, node: str, settings: ClusterSettings = FAST, *, shards: int = SHARDS
) -> ActorSystem:
    """A started node hosting the sharded type ``Counter``."""
    system = await ActorSystem(
        node,
        extensions=[Cluster(url, node=node, name=name, settings=settings, serializer=serializer)],
    ).start()
    ClusterSharding(system).start(
        "Counter",
        lambda entity_id: Counter(entity_id, node),
        settings=ShardingSettings(number_of_shards=shards, passivate_idle_after=None),
    )
    return system


def placement(system: ActorSystem) -> NatsPlacement:
    return system.extension(Cluster).placement


def hosts(system: ActorSystem) -> dict[str, tuple[str, ...]]:
    """The types each member hosts, as this node sees them."""
    return {m.node: m.types for m in system.extension(Cluster).members()}


async def crash(system: ActorSystem) -> None:
    """The node stops dead: no hand-off, no lease release, no leave (as after SIGKILL)."""
    node = placement(system)
    node._left = True
    await node._abandon()
    for task in node.membership._tasks:
        task.cancel()
    node.membership._tasks.clear()
    await system.shutdown()
