"""Snapshot stores: the plugin protocol and the bundled implementations."""

from persistence._public import expose
from persistence.snapshot._file import FileSnapshotStore
from persistence.snapshot._memory import InMemorySnapshotStore
from persistence.snapshot._protocol import (
    MAX_TIMESTAMP,
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStore,
    StoredSnapshot,
)
from persistence.snapshot._sqlite import SqliteSnapshotStore

__all__ = [
    "MAX_TIMESTAMP",
    "FileSnapshotStore",
    "InMemorySnapshotStore",
    "SnapshotMetadata",
    "SnapshotSelectionCriteria",
    "SnapshotStore",
    "SqliteSnapshotStore",
    "StoredSnapshot",
]

expose(__name__, globals(), __all__)
