"""Sharding across nodes on NATS (several nodes in the test process): allocation, routing, asks
and replies across nodes, errors that cross nodes."""

from __future__ import annotations

import pytest

from actorsys import ActorSystem
from actorsys.testing import TestProbe
from cluster import Cluster, ClusterSharding, RemoteError, default_shard_id
from persistence import SerializationError
from tests.cluster._nodes import (
    SHARDS,
    Add,
    Fail,
    Get,
    Total,
    Unregistered,
    hosts,
    start_node,
)
from tests.cluster._support import eventually


async def two_nodes(url: str, name: str) -> tuple[ActorSystem, ActorSystem]:
    one = await start_node(url, name, "n1")
    two = await start_node(url, name, "n2")
    both = {"n1": ("Counter",), "n2": ("Counter",)}
    await eventually(lambda: hosts(one) == both and hosts(two) == both)
    return one, two


def entity_on(system: ActorSystem, node: str) -> str:
    """The id of an entity whose shard lives on ``node`` (as ``system`` knows it)."""
    homes = system.extension(Cluster).shard_homes()
    for n in range(1000):
        entity_id = f"e{n}"
        if homes.get(("Counter", default_shard_id(entity_id, SHARDS))) == node:
            return entity_id
    raise AssertionError(f"no entity lives on {node}")


async def touch_every_shard(system: ActorSystem) -> dict[str, str]:
    """Ask one entity of every shard; return the node that answered per entity id."""
    sharding = ClusterSharding(system)
    seen: dict[str, str] = {}
    shards: set[str] = set()
    for n in range(1000):
        entity_id = f"e{n}"
        shard = default_shard_id(entity_id, SHARDS)
        if shard in shards:
            continue
        shards.add(shard)
        total = await sharding.entity_ref("Counter", entity_id).ask(Get(), timeout=10.0)
        seen[entity_id] = total.node
        if len(shards) == SHARDS:
            break
    return seen


async def test_shards_get_homes_least_shards_first_and_entities_answer_from_their_home(
    nats_url: str, cluster_name: str
) -> None:
    one, two = await two_nodes(nats_url, cluster_name)
    try:
        seen = await touch_every_shard(one)
        assert sorted(seen.values()).count("n1") == SHARDS // 2
        assert sorted(seen.values()).count("n2") == SHARDS // 2
        stats = await ClusterSharding(one).cluster_stats("Counter")
        assert stats.shards_per_node == {"n1": SHARDS // 2, "n2": SHARDS // 2}
        assert stats.entity_count == SHARDS
        # Every node routes to the same homes, straight from its cache after the first message.
        await eventually(
            lambda: two.extension(Cluster).shard_homes() == one.extension(Cluster).shard_homes()
        )
        for entity_id, node in seen.items():
            total = await ClusterSharding(two).entity_ref("Counter", entity_id).ask(Get())
            assert total == Total(entity_id, node, 0)
    finally:
        await two.shutdown()
        await one.shutdown()


async def test_tells_to_a_remote_entity_keep_their_order_and_its_replies_reach_the_sender(
    nats_url: str, cluster_name: str
) -> None:
    one, two = await two_nodes(nats_url, cluster_name)
    try:
        await touch_every_shard(one)
        remote = entity_on(one, "n2")
        entity = ClusterSharding(one).entity_ref("Counter", remote)
        for amount in range(1, 101):
            entity.tell(Add(amount))
        probe = TestProbe(one)
        entity.tell(Get(), probe.ref)
        assert await probe.expect_message(Total(remote, "n2", 5050)) == Total(remote, "n2", 5050)
    finally:
        await two.shutdown()
        await one.shutdown()


async def test_a_remote_entitys_failure_reaches_the_asker_and_unregistered_types_are_refused(
    nats_url: str, cluster_name: str
) -> None:
    one, two = await two_nodes(nats_url, cluster_name)
    try:
        await touch_every_shard(one)
        remote = entity_on(one, "n2")
        entity = ClusterSharding(one).entity_ref("Counter", remote)
        with pytest.raises(RemoteError) as raised:
            await entity.ask(Fail())
        assert str(raised.value) == f"ValueError on node 'n2': counter {remote} cannot do that"
        assert (raised.value.type_name, raised.value.node) == ("ValueError", "n2")
        with pytest.raises(SerializationError) as refused:
            await entity.ask(Unregistered())
        assert "cannot encode tests.cluster._nodes.Unregistered: the type is not registered" in (
            str(refused.value)
        )
    finally:
        await two.shutdown()
        await one.shutdown()
