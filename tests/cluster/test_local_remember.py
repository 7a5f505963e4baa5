"""Remember entities in local mode: the entities that ran start again with a new system on the
same SQLite journal; passivated ones do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from actorsys import ActorSystem
from actorsys.testing import TestProbe
from cluster import ClusterSharding, ShardingConfigError, ShardingSettings, default_shard_id
from persistence import Persistence
from tests.cluster._local import Get, Got, Started, Stopped, recorders

REMEMBER = ShardingSettings(number_of_shards=4, remember_entities=True)


async def test_remembered_entities_start_again_with_a_new_system_on_the_same_journal(
    tmp_path: Path,
) -> None:
    url = f"sqlite:{tmp_path / 'journal.db'}"
    async with ActorSystem("first", extensions=[Persistence(url)]) as system:
        probe = TestProbe(system)
        sharding = ClusterSharding(system)
        sharding.start("Recorder", recorders(probe.ref), settings=REMEMBER)
        for entity_id in ("a", "b", "c"):
            assert await sharding.entity_ref("Recorder", entity_id).ask(Get()) == Got(entity_id, ())
        assert await sharding.entity_ref("Recorder", "c").ask("passivate") == "passivating"
        await probe.fish_for_message(lambda message: message == Stopped("c", ()))

    async with ActorSystem("second", extensions=[Persistence(url)]) as system:
        probe = TestProbe(system)
        sharding = ClusterSharding(system)
        sharding.start("Recorder", recorders(probe.ref), settings=REMEMBER)

        assert {await probe.receive(), await probe.receive()} == {Started("a"), Started("b")}
        state = await sharding.region_state("Recorder")
        assert {entity_id for ids in state.shards.values() for entity_id in ids} == {"a", "b"}
        assert set(state.shards) == {default_shard_id(i, 4) for i in ("a", "b")}


async def test_remembered_entities_are_recorded_per_shard_in_the_journal(tmp_path: Path) -> None:
    persistence = Persistence(f"sqlite:{tmp_path / 'journal.db'}")
    async with ActorSystem("recording", extensions=[persistence]) as system:
        probe = TestProbe(system)
        sharding = ClusterSharding(system)
        sharding.start("Recorder", recorders(probe.ref), settings=REMEMBER)
        await sharding.entity_ref("Recorder", "a").ask(Get())

        ids = await persistence.journal.persistence_ids()  # type: ignore[attr-defined]
        assert ids == [f"sharding-Recorder-{default_shard_id('a', 4)}"]


async def test_remember_entities_without_a_journal_is_refused_saying_how_to_add_one() -> None:
    async with ActorSystem("bare") as system:
        with pytest.raises(ShardingConfigError) as caught:
            ClusterSharding(system).start(
                "Recorder", recorders(system.dead_letters), settings=REMEMBER
            )

    assert str(caught.value).startswith(
        "remember_entities for 'Recorder' needs a journal: actor system 'bare' has no journal "
        "configured: create it with ActorSystem('bare', extensions=[Persistence("
    )
