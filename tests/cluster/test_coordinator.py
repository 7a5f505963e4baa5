"""The coordinator: one node at a time, replaced when it dies; allocations survive it."""

from __future__ import annotations

from cluster import ClusterSharding
from tests.cluster._nodes import Get, Total, crash, placement, start_node
from tests.cluster._support import eventually
from tests.cluster.test_distributed_failover import ask_until_answered
from tests.cluster.test_distributed_routing import touch_every_shard, two_nodes


async def test_one_node_is_coordinator_and_another_takes_over_when_it_dies(
    nats_url: str, cluster_name: str
) -> None:
    one, two = await two_nodes(nats_url, cluster_name)
    try:
        await eventually(lambda: placement(one).is_coordinator)
        assert not placement(two).is_coordinator
        seen = await touch_every_shard(two)
        await crash(one)
        await eventually(lambda: placement(two).is_coordinator)
        for entity_id in seen:  # old allocations were read back, the dead node's moved
            total = await ask_until_answered(two, entity_id)
            assert total == Total(entity_id, "n2", 0)
        fresh = await ClusterSharding(two).entity_ref("Counter", "someone-new").ask(Get())
        assert fresh == Total("someone-new", "n2", 0)
    finally:
        await two.shutdown()


async def test_a_graceful_leave_of_the_coordinator_hands_the_role_over_at_once(
    nats_url: str, cluster_name: str
) -> None:
    one = await start_node(nats_url, cluster_name, "n1")
    two = await start_node(nats_url, cluster_name, "n2")
    try:
        await eventually(lambda: placement(one).is_coordinator)
        await one.shutdown()
        await eventually(lambda: placement(two).is_coordinator, within=5.0)
        assert (await ask_until_answered(two, "e1")).node == "n2"
    finally:
        await two.shutdown()
