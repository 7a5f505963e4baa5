"""The region against a scripted placement (the seam the NATS placement implements): remote
homes, buffering and its bound, hand-off, lease loss, retries, epochs, inspection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from actorsys import ActorSystem, DeadLetter
from actorsys.testing import ManualClock, TestProbe, settle
from cluster import (
    ClusterSharding,
    ClusterShardingStats,
    RegionState,
    ShardingBufferFullError,
    ShardingEnvelope,
    ShardingSettings,
    default_shard_id,
)
from cluster._placement import HandOffShard, PlacementProvider, ShardHandedOff, ShardHomeChanged
from persistence import Persistence, PersistentActor, RecoveryCompleted
from persistence.journal import InMemoryJournal
from tests.cluster._local import Get, Got, ScriptedPlacement, Started, Stopped, recorders

SHARDS = ShardingSettings(number_of_shards=1, retry_interval=2.0)
"""One shard, "0": every entity lives in it."""


class ScriptedCluster(PlacementProvider):
    def __init__(self) -> None:
        self.scripted = ScriptedPlacement()

    @property
    def placement(self) -> ScriptedPlacement:  # type: ignore[override]
        return self.scripted


@pytest.fixture
def cluster() -> ScriptedCluster:
    return ScriptedCluster()


@pytest.fixture
def placement(cluster: ScriptedCluster) -> ScriptedPlacement:
    return cluster.scripted


@pytest.fixture
async def system(cluster: ScriptedCluster, clock: ManualClock) -> AsyncIterator[ActorSystem]:
    async with ActorSystem("region", extensions=[cluster], clock=clock) as system:
        yield system


def start(
    system: ActorSystem, probe: TestProbe, settings: ShardingSettings = SHARDS
) -> ClusterSharding:
    sharding = ClusterSharding(system)
    sharding.start("Recorder", recorders(probe.ref), settings=settings)
    return sharding


async def test_sharding_uses_the_placement_of_the_systems_placement_provider(
    system: ActorSystem, placement: ScriptedPlacement, probe: TestProbe
) -> None:
    sharding = start(system, probe)

    assert sharding.placement is placement
    assert placement.regions == {"Recorder": sharding.region("Recorder")}


async def test_messages_for_a_shard_at_home_on_another_node_go_through_the_placement_unchanged(
    system: ActorSystem, placement: ScriptedPlacement, probe: TestProbe
) -> None:
    placement.homes["0"] = "n2"
    sharding = start(system, probe)
    region = sharding.region("Recorder")
    region.tell(ShardingEnvelope("a", 1), probe.ref)
    region.tell(ShardingEnvelope("a", 2), probe.ref)
    await settle()

    assert placement.sent == [
        ("n2", "Recorder", ShardingEnvelope("a", 1), probe.ref),
        ("n2", "Recorder", ShardingEnvelope("a", 2), probe.ref),
    ]
    assert placement.acquired == []


async def test_a_shard_at_home_here_is_acquired_once_and_its_entities_run_here(
    system: ActorSystem, placement: ScriptedPlacement, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    for entity_id in ("a", "b"):
        sharding.entity_ref("Recorder", entity_id).tell("hi")

    assert await sharding.entity_ref("Recorder", "a").ask(Get()) == Got("a", ("hi",))
    assert placement.acquired == [("0", 1)]
    assert await sharding.region_state("Recorder") == RegionState(
        "Recorder", "n1", {"0": frozenset({"a", "b"})}
    )


async def test_the_buffer_for_shards_without_a_home_is_bounded_and_overflow_goes_to_dead_letters(
    system: ActorSystem,
    probe: TestProbe,
    dead_letters: list[DeadLetter],
    logs: list[dict[str, Any]],
) -> None:
    sharding = start(system, probe, ShardingSettings(number_of_shards=1, buffer_size=2))
    region = sharding.region("Recorder")
    for n in range(4):  # all handled before the home is known: 2 buffered, 2 over
        region.tell(ShardingEnvelope("a", n))
    asked = region.ask(ShardingEnvelope("a", "asked"))

    with pytest.raises(ShardingBufferFullError) as caught:
        await asked
    assert str(caught.value) == (
        "sharding buffer full, type_name='Recorder', shard_id='0': 2 messages are waiting for "
        "shards without a home; the message went to dead letters (raise "
        "ShardingSettings.buffer_size, or send less while shards move)"
    )
    await settle()  # the shard starts with the buffer
    assert await sharding.entity_ref("Recorder", "a").ask(Get()) == Got("a", (0, 1))
    assert [letter.message for letter in dead_letters] == [
        ShardingEnvelope("a", 2),
        ShardingEnvelope("a", 3),
        ShardingEnvelope("a", "asked"),
    ]
    assert [entry for entry in logs if entry["event"] == "sharding_buffer_full"] == [
        {
            "event": "sharding_buffer_full",
            "log_level": "warning",
            "type_name": "Recorder",
            "node": "n1",
            "shard_id": "0",
            "buffer_size": 2,
        }
    ] * 3


async def test_per_sender_order_to_each_entity_is_kept_through_buffering(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe, ShardingSettings(number_of_shards=7))
    ids = [f"e{n}" for n in range(20)]
    for n in range(30):
        for entity_id in ids:
            sharding.entity_ref("Recorder", entity_id).tell(n)

    for entity_id in ids:
        assert await sharding.entity_ref("Recorder", entity_id).ask(Get()) == Got(
            entity_id, tuple(range(30))
        )


async def test_a_hand_off_stops_the_entities_releases_the_lease_and_delivers_what_came_meanwhile(
    system: ActorSystem, placement: ScriptedPlacement, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    region = sharding.region("Recorder")
    entity = sharding.entity_ref("Recorder", "a")
    assert await entity.ask(Get()) == Got("a", ())
    entity.tell("before")
    await probe.expect_message(Started("a"))

    region.tell(HandOffShard("0", probe.ref))
    entity.tell("during")  # buffered by the region until the shard is home again
    await probe.expect_message(Stopped("a", ("before",)))
    await probe.expect_message(ShardHandedOff("Recorder", "0"))
    assert placement.released == ["0"]

    assert await entity.ask(Get()) == Got("a", ("during",))
    await probe.expect_message(Started("a"))
    assert placement.acquired == [("0", 1), ("0", 2)]


async def test_a_hand_off_of_a_shard_that_does_not_run_here_is_answered_at_once(
    system: ActorSystem, placement: ScriptedPlacement, probe: TestProbe
) -> None:
    start(system, probe).region("Recorder").tell(HandOffShard("5", probe.ref))

    await probe.expect_message(ShardHandedOff("Recorder", "5"))
    assert placement.released == []


async def test_a_lost_lease_stops_the_shards_entities_at_once_and_the_shard_is_taken_again_later(
    system: ActorSystem, placement: ScriptedPlacement, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    entity = sharding.entity_ref("Recorder", "a")
    entity.tell("before")
    assert await entity.ask(Get()) == Got("a", ("before",))
    await probe.expect_message(Started("a"))

    placement.lost["0"]()
    await probe.expect_message(Stopped("a", ("before",)))
    assert await sharding.region_state("Recorder") == RegionState("Recorder", "n1", {})

    assert await entity.ask(Get()) == Got("a", ())
    assert placement.acquired == [("0", 1), ("0", 2)]
    assert placement.released == []  # a lost lease is not given back


async def test_a_shard_held_by_another_node_is_asked_for_again_after_the_retry_interval(
    system: ActorSystem, placement: ScriptedPlacement, probe: TestProbe, clock: ManualClock
) -> None:
    placement.unavailable.add("0")
    sharding = start(system, probe)
    asked = sharding.entity_ref("Recorder", "a").ask(Get(), timeout=60)
    await clock.advance(1.9)
    assert placement.acquired == []

    placement.unavailable.clear()
    await clock.advance(0.1)
    assert await asked == Got("a", ())
    assert placement.acquired == [("0", 1)]


async def test_buffered_asks_fail_with_the_placements_error_when_no_node_can_host_the_shard(
    system: ActorSystem,
    placement: ScriptedPlacement,
    probe: TestProbe,
    dead_letters: list[DeadLetter],
) -> None:
    placement.home_errors["0"] = RuntimeError("no node has the role 'billing'")
    sharding = start(system, probe)
    sharding.entity_ref("Recorder", "a").tell("told")

    with pytest.raises(RuntimeError, match="no node has the role 'billing'"):
        await sharding.entity_ref("Recorder", "a").ask(Get())
    assert [letter.message for letter in dead_letters] == [
        ShardingEnvelope("a", "told"),
        ShardingEnvelope("a", Get()),
    ]


async def test_a_home_change_sends_the_buffered_messages_to_the_new_home(
    system: ActorSystem, placement: ScriptedPlacement, probe: TestProbe
) -> None:
    placement.homes["0"] = "n2"
    sharding = start(system, probe)
    region = sharding.region("Recorder")
    region.tell(ShardingEnvelope("a", 1))  # buffered: its home is being asked for
    region.tell(ShardHomeChanged("0", "n3"))
    region.tell(ShardingEnvelope("a", 2))
    await settle()  # the answer to the question (n2) came after the change: it is stale
    region.tell(ShardingEnvelope("a", 3))
    await settle()

    assert [(node, message) for node, _, message, _ in placement.sent] == [
        ("n3", ShardingEnvelope("a", 1)),
        ("n3", ShardingEnvelope("a", 2)),
        ("n3", ShardingEnvelope("a", 3)),
    ]


class Account(PersistentActor):
    def __init__(self, entity_id: str) -> None:
        super().__init__()
        self.persistence_id = f"account-{entity_id}"

    def receive_recover(self, message: Any) -> None:
        if message is RecoveryCompleted:
            return

    def receive_command(self, command: Any) -> None:
        self.context.sender.tell(self.owner_epoch)


async def test_persistent_entities_get_the_epoch_of_each_acquisition_of_their_shard(
    cluster: ScriptedCluster, placement: ScriptedPlacement, clock: ManualClock
) -> None:
    persistence = Persistence(InMemoryJournal())
    async with ActorSystem("epochs", extensions=[persistence, cluster], clock=clock) as system:
        sharding = ClusterSharding(system)
        sharding.start("Account", Account, settings=SHARDS)
        account = sharding.entity_ref("Account", "a")
        assert await account.ask("epoch?") == 1

        placement.lost["0"]()
        await settle()  # the shard and its entities stopped

        assert await account.ask("epoch?") == 2


async def test_cluster_stats_report_the_entities_per_shard_of_each_node(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = ClusterSharding(system)
    sharding.start("Recorder", recorders(probe.ref), settings=ShardingSettings(number_of_shards=3))
    ids = ["a", "b", "c", "d", "e"]
    for entity_id in ids:
        await sharding.entity_ref("Recorder", entity_id).ask(Get())

    stats = await sharding.cluster_stats("Recorder")
    expected: dict[str, int] = {}
    for entity_id in ids:
        shard_id = default_shard_id(entity_id, 3)
        expected[shard_id] = expected.get(shard_id, 0) + 1
    assert stats == ClusterShardingStats("Recorder", {"n1": expected})
    assert stats.shards_per_node == {"n1": len(expected)}
    assert stats.entity_count == 5
