"""Journal and snapshot-store URLs.

Grammar::

    url     = "memory:" | "sqlite:" path [ "?synchronous=" ( "full" | "normal" | "off" ) ]
            | "file:" path [ "?fsync=" ( "always" | "batch" | "never" ) ]      (journals)
            | "file:" path                                                      (snapshot stores)
    path    = a relative or absolute file system path, not empty

``sqlite:data/bank.db`` is relative to the working directory, ``sqlite:/var/lib/bank.db`` is
absolute. A journal and a snapshot store may share one SQLite file (they use separate tables).
Nothing is opened here: the stores open on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from persistence._errors import PersistenceConfigError
from persistence.journal._protocol import Journal
from persistence.snapshot._protocol import SnapshotStore

if TYPE_CHECKING:
    from persistence._sqlite_db import Synchronous
    from persistence.journal._file import FsyncMode

_JOURNAL_FORMS = (
    "'memory:', 'sqlite:PATH' (e.g. 'sqlite:data/bank.db', optionally "
    "'?synchronous=full|normal|off') or 'file:DIR' (e.g. 'file:data/journal', optionally "
    "'?fsync=always|batch|never')"
)
_SNAPSHOT_FORMS = (
    "'memory:', 'sqlite:PATH' (e.g. 'sqlite:data/bank.db', optionally "
    "'?synchronous=full|normal|off') or 'file:DIR' (e.g. 'file:data/snapshots')"
)
_SYNCHRONOUS = ("full", "normal", "off")
_FSYNC = ("always", "batch", "never")


def _split(url: str, kind: str, forms: str) -> tuple[str, str, dict[str, str]]:
    """``(scheme, path, options)`` of ``url``, or the error listing the accepted forms."""
    scheme, colon, rest = url.partition(":")
    path, _, query = rest.partition("?")
    options: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, equals, value = pair.partition("=")
        if not equals:
            raise PersistenceConfigError(
                f"bad {kind} URL {url!r}: option {pair!r} has no value; accepted forms: {forms}"
            )
        options[key] = value
    if not colon or scheme not in ("memory", "sqlite", "file"):
        raise PersistenceConfigError(f"unsupported {kind} URL {url!r}: use {forms}")
    if scheme == "memory":
        if rest:
            raise PersistenceConfigError(f"bad {kind} URL {url!r}: write just 'memory:'")
    elif not path or path.startswith("//"):
        raise PersistenceConfigError(
            f"bad {kind} URL {url!r}: write {scheme}:PATH with a file system path "
            f"(relative or absolute, e.g. '{scheme}:data/bank.db' or '{scheme}:/var/lib/bank.db')"
        )
    return scheme, path, options


def _option(
    url: str, kind: str, options: dict[str, str], name: str, allowed: tuple[str, ...]
) -> str:
    value = options.pop(name, allowed[0])
    if value not in allowed:
        raise PersistenceConfigError(
            f"bad {kind} URL {url!r}: {name} must be one of {', '.join(allowed)}, got {value!r}"
        )
    if options:
        raise PersistenceConfigError(
            f"bad {kind} URL {url!r}: unknown option(s) {', '.join(sorted(options))} "
            f"(accepted: {name})"
        )
    return value


def _no_options(url: str, kind: str, options: dict[str, str]) -> None:
    if options:
        raise PersistenceConfigError(
            f"bad {kind} URL {url!r}: unknown option(s) {', '.join(sorted(options))}"
        )


def open_journal(url: str) -> Journal:
    """The journal a URL names (``memory:``, ``sqlite:PATH``, ``file:DIR``), not yet opened."""
    scheme, path, options = _split(url, "journal", _JOURNAL_FORMS)
    # Imported here: each backend pulls in its own dependencies only when it is used.
    if scheme == "memory":
        from persistence.journal._memory import InMemoryJournal

        _no_options(url, "journal", options)
        return InMemoryJournal()
    if scheme == "sqlite":
        from persistence.journal._sqlite import SqliteJournal

        synchronous = _option(url, "journal", options, "synchronous", _SYNCHRONOUS)
        return SqliteJournal(path, synchronous=cast("Synchronous", synchronous))
    from persistence.journal._file import FileJournal

    fsync = _option(url, "journal", options, "fsync", _FSYNC)
    return FileJournal(path, fsync=cast("FsyncMode", fsync))


def open_snapshot_store(url: str) -> SnapshotStore:
    """The snapshot store a URL names (``memory:``, ``sqlite:PATH``, ``file:DIR``), not yet
    opened."""
    scheme, path, options = _split(url, "snapshot store", _SNAPSHOT_FORMS)
    if scheme == "memory":
        from persistence.snapshot._memory import InMemorySnapshotStore

        _no_options(url, "snapshot store", options)
        return InMemorySnapshotStore()
    if scheme == "sqlite":
        from persistence.snapshot._sqlite import SqliteSnapshotStore

        synchronous = _option(url, "snapshot store", options, "synchronous", _SYNCHRONOUS)
        return SqliteSnapshotStore(path, synchronous=cast("Synchronous", synchronous))
    from persistence.snapshot._file import FileSnapshotStore

    _no_options(url, "snapshot store", options)
    return FileSnapshotStore(path)
