"""Recovery options and retention policies: values, built with methods that return new values."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Self

from persistence.journal._protocol import MAX_SEQUENCE_NR
from persistence.snapshot._protocol import SnapshotSelectionCriteria


@dataclass(frozen=True, slots=True)
class Recovery:
    """How a persistent actor recovers: from which snapshot, up to which event.

    ``Recovery()`` (the default) loads the latest snapshot and replays every later event;
    ``Recovery.no_snapshot()`` replays all events; ``Recovery.to(n)`` stops after event ``n``;
    ``Recovery.none()`` loads nothing (the highest sequence number is still read, so new events
    continue after it).

    ``to_sequence_nr`` bounds the snapshot too, in every form (``Recovery.to(n)``,
    ``Recovery(to_sequence_nr=n)``, ``with_to_sequence_nr(n)``): a snapshot taken after event
    ``n`` is never offered.
    """

    from_snapshot: SnapshotSelectionCriteria = field(default_factory=SnapshotSelectionCriteria)
    to_sequence_nr: int = MAX_SEQUENCE_NR
    replay_max: int = MAX_SEQUENCE_NR

    @classmethod
    def none(cls) -> Recovery:
        return cls(SnapshotSelectionCriteria.none(), to_sequence_nr=0, replay_max=0)

    @classmethod
    def no_snapshot(cls) -> Recovery:
        return cls(SnapshotSelectionCriteria.none())

    @classmethod
    def to(cls, to_sequence_nr: int) -> Recovery:
        """Recover the state as it was right after event ``to_sequence_nr``."""
        return cls(to_sequence_nr=to_sequence_nr)

    def with_to_sequence_nr(self, n: int) -> Self:
        return replace(self, to_sequence_nr=n)

    def with_replay_max(self, n: int) -> Self:
        return replace(self, replay_max=n)

    @property
    def snapshot_criteria(self) -> SnapshotSelectionCriteria:
        """``from_snapshot``, bounded by ``to_sequence_nr`` (as Akka does)."""
        criteria = self.from_snapshot
        if criteria.max_sequence_nr > self.to_sequence_nr:
            return criteria.with_max_sequence_nr(self.to_sequence_nr)
        return criteria

    @property
    def loads_nothing(self) -> bool:
        return self.to_sequence_nr <= 0 or self.replay_max <= 0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Snapshot every ``snapshot_every`` events, keep the last ``keep_snapshots`` snapshots and,
    optionally, delete the events that the oldest kept snapshot covers.

    The actor supplies the state to store by overriding ``snapshot_state()``.
    """

    snapshot_every: int
    keep_snapshots: int = 2
    delete_events_on_snapshot: bool = False

    def __post_init__(self) -> None:
        if self.snapshot_every <= 0 or self.keep_snapshots <= 0:
            raise ValueError("snapshot_every and keep_snapshots must be positive")

    @classmethod
    def snapshot_every_n(cls, n: int, keep: int = 2) -> RetentionPolicy:
        return cls(n, keep)

    def with_delete_events_on_snapshot(self, enabled: bool = True) -> Self:
        return replace(self, delete_events_on_snapshot=enabled)

    def snapshot_due(self, sequence_nr: int) -> bool:
        return sequence_nr % self.snapshot_every == 0

    def oldest_kept(self, snapshot_sequence_nr: int) -> int:
        """The sequence number of the oldest snapshot kept once one was saved at this number."""
        return max(snapshot_sequence_nr - self.snapshot_every * (self.keep_snapshots - 1), 0)
