"""Errors raised by the persistence package.

Every error class of the package sits in this tree (a test compares it with the classes)::

    PersistenceError
    ├── JournalError                 the journal could not do what was asked (a store failure)
    │   ├── JournalClosedError       you closed it: the journal was used after close()
    │   ├── JournalCorruptedError    it broke: a record failed its checksum (names file and offset)
    │   ├── OwnerEpochFencedError    a write's owner epoch is below the id's newest: a newer owner
    │   │                            exists (the fencing token of sharding)
    │   └── SequenceNrConflictError  a (persistence_id, sequence_nr) was already taken
    ├── SnapshotStoreError           the snapshot store failed
    │   └── SnapshotStoreClosedError you closed it: the store was used after close()
    ├── SerializationError           an event or snapshot could not be encoded or decoded
    │   └── UnknownManifestError     a stored type name is not registered (names type and id)
    ├── PersistenceConfigError       the system has no journal, a bad journal URL, or a persistent
    │                                actor defined wrongly (no persistence_id, receive overridden)
    ├── PersistenceStateError        an operation not allowed in the actor's phase (persist while
    │                                recovering, ...)
    ├── PersistenceIdInUseError      a second live writer was started for a persistence_id
    ├── StashOverflowError           more commands wait for persist handlers than stash_capacity
    ├── DeleteEventsOutOfRangeError  delete_events(n) beyond the last sequence number
    ├── EventRejectedError           an event was not stored (rejected before writing)
    ├── RecoveryError                recovery cannot produce a correct state
    │   └── RecoveryTimedOutError    the journal or snapshot store did not answer in time
    ├── MaxUnconfirmedMessagesExceededError
    │                                at-least-once delivery has too many unconfirmed messages
    │                                (defined in persistence._at_least_once)
    ├── OffsetStoreError             a projection's offset store failed (defined in
    │                                persistence.query._offset_store)
    └── ProjectionStoppedError       a projection stopped while caught_up() waited for it
                                     (defined in persistence.query._projection)
"""

from __future__ import annotations


class PersistenceError(Exception):
    """Base class of every error raised by :mod:`persistence`."""


class JournalError(PersistenceError):
    """The journal failed to store or read events."""


class JournalClosedError(JournalError):
    """The journal was used after ``close()``."""


class JournalCorruptedError(JournalError):
    """A stored record failed its integrity check somewhere other than the torn tail."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"journal corrupted in {path!r} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class SequenceNrConflictError(JournalError):
    """A write tried to store a ``(persistence_id, sequence_nr)`` that is already stored."""

    def __init__(self, persistence_id: str, sequence_nr: int) -> None:
        super().__init__(
            f"sequence number already taken, persistence_id={persistence_id!r}, "
            f"sequence_nr={sequence_nr}: is another writer running for this id?"
        )
        self.persistence_id = persistence_id
        self.sequence_nr = sequence_nr


class OwnerEpochFencedError(JournalError):
    """A write carried an owner epoch lower than the highest the journal stored for its
    persistence id: a newer owner of the id exists, and this one must stop writing."""

    def __init__(self, persistence_id: str, owner_epoch: int, stored_epoch: int) -> None:
        super().__init__(
            f"write refused, persistence_id={persistence_id!r}, owner_epoch={owner_epoch}: a "
            f"newer owner exists (owner epoch {stored_epoch} has written this id); this "
            "incarnation must stop"
        )
        self.persistence_id = persistence_id
        self.owner_epoch = owner_epoch
        self.stored_epoch = stored_epoch


class SnapshotStoreError(PersistenceError):
    """The snapshot store failed to save, load or delete a snapshot."""


class SnapshotStoreClosedError(SnapshotStoreError):
    """The snapshot store was used after ``close()``."""


class SerializationError(PersistenceError):
    """An object could not be serialized or deserialized."""


class UnknownManifestError(SerializationError):
    """A stored type name (manifest) has no registered type."""

    def __init__(self, manifest: str, persistence_id: str | None = None) -> None:
        where = f" (persistence_id={persistence_id!r})" if persistence_id is not None else ""
        super().__init__(
            f"unknown type name {manifest!r}{where}: register the type, or an upcaster for it, "
            "with the serializer before replaying"
        )
        self.manifest = manifest
        self.persistence_id = persistence_id


class PersistenceConfigError(PersistenceError):
    """Persistence is not configured, or configured wrongly."""


class PersistenceStateError(PersistenceError):
    """An operation is not allowed in the persistent actor's current phase."""


class EventRejectedError(PersistenceError):
    """The event was not stored (e.g. it could not be serialized); the actor goes on."""

    def __init__(self, persistence_id: str, sequence_nr: int, cause: BaseException) -> None:
        super().__init__(
            f"Rejected event, persistence_id={persistence_id!r}, sequence_nr={sequence_nr}: {cause}"
        )
        self.persistence_id = persistence_id
        self.sequence_nr = sequence_nr
        self.cause = cause


class PersistenceIdInUseError(PersistenceError):
    """Another live actor is already the writer of this persistence id."""

    def __init__(self, persistence_id: str, holder: str) -> None:
        super().__init__(
            f"persistence_id={persistence_id!r} already has a live writer ({holder}); "
            "stop it before starting another actor with the same id"
        )
        self.persistence_id = persistence_id
        self.holder = holder


class StashOverflowError(PersistenceError):
    """More commands arrived while persist handlers were pending than the internal stash holds
    (with ``stash_overflow = "fail"``)."""

    def __init__(self, persistence_id: str, capacity: int) -> None:
        super().__init__(
            f"internal stash of persistence_id={persistence_id!r} is full ({capacity} commands "
            "waiting for persist handlers); raise stash_capacity or send fewer commands at once"
        )
        self.persistence_id = persistence_id
        self.capacity = capacity


class DeleteEventsOutOfRangeError(PersistenceError):
    """``delete_events(n)`` asked to delete beyond the actor's last sequence number."""

    def __init__(self, persistence_id: str, to_sequence_nr: int, last_sequence_nr: int) -> None:
        super().__init__(
            f"cannot delete events up to {to_sequence_nr}: persistence_id={persistence_id!r} "
            f"has only reached sequence_nr={last_sequence_nr}"
        )
        self.persistence_id = persistence_id
        self.to_sequence_nr = to_sequence_nr
        self.last_sequence_nr = last_sequence_nr


class RecoveryError(PersistenceError):
    """Recovery cannot produce a correct state (e.g. needed events were deleted)."""


class RecoveryTimedOutError(RecoveryError):
    """The journal or snapshot store did not answer within the actor's ``recovery_timeout``
    (Akka's ``RecoveryTimedOut``)."""
