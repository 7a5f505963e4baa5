"""Snapshot stores: the plugin protocol and the bundled implementations.

:class:`PostgresSnapshotStore` needs the ``postgres`` extra (asyncpg); it is imported on first
use.
"""

from typing import TYPE_CHECKING, Any

from persistence._public import expose
from persistence.snapshot._file import FileSnapshotStore
from persistence.snapshot._memory import InMemorySnapshotStore
from persistence.snapshot._protocol import (
    MAX_TIMESTAMP,
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStore,
    StoredSnapshot,
)
from persistence.snapshot._sqlite import SqliteSnapshotStore

if TYPE_CHECKING:
    from persistence.snapshot._postgres import PostgresSnapshotStore

__all__ = [
    "MAX_TIMESTAMP",
    "FileSnapshotStore",
    "InMemorySnapshotStore",
    "PostgresSnapshotStore",
    "SnapshotMetadata",
    "SnapshotSelectionCriteria",
    "SnapshotStore",
    "SqliteSnapshotStore",
    "StoredSnapshot",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresSnapshotStore":  # asyncpg is an optional dependency
        try:
            from persistence.snapshot._postgres import PostgresSnapshotStore
        except ImportError as exc:
            raise ImportError(
                f"PostgresSnapshotStore needs asyncpg ({exc}): pip install 'actorsys[postgres]'"
            ) from exc
        expose(__name__, {name: PostgresSnapshotStore}, [name])
        return PostgresSnapshotStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


expose(__name__, globals(), __all__)
