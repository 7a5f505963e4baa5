"""Snapshot saves, event and snapshot deletes, retention; each outcome reported to the actor.

Each runs in the background (shutdown waits for it); its outcome resolves the caller's
``Completion`` and is told to the actor as a message (``SaveSnapshotSuccess``, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from persistence._completion import Completion
from persistence._errors import (
    DeleteEventsOutOfRangeError,
    PersistenceConfigError,
    PersistenceError,
)
from persistence._messages import (
    DeleteEventsFailure,
    DeleteEventsSuccess,
    DeleteSnapshotsFailure,
    DeleteSnapshotsSuccess,
    SaveSnapshotFailure,
    SaveSnapshotSuccess,
)
from persistence._recovery import RetentionPolicy
from persistence.snapshot._protocol import SnapshotMetadata, SnapshotSelectionCriteria

if TYPE_CHECKING:
    from persistence._engine import _Engine

T = TypeVar("T")


class _Snapshotter:
    """Saves snapshots and deletes events and snapshots for one engine, in the background."""

    __slots__ = ("engine", "retention")

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        actor = engine.actor
        self.retention = actor.retention
        """The retention policy in force (None without a snapshot store to apply it to)."""
        if self.retention is not None and engine.extension.snapshot_store is None:
            self.retention = None
            if engine.extension.first_warning(("retention_without_snapshot_store", type(actor))):
                engine.log.warning(
                    "retention_without_snapshot_store",
                    actor_class=type(actor).__qualname__,
                    hint="no snapshots are taken: pass snapshot_store= to Persistence(...)",
                )

    def maybe_snapshot(self, sequence_nr: int) -> None:
        """Save a snapshot if the retention policy asks for one at ``sequence_nr``."""
        retention = self.retention
        if retention is not None and retention.snapshot_due(sequence_nr):
            self.save_snapshot(self.engine.actor.snapshot_state(), retention)

    def save_snapshot(
        self, snapshot: Any, retention: RetentionPolicy | None = None
    ) -> Completion[SnapshotMetadata]:
        engine = self.engine
        engine.guard("save a snapshot")
        metadata = SnapshotMetadata(engine.persistence_id, engine.last_sequence_nr)
        store = engine.extension.snapshot_store
        try:
            if store is None:
                raise PersistenceConfigError(
                    "no snapshot store configured: pass snapshot_store= to Persistence(...)"
                )
            manifest, payload = engine.serializer.encode(snapshot)
        except PersistenceError as error:
            return self._refused(SaveSnapshotFailure(metadata, error), error)

        async def save() -> SnapshotMetadata:
            stored = await store.save(metadata, manifest, payload)
            if retention is not None:
                await self._apply_retention(stored, retention)
            return stored

        return self._run_reported(
            save(), SaveSnapshotSuccess, lambda error: SaveSnapshotFailure(metadata, error)
        )

    async def _apply_retention(self, stored: SnapshotMetadata, retention: RetentionPolicy) -> None:
        engine = self.engine
        oldest_kept = retention.oldest_kept(stored.sequence_nr)
        store = engine.extension.snapshot_store
        assert store is not None
        if oldest_kept > 1:
            await store.delete_matching(
                engine.persistence_id, SnapshotSelectionCriteria(max_sequence_nr=oldest_kept - 1)
            )
        if retention.delete_events_on_snapshot and oldest_kept > 0:
            await engine.journal.delete_to(engine.persistence_id, oldest_kept)

    def delete_events(self, to_sequence_nr: int) -> Completion[int]:
        engine = self.engine
        engine.guard("delete events")
        if to_sequence_nr > engine.last_sequence_nr:
            error = DeleteEventsOutOfRangeError(
                engine.persistence_id, to_sequence_nr, engine.last_sequence_nr
            )
            return self._refused(DeleteEventsFailure(to_sequence_nr, error), error)

        async def delete() -> int:
            await engine.journal.delete_to(engine.persistence_id, to_sequence_nr)
            return to_sequence_nr

        return self._run_reported(
            delete(), DeleteEventsSuccess, lambda error: DeleteEventsFailure(to_sequence_nr, error)
        )

    def delete_snapshots(self, criteria: SnapshotSelectionCriteria) -> Completion[int]:
        engine = self.engine
        engine.guard("delete snapshots")
        store = engine.extension.snapshot_store
        bound = criteria.max_sequence_nr
        if store is None:
            error = PersistenceConfigError("no snapshot store configured")
            return self._refused(DeleteSnapshotsFailure(bound, error), error)

        async def delete() -> int:
            await store.delete_matching(engine.persistence_id, criteria)
            return bound

        return self._run_reported(
            delete(), DeleteSnapshotsSuccess, lambda error: DeleteSnapshotsFailure(bound, error)
        )

    def _run_reported(
        self,
        work: Coroutine[Any, Any, T],
        success: Callable[[T], Any],
        failure: Callable[[BaseException], Any],
    ) -> Completion[T]:
        """Run ``work`` in the background; report its outcome to the awaitable and the actor."""
        completion: Completion[T] = Completion()

        def done(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                return  # abandoned by a bounded close (or the loop's teardown): nobody is left
            error = task.exception()
            if error is not None:
                self._report(completion, failure(error), error)
            else:
                value = task.result()
                self._report(completion, success(value), None, value)

        self.engine.extension.spawn_task(work, (self.engine,), done)
        return completion

    def _refused(self, message: Any, error: BaseException) -> Completion[Any]:
        completion: Completion[Any] = Completion()
        self._report(completion, message, error)
        return completion

    def _report(
        self,
        completion: Completion[Any],
        message: Any,
        error: BaseException | None,
        value: Any = None,
    ) -> None:
        if error is not None:
            completion.fail(error)
        else:
            completion.resolve(value)
        ref = self.engine.ref
        if ref.is_alive:
            ref.tell(message)
