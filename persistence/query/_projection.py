"""A resumable projection: a live query (by tag, or over all events) feeding a handler, its
offset kept in a store, with a recovery strategy for handler failures."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Literal, Self

from persistence._errors import JournalClosedError, PersistenceError
from persistence._logging import get_logger
from persistence.query._envelope import EventEnvelope
from persistence.query._offset_store import OffsetStore
from persistence.query._queries import EventQueries

log = get_logger("persistence.query")

Handler = Callable[[EventEnvelope], Awaitable[object] | object]
"""Called once per envelope; may be a plain function or a coroutine function."""

Sleep = Callable[[float], Awaitable[object]]
"""Waits the given seconds (``asyncio.sleep``; tests pass one that returns at once)."""


class ProjectionStoppedError(PersistenceError):
    """A projection stopped (its handler failed, its journal was closed, or ``stop()`` was
    called) while :meth:`Projection.caught_up` waited for it. The cause, if any, is chained."""


@dataclass(frozen=True, slots=True)
class HandlerRecovery:
    """What a :class:`Projection` does when its handler raises for an envelope (Akka
    Projections' ``HandlerRecoveryStrategy``).

    - :meth:`stop` (the default): the projection ends; ``stop()`` re-raises the error, and a
      restart handles the envelope again (at least once).
    - :meth:`skip`: log a warning and go on with the next envelope; the skipped one counts as
      handled.
    - :meth:`retry`: call the handler again for the same envelope up to ``retries`` times,
      waiting ``min(max_backoff, min_backoff * 2**attempt)`` seconds before each, then stop
      (or skip, with :meth:`then_skip`).
    """

    retries: int = 0
    then: Literal["stop", "skip"] = "stop"
    min_backoff: float = 0.1
    max_backoff: float = 10.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if not 0 <= self.min_backoff <= self.max_backoff:
            raise ValueError(
                "backoff needs 0 <= min_backoff <= max_backoff, got "
                f"min_backoff={self.min_backoff!r}, max_backoff={self.max_backoff!r}"
            )
        if self.then not in ("stop", "skip"):
            raise ValueError(f"then must be 'stop' or 'skip', got {self.then!r}")

    @classmethod
    def stop(cls) -> HandlerRecovery:
        """End the projection at the first failure (Akka's ``fail``)."""
        return cls()

    @classmethod
    def skip(cls) -> HandlerRecovery:
        """Skip the envelope whose handler failed, with a warning."""
        return cls(then="skip")

    @classmethod
    def retry(
        cls, retries: int, *, min_backoff: float = 0.1, max_backoff: float = 10.0
    ) -> HandlerRecovery:
        """Retry ``retries`` times with exponential backoff, then stop (Akka's
        ``retryAndFail``; add :meth:`then_skip` for ``retryAndSkip``)."""
        return cls(retries, "stop", min_backoff, max_backoff)

    def then_skip(self) -> Self:
        """The same retries, then skip the envelope instead of stopping."""
        return replace(self, then="skip")

    def then_stop(self) -> Self:
        """The same retries, then stop the projection."""
        return replace(self, then="stop")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        return min(self.max_backoff, self.min_backoff * 2.0**attempt)


class Projection:
    """Feeds every event tagged ``tag`` (every event, if ``tag`` is None) to ``handler``,
    resuming where it left off.

    :meth:`start` loads the projection's offset from ``offset_store`` and follows
    ``queries.events_by_tag(tag, offset)`` (or ``queries.all_events(offset)``) in a task of its
    own, handling one envelope at a time in journal order. After the envelopes of each stored
    event were all handled, that event's ordering becomes the offset; it is saved every
    ``save_every`` events and on :meth:`stop`.

    Delivery is at least once: after a restart the events after the last *saved* offset are
    handled again, so a crash (or a handler failure) with ``save_every=n`` repeats up to ``n``
    events. Make the handler idempotent, or save its results together with the offset.

    A handler that raises is dealt with by ``recovery_strategy`` (:class:`HandlerRecovery`:
    stop, skip, or retry with backoff, waiting with ``sleep``). :meth:`caught_up` waits until
    every event stored before the call was handled: read-your-writes for tests and callers.

    :meth:`stop` lets the event being handled finish (a backoff wait is cut short), saves the
    offset and re-raises the error that ended the projection, if any (a handler exception the
    strategy did not absorb, a decoding error). A projection whose journal was closed ends
    quietly (logged). ``async with projection:`` starts and stops it.
    """

    __slots__ = (
        "_busy",
        "_handled_to",
        "_handler",
        "_offset",
        "_offset_store",
        "_projection_id",
        "_queries",
        "_recovery",
        "_save_every",
        "_saved_offset",
        "_sleep",
        "_stopping",
        "_tag",
        "_task",
        "_waiters",
    )

    def __init__(
        self,
        projection_id: str,
        queries: EventQueries,
        tag: str | None,
        handler: Handler,
        offset_store: OffsetStore,
        *,
        save_every: int = 1,
        recovery_strategy: HandlerRecovery | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not projection_id:
            raise ValueError("projection_id must be a non-empty str")
        if save_every < 1:
            raise ValueError(f"save_every must be at least 1, got {save_every}")
        self._projection_id = projection_id
        self._queries = queries
        self._tag = tag
        self._handler = handler
        self._offset_store = offset_store
        self._save_every = save_every
        self._recovery = recovery_strategy or HandlerRecovery.stop()
        self._sleep = sleep
        self._offset = 0
        self._saved_offset = 0
        self._handled_to = 0  # every matching event up to this ordering was handled
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # handling an event or saving: stop() must wait, not cancel
        self._stopping = False

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        source = "all events" if self._tag is None else f"tag={self._tag!r}"
        return f"<Projection {self._projection_id!r} {source} offset={self._offset} {state}>"

    @property
    def projection_id(self) -> str:
        """The name the offset is stored under."""
        return self._projection_id

    @property
    def offset(self) -> int:
        """The ordering of the last event fully handled (saved or not yet)."""
        return self._offset

    @property
    def recovery_strategy(self) -> HandlerRecovery:
        """What happens when the handler raises."""
        return self._recovery

    @property
    def is_running(self) -> bool:
        """Whether the projection's task is still following the journal."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Load the saved offset and start following the journal from just after it."""
        if self._task is not None:
            raise RuntimeError(
                f"projection {self._projection_id!r} is already started; stop() it first"
            )
        self._queries._read_journal(  # fail here, not in the task, if the query is unsupported
            "query all events" if self._tag is None else "query events by tag"
        )
        self._offset = self._saved_offset = await self._offset_store.load(self._projection_id)
        self._handled_to = self._offset
        self._stopping = False
        task = asyncio.get_running_loop().create_task(
            self._run(), name=f"projection-{self._projection_id}"
        )
        task.add_done_callback(self._ended)
        self._task = task
        log.info(
            "projection_started",
            projection_id=self._projection_id,
            tag=self._tag,
            offset=self._offset,
        )

    async def stop(self) -> None:
        """Finish the event being handled, stop, save the offset; re-raise what ended the run."""
        task = self._task
        if task is None:
            return
        if not self._stopping:
            self._stopping = True
            if not self._busy:  # waiting for the journal or a backoff: nothing half done
                task.cancel()
        await asyncio.wait([task])
        self._task = None
        failure = None if task.cancelled() else task.exception()
        await self._save()
        log.info("projection_stopped", projection_id=self._projection_id, offset=self._offset)
        if failure is not None:
            raise failure

    async def caught_up(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Return once every event stored before this call (with the projection's tag) has been
        handled: read your own writes through the projection, no polling in tests.

        Raises :class:`ProjectionStoppedError` if the projection stops first, or has stopped
        (chained to the error that ended it, if any), and ``TimeoutError`` after ``timeout``
        seconds. Calling it on a projection that was not started is a ``RuntimeError``.
        """
        task = self._task
        if task is None:
            raise RuntimeError(
                f"projection {self._projection_id!r} is not running: start() it first"
            )
        if task.done():
            raise self._stopped_error("stopped before catching up", task)
        journal = self._queries._read_journal("wait for a projection")
        try:
            target = await journal.highest_ordering()
        except JournalClosedError as error:
            raise self._stopped_error("cannot catch up: its journal is closed", None) from error
        if self._handled_to >= target:
            return
        if task.done():  # it ended while the journal answered
            raise self._stopped_error(f"stopped before catching up with ordering {target}", task)
        waiter = asyncio.get_running_loop().create_future()
        entry = (target, waiter)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            raise TimeoutError(
                f"projection {self._projection_id!r} did not catch up with ordering {target} "
                f"within {timeout:g} s: it has handled up to {self._handled_to}"
            ) from None
        finally:
            self._waiters.remove(entry)

    async def __aenter__(self) -> Projection:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ internals

    def _stopped_error(self, problem: str, task: asyncio.Task[None] | None) -> Exception:
        failure = None
        if task is not None and task.done() and not task.cancelled():
            failure = task.exception()
        why = "" if failure is None else f": {failure!r}"
        error = ProjectionStoppedError(
            f"projection {self._projection_id!r} {problem} (offset {self._offset}){why}"
        )
        error.__cause__ = failure
        return error

    def _reached(self, ordering: int) -> None:
        if ordering <= self._handled_to:
            return
        self._handled_to = ordering
        for target, waiter in self._waiters:
            if target <= ordering and not waiter.done():
                waiter.set_result(None)

    def _ended(self, task: asyncio.Task[None]) -> None:
        for target, waiter in self._waiters:
            if not waiter.done():
                problem = f"stopped before catching up with ordering {target}"
                waiter.set_exception(self._stopped_error(problem, task))

    async def _save(self) -> None:
        if self._offset != self._saved_offset:
            offset = self._offset
            await self._offset_store.save(self._projection_id, offset)
            self._saved_offset = offset

    async def _run(self) -> None:
        unsaved = 0
        groups = self._queries._groups(self._tag, self._offset, live=True, progress=True)
        try:
            async with aclosing(groups):
                async for offset, envelopes in groups:
                    if envelopes is None:  # a pass over the journal ended: caught up to there
                        self._reached(offset)
                        continue
                    self._busy = True
                    for envelope in envelopes:
                        if not await self._handle(envelope):
                            return  # stopped during a backoff wait: the event is not done
                    self._offset = offset
                    unsaved += 1
                    if unsaved >= self._save_every:
                        await self._save()
                        unsaved = 0
                    self._busy = False
                    self._reached(offset)
                    if self._stopping:
                        return
        except Exception as exc:
            if isinstance(exc, JournalClosedError) and not self._busy:
                log.info(
                    "projection_journal_closed",
                    projection_id=self._projection_id,
                    offset=self._offset,
                )
                return
            log.error(
                "projection_failed",
                projection_id=self._projection_id,
                offset=self._offset,
                error=repr(exc),
            )
            raise
        finally:
            self._busy = False

    async def _handle(self, envelope: EventEnvelope) -> bool:
        """Run the handler on ``envelope`` as the recovery strategy says; False if the
        projection was stopped while it waited to retry."""
        recovery = self._recovery
        attempt = 0
        while True:
            try:
                result = self._handler(envelope)
                if inspect.isawaitable(result):
                    await result
                return True
            except Exception as exc:
                if attempt < recovery.retries:
                    if self._stopping:
                        return False
                    delay = recovery.delay(attempt)
                    attempt += 1
                    log.warning(
                        "projection_handler_retry",
                        projection_id=self._projection_id,
                        offset=envelope.offset,
                        persistence_id=envelope.persistence_id,
                        sequence_nr=envelope.sequence_nr,
                        attempt=attempt,
                        retry_in=delay,
                        error=repr(exc),
                    )
                    self._busy = False  # stop() may cut the wait short
                    try:
                        await self._sleep(delay)
                    finally:
                        self._busy = True
                    continue
                if recovery.then == "skip":
                    log.warning(
                        "projection_envelope_skipped",
                        projection_id=self._projection_id,
                        offset=envelope.offset,
                        persistence_id=envelope.persistence_id,
                        sequence_nr=envelope.sequence_nr,
                        attempts=attempt + 1,
                        error=repr(exc),
                    )
                    return True
                raise
