"""Testing tools for journals, snapshot stores and persistent actors.

- :class:`EventSourcedTestKit`: drive one persistent actor, check its events, replies and state.
- :class:`TestJournal`, :class:`TestSnapshotStore`: backends that fail or reject on demand, to
  test failure paths without writing a journal (Akka's ``PersistenceTestKit``).
- :func:`take_snapshot`: a snapshot of a stopped entity as it was at a given sequence number
  (eventsourcing's ``take_snapshot(id, version)``).
- In-memory backends, and the conformance suites every journal and snapshot store passes
  (:class:`JournalConformance`, :class:`SnapshotStoreConformance`; they need pytest and
  pytest-asyncio and are imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from persistence._public import expose, import_on_first_use
from persistence.journal._memory import InMemoryJournal
from persistence.snapshot._memory import InMemorySnapshotStore
from persistence.testing._faults import TestJournal, TestSnapshotStore
from persistence.testing._kit import CommandResult, EventSourcedTestKit
from persistence.testing._snapshots import take_snapshot

if TYPE_CHECKING:
    from persistence.testing._journal_suite import JournalConformance
    from persistence.testing._snapshot_suite import SnapshotStoreConformance

__all__ = [
    "CommandResult",
    "EventSourcedTestKit",
    "InMemoryJournal",
    "InMemorySnapshotStore",
    "JournalConformance",
    "SnapshotStoreConformance",
    "TestJournal",
    "TestSnapshotStore",
    "take_snapshot",
]

# The suites import pytest: load them only when asked for, so that the in-memory backends work
# without test dependencies.
_LAZY = {
    "JournalConformance": "persistence.testing._journal_suite",
    "SnapshotStoreConformance": "persistence.testing._snapshot_suite",
}


__getattr__ = import_on_first_use(__name__, _LAZY)


expose(__name__, globals(), __all__)
