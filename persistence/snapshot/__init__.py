"""Snapshot stores: the plugin protocol and the bundled implementations."""

from persistence.snapshot._protocol import (
    MAX_TIMESTAMP,
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStore,
    StoredSnapshot,
)

__all__ = [
    "MAX_TIMESTAMP",
    "SnapshotMetadata",
    "SnapshotSelectionCriteria",
    "SnapshotStore",
    "StoredSnapshot",
]
