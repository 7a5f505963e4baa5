"""The journal plugin boundary: a handful of async methods over plain records.

Serialization happens above this boundary: a journal stores bytes under a type name (the
manifest) and never sees Python event objects. A journal never stores the sender of a message.

Rules every implementation follows (the conformance suite in :mod:`persistence.testing` checks
them):

- ``write(batch)``: each :class:`AtomicWrite` is all-or-nothing; the batch is only a performance
  unit (one transaction / one fsync for many writers: group commit). Raising means the whole batch
  failed (its outcome is unknown to the caller). Returning an exception at index ``i`` means write
  ``i`` was rejected and nothing of it was stored; ``None`` means it was stored. Once ``write``
  returned, a later replay returns the stored events, also after a crash of the process (subject to
  the journal's durability setting). Writing a ``(persistence_id, sequence_nr)`` that is already
  stored fails that atomic write with :class:`~persistence.SequenceNrConflictError`; nothing is
  overwritten.
- Owner epochs (the fencing token of sharding; optional for callers): an :class:`AtomicWrite`
  may carry an ``owner_epoch`` (an int from 0 to 2**63-1). Within the write's transaction the
  journal refuses it with :class:`~persistence.OwnerEpochFencedError` (nothing of it stored) if
  it stored a higher epoch for the id before; once stored, the write's epoch is the id's
  highest if it is higher. A write without an epoch is not fenced. A journal that cannot fence
  rejects every write carrying an epoch with a :class:`~persistence.JournalError` saying so.
- ``replay(pid, from_sequence_nr, to_sequence_nr, max)``: the stored events of ``pid`` with
  ``from <= sequence_nr <= to`` in sequence order, at most ``max`` of them, yielded in pages (lists)
  so that a long history streams with bounded memory and one backend round trip per page.
- ``replay_rows(pid, from_sequence_nr, to_sequence_nr, max)`` (optional, see :class:`RowReplay`):
  the same events as ``replay``, in the same pages, each as a row that starts with
  ``(sequence_nr, manifest, payload)``: what recovery reads, without a record per event.
- ``highest_sequence_nr(pid)``: the highest sequence number ever stored for ``pid`` (0 for an
  unknown id), independent of deletions.
- ``delete_to(pid, to_sequence_nr)``: deletes events up to and including ``to_sequence_nr``; never
  lowers the highest sequence number.
- Atomic writes are checked before anything of the batch is stored
  (:func:`persistence.journal._validation.check_atomic_write`): a write no backend could store
  (malformed, a wrong type, text that is not valid UTF-8 such as a lone surrogate) is rejected
  alone with a :class:`~persistence.JournalError` naming its persistence id; the rest of the
  batch is stored. Reading an id or tag that is not valid UTF-8 finds nothing.
- ``close()``: flushes and releases resources. Closing is final (as for trio's resources): a
  closed journal is never reopened, and every later call raises
  :class:`~persistence.JournalClosedError` ("you closed it", saying to create a new instance),
  while any other :class:`~persistence.JournalError` means the store failed ("it broke").
  Closing twice is harmless. The bundled journals also have a ``closed`` property, so that
  whoever is handed an instance (the ``Persistence`` extension) can refuse a closed one up front.

Journals that support the read side also implement :class:`ReadJournal`: every stored event gets a
journal-wide ``ordering`` (strictly increasing in write order, starting at 1), used as the offset of
``events_by_tag`` and ``all_events`` (offsets are exclusive: pass the last offset you saw).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, NamedTuple, Protocol, TypeAlias, cast, runtime_checkable

from persistence._errors import JournalError

MAX_SEQUENCE_NR = (1 << 63) - 1


class PersistentRecord(NamedTuple):
    """One stored event: what a journal writes and replays."""

    persistence_id: str
    sequence_nr: int
    manifest: str
    payload: bytes
    writer_id: str = ""
    timestamp: int = 0
    """Milliseconds since the Unix epoch, set by the writer."""
    tags: tuple[str, ...] = ()


class AtomicWrite(NamedTuple):
    """Events of one persistence id, consecutive sequence numbers, stored all or nothing."""

    records: Sequence[PersistentRecord]
    owner_epoch: int | None = None
    """The writer's owner epoch (fencing token), or ``None`` for an unfenced write."""

    @property
    def persistence_id(self) -> str:
        return self.records[0].persistence_id

    @property
    def lowest_sequence_nr(self) -> int:
        return self.records[0].sequence_nr

    @property
    def highest_sequence_nr(self) -> int:
        return self.records[-1].sequence_nr


def check_owner_epoch(write: AtomicWrite) -> JournalError | None:
    """The rejection of a write whose owner epoch is not ``None`` or an int of 64 bits."""
    epoch = write.owner_epoch
    if epoch is None or (type(epoch) is int and 0 <= epoch <= MAX_SEQUENCE_NR):
        return None
    return JournalError(
        f"invalid atomic write, persistence_id={write.persistence_id!r}: owner_epoch must be "
        f"None or an int from 0 to {MAX_SEQUENCE_NR}, not {epoch!r}"
    )


class TaggedRecord(NamedTuple):
    """An event as the read side sees it: the record and its journal-wide ordering (offset)."""

    ordering: int
    record: PersistentRecord


@runtime_checkable
class Journal(Protocol):
    """The write and replay side of an event journal."""

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        """Store the batch; per write ``None`` (stored) or the exception that rejected it."""
        ...

    def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        """Yield the matching events in sequence order, in pages."""
        ...

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        """The highest sequence number ever stored for the id (0 if unknown)."""
        ...

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        """Delete events up to and including ``to_sequence_nr``."""
        ...

    async def close(self) -> None:
        """Flush and release resources; every later call raises
        :class:`~persistence.JournalClosedError`."""
        ...


ReplayRow: TypeAlias = Sequence[Any]
"""One replayed event as recovery reads it: ``(sequence_nr, manifest, payload)``, maybe followed
by more fields (a journal may hand out the rows its store gives, e.g. stored tuples as they are)."""


@runtime_checkable
class RowReplay(Protocol):
    """Optional for a journal: replay as rows, the form recovery reads.

    A journal that can read ``(sequence_nr, manifest, payload)`` rows more cheaply than whole
    records implements this; recovery then takes pages of rows from it (see :func:`row_pages`).
    Same events, bounds, order and paging rules as :meth:`Journal.replay`.
    """

    def replay_rows(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[Sequence[ReplayRow]]:
        """Yield the matching events in sequence order, in pages of rows."""
        ...


def row_pages(
    journal: Journal,
    persistence_id: str,
    from_sequence_nr: int = 1,
    to_sequence_nr: int = MAX_SEQUENCE_NR,
    max_count: int = MAX_SEQUENCE_NR,
) -> AsyncIterator[Sequence[ReplayRow]]:
    """The events of a replay as pages of rows: the journal's own ``replay_rows`` if it has one
    (:class:`RowReplay`), else the records of its ``replay`` turned into rows.

    A ``replay`` overridden where ``replay_rows`` is not (a subclass of a bundled journal that
    filters or watches its replays, an instance attribute) is what the rows come from.
    """
    if _reads_rows(journal):
        rows = cast(RowReplay, journal)
        return rows.replay_rows(persistence_id, from_sequence_nr, to_sequence_nr, max_count)
    return _rows_of(journal.replay(persistence_id, from_sequence_nr, to_sequence_nr, max_count))


def _reads_rows(journal: Journal) -> bool:
    if "replay" in getattr(journal, "__dict__", ()):
        return False
    mro = type(journal).__mro__
    rows = next((cls for cls in mro if "replay_rows" in vars(cls)), None)
    replay = next((cls for cls in mro if "replay" in vars(cls)), object)
    return rows is not None and issubclass(rows, replay)


async def _rows_of(
    pages: AsyncIterator[list[PersistentRecord]],
) -> AsyncIterator[Sequence[ReplayRow]]:
    async for page in pages:
        yield [(record[1], record[2], record[3]) for record in page]


@runtime_checkable
class ReadJournal(Protocol):
    """Queries over everything a journal stored (the CQRS read side)."""

    async def persistence_ids(self) -> list[str]:
        """Every persistence id that has stored at least one event, in first-write order."""
        ...

    def events_by_tag(
        self, tag: str, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Events carrying ``tag`` with ``ordering > after_ordering``, in ordering order, paged."""
        ...

    async def highest_ordering(self) -> int:
        """The ordering of the newest stored event (0 if none)."""
        ...

    def all_events(
        self, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Every stored event of every id with ``ordering > after_ordering``, in ordering order,
        paged (the notification log of the whole journal); deleted events are left out."""
        ...
