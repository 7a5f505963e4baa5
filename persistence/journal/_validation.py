"""Shape checks every journal applies to an atomic write before storing it."""

from __future__ import annotations

from persistence._errors import JournalError
from persistence.journal._protocol import AtomicWrite


def check_atomic_write(write: AtomicWrite) -> JournalError | None:
    """The error that rejects ``write``, or ``None`` if it is well formed.

    Well formed: at least one record, all of one persistence id, consecutive sequence numbers
    starting at 1 or above.
    """
    records = write.records
    if not records:
        return JournalError("invalid atomic write: it holds no records")
    first = records[0]
    persistence_id = first.persistence_id
    expected = first.sequence_nr
    if expected < 1:
        return JournalError(
            f"invalid atomic write, persistence_id={persistence_id!r}: sequence_nr={expected} "
            "is below 1 (sequence numbers start at 1)"
        )
    for record in records:
        if record.persistence_id != persistence_id:
            return JournalError(
                f"invalid atomic write: it mixes persistence ids {persistence_id!r} and "
                f"{record.persistence_id!r} (an atomic write holds events of one id)"
            )
        if record.sequence_nr != expected:
            return JournalError(
                f"invalid atomic write, persistence_id={persistence_id!r}: sequence_nr="
                f"{record.sequence_nr} where {expected} was expected (sequence numbers must be "
                "consecutive)"
            )
        expected += 1
    return None
