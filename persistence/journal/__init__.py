"""Event journals: the plugin protocol and the bundled implementations."""

from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    Journal,
    PersistentRecord,
    ReadJournal,
    TaggedRecord,
)

__all__ = [
    "MAX_SEQUENCE_NR",
    "AtomicWrite",
    "Journal",
    "PersistentRecord",
    "ReadJournal",
    "TaggedRecord",
]
