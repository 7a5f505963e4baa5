"""The checks every snapshot store applies before touching its storage, so that what a backend
cannot store (a persistence id that is not valid UTF-8, a wrong type) fails the same clear way in
every store instead of as a raw encoding error."""

from __future__ import annotations

from persistence._errors import SnapshotStoreError
from persistence.journal._protocol import MAX_SEQUENCE_NR
from persistence.journal._validation import utf8_problem
from persistence.snapshot._protocol import MAX_TIMESTAMP, SnapshotMetadata

_BYTES_LIKE = (bytes, bytearray, memoryview)


def check_persistence_id(operation: str, persistence_id: str) -> None:
    """Raise :class:`~persistence.SnapshotStoreError` unless ``persistence_id`` is a non-empty
    str that can be stored as UTF-8."""
    if type(persistence_id) is not str or not persistence_id:
        raise SnapshotStoreError(
            f"cannot {operation}: persistence_id must be a non-empty str, not {persistence_id!r}"
        )
    problem = utf8_problem(persistence_id)
    if problem is not None:
        raise SnapshotStoreError(
            f"cannot {operation}, persistence_id={persistence_id!r}: the persistence id {problem}"
        )


def check_snapshot(metadata: SnapshotMetadata, manifest: str, payload: bytes) -> None:
    """Raise :class:`~persistence.SnapshotStoreError` unless every store can save this (its
    persistence id already passed :func:`check_persistence_id`)."""
    where = (
        f"cannot save a snapshot, persistence_id={metadata.persistence_id!r}, "
        f"sequence_nr={metadata.sequence_nr!r}"
    )
    sequence_nr, timestamp = metadata.sequence_nr, metadata.timestamp
    if type(sequence_nr) is not int or not 0 <= sequence_nr <= MAX_SEQUENCE_NR:
        raise SnapshotStoreError(f"{where}: sequence_nr must be an int from 0 to {MAX_SEQUENCE_NR}")
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise SnapshotStoreError(f"{where}: timestamp must be an int from 0 to {MAX_TIMESTAMP}")
    if type(manifest) is not str or not isinstance(payload, _BYTES_LIKE):
        raise SnapshotStoreError(f"{where}: the manifest must be a str and the payload bytes")
    problem = utf8_problem(manifest)
    if problem is not None:
        raise SnapshotStoreError(f"{where}: the manifest {manifest!r} {problem}")
