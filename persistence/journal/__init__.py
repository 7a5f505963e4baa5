"""Event journals: the plugin protocol and the bundled implementations.

:class:`PostgresJournal` needs the ``postgres`` extra (asyncpg); it is imported on first use.
"""

from typing import TYPE_CHECKING, Any

from persistence._public import expose
from persistence.journal._file import FileJournal
from persistence.journal._memory import InMemoryJournal
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    Journal,
    PersistentRecord,
    ReadJournal,
    ReplayRow,
    RowReplay,
    TaggedRecord,
    row_pages,
)
from persistence.journal._sqlite import SqliteJournal

if TYPE_CHECKING:
    from persistence.journal._postgres import PostgresJournal

__all__ = [
    "MAX_SEQUENCE_NR",
    "AtomicWrite",
    "FileJournal",
    "InMemoryJournal",
    "Journal",
    "PersistentRecord",
    "PostgresJournal",
    "ReadJournal",
    "ReplayRow",
    "RowReplay",
    "SqliteJournal",
    "TaggedRecord",
    "row_pages",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresJournal":  # asyncpg is an optional dependency
        try:
            from persistence.journal._postgres import PostgresJournal
        except ImportError as exc:
            raise ImportError(
                f"PostgresJournal needs asyncpg ({exc}): pip install 'actorsys[postgres]'"
            ) from exc
        expose(__name__, {name: PostgresJournal}, [name])
        return PostgresJournal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


expose(__name__, globals(), __all__)
