"""Current and live queries over a journal: events by persistence id, events by tag, ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any, TypeVar

from persistence._errors import PersistenceConfigError
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    Journal,
    PersistentRecord,
    ReadJournal,
)
from persistence.query._envelope import EventEnvelope
from persistence.serialization import Serializer

T = TypeVar("T")

Group = tuple[int, list[EventEnvelope]]
"""The envelopes decoded from one stored event, with that event's offset."""


@asynccontextmanager
async def _closing(iterator: AsyncIterator[T]) -> AsyncGenerator[AsyncIterator[T], None]:
    """Close ``iterator`` on exit if it can be closed (the protocols promise only iteration)."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def _flatten(groups: AsyncGenerator[Group, None]) -> AsyncGenerator[EventEnvelope, None]:
    async with aclosing(groups):
        async for _, envelopes in groups:
            for envelope in envelopes:
                yield envelope


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
    ) -> AsyncGenerator[Group, None]:
        journal = self._journal
        if not live:
            high = min(high, await journal.highest_sequence_nr(persistence_id))
        while low <= high:
            found = False
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
                await asyncio.sleep(self._poll_interval)

    # -- by tag -------------------------------------------------------------------------------

    def current_events_by_tag(
        self, tag: str, offset: int = 0
    ) -> AsyncGenerator[EventEnvelope, None]:
        """The stored events tagged ``tag`` with an ordering above ``offset`` (exclusive: pass the
        last offset you saw), in ordering order, up to the journal's end at the time of the call.
        """
        return _flatten(self._groups_by_tag(tag, offset, live=False))

    def events_by_tag(self, tag: str, offset: int = 0) -> AsyncGenerator[EventEnvelope, None]:
        """Like :meth:`current_events_by_tag`, then follows newly stored events with the tag."""
        return _flatten(self._groups_by_tag(tag, offset, live=True))

    def _groups_by_tag(self, tag: str, offset: int, *, live: bool) -> AsyncGenerator[Group, None]:
        # Per stored event, its ordering and the envelopes decoded from it (none if upcasters
        # dropped it): a Projection commits an offset only after all of them were handled.
        journal = self._read_journal("query events by tag")
        if offset < 0:
            raise ValueError(f"offset must be 0 or a journal ordering, got {offset}")
        return self._follow_tag(journal, tag, offset, live)

    async def _follow_tag(
        self, journal: ReadJournal, tag: str, after: int, live: bool
    ) -> AsyncGenerator[Group, None]:
        bound = MAX_SEQUENCE_NR if live else await journal.highest_ordering()
        while True:
            found = False
            pages = journal.events_by_tag(tag, after)
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
            if not found:
                await asyncio.sleep(self._poll_interval)

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

    def _read_journal(self, operation: str) -> ReadJournal:
        journal: Any = self._journal
        if not isinstance(journal, ReadJournal):
            raise PersistenceConfigError(
                f"cannot {operation}: the journal {journal!r} does not support tag and "
                "persistence-id queries (it does not implement ReadJournal: persistence_ids, "
                "events_by_tag, highest_ordering); use a journal that does, such as the "
                "in-memory, SQLite or file journal"
            )
        return journal

    def _decode(self, offset: int, record: PersistentRecord) -> list[EventEnvelope]:
        persistence_id, sequence_nr, manifest, payload, _, timestamp, tags = record
        if type(tags) is not tuple:
            tags = tuple(tags)
        return [
            EventEnvelope(offset, persistence_id, sequence_nr, event, timestamp, tags)
            for event in self._serializer.decode(manifest, payload, persistence_id)
        ]
