"""The read side of persistence (CQRS queries): events by persistence id, by tag, all events,
and ids.

Queries run over any :class:`~persistence.journal.Journal`; those by tag, over all events and the
persistence-id queries need it to implement :class:`~persistence.journal.ReadJournal` too (the
in-memory, SQLite and file journals do). Tags are given when events are persisted; the offset of
a tag or all-events query is the journal-wide ordering, exclusive: pass the last offset you
handled. ::

    queries = EventQueries(journal, serializer, poll_interval=0.1)
    async for envelope in queries.current_events_by_tag("account", offset=0):
        print(envelope.offset, envelope.persistence_id, envelope.event)

    async with aclosing(queries.events_by_tag("account", offset)) as live:  # follows new events
        async for envelope in live:
            ...

A :class:`Projection` runs a live tag query (or one over all events) into a handler and keeps its
offset in an :class:`OffsetStore` (:class:`InMemoryOffsetStore`, :class:`SqliteOffsetStore`), so
that after a restart it resumes after the last saved offset (at-least-once). A
:class:`HandlerRecovery` says what a handler exception does (stop, skip, retry with backoff), and
``caught_up()`` waits until every event stored before the call was handled::

    async with Projection("balances", queries, "account", update_balance,
                          SqliteOffsetStore("data/bank.db"),
                          recovery_strategy=HandlerRecovery.retry(3)) as projection:
        ...
        await projection.caught_up()

Errors: :class:`OffsetStoreError` (a :class:`~persistence.PersistenceError`) when an offset store
fails or is used after ``close()``; :class:`ProjectionStoppedError` when a projection stops while
``caught_up()`` waits; :class:`~persistence.PersistenceConfigError` when a tag, all-events or id
query is asked of a journal without read-side support; :class:`~persistence.JournalClosedError`
from a query whose journal was closed.

This package does not import :mod:`actorsys`.
"""

from persistence._public import expose
from persistence.query._envelope import EventEnvelope
from persistence.query._offset_store import (
    InMemoryOffsetStore,
    OffsetStore,
    OffsetStoreError,
    SqliteOffsetStore,
)
from persistence.query._projection import (
    Handler,
    HandlerRecovery,
    Projection,
    ProjectionStoppedError,
)
from persistence.query._queries import EventQueries

__all__ = [
    "EventEnvelope",
    "EventQueries",
    "Handler",
    "HandlerRecovery",
    "InMemoryOffsetStore",
    "OffsetStore",
    "OffsetStoreError",
    "Projection",
    "ProjectionStoppedError",
    "SqliteOffsetStore",
]

expose(__name__, globals(), __all__)
