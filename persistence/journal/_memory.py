"""A journal held in memory: for tests, examples and as the reference the conformance suite
checks every other journal against. Nothing survives the process."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator, Sequence

from persistence._errors import (
    JournalClosedError,
    OwnerEpochFencedError,
    SequenceNrConflictError,
)
from persistence.journal._changes import Changes
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    PersistentRecord,
    TaggedRecord,
    check_owner_epoch,
)
from persistence.journal._validation import check_atomic_write

_PAGE_SIZE = 1000


class _IdLog:
    """The stored events of one persistence id, sorted by sequence number."""

    __slots__ = ("highest", "orderings", "records", "seqs")

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.records: list[PersistentRecord] = []
        self.orderings: list[int] = []
        self.highest = 0


class InMemoryJournal:
    """A :class:`~persistence.journal.Journal` and :class:`~persistence.journal.ReadJournal`
    that keeps everything in dicts and lists of this process."""

    def __init__(self) -> None:
        self._logs: dict[str, _IdLog] = {}  # insertion order is first-write order
        self._by_ordering: dict[int, PersistentRecord] = {}
        self._tags: dict[str, list[int]] = {}
        self._ordering = 0
        self._closed = False
        self._epochs: dict[str, int] = {}  # the highest owner epoch stored per id
        self.changes = Changes()
        """Bumped after every write that stored events (live queries wait on it)."""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<InMemoryJournal {state}, {len(self._by_ordering)} events>"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every later call raises)."""
        return self._closed

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise JournalClosedError(
                f"cannot {operation}: the in-memory journal is closed; create a new instance to "
                "use it again"
            )

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        """Store each atomic write unless it is malformed or one of its numbers is taken."""
        self._check_open("write")
        results: list[BaseException | None] = []
        for write in writes:
            error = (
                check_atomic_write(write)
                or check_owner_epoch(write)
                or self._fenced(write)
                or self._conflict(write)
            )
            if error is None:
                self._store(write)
            results.append(error)
        if results.count(None):
            self.changes.bump()
        return results

    def _fenced(self, write: AtomicWrite) -> OwnerEpochFencedError | None:
        epoch = write.owner_epoch
        if epoch is None:
            return None
        stored = self._epochs.get(write.persistence_id, epoch)
        return (
            OwnerEpochFencedError(write.persistence_id, epoch, stored) if stored > epoch else None
        )

    def _conflict(self, write: AtomicWrite) -> SequenceNrConflictError | None:
        log = self._logs.get(write.persistence_id)
        if log is None:
            return None
        seqs = log.seqs
        index = bisect_left(seqs, write.lowest_sequence_nr)
        if index < len(seqs) and seqs[index] <= write.highest_sequence_nr:
            return SequenceNrConflictError(write.persistence_id, seqs[index])
        return None

    def _store(self, write: AtomicWrite) -> None:
        log = self._logs.get(write.persistence_id)
        if log is None:
            log = self._logs[write.persistence_id] = _IdLog()
        for given in write.records:
            record = given if type(given.tags) is tuple else given._replace(tags=tuple(given.tags))
            self._ordering += 1
            ordering = self._ordering
            self._by_ordering[ordering] = record
            for tag in dict.fromkeys(record.tags):
                self._tags.setdefault(tag, []).append(ordering)
            seq = record.sequence_nr
            if not log.seqs or seq > log.seqs[-1]:
                log.seqs.append(seq)
                log.records.append(record)
                log.orderings.append(ordering)
            else:  # an older number written late (below a gap): keep the lists sorted
                index = bisect_left(log.seqs, seq)
                log.seqs.insert(index, seq)
                log.records.insert(index, record)
                log.orderings.insert(index, ordering)
        log.highest = max(log.highest, write.highest_sequence_nr)
        if write.owner_epoch is not None:
            epochs = self._epochs
            epochs[write.persistence_id] = max(
                epochs.get(write.persistence_id, 0), write.owner_epoch
            )

    async def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        """Yield the events of ``persistence_id`` within the inclusive bounds, in pages."""
        self._check_open("replay")
        remaining = max_count
        low = from_sequence_nr
        while remaining > 0 and low <= to_sequence_nr:
            log = self._logs.get(persistence_id)
            if log is None:
                return
            start = bisect_left(log.seqs, low)
            end = min(bisect_right(log.seqs, to_sequence_nr), start + min(remaining, _PAGE_SIZE))
            if start >= end:
                return
            page = log.records[start:end]
            remaining -= len(page)
            low = page[-1].sequence_nr + 1
            yield page
            self._check_open("replay")

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        """The highest sequence number ever stored for the id (0 if unknown)."""
        self._check_open("read the highest sequence number")
        log = self._logs.get(persistence_id)
        return 0 if log is None else log.highest

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        """Delete the stored events of the id up to and including ``to_sequence_nr``."""
        self._check_open("delete events")
        log = self._logs.get(persistence_id)
        if log is None:
            return
        end = bisect_right(log.seqs, to_sequence_nr)
        for record, ordering in zip(log.records[:end], log.orderings[:end], strict=True):
            del self._by_ordering[ordering]
            for tag in dict.fromkeys(record.tags):
                orderings = self._tags[tag]
                del orderings[bisect_left(orderings, ordering)]
        del log.seqs[:end], log.records[:end], log.orderings[:end]

    async def close(self) -> None:
        """Mark the journal closed; later calls raise :class:`~persistence.JournalClosedError`
        (closing is final, and the events are gone with it)."""
        self._closed = True

    async def persistence_ids(self) -> list[str]:
        """Every id that has stored at least one event, in first-write order."""
        self._check_open("list persistence ids")
        return list(self._logs)

    async def events_by_tag(
        self, tag: str, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Yield the events carrying ``tag`` with ``ordering > after_ordering``, in pages."""
        self._check_open("query events by tag")
        remaining = max_count
        after = after_ordering
        while remaining > 0:
            orderings = self._tags.get(tag, [])
            start = bisect_right(orderings, after)
            chunk = orderings[start : start + min(remaining, _PAGE_SIZE)]
            if not chunk:
                return
            page = [TaggedRecord(ordering, self._by_ordering[ordering]) for ordering in chunk]
            remaining -= len(page)
            after = chunk[-1]
            yield page
            self._check_open("query events by tag")

    async def highest_ordering(self) -> int:
        """The ordering of the newest event ever stored (0 if none)."""
        self._check_open("read the highest ordering")
        return self._ordering

    async def all_events(
        self, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Yield every stored event with ``ordering > after_ordering``, in pages."""
        self._check_open("query all events")
        remaining = max_count
        after = after_ordering
        while remaining > 0:
            by_ordering = self._by_ordering
            want = min(remaining, _PAGE_SIZE)
            # Few deleted events: walk the orderings after the offset; mostly deleted: walk the
            # live ones (the dict keeps them in ordering order).
            few_deleted = self._ordering - after <= 4 * len(by_ordering)
            candidates = range(after + 1, self._ordering + 1) if few_deleted else by_ordering
            chunk: list[int] = []
            for ordering in candidates:
                if ordering > after and ordering in by_ordering:
                    chunk.append(ordering)
                    if len(chunk) == want:
                        break
            if not chunk:
                return
            page = [TaggedRecord(ordering, by_ordering[ordering]) for ordering in chunk]
            remaining -= len(page)
            after = chunk[-1]
            yield page
            self._check_open("query all events")
