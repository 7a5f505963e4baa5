"""A journal and a snapshot store that fail or reject on demand, for testing failure paths
without writing a journal (Akka's ``PersistenceTestKit`` and ``SnapshotTestKit``).

::

    journal, snapshots = TestJournal(), TestSnapshotStore()
    async with ActorSystem("test", extensions=[Persistence(journal, snapshots)]) as system:
        journal.fail_next_writes(persistence_id="account-7")   # that actor's next persist fails
        journal.reject_next_writes()                           # the next write of any actor
        journal.fail_next_reads(persistence_id="account-7")    # its next recovery fails
        snapshots.fail_next_saves()

Each ``fail_next_*``/``reject_next_*`` call adds a fault for the next ``count`` operations
(``count=None``: every one until :meth:`TestJournal.clear_faults`), optionally only those of one
persistence id. Faults apply in the order they were added. Both wrap a real backend (in memory by
default) that stores whatever is not failed or rejected.

What the actor sees, per :mod:`persistence` rules: a failed write stops it
(``on_persist_failure``; only the actors whose atomic writes failed, not the others of the same
batch); a rejected write skips its handler (``on_persist_rejected``) and the actor goes on; a
failed read during recovery stops it (``on_recovery_failure``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from persistence._errors import (
    JournalError,
    PersistenceConfigError,
    PersistenceError,
    SnapshotStoreError,
)
from persistence.journal._memory import InMemoryJournal
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    Journal,
    PersistentRecord,
    ReadJournal,
    TaggedRecord,
)
from persistence.snapshot._memory import InMemorySnapshotStore
from persistence.snapshot._protocol import (
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStore,
    StoredSnapshot,
)

__all__ = ["TestJournal", "TestSnapshotStore"]


@dataclass(slots=True)
class _Fault:
    remaining: int | None  # None: until cleared
    persistence_id: str | None  # None: any
    error: BaseException | None  # None: a default error naming what failed
    stored: bool = False


class _Faults:
    """Faults by kind, taken in the order they were added."""

    __slots__ = ("_by_kind",)

    def __init__(self) -> None:
        self._by_kind: dict[str, list[_Fault]] = {}

    def add(
        self,
        kind: str,
        count: int | None,
        persistence_id: str | None,
        error: BaseException | None,
        stored: bool = False,
    ) -> None:
        if count is not None and count < 1:
            raise ValueError(f"count must be at least 1, or None for every one; got {count}")
        self._by_kind.setdefault(kind, []).append(_Fault(count, persistence_id, error, stored))

    def take(self, kind: str, persistence_id: str) -> _Fault | None:
        """The first fault of ``kind`` for ``persistence_id``, counted as used."""
        faults = self._by_kind.get(kind)
        if not faults:
            return None
        for index, fault in enumerate(faults):
            if fault.persistence_id is None or fault.persistence_id == persistence_id:
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        del faults[index]
                return fault
        return None

    def clear(self) -> None:
        self._by_kind.clear()


def _check_error(error: BaseException | None, *, journal_error: bool, method: str) -> None:
    if error is None or isinstance(error, JournalError) == journal_error:
        return
    if journal_error:
        raise TypeError(
            f"{method} needs a JournalError (or None), got {error!r}: any other exception "
            "returned for a write is a rejection; use reject_next_writes for that"
        )
    raise TypeError(
        f"{method} needs an exception that is not a JournalError (or None), got {error!r}: "
        "a JournalError returned for a write is a failure; use fail_next_writes for that"
    )


class TestJournal:
    """A :class:`~persistence.journal.Journal` (and read journal) for tests that fails or
    rejects writes, reads and deletes on demand; ``inner`` stores everything else (default: a
    new in-memory journal).

    - :meth:`fail_next_writes`: the atomic writes fail (``on_persist_failure``; the actor
      stops). With ``stored=True`` they are stored first: the writer is told it failed, but a
      recovery replays the events (an outcome the writer cannot tell from a failure).
    - :meth:`reject_next_writes`: the atomic writes are rejected, nothing stored
      (``on_persist_rejected``; the actor goes on).
    - :meth:`fail_next_reads`: ``highest_sequence_nr`` and ``replay`` raise; recovery reads the
      highest sequence number first, so one fault fails one recovery.
    - :meth:`fail_next_deletes`: ``delete_to`` raises (``delete_events`` fails).

    A write counts per atomic write (one ``persist`` or ``persist_all``); the extension sends
    the writes of several actors in one ``write`` call, and only the faulted ones fail.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, inner: Journal | None = None) -> None:
        self.inner: Journal = inner if inner is not None else InMemoryJournal()
        """The journal that stores what is not failed or rejected."""
        self._faults = _Faults()

    def __repr__(self) -> str:
        return f"<TestJournal over {self.inner!r}>"

    # ------------------------------------------------------------------ faults

    def fail_next_writes(
        self,
        count: int | None = 1,
        *,
        persistence_id: str | None = None,
        error: JournalError | None = None,
        stored: bool = False,
    ) -> None:
        """Fail the next ``count`` atomic writes (of ``persistence_id``) with ``error``."""
        _check_error(error, journal_error=True, method="fail_next_writes")
        self._faults.add("write", count, persistence_id, error, stored)

    def reject_next_writes(
        self,
        count: int | None = 1,
        *,
        persistence_id: str | None = None,
        error: Exception | None = None,
    ) -> None:
        """Reject the next ``count`` atomic writes (of ``persistence_id``) with ``error`` as the
        cause (not a :class:`~persistence.JournalError`: that would be a failure)."""
        _check_error(error, journal_error=False, method="reject_next_writes")
        self._faults.add("reject", count, persistence_id, error)

    def fail_next_reads(
        self,
        count: int | None = 1,
        *,
        persistence_id: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Make the next ``count`` reads (``highest_sequence_nr``, ``replay``) raise."""
        self._faults.add("read", count, persistence_id, error)

    def fail_next_deletes(
        self,
        count: int | None = 1,
        *,
        persistence_id: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Make the next ``count`` ``delete_to`` calls raise."""
        self._faults.add("delete", count, persistence_id, error)

    def clear_faults(self) -> None:
        """Forget every fault not used up yet."""
        self._faults.clear()

    # ------------------------------------------------------------------ Journal

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        """Store the batch through ``inner``, except the faulted atomic writes."""
        results: list[BaseException | None] = [None] * len(writes)
        passed: list[int] = []
        failed_after_storing: dict[int, BaseException] = {}
        for index, write in enumerate(writes):
            pid = write.persistence_id
            fault = self._faults.take("write", pid)
            if fault is not None:
                error = fault.error or JournalError(
                    f"TestJournal: the write of persistence_id={pid!r}, sequence_nr="
                    f"{_numbers(write)} failed on purpose (fail_next_writes)"
                )
                if fault.stored:
                    failed_after_storing[index] = error
                    passed.append(index)
                else:
                    results[index] = error
                continue
            fault = self._faults.take("reject", pid)
            if fault is not None:
                results[index] = fault.error or PersistenceError(
                    f"TestJournal: the write of persistence_id={pid!r}, sequence_nr="
                    f"{_numbers(write)} was rejected on purpose (reject_next_writes)"
                )
                continue
            passed.append(index)
        if passed:
            stored = await self.inner.write([writes[index] for index in passed])
            for index, result in zip(passed, stored, strict=True):
                # stored: a write failed "after storing" still says it failed
                results[index] = result or failed_after_storing.get(index)
        return results

    async def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        """Replay from ``inner``, unless a read fault applies."""
        self._read_fault(persistence_id, "replay")
        async for page in self.inner.replay(
            persistence_id, from_sequence_nr, to_sequence_nr, max_count
        ):
            yield page

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        """From ``inner``, unless a read fault applies."""
        self._read_fault(persistence_id, "read the highest sequence number")
        return await self.inner.highest_sequence_nr(persistence_id)

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        """Delete through ``inner``, unless a delete fault applies."""
        fault = self._faults.take("delete", persistence_id)
        if fault is not None:
            raise fault.error or JournalError(
                f"TestJournal: deleting the events of persistence_id={persistence_id!r} up to "
                f"sequence_nr={to_sequence_nr} failed on purpose (fail_next_deletes)"
            )
        await self.inner.delete_to(persistence_id, to_sequence_nr)

    async def close(self) -> None:
        """Close ``inner``."""
        await self.inner.close()

    # ------------------------------------------------------------------ read side (delegated)

    def _read_side(self, operation: str) -> ReadJournal:
        inner: Any = self.inner
        if not isinstance(inner, ReadJournal):
            raise PersistenceConfigError(
                f"cannot {operation}: the journal {inner!r} under the TestJournal does not "
                "implement ReadJournal"
            )
        return inner

    async def persistence_ids(self) -> list[str]:
        return await self._read_side("list persistence ids").persistence_ids()

    def events_by_tag(
        self, tag: str, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        return self._read_side("query events by tag").events_by_tag(tag, after_ordering, max_count)

    async def highest_ordering(self) -> int:
        return await self._read_side("read the highest ordering").highest_ordering()

    def all_events(
        self, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        return self._read_side("query all events").all_events(after_ordering, max_count)

    # ------------------------------------------------------------------ reading back

    async def stored(self, persistence_id: str) -> list[PersistentRecord]:
        """Every event ``inner`` holds for ``persistence_id`` (faults do not apply)."""
        return [record async for page in self.inner.replay(persistence_id) for record in page]

    def _read_fault(self, persistence_id: str, operation: str) -> None:
        fault = self._faults.take("read", persistence_id)
        if fault is not None:
            raise fault.error or JournalError(
                f"TestJournal: cannot {operation} of persistence_id={persistence_id!r}: failed "
                "on purpose (fail_next_reads)"
            )


def _numbers(write: AtomicWrite) -> str:
    low, high = write.lowest_sequence_nr, write.highest_sequence_nr
    return str(low) if low == high else f"{low}..{high}"


class TestSnapshotStore:
    """A :class:`~persistence.snapshot.SnapshotStore` for tests that fails saves, loads and
    deletes on demand; ``inner`` keeps the snapshots (default: a new in-memory store).

    A failed save fails ``save_snapshot`` (``SaveSnapshotFailure``); a failed load fails the
    recovery that asked for it; a failed delete fails ``delete_snapshots`` (or the retention
    policy's clean-up).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, inner: SnapshotStore | None = None) -> None:
        self.inner: SnapshotStore = inner if inner is not None else InMemorySnapshotStore()
        """The store that keeps what is not failed."""
        self._faults = _Faults()

    def __repr__(self) -> str:
        return f"<TestSnapshotStore over {self.inner!r}>"

    def fail_next_saves(
        self,
        count: int | None = 1,
        *,
        persistence_id: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Make the next ``count`` saves (of ``persistence_id``) raise ``error``."""
        self._faults.add("save", count, persistence_id, error)

    def fail_next_loads(
        self,
        count: int | None = 1,
        *,
        persistence_id: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Make the next ``count`` loads (of ``persistence_id``) raise ``error``."""
        self._faults.add("load", count, persistence_id, error)

    def fail_next_deletes(
        self,
        count: int | None = 1,
        *,
        persistence_id: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Make the next ``count`` deletes (``delete``, ``delete_matching``) raise ``error``."""
        self._faults.add("delete", count, persistence_id, error)

    def clear_faults(self) -> None:
        """Forget every fault not used up yet."""
        self._faults.clear()

    def _fault(self, kind: str, persistence_id: str, what: Callable[[], str]) -> None:
        fault = self._faults.take(kind, persistence_id)
        if fault is not None:
            raise fault.error or SnapshotStoreError(
                f"TestSnapshotStore: {what()} failed on purpose (fail_next_{kind}s)"
            )

    async def save(
        self, metadata: SnapshotMetadata, manifest: str, payload: bytes
    ) -> SnapshotMetadata:
        self._fault(
            "save",
            metadata.persistence_id,
            lambda: (
                f"saving the snapshot of persistence_id={metadata.persistence_id!r} at "
                f"sequence_nr={metadata.sequence_nr}"
            ),
        )
        return await self.inner.save(metadata, manifest, payload)

    async def load(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> StoredSnapshot | None:
        self._fault(
            "load",
            persistence_id,
            lambda: f"loading a snapshot of persistence_id={persistence_id!r}",
        )
        return await self.inner.load(persistence_id, criteria)

    async def delete(self, metadata: SnapshotMetadata) -> None:
        self._fault(
            "delete",
            metadata.persistence_id,
            lambda: (
                f"deleting the snapshot of persistence_id={metadata.persistence_id!r} at "
                f"sequence_nr={metadata.sequence_nr}"
            ),
        )
        await self.inner.delete(metadata)

    async def delete_matching(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> None:
        self._fault(
            "delete",
            persistence_id,
            lambda: f"deleting snapshots of persistence_id={persistence_id!r}",
        )
        await self.inner.delete_matching(persistence_id, criteria)

    async def close(self) -> None:
        await self.inner.close()
