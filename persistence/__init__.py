"""Event-sourced persistence: persistent actors, journals, snapshot stores, serialization.

Configure it once per actor system, then write ``PersistentActor`` subclasses::

    async with ActorSystem("bank", extensions=[Persistence("sqlite:data/bank.db",
                                                           "sqlite:data/bank.db")]) as system:
        account = system.spawn(lambda: Account("acc-1"))
"""

from persistence._at_least_once import (
    AtLeastOnceDelivery,
    MaxUnconfirmedMessagesExceededError,
    UnconfirmedDelivery,
    UnconfirmedWarning,
)
from persistence._completion import Completion
from persistence._errors import (
    DeleteEventsOutOfRangeError,
    EventRejectedError,
    JournalClosedError,
    JournalCorruptedError,
    JournalError,
    OwnerEpochFencedError,
    PersistenceConfigError,
    PersistenceError,
    PersistenceIdInUseError,
    PersistenceStateError,
    RecoveryError,
    RecoveryTimedOutError,
    SequenceNrConflictError,
    SerializationError,
    SnapshotStoreClosedError,
    SnapshotStoreError,
    StashOverflowError,
    UnknownManifestError,
)
from persistence._extension import Persistence
from persistence._messages import (
    DeleteEventsFailure,
    DeleteEventsSuccess,
    DeleteSnapshotsFailure,
    DeleteSnapshotsSuccess,
    RecoveryCompleted,
    SaveSnapshotFailure,
    SaveSnapshotSuccess,
    SnapshotOffer,
)
from persistence._persistent_actor import PersistentActor
from persistence._recovery import Recovery, RetentionPolicy
from persistence.serialization import Serializer, default_serializer, event_type
from persistence.snapshot._protocol import SnapshotMetadata, SnapshotSelectionCriteria

__all__ = [
    "AtLeastOnceDelivery",
    "Completion",
    "DeleteEventsFailure",
    "DeleteEventsOutOfRangeError",
    "DeleteEventsSuccess",
    "DeleteSnapshotsFailure",
    "DeleteSnapshotsSuccess",
    "EventRejectedError",
    "JournalClosedError",
    "JournalCorruptedError",
    "JournalError",
    "MaxUnconfirmedMessagesExceededError",
    "OwnerEpochFencedError",
    "Persistence",
    "PersistenceConfigError",
    "PersistenceError",
    "PersistenceIdInUseError",
    "PersistenceStateError",
    "PersistentActor",
    "Recovery",
    "RecoveryCompleted",
    "RecoveryError",
    "RecoveryTimedOutError",
    "RetentionPolicy",
    "SaveSnapshotFailure",
    "SaveSnapshotSuccess",
    "SequenceNrConflictError",
    "SerializationError",
    "Serializer",
    "SnapshotMetadata",
    "SnapshotOffer",
    "SnapshotSelectionCriteria",
    "SnapshotStoreClosedError",
    "SnapshotStoreError",
    "StashOverflowError",
    "UnconfirmedDelivery",
    "UnconfirmedWarning",
    "UnknownManifestError",
    "default_serializer",
    "event_type",
]
