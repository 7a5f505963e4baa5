"""Shards move: a node that dies (its leases expire), a node that leaves gracefully (hand-off),
a node that joins (rebalancing)."""

from __future__ import annotations

import asyncio

from actorsys import ActorSystem
from cluster import Cluster, ClusterSharding, default_shard_id
from tests.cluster._nodes import (
    DELIVERED,
    SHARDS,
    Add,
    Get,
    Total,
    crash,
    hosts,
    start_node,
)
from tests.cluster._support import eventually
from tests.cluster.test_distributed_routing import entity_on, touch_every_shard, two_nodes


async def ask_until_answered(system: ActorSystem, entity_id: str) -> Total:
    """Ask until the entity answers (its shard may be moving); the asks that time out meanwhile
    are the failover time."""
    entity = ClusterSharding(system).entity_ref("Counter", entity_id)
    for _ in range(40):
        try:
            total: Total = await entity.ask(Get(), timeout=0.5)
        except Exception:
            continue
        return total
    raise AssertionError(f"{entity_id} never answered")


async def test_the_shards_of_a_node_that_died_are_served_by_the_others_once_its_leases_expire(
    nats_url: str, cluster_name: str
) -> None:
    one, two = await two_nodes(nats_url, cluster_name)
    try:
        await touch_every_shard(one)
        orphan = entity_on(one, "n2")
        await crash(two)
        total = await ask_until_answered(one, orphan)
        assert total == Total(orphan, "n1", 0)
        stats = await ClusterSharding(one).cluster_stats("Counter")
        await eventually(lambda: set(one.extension(Cluster).shard_homes().values()) == {"n1"})
        assert set(stats.shards_per_node) == {"n1"}
    finally:
        await one.shutdown()


async def test_a_node_leaving_gracefully_hands_its_shards_off_without_losing_a_message(
    nats_url: str, cluster_name: str
) -> None:
    DELIVERED.clear()
    one, two = await two_nodes(nats_url, cluster_name)
    try:
        seen = await touch_every_shard(one)
        assert set(seen.values()) == {"n1", "n2"}
        leaving = asyncio.ensure_future(two.shutdown())
        entities = [ClusterSharding(one).entity_ref("Counter", e) for e in seen]
        sent = 0
        while not leaving.done() or sent < 20:  # tells sent before, during and after the leave
            for entity in entities:
                entity.tell(Add(1))
            sent += 1
            await asyncio.sleep(0.005)
        await leaving
        assert set(one.extension(Cluster).shard_homes().values()) == {"n1"}
        for entity_id in seen:
            total = await ClusterSharding(one).entity_ref("Counter", entity_id).ask(Get())
            assert total.node == "n1"
        assert dict.fromkeys(seen, sent) == DELIVERED
    finally:
        await one.shutdown()


async def test_shards_are_rebalanced_onto_a_node_that_joins(
    nats_url: str, cluster_name: str
) -> None:
    one = await start_node(nats_url, cluster_name, "n1", shards=SHARDS)
    two: ActorSystem | None = None
    three: ActorSystem | None = None
    try:
        seen = await touch_every_shard(one)
        assert set(seen.values()) == {"n1"}
        two = await start_node(nats_url, cluster_name, "n2")
        three = await start_node(nats_url, cluster_name, "n3")

        def balanced() -> bool:
            homes = list(one.extension(Cluster).shard_homes().values())
            return {n: homes.count(n) for n in set(homes)} == {"n1": 2, "n2": 2, "n3": 2}

        await eventually(balanced)
        assert hosts(one) == dict.fromkeys(("n1", "n2", "n3"), ("Counter",))
        homes = one.extension(Cluster).shard_homes()
        for entity_id in seen:
            total = await ask_until_answered(one, entity_id)
            assert total.node == homes[("Counter", default_shard_id(entity_id, SHARDS))]
    finally:
        for system in (three, two, one):
            if system is not None:
                await system.shutdown()
