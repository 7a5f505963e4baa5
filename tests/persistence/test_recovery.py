"""Recovery: snapshot offer, replay, RecoveryCompleted; failures stop the actor; options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from actorsys import ActorRef, ActorSystem, DeadLetter
from actorsys.testing import TestProbe
from persistence import (
    JournalError,
    PersistenceStateError,
    Recovery,
    RecoveryCompleted,
    SaveSnapshotSuccess,
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStoreError,
    UnknownManifestError,
)
from persistence.journal import AtomicWrite, PersistentRecord
from tests.persistence._actors import (
    Append,
    Appended,
    Get,
    ItemLog,
    Items,
    Offered,
    Recovered,
    RecoveryFailed,
    Replayed,
    Snapshot,
    Stored,
    serializer,
    start_log,
    stored_events,
)
from tests.persistence._journals import ControlledJournal, ControlledSnapshotStore


async def write_events(journal: ControlledJournal, persistence_id: str, *events: Any) -> None:
    """Store ``events`` (or ``(manifest, payload)`` pairs) from sequence number 1 on, directly."""
    records = []
    for sequence_nr, event in enumerate(events, start=1):
        manifest, payload = event if isinstance(event, tuple) else serializer.encode(event)
        records.append(PersistentRecord(persistence_id, sequence_nr, manifest, payload))
    assert await journal.inner.write([AtomicWrite(records)]) == [None]


async def history(system: ActorSystem, probe: TestProbe, persistence_id: str) -> None:
    """Events a (1), b (2), snapshot at 2, c (3), written by a first incarnation that stopped."""
    ref, _ = await start_log(system, probe, persistence_id)
    for item in "ab":
        probe.send(ref, Append(item))
        await probe.expect_message_type(Stored)
    probe.send(ref, Snapshot())
    await probe.expect_message_type(SaveSnapshotSuccess)
    probe.send(ref, Append("c"))
    await probe.expect_message(Stored("c", 3))
    await system.stop(ref)


async def test_recovery_offers_the_latest_snapshot_then_replays_later_events_then_completes(
    system: ActorSystem, probe: TestProbe
) -> None:
    await history(system, probe, "recovering")

    system.spawn(lambda: ItemLog("recovering", probe.ref))

    assert [await probe.receive() for _ in range(3)] == [
        Offered(2, ("a", "b")),
        Replayed("c", 3, system.dead_letters),
        Recovered(("a", "b", "c"), 3),
    ]


async def test_a_brand_new_persistence_id_still_receives_recovery_completed(
    system: ActorSystem, probe: TestProbe
) -> None:
    system.spawn(lambda: ItemLog("brand-new", probe.ref))

    assert await probe.receive() == Recovered((), 0)


async def test_replayed_events_have_no_sender_and_carry_their_own_sequence_nr(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    await write_events(journal, "replayed", Appended("a"), Appended("b"), Appended("c"))

    system.spawn(lambda: ItemLog("replayed", probe.ref))

    assert [await probe.receive() for _ in range(4)] == [
        Replayed("a", 1, system.dead_letters),
        Replayed("b", 2, system.dead_letters),
        Replayed("c", 3, system.dead_letters),
        Recovered(("a", "b", "c"), 3),
    ]


async def test_commands_arriving_during_recovery_wait_and_then_run_in_order(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    await write_events(journal, "busy", Appended("a"), Appended("b"))
    journal.hold_replays()
    sender = TestProbe(system, "sender")

    ref = system.spawn(lambda: ItemLog("busy", probe.ref))
    sender.send(ref, Get())
    await journal.wait_for_replay_calls(1)
    sender.send(ref, Append("x"))
    sender.send(ref, Get())
    await sender.expect_no_message(0.05)
    journal.release_replays()

    assert [await sender.receive() for _ in range(3)] == [
        ("a", "b"),
        Stored("x", 3),
        ("a", "b", "x"),
    ]


class PersistingOnReplay(ItemLog):
    """Wrongly persists from ``receive_recover`` for a replayed event."""

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, Appended):
            self.persist(Appended(message.item + "-again"))
        super().receive_recover(message)


async def test_persisting_during_replay_raises_and_stops_the_actor_with_on_recovery_failure(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    await write_events(journal, "eager", Appended("a"))

    ref = system.spawn(lambda: PersistingOnReplay("eager", probe.ref))
    probe.watch(ref)

    failed = await probe.expect_message_type(RecoveryFailed)
    assert type(failed.cause) is PersistenceStateError
    assert str(failed.cause) == (
        "cannot persist: persistent actor 'eager' is recovering; persist from receive_command, "
        "or after RecoveryCompleted"
    )
    assert failed.message == Appended("a")
    await probe.expect_terminated(ref)
    assert await stored_events(journal, "eager") == [(1, Appended("a"))]


class Initializing(ItemLog):
    """Persists a first event from ``RecoveryCompleted`` when it has none."""

    def receive_recover(self, message: Any) -> None:
        super().receive_recover(message)
        if message is RecoveryCompleted and not self.items:
            self.persist(Appended("initial"), self.apply)

    def apply(self, event: Appended) -> None:
        self.items.append(event.item)
        self.observer.tell(Stored(event.item, self.last_sequence_nr))


async def test_persisting_from_recovery_completed_is_allowed(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: Initializing("initializing", probe.ref))

    assert await probe.receive() == Recovered((), 0)
    assert await probe.receive() == Stored("initial", 1)
    probe.send(ref, Get())
    await probe.expect_message(("initial",))
    assert await stored_events(journal, "initializing") == [(1, Appended("initial"))]


class FailingRecovery(ItemLog):
    """Raises from ``receive_recover`` for the event ``Appended("poison")``."""

    def receive_recover(self, message: Any) -> None:
        if message == Appended("poison"):
            raise ValueError("cannot apply poison")
        super().receive_recover(message)


async def expect_recovery_failure(probe: TestProbe, ref: ActorRef) -> RecoveryFailed:
    """The actor reports the failure, then stops."""
    failed = await probe.fish_for_message(lambda message: isinstance(message, RecoveryFailed))
    assert isinstance(failed, RecoveryFailed)
    await probe.expect_terminated(ref)
    return failed


async def test_an_exception_raised_by_receive_recover_stops_the_actor_with_on_recovery_failure(
    system: ActorSystem,
    probe: TestProbe,
    journal: ControlledJournal,
    dead_letters: list[DeadLetter],
) -> None:
    await write_events(journal, "poisoned", Appended("a"), Appended("poison"), Appended("c"))

    ref = system.spawn(lambda: FailingRecovery("poisoned", probe.ref))
    probe.watch(ref)
    probe.send(ref, Get())

    failed = await expect_recovery_failure(probe, ref)
    assert type(failed.cause) is ValueError
    assert str(failed.cause) == "cannot apply poison"
    assert failed.message == Appended("poison")
    assert [letter.message for letter in dead_letters] == [Get()]


async def test_an_unregistered_type_name_in_the_journal_stops_the_actor_with_on_recovery_failure(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    await write_events(journal, "vanished", Appended("a"), ("Vanished", b"\x80"))

    ref = system.spawn(lambda: ItemLog("vanished", probe.ref))
    probe.watch(ref)

    failed = await expect_recovery_failure(probe, ref)
    assert type(failed.cause) is UnknownManifestError
    assert str(failed.cause) == (
        "unknown type name 'Vanished' (persistence_id='vanished'): register the type, or an "
        "upcaster for it, with the serializer before replaying"
    )
    assert failed.message is None


async def test_a_journal_failure_while_replaying_stops_the_actor_with_on_recovery_failure(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    error = JournalError("replay failed")
    journal.fail_replays(error)

    ref = system.spawn(lambda: ItemLog("unreadable", probe.ref))
    probe.watch(ref)

    failed = await expect_recovery_failure(probe, ref)
    assert failed.cause is error
    assert failed.message is None


async def test_a_snapshot_store_failure_while_loading_stops_the_actor_with_on_recovery_failure(
    system: ActorSystem, probe: TestProbe, snapshot_store: ControlledSnapshotStore
) -> None:
    error = SnapshotStoreError("snapshot directory unreadable")
    snapshot_store.fail_loads(error)

    ref = system.spawn(lambda: ItemLog("no-snapshots", probe.ref))
    probe.watch(ref)

    failed = await expect_recovery_failure(probe, ref)
    assert failed.cause is error
    assert failed.message is None


async def test_recovery_with_no_snapshot_replays_every_event(
    system: ActorSystem, probe: TestProbe
) -> None:
    await history(system, probe, "no-snapshot")

    system.spawn(lambda: ItemLog("no-snapshot", probe.ref, recovery=Recovery.no_snapshot()))

    assert [await probe.receive() for _ in range(4)] == [
        Replayed("a", 1, system.dead_letters),
        Replayed("b", 2, system.dead_letters),
        Replayed("c", 3, system.dead_letters),
        Recovered(("a", "b", "c"), 3),
    ]


@pytest.mark.parametrize(
    "form",
    [Recovery.to, lambda n: Recovery(to_sequence_nr=n), Recovery().with_to_sequence_nr],
    ids=["Recovery.to", "Recovery(to_sequence_nr)", "with_to_sequence_nr"],
)
@pytest.mark.parametrize(
    ("to_sequence_nr", "expected"),
    [
        (1, [("replayed", "a", 1), Recovered(("a",), 3)]),
        (2, [Offered(2, ("a", "b")), Recovered(("a", "b"), 3)]),
        (3, [Offered(2, ("a", "b")), ("replayed", "c", 3), Recovered(("a", "b", "c"), 3)]),
    ],
)
async def test_recovery_up_to_a_sequence_nr_stops_there_and_new_events_continue_after_the_highest(
    system: ActorSystem,
    probe: TestProbe,
    form: Callable[[int], Recovery],
    to_sequence_nr: int,
    expected: list[Any],
) -> None:
    """Every form of the bound also bounds the snapshot: none newer than the bound is offered."""
    await history(system, probe, "bounded")

    ref = system.spawn(lambda: ItemLog("bounded", probe.ref, recovery=form(to_sequence_nr)))

    received = [await probe.receive() for _ in expected]
    assert [
        ("replayed", m.item, m.sequence_nr) if isinstance(m, Replayed) else m for m in received
    ] == expected
    probe.send(ref, Append("d"))
    await probe.expect_message(Stored("d", 4))


async def test_recovery_none_loads_nothing_but_numbering_continues_after_the_highest(
    system: ActorSystem, probe: TestProbe
) -> None:
    await history(system, probe, "amnesiac")

    ref = system.spawn(lambda: ItemLog("amnesiac", probe.ref, recovery=Recovery.none()))

    assert await probe.receive() == Recovered((), 3)
    probe.send(ref, Append("d"))
    await probe.expect_message(Stored("d", 4))


@pytest.mark.parametrize(
    ("criteria", "offered"),
    [
        (SnapshotSelectionCriteria(max_timestamp=2000), 2),
        (SnapshotSelectionCriteria(max_timestamp=1999), 1),
        (SnapshotSelectionCriteria(max_sequence_nr=1), 1),
        (SnapshotSelectionCriteria(min_sequence_nr=3), 3),
        (SnapshotSelectionCriteria(min_timestamp=3001), None),
    ],
    ids=["max-time-inclusive", "max-time", "max-seq-inclusive", "min-seq-inclusive", "none"],
)
async def test_recovery_selects_the_youngest_snapshot_within_the_inclusive_bounds(
    system: ActorSystem,
    probe: TestProbe,
    journal: ControlledJournal,
    snapshot_store: ControlledSnapshotStore,
    criteria: SnapshotSelectionCriteria,
    offered: int | None,
) -> None:
    await write_events(journal, "bounds", Appended("a"), Appended("b"), Appended("c"))
    for sequence_nr in (1, 2, 3):
        manifest, payload = serializer.encode(Items(list("abc"[:sequence_nr])))
        metadata = SnapshotMetadata("bounds", sequence_nr, timestamp=1000 * sequence_nr)
        await snapshot_store.inner.save(metadata, manifest, payload)

    system.spawn(lambda: ItemLog("bounds", probe.ref, recovery=Recovery(criteria)))

    first = await probe.receive()
    if offered is None:
        assert first == Replayed("a", 1, system.dead_letters)
    else:
        assert first == Offered(offered, tuple("abc"[:offered]))
    assert await probe.fish_for_message(lambda m: isinstance(m, Recovered)) == Recovered(
        ("a", "b", "c"), 3
    )


async def test_a_long_replay_logs_its_progress(
    system: ActorSystem,
    probe: TestProbe,
    logs: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref, _ = await start_log(system, probe, "progress")
    for item in "abc":
        ref.tell(Append(item), probe.ref)
        await probe.expect_message(Stored(item, "abc".index(item) + 1))
    await system.stop(ref)
    monkeypatch.setattr("persistence._recovering._PROGRESS_INTERVAL", 0.0)

    await start_log(system, probe, "progress")

    progress = [entry for entry in logs if entry["event"] == "recovery_progress"]
    assert progress
    assert progress[-1]["last_sequence_nr"] == 3
    assert progress[-1]["persistence_id"] == "progress"
