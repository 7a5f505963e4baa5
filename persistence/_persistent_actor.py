"""``PersistentActor``: an actor whose state is derived from the events it persisted.

A command arrives through ``receive_command``; the actor validates it and calls ``persist``. The
event is written to the journal, and only once the journal confirmed it does the handler run
(update state there, then reply). Until every handler of the current command has run, later
commands are stashed internally, in order. On start and on every restart the actor recovers:
it is offered the youngest matching snapshot, then replays the later events through
``receive_recover``, then receives ``RecoveryCompleted``.

Phases (one guard each: "cannot X: the actor is Y")::

    NOT_STARTED -> RECOVERING -> RUNNING <-> PERSISTING
                        \\            \\          /
                         +------------> STOPPED <+   (recovery or write failure)
"""

from __future__ import annotations

import asyncio
import enum
import functools
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal, TypeVar

from actorsys import Actor, ActorContext, Cancellable, Clock, runtime
from persistence._completion import Completion
from persistence._errors import (
    DeleteEventsOutOfRangeError,
    EventRejectedError,
    JournalError,
    PersistenceConfigError,
    PersistenceError,
    PersistenceStateError,
    RecoveryError,
    RecoveryTimedOutError,
    SerializationError,
    StashOverflowError,
)
from persistence._extension import Persistence, WriteOutcome
from persistence._logging import get_logger
from persistence._messages import (
    PERSISTENCE_RESULTS,
    DeleteEventsFailure,
    DeleteEventsSuccess,
    DeleteSnapshotsFailure,
    DeleteSnapshotsSuccess,
    RecoveryCompleted,
    SaveSnapshotFailure,
    SaveSnapshotSuccess,
    SnapshotOffer,
)
from persistence._recovery import Recovery, RetentionPolicy
from persistence.journal._protocol import AtomicWrite, PersistentRecord
from persistence.snapshot._protocol import SnapshotMetadata, SnapshotSelectionCriteria

log = get_logger("persistence")

T = TypeVar("T")

Handler = Callable[[Any], Any]


_PROGRESS_INTERVAL = 1.0
"""Seconds between two ``recovery_progress`` log events during a long replay."""


class _Phase(enum.Enum):
    NOT_STARTED = "not started"
    RECOVERING = "recovering"
    RUNNING = "running"
    PERSISTING = "persisting"
    STOPPED = "stopped"


class _Outcome(enum.Enum):
    STORED = 0
    REJECTED = 1
    FAILED = 2


class _Entry:
    """One event (or one deferred handler) waiting for its handler to run."""

    __slots__ = ("completion", "envelope", "event", "handler", "last", "sequence_nr", "stashing")

    def __init__(
        self,
        event: Any,
        handler: Handler | None,
        sequence_nr: int,
        stashing: bool,
        completion: Completion[Any],
        *,
        last: bool,
        envelope: tuple[Any, Any],
    ) -> None:
        self.event = event
        self.handler = handler
        self.sequence_nr = sequence_nr
        self.stashing = stashing
        self.completion = completion
        self.last = last
        self.envelope = envelope
        """The command being handled when the event was persisted (its sender is the
        handler's sender, as in Akka)."""


class _Rejected:
    """An atomic write refused before writing (its events could not be serialized)."""

    __slots__ = ("cause", "count")

    def __init__(self, cause: BaseException, count: int) -> None:
        self.cause = cause
        self.count = count


_Outcomes = list[tuple[_Outcome, BaseException | None, int]]


class _InFlight:
    """One batch of atomic writes handed to the journal, until its answer is applied."""

    __slots__ = ("envelope", "items", "outcome")

    def __init__(self, items: list[AtomicWrite | _Rejected], envelope: object) -> None:
        self.items = items
        self.envelope = envelope
        self.outcome: WriteOutcome | None = None


class _WriteResults:
    """Told by the engine to its own actor so handlers run in the actor's turn."""

    __slots__ = ("engine",)

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine


def _now_ms() -> int:
    return int(time.time() * 1000)


class _RecoveryTimer:
    """Akka's recovery timeout: cancels a recovery that made no progress for ``timeout`` seconds.

    The engine marks progress (each step, each page of events) by setting ``active_at``; when the
    timer falls due it sleeps again if there was progress meanwhile, so a long but live replay is
    never cut short and nothing is rescheduled per page.
    """

    __slots__ = ("active_at", "clock", "fired", "handle", "task", "timeout", "waiting_for")

    def __init__(self, clock: Clock, timeout: float, task: asyncio.Task[Any]) -> None:
        self.clock = clock
        self.timeout = timeout
        self.task = task
        self.fired = False
        self.waiting_for = "writes in flight to settle"
        self.active_at = clock.time()
        self.handle: Cancellable = clock.call_later(timeout, self._check)

    def progress(self, waiting_for: str) -> None:
        self.waiting_for = waiting_for
        self.active_at = self.clock.time()

    def _check(self) -> None:
        now = self.clock.time()
        due = self.active_at + self.timeout
        if now < due:
            self.handle = self.clock.call_later(due - now, self._check)
            return
        self.fired = True
        self.task.cancel()

    def cancel(self) -> None:
        self.handle.cancel()

    def claims(self) -> bool:
        """Whether the recovery was cancelled by this timer alone (a stop also cancels it)."""
        return self.fired and self.task.uncancel() == 0


class _Engine:
    """The persistence runtime of one persistent actor incarnation."""

    def __init__(self, actor: PersistentActor, context: ActorContext) -> None:
        persistence_id = getattr(actor, "persistence_id", None)
        if not isinstance(persistence_id, str) or not persistence_id:
            raise PersistenceConfigError(
                f"{type(actor).__name__} has no persistence_id: set it to a non-empty string "
                "identifying the entity, e.g. self.persistence_id = f'client-{client_id}'"
            )
        self.persistence_id = persistence_id
        self.actor = actor
        self.context = context
        self.extension = Persistence.of(context.system)
        self.journal = self.extension.journal
        self.serializer = self.extension.serializer
        self.loop = runtime.event_loop(context.system)
        self.clock = context.system.clock
        self.writer_id = uuid.uuid4().hex
        self.phase = _Phase.NOT_STARTED
        self.sequence_nr = 0
        """The highest sequence number assigned."""
        self.last_sequence_nr = 0
        """What the actor sees: the event being handled, or the last one handled."""
        self.pending: deque[_Entry] = deque()
        self.items: list[AtomicWrite | _Rejected] = []
        self.in_flight: deque[_InFlight] = deque()
        self.batch_envelope: object = None
        self.flush_requested = False
        self.stashing_pending = 0
        self.results: deque[_Outcomes] = deque()
        """Journal answers whose handlers have not run yet, in write order."""
        self.awaiting: object = None
        """The envelope of the async command handler being awaited, if any."""
        self.failure: Exception | None = None
        """The error of a handler that raised while an async command awaited."""
        self.stash: deque[Any] = deque()
        self.recovering: Any = None
        """The message ``receive_recover`` is handling (passed to ``on_recovery_failure``)."""
        timeout = actor.recovery_timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise PersistenceConfigError(
                f"{type(actor).__name__}.recovery_timeout must be a positive number of seconds "
                f"or None (no timeout), got {timeout!r}"
            )
        self.recovery_timeout: float | None = timeout
        self.timer: _RecoveryTimer | None = None
        self.log = log.bind(persistence_id=persistence_id, actor_path=context.path)
        self.retention = actor.retention
        """The retention policy in force (None without a snapshot store to apply it to)."""
        if self.retention is not None and self.extension.snapshot_store is None:
            self.retention = None
            if self.extension.first_warning(("retention_without_snapshot_store", type(actor))):
                self.log.warning(
                    "retention_without_snapshot_store",
                    actor_class=type(actor).__qualname__,
                    hint="no snapshots are taken: pass snapshot_store= to Persistence(...)",
                )

    # ------------------------------------------------------------------ guards

    def guard(self, action: str) -> None:
        phase = self.phase
        if phase is _Phase.RUNNING or phase is _Phase.PERSISTING:
            return
        hint = {
            _Phase.RECOVERING: "; persist from receive_command, or after RecoveryCompleted",
            _Phase.NOT_STARTED: "; it starts when spawned",
            _Phase.STOPPED: "",
        }[phase]
        raise PersistenceStateError(
            f"cannot {action}: persistent actor {self.persistence_id!r} is {phase.value}{hint}"
        )

    # ------------------------------------------------------------------ recovery

    async def recover(self, before: Awaitable[None] | None) -> None:
        """Recover, then let the commands that arrived meanwhile in.

        A stop cancels a recovery in progress (the actor stops at once); so does the recovery
        timeout, which is reported to ``on_recovery_failure`` as :class:`RecoveryTimedOutError`.
        """
        if before is not None:
            await before
        if runtime.is_stopping(self.context):
            return  # stopped before its recovery began (a later stop cancels it, see the cell)
        self.phase = _Phase.RECOVERING
        self.extension.claim(self.persistence_id, self.context.ref)
        recovery = self.actor.recovery
        task = asyncio.current_task()
        if self.recovery_timeout is not None and task is not None:
            self.timer = _RecoveryTimer(self.clock, self.recovery_timeout, task)
        try:
            await self.extension.writes_settled()
            self._progress("the highest sequence number")
            highest = await self.journal.highest_sequence_nr(self.persistence_id)
            last = 0
            if not recovery.loads_nothing:
                self._progress("a snapshot")
                offer, fell_back = await self._load_snapshot(recovery.snapshot_criteria)
                if offer is not None:
                    last = self.last_sequence_nr = offer.metadata.sequence_nr
                    self._recover_with(offer)
                self._progress("events")
                last = await self._replay(last + 1, recovery, fell_back, highest, last)
            self.sequence_nr = self.last_sequence_nr = max(highest, last)
            self.phase = _Phase.RUNNING
            self._recover_with(RecoveryCompleted)
        except asyncio.CancelledError:
            if self.timer is None or not self.timer.claims():
                raise  # stopped while recovering
            self._recovery_failed(self._timed_out(), None)
            return
        except Exception as error:
            cause: Exception = error
            if self.timer is not None and self.timer.claims():
                cause = self._timed_out()  # the store turned the timer's cancellation into this
            self._recovery_failed(cause, self.recovering)
            return
        finally:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        self.log.debug("recovery_completed", last_sequence_nr=self.last_sequence_nr)
        self._unstash_if_idle()

    def _progress(self, waiting_for: str) -> None:
        if self.timer is not None:
            self.timer.progress(waiting_for)

    def _timed_out(self) -> RecoveryTimedOutError:
        assert self.timer is not None
        waiting_for = self.timer.waiting_for
        if waiting_for == "events":
            waiting_for = f"events after sequence_nr={self.last_sequence_nr}"
        return RecoveryTimedOutError(
            f"recovery of persistence_id={self.persistence_id!r} timed out: no progress within "
            f"{self.timer.timeout:g} s while waiting for {waiting_for}; check the journal and "
            "the snapshot store, or raise recovery_timeout"
        )

    async def _load_snapshot(
        self, criteria: SnapshotSelectionCriteria
    ) -> tuple[SnapshotOffer | None, bool]:
        """The youngest readable matching snapshot, and whether a younger one was unreadable."""
        store = self.extension.snapshot_store
        fell_back = False
        if store is None or criteria.max_sequence_nr <= 0:
            return None, fell_back
        while True:
            stored = await store.load(self.persistence_id, criteria)
            if stored is None:
                return None, fell_back
            try:
                snapshot = self.serializer.decode_one(
                    stored.manifest, stored.payload, self.persistence_id
                )
            except SerializationError as error:
                self.log.warning(
                    "snapshot_unreadable",
                    sequence_nr=stored.metadata.sequence_nr,
                    error=str(error),
                )
                fell_back = True
                criteria = replace(criteria, max_sequence_nr=stored.metadata.sequence_nr - 1)
                continue
            return SnapshotOffer(stored.metadata, snapshot), fell_back

    async def _replay(
        self, from_sequence_nr: int, recovery: Recovery, fell_back: bool, highest: int, last: int
    ) -> int:
        """Replay events into ``receive_recover``; returns the last sequence number seen.

        After falling back from an unreadable snapshot, a gap at the start of the replay means
        the events the snapshot covered were deleted: that is an error, never a silent skip.
        """
        receive_recover = self.actor.receive_recover
        decode = self.serializer.decode
        pid = self.persistence_id
        expected = from_sequence_nr
        clock = self.clock.time
        timer = self.timer
        report_at = clock() + _PROGRESS_INTERVAL
        event: Any = None
        try:
            async for page in self.journal.replay(
                pid, from_sequence_nr, recovery.to_sequence_nr, recovery.replay_max
            ):
                if fell_back and page[0].sequence_nr != expected:
                    self._missing_events(expected, page[0].sequence_nr)
                fell_back = False
                for record in page:
                    self.last_sequence_nr = record.sequence_nr
                    for event in decode(record.manifest, record.payload, pid, record.sequence_nr):
                        receive_recover(event)
                    event = None
                expected = page[-1].sequence_nr + 1
                now = clock()
                if timer is not None:
                    timer.active_at = now  # the recovery timeout counts from here
                if now >= report_at:  # long replays show progress, once a second
                    report_at = now + _PROGRESS_INTERVAL
                    self.log.info("recovery_progress", last_sequence_nr=self.last_sequence_nr)
        except Exception:
            self.recovering = event  # what on_recovery_failure is told was being replayed
            raise
        if fell_back and min(highest, recovery.to_sequence_nr) >= expected:
            self._missing_events(expected, None)
        return expected - 1 if expected > from_sequence_nr else last

    def _missing_events(self, expected: int, found: int | None) -> None:
        raise RecoveryError(
            f"cannot recover persistence_id={self.persistence_id!r}: the snapshot could not be "
            f"read and events from sequence_nr={expected} "
            + (f"to {found - 1} " if found is not None else "on ")
            + "were deleted; restore the snapshot or the events"
        )

    def _recover_with(self, message: Any) -> None:
        self.recovering = message
        result: object = self.actor.receive_recover(message)  # type: ignore[func-returns-value]
        if result is not None:
            raise PersistenceStateError(
                "receive_recover must be a plain function (it returned an awaitable): "
                "recovery handlers only update state"
            )
        self.recovering = None

    def _recovery_failed(self, error: Exception, message: Any) -> None:
        self.phase = _Phase.STOPPED
        try:
            self.actor.on_recovery_failure(error, message)
        finally:
            runtime.stop_for(self.context, error)

    # ------------------------------------------------------------------ persisting

    def persist(
        self,
        events: Sequence[Any],
        handler: Handler | None,
        stashing: bool,
        tags: Iterable[str] | None,
    ) -> Completion[Any]:
        self.guard("persist")
        completion: Completion[Any] = Completion(self.loop)
        count = len(events)
        if count == 0:
            completion.resolve(None)
            return completion
        pid = self.persistence_id
        timestamp = _now_ms()
        encode = self.serializer.encode
        tags_for = self.actor.tags_for
        records: list[PersistentRecord] = []
        cause: BaseException | None = None
        pending = self.pending
        envelope = runtime.current_envelope(self.context)
        for index, event in enumerate(events):
            self.sequence_nr += 1
            if cause is None:
                try:
                    manifest, payload = encode(event)
                except SerializationError as error:
                    cause = error
                else:
                    records.append(
                        PersistentRecord(
                            pid,
                            self.sequence_nr,
                            manifest,
                            payload,
                            self.writer_id,
                            timestamp,
                            tuple(tags) if tags is not None else tags_for(event),
                        )
                    )
            pending.append(
                _Entry(
                    event,
                    handler,
                    self.sequence_nr,
                    stashing,
                    completion,
                    last=index == count - 1,
                    envelope=envelope,
                )
            )
        self.items.append(_Rejected(cause, count) if cause is not None else AtomicWrite(records))
        if stashing:
            self.stashing_pending += count
            self.phase = _Phase.PERSISTING
        self.batch_envelope = envelope
        if not self.flush_requested:
            self.flush_requested = True
            self.extension.request_flush(self)
        return completion

    def defer(self, event: Any, handler: Handler, stashing: bool) -> Completion[Any]:
        self.guard("defer")
        completion: Completion[Any] = Completion(self.loop)
        if not self.pending:
            handler(event)
            completion.resolve(event)
            return completion
        if stashing:
            self.stashing_pending += 1
            self.phase = _Phase.PERSISTING
        self.pending.append(
            _Entry(
                event,
                handler,
                0,
                stashing,
                completion,
                last=True,
                envelope=runtime.current_envelope(self.context),
            )
        )
        return completion

    def take_writes(self) -> tuple[_InFlight, list[AtomicWrite]]:
        """Hand the pending atomic writes to the extension's batch; the returned token goes
        back with the journal's answer to :meth:`writes_done`."""
        items, self.items = self.items, []
        self.flush_requested = False
        batch = _InFlight(items, self.batch_envelope)
        self.in_flight.append(batch)
        return batch, [item for item in items if not isinstance(item, _Rejected)]

    def writes_done(self, batch: _InFlight, outcome: WriteOutcome) -> None:
        """Called when the journal answered ``batch``; runs handlers in the actor's turn.

        Answers are taken in the order the writes were handed over, whatever order the journal
        answered in, so every handler learns its own write's outcome, in call order.
        """
        batch.outcome = outcome
        in_flight = self.in_flight
        if in_flight[0] is not batch:
            return  # an earlier write is unanswered: this one waits for it
        direct = False
        while in_flight and in_flight[0].outcome is not None:
            answered = in_flight.popleft()
            self.results.append(self._outcomes(answered))
            envelope = answered.envelope
            direct = direct or (envelope is not None and envelope is self.awaiting)
        if self.phase is _Phase.STOPPED:
            self.results.clear()
            return
        if direct:
            # The command that persisted is still running (awaiting): run the handlers now,
            # together with any earlier answers still queued (so they keep their order), so that
            # `await self.persist(...)` inside receive_command never waits on its own mailbox.
            try:
                self.apply_results()
            except Exception as error:
                # A handler raised: this incarnation is over, the command re-raises the error
                # when it finishes (see command_done) so that the actor fails and restarts.
                self.failure = error
                self.phase = _Phase.STOPPED
                self.results.clear()
                self._fail_pending(error)
            return
        self.context.ref.tell(_WriteResults(self))

    @staticmethod
    def _outcomes(batch: _InFlight) -> _Outcomes:
        """The outcome of each atomic write (or rejection) of an answered batch."""
        outcome = batch.outcome
        outcomes: _Outcomes = []
        results = iter(outcome) if isinstance(outcome, list) else None
        for item in batch.items:
            if isinstance(item, _Rejected):
                outcomes.append((_Outcome.REJECTED, item.cause, item.count))
                continue
            count = len(item.records)
            if results is None:
                outcomes.append((_Outcome.FAILED, outcome, count))  # type: ignore[arg-type]
                continue
            result = next(results)
            if result is None:
                outcomes.append((_Outcome.STORED, None, count))
            elif isinstance(result, JournalError):
                outcomes.append((_Outcome.FAILED, result, count))
            else:
                outcomes.append((_Outcome.REJECTED, result, count))
        return outcomes

    def apply_results(self) -> None:
        """Run the handlers of every answered write, oldest first, until one write failed."""
        results = self.results
        while results:
            self.apply(results.popleft())
            if self.phase is _Phase.STOPPED:  # a write failed: the rest is never handled
                results.clear()

    def apply(self, outcomes: _Outcomes) -> None:
        actor = self.actor
        pending = self.pending
        for kind, cause, count in outcomes:
            self._run_deferred()
            for _ in range(count):
                entry = pending.popleft()
                if entry.stashing:
                    self.stashing_pending -= 1
                if kind is _Outcome.STORED:
                    self.last_sequence_nr = entry.sequence_nr
                    if entry.handler is not None:
                        self._call_handler(entry)
                    if entry.last:
                        entry.completion.resolve(entry.event)
                    self._maybe_snapshot(entry.sequence_nr)
                elif kind is _Outcome.REJECTED:
                    self.last_sequence_nr = entry.sequence_nr
                    assert cause is not None
                    actor.on_persist_rejected(cause, entry.event, entry.sequence_nr)
                    if entry.last:
                        entry.completion.fail(
                            EventRejectedError(self.persistence_id, entry.sequence_nr, cause)
                        )
                else:
                    assert cause is not None
                    self._persist_failed(cause, entry)
                    return
        self._run_deferred()
        self._unstash_if_idle()

    def _run_deferred(self) -> None:
        pending = self.pending
        while pending and pending[0].sequence_nr == 0:
            entry = pending.popleft()
            if entry.stashing:
                self.stashing_pending -= 1
            self._call_handler(entry)
            entry.completion.resolve(entry.event)

    def _call_handler(self, entry: _Entry) -> None:
        """Run ``entry``'s handler with its command as the current message (for the sender)."""
        handler = entry.handler
        assert handler is not None
        context = self.context
        current = runtime.current_envelope(context)
        runtime.set_current_envelope(context, entry.envelope)
        try:
            handler(entry.event)
        except Exception as error:
            entry.completion.fail(error)  # whoever awaits this persist learns why
            runtime.fail_ask(entry.envelope[1], error)  # and whoever asked for the command
            raise
        finally:
            runtime.set_current_envelope(context, current)

    def _persist_failed(self, cause: BaseException, entry: _Entry) -> None:
        self.phase = _Phase.STOPPED
        try:
            self.actor.on_persist_failure(cause, entry.event, entry.sequence_nr)
        finally:
            entry.completion.fail(cause)
            self._fail_pending(cause)
            runtime.stop_for(self.context, cause)

    def _fail_pending(self, error: BaseException) -> None:
        while self.pending:
            self.pending.popleft().completion.fail(error)
        self.stashing_pending = 0

    def _unstash_if_idle(self) -> None:
        """Return the oldest stashed command to the front of the mailbox once nothing is pending.

        One at a time (as Akka does): each command, once handled, brings the next one back, so a
        long queue of commands is stashed once each, not once per persist.
        """
        if self.stashing_pending == 0 and self.phase is _Phase.PERSISTING:
            self.phase = _Phase.RUNNING
        if self.phase is _Phase.RUNNING and self.stash:
            runtime.prepend(self.context, [self.stash.popleft()])

    async def command_done(self, pending: Awaitable[None]) -> None:
        """Await an async command handler, then let the next stashed command in."""
        self.awaiting = runtime.current_envelope(self.context)
        try:
            await pending
        finally:
            self.awaiting = None
        if self.failure is not None:
            raise self.failure  # a persist handler raised while the command awaited
        self._unstash_if_idle()

    def stash_command(self) -> None:
        actor = self.actor
        if self.phase is _Phase.STOPPED:
            self._dead_letter_current()
            return
        if len(self.stash) >= actor.stash_capacity:
            if actor.stash_overflow == "fail":
                raise StashOverflowError(self.persistence_id, actor.stash_capacity)
            self._dead_letter_current()
            return
        self.stash.append(runtime.current_envelope(self.context))

    def _dead_letter_current(self) -> None:
        message, sender = runtime.current_envelope(self.context)
        runtime.publish_dead_letter(self.context.system, message, sender, self.context.ref)

    def stopped(self) -> None:
        """The incarnation ended (stop or restart): stashed commands go back to the mailbox, from
        where a restarted actor handles them and a stopped one sends them to dead letters."""
        self.phase = _Phase.STOPPED
        self.extension.release(self.persistence_id, self.context.ref)
        stash, self.stash = self.stash, deque()
        runtime.prepend(self.context, stash)

    # ------------------------------------------------------------------ snapshots, deletes

    def _maybe_snapshot(self, sequence_nr: int) -> None:
        retention = self.retention
        if retention is not None and retention.snapshot_due(sequence_nr):
            self.save_snapshot(self.actor.snapshot_state(), retention)

    def save_snapshot(
        self, snapshot: Any, retention: RetentionPolicy | None = None
    ) -> Completion[SnapshotMetadata]:
        self.guard("save a snapshot")
        metadata = SnapshotMetadata(self.persistence_id, self.last_sequence_nr)
        store = self.extension.snapshot_store
        try:
            if store is None:
                raise PersistenceConfigError(
                    "no snapshot store configured: pass snapshot_store= to Persistence(...)"
                )
            manifest, payload = self.serializer.encode(snapshot)
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
        oldest_kept = retention.oldest_kept(stored.sequence_nr)
        store = self.extension.snapshot_store
        assert store is not None
        if oldest_kept > 1:
            await store.delete_matching(
                self.persistence_id, SnapshotSelectionCriteria(max_sequence_nr=oldest_kept - 1)
            )
        if retention.delete_events_on_snapshot and oldest_kept > 0:
            await self.journal.delete_to(self.persistence_id, oldest_kept)

    def delete_events(self, to_sequence_nr: int) -> Completion[int]:
        self.guard("delete events")
        if to_sequence_nr > self.last_sequence_nr:
            error = DeleteEventsOutOfRangeError(
                self.persistence_id, to_sequence_nr, self.last_sequence_nr
            )
            return self._refused(DeleteEventsFailure(to_sequence_nr, error), error)

        async def delete() -> int:
            await self.journal.delete_to(self.persistence_id, to_sequence_nr)
            return to_sequence_nr

        return self._run_reported(
            delete(), DeleteEventsSuccess, lambda error: DeleteEventsFailure(to_sequence_nr, error)
        )

    def delete_snapshots(self, criteria: SnapshotSelectionCriteria) -> Completion[int]:
        self.guard("delete snapshots")
        store = self.extension.snapshot_store
        bound = criteria.max_sequence_nr
        if store is None:
            error = PersistenceConfigError("no snapshot store configured")
            return self._refused(DeleteSnapshotsFailure(bound, error), error)

        async def delete() -> int:
            await store.delete_matching(self.persistence_id, criteria)
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
        completion: Completion[T] = Completion(self.loop)

        def done(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                return  # abandoned by a bounded close (or the loop's teardown): nobody is left
            error = task.exception()
            if error is not None:
                self._report(completion, failure(error), error)
            else:
                value = task.result()
                self._report(completion, success(value), None, value)

        self.extension.spawn_task(work, (self,), done)
        return completion

    def _refused(self, message: Any, error: BaseException) -> Completion[Any]:
        completion: Completion[Any] = Completion(self.loop)
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
        ref = self.context.ref
        if ref.is_alive:
            ref.tell(message)


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
        return self.__engine.persist((event,), handler, True, tags)

    def persist_all(
        self,
        events: Sequence[Any],
        handler: Handler | None = None,
        *,
        tags: Iterable[str] | None = None,
    ) -> Completion[Any]:
        """Store ``events`` as one atomic write; call ``handler`` for each, in order."""
        return self.__engine.persist(list(events), handler, True, tags)

    def persist_async(
        self, event: Any, handler: Handler | None = None, *, tags: Iterable[str] | None = None
    ) -> Completion[Any]:
        """Like ``persist``, but later commands are not held back."""
        return self.__engine.persist((event,), handler, False, tags)

    def persist_all_async(
        self,
        events: Sequence[Any],
        handler: Handler | None = None,
        *,
        tags: Iterable[str] | None = None,
    ) -> Completion[Any]:
        """Like ``persist_all``, but later commands are not held back."""
        return self.__engine.persist(list(events), handler, False, tags)

    def defer(self, event: Any, handler: Handler) -> Completion[Any]:
        """Call ``handler(event)`` after all pending persist handlers; persists nothing."""
        return self.__engine.defer(event, handler, True)

    def defer_async(self, event: Any, handler: Handler) -> Completion[Any]:
        """Like ``defer``, without holding back later commands."""
        return self.__engine.defer(event, handler, False)

    def save_snapshot(self, snapshot: Any) -> Completion[SnapshotMetadata]:
        """Store ``snapshot`` at the current sequence number (reported as a message too)."""
        return self.__engine.save_snapshot(snapshot)

    def delete_events(self, to_sequence_nr: int) -> Completion[int]:
        """Delete events up to and including ``to_sequence_nr`` (reported as a message too)."""
        return self.__engine.delete_events(to_sequence_nr)

    def delete_snapshots(self, criteria: SnapshotSelectionCriteria) -> Completion[int]:
        """Delete the snapshots matching ``criteria`` (reported as a message too)."""
        return self.__engine.delete_snapshots(criteria)

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
        return self.__engine.recover(super()._around_start(restart_reason))

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
        return self.__dispatch(self.receive_command, message)

    def _wrap_behavior(self, behavior: Callable[[Any], Any]) -> Callable[[Any], Any]:
        # context.become swaps the command handler; persistence stays in front of it.
        return functools.partial(self.__dispatch, behavior)

    def __dispatch(
        self, command_handler: Callable[[Any], Any], message: Any
    ) -> Awaitable[None] | None:
        engine = self.__engine
        if message.__class__ is _WriteResults:
            if message.engine is engine:  # else: results for the incarnation before a restart
                engine.apply_results()
            return None
        if engine.phase is not _Phase.RUNNING:
            engine.stash_command()
            return None
        pending = command_handler(message)
        if pending is not None:
            return engine.command_done(pending)
        if engine.stash:
            engine._unstash_if_idle()
        return None

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
