"""Fault injection around real journals and snapshot stores: hold writes, fail them, count them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence

from persistence.journal import MAX_SEQUENCE_NR, AtomicWrite, Journal, PersistentRecord
from persistence.snapshot import (
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStore,
    StoredSnapshot,
)


class ControlledJournal:
    """Delegates to a real journal; a test can hold writes at a gate, make them fail, and see
    every ``write`` call (one call per batch)."""

    def __init__(self, inner: Journal) -> None:
        self.inner = inner
        self.write_calls: list[list[AtomicWrite]] = []
        """Every ``write`` call's batch, in call order."""
        self.completed_calls = 0
        """How many ``write`` calls have been answered (with results or an error)."""
        self.replay_calls = 0
        self._holding = False
        self._held: dict[int, asyncio.Event] = {}
        self._replay_gate: asyncio.Event | None = None
        self._failures: deque[tuple[BaseException, bool]] = deque()
        self._replay_failure: BaseException | None = None
        self._delete_failure: BaseException | None = None
        self._changed: asyncio.Condition | None = None

    # ------------------------------------------------------------------ controls

    def hold_writes(self) -> None:
        """Make every ``write`` call wait until it is released."""
        self._holding = True

    def release_writes(self) -> None:
        """Let every held write through, in call order, and stop holding."""
        self._holding = False
        for index in sorted(self._held):
            self._held.pop(index).set()

    def release_write_call(self, index: int) -> None:
        """Let the held ``write`` call number ``index`` (0-based) through, alone."""
        self._held.pop(index).set()

    def hold_replays(self) -> None:
        """Make every ``replay`` wait until :meth:`release_replays`."""
        self._replay_gate = asyncio.Event()

    def release_replays(self) -> None:
        """Let held and later replays through."""
        if self._replay_gate is not None:
            self._replay_gate.set()
            self._replay_gate = None

    def fail_next_writes(
        self, error: BaseException, count: int = 1, *, after_storing: bool = False
    ) -> None:
        """Make the next ``count`` write calls raise ``error``: before anything is stored, or
        (``after_storing``) once the real journal stored the batch, an outcome the writer
        cannot tell apart from a failure."""
        self._failures.extend([(error, after_storing)] * count)

    def fail_replays(self, error: BaseException | None) -> None:
        """Make ``replay`` raise ``error`` (None: replay normally again)."""
        self._replay_failure = error

    def fail_deletes(self, error: BaseException | None) -> None:
        """Make ``delete_to`` raise ``error`` (None: delete normally again)."""
        self._delete_failure = error

    async def wait_for_write_calls(self, count: int) -> None:
        """Return once ``write`` has been called at least ``count`` times."""
        async with self._condition():
            await self._condition().wait_for(lambda: len(self.write_calls) >= count)

    async def wait_for_completed_calls(self, count: int) -> None:
        """Return once the real journal has answered at least ``count`` write calls."""
        async with self._condition():
            await self._condition().wait_for(lambda: self.completed_calls >= count)

    async def wait_for_replay_calls(self, count: int) -> None:
        """Return once ``replay`` has been called at least ``count`` times."""
        async with self._condition():
            await self._condition().wait_for(lambda: self.replay_calls >= count)

    def written_sequence_nrs(self) -> list[list[int]]:
        """The sequence numbers of every atomic write of every call, in call order."""
        return [
            [record.sequence_nr for write in call for record in write.records]
            for call in self.write_calls
        ]

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    # ------------------------------------------------------------------ Journal

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        async with self._condition():
            index = len(self.write_calls)
            self.write_calls.append(list(writes))
            self._condition().notify_all()
        failure = self._failures.popleft() if self._failures else None
        if self._holding:
            gate = self._held[index] = asyncio.Event()
            await gate.wait()
        try:
            if failure is not None and not failure[1]:
                raise failure[0]
            results = await self.inner.write(writes)
            if failure is not None:
                raise failure[0]
            return results
        finally:
            async with self._condition():
                self.completed_calls += 1
                self._condition().notify_all()

    async def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        self.replay_calls += 1
        async with self._condition():
            self._condition().notify_all()
        gate = self._replay_gate
        if gate is not None:
            await gate.wait()
        if self._replay_failure is not None:
            raise self._replay_failure
        async for page in self.inner.replay(
            persistence_id, from_sequence_nr, to_sequence_nr, max_count
        ):
            yield page

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        return await self.inner.highest_sequence_nr(persistence_id)

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        if self._delete_failure is not None:
            raise self._delete_failure
        await self.inner.delete_to(persistence_id, to_sequence_nr)

    async def close(self) -> None:
        self.release_writes()
        self.release_replays()
        await self.inner.close()

    # ------------------------------------------------------------------ reading back

    async def stored(self, persistence_id: str) -> list[PersistentRecord]:
        """Every stored event of ``persistence_id``."""
        return [record async for page in self.inner.replay(persistence_id) for record in page]


class ControlledSnapshotStore:
    """Delegates to a real snapshot store; a test can make saves, loads and deletes fail."""

    def __init__(self, inner: SnapshotStore) -> None:
        self.inner = inner
        self._save_failure: BaseException | None = None
        self._load_failure: BaseException | None = None
        self._delete_failure: BaseException | None = None

    def fail_saves(self, error: BaseException | None) -> None:
        """Make ``save`` raise ``error`` (None: save normally again)."""
        self._save_failure = error

    def fail_loads(self, error: BaseException | None) -> None:
        """Make ``load`` raise ``error`` (None: load normally again)."""
        self._load_failure = error

    def fail_deletes(self, error: BaseException | None) -> None:
        """Make ``delete`` and ``delete_matching`` raise ``error`` (None: delete normally)."""
        self._delete_failure = error

    async def save(
        self, metadata: SnapshotMetadata, manifest: str, payload: bytes
    ) -> SnapshotMetadata:
        if self._save_failure is not None:
            raise self._save_failure
        return await self.inner.save(metadata, manifest, payload)

    async def load(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> StoredSnapshot | None:
        if self._load_failure is not None:
            raise self._load_failure
        return await self.inner.load(persistence_id, criteria)

    async def delete(self, metadata: SnapshotMetadata) -> None:
        if self._delete_failure is not None:
            raise self._delete_failure
        await self.inner.delete(metadata)

    async def delete_matching(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> None:
        if self._delete_failure is not None:
            raise self._delete_failure
        await self.inner.delete_matching(persistence_id, criteria)

    async def close(self) -> None:
        await self.inner.close()

    async def sequence_nrs(self, persistence_id: str) -> list[int]:
        """The sequence numbers of the stored snapshots of ``persistence_id``, oldest first."""
        found: list[int] = []
        criteria = SnapshotSelectionCriteria()
        while (stored := await self.inner.load(persistence_id, criteria)) is not None:
            found.append(stored.metadata.sequence_nr)
            criteria = criteria.with_max_sequence_nr(stored.metadata.sequence_nr - 1)
        return sorted(found)


class StuckJournal:
    """Delegates to a real journal, except that the operations named in ``stuck`` never return
    (they wait for an event that is never set), like a store that stopped answering."""

    def __init__(self, inner: Journal, stuck: set[str]) -> None:
        self.inner = inner
        self.stuck = stuck
        self.calls: list[str] = []
        """The operations called, in order."""
        self._never = asyncio.Event()
        self._changed: asyncio.Condition | None = None

    async def wait_for_call(self, operation: str, count: int = 1) -> None:
        """Return once ``operation`` has been called ``count`` times."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            await self._changed.wait_for(lambda: self.calls.count(operation) >= count)

    async def _enter(self, operation: str) -> None:
        self.calls.append(operation)
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()
        if operation in self.stuck:
            await self._never.wait()

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        await self._enter("write")
        return await self.inner.write(writes)

    async def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        await self._enter("replay")
        async for page in self.inner.replay(
            persistence_id, from_sequence_nr, to_sequence_nr, max_count
        ):
            yield page

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        await self._enter("highest_sequence_nr")
        return await self.inner.highest_sequence_nr(persistence_id)

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        await self._enter("delete_to")
        await self.inner.delete_to(persistence_id, to_sequence_nr)

    async def close(self) -> None:
        await self._enter("close")
        await self.inner.close()


class PagedJournal:
    """Delegates to a real journal; ``replay`` hands out one event per page, each only once the
    test called :meth:`release_page` (a slow but live replay)."""

    def __init__(self, inner: Journal) -> None:
        self.inner = inner
        self._pages: asyncio.Queue[None] = asyncio.Queue()

    def release_page(self) -> None:
        """Let the next page of the replay through."""
        self._pages.put_nowait(None)

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        return await self.inner.write(writes)

    async def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        async for page in self.inner.replay(
            persistence_id, from_sequence_nr, to_sequence_nr, max_count
        ):
            for record in page:
                await self._pages.get()
                yield [record]

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        return await self.inner.highest_sequence_nr(persistence_id)

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        await self.inner.delete_to(persistence_id, to_sequence_nr)

    async def close(self) -> None:
        await self.inner.close()


class StuckSnapshotStore:
    """Delegates to a real snapshot store, except that ``save`` never returns."""

    def __init__(self, inner: SnapshotStore) -> None:
        self.inner = inner
        self.saving = asyncio.Event()
        """Set once ``save`` was called."""
        self._never = asyncio.Event()

    async def save(
        self, metadata: SnapshotMetadata, manifest: str, payload: bytes
    ) -> SnapshotMetadata:
        self.saving.set()
        await self._never.wait()
        return await self.inner.save(metadata, manifest, payload)

    async def load(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> StoredSnapshot | None:
        return await self.inner.load(persistence_id, criteria)

    async def delete(self, metadata: SnapshotMetadata) -> None:
        await self.inner.delete(metadata)

    async def delete_matching(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> None:
        await self.inner.delete_matching(persistence_id, criteria)

    async def close(self) -> None:
        await self.inner.close()
