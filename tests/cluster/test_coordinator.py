"""The coordinator: one node at a time, replaced when it dies; allocations survive it."""

from __future__ import annotations

from typing import Any, cast

import pytest

from cluster import ClusterSharding, Member
from cluster._coordinator import Coordinator
from tests.cluster._nodes import Get, Total, crash, placement, start_node
from tests.cluster._support import FAST, eventually
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


class Members:
    def members(self) -> tuple[Member, ...]:
        return (Member("n1", types=("T",)),)


async def test_a_coordinator_that_lost_its_lease_records_no_decision() -> None:
    async def no_control(node: str, request: dict[str, Any], wait: float) -> dict[str, Any]:
        raise AssertionError("not called")

    stale = Coordinator(
        cast(Any, None), "x", "n1", cast(Any, None), cast(Any, Members()), FAST, no_control,
        lambda: False,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match=r"^node 'n1' is no longer the coordinator$"):
        await stale.home("T", "0", "n1")
