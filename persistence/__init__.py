"""Event-sourced persistence: persistent actors, journals, snapshot stores, serialization."""

from persistence._errors import (
    JournalClosedError,
    JournalCorruptedError,
    JournalError,
    PersistenceConfigError,
    PersistenceError,
    SequenceNrConflictError,
    SerializationError,
    SnapshotStoreError,
    UnknownManifestError,
)

__all__ = [
    "JournalClosedError",
    "JournalCorruptedError",
    "JournalError",
    "PersistenceConfigError",
    "PersistenceError",
    "SequenceNrConflictError",
    "SerializationError",
    "SnapshotStoreError",
    "UnknownManifestError",
]
