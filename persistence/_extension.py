"""The ``Persistence`` extension: one journal, snapshot store and serializer per actor system.

It also batches the writes of every persistent actor that persisted during one turn of the event
loop into a single ``journal.write`` call, so many actors share one transaction (group commit) and
one task, instead of one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from actorsys import ActorRef, ActorSystem, Extension
from persistence._errors import PersistenceConfigError, PersistenceIdInUseError
from persistence._logging import get_logger
from persistence.journal._protocol import AtomicWrite, Journal
from persistence.serialization import Serializer, default_serializer
from persistence.snapshot._protocol import SnapshotStore

if TYPE_CHECKING:
    from persistence._engine import _Batch, _Engine

log = get_logger("persistence")

WriteOutcome = list[BaseException | None] | BaseException


class Persistence(Extension):
    """Configures persistence for an actor system.

    ``ActorSystem("bank", extensions=[Persistence(journal="sqlite:data/bank.db")])``: the journal
    and snapshot store are given as instances or as URLs (``sqlite:PATH``, ``file:DIR``,
    ``memory:``). Without a snapshot store, snapshots are not available (saving one fails with a
    clear error, and a retention policy is ignored with one warning per actor class). Shutdown
    of the system flushes and closes both.

    Closing never hangs a shutdown: each of its steps (waiting for the writes in flight, closing
    the journal, closing the snapshot store) that takes longer than ``close_timeout`` seconds of
    real time is abandoned with a ``persistence_close_abandoned`` warning naming what was left.
    """

    def __init__(
        self,
        journal: Journal | str,
        snapshot_store: SnapshotStore | str | None = None,
        *,
        serializer: Serializer | None = None,
        close_timeout: float = 10.0,
    ) -> None:
        if not close_timeout > 0:
            raise PersistenceConfigError(
                f"close_timeout must be a positive number of seconds, got {close_timeout!r}"
            )
        # URLs are resolved lazily: a system given journal instances needs no URL parser
        self.journal: Journal
        self.snapshot_store: SnapshotStore | None
        if isinstance(journal, str):
            from persistence._urls import open_journal

            self.journal = open_journal(journal)
        else:
            self.journal = journal
        if isinstance(snapshot_store, str):
            from persistence._urls import open_snapshot_store

            self.snapshot_store = open_snapshot_store(snapshot_store)
        else:
            self.snapshot_store = snapshot_store
        self._refuse_closed_stores()
        self.serializer = serializer if serializer is not None else default_serializer
        self._writers: dict[str, ActorRef] = {}
        self._flush_requests: list[_Engine] = []
        self._flush_scheduled = False
        self.close_timeout = close_timeout
        self._tasks: dict[asyncio.Task[Any], Sequence[_Engine]] = {}
        """Background work shutdown waits for, and the actors it is for."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._warned: set[object] = set()

    @classmethod
    def of(cls, system: ActorSystem) -> Persistence:
        """The system's Persistence extension, or an error that says how to configure one."""
        extension = system.find_extension(cls)
        if extension is None:
            raise PersistenceConfigError(
                f"actor system {system.name!r} has no journal configured: create it with "
                f"ActorSystem({system.name!r}, "
                "extensions=[Persistence(journal='sqlite:data/app.db')])"
                " (or 'file:DIR', 'memory:', or a Journal instance)"
            )
        return extension

    async def start(self, system: ActorSystem) -> None:
        if self._closed:
            raise PersistenceConfigError(
                f"this Persistence extension was closed with its actor system; give actor system "
                f"{system.name!r} a new Persistence(...) (with a new journal instance)"
            )
        self._refuse_closed_stores()
        self._loop = asyncio.get_running_loop()

    def _refuse_closed_stores(self) -> None:
        """Closing a journal or snapshot store is final: say so now, not at the first persist."""
        for role, store in (("journal", self.journal), ("snapshot store", self.snapshot_store)):
            if getattr(store, "closed", False):
                raise PersistenceConfigError(
                    f"this {role} was closed ({store!r}); create a new instance for this "
                    "actor system (closing is final)"
                )

    async def close(self) -> None:
        """Wait for writes in flight, then close the journal and the snapshot store (each step
        bounded by ``close_timeout``)."""
        self._closed = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.close_timeout
        while self._tasks or self._flush_requests:
            if self._flush_requests:
                self._flush()
            _, pending = await asyncio.wait(list(self._tasks), timeout=deadline - loop.time())
            if pending:
                ids = {engine.persistence_id for task in pending for engine in self._tasks[task]}
                log.warning(
                    "persistence_close_abandoned",
                    step="writes in flight",
                    tasks=len(pending),
                    persistence_ids=sorted(ids),
                    close_timeout=self.close_timeout,
                )
                for task in pending:
                    task.cancel()
                break
        try:
            await self._close_bounded("journal close", self.journal)
        finally:
            if self.snapshot_store is not None:
                await self._close_bounded("snapshot store close", self.snapshot_store)

    async def _close_bounded(self, step: str, resource: Journal | SnapshotStore) -> None:
        closing = asyncio.ensure_future(resource.close())
        done, _ = await asyncio.wait([closing], timeout=self.close_timeout)
        if not done:
            closing.cancel()
            log.warning(
                "persistence_close_abandoned",
                step=step,
                resource=repr(resource),
                close_timeout=self.close_timeout,
            )
            return
        closing.result()  # its error, if any, is the system's to log

    async def writes_settled(self) -> None:
        """Wait until the writes submitted so far have been answered by the journal."""
        if self._flush_requests:
            self._flush()
        if self._tasks:
            # wait, not gather: cancelling this wait (a stopped recovery) must not cancel writes
            await asyncio.wait(list(self._tasks))

    def first_warning(self, key: object) -> bool:
        """Whether a warning identified by ``key`` is due: true the first time only."""
        if key in self._warned:
            return False
        self._warned.add(key)
        return True

    # ------------------------------------------------------------------ single writer

    def claim(self, persistence_id: str, ref: ActorRef) -> None:
        """Register ``ref`` as the one live writer of ``persistence_id``."""
        holder = self._writers.get(persistence_id)
        if holder is not None and holder is not ref and holder.is_alive:
            raise PersistenceIdInUseError(persistence_id, holder.path)
        self._writers[persistence_id] = ref

    def release(self, persistence_id: str, ref: ActorRef) -> None:
        if self._writers.get(persistence_id) is ref:
            del self._writers[persistence_id]

    # ------------------------------------------------------------------ writes

    def request_flush(self, engine: _Engine) -> None:
        """Have ``engine``'s pending atomic writes written at the end of this loop turn."""
        self._flush_requests.append(engine)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        engines, self._flush_requests = self._flush_requests, []
        if not engines:
            return
        self.spawn_task(self._write(engines, [engine.take_batch() for engine in engines]), engines)

    async def _write(self, engines: list[_Engine], batches: list[_Batch]) -> None:
        flat: list[AtomicWrite] = []
        for batch in batches:
            flat += batch.writes() if batch.rejected else batch.items  # type: ignore[arg-type]
        outcome: WriteOutcome | None = None  # None: every write stored, the common case
        try:
            results = await self.journal.write(flat) if flat else []
        except Exception as error:
            outcome = error
        else:
            if results.count(None) != len(results):
                outcome = results
        # Each engine runs its handlers (and its next command) here when its actor is idle: an
        # interruption raised by one of them must not leave the other engines unanswered.
        interrupted: BaseException | None = None
        start = 0
        for engine, batch in zip(engines, batches, strict=True):
            answer = outcome
            if isinstance(outcome, list):
                end = start + len(batch.writes())
                answer, start = outcome[start:end], end
            try:
                engine.writes_done(batch, answer)
            except BaseException as error:  # re-raised once every engine is answered
                interrupted = interrupted or error
        if interrupted is not None:
            raise interrupted

    def spawn_task(
        self,
        coroutine: Any,
        engines: Sequence[_Engine],
        done: Callable[[asyncio.Task[Any]], None] | None = None,
    ) -> None:
        """Run background persistence work for ``engines`` that shutdown waits for."""
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(coroutine)
        self._tasks[task] = engines
        task.add_done_callback(self._task_done)
        if done is not None:
            task.add_done_callback(done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        del self._tasks[task]
