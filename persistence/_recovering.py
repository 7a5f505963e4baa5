"""Recovery of one incarnation: loading the snapshot, replaying events, the recovery timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import replace
from itertools import islice
from typing import Any

from actorsys import Cancellable, Clock, runtime
from persistence._engine import _Engine, _Phase
from persistence._errors import (
    PersistenceStateError,
    RecoveryError,
    RecoveryTimedOutError,
    SerializationError,
)
from persistence._messages import RecoveryCompleted, SnapshotOffer
from persistence._recovery import Recovery
from persistence.journal._protocol import row_pages
from persistence.snapshot._protocol import SnapshotSelectionCriteria

_PROGRESS_INTERVAL = 1.0
"""Seconds between two ``recovery_progress`` log events during a long replay."""


class _RecoveryTimer:
    """Akka's recovery timeout: cancels a recovery that made no progress for ``timeout`` seconds.

    The recovery marks progress (each step, each page of events) by setting ``active_at``; when the
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


class _Recovering:
    """One recovery of an engine, from its first step to ``RecoveryCompleted`` or its failure."""

    __slots__ = ("clock", "engine", "recovering", "timer")

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.clock = engine.context.system.clock
        self.timer: _RecoveryTimer | None = None
        self.recovering: Any = None
        """The message ``receive_recover`` is handling (passed to ``on_recovery_failure``)."""

    async def recover(self, before: Awaitable[None] | None) -> None:
        """Recover, then let the commands that arrived meanwhile in.

        A stop cancels a recovery in progress (the actor stops at once); so does the recovery
        timeout, which is reported to ``on_recovery_failure`` as :class:`RecoveryTimedOutError`.
        """
        engine = self.engine
        if before is not None:
            await before
        if runtime.is_stopping(engine.context):
            return  # stopped before its recovery began (a later stop cancels it, see the cell)
        engine.phase = _Phase.RECOVERING
        engine.extension.claim(engine.persistence_id, engine.ref)
        recovery = engine.actor.recovery
        task = asyncio.current_task()
        if engine.recovery_timeout is not None and task is not None:
            self.timer = _RecoveryTimer(self.clock, engine.recovery_timeout, task)
        try:
            await engine.extension.writes_settled()
            self._progress("the highest sequence number")
            highest = await engine.journal.highest_sequence_nr(engine.persistence_id)
            last = 0
            if not recovery.loads_nothing:
                self._progress("a snapshot")
                offer, fell_back = await self._load_snapshot(recovery.snapshot_criteria)
                if offer is not None:
                    last = engine.last_sequence_nr = offer.metadata.sequence_nr
                    self._recover_with(offer)
                self._progress("events")
                last = await self._replay(last + 1, recovery, fell_back, highest, last)
            engine.sequence_nr = engine.last_sequence_nr = max(highest, last)
            engine.phase = _Phase.RUNNING
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
        engine.log.debug("recovery_completed", last_sequence_nr=engine.last_sequence_nr)
        engine._unstash_if_idle()

    def _progress(self, waiting_for: str) -> None:
        if self.timer is not None:
            self.timer.progress(waiting_for)

    def _timed_out(self) -> RecoveryTimedOutError:
        assert self.timer is not None
        engine = self.engine
        waiting_for = self.timer.waiting_for
        if waiting_for == "events":
            waiting_for = f"events after sequence_nr={engine.last_sequence_nr}"
        return RecoveryTimedOutError(
            f"recovery of persistence_id={engine.persistence_id!r} timed out: no progress within "
            f"{self.timer.timeout:g} s while waiting for {waiting_for}; check the journal and "
            "the snapshot store, or raise recovery_timeout"
        )

    async def _load_snapshot(
        self, criteria: SnapshotSelectionCriteria
    ) -> tuple[SnapshotOffer | None, bool]:
        """The youngest readable matching snapshot, and whether a younger one was unreadable."""
        engine = self.engine
        store = engine.extension.snapshot_store
        fell_back = False
        if store is None or criteria.max_sequence_nr <= 0:
            return None, fell_back
        while True:
            stored = await store.load(engine.persistence_id, criteria)
            if stored is None:
                return None, fell_back
            try:
                snapshot = engine.serializer.decode_one(
                    stored.manifest, stored.payload, engine.persistence_id
                )
            except SerializationError as error:
                engine.log.warning(
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

        The journal hands over pages of rows (see :func:`row_pages`), decoded in one pass
        (``decode_rows``) but for the rows it leaves to ``decode`` (upcasting, a failure to
        report), decoded on their own in their turn: the actor sees the same events either way.

        After falling back from an unreadable snapshot, a gap at the start of the replay means
        the events the snapshot covered were deleted: that is an error, never a silent skip.
        """
        engine = self.engine
        receive_recover = engine.actor.receive_recover
        serializer = engine.serializer
        decode_rows = serializer.decode_rows
        decode = serializer.decode
        pid = engine.persistence_id
        expected = from_sequence_nr
        clock = self.clock.time
        timer = self.timer
        report_at = clock() + _PROGRESS_INTERVAL
        event: Any = None
        try:
            async for page in row_pages(
                engine.journal, pid, from_sequence_nr, recovery.to_sequence_nr, recovery.replay_max
            ):
                if fell_back and page[0][0] != expected:
                    self._missing_events(expected, page[0][0])
                fell_back = False
                done = 0
                while done < len(page):
                    events = decode_rows(page, done)
                    for row, event in zip(islice(page, done, None), events, strict=False):
                        engine.last_sequence_nr = row[0]
                        receive_recover(event)
                    event = None
                    done += len(events)
                    if done < len(page):  # a row decode_rows leaves to decode: upcast or fail
                        row = page[done]
                        sequence_nr = engine.last_sequence_nr = row[0]
                        for event in decode(row[1], row[2], pid, sequence_nr):
                            receive_recover(event)
                        event = None
                        done += 1
                expected = page[-1][0] + 1
                now = clock()
                if timer is not None:
                    timer.active_at = now  # the recovery timeout counts from here
                if now >= report_at:  # long replays show progress, once a second
                    report_at = now + _PROGRESS_INTERVAL
                    engine.log.info("recovery_progress", last_sequence_nr=engine.last_sequence_nr)
        except Exception:
            self.recovering = event  # what on_recovery_failure is told was being replayed
            raise
        if fell_back and min(highest, recovery.to_sequence_nr) >= expected:
            self._missing_events(expected, None)
        return expected - 1 if expected > from_sequence_nr else last

    def _missing_events(self, expected: int, found: int | None) -> None:
        pid = self.engine.persistence_id
        raise RecoveryError(
            f"cannot recover persistence_id={pid!r}: the snapshot could not be "
            f"read and events from sequence_nr={expected} "
            + (f"to {found - 1} " if found is not None else "on ")
            + "were deleted; restore the snapshot or the events"
        )

    def _recover_with(self, message: Any) -> None:
        self.recovering = message
        actor = self.engine.actor
        result: object = actor.receive_recover(message)  # type: ignore[func-returns-value]
        if result is not None:
            raise PersistenceStateError(
                "receive_recover must be a plain function (it returned an awaitable): "
                "recovery handlers only update state"
            )
        self.recovering = None

    def _recovery_failed(self, error: Exception, message: Any) -> None:
        engine = self.engine
        engine.phase = _Phase.STOPPED
        try:
            engine.actor.on_recovery_failure(error, message)
        finally:
            runtime.stop_for(engine.context, error)
