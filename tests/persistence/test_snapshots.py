"""Snapshots: outcome reported both ways, overwrite, fallback on unreadable ones, retention."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import pytest

from actorsys import ActorSystem
from actorsys.testing import TestProbe
from persistence import (
    Completion,
    DeleteEventsSuccess,
    Persistence,
    PersistenceConfigError,
    PersistentActor,
    RecoveryError,
    RetentionPolicy,
    SaveSnapshotFailure,
    SaveSnapshotSuccess,
    SerializationError,
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStoreError,
)
from persistence.journal import InMemoryJournal
from tests.persistence._actors import (
    OUTCOMES,
    Append,
    Appended,
    DeleteTo,
    Get,
    Holder,
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


@dataclass(frozen=True)
class SaveAwaiting:
    """Save ``snapshot`` in an async handler; reply what the await returned or raised."""

    snapshot: Any


class SnapshottingLog(ItemLog):
    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, SaveAwaiting):
            return self.save(command.snapshot)
        return super().receive_command(command)

    async def save(self, snapshot: Any) -> None:
        sender = self.context.sender
        try:
            outcome: Any = await self.save_snapshot(snapshot)
        except Exception as error:  # the test checks exactly which
            outcome = error
        sender.tell(("awaited", outcome), self.context.self)


async def append(probe: TestProbe, ref: Any, *items: str) -> None:
    for item in items:
        probe.send(ref, Append(item))
        await probe.expect_message_type(Stored)


async def test_save_snapshot_reports_success_as_a_message_and_through_the_awaitable(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: SnapshottingLog("snapper", probe.ref))
    await probe.expect_message_type(Recovered)
    await append(probe, ref, "a", "b")

    probe.send(ref, SaveAwaiting(Items(["a", "b"])))

    replies = [await probe.receive() for _ in range(2)]
    [(_, metadata)] = [reply for reply in replies if isinstance(reply, tuple)]
    assert SaveSnapshotSuccess(metadata) in replies
    assert (metadata.persistence_id, metadata.sequence_nr) == ("snapper", 2)
    assert metadata.timestamp > 0


@pytest.mark.parametrize("reason", ["store-fails", "unserializable"])
async def test_save_snapshot_reports_failure_as_a_message_and_through_the_awaitable(
    system: ActorSystem, probe: TestProbe, snapshot_store: ControlledSnapshotStore, reason: str
) -> None:
    ref = system.spawn(lambda: SnapshottingLog("snapper", probe.ref))
    await probe.expect_message_type(Recovered)
    await append(probe, ref, "a")
    snapshot: Any = Items(["a"])
    if reason == "store-fails":
        snapshot_store.fail_saves(SnapshotStoreError("disk full"))
    else:
        snapshot = Holder(object())

    probe.send(ref, SaveAwaiting(snapshot))

    replies = [await probe.receive() for _ in range(2)]
    [(_, error)] = [reply for reply in replies if isinstance(reply, tuple)]
    assert SaveSnapshotFailure(SnapshotMetadata("snapper", 1), error) in replies
    assert type(error) is (SnapshotStoreError if reason == "store-fails" else SerializationError)
    if reason == "store-fails":
        assert str(error) == "disk full"


async def test_save_snapshot_without_a_snapshot_store_reports_a_configuration_failure() -> None:
    async with ActorSystem(
        "no-store", extensions=[Persistence(InMemoryJournal(), serializer=serializer)]
    ) as system:
        probe = TestProbe(system)
        ref = system.spawn(lambda: SnapshottingLog("snapper", probe.ref))
        await probe.expect_message_type(Recovered)

        probe.send(ref, SaveAwaiting(Items([])))

        replies = [await probe.receive() for _ in range(2)]
        [(_, error)] = [reply for reply in replies if isinstance(reply, tuple)]
        assert SaveSnapshotFailure(SnapshotMetadata("snapper", 0), error) in replies
        assert type(error) is PersistenceConfigError
        assert str(error) == (
            "no snapshot store configured: pass snapshot_store= to Persistence(...)"
        )


async def test_saving_a_snapshot_again_at_the_same_sequence_nr_overwrites_it(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: SnapshottingLog("overwritten", probe.ref))
    await probe.expect_message_type(Recovered)
    await append(probe, ref, "a")
    for snapshot in (Items(["first"]), Items(["second"])):
        probe.send(ref, SaveAwaiting(snapshot))
        await probe.fish_for_message(lambda m: isinstance(m, SaveSnapshotSuccess))
    await system.stop(ref)

    system.spawn(lambda: ItemLog("overwritten", probe.ref))

    assert await probe.fish_for_message(lambda m: isinstance(m, Offered)) == Offered(1, ("second",))


UNREADABLE = [("Bogus", b"\x00"), ("Items", b"\xc1"), ("Items", b"\x81\xa4what\x01")]
"""An unknown type name, a payload that is not msgpack, a payload of the wrong shape."""


async def history(
    system: ActorSystem, probe: TestProbe, persistence_id: str, *, snapshot_at: int | None
) -> None:
    """Events a, b, c, d (1..4), a readable snapshot at ``snapshot_at``, then stop."""
    ref, _ = await start_log(system, probe, persistence_id)
    for sequence_nr, item in enumerate("abcd", start=1):
        await append(probe, ref, item)
        if sequence_nr == snapshot_at:
            probe.send(ref, Snapshot())
            await probe.expect_message_type(SaveSnapshotSuccess)
    await system.stop(ref)


@pytest.mark.parametrize("unreadable", UNREADABLE, ids=["unknown-type", "not-msgpack", "shape"])
async def test_an_unreadable_snapshot_falls_back_to_an_older_one(
    system: ActorSystem,
    probe: TestProbe,
    snapshot_store: ControlledSnapshotStore,
    unreadable: tuple[str, bytes],
    logs: list[MutableMapping[str, Any]],
) -> None:
    await history(system, probe, "fallback", snapshot_at=2)
    await snapshot_store.inner.save(SnapshotMetadata("fallback", 3), *unreadable)

    system.spawn(lambda: ItemLog("fallback", probe.ref))

    assert [await probe.receive() for _ in range(4)] == [
        Offered(2, ("a", "b")),
        Replayed("c", 3, system.dead_letters),
        Replayed("d", 4, system.dead_letters),
        Recovered(("a", "b", "c", "d"), 4),
    ]
    [warning] = [entry for entry in logs if entry["event"] == "snapshot_unreadable"]
    assert warning["sequence_nr"] == 3


async def test_an_unreadable_snapshot_without_an_older_one_falls_back_to_a_full_replay(
    system: ActorSystem, probe: TestProbe, snapshot_store: ControlledSnapshotStore
) -> None:
    await history(system, probe, "full-replay", snapshot_at=None)
    await snapshot_store.inner.save(SnapshotMetadata("full-replay", 3), "Bogus", b"\x00")

    system.spawn(lambda: ItemLog("full-replay", probe.ref))

    received = [await probe.receive() for _ in range(5)]
    assert [m.item for m in received[:4] if isinstance(m, Replayed)] == ["a", "b", "c", "d"]
    assert received[4] == Recovered(("a", "b", "c", "d"), 4)


@pytest.mark.parametrize(
    ("deleted_to", "message"),
    [
        (3, "events from sequence_nr=1 to 3 were deleted"),
        (4, "events from sequence_nr=1 on were deleted"),
    ],
)
async def test_an_unreadable_snapshot_whose_events_were_deleted_fails_recovery(
    system: ActorSystem,
    probe: TestProbe,
    snapshot_store: ControlledSnapshotStore,
    deleted_to: int,
    message: str,
) -> None:
    ref, _ = await start_log(system, probe, "lost")
    await append(probe, ref, "a", "b", "c", "d")
    probe.send(ref, DeleteTo(deleted_to))
    await probe.expect_message(DeleteEventsSuccess(deleted_to))
    await system.stop(ref)
    await snapshot_store.inner.save(SnapshotMetadata("lost", deleted_to), "Bogus", b"\x00")

    ref = system.spawn(lambda: ItemLog("lost", probe.ref))
    probe.watch(ref)

    failed = await probe.expect_message_type(RecoveryFailed)
    assert type(failed.cause) is RecoveryError
    assert str(failed.cause) == (
        f"cannot recover persistence_id='lost': the snapshot could not be read and {message}; "
        "restore the snapshot or the events"
    )
    await probe.expect_terminated(ref)


class RetainingLog(ItemLog):
    """Snapshots every 2 events, keeps 2 snapshots (and deletes covered events if asked)."""

    def snapshot_state(self) -> Items:
        return Items(list(self.items))


async def test_a_retention_policy_snapshots_every_n_events_and_keeps_the_last_k(
    system: ActorSystem,
    probe: TestProbe,
    journal: ControlledJournal,
    snapshot_store: ControlledSnapshotStore,
) -> None:
    class Retaining(RetainingLog):
        retention = RetentionPolicy.snapshot_every_n(2, keep=2)

    ref = system.spawn(lambda: Retaining("retained", probe.ref))
    await probe.expect_message_type(Recovered)

    for item in "abcdef":
        probe.send(ref, Append(item))
    saved = [
        await probe.fish_for_message(lambda m: isinstance(m, SaveSnapshotSuccess)) for _ in range(3)
    ]

    assert sorted(s.metadata.sequence_nr for s in saved) == [2, 4, 6]
    assert await snapshot_store.sequence_nrs("retained") == [4, 6]
    assert [n for n, _ in await stored_events(journal, "retained")] == [1, 2, 3, 4, 5, 6]


async def test_a_retention_policy_that_deletes_events_keeps_those_after_the_oldest_kept_snapshot(
    system: ActorSystem,
    probe: TestProbe,
    journal: ControlledJournal,
    snapshot_store: ControlledSnapshotStore,
) -> None:
    class Retaining(RetainingLog):
        retention = RetentionPolicy.snapshot_every_n(2, keep=2).with_delete_events_on_snapshot()

    ref = system.spawn(lambda: Retaining("pruned", probe.ref))
    await probe.expect_message_type(Recovered)

    for item in "abcdef":
        probe.send(ref, Append(item))
    for _ in range(3):
        await probe.fish_for_message(lambda m: isinstance(m, SaveSnapshotSuccess))
    await system.stop(ref)

    assert await snapshot_store.sequence_nrs("pruned") == [4, 6]
    assert await stored_events(journal, "pruned") == [(5, Appended("e")), (6, Appended("f"))]
    assert await journal.highest_sequence_nr("pruned") == 6
    system.spawn(lambda: Retaining("pruned", probe.ref))
    assert [await probe.receive() for _ in range(2)] == [
        Offered(6, tuple("abcdef")),
        Recovered(tuple("abcdef"), 6),
    ]


@dataclass(frozen=True)
class Awaiting:
    """Run ``operation(actor)`` in an async handler; reply ``("awaited", outcome or error)``."""

    operation: Callable[[PersistentActor], Completion[Any]]


class Careless(ItemLog):
    """Runs the operations it is told to and handles none of their outcome reports."""

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, Awaiting):
            return self.run(command.operation)
        if isinstance(command, OUTCOMES):
            return PersistentActor.receive_command(self, command)  # unhandled
        return super().receive_command(command)

    async def run(self, operation: Callable[[PersistentActor], Completion[Any]]) -> None:
        sender = self.context.sender
        try:
            outcome: Any = await operation(self)
        except Exception as error:  # the test checks exactly which
            outcome = error
        sender.tell(("awaited", outcome), self.context.self)


@pytest.mark.parametrize(
    ("event", "operation", "fields"),
    [
        ("snapshot_save_failed", lambda a: a.save_snapshot(Items(["a"])), {"sequence_nr": 1}),
        ("events_delete_failed", lambda a: a.delete_events(1), {"to_sequence_nr": 1}),
        (
            "snapshots_delete_failed",
            lambda a: a.delete_snapshots(SnapshotSelectionCriteria(max_sequence_nr=1)),
            {"max_sequence_nr": 1},
        ),
    ],
    ids=["save-snapshot", "delete-events", "delete-snapshots"],
)
async def test_an_unhandled_failure_report_is_logged_as_a_warning(
    system: ActorSystem,
    probe: TestProbe,
    journal: ControlledJournal,
    snapshot_store: ControlledSnapshotStore,
    logs: list[MutableMapping[str, Any]],
    event: str,
    operation: Callable[[PersistentActor], Completion[Any]],
    fields: dict[str, int],
) -> None:
    ref = system.spawn(lambda: Careless("careless", probe.ref))
    await probe.expect_message_type(Recovered)
    await append(probe, ref, "a")
    cause = SnapshotStoreError("disk full")
    snapshot_store.fail_saves(cause)
    snapshot_store.fail_deletes(cause)
    journal.fail_deletes(cause)

    probe.send(ref, Awaiting(operation))
    assert await probe.receive() == ("awaited", cause)
    probe.send(ref, Get())  # handled after the failure report, which was told first
    await probe.expect_message(("a",))

    assert [entry for entry in logs if entry["event"] == event] == [
        {
            "event": event,
            "log_level": "warning",
            "persistence_id": "careless",
            "actor_path": ref.path,
            "error": "SnapshotStoreError('disk full')",
            **fields,
        }
    ]


async def test_a_handled_failure_report_is_not_logged(
    system: ActorSystem,
    probe: TestProbe,
    snapshot_store: ControlledSnapshotStore,
    logs: list[MutableMapping[str, Any]],
) -> None:
    ref = system.spawn(lambda: SnapshottingLog("careful", probe.ref))
    await probe.expect_message_type(Recovered)
    snapshot_store.fail_saves(SnapshotStoreError("disk full"))

    probe.send(ref, Snapshot())

    await probe.expect_message_type(SaveSnapshotFailure)
    assert [entry for entry in logs if entry["log_level"] == "warning"] == []


async def test_a_retention_policy_without_a_snapshot_store_warns_once_and_takes_no_snapshots(
    logs: list[MutableMapping[str, Any]],
) -> None:
    class Retaining(RetainingLog):
        retention = RetentionPolicy.snapshot_every_n(1)

    async with ActorSystem(
        "no-store", extensions=[Persistence(InMemoryJournal(), serializer=serializer)]
    ) as system:
        probe = TestProbe(system)
        first = system.spawn(lambda: Retaining("first", probe.ref))
        await probe.expect_message_type(Recovered)
        second = system.spawn(lambda: Retaining("second", probe.ref))
        await probe.expect_message_type(Recovered)
        for ref in (first, second):
            await append(probe, ref, "a", "b")
        probe.send(first, Get())
        await probe.expect_message(("a", "b"))  # no snapshot report arrived in between

    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert warnings == [
        {
            "event": "retention_without_snapshot_store",
            "log_level": "warning",
            "persistence_id": "first",
            "actor_path": first.path,
            "actor_class": Retaining.__qualname__,
            "hint": "no snapshots are taken: pass snapshot_store= to Persistence(...)",
        }
    ]
