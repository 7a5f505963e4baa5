"""A resumable projection: a live tag query feeding a handler, its offset kept in a store."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from types import TracebackType

from persistence._errors import JournalClosedError
from persistence._logging import get_logger
from persistence.query._envelope import EventEnvelope
from persistence.query._offset_store import OffsetStore
from persistence.query._queries import EventQueries

log = get_logger("persistence.query")

Handler = Callable[[EventEnvelope], Awaitable[object] | object]
"""Called once per envelope; may be a plain function or a coroutine function."""


class Projection:
    """Feeds every event tagged ``tag`` to ``handler``, resuming where it left off.

    :meth:`start` loads the projection's offset from ``offset_store`` and follows
    ``queries.events_by_tag(tag, offset)`` in a task of its own, handling one envelope at a time
    in journal order. After the envelopes of each stored event were all handled, that event's
    ordering becomes the offset; it is saved every ``save_every`` events and on :meth:`stop`.

    Delivery is at least once: after a restart the events after the last *saved* offset are
    handled again, so a crash (or a handler failure) with ``save_every=n`` repeats up to ``n``
    events. Make the handler idempotent, or save its results together with the offset.

    :meth:`stop` lets the event being handled finish, saves the offset and re-raises the error
    that ended the projection, if any (a handler exception, a decoding error). A projection whose
    journal was closed ends quietly (logged). ``async with projection:`` starts and stops it.
    """

    __slots__ = (
        "_busy",
        "_handler",
        "_offset",
        "_offset_store",
        "_projection_id",
        "_queries",
        "_save_every",
        "_saved_offset",
        "_stopping",
        "_tag",
        "_task",
    )

    def __init__(
        self,
        projection_id: str,
        queries: EventQueries,
        tag: str,
        handler: Handler,
        offset_store: OffsetStore,
        *,
        save_every: int = 1,
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
        self._offset = 0
        self._saved_offset = 0
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # handling an event or saving: stop() must wait, not cancel
        self._stopping = False

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return (
            f"<Projection {self._projection_id!r} tag={self._tag!r} offset={self._offset} {state}>"
        )

    @property
    def projection_id(self) -> str:
        """The name the offset is stored under."""
        return self._projection_id

    @property
    def offset(self) -> int:
        """The ordering of the last event fully handled (saved or not yet)."""
        return self._offset

    @property
    def is_running(self) -> bool:
        """Whether the projection's task is still following the journal."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Load the saved offset and start following the tag from just after it."""
        if self._task is not None:
            raise RuntimeError(
                f"projection {self._projection_id!r} is already started; stop() it first"
            )
        self._offset = self._saved_offset = await self._offset_store.load(self._projection_id)
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"projection-{self._projection_id}"
        )
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
            if not self._busy:  # waiting for the journal: nothing half done to cut off
                task.cancel()
        await asyncio.wait([task])
        self._task = None
        failure = None if task.cancelled() else task.exception()
        await self._save()
        log.info("projection_stopped", projection_id=self._projection_id, offset=self._offset)
        if failure is not None:
            raise failure

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

    async def _save(self) -> None:
        if self._offset != self._saved_offset:
            offset = self._offset
            await self._offset_store.save(self._projection_id, offset)
            self._saved_offset = offset

    async def _run(self) -> None:
        handler = self._handler
        unsaved = 0
        groups = self._queries._groups_by_tag(self._tag, self._offset, live=True)
        try:
            async with aclosing(groups):
                async for offset, envelopes in groups:
                    self._busy = True
                    for envelope in envelopes:
                        result = handler(envelope)
                        if inspect.isawaitable(result):
                            await result
                    self._offset = offset
                    unsaved += 1
                    if unsaved >= self._save_every:
                        await self._save()
                        unsaved = 0
                    self._busy = False
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
