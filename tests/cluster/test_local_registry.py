"""Local mode as an entity registry: one entity per id, started on demand, reached by tell and
ask, ids spread over shards by a stable hash."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actorsys import Actor, ActorSystem, DeadLetter
from actorsys.testing import TestProbe
from cluster import (
    ClusterSharding,
    EntityIdError,
    EntityRef,
    HashMessageExtractor,
    ShardingConfigError,
    ShardingEnvelope,
    ShardingSettings,
    default_shard_id,
    stable_hash,
)
from tests.cluster._local import Get, Got, Started, Stopped, recorders


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("registry") as system:
        yield system


def start(system: ActorSystem, probe: TestProbe, **settings: Any) -> ClusterSharding:
    sharding = ClusterSharding(system)
    sharding.start("Recorder", recorders(probe.ref), settings=ShardingSettings(**settings))
    return sharding


async def test_messages_for_one_entity_id_reach_one_entity_started_on_demand_in_order(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    entity = sharding.entity_ref("Recorder", "c-7")
    for n in range(5):
        entity.tell(n)

    assert await entity.ask(Get()) == Got("c-7", (0, 1, 2, 3, 4))
    await probe.expect_message(Started("c-7"))
    assert (await sharding.region_state("Recorder")).shards == {
        default_shard_id("c-7", 100): frozenset({"c-7"})
    }


async def test_each_entity_id_has_its_own_entity(system: ActorSystem, probe: TestProbe) -> None:
    sharding = start(system, probe)
    sharding.entity_ref("Recorder", "a").tell("for a")
    sharding.entity_ref("Recorder", "b").tell("for b")

    assert await sharding.entity_ref("Recorder", "a").ask(Get()) == Got("a", ("for a",))
    assert await sharding.entity_ref("Recorder", "b").ask(Get()) == Got("b", ("for b",))
    assert {await probe.receive(), await probe.receive()} == {Started("a"), Started("b")}


async def test_the_region_ref_routes_sharding_envelopes_with_their_sender(
    system: ActorSystem, probe: TestProbe
) -> None:
    region = start(system, probe).region("Recorder")
    region.tell(ShardingEnvelope("x", Get()), probe.ref)

    await probe.expect_message(Started("x"))
    await probe.expect_message(Got("x", ()))
    assert await region.ask(ShardingEnvelope("x", Get())) == Got("x", ())


async def test_many_entity_ids_are_spread_over_the_shards_by_their_stable_hash(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe, number_of_shards=10)
    ids = [f"client-{n}" for n in range(200)]
    for entity_id in ids:
        sharding.entity_ref("Recorder", entity_id).tell("hello")
    for entity_id in ids:
        assert await sharding.entity_ref("Recorder", entity_id).ask(Get()) == Got(
            entity_id, ("hello",)
        )

    shards = (await sharding.region_state("Recorder")).shards
    assert shards == {
        str(n): frozenset(i for i in ids if zlib.crc32(i.encode()) % 10 == n) for n in range(10)
    }
    assert system.live_actor_count == 1 + 1 + 10 + 200  # probe, region, shards, entities


def test_the_default_shard_id_is_the_crc32_of_the_entity_id_modulo_the_number_of_shards() -> None:
    assert stable_hash("c-7") == zlib.crc32(b"c-7") == 759649163
    assert default_shard_id("c-7", 30) == "23"
    assert HashMessageExtractor(30).shard_id("c-7") == "23"


async def test_entity_ids_that_are_not_actor_names_get_escaped_actor_names(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe, number_of_shards=1)
    for entity_id in ("a/b", "$x", "ünï code", "%"):
        assert await sharding.entity_ref("Recorder", entity_id).ask(Get()) == Got(entity_id, ())

    state = await sharding.region_state("Recorder")
    assert state.shards == {"0": frozenset({"a/b", "$x", "ünï code", "%"})}


async def test_cluster_sharding_is_one_object_per_system(system: ActorSystem) -> None:
    assert ClusterSharding(system) is ClusterSharding(system)
    async with ActorSystem("other") as other:
        assert ClusterSharding(other) is not ClusterSharding(system)


async def test_an_entity_ref_is_a_value_naming_its_type_and_id(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    ref = sharding.entity_ref("Recorder", "a")

    assert ref == sharding.entity_ref("Recorder", "a") != sharding.entity_ref("Recorder", "b")
    assert len({ref, sharding.entity_ref("Recorder", "a")}) == 1
    assert repr(ref) == "EntityRef('Recorder', 'a')"
    assert isinstance(ref, EntityRef)


async def test_starting_a_type_twice_is_refused_saying_how_to_reach_the_region(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    with pytest.raises(ShardingConfigError) as caught:
        sharding.start("Recorder", recorders(probe.ref))

    assert str(caught.value) == (
        "sharding of 'Recorder' is already started on this system: use "
        "sharding.region('Recorder') or sharding.entity_ref('Recorder', id)"
    )


async def test_an_unstarted_type_is_refused_naming_the_started_ones(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    with pytest.raises(ShardingConfigError) as caught:
        sharding.entity_ref("Client", "c-1")

    assert str(caught.value) == (
        "sharding of 'Client' is not started on this system (started: 'Recorder'): call "
        "ClusterSharding(system).start('Client', factory) first"
    )


@pytest.mark.parametrize("type_name", ["", "shopping-cart", "a/b", "a b"])
async def test_a_type_name_that_cannot_name_a_region_is_refused(
    system: ActorSystem, probe: TestProbe, type_name: str
) -> None:
    with pytest.raises(ShardingConfigError) as caught:
        ClusterSharding(system).start(type_name, recorders(probe.ref))

    assert str(caught.value) == (
        f"invalid entity type name {type_name!r}: use letters, digits, '_', '.' and ':' (it "
        "names the region's actor and the remember-entities persistence ids)"
    )


async def test_an_empty_entity_id_is_refused_by_entity_ref(
    system: ActorSystem, probe: TestProbe
) -> None:
    with pytest.raises(ShardingConfigError, match="an entity id is a non-empty str, got ''"):
        start(system, probe).entity_ref("Recorder", "")


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"number_of_shards": 0}, "number_of_shards must be a positive int, got 0"),
        (
            {"passivate_idle_after": 0},
            "passivate_idle_after must be a positive number of seconds or None (off), got 0",
        ),
        ({"buffer_size": -1}, "buffer_size must be an int >= 0, got -1"),
    ],
)
def test_settings_that_cannot_work_are_refused_when_built(
    settings: dict[str, Any], error: str
) -> None:
    with pytest.raises(ShardingConfigError) as caught:
        ShardingSettings(**settings)
    assert str(caught.value) == error


async def test_an_entity_that_stops_by_itself_is_forgotten_and_its_next_message_starts_a_new_one(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = start(system, probe)
    entity = sharding.entity_ref("Recorder", "a")
    entity.tell("before")
    entity.tell("stop")
    await probe.expect_message(Started("a"))
    await probe.expect_message(Stopped("a", ("before",)))

    assert await entity.ask(Get()) == Got("a", ())
    await probe.expect_message(Started("a"))


class FailsToStart(Actor):
    """An entity whose first incarnation fails in its constructor."""

    attempts = 0

    def __init__(self, entity_id: str) -> None:
        super().__init__()
        FailsToStart.attempts += 1
        if FailsToStart.attempts == 1:
            raise RuntimeError("cannot start yet")

    def receive(self, message: Any) -> None:
        self.context.sender.tell(("started", FailsToStart.attempts))


async def test_an_entity_that_fails_past_its_supervisor_is_forgotten_and_started_again_on_demand(
    system: ActorSystem, dead_letters: list[DeadLetter]
) -> None:
    FailsToStart.attempts = 0
    lost = asyncio.Event()
    system.event_stream.subscribe(lambda letter: lost.set(), DeadLetter)
    sharding = ClusterSharding(system)
    sharding.start("Flaky", FailsToStart)
    entity = sharding.entity_ref("Flaky", "f")
    entity.tell("lost with the failed incarnation")
    await lost.wait()  # the failed incarnation's message went to dead letters

    assert await entity.ask("again") == ("started", 2)
    assert [letter.message for letter in dead_letters] == ["lost with the failed incarnation"]


async def test_a_custom_extractor_routes_its_own_messages_and_unwraps_them(
    system: ActorSystem, probe: TestProbe
) -> None:
    class ByKey(HashMessageExtractor):
        def entity_id(self, message: Any) -> str | None:
            if isinstance(message, tuple):
                return str(message[0])
            return super().entity_id(message)

        def unwrap(self, message: Any) -> Any:
            return message[1] if isinstance(message, tuple) else super().unwrap(message)

    sharding = ClusterSharding(system)
    region = sharding.start("Keyed", recorders(probe.ref), extractor=ByKey(5))
    region.tell(("k1", "one"))
    region.tell(("k1", "two"))

    assert await sharding.entity_ref("Keyed", "k1").ask(Get()) == Got("k1", ("one", "two"))
    assert list((await sharding.region_state("Keyed")).shards) == [ByKey(5).shard_id("k1")]


async def test_a_message_the_extractor_cannot_map_goes_to_dead_letters_and_fails_its_ask(
    system: ActorSystem,
    probe: TestProbe,
    dead_letters: list[DeadLetter],
    logs: list[dict[str, Any]],
) -> None:
    region = start(system, probe).region("Recorder")
    region.tell("not wrapped", probe.ref)
    with pytest.raises(EntityIdError) as caught:
        await region.ask("asked, not wrapped")

    message = (
        "cannot route str to an entity of 'Recorder': the extractor gave entity id None (wrap "
        "it in ShardingEnvelope(entity_id, message), or pass an extractor that knows it)"
    )
    assert str(caught.value) == message
    assert [letter.message for letter in dead_letters] == ["not wrapped", "asked, not wrapped"]
    assert all(letter.recipient == region for letter in dead_letters)
    assert [
        entry["error"] for entry in logs if entry["event"] == "sharding_message_unroutable"
    ] == [message, message]


async def test_an_extractor_that_raises_is_reported_with_its_error(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Broken(HashMessageExtractor):
        def shard_id(self, entity_id: str) -> str:
            raise KeyError(entity_id)

    sharding = ClusterSharding(system)
    sharding.start("Broken", recorders(probe.ref), extractor=Broken(3))
    with pytest.raises(EntityIdError) as caught:
        await sharding.entity_ref("Broken", "b-1").ask(Get())

    assert str(caught.value) == (
        "cannot route ShardingEnvelope to an entity of 'Broken': the extractor's "
        "shard_id('b-1') raised KeyError('b-1')"
    )
