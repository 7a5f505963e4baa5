"""One incarnation's engine: its phases, the persist pipeline, write results, held commands.

The running phase applies journal answers in write order, whatever order they arrive in, and
holds later commands back (in order) while handlers of a ``persist`` are pending.

A journal answer is applied in the actor's turn: at once when the actor is idle
(``runtime.run_turn``, which then delivers the next held command too: no mailbox trip), inside
the command that awaits its own persist, or else through a ``_WriteResults`` message to the
actor, after which held commands go back to the front of the mailbox one at a time.

Phases (one guard each: "cannot X: the actor is Y")::

    NOT_STARTED -> RECOVERING -> RUNNING <-> PERSISTING
                        \\            \\          /
                         +------------> STOPPED <+   (recovery or write failure)

Recovery (:mod:`persistence._recovering`) takes an engine from ``NOT_STARTED`` to ``RUNNING``;
snapshots and deletes (:mod:`persistence._snapshotter`) run beside the running phase.
"""

from __future__ import annotations

import enum
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from time import time_ns
from typing import TYPE_CHECKING, Any

from actorsys import ActorContext, runtime
from persistence._completion import _PENDING, _RESOLVED, Completion
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
    from collections.abc import Iterable

    from persistence._persistent_actor import PersistentActor

log = get_logger("persistence")

Handler = Callable[[Any], Any]

current_envelope = runtime.current_envelope
set_current_envelope = runtime.set_current_envelope


class _Phase(enum.Enum):
    NOT_STARTED = "not started"
    RECOVERING = "recovering"
    RUNNING = "running"
    PERSISTING = "persisting"
    STOPPED = "stopped"


_RUNNING = _Phase.RUNNING
_PERSISTING = _Phase.PERSISTING
_STOPPED = _Phase.STOPPED


class _Outcome(enum.Enum):
    STORED = 0
    REJECTED = 1
    FAILED = 2


class _Entry(Completion[Any]):
    """One event (or one deferred handler) waiting for its handler to run.

    The last entry of a ``persist`` call is also that call's awaitable (``owner`` None); the
    others of a ``persist_all`` point to it: one object per event, not two.
    """

    __slots__ = ("envelope", "event", "handler", "owner", "sequence_nr", "stashing")

    def __init__(
        self,
        event: Any,
        handler: Handler | None,
        sequence_nr: int,
        stashing: bool,
        envelope: runtime.Envelope,
        owner: _Entry | None,
    ) -> None:
        # Completion's fields, set here: no second __init__ call per event
        self._future = None
        self._state = _PENDING
        self._value = None
        self.event = event
        self.handler = handler
        self.sequence_nr = sequence_nr
        """0 for a deferred handler."""
        self.stashing = stashing
        self.envelope = envelope
        """The command being handled when the event was persisted (its sender is the
        handler's sender, as in Akka)."""
        self.owner = owner

    @property
    def completion(self) -> Completion[Any]:
        """The awaitable of the ``persist`` call this entry belongs to."""
        return self if self.owner is None else self.owner


class _Rejected:
    """An atomic write refused before writing (its events could not be serialized)."""

    __slots__ = ("cause", "count")

    def __init__(self, cause: BaseException, count: int) -> None:
        self.cause = cause
        self.count = count


_Outcomes = list[tuple[_Outcome, BaseException | None, int]]


class _Batch:
    """The atomic writes of one engine in one flush, from its first persist of a loop turn
    until the journal's answer for them has been applied."""

    __slots__ = ("answered", "envelope", "events", "items", "outcome", "rejected")

    def __init__(self) -> None:
        self.items: list[AtomicWrite | _Rejected] = []
        self.events = 0
        """How many events its atomic writes hold."""
        self.rejected = False
        """Whether some item is a :class:`_Rejected` (never handed to the journal)."""
        self.envelope: object = None
        """The command of its last persist (to see whether that command awaits the answer)."""
        self.answered = False
        self.outcome: WriteOutcome | None = None
        """Once answered: None if every write was stored, else the journal's answer."""

    def writes(self) -> list[AtomicWrite]:
        """The atomic writes to hand to the journal."""
        if self.rejected:
            return [item for item in self.items if isinstance(item, AtomicWrite)]
        return self.items  # type: ignore[return-value]  # no _Rejected in it


class _WriteResults:
    """Told by the engine to its own actor, when that actor was busy as an answer came, so
    that handlers run in the actor's turn."""

    __slots__ = ("engine",)

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine


class _Engine:
    """The persistence runtime of one persistent actor incarnation."""

    def __init__(self, actor: PersistentActor, context: ActorContext) -> None:
        # imported here: that module imports this one (and is loaded by the time actors start)
        from persistence._persistent_actor import PersistentActor

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
        self.ref = context.self
        self.writer_id = uuid.uuid4().hex
        self.phase = _Phase.NOT_STARTED
        self.sequence_nr = 0
        """The highest sequence number assigned."""
        self.last_sequence_nr = 0
        """What the actor sees: the event being handled, or the last one handled."""
        self.pending: deque[_Entry] = deque()
        self.batch: _Batch | None = None
        """The writes of this loop turn, not yet handed to the journal."""
        self.in_flight: deque[_Batch] = deque()
        """Batches handed to the journal whose answer has not been applied yet, in write order."""
        self.stashing_pending = 0
        self.awaiting: object = None
        """The envelope of the async command handler being awaited, if any."""
        self.failure: Exception | None = None
        """The error of a handler that raised while an async command awaited."""
        self.held: deque[runtime.Envelope] = deque()
        """Commands that arrived while handlers were pending (the internal stash), in order."""
        # bound once per incarnation, not looked up per event
        self.encode = self.serializer.encode
        self.request_flush = self.extension.request_flush
        self.tags_for: Callable[[Any], tuple[str, ...]] | None = (
            None if type(actor).tags_for is PersistentActor.tags_for else actor.tags_for
        )
        self.stash_capacity = actor.stash_capacity
        self.turn = self._turn
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
        if phase is _RUNNING or phase is _PERSISTING:
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

    def persist_one(
        self, event: Any, handler: Handler | None, stashing: bool, tags: Iterable[str] | None
    ) -> Completion[Any]:
        """``persist`` and ``persist_async`` of one event: the hot path, one entry per event."""
        phase = self.phase
        if phase is not _RUNNING and phase is not _PERSISTING:
            self.guard("persist")
        self.sequence_nr = sequence_nr = self.sequence_nr + 1
        envelope = current_envelope(self.context)
        entry = _Entry(event, handler, sequence_nr, stashing, envelope, None)
        self.pending.append(entry)
        batch = self.batch
        if batch is None:
            batch = self.batch = _Batch()
            self.request_flush(self)
        try:
            manifest, payload = self.encode(event)
        except SerializationError as error:
            batch.items.append(_Rejected(error, 1))
            batch.rejected = True
        else:
            tags_for = self.tags_for
            record = PersistentRecord(
                self.persistence_id,
                sequence_nr,
                manifest,
                payload,
                self.writer_id,
                time_ns() // 1_000_000,
                tuple(tags) if tags is not None else () if tags_for is None else tags_for(event),
            )
            batch.items.append(AtomicWrite([record], self.actor.owner_epoch))
            batch.events += 1
        batch.envelope = envelope
        if stashing:
            self.stashing_pending += 1
            self.phase = _PERSISTING
        return entry

    def persist_many(
        self,
        events: Sequence[Any],
        handler: Handler | None,
        stashing: bool,
        tags: Iterable[str] | None,
    ) -> Completion[Any]:
        """``persist_all`` and ``persist_all_async``: one atomic write of ``events``."""
        self.guard("persist")
        count = len(events)
        if count == 0:
            completion: Completion[Any] = Completion()
            completion.resolve(None)
            return completion
        envelope = current_envelope(self.context)
        first = self.sequence_nr + 1
        self.sequence_nr += count
        owner = _Entry(events[-1], handler, self.sequence_nr, stashing, envelope, None)
        pending = self.pending
        for offset in range(count - 1):
            event = events[offset]
            pending.append(_Entry(event, handler, first + offset, stashing, envelope, owner))
        pending.append(owner)
        batch = self.batch
        if batch is None:
            batch = self.batch = _Batch()
            self.request_flush(self)
        fixed_tags = tuple(tags) if tags is not None else None
        tags_for = self.tags_for
        timestamp = time_ns() // 1_000_000
        records: list[PersistentRecord] = []
        try:
            for offset, event in enumerate(events):
                manifest, payload = self.encode(event)
                records.append(
                    PersistentRecord(
                        self.persistence_id,
                        first + offset,
                        manifest,
                        payload,
                        self.writer_id,
                        timestamp,
                        fixed_tags
                        if fixed_tags is not None
                        else ()
                        if tags_for is None
                        else tags_for(event),
                    )
                )
        except SerializationError as error:
            batch.items.append(_Rejected(error, count))
            batch.rejected = True
        else:
            batch.items.append(AtomicWrite(records, self.actor.owner_epoch))
            batch.events += count
        batch.envelope = envelope
        if stashing:
            self.stashing_pending += count
            self.phase = _PERSISTING
        return owner

    def defer(self, event: Any, handler: Handler, stashing: bool) -> Completion[Any]:
        self.guard("defer")
        if not self.pending:
            handler(event)
            completion: Completion[Any] = Completion()
            completion.resolve(event)
            return completion
        if stashing:
            self.stashing_pending += 1
            self.phase = _PERSISTING
        entry = _Entry(event, handler, 0, stashing, current_envelope(self.context), None)
        self.pending.append(entry)
        return entry

    def take_batch(self) -> _Batch:
        """Hand this turn's batch to the extension's flush; it comes back with the journal's
        answer to :meth:`writes_done`."""
        batch = self.batch
        assert batch is not None
        self.batch = None
        self.in_flight.append(batch)
        return batch

    def writes_done(self, batch: _Batch, outcome: WriteOutcome | None) -> None:
        """The journal answered ``batch`` (``outcome`` None: every write stored): run its
        handlers in the actor's turn.

        Answers are taken in the order the writes were handed over, whatever order the journal
        answered in, so every handler learns its own write's outcome, in call order.
        """
        batch.outcome = outcome
        batch.answered = True
        in_flight = self.in_flight
        if in_flight[0] is not batch and not self._answered_before(batch):
            return  # an earlier write is unanswered: this one waits for it
        if self.phase is _STOPPED:
            while in_flight and in_flight[0].answered:
                in_flight.popleft()
            return
        if self.awaiting is not None and self._answers_awaiting():
            # The command that persisted is still running (awaiting): run the handlers now,
            # together with any earlier answers still queued (so they keep their order), so that
            # `await self.persist(...)` inside receive_command never waits on its own mailbox.
            try:
                self.apply_results()
            except Exception as error:
                # A handler raised: this incarnation is over, the command re-raises the error
                # when it finishes (see command_done) so that the actor fails and restarts.
                set_current_envelope(self.context, self.awaiting)  # type: ignore[arg-type]
                self.failure = error
                self.phase = _STOPPED
                while in_flight and in_flight[0].answered:
                    in_flight.popleft()
                self._fail_pending(error)
            return
        if not runtime.run_turn(self.context, self.turn):
            self.ref.tell(_WriteResults(self))  # busy: the answer waits for its turn

    def _answered_before(self, batch: _Batch) -> bool:
        """Whether every batch handed over before ``batch`` has been answered."""
        for earlier in self.in_flight:
            if earlier is batch:
                return True
            if not earlier.answered:
                return False
        raise AssertionError("an answered batch is not in flight")

    def _answers_awaiting(self) -> bool:
        """Whether an answered batch was persisted by the command being awaited."""
        awaiting = self.awaiting
        for batch in self.in_flight:
            if not batch.answered:
                return False
            if batch.envelope is awaiting:
                return True
        return False

    def _turn(self) -> runtime.Envelope | None:
        """The actor's turn given by ``runtime.run_turn``: apply the answers, then deliver the
        next held command if commands are taken again (it persists, or brings the next back)."""
        self._apply_answered()
        if self.phase is _RUNNING and self.held:
            return self.held.popleft()
        return None

    def apply_results(self) -> None:
        """Run the handlers of every answered write, oldest first, until one write failed; the
        envelope being handled is the same before and after."""
        context = self.context
        current = current_envelope(context)
        self._apply_answered()
        set_current_envelope(context, current)

    def _apply_answered(self) -> None:
        # A handler that raises leaves its command's envelope current: the failure is that
        # command's (its asker learns why, supervision decides).
        in_flight = self.in_flight
        while in_flight and in_flight[0].answered:
            batch = in_flight.popleft()
            if batch.outcome is None and not batch.rejected:
                self._stored(batch.events)
            else:
                self._apply_outcomes(self._outcomes(batch))
            self._run_deferred()
            if self.phase is _STOPPED:  # a write failed: the rest is never handled
                while in_flight and in_flight[0].answered:
                    in_flight.popleft()
                return
        if self.stashing_pending == 0 and self.phase is _PERSISTING:
            self.phase = _RUNNING

    @staticmethod
    def _outcomes(batch: _Batch) -> _Outcomes:
        """The outcome of each atomic write (or rejection) of an answered batch."""
        outcome = batch.outcome
        outcomes: _Outcomes = []
        results = iter(outcome) if isinstance(outcome, list) else None
        for item in batch.items:
            if isinstance(item, _Rejected):
                outcomes.append((_Outcome.REJECTED, item.cause, item.count))
                continue
            count = len(item.records)
            if outcome is None:
                outcomes.append((_Outcome.STORED, None, count))
                continue
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

    def _stored(self, count: int) -> None:
        """Run the handlers of the next ``count`` stored events (and of deferred handlers
        between them), in call order."""
        pending = self.pending
        context = self.context
        snapshots = self.snapshots
        while count:
            entry = pending.popleft()
            if entry.stashing:
                self.stashing_pending -= 1
            sequence_nr = entry.sequence_nr
            if sequence_nr == 0:  # a deferred handler: it runs in its place
                self._call_handler(entry)
                entry.resolve(entry.event)
                continue
            count -= 1
            self.last_sequence_nr = sequence_nr
            handler = entry.handler
            if handler is not None:
                set_current_envelope(context, entry.envelope)
                try:
                    handler(entry.event)
                except Exception as error:
                    self._handler_failed(entry, error)
                    raise
            if entry.owner is None:
                if entry._future is None:  # nobody awaits it: resolve without a call
                    entry._state, entry._value = _RESOLVED, entry.event
                else:
                    entry.resolve(entry.event)
            if snapshots.retention is not None:
                snapshots.maybe_snapshot(sequence_nr)

    def _apply_outcomes(self, outcomes: _Outcomes) -> None:
        """The slow path: a batch with a rejected or failed write."""
        pending = self.pending
        for kind, cause, count in outcomes:
            self._run_deferred()
            if kind is _Outcome.STORED:
                self._stored(count)
                continue
            assert cause is not None
            if kind is _Outcome.FAILED:
                self._persist_failed(cause, pending[0])
                return
            for _ in range(count):
                entry = pending.popleft()
                if entry.stashing:
                    self.stashing_pending -= 1
                self.last_sequence_nr = entry.sequence_nr
                self.actor.on_persist_rejected(cause, entry.event, entry.sequence_nr)
                if entry.owner is None:
                    entry.fail(EventRejectedError(self.persistence_id, entry.sequence_nr, cause))

    def _run_deferred(self) -> None:
        pending = self.pending
        while pending and pending[0].sequence_nr == 0:
            entry = pending.popleft()
            if entry.stashing:
                self.stashing_pending -= 1
            self._call_handler(entry)
            entry.resolve(entry.event)

    def _call_handler(self, entry: _Entry) -> None:
        """Run ``entry``'s handler with its command as the current message (for the sender)."""
        handler = entry.handler
        assert handler is not None
        set_current_envelope(self.context, entry.envelope)
        try:
            handler(entry.event)
        except Exception as error:
            self._handler_failed(entry, error)
            raise

    @staticmethod
    def _handler_failed(entry: _Entry, error: Exception) -> None:
        entry.completion.fail(error)  # whoever awaits this persist learns why
        runtime.fail_ask(entry.envelope[1], error)  # and whoever asked for the command

    def _persist_failed(self, cause: BaseException, entry: _Entry) -> None:
        self.phase = _STOPPED
        try:
            self.actor.on_persist_failure(cause, entry.event, entry.sequence_nr)
        finally:
            self._fail_pending(cause)
            runtime.stop_for(self.context, cause)

    def _fail_pending(self, error: BaseException) -> None:
        pending = self.pending
        while pending:
            pending.popleft().completion.fail(error)
        self.stashing_pending = 0

    def _unstash_if_idle(self) -> None:
        """Return the oldest held command to the front of the mailbox once nothing is pending.

        One at a time (as Akka does): each command, once handled, brings the next one back, so a
        long queue of commands is held once each, not once per persist.
        """
        if self.stashing_pending == 0 and self.phase is _PERSISTING:
            self.phase = _RUNNING
        if self.phase is _RUNNING and self.held:
            runtime.prepend(self.context, (self.held.popleft(),))

    async def command_done(self, pending: Awaitable[None]) -> None:
        """Await an async command handler, then let the next held command in."""
        self.awaiting = current_envelope(self.context)
        try:
            await pending
        finally:
            self.awaiting = None
        if self.failure is not None:
            raise self.failure  # a persist handler raised while the command awaited
        self._unstash_if_idle()

    def hold(self) -> None:
        """Hold the command being handled back until the pending handlers have run."""
        if self.phase is _STOPPED:
            self._dead_letter_current()
            return
        held = self.held
        if len(held) >= self.stash_capacity:
            if self.actor.stash_overflow == "fail":
                raise StashOverflowError(self.persistence_id, self.stash_capacity)
            self._dead_letter_current()
            return
        held.append(current_envelope(self.context))

    def _dead_letter_current(self) -> None:
        message, sender = current_envelope(self.context)
        runtime.publish_dead_letter(self.context.system, message, sender, self.ref)

    def stopped(self) -> None:
        """The incarnation ended (stop or restart): held commands go back to the mailbox, from
        where a restarted actor handles them and a stopped one sends them to dead letters."""
        self.phase = _STOPPED
        self.extension.release(self.persistence_id, self.ref)
        held, self.held = self.held, deque()
        runtime.prepend(self.context, held)
