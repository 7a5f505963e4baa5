"""The fast path: tells for a running entity skip the region and the shard, and keep every rule
of the slow path (order per sender, passivation buffering, hand-off, lost lease, buffer bound)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from actorsys import ActorSystem, DeadLetter
from actorsys.testing import ManualClock, TestProbe, settle
from cluster import (
    ClusterSharding,
    HashMessageExtractor,
    Passivate,
    ShardingBufferFullError,
    ShardingEnvelope,
    ShardingSettings,
)
from cluster._placement import HandOffShard, PlacementProvider, ShardHandedOff
from tests.cluster._local import Get, Got, Recorder, ScriptedPlacement, Started, Stopped

ONE_SHARD = ShardingSettings(number_of_shards=1, passivate_idle_after=None)


@dataclass(frozen=True)
class Note:
    """A message of the custom extractor below: for the entity ``entity_id``."""

    entity_id: str
    text: str


class ByNote(HashMessageExtractor):
    def entity_id(self, message: Any) -> str | None:
        if isinstance(message, Note):
            return message.entity_id
        return super().entity_id(message)

    def unwrap(self, message: Any) -> Any:
        return message.text if isinstance(message, Note) else super().unwrap(message)


class SlowToStop(Recorder):
    """A recorder that, asked to passivate, stops 10 s later (by the system's clock)."""

    def receive(self, message: Any) -> None:
        context = self.context
        if message == "passivate":
            context.parent.tell(Passivate("stop in 10 s"), context.self)
            context.sender.tell("passivating")
        elif message == "stop in 10 s":
            context.timers.start_single_timer("stop", "stop", 10)
        else:
            super().receive(message)


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
async def system(cluster: ScriptedCluster, clock: ManualClock) -> AsyncIterator[ActorSystem]:
    async with ActorSystem("direct", extensions=[cluster], clock=clock) as system:
        yield system


def start(
    system: ActorSystem,
    probe: TestProbe,
    settings: ShardingSettings = ONE_SHARD,
    extractor: HashMessageExtractor | None = None,
) -> ClusterSharding:
    sharding = ClusterSharding(system)
    sharding.start(
        "Recorder",
        lambda entity_id: SlowToStop(entity_id, probe.ref),
        settings=settings,
        extractor=extractor,
    )
    return sharding


async def test_tells_for_a_running_entity_do_not_pass_through_the_region(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    region = sharding.region("Recorder")
    entity = sharding.entity_ref("Recorder", "a")
    assert await entity.ask(Get()) == Got("a", ())
    routed = region.mailbox_stats().processed

    for n in range(5):
        entity.tell(n)
        region.tell(ShardingEnvelope("a", f"env-{n}"))

    assert await entity.ask(Get()) == Got(
        "a", (0, "env-0", 1, "env-1", 2, "env-2", 3, "env-3", 4, "env-4")
    )
    assert region.mailbox_stats().processed == routed


async def test_an_envelope_never_overtakes_a_routed_message_of_the_same_sender(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe, extractor=ByNote(1))
    region = sharding.region("Recorder")
    entity = sharding.entity_ref("Recorder", "a")
    assert await entity.ask(Get()) == Got("a", ())

    sent: list[Any] = []
    for n in range(4):
        region.tell(Note("a", f"note-{n}"))  # always through the region and the shard
        entity.tell(n)  # would be direct, but a note for "a" is still on its way
        region.tell(ShardingEnvelope("a", f"env-{n}"))
        sent += [f"note-{n}", n, f"env-{n}"]

    assert await entity.ask(Get()) == Got("a", tuple(sent))


async def test_tells_while_an_entity_passivates_wait_for_its_next_incarnation_in_order(
    system: ActorSystem, probe: TestProbe, clock: ManualClock
) -> None:
    sharding = start(system, probe)
    entity = sharding.entity_ref("Recorder", "a")
    entity.tell("first")
    assert await entity.ask("passivate") == "passivating"
    await settle()  # the shard has the Passivate: "a" is stopping
    for n in range(3):
        entity.tell(n)
        sharding.region("Recorder").tell(ShardingEnvelope("a", f"env-{n}"))
    asked = entity.ask(Get(), timeout=60)
    await clock.advance(10)

    assert await asked == Got("a", (0, "env-0", 1, "env-1", 2, "env-2"))
    assert [await probe.receive() for _ in range(3)] == [
        Started("a"),
        Stopped("a", ("first",)),
        Started("a"),
    ]
    entity.tell("direct again")
    assert await entity.ask(Get()) == Got(
        "a", (0, "env-0", 1, "env-1", 2, "env-2", "direct again")
    )


async def test_the_passivation_buffer_bound_applies_to_tells_that_would_be_direct(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter], clock: ManualClock
) -> None:
    settings = ShardingSettings(number_of_shards=1, passivate_idle_after=None, buffer_size=2)
    sharding = start(system, probe, settings)
    entity = sharding.entity_ref("Recorder", "a")
    assert await entity.ask("passivate") == "passivating"
    await settle()
    entity.tell(1)
    entity.tell(2)
    with pytest.raises(ShardingBufferFullError):
        await entity.ask(3)
    await clock.advance(10)

    assert await entity.ask(Get()) == Got("a", (1, 2))
    assert [letter.message for letter in dead_letters] == [ShardingEnvelope("a", 3)]


async def test_tells_after_a_hand_off_reach_the_next_incarnation_in_order_none_lost(
    system: ActorSystem, probe: TestProbe, cluster: ScriptedCluster
) -> None:
    sharding = start(system, probe)
    region = sharding.region("Recorder")
    entity = sharding.entity_ref("Recorder", "a")
    entity.tell("before")
    assert await entity.ask(Get()) == Got("a", ("before",))
    await probe.expect_message(Started("a"))

    region.tell(HandOffShard("0", probe.ref))
    for n in range(3):
        entity.tell(n)  # from the hand-off on, through the region: buffered

    await probe.expect_message(Stopped("a", ("before",)))
    await probe.expect_message(ShardHandedOff("Recorder", "0"))
    await probe.expect_message(Started("a"))
    assert await entity.ask(Get()) == Got("a", (0, 1, 2))
    assert cluster.scripted.released == ["0"]


async def test_tells_after_a_lost_lease_reach_the_next_incarnation_not_the_stopped_one(
    system: ActorSystem, probe: TestProbe, cluster: ScriptedCluster
) -> None:
    sharding = start(system, probe)
    entity = sharding.entity_ref("Recorder", "a")
    assert await entity.ask(Get()) == Got("a", ())
    await probe.expect_message(Started("a"))

    cluster.scripted.lost["0"]()  # the region is told: tells from now on wait for it
    for n in range(3):
        entity.tell(n)

    await probe.expect_message(Stopped("a", ()))
    await probe.expect_message(Started("a"))
    assert await entity.ask(Get()) == Got("a", (0, 1, 2))
    assert [epoch for _, epoch in cluster.scripted.acquired] == [1, 2]


async def test_an_entity_told_only_directly_is_not_passivated_as_idle(
    system: ActorSystem, probe: TestProbe, clock: ManualClock
) -> None:
    settings = ShardingSettings(number_of_shards=1, passivate_idle_after=60)
    sharding = start(system, probe, settings)
    entity = sharding.entity_ref("Recorder", "a")
    assert await entity.ask(Get()) == Got("a", ())
    for n in range(4):
        await clock.advance(29)
        entity.tell(n)

    await probe.expect_message(Started("a"))
    assert await entity.ask(Get()) == Got("a", (0, 1, 2, 3))  # t=116: still running

    await clock.advance(64)  # the idle check at t=180: nothing for 60 s
    await probe.expect_message(Stopped("a", (0, 1, 2, 3)))
