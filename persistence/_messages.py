"""Messages a persistent actor receives from the persistence runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, final

from persistence.snapshot._protocol import SnapshotMetadata


@dataclass(frozen=True, slots=True)
class SnapshotOffer:
    """Offered to ``receive_recover`` first when recovery starts from a snapshot."""

    metadata: SnapshotMetadata
    snapshot: Any


@final
class _RecoveryCompleted:
    __slots__ = ()

    def __repr__(self) -> str:
        return "RecoveryCompleted"


RecoveryCompleted: Final = _RecoveryCompleted()
"""Delivered to ``receive_recover`` once recovery has finished (also for a brand-new id)."""


@final
class _StopAfterPending:
    __slots__ = ()

    def __repr__(self) -> str:
        return "StopAfterPending"


StopAfterPending: Final = _StopAfterPending()
"""Told to a :class:`~persistence.PersistentActor`: stop once the persists in flight completed
and the commands it held meanwhile were handled (their senders get their answers). A
``PoisonPill`` stops it at once instead, and the held commands go to dead letters. Commands that
arrive after it are not handled. The command handler never sees it; a plain actor gets it as an
ordinary message."""


@dataclass(frozen=True, slots=True)
class SaveSnapshotSuccess:
    """The snapshot was stored."""

    metadata: SnapshotMetadata


@dataclass(frozen=True, slots=True)
class SaveSnapshotFailure:
    """The snapshot could not be stored."""

    metadata: SnapshotMetadata
    cause: BaseException


@dataclass(frozen=True, slots=True)
class DeleteEventsSuccess:
    """Events up to and including ``to_sequence_nr`` were deleted."""

    to_sequence_nr: int


@dataclass(frozen=True, slots=True)
class DeleteEventsFailure:
    """Deleting events failed."""

    to_sequence_nr: int
    cause: BaseException


@dataclass(frozen=True, slots=True)
class DeleteSnapshotsSuccess:
    """Snapshots matching the criteria were deleted."""

    max_sequence_nr: int


@dataclass(frozen=True, slots=True)
class DeleteSnapshotsFailure:
    """Deleting snapshots failed."""

    max_sequence_nr: int
    cause: BaseException


PERSISTENCE_RESULTS = (
    SaveSnapshotSuccess,
    SaveSnapshotFailure,
    DeleteEventsSuccess,
    DeleteEventsFailure,
    DeleteSnapshotsSuccess,
    DeleteSnapshotsFailure,
)
