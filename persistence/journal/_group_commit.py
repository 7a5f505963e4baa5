"""Group commit: concurrent ``write`` calls share one transaction / one fsync.

While a flush is in flight, further submissions queue up; when it completes, everything queued is
flushed together. A single writer pays one task hop per write; many writers pay one flush per
burst instead of one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from persistence.journal._protocol import AtomicWrite

WriteResults = list[BaseException | None]
Flush = Callable[[list[AtomicWrite]], Awaitable[WriteResults]]


class GroupCommitter:
    """Merges concurrent batches of atomic writes into one call of ``flush``."""

    __slots__ = ("_flush", "_max_batch", "_pending", "_task")

    def __init__(self, flush: Flush, *, max_batch: int = 10_000) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._pending: list[tuple[Sequence[AtomicWrite], asyncio.Future[WriteResults]]] = []
        self._task: asyncio.Task[None] | None = None

    def submit(self, writes: Sequence[AtomicWrite]) -> asyncio.Future[WriteResults]:
        """Queue ``writes``; the future resolves with their per-write results."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WriteResults] = loop.create_future()
        self._pending.append((writes, future))
        if self._task is None:
            self._task = loop.create_task(self._run())
        return future

    async def drain(self) -> None:
        """Wait until everything submitted so far has been flushed."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        try:
            while self._pending:
                batch = self._take_batch()
                flat = [write for writes, _ in batch for write in writes]
                try:
                    results = await self._flush(flat)
                except Exception as exc:  # the whole batch failed: every submitter learns why
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:  # cancelled or interrupted: nobody may wait forever
                    for _, future in [*batch, *self._pending]:
                        future.cancel()
                    self._pending = []
                    raise
                start = 0
                for writes, future in batch:
                    end = start + len(writes)
                    if not future.done():
                        future.set_result(results[start:end])
                    start = end
        finally:
            self._task = None

    def _take_batch(
        self,
    ) -> list[tuple[Sequence[AtomicWrite], asyncio.Future[WriteResults]]]:
        count = 0
        for index, (writes, _) in enumerate(self._pending):
            count += len(writes)
            if count >= self._max_batch:
                batch, self._pending = self._pending[: index + 1], self._pending[index + 1 :]
                return batch
        batch, self._pending = self._pending, []
        return batch
