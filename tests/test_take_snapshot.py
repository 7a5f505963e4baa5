"""take_snapshot: a snapshot of a stopped entity at a given sequence number, the way
eventsourcing's ``app.take_snapshot(id, version=n)`` works, stored at that number."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from actorsys import ActorSystem
from persistence import (
    Persistence,
    PersistenceConfigError,
    PersistenceError,
    PersistentActor,
    SnapshotOffer,
    SnapshotSelectionCriteria,
)
from persistence.serialization import Serializer
from persistence.testing import TestJournal, TestSnapshotStore, take_snapshot

serializer = Serializer()


@serializer.type("Deposited")
@dataclass(frozen=True)
class Deposited:
    amount: int


@serializer.type("Balance")
@dataclass(frozen=True)
class Balance:
    amount: int


class Account(PersistentActor):
    def __init__(self) -> None:
        super().__init__()
        self.persistence_id = "account-1"
        self.balance = 0
        self.offered: int | None = None

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, Deposited):
            self.balance += message.amount
        elif isinstance(message, SnapshotOffer):
            self.offered = message.metadata.sequence_nr
            self.balance = message.snapshot.amount

    async def receive_command(self, command: Any) -> None:
        if command == "get":
            self.context.sender.tell((self.balance, self.offered))
            return
        await self.persist(Deposited(command))
        self.balance += command
        self.context.sender.tell(self.balance)

    def snapshot_state(self) -> Balance:
        return Balance(self.balance)


class NoSnapshotState(Account):
    snapshot_state = PersistentActor.snapshot_state  # type: ignore[assignment]


@pytest.fixture
def journal() -> TestJournal:
    return TestJournal()


@pytest.fixture
def snapshots() -> TestSnapshotStore:
    return TestSnapshotStore()


@pytest.fixture
async def system(journal: TestJournal, snapshots: TestSnapshotStore) -> AsyncIterator[ActorSystem]:
    extension = Persistence(journal, snapshots, serializer=serializer)
    async with ActorSystem("test", extensions=[extension]) as system:
        account = system.spawn(Account)
        for amount in (1, 2, 3):
            await account.ask(amount)  # balances 1, 3, 6 after events 1, 2, 3
        await system.stop(account)
        yield system


async def test_a_snapshot_at_a_sequence_number_holds_the_state_after_that_event(
    system: ActorSystem, snapshots: TestSnapshotStore
) -> None:
    metadata = await take_snapshot(system, Account, 2)

    assert (metadata.persistence_id, metadata.sequence_nr) == ("account-1", 2)
    stored = await snapshots.load("account-1", SnapshotSelectionCriteria.latest())
    assert stored is not None
    assert serializer.decode_one(stored.manifest, stored.payload) == Balance(3)
    account = system.spawn(Account)
    assert await account.ask("get") == (6, 2)  # the snapshot, then event 3 replayed


async def test_without_a_sequence_number_the_snapshot_is_of_the_latest_state(
    system: ActorSystem,
) -> None:
    metadata = await take_snapshot(system, Account)
    assert metadata.sequence_nr == 3
    account = system.spawn(Account)
    assert await account.ask("get") == (6, 3)


async def test_a_sequence_number_beyond_the_last_event_is_an_error(system: ActorSystem) -> None:
    with pytest.raises(
        PersistenceError,
        match=(
            r"^cannot take a snapshot of persistence_id='account-1' at sequence_nr=9: "
            r"its events end at sequence_nr=3$"
        ),
    ):
        await take_snapshot(system, Account, 9)


async def test_a_running_entity_is_left_alone(system: ActorSystem) -> None:
    running = system.spawn(Account, "account")
    assert await running.ask("get") == (6, None)
    with pytest.raises(
        PersistenceError,
        match=(
            r"^cannot take a snapshot of persistence_id='account-1': the entity is running "
            r"\(/user/account\); stop it first, or save_snapshot from inside it$"
        ),
    ):
        await take_snapshot(system, Account, 2)
    assert await running.ask(4) == 10


async def test_an_entity_without_snapshot_state_cannot_be_snapshotted(system: ActorSystem) -> None:
    with pytest.raises(
        PersistenceConfigError,
        match=r"^cannot take a snapshot of persistence_id='account-1': NoSnapshotState has no ",
    ):
        await take_snapshot(system, NoSnapshotState, 2)


async def test_a_failed_recovery_fails_the_snapshot(
    system: ActorSystem, journal: TestJournal
) -> None:
    journal.fail_next_reads()
    with pytest.raises(PersistenceError, match=r"^TestJournal: cannot read the highest sequence"):
        await take_snapshot(system, Account, 2)


async def test_a_system_without_a_snapshot_store_says_how_to_configure_one() -> None:
    async with ActorSystem("bare", extensions=[Persistence("memory:")]) as system:
        with pytest.raises(
            PersistenceConfigError,
            match=r"^cannot take a snapshot: no snapshot store configured: pass snapshot_store=",
        ):
            await take_snapshot(system, Account, 1)
