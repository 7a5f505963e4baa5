"""Event-sourced persistence: persistent actors, journals, snapshot stores, serialization.

Configure it once per actor system, then write ``PersistentActor`` subclasses::

    async with ActorSystem("bank", extensions=[Persistence("sqlite:data/bank.db",
                                                           "sqlite:data/bank.db")]) as system:
        account = system.spawn(lambda: Account("acc-1"))

Journal and snapshot-store URLs go through a registry of schemes (``memory:``, ``sqlite:``,
``file:`` built in) that backends add to with :func:`register_journal_scheme` and
:func:`register_snapshot_store_scheme`.

The names that need the actor system (``PersistentActor``, ``Persistence``, at-least-once
delivery) are imported on first use: importing :mod:`persistence.journal`,
:mod:`persistence.snapshot`, :mod:`persistence.serialization` or :mod:`persistence.query` does
not import :mod:`actorsys`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from persistence._messages import (
    DeleteEventsFailure,
    DeleteEventsSuccess,
    DeleteSnapshotsFailure,
    DeleteSnapshotsSuccess,
    RecoveryCompleted,
    SaveSnapshotFailure,
    SaveSnapshotSuccess,
    SnapshotOffer,
    StopAfterPending,
)
from persistence._public import expose, import_on_first_use
from persistence._recovery import Recovery, RetentionPolicy
from persistence._urls import (
    open_journal,
    open_snapshot_store,
    register_journal_scheme,
    register_snapshot_store_scheme,
)
from persistence.serialization import Serializer, default_serializer, event_type
from persistence.snapshot._protocol import SnapshotMetadata, SnapshotSelectionCriteria

if TYPE_CHECKING:
    from persistence._at_least_once import (
        AtLeastOnceDelivery,
        MaxUnconfirmedMessagesExceededError,
        UnconfirmedDelivery,
        UnconfirmedWarning,
    )
    from persistence._extension import Persistence
    from persistence._persistent_actor import PersistentActor

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
    "StopAfterPending",
    "UnconfirmedDelivery",
    "UnconfirmedWarning",
    "UnknownManifestError",
    "default_serializer",
    "event_type",
    "open_journal",
    "open_snapshot_store",
    "register_journal_scheme",
    "register_snapshot_store_scheme",
]

# The names whose modules import actorsys, and those modules: imported on first use (PEP 562).
_NEED_ACTORS = {
    "AtLeastOnceDelivery": "persistence._at_least_once",
    "MaxUnconfirmedMessagesExceededError": "persistence._at_least_once",
    "Persistence": "persistence._extension",
    "PersistentActor": "persistence._persistent_actor",
    "UnconfirmedDelivery": "persistence._at_least_once",
    "UnconfirmedWarning": "persistence._at_least_once",
}

if not TYPE_CHECKING:  # type checkers see the imports above (a __getattr__ would hide typos)
    __getattr__ = import_on_first_use(__name__, _NEED_ACTORS)


def __dir__() -> list[str]:
    return sorted({*globals(), *_NEED_ACTORS})


expose(__name__, globals(), __all__)
