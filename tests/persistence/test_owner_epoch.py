"""``PersistentActor.owner_epoch``: every write carries it, and a write the journal fences (a
newer owner wrote the id) stops the incarnation like any write failure."""

from __future__ import annotations

from actorsys import ActorRef, ActorSystem
from actorsys.testing import TestProbe
from persistence import OwnerEpochFencedError
from tests.persistence._actors import (
    Append,
    Appended,
    Failed,
    ItemLog,
    Recovered,
    Stored,
    stored_events,
)
from tests.persistence._journals import ControlledJournal


async def start_owner(
    system: ActorSystem, probe: TestProbe, persistence_id: str, epoch: int | None
) -> ActorRef:
    def make() -> ItemLog:
        log = ItemLog(persistence_id, probe.ref)
        log.owner_epoch = epoch
        return log

    ref = system.spawn(make)
    await probe.fish_for_message(lambda message: isinstance(message, Recovered))
    return ref


async def test_every_write_carries_the_owner_epoch_of_the_incarnation(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    log = await start_owner(system, probe, "fenced-1", 7)
    probe.send(log, Append("a"))
    await probe.expect_message(Stored("a", 1))

    assert [write.owner_epoch for call in journal.write_calls for write in call] == [7]


async def test_a_persistent_actor_writes_unfenced_by_default(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    log = await start_owner(system, probe, "unfenced-1", None)
    probe.send(log, Append("a"))
    await probe.expect_message(Stored("a", 1))

    assert [write.owner_epoch for call in journal.write_calls for write in call] == [None]


async def test_a_write_with_an_older_epoch_is_refused_and_stops_that_incarnation(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    new_owner = await start_owner(system, probe, "fenced-2", 8)
    probe.send(new_owner, Append("new"))
    await probe.expect_message(Stored("new", 1))
    await system.stop(new_owner)

    stale = await start_owner(system, probe, "fenced-2", 3)
    probe.watch(stale)
    probe.send(stale, Append("stale"))
    failed = await probe.expect_message_type(Failed)
    await probe.expect_terminated(stale)

    assert isinstance(failed.cause, OwnerEpochFencedError)
    assert str(failed.cause) == (
        "write refused, persistence_id='fenced-2', owner_epoch=3: a newer owner exists (owner "
        "epoch 8 has written this id); this incarnation must stop"
    )
    assert await stored_events(journal.inner, "fenced-2") == [(1, Appended("new"))]
