"""A snapshot store held in memory: for tests and examples. Nothing survives the process."""

from __future__ import annotations

import time
from dataclasses import replace

from persistence._errors import SnapshotStoreClosedError
from persistence.snapshot._protocol import (
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    StoredSnapshot,
)
from persistence.snapshot._validation import check_persistence_id, check_snapshot


def now_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


class InMemorySnapshotStore:
    """A :class:`~persistence.snapshot.SnapshotStore` keeping snapshots in a dict."""

    def __init__(self) -> None:
        self._snapshots: dict[str, dict[int, StoredSnapshot]] = {}
        self._closed = False

    def __repr__(self) -> str:
        count = sum(map(len, self._snapshots.values()))
        return f"<InMemorySnapshotStore {'closed' if self._closed else 'open'}, {count} snapshots>"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every later call raises)."""
        return self._closed

    def _check_open(self, operation: str, persistence_id: str) -> None:
        if self._closed:
            raise SnapshotStoreClosedError(
                f"cannot {operation}: the in-memory snapshot store is closed; create a new "
                "instance to use it again"
            )
        check_persistence_id(operation, persistence_id)

    async def save(
        self, metadata: SnapshotMetadata, manifest: str, payload: bytes
    ) -> SnapshotMetadata:
        """Store the snapshot (replacing one at the same sequence number); stamp it with the
        current time unless ``metadata`` has a timestamp."""
        self._check_open("save a snapshot", metadata.persistence_id)
        check_snapshot(metadata, manifest, payload)
        if metadata.timestamp == 0:
            metadata = replace(metadata, timestamp=now_ms())
        stored = StoredSnapshot(metadata, manifest, bytes(payload))
        self._snapshots.setdefault(metadata.persistence_id, {})[metadata.sequence_nr] = stored
        return metadata

    async def load(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> StoredSnapshot | None:
        """The youngest snapshot matching ``criteria``, or ``None``."""
        self._check_open("load a snapshot", persistence_id)
        matching = [
            stored
            for stored in self._snapshots.get(persistence_id, {}).values()
            if criteria.matches(stored.metadata)
        ]
        return max(
            matching,
            key=lambda stored: (stored.metadata.sequence_nr, stored.metadata.timestamp),
            default=None,
        )

    async def delete(self, metadata: SnapshotMetadata) -> None:
        """Delete the snapshot of ``metadata.persistence_id`` at ``metadata.sequence_nr``."""
        self._check_open("delete a snapshot", metadata.persistence_id)
        self._snapshots.get(metadata.persistence_id, {}).pop(metadata.sequence_nr, None)

    async def delete_matching(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> None:
        """Delete every snapshot of the id matching ``criteria``."""
        self._check_open("delete snapshots", persistence_id)
        snapshots = self._snapshots.get(persistence_id, {})
        for sequence_nr, stored in list(snapshots.items()):
            if criteria.matches(stored.metadata):
                del snapshots[sequence_nr]

    async def close(self) -> None:
        """Mark the store closed; later calls raise
        :class:`~persistence.SnapshotStoreClosedError` (closing is final)."""
        self._closed = True
