"""Current and live queries over a journal: events by persistence id, events by tag, ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any, TypeVar

from persistence._errors import PersistenceConfigError
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    Journal,
    PersistentRecord,
    ReadJournal,
    TaggedRecord,
)
from persistence.query._envelope import EventEnvelope
from persistence.serialization import Serializer

T = TypeVar("T")

Progress = tuple[int, list[EventEnvelope] | None]
"""``(offset, envelopes)``: the envelopes decoded from one stored event (none if upcasters
dropped it) and that event's offset; or ``(ordering, None)``: every matching event up to that
ordering was yielded (what a projection's ``caught_up`` waits for)."""

PagesAfter = Callable[[int], AsyncIterator[list[TaggedRecord]]]


@asynccontextmanager
async def _closing(iterator: AsyncIterator[T]) -> AsyncGenerator[AsyncIterator[T], None]:
    """Close ``iterator`` on exit if it can be closed (the protocols promise only iteration)."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def _flatten(
    groups: AsyncGenerator[Progress, None],
) -> AsyncGenerator[EventEnvelope, None]:
    async with aclosing(groups):
        async for _, envelopes in groups:
            if envelopes is not None:
                for envelope in envelopes:
                    yield envelope


def _generation(journal: object) -> int:
    """The journal's write generation (0 if it does not signal writes)."""
    changes = getattr(journal, "changes", None)
    return 0 if changes is None else int(changes.generation)


class EventQueries:
    """The read side of a journal: current and live queries yielding :class:`EventEnvelope`.

    Current queries (``current_*``) end at the journal's end as of the call: events stored while
    one runs are not included. Live queries keep following the journal, polling it every
    ``poll_interval`` seconds while they are caught up, until the consumer stops iterating (close
    them with :func:`contextlib.aclosing` or by cancelling the consuming task) or, for queries by
    persistence id, until ``to_sequence_nr`` was reached. Pages are streamed: a long history is
    never held in memory at once.

    Payloads are decoded with ``serializer``; decoding errors
    (:class:`~persistence.SerializationError`, :class:`~persistence.UnknownManifestError`)
    end the query. When the journal is closed, a running query raises
    :class:`~persistence.JournalClosedError` at its next read.

    Queries by tag and the persistence-id queries need a journal that also implements
    :class:`~persistence.journal.ReadJournal`; calling them on one that does not raises
    :class:`~persistence.PersistenceConfigError` at once.
    """

    __slots__ = ("_journal", "_poll_interval", "_serializer")

    def __init__(
        self, journal: Journal, serializer: Serializer, *, poll_interval: float = 0.1
    ) -> None:
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be positive seconds, got {poll_interval!r}")
        self._journal = journal
        self._serializer = serializer
        self._poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"<EventQueries over {self._journal!r}, poll_interval={self._poll_interval}>"

    @property
    def journal(self) -> Journal:
        """The journal queried."""
        return self._journal

    @property
    def poll_interval(self) -> float:
        """Seconds a caught-up live query waits before asking the journal again."""
        return self._poll_interval

    # -- by persistence id --------------------------------------------------------------------

    def current_events_by_persistence_id(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
    ) -> AsyncGenerator[EventEnvelope, None]:
        """The stored events of ``persistence_id`` with ``from <= sequence_nr <= to`` (inclusive),
        in sequence order, up to the highest sequence number at the time of the call."""
        return _flatten(
            self._id_groups(persistence_id, from_sequence_nr, to_sequence_nr, live=False)
        )

    def events_by_persistence_id(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
    ) -> AsyncGenerator[EventEnvelope, None]:
        """Like :meth:`current_events_by_persistence_id`, then follows newly stored events; ends
        once ``to_sequence_nr`` was yielded."""
        return _flatten(
            self._id_groups(persistence_id, from_sequence_nr, to_sequence_nr, live=True)
        )

    async def _id_groups(
        self, persistence_id: str, low: int, high: int, *, live: bool
    ) -> AsyncGenerator[Progress, None]:
        journal = self._journal
        if not live:
            high = min(high, await journal.highest_sequence_nr(persistence_id))
        while low <= high:
            found = False
            since = _generation(journal)
            pages = journal.replay(persistence_id, low, high)
            async with _closing(pages):
                async for page in pages:
                    for record in page:
                        found = True
                        low = record.sequence_nr + 1
                        yield record.sequence_nr, self._decode(record.sequence_nr, record)
            if not live:
                return
            if not found:
                await self._idle(journal, since)

    # -- by tag -------------------------------------------------------------------------------

    def current_events_by_tag(
        self, tag: str, offset: int = 0
    ) -> AsyncGenerator[EventEnvelope, None]:
        """The stored events tagged ``tag`` with an ordering above ``offset`` (exclusive: pass the
        last offset you saw), in ordering order, up to the journal's end at the time of the call.
        """
        return _flatten(self._groups(tag, offset, live=False, progress=False))

    def events_by_tag(self, tag: str, offset: int = 0) -> AsyncGenerator[EventEnvelope, None]:
        """Like :meth:`current_events_by_tag`, then follows newly stored events with the tag."""
        return _flatten(self._groups(tag, offset, live=True, progress=False))

    # -- all events ---------------------------------------------------------------------------

    def current_all_events(self, offset: int = 0) -> AsyncGenerator[EventEnvelope, None]:
        """Every stored event of every persistence id with an ordering above ``offset``
        (exclusive), in ordering order, up to the journal's end at the time of the call: the
        journal's notification log."""
        return _flatten(self._groups(None, offset, live=False, progress=False))

    def all_events(self, offset: int = 0) -> AsyncGenerator[EventEnvelope, None]:
        """Like :meth:`current_all_events`, then follows newly stored events."""
        return _flatten(self._groups(None, offset, live=True, progress=False))

    # -- by tag or all, as groups -------------------------------------------------------------

    def _groups(
        self, tag: str | None, offset: int, *, live: bool, progress: bool
    ) -> AsyncGenerator[Progress, None]:
        # Per stored event, its ordering and the envelopes decoded from it (none if upcasters
        # dropped it): a Projection commits an offset only after all of them were handled. With
        # ``progress``, each pass over the journal ends with ``(ordering, None)``.
        if tag is None:
            journal = self._read_journal("query all events")
            pages_after: PagesAfter = journal.all_events
        else:
            journal = self._read_journal("query events by tag")

            def pages_after(after: int) -> AsyncIterator[list[TaggedRecord]]:
                return journal.events_by_tag(tag, after)

        if offset < 0:
            raise ValueError(f"offset must be 0 or a journal ordering, got {offset}")
        return self._follow(journal, pages_after, offset, live, progress)

    async def _follow(
        self, journal: ReadJournal, pages_after: PagesAfter, after: int, live: bool, progress: bool
    ) -> AsyncGenerator[Progress, None]:
        bound = MAX_SEQUENCE_NR if live else await journal.highest_ordering()
        while True:
            # Everything stored up to this ordering is in the pass below (orderings are handed
            # out in commit order).
            reached = await journal.highest_ordering() if progress else 0
            found = False
            since = _generation(journal)
            pages = pages_after(after)
            async with _closing(pages):
                async for page in pages:
                    for ordering, record in page:
                        if ordering > bound:
                            return
                        found = True
                        after = ordering
                        yield ordering, self._decode(ordering, record)
            if not live:
                return
            if progress:
                yield reached, None
            if not found:
                await self._idle(journal, since)

    # -- persistence ids ----------------------------------------------------------------------

    def current_persistence_ids(self) -> AsyncGenerator[str, None]:
        """Every persistence id that has stored an event, in first-write order."""
        return self._persistence_ids(self._read_journal("list persistence ids"), live=False)

    def persistence_ids(self) -> AsyncGenerator[str, None]:
        """Like :meth:`current_persistence_ids`, then each new id once, as it appears."""
        return self._persistence_ids(self._read_journal("list persistence ids"), live=True)

    async def _persistence_ids(
        self, journal: ReadJournal, *, live: bool
    ) -> AsyncGenerator[str, None]:
        seen: set[str] = set()
        listed_at = -1
        while True:
            if live:
                # A new id means a new event: while the highest ordering stands still, there is
                # nothing to list. Read before listing, so nothing stored in between is missed.
                highest = await journal.highest_ordering()
                if highest == listed_at:
                    await asyncio.sleep(self._poll_interval)
                    continue
                listed_at = highest
            for persistence_id in await journal.persistence_ids():
                if persistence_id not in seen:
                    seen.add(persistence_id)
                    yield persistence_id
            if not live:
                return
            await asyncio.sleep(self._poll_interval)

    # -- helpers ------------------------------------------------------------------------------

    async def _idle(self, journal: object, since: int) -> None:
        """Wait until the journal signals a write after generation ``since`` (if it signals
        writes: see :class:`~persistence.journal._changes.Changes`), at most one poll interval."""
        changes = getattr(journal, "changes", None)
        if changes is None:
            await asyncio.sleep(self._poll_interval)
        else:
            await changes.wait(since, self._poll_interval)

    def _read_journal(self, operation: str) -> ReadJournal:
        journal: Any = self._journal
        if not isinstance(journal, ReadJournal):
            raise PersistenceConfigError(
                f"cannot {operation}: the journal {journal!r} does not support tag, all-events "
                "and persistence-id queries (it does not implement ReadJournal: "
                "persistence_ids, events_by_tag, highest_ordering, all_events); use a journal "
                "that does, such as the in-memory, SQLite or file journal"
            )
        return journal

    def _decode(self, offset: int, record: PersistentRecord) -> list[EventEnvelope]:
        persistence_id, sequence_nr, manifest, payload, _, timestamp, tags = record
        if type(tags) is not tuple:
            tags = tuple(tags)
        return [
            EventEnvelope(offset, persistence_id, sequence_nr, event, timestamp, tags)
            for event in self._serializer.decode(manifest, payload, persistence_id, sequence_nr)
        ]
