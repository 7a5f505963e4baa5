"""The snapshot store plugin boundary.

A snapshot is an actor's state at a sequence number, serialized above this boundary (manifest and
payload bytes). Rules (checked by the conformance suite in :mod:`persistence.testing`):

- ``save(metadata, manifest, payload)``: stores it; the store sets the timestamp (milliseconds since
  the epoch) unless the metadata carries one; saving again at the same sequence number overwrites.
  Returns the metadata as stored.
- ``load(pid, criteria)``: the youngest (highest sequence number, then newest timestamp) snapshot
  matching the criteria (bounds inclusive), or ``None``. A stored snapshot that cannot be read
  (checksum, truncated file) is passed over in favour of the next older match, and the skip is
  logged.
- ``delete(metadata)``: deletes the snapshot at that sequence number.
- ``delete_matching(pid, criteria)``: deletes all matching snapshots.
- What a store cannot keep (a persistence id that is empty or not valid UTF-8, such as one
  holding a lone surrogate; a manifest that is not valid UTF-8) fails the call with a
  :class:`~persistence.SnapshotStoreError` naming it, in every store alike.
- ``close()``: releases resources. Closing is final: every later call raises
  :class:`~persistence.SnapshotStoreClosedError` ("you closed it", saying to create a new
  instance), while any other :class:`~persistence.SnapshotStoreError` means the store failed. The
  bundled stores also have a ``closed`` property, so that whoever is handed an instance can
  refuse a closed one up front.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol, runtime_checkable

from persistence.journal._protocol import MAX_SEQUENCE_NR

MAX_TIMESTAMP = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class SnapshotMetadata:
    """Where a snapshot belongs: its persistence id, sequence number and save time (ms)."""

    persistence_id: str
    sequence_nr: int
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotSelectionCriteria:
    """Bounds (inclusive) on the sequence number and timestamp of snapshots to select."""

    max_sequence_nr: int = MAX_SEQUENCE_NR
    max_timestamp: int = MAX_TIMESTAMP
    min_sequence_nr: int = 0
    min_timestamp: int = 0

    @classmethod
    def latest(cls) -> SnapshotSelectionCriteria:
        """Select the youngest snapshot."""
        return cls()

    @classmethod
    def none(cls) -> SnapshotSelectionCriteria:
        """Select no snapshot at all."""
        return cls(max_sequence_nr=0, max_timestamp=0)

    def with_max_sequence_nr(self, n: int) -> SnapshotSelectionCriteria:
        return replace(self, max_sequence_nr=n)

    def with_max_timestamp(self, ts: int) -> SnapshotSelectionCriteria:
        return replace(self, max_timestamp=ts)

    def matches(self, metadata: SnapshotMetadata) -> bool:
        """Whether the snapshot with this metadata lies within the bounds."""
        return (
            self.min_sequence_nr <= metadata.sequence_nr <= self.max_sequence_nr
            and self.min_timestamp <= metadata.timestamp <= self.max_timestamp
        )


class StoredSnapshot(NamedTuple):
    """A snapshot as a store returns it."""

    metadata: SnapshotMetadata
    manifest: str
    payload: bytes


@runtime_checkable
class SnapshotStore(Protocol):
    """Saves and loads snapshots."""

    async def save(
        self, metadata: SnapshotMetadata, manifest: str, payload: bytes
    ) -> SnapshotMetadata: ...

    async def load(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> StoredSnapshot | None: ...

    async def delete(self, metadata: SnapshotMetadata) -> None: ...

    async def delete_matching(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> None: ...

    async def close(self) -> None: ...
