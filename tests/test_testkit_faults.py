"""TestJournal and TestSnapshotStore: failure paths of persistent actors, tested without a
custom journal (Akka's PersistenceTestKit): failed and rejected writes, failed recoveries,
deletes and snapshot operations, per persistence id or for any, counted or until cleared."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from actorsys import ActorRef, ActorSystem, Terminated
from actorsys.testing import TestProbe
from persistence import (
    DeleteEventsFailure,
    DeleteEventsSuccess,
    JournalError,
    Persistence,
    PersistenceConfigError,
    PersistentActor,
    RecoveryCompleted,
    SaveSnapshotFailure,
    SaveSnapshotSuccess,
    Serializer,
    SnapshotOffer,
    SnapshotSelectionCriteria,
)
from persistence.query import EventQueries
from persistence.testing import TestJournal, TestSnapshotStore
from tests._query_support import JournalOnly

serializer = Serializer()


@serializer.type("Deposited")
@dataclass(frozen=True)
class Deposited:
    amount: int


@serializer.type("Balance")
@dataclass(frozen=True)
class Balance:
    amount: int


OUTCOMES = (SaveSnapshotSuccess, SaveSnapshotFailure, DeleteEventsSuccess, DeleteEventsFailure)


class Account(PersistentActor):
    """Deposits amounts; tells ``observer`` what happened to its writes and recoveries."""

    def __init__(self, account_id: str, observer: ActorRef) -> None:
        super().__init__()
        self.persistence_id = f"account-{account_id}"
        self.observer = observer
        self.balance = 0

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, Deposited):
            self.balance += message.amount
        elif isinstance(message, SnapshotOffer):
            self.balance = message.snapshot.amount
        elif message is RecoveryCompleted:
            self.observer.tell(("recovered", self.balance))

    def receive_command(self, command: Any) -> None:
        if isinstance(command, int):
            self.persist(Deposited(command), self.deposited)
        elif command == "snapshot":
            self.save_snapshot(Balance(self.balance))
        elif isinstance(command, tuple) and command[0] == "delete":
            self.delete_events(command[1])
        elif isinstance(command, OUTCOMES):
            self.observer.tell(command)

    def deposited(self, event: Deposited) -> None:
        self.balance += event.amount
        self.observer.tell(("stored", self.last_sequence_nr, self.balance))

    def on_persist_failure(self, cause: BaseException, event: Any, sequence_nr: int) -> None:
        self.observer.tell(("write failed", sequence_nr, str(cause)))

    def on_persist_rejected(self, cause: BaseException, event: Any, sequence_nr: int) -> None:
        self.observer.tell(("write rejected", sequence_nr, str(cause)))

    def on_recovery_failure(self, cause: BaseException, message: Any) -> None:
        self.observer.tell(("recovery failed", str(cause)))


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
        yield system


async def spawn(system: ActorSystem, probe: TestProbe, account_id: str) -> ActorRef:
    """An account, once it has recovered (its recovery outcome is left to the caller)."""
    ref = system.spawn(lambda: Account(account_id, probe.ref), f"account-{account_id}")
    probe.watch(ref)
    return ref


async def test_a_failed_write_stops_only_the_actor_whose_write_failed(
    system: ActorSystem, probe: TestProbe, journal: TestJournal
) -> None:
    journal.fail_next_writes(persistence_id="account-1")
    one = await spawn(system, probe, "1")
    two = await spawn(system, probe, "2")
    await probe.expect_message_all_of(("recovered", 0), ("recovered", 0))

    one.tell(10)
    two.tell(20)
    outcomes = await probe.receive_n(3)

    assert ("stored", 1, 20) in outcomes
    assert (
        "write failed",
        1,
        "TestJournal: the write of persistence_id='account-1', sequence_nr=1 failed on purpose "
        "(fail_next_writes)",
    ) in outcomes
    assert Terminated(one) in outcomes
    assert await journal.stored("account-1") == []
    assert [record.sequence_nr for record in await journal.stored("account-2")] == [1]


async def test_fail_next_writes_counts_atomic_writes_of_any_actor(
    system: ActorSystem, probe: TestProbe, journal: TestJournal
) -> None:
    journal.fail_next_writes(2, error=JournalError("disk full"))
    for account_id in ("1", "2", "3"):
        ref = await spawn(system, probe, account_id)
        await probe.expect_message(("recovered", 0))
        ref.tell(5)
        if account_id == "3":
            await probe.expect_message(("stored", 1, 5))
        else:
            await probe.expect_message(("write failed", 1, "disk full"))
            await probe.expect_terminated(ref)


async def test_a_write_failed_after_storing_is_replayed_by_the_next_incarnation(
    system: ActorSystem, probe: TestProbe, journal: TestJournal
) -> None:
    journal.fail_next_writes(stored=True)
    account = await spawn(system, probe, "1")
    await probe.expect_message(("recovered", 0))
    account.tell(7)
    await probe.expect_message_type(tuple)  # ("write failed", 1, ...)
    await probe.expect_terminated(account)

    await spawn(system, probe, "1")
    await probe.expect_message(("recovered", 7))  # the writer was told it failed: it did not


async def test_a_rejected_write_skips_its_handler_and_the_actor_goes_on(
    system: ActorSystem, probe: TestProbe, journal: TestJournal
) -> None:
    journal.reject_next_writes(persistence_id="account-1")
    account = await spawn(system, probe, "1")
    await probe.expect_message(("recovered", 0))
    account.tell(10)
    await probe.expect_message(
        (
            "write rejected",
            1,
            "TestJournal: the write of persistence_id='account-1', sequence_nr=1 was rejected "
            "on purpose (reject_next_writes)",
        )
    )
    account.tell(20)
    await probe.expect_message(("stored", 2, 20))  # the rejected event kept its number
    assert [record.sequence_nr for record in await journal.stored("account-1")] == [2]


async def test_faults_without_a_count_apply_until_cleared(
    system: ActorSystem, probe: TestProbe, journal: TestJournal
) -> None:
    journal.reject_next_writes(None, persistence_id="account-1", error=ValueError("no"))
    account = await spawn(system, probe, "1")
    await probe.expect_message(("recovered", 0))
    for sequence_nr in (1, 2, 3):
        account.tell(1)
        await probe.expect_message(("write rejected", sequence_nr, "no"))
    journal.clear_faults()
    account.tell(1)
    await probe.expect_message(("stored", 4, 1))


async def test_a_failed_read_fails_one_recovery(
    system: ActorSystem, probe: TestProbe, journal: TestJournal
) -> None:
    journal.fail_next_reads(persistence_id="account-1")
    account = await spawn(system, probe, "1")
    await probe.expect_message(
        (
            "recovery failed",
            "TestJournal: cannot read the highest sequence number of persistence_id="
            "'account-1': failed on purpose (fail_next_reads)",
        )
    )
    await probe.expect_terminated(account)

    await spawn(system, probe, "1")
    await probe.expect_message(("recovered", 0))


async def test_a_failed_delete_is_reported_to_the_actor(
    system: ActorSystem, probe: TestProbe, journal: TestJournal
) -> None:
    journal.fail_next_deletes()
    account = await spawn(system, probe, "1")
    await probe.expect_message(("recovered", 0))
    account.tell(1)
    await probe.expect_message(("stored", 1, 1))

    account.tell(("delete", 1))
    failure = await probe.expect_message_type(DeleteEventsFailure)
    assert str(failure.cause) == (
        "TestJournal: deleting the events of persistence_id='account-1' up to sequence_nr=1 "
        "failed on purpose (fail_next_deletes)"
    )
    account.tell(("delete", 1))
    assert await probe.expect_message_type(DeleteEventsSuccess) == DeleteEventsSuccess(1)


async def test_snapshot_saves_loads_and_deletes_fail_on_demand(
    system: ActorSystem, probe: TestProbe, snapshots: TestSnapshotStore
) -> None:
    snapshots.fail_next_saves(persistence_id="account-1")
    account = await spawn(system, probe, "1")
    await probe.expect_message(("recovered", 0))
    account.tell(5)
    await probe.expect_message(("stored", 1, 5))

    account.tell("snapshot")
    failure = await probe.expect_message_type(SaveSnapshotFailure)
    assert str(failure.cause) == (
        "TestSnapshotStore: saving the snapshot of persistence_id='account-1' at sequence_nr=1 "
        "failed on purpose (fail_next_saves)"
    )
    account.tell("snapshot")
    await probe.expect_message_type(SaveSnapshotSuccess)
    await system.stop(account)
    await probe.expect_terminated(account)

    snapshots.fail_next_loads()
    again = await spawn(system, probe, "1")
    await probe.expect_message(
        (
            "recovery failed",
            "TestSnapshotStore: loading a snapshot of persistence_id='account-1' failed on "
            "purpose (fail_next_loads)",
        )
    )
    await probe.expect_terminated(again)
    await spawn(system, probe, "1")
    await probe.expect_message(("recovered", 5))

    snapshots.fail_next_deletes(error=OSError("read-only"))
    with pytest.raises(OSError, match=r"^read-only$"):
        await snapshots.delete_matching("account-1", SnapshotSelectionCriteria.latest())


async def test_fault_arguments_are_checked(journal: TestJournal) -> None:
    with pytest.raises(
        ValueError, match=r"^count must be at least 1, or None for every one; got 0$"
    ):
        journal.fail_next_writes(0)
    with pytest.raises(TypeError, match=r"^fail_next_writes needs a JournalError \(or None\)"):
        journal.fail_next_writes(error=ValueError("x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^reject_next_writes needs an exception that is not a"):
        journal.reject_next_writes(error=JournalError("x"))


async def test_the_test_journal_passes_queries_to_the_journal_it_wraps(
    system: ActorSystem, probe: TestProbe, journal: TestJournal
) -> None:
    account = await spawn(system, probe, "1")
    await probe.expect_message(("recovered", 0))
    account.tell(3)
    await probe.expect_message(("stored", 1, 3))

    queries = EventQueries(journal, serializer)
    found = [envelope.event async for envelope in queries.current_all_events()]
    assert found == [Deposited(3)]

    without_read_side = EventQueries(TestJournal(JournalOnly()), serializer)
    with pytest.raises(
        PersistenceConfigError,
        match=(
            r"^cannot read the highest ordering: the journal <JournalOnly> under the "
            r"TestJournal does not implement ReadJournal$"
        ),
    ):
        await anext(without_read_side.current_all_events())
