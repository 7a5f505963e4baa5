"""The public names of the persistence packages: nothing leaks, nothing goes missing."""

from __future__ import annotations

import persistence
import persistence.journal
import persistence.snapshot
import persistence.testing


def test_persistence_exports_exactly_its_public_names() -> None:
    assert sorted(persistence.__all__) == [
        "AtLeastOnceDelivery", "Completion", "DeleteEventsFailure",
        "DeleteEventsOutOfRangeError", "DeleteEventsSuccess", "DeleteSnapshotsFailure",
        "DeleteSnapshotsSuccess", "EventRejectedError", "JournalClosedError",
        "JournalCorruptedError", "JournalError", "MaxUnconfirmedMessagesExceededError",
        "OwnerEpochFencedError", "Persistence", "PersistenceConfigError", "PersistenceError",
        "PersistenceIdInUseError",
        "PersistenceStateError", "PersistentActor", "Recovery", "RecoveryCompleted",
        "RecoveryError", "RecoveryTimedOutError", "RetentionPolicy", "SaveSnapshotFailure",
        "SaveSnapshotSuccess", "SequenceNrConflictError", "SerializationError", "Serializer",
        "SnapshotMetadata", "SnapshotOffer", "SnapshotSelectionCriteria",
        "SnapshotStoreClosedError", "SnapshotStoreError", "StashOverflowError", "StopAfterPending",
        "UnconfirmedDelivery", "UnconfirmedWarning", "UnknownManifestError",
        "default_serializer", "event_type", "open_journal", "open_snapshot_store",
        "register_journal_scheme", "register_snapshot_store_scheme",
    ]  # fmt: skip
    assert all(hasattr(persistence, name) for name in persistence.__all__)


def test_journal_snapshot_and_testing_packages_export_exactly_their_public_names() -> None:
    assert sorted(persistence.journal.__all__) == [
        "AtomicWrite", "FileJournal", "InMemoryJournal", "Journal", "MAX_SEQUENCE_NR",
        "PersistentRecord", "PostgresJournal", "ReadJournal", "ReplayRow", "RowReplay",
        "SqliteJournal", "TaggedRecord", "row_pages",
    ]  # fmt: skip
    assert sorted(persistence.snapshot.__all__) == [
        "FileSnapshotStore", "InMemorySnapshotStore", "MAX_TIMESTAMP", "PostgresSnapshotStore",
        "SnapshotMetadata",
        "SnapshotSelectionCriteria", "SnapshotStore", "SqliteSnapshotStore", "StoredSnapshot",
    ]  # fmt: skip
    assert sorted(persistence.testing.__all__) == [
        "CommandResult", "EventSourcedTestKit", "InMemoryJournal", "InMemorySnapshotStore",
        "JournalConformance", "SnapshotStoreConformance", "TestJournal", "TestSnapshotStore",
        "take_snapshot",
    ]  # fmt: skip
    for module in (persistence.journal, persistence.snapshot, persistence.testing):
        assert all(hasattr(module, name) for name in module.__all__)
