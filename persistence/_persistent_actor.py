"""``PersistentActor``: the user-facing API of an event-sourced actor, in front of its engine.

A command arrives through ``receive_command``; the actor validates it and calls ``persist``. The
event is written to the journal, and only once the journal confirmed it does the handler run
(update state there, then reply). Until every handler of the current command has run, later
commands are held back internally, in order. On start and on every restart the actor recovers:
it is offered the youngest matching snapshot, then replays the later events through
``receive_recover``, then receives ``RecoveryCompleted``.

Each incarnation has an engine (:mod:`persistence._engine`: phases, persist pipeline, command
stash), which recovers first (:mod:`persistence._recovering`) and saves snapshots and deletes
beside it (:mod:`persistence._snapshotter`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ClassVar, Literal

from actorsys import Actor
from persistence._completion import Completion
from persistence._engine import (
    _PERSISTING,
    _RUNNING,
    Handler,
    _Engine,
    _Phase,
    _WriteResults,
    current_envelope,
)
from persistence._errors import PersistenceConfigError
from persistence._logging import get_logger
from persistence._messages import (
    PERSISTENCE_RESULTS,
    DeleteEventsFailure,
    DeleteSnapshotsFailure,
    SaveSnapshotFailure,
    StopAfterPending,
)
from persistence._recovering import _Recovering
from persistence._recovery import Recovery, RetentionPolicy
from persistence.snapshot._protocol import SnapshotMetadata, SnapshotSelectionCriteria

log = get_logger("persistence")


class PersistentActor(Actor):
    """An event-sourced actor: subclass it, set ``persistence_id`` and implement
    ``receive_command`` and ``receive_recover``.

    Class attributes to tune it: ``recovery`` (:class:`Recovery`), ``recovery_timeout``
    (seconds, default 30 as in Akka, None for none: a recovery during which the journal or the
    snapshot store makes no progress for that long fails with :class:`RecoveryTimedOutError`,
    through ``on_recovery_failure``; time is the actor system's clock), ``retention``
    (:class:`RetentionPolicy`, with ``snapshot_state()``), ``stash_capacity`` and
    ``stash_overflow`` (``"fail"``: the actor fails; ``"drop"``: commands beyond the capacity go to
    dead letters) for commands waiting while handlers are pending.

    A stop of an actor whose recovery is in progress cancels the recovery: the actor stops at
    once (``post_stop`` runs, watchers get ``Terminated``).
    """

    persistence_id: str
    recovery: Recovery = Recovery()
    recovery_timeout: float | None = 30.0
    retention: RetentionPolicy | None = None
    stash_capacity: ClassVar[int] = 100_000
    stash_overflow: ClassVar[Literal["fail", "drop"]] = "fail"
    owner_epoch: int | None = None
    """The fencing token every write of this incarnation carries (``AtomicWrite.owner_epoch``),
    or None for unfenced writes. Cluster sharding sets it from the shard's lease epoch; a write
    the journal refuses because a newer owner wrote the id (:class:`OwnerEpochFencedError`) is a
    write failure: the incarnation stops."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # `receive` runs persistence (results of writes, the internal stash) in front of
        # receive_command; only this package's own mixins extend it, calling super().receive.
        if not getattr(cls.receive, "__module__", "").startswith("persistence."):
            raise PersistenceConfigError(
                f"{cls.__qualname__} overrides receive(), which a PersistentActor needs for "
                "persisting: handle commands in receive_command() instead (and replayed events "
                "in receive_recover())"
            )

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        """Handle a command: validate it, then ``persist`` events (or reply with a rejection)."""
        self.unhandled(command)
        return None

    def receive_recover(self, message: Any) -> None:
        """Apply a replayed event, a :class:`SnapshotOffer`, or ``RecoveryCompleted``."""

    # ------------------------------------------------------------------ API

    def persist(
        self, event: Any, handler: Handler | None = None, *, tags: Iterable[str] | None = None
    ) -> Completion[Any]:
        """Store ``event``; once stored, call ``handler(event)``. Later commands wait until then.

        Await the result to continue after the handler ran (it returns the event).
        """
        return self.__engine.persist_one(event, handler, True, tags)

    def persist_all(
        self,
        events: Sequence[Any],
        handler: Handler | None = None,
        *,
        tags: Iterable[str] | None = None,
    ) -> Completion[Any]:
        """Store ``events`` as one atomic write; call ``handler`` for each, in order."""
        return self.__engine.persist_many(list(events), handler, True, tags)

    def persist_async(
        self, event: Any, handler: Handler | None = None, *, tags: Iterable[str] | None = None
    ) -> Completion[Any]:
        """Like ``persist``, but later commands are not held back."""
        return self.__engine.persist_one(event, handler, False, tags)

    def persist_all_async(
        self,
        events: Sequence[Any],
        handler: Handler | None = None,
        *,
        tags: Iterable[str] | None = None,
    ) -> Completion[Any]:
        """Like ``persist_all``, but later commands are not held back."""
        return self.__engine.persist_many(list(events), handler, False, tags)

    def defer(self, event: Any, handler: Handler) -> Completion[Any]:
        """Call ``handler(event)`` after all pending persist handlers; persists nothing."""
        return self.__engine.defer(event, handler, True)

    def defer_async(self, event: Any, handler: Handler) -> Completion[Any]:
        """Like ``defer``, without holding back later commands."""
        return self.__engine.defer(event, handler, False)

    def save_snapshot(self, snapshot: Any) -> Completion[SnapshotMetadata]:
        """Store ``snapshot`` at the current sequence number (reported as a message too)."""
        return self.__engine.snapshots.save_snapshot(snapshot)

    def delete_events(self, to_sequence_nr: int) -> Completion[int]:
        """Delete events up to and including ``to_sequence_nr`` (reported as a message too)."""
        return self.__engine.snapshots.delete_events(to_sequence_nr)

    def delete_snapshots(self, criteria: SnapshotSelectionCriteria) -> Completion[int]:
        """Delete the snapshots matching ``criteria`` (reported as a message too)."""
        return self.__engine.snapshots.delete_snapshots(criteria)

    @property
    def last_sequence_nr(self) -> int:
        """The sequence number of the event being handled, or of the last one handled."""
        engine = self.__dict__.get("_PersistentActor__engine")
        return engine.last_sequence_nr if engine is not None else 0

    @property
    def recovery_running(self) -> bool:
        """Whether the actor is still replaying."""
        engine = self.__dict__.get("_PersistentActor__engine")
        return engine is not None and engine.phase is _Phase.RECOVERING

    @property
    def recovery_finished(self) -> bool:
        """Whether recovery has completed (and commands are being processed)."""
        engine = self.__dict__.get("_PersistentActor__engine")
        return engine is not None and engine.phase in (_Phase.RUNNING, _Phase.PERSISTING)

    # ------------------------------------------------------------------ hooks

    def tags_for(self, event: Any) -> tuple[str, ...]:
        """Tags stored with ``event`` for ``events_by_tag`` queries (default: none)."""
        return ()

    def snapshot_state(self) -> Any:
        """The state to snapshot when a ``retention`` policy asks for one."""
        raise PersistenceConfigError(
            f"{type(self).__name__} has a retention policy but no snapshot_state(): override it "
            "to return the state to snapshot"
        )

    def on_persist_failure(self, cause: BaseException, event: Any, sequence_nr: int) -> None:
        """The journal failed to store ``event``; the actor is stopped after this returns."""
        self.__log().error(
            "persist_failed",
            sequence_nr=sequence_nr,
            event_type=type(event).__name__,
            error=repr(cause),
        )

    def on_persist_rejected(self, cause: BaseException, event: Any, sequence_nr: int) -> None:
        """``event`` was not stored (and will never be replayed); the actor goes on."""
        self.__log().warning(
            "persist_rejected",
            sequence_nr=sequence_nr,
            event_type=type(event).__name__,
            error=str(cause),
        )

    def on_recovery_failure(self, cause: BaseException, message: Any) -> None:
        """Recovery failed; the actor is stopped after this returns."""
        self.__log().error("recovery_failed", error=repr(cause), exc_info=cause)

    # ------------------------------------------------------------------ runtime

    def __log(self) -> Any:
        engine = self.__dict__.get("_PersistentActor__engine")
        return engine.log if engine is not None else log

    def _around_start(self, restart_reason: Exception | None) -> Awaitable[None] | None:
        self.__engine = _Engine(self, self.context)
        return _Recovering(self.__engine).recover(super()._around_start(restart_reason))

    def _around_restart(self, reason: Exception, message: Any) -> Awaitable[None] | None:
        engine = self.__dict__.get("_PersistentActor__engine")
        if engine is not None:
            engine.stopped()
        return super()._around_restart(reason, message)

    def _around_stop(self) -> Awaitable[None] | None:
        engine = self.__dict__.get("_PersistentActor__engine")
        if engine is not None:
            engine.stopped()
        return super()._around_stop()

    def receive(self, message: Any) -> Awaitable[None] | None:
        # __dispatch for receive_command, spelled out: the hot path of every command
        engine = self.__engine
        phase = engine.phase
        if message.__class__ is not _WriteResults:
            if phase is _RUNNING:
                if message is StopAfterPending:  # in turn: the commands before it are done
                    self.context.stop(self.context.self)
                    return None
                pending = self.receive_command(message)
                if pending is not None:
                    return engine.command_done(pending)
                if engine.held:
                    engine._unstash_if_idle()
                return None
            if phase is _PERSISTING and len(engine.held) < engine.stash_capacity:
                engine.held.append(current_envelope(self.context))  # engine.hold(), inlined
                return None
        return self.__not_running(engine, message)

    def _wrap_behavior(self, behavior: Callable[[Any], Any]) -> Callable[[Any], Any]:
        # context.become swaps the command handler; persistence stays in front of it.
        return functools.partial(self.__dispatch, behavior)

    def __dispatch(
        self, command_handler: Callable[[Any], Any], message: Any
    ) -> Awaitable[None] | None:
        engine = self.__engine
        if engine.phase is _RUNNING and message.__class__ is not _WriteResults:
            if message is StopAfterPending:
                self.context.stop(self.context.self)
                return None
            pending = command_handler(message)
            if pending is not None:
                return engine.command_done(pending)
            if engine.held:
                engine._unstash_if_idle()
            return None
        return self.__not_running(engine, message)

    @staticmethod
    def __not_running(engine: _Engine, message: Any) -> None:
        """Journal answers the actor was too busy to take at once, or a command that waits."""
        if message.__class__ is _WriteResults:
            if message.engine is engine:  # else: results for the incarnation before a restart
                engine.apply_results()
                engine._unstash_if_idle()
            return
        engine.hold()

    def unhandled(self, message: Any) -> None:
        if isinstance(message, PERSISTENCE_RESULTS):
            # Outcome reports the actor chose not to handle: successes are muted, failures are
            # logged (as Akka does), so that a failing snapshot store is never silent.
            if isinstance(message, SaveSnapshotFailure):
                self.__log().warning(
                    "snapshot_save_failed",
                    sequence_nr=message.metadata.sequence_nr,
                    error=repr(message.cause),
                )
            elif isinstance(message, DeleteEventsFailure):
                self.__log().warning(
                    "events_delete_failed",
                    to_sequence_nr=message.to_sequence_nr,
                    error=repr(message.cause),
                )
            elif isinstance(message, DeleteSnapshotsFailure):
                self.__log().warning(
                    "snapshots_delete_failed",
                    max_sequence_nr=message.max_sequence_nr,
                    error=repr(message.cause),
                )
            return
        super().unhandled(message)
