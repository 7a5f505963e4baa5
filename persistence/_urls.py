"""Journal and snapshot-store URLs: the registry of URL schemes, and the built-in schemes.

A URL names its backend by its scheme, the text before the first colon. Each scheme is
registered with a factory, which turns the whole URL into a store (not yet opened: stores open on
first use), and with the form that error messages list. The built-in schemes are registered
like any other; a third-party backend adds its own::

    register_journal_scheme("eventstore", EventStoreJournal.from_url,
                            form="'eventstore://HOST:PORT'")
    Persistence("eventstore://127.0.0.1:2113")

Grammar of the built-in schemes::

    url     = "memory:" | "sqlite:" path [ "?synchronous=" ( "full" | "normal" | "off" ) ]
            | "file:" path [ "?fsync=" ( "always" | "batch" | "never" ) ]      (journals)
            | "file:" path                                                      (snapshot stores)
    path    = a relative or absolute file system path, not empty
    url     =/ ( "postgresql://" | "postgres://" ) dsn                          (both kinds)
    dsn     = an asyncpg / libpq connection URL (the ``postgres`` extra: asyncpg)

``sqlite:data/bank.db`` is relative to the working directory, ``sqlite:/var/lib/bank.db`` is
absolute. A journal and a snapshot store may share one SQLite file (they use separate tables).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from persistence._errors import PersistenceConfigError
from persistence.journal._protocol import Journal
from persistence.snapshot._protocol import SnapshotStore

if TYPE_CHECKING:
    from persistence._sqlite_db import Synchronous
    from persistence.journal._file import FsyncMode

__all__ = [
    "open_journal",
    "open_snapshot_store",
    "register_journal_scheme",
    "register_snapshot_store_scheme",
]

S = TypeVar("S")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")  # RFC 3986, lower case
_SYNCHRONOUS = ("full", "normal", "off")
_FSYNC = ("always", "batch", "never")


class _Schemes(Generic[S]):
    """The URL schemes of one kind of store, in the order they were registered."""

    __slots__ = ("_factories", "_forms", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[[str], S]] = {}
        self._forms: dict[str, str] = {}

    def register(
        self, scheme: str, factory: Callable[[str], S], form: str, *, replace: bool
    ) -> None:
        if not isinstance(scheme, str) or not _SCHEME.fullmatch(scheme):
            raise PersistenceConfigError(
                f"cannot register {self.kind} URL scheme {scheme!r}: a scheme is a lower-case "
                "letter followed by lower-case letters, digits, '+', '-' or '.', without the colon "
                "(e.g. 'postgresql')"
            )
        if not callable(factory):
            raise PersistenceConfigError(
                f"cannot register {self.kind} URL scheme {scheme!r}: the factory {factory!r} is "
                "not callable; pass a function that takes the URL and returns the store"
            )
        if not form:
            raise PersistenceConfigError(
                f"cannot register {self.kind} URL scheme {scheme!r}: give the form error messages "
                f"list, e.g. form=\"'{scheme}:...'\""
            )
        if scheme in self._factories and not replace:
            raise PersistenceConfigError(
                f"{self.kind} URL scheme {scheme!r} is already registered "
                f"(as {self._forms[scheme]}); pass replace=True to replace it"
            )
        self._factories[scheme] = factory
        self._forms[scheme] = form

    def forms(self) -> str:
        """Every accepted form, for error messages: ``"A, B or C"``."""
        *rest, last = dict.fromkeys(self._forms.values())  # schemes may share a form
        return f"{', '.join(rest)} or {last}" if rest else last

    def open(self, url: str) -> S:
        scheme, colon, _ = url.partition(":")
        factory = self._factories.get(scheme) if colon else None
        if factory is None:
            raise PersistenceConfigError(f"unsupported {self.kind} URL {url!r}: use {self.forms()}")
        return factory(url)


_JOURNALS: _Schemes[Journal] = _Schemes("journal")
_SNAPSHOT_STORES: _Schemes[SnapshotStore] = _Schemes("snapshot store")


def register_journal_scheme(
    scheme: str, factory: Callable[[str], Journal], *, form: str, replace: bool = False
) -> None:
    """Resolve journal URLs ``scheme:...`` with ``factory(url)``.

    ``factory`` receives the whole URL and returns the journal without opening it (journals open
    on first use); for a malformed URL it raises :class:`~persistence.PersistenceConfigError`
    saying what is wrong. ``form`` shows how to write such a URL, in the list an unsupported URL's
    error gives (e.g. ``"'postgresql://USER@HOST/DB'"``). A scheme is registered once, unless
    ``replace=True``. Every URL a user gives goes through here: ``Persistence(journal=...)``,
    :func:`open_journal`, ``python -m persistence`` and the example shell's ``--journal``.
    """
    _JOURNALS.register(scheme, factory, form, replace=replace)


def register_snapshot_store_scheme(
    scheme: str, factory: Callable[[str], SnapshotStore], *, form: str, replace: bool = False
) -> None:
    """Resolve snapshot-store URLs ``scheme:...`` with ``factory(url)``; as
    :func:`register_journal_scheme`."""
    _SNAPSHOT_STORES.register(scheme, factory, form, replace=replace)


def open_journal(url: str) -> Journal:
    """The journal a URL names, through its registered scheme (built in: ``memory:``,
    ``sqlite:PATH``, ``file:DIR``); not yet opened."""
    return _JOURNALS.open(url)


def open_snapshot_store(url: str) -> SnapshotStore:
    """The snapshot store a URL names, through its registered scheme (built in: ``memory:``,
    ``sqlite:PATH``, ``file:DIR``); not yet opened."""
    return _SNAPSHOT_STORES.open(url)


# -- the built-in schemes -----------------------------------------------------------------------


def _split(url: str, schemes: _Schemes[S]) -> tuple[str, dict[str, str]]:
    """``(path, options)`` of a built-in scheme's ``url``, or the error saying what is wrong."""
    kind = schemes.kind
    scheme, _, rest = url.partition(":")
    path, _, query = rest.partition("?")
    options: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, equals, value = pair.partition("=")
        if not equals:
            raise PersistenceConfigError(
                f"bad {kind} URL {url!r}: option {pair!r} has no value; accepted forms: "
                f"{schemes.forms()}"
            )
        options[key] = value
    if scheme == "memory":
        if rest:
            raise PersistenceConfigError(f"bad {kind} URL {url!r}: write just 'memory:'")
    elif not path or path.startswith("//"):
        raise PersistenceConfigError(
            f"bad {kind} URL {url!r}: write {scheme}:PATH with a file system path "
            f"(relative or absolute, e.g. '{scheme}:data/bank.db' or '{scheme}:/var/lib/bank.db')"
        )
    return path, options


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


def _memory(url: str, schemes: _Schemes[S]) -> None:
    """Check a ``memory:`` URL."""
    _no_options(url, schemes.kind, _split(url, schemes)[1])


def _sqlite(url: str, schemes: _Schemes[S]) -> tuple[str, Synchronous]:
    """The path and ``synchronous`` mode of a ``sqlite:`` URL."""
    path, options = _split(url, schemes)
    synchronous = _option(url, schemes.kind, options, "synchronous", _SYNCHRONOUS)
    return path, cast("Synchronous", synchronous)


# Each backend is imported by its factory: it pulls in its dependencies only when it is used.


def _memory_journal(url: str) -> Journal:
    from persistence.journal._memory import InMemoryJournal

    _memory(url, _JOURNALS)
    return InMemoryJournal()


def _memory_snapshot_store(url: str) -> SnapshotStore:
    from persistence.snapshot._memory import InMemorySnapshotStore

    _memory(url, _SNAPSHOT_STORES)
    return InMemorySnapshotStore()


def _sqlite_journal(url: str) -> Journal:
    from persistence.journal._sqlite import SqliteJournal

    path, synchronous = _sqlite(url, _JOURNALS)
    return SqliteJournal(path, synchronous=synchronous)


def _sqlite_snapshot_store(url: str) -> SnapshotStore:
    from persistence.snapshot._sqlite import SqliteSnapshotStore

    path, synchronous = _sqlite(url, _SNAPSHOT_STORES)
    return SqliteSnapshotStore(path, synchronous=synchronous)


def _file_journal(url: str) -> Journal:
    from persistence.journal._file import FileJournal

    path, options = _split(url, _JOURNALS)
    fsync = _option(url, "journal", options, "fsync", _FSYNC)
    return FileJournal(path, fsync=cast("FsyncMode", fsync))


def _file_snapshot_store(url: str) -> SnapshotStore:
    from persistence.snapshot._file import FileSnapshotStore

    path, options = _split(url, _SNAPSHOT_STORES)
    _no_options(url, "snapshot store", options)
    return FileSnapshotStore(path)


_SQLITE_FORM = (
    "'sqlite:PATH' (e.g. 'sqlite:data/bank.db', optionally '?synchronous=full|normal|off')"
)
register_journal_scheme("memory", _memory_journal, form="'memory:'")
register_journal_scheme("sqlite", _sqlite_journal, form=_SQLITE_FORM)
register_journal_scheme(
    "file",
    _file_journal,
    form="'file:DIR' (e.g. 'file:data/journal', optionally '?fsync=always|batch|never')",
)
register_snapshot_store_scheme("memory", _memory_snapshot_store, form="'memory:'")
register_snapshot_store_scheme("sqlite", _sqlite_snapshot_store, form=_SQLITE_FORM)
register_snapshot_store_scheme(
    "file", _file_snapshot_store, form="'file:DIR' (e.g. 'file:data/snapshots')"
)


def _postgres_journal(url: str) -> Journal:
    from persistence.journal import PostgresJournal  # asyncpg: imported when used

    return PostgresJournal.from_url(url)


def _postgres_snapshot_store(url: str) -> SnapshotStore:
    from persistence.snapshot import PostgresSnapshotStore  # asyncpg: imported when used

    return PostgresSnapshotStore.from_url(url)


_POSTGRES_FORM = "'postgresql://USER@HOST:PORT/DB' (or 'postgres://...')"
for _scheme in ("postgresql", "postgres"):
    register_journal_scheme(_scheme, _postgres_journal, form=_POSTGRES_FORM)
    register_snapshot_store_scheme(_scheme, _postgres_snapshot_store, form=_POSTGRES_FORM)
