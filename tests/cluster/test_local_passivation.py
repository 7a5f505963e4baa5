"""Passivation in local mode: on request and when idle (by the system's clock), with the
messages that arrive meanwhile held for a new incarnation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from actorsys import Actor, ActorSystem
from actorsys.testing import ManualClock, TestProbe
from cluster import ClusterSharding, Passivate, ShardingSettings
from tests.cluster._local import Get, Got, Started, Stopped, recorders


@pytest.fixture
async def system(clock: ManualClock) -> AsyncIterator[ActorSystem]:
    async with ActorSystem("passivation", clock=clock) as system:
        yield system


def start(
    system: ActorSystem, probe: TestProbe, passivate_idle_after: float | None = None
) -> ClusterSharding:
    sharding = ClusterSharding(system)
    sharding.start(
        "Recorder",
        recorders(probe.ref),
        settings=ShardingSettings(passivate_idle_after=passivate_idle_after),
    )
    return sharding


async def running(sharding: ClusterSharding) -> set[str]:
    state = await sharding.region_state("Recorder")
    return {entity_id for ids in state.shards.values() for entity_id in ids}


async def test_an_entity_that_passivates_is_stopped_and_its_next_message_starts_a_new_one(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    entity = sharding.entity_ref("Recorder", "a")
    entity.tell("first")
    assert await entity.ask("passivate") == "passivating"
    await probe.expect_message(Started("a"))
    await probe.expect_message(Stopped("a", ("first",)))
    assert await running(sharding) == set()

    assert await entity.ask(Get()) == Got("a", ())
    await probe.expect_message(Started("a"))


async def test_messages_sent_while_an_entity_passivates_go_to_its_next_incarnation_in_order(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    entity = sharding.entity_ref("Recorder", "a")
    entity.tell("first")
    assert await entity.ask("passivate") == "passivating"
    # The shard has the Passivate before these: it holds them until the entity stopped.
    for n in range(3):
        entity.tell(n)

    assert await entity.ask(Get()) == Got("a", (0, 1, 2))
    assert [await probe.receive() for _ in range(3)] == [
        Started("a"),
        Stopped("a", ("first",)),
        Started("a"),
    ]


async def test_an_entity_idle_for_passivate_idle_after_seconds_is_passivated(
    system: ActorSystem, probe: TestProbe, clock: ManualClock
) -> None:
    sharding = start(system, probe, passivate_idle_after=60)
    sharding.entity_ref("Recorder", "idle").tell("hello")
    sharding.entity_ref("Recorder", "busy").tell("hello")
    await clock.advance(40)
    sharding.entity_ref("Recorder", "busy").tell("still here")

    await clock.advance(19)
    assert await running(sharding) == {"idle", "busy"}
    await clock.advance(1)  # t=60: "idle" got nothing for 60 s
    assert await running(sharding) == {"busy"}
    await clock.advance(60)  # t=120: "busy" got nothing since t=40
    assert await running(sharding) == set()
    assert {message async for message in _drain(probe, 4)} == {
        Started("idle"),
        Started("busy"),
        Stopped("idle", ("hello",)),
        Stopped("busy", ("hello", "still here")),
    }


async def _drain(probe: TestProbe, n: int) -> AsyncIterator[Any]:
    for _ in range(n):
        yield await probe.receive()


async def test_idle_passivation_is_off_with_none(
    system: ActorSystem, probe: TestProbe, clock: ManualClock
) -> None:
    sharding = start(system, probe, passivate_idle_after=None)
    sharding.entity_ref("Recorder", "a").tell("hello")
    await clock.advance(10_000)

    assert await running(sharding) == {"a"}


class Ticking(Actor):
    """An entity that keeps itself busy with its own timer."""

    def pre_start(self) -> None:
        self.context.timers.start_periodic_timer("tick", "tick", 5)

    def receive(self, message: Any) -> None:
        pass


async def test_only_messages_through_sharding_keep_an_entity_from_idle_passivation(
    system: ActorSystem, clock: ManualClock
) -> None:
    sharding = ClusterSharding(system)
    sharding.start(
        "Ticking", lambda entity_id: Ticking(), settings=ShardingSettings(passivate_idle_after=60)
    )
    sharding.entity_ref("Ticking", "t").tell("start")
    await clock.advance(59)
    assert set((await sharding.region_state("Ticking")).shards.values()) == {frozenset({"t"})}

    await clock.advance(1)
    assert set((await sharding.region_state("Ticking")).shards.values()) == {frozenset()}


async def test_the_default_idle_passivation_is_after_120_seconds(
    system: ActorSystem, probe: TestProbe, clock: ManualClock
) -> None:
    assert ShardingSettings().passivate_idle_after == 120.0
    sharding = ClusterSharding(system)
    sharding.start("Recorder", recorders(probe.ref))
    sharding.entity_ref("Recorder", "a").tell("hello")
    await clock.advance(119)
    assert await running(sharding) == {"a"}
    await clock.advance(1)
    assert await running(sharding) == set()


class StopsOnBye(Actor):
    """Passivates with a custom stop message, and stops only when it gets it."""

    def __init__(self, observer: Any) -> None:
        super().__init__()
        self.observer = observer

    def receive(self, message: Any) -> None:
        if message == "passivate":
            self.context.parent.tell(Passivate("bye"), self.context.self)
        elif message == "bye":
            self.observer.tell("got bye")
            self.context.stop(self.context.self)


async def test_an_entity_passivating_with_a_stop_message_gets_it_and_stops_itself(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = ClusterSharding(system)
    sharding.start("Polite", lambda entity_id: StopsOnBye(probe.ref))
    sharding.entity_ref("Polite", "p").tell("passivate")

    await probe.expect_message("got bye")
    assert (await sharding.region_state("Polite")).shards.get("0", frozenset()) == frozenset()


async def test_a_passivate_without_the_entity_as_sender_is_ignored_with_a_warning_saying_how(
    system: ActorSystem, probe: TestProbe, logs: list[dict[str, Any]]
) -> None:
    class Careless(Actor):
        def receive(self, message: Any) -> None:
            self.context.parent.tell(Passivate())
            self.context.sender.tell("done")

    sharding = ClusterSharding(system)
    sharding.start("Careless", lambda entity_id: Careless())
    assert await sharding.entity_ref("Careless", "c").ask("passivate") == "done"

    state = await sharding.region_state("Careless")
    assert {entity_id for ids in state.shards.values() for entity_id in ids} == {"c"}
    warnings = [entry for entry in logs if entry["event"] == "passivate_from_unknown_sender"]
    assert [entry["hint"] for entry in warnings] == [
        "an entity passivates with context.parent.tell(Passivate(), context.self)"
    ]
