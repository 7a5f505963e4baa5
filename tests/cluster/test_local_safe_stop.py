"""The default stop of passivation and hand-off (``SafeStop``): a persistent entity stops only
after its persist in flight and the commands it held meanwhile; a plain entity stops at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from actorsys import ActorSystem, DeadLetter
from actorsys.testing import ManualClock, TestProbe, settle
from cluster import ClusterSharding, Passivate, SafeStop, ShardingSettings
from cluster._placement import HandOffShard, PlacementProvider, ShardHandedOff
from persistence import Persistence, PersistentActor, RecoveryCompleted, event_type
from persistence.journal import AtomicWrite, InMemoryJournal
from tests.cluster._local import Get, Got, ScriptedPlacement, Started, Stopped, recorders

SETTINGS = ShardingSettings(number_of_shards=1, passivate_idle_after=None)


class GatedJournal(InMemoryJournal):
    """Writes wait while the gate is closed (a slow journal)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        await self.gate.wait()
        return await super().write(writes)


@dataclass(frozen=True)
class Append:
    value: int
    passivate: bool = False


@event_type("tests.SafeStop.Appended")
@dataclass(frozen=True)
class Appended:
    value: int


class Ledger(PersistentActor):
    """Appends values and answers each once stored; ``Append(v, passivate=True)`` asks its shard
    to passivate it right after it started persisting."""

    def __init__(self, entity_id: str, observer: TestProbe) -> None:
        super().__init__()
        self.persistence_id = f"ledger-{entity_id}"
        self.observer = observer
        self.values: list[int] = []

    def pre_start(self) -> None:
        self.observer.ref.tell("started")
        super().pre_start()

    def post_stop(self) -> None:
        self.observer.ref.tell(("stopped", tuple(self.values)))
        super().post_stop()

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, Appended):
            self.values.append(message.value)
        elif message is RecoveryCompleted:
            return

    def receive_command(self, command: Any) -> None:
        sender = self.context.sender
        if isinstance(command, Append):

            def stored(event: Appended) -> None:
                self.values.append(event.value)
                sender.tell(tuple(self.values))

            self.persist(Appended(command.value), stored)
            if command.passivate:
                self.context.parent.tell(Passivate(), self.context.self)
        elif isinstance(command, Get):
            sender.tell(tuple(self.values))


class ScriptedCluster(PlacementProvider):
    def __init__(self) -> None:
        self.scripted = ScriptedPlacement()

    @property
    def placement(self) -> ScriptedPlacement:  # type: ignore[override]
        return self.scripted


@pytest.fixture
def journal() -> GatedJournal:
    return GatedJournal()


@pytest.fixture
async def system(journal: GatedJournal, clock: ManualClock) -> AsyncIterator[ActorSystem]:
    extensions = [Persistence(journal), ScriptedCluster()]
    async with ActorSystem("safe-stop", extensions=extensions, clock=clock) as system:
        yield system


def ledgers(system: ActorSystem, observer: TestProbe) -> ClusterSharding:
    sharding = ClusterSharding(system)
    sharding.start("Ledger", lambda entity_id: Ledger(entity_id, observer), settings=SETTINGS)
    return sharding


async def test_the_default_stop_of_a_hand_off_lets_a_persistent_entity_finish_its_held_commands(
    system: ActorSystem, journal: GatedJournal, dead_letters: list[DeadLetter]
) -> None:
    observer = TestProbe(system, "observer")
    sharding = ledgers(system, observer)
    ledger = sharding.entity_ref("Ledger", "a")
    assert await ledger.ask(Get()) == ()
    journal.gate.clear()
    first = ledger.ask(Append(1))  # its write waits at the gate
    await settle()
    held = [ledger.ask(Append(n)) for n in (2, 3)]  # held behind the persist in flight
    probe = TestProbe(system, "probe")
    sharding.region("Ledger").tell(HandOffShard("0", probe.ref))
    later = ledger.ask(Append(4))  # after the hand-off: for the next incarnation
    await settle()

    journal.gate.set()
    assert [await first, *[await answer for answer in held]] == [(1,), (1, 2), (1, 2, 3)]
    await probe.expect_message(ShardHandedOff("Ledger", "0"))
    assert await later == (1, 2, 3, 4)
    assert [await observer.receive() for _ in range(3)] == [
        "started",
        ("stopped", (1, 2, 3)),
        "started",
    ]
    assert dead_letters == []


async def test_the_default_stop_of_a_passivation_lets_a_persistent_entity_finish_its_commands(
    system: ActorSystem, journal: GatedJournal, dead_letters: list[DeadLetter]
) -> None:
    observer = TestProbe(system, "observer")
    sharding = ledgers(system, observer)
    ledger = sharding.entity_ref("Ledger", "a")
    assert await ledger.ask(Get()) == ()
    journal.gate.clear()
    first = ledger.ask(Append(1, passivate=True))
    held = [ledger.ask(Append(n)) for n in (2, 3)]
    await settle()  # the shard sent the stop: it waits behind 2 and 3
    later = ledger.ask(Append(4))  # held by the shard for the next incarnation

    journal.gate.set()
    assert [await first, *[await answer for answer in held]] == [(1,), (1, 2), (1, 2, 3)]
    assert await later == (1, 2, 3, 4)
    assert [await observer.receive() for _ in range(3)] == [
        "started",
        ("stopped", (1, 2, 3)),
        "started",
    ]
    assert dead_letters == []


async def test_the_default_stop_stops_a_plain_entity_at_once_like_a_poison_pill(
    system: ActorSystem, probe: TestProbe
) -> None:
    sharding = ClusterSharding(system)
    sharding.start("Recorder", recorders(probe.ref), settings=SETTINGS)
    entity = sharding.entity_ref("Recorder", "a")
    entity.tell("before")
    assert await entity.ask(Get()) == Got("a", ("before",))

    sharding.region("Recorder").tell(HandOffShard("0", None))
    await probe.expect_message(Started("a"))
    await probe.expect_message(Stopped("a", ("before",)))


def test_safe_stop_is_the_default_stop_message() -> None:
    assert ShardingSettings().stop_message is SafeStop
    assert Passivate().stop_message is SafeStop
    assert repr(SafeStop) == "SafeStop"
