"""Event journals: the plugin protocol and the bundled implementations."""

from persistence._public import expose
from persistence.journal._file import FileJournal
from persistence.journal._memory import InMemoryJournal
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    Journal,
    PersistentRecord,
    ReadJournal,
    TaggedRecord,
)
from persistence.journal._sqlite import SqliteJournal

__all__ = [
    "MAX_SEQUENCE_NR",
    "AtomicWrite",
    "FileJournal",
    "InMemoryJournal",
    "Journal",
    "PersistentRecord",
    "ReadJournal",
    "SqliteJournal",
    "TaggedRecord",
]

expose(__name__, globals(), __all__)
