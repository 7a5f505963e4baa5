"""What the queries yield: one decoded event and where it came from."""

from __future__ import annotations

from typing import Any, NamedTuple


class EventEnvelope(NamedTuple):
    """One event as a query yields it.

    ``offset`` is what to resume from: the journal-wide ordering for tag queries (pass it back as
    the exclusive ``offset``), the sequence number for queries by persistence id. A stored event
    that upcasters split into several events yields one envelope per event, all with the same
    offset and sequence number.
    """

    offset: int
    persistence_id: str
    sequence_nr: int
    event: Any
    timestamp: int
    """Milliseconds since the Unix epoch, set by the writer."""
    tags: tuple[str, ...]
