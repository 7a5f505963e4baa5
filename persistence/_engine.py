"""One incarnation's engine: its phases, the persist pipeline, write results, the command stash.

The running phase applies journal answers in write order, whatever order they arrive in, and
holds later commands back (stashed, in order) while handlers of a ``persist`` are pending.

Phases (one guard each: "cannot X: the actor is Y")::

    NOT_STARTED -> RECOVERING -> RUNNING <-> PERSISTING
                        \\            \\          /
                         +------------> STOPPED <+   (recovery or write failure)

Recovery (:mod:`persistence._recovering`) takes an engine from ``NOT_STARTED`` to ``RUNNING``;
snapshots and deletes (:mod:`persistence._snapshotter`) run beside the running phase.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from actorsys import ActorContext, runtime
from persistence._completion import Completion
from persistence._errors import (
    EventRejectedError,
    JournalError,
    PersistenceConfigError,
    PersistenceStateError,
    SerializationError,
    StashOverflowError,
)
from persistence._extension import Persistence, WriteOutcome
from persistence._logging import get_logger
from persistence._snapshotter import _Snapshotter
from persistence.journal._protocol import AtomicWrite, PersistentRecord

if TYPE_CHECKING:
    from persistence._persistent_actor import PersistentActor

log = get_logger("persistence")

Handler = Callable[[Any], Any]


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
        self.ref = context.self
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
        timeout = actor.recovery_timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise PersistenceConfigError(
                f"{type(actor).__name__}.recovery_timeout must be a positive number of seconds "
                f"or None (no timeout), got {timeout!r}"
            )
        self.recovery_timeout: float | None = timeout
        self.log = log.bind(persistence_id=persistence_id, actor_path=context.path)
        self.snapshots = _Snapshotter(self)

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
        self.items.append(
            _Rejected(cause, count)
            if cause is not None
            else AtomicWrite(records, self.actor.owner_epoch)
        )
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
        self.ref.tell(_WriteResults(self))

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
        snapshots = self.snapshots
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
                    snapshots.maybe_snapshot(entry.sequence_nr)
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
        runtime.publish_dead_letter(self.context.system, message, sender, self.ref)

    def stopped(self) -> None:
        """The incarnation ended (stop or restart): stashed commands go back to the mailbox, from
        where a restarted actor handles them and a stopped one sends them to dead letters."""
        self.phase = _Phase.STOPPED
        self.extension.release(self.persistence_id, self.ref)
        stash, self.stash = self.stash, deque()
        runtime.prepend(self.context, stash)
