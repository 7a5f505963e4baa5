"""A graceful leave loses no message: what reaches the leaving node is forwarded to the new home
and answered from there, even once the leaving node is gone, and the node leaves only once every
member routes to the new home (several nodes in the test process)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from actorsys import Actor, ActorRef, ActorSystem, runtime
from cluster import (
    Cluster,
    ClusterSharding,
    ShardingEnvelope,
    ShardingSettings,
    default_shard_id,
)
from tests.cluster._nodes import hosts, placement, serializer
from tests.cluster._procs import one_id_per_shard
from tests.cluster._support import FAST, eventually

SHARDS = 6
ROLE = "holder"
ENTITIES = one_id_per_shard(SHARDS)


@serializer.type("test.Hold")
@dataclass(frozen=True)
class Hold:
    """Keep the asker: the answer comes on :class:`Release`."""


@serializer.type("test.Release")
@dataclass(frozen=True)
class Release:
    pass


@serializer.type("test.Where")
@dataclass(frozen=True)
class Where:
    """Answered at once with :class:`Held`."""


@serializer.type("test.Held")
@dataclass(frozen=True)
class Held:
    entity_id: str
    node: str


HELD: dict[str, ActorRef] = {}
"""The askers the holders keep, by entity id."""


class Holder(Actor):
    """Answers a :class:`Hold` only when released (and :class:`Where` at once); the answer names
    the node it runs on."""

    def __init__(self, entity_id: str, node: str) -> None:
        super().__init__()
        self.entity_id = entity_id
        self.node = node

    def receive(self, message: Any) -> None:
        if isinstance(message, Hold):
            HELD[self.entity_id] = self.context.sender
        elif isinstance(message, Release):
            HELD.pop(self.entity_id).tell(Held(self.entity_id, self.node))
        elif isinstance(message, Where):
            self.context.sender.tell(Held(self.entity_id, self.node))
        else:
            self.unhandled(message)


async def start(url: str, name: str, node: str, *, host: bool = True) -> ActorSystem:
    """A node of ``Holder``s (without ``host``: a node that only routes them)."""
    cluster = Cluster(
        url,
        node=node,
        name=name,
        roles=(ROLE,) if host else (),
        settings=FAST,
        serializer=serializer,
    )
    system = await ActorSystem(node, extensions=[cluster]).start()
    ClusterSharding(system).start(
        "Holder",
        lambda entity_id: Holder(entity_id, node),
        settings=ShardingSettings(number_of_shards=SHARDS, passivate_idle_after=None, role=ROLE),
    )
    return system


async def three_nodes(url: str, name: str) -> tuple[ActorSystem, ActorSystem, ActorSystem]:
    """``n1`` routes, ``n2`` and ``n3`` host; every shard has a home."""
    one = await start(url, name, "n1", host=False)
    two = await start(url, name, "n2")
    three = await start(url, name, "n3")
    every = {"n1": (), "n2": ("Holder",), "n3": ("Holder",)}
    await eventually(lambda: all(hosts(node) == every for node in (one, two, three)))
    for entity_id in ENTITIES:
        await ClusterSharding(one).entity_ref("Holder", entity_id).ask(Where())
    return one, two, three


async def shutdown(*systems: ActorSystem) -> None:
    """One after the other (nodes that all leave at once wait for each other's hand-offs)."""
    for system in systems:
        await system.shutdown()


def entity_on(system: ActorSystem, node: str) -> str:
    homes = system.extension(Cluster).shard_homes()
    for entity_id in ENTITIES:
        if homes.get(("Holder", default_shard_id(entity_id, SHARDS))) == node:
            return entity_id
    raise AssertionError(f"no entity lives on {node}")


async def test_a_reply_to_an_ask_a_leaving_node_forwarded_reaches_the_asker_once_it_is_gone(
    nats_url: str, cluster_name: str
) -> None:
    HELD.clear()
    one, two, three = await three_nodes(nats_url, cluster_name)
    try:
        entity_id = entity_on(one, "n2")
        await two.extension(Cluster).leave()  # the shard moves to n3; n2 still runs
        # n1 sends to n2 as a node that has not seen the move yet; n2 forwards to n3
        asker, answer = runtime.new_promise(ClusterSharding(one).region("Holder"), 10.0)
        placement(one).send("n2", "Holder", ShardingEnvelope(entity_id, Hold()), asker)
        await eventually(lambda: entity_id in HELD)
        await two.shutdown()
        ClusterSharding(one).entity_ref("Holder", entity_id).tell(Release())
        assert await answer == Held(entity_id, "n3")
    finally:
        await shutdown(two, three, one)


async def test_a_leaving_node_stays_until_every_member_routes_its_shards_to_their_new_homes(
    nats_url: str, cluster_name: str
) -> None:
    HELD.clear()
    one, two, three = await three_nodes(nats_url, cluster_name)
    try:
        entity_id = entity_on(one, "n2")
        shard = ("Holder", default_shard_id(entity_id, SHARDS))
        # n1 lags: it stops watching the homes, and keeps routing the shard to n2
        lagging = placement(one)
        watching = lagging._homes_watch
        assert watching is not None
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        lagging._tasks.remove(watching)
        leaving = asyncio.create_task(two.shutdown())
        await eventually(lambda: three.extension(Cluster).shard_homes().get(shard) == "n3")
        # n2 is gone, or it waits for n1 to learn the new home (n1 waits for its watch)
        await eventually(lambda: leaving.done() or bool(lagging._home_waiters))
        held = ClusterSharding(one).entity_ref("Holder", entity_id).ask(Hold(), timeout=10.0)
        await eventually(lambda: entity_id in HELD)
        assert not leaving.done()
        await lagging._watch_homes()  # n1 catches up: n2 leaves
        await leaving
        ClusterSharding(one).entity_ref("Holder", entity_id).tell(Release())
        assert await held == Held(entity_id, "n3")
    finally:
        await shutdown(two, three, one)
