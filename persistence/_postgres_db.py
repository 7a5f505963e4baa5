"""An asyncpg pool opened on first use, shared plumbing of the PostgreSQL journal and snapshot
store.

- The pool comes from a DSN (``postgresql://`` or ``postgres://``; a password missing from it is
  taken from ``PGPASSWORD`` or the libpq password file, as asyncpg does) or is handed in (then the
  caller owns it and :meth:`LazyPostgres.close` leaves it open).
- The store's tables live in one schema (``public`` unless told), created on first use,
  idempotently, under a transaction-level advisory lock (concurrent ``CREATE TABLE IF NOT
  EXISTS`` of two processes can otherwise fail), with the schema version recorded in
  ``schema_version``.
- A pool the store opens skips asyncpg's per-release reset query (see :func:`keep_session`).
- Credentials are never printed: errors and ``repr`` name host, port and database only.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from persistence._errors import PersistenceError

T = TypeVar("T")

SCHEMES = ("postgresql", "postgres")
SCHEMA_VERSION = 1
"""The version of the tables this code writes (``schema_version`` holds it per store)."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SCHEMA_LOCK = 0x61637473_79730001  # "actsys" + 1: the advisory lock key of schema creation

_CONNECTION_FAILURES = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    asyncio.TimeoutError,
)


async def keep_session(connection: asyncpg.Connection) -> None:
    """The pools' reset: nothing beyond what asyncpg always does (roll back an open
    transaction, drop listeners). The stores leave no session state behind, and asyncpg's
    default reset costs a round trip on every release."""


def check_url(url: str, kind: str) -> str:
    """``url`` if its scheme is ``postgresql:`` or ``postgres:``, else a ``ValueError``."""
    scheme = url.partition(":")[0]
    if scheme not in SCHEMES or not url.startswith(f"{scheme}://"):
        raise ValueError(
            f"not a PostgreSQL URL for a {kind}: {redact(url)!r}; write "
            "postgresql://USER@HOST:PORT/DATABASE (or postgres://...)"
        )
    return url


def describe_dsn(dsn: str) -> str:
    """``host:port/database`` of a DSN, with libpq's defaults; never user or password."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:  # a malformed port: say nothing more than the scheme
        return f"{parts.scheme}://?"
    host = host or _first(query, "host") or os.environ.get("PGHOST") or "localhost"
    port_text = str(port) if port else _first(query, "port") or os.environ.get("PGPORT", "5432")
    database = (
        unquote(parts.path.lstrip("/"))
        or _first(query, "dbname")
        or os.environ.get("PGDATABASE")
        or parts.username
        or _first(query, "user")
        or os.environ.get("PGUSER")
        or getpass.getuser()
    )
    return f"{host}:{port_text}/{database}"


def redact(url: str) -> str:
    """``url`` with any password (in the authority or the query) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:***@{hostport}"
    query = re.sub(r"(?i)(^|&)(password)=[^&]*", r"\1\2=***", parts.query)
    return parts._replace(netloc=netloc, query=query).geturl()


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def check_schema_name(schema: str) -> str:
    """``schema`` if it is a plain SQL identifier (letters, digits, ``_``), else ``ValueError``."""
    if not isinstance(schema, str) or not _IDENTIFIER.fullmatch(schema):
        raise ValueError(
            f"schema must be a plain identifier (letters, digits and _, not starting with a "
            f"digit, at most 63 characters), got {schema!r}"
        )
    return schema


class LazyPostgres:
    """A pool opened on first use, the store's schema created then, errors translated."""

    __slots__ = (
        "_closed",
        "_closed_error",
        "_ddl",
        "_dsn",
        "_error",
        "_opening",
        "_owns_pool",
        "_pool",
        "_pool_options",
        "name",
        "schema",
        "where",
    )

    def __init__(
        self,
        dsn: str | None,
        pool: asyncpg.Pool | None,
        *,
        schema: str,
        ddl: str,
        name: str,
        error: type[PersistenceError],
        closed_error: type[PersistenceError],
        pool_options: dict[str, Any],
    ) -> None:
        if (dsn is None) == (pool is None):
            raise ValueError(f"give the {name} either a DSN or an asyncpg pool (exactly one)")
        self._dsn = dsn
        self._pool: asyncpg.Pool | None = pool
        self._owns_pool = pool is None
        self._pool_options = pool_options
        self.schema = check_schema_name(schema)
        self._ddl = ddl
        self.name = name
        self._error = error
        self._closed_error = closed_error
        self._opening: asyncio.Future[asyncpg.Pool] | None = None
        self._closed = False
        self.where = describe_dsn(dsn) if dsn is not None else "a given pool"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def state(self) -> str:
        if self._closed:
            return "closed"
        return "open" if self._opening is not None and self._opening.done() else "not opened"

    def check_open(self, operation: str) -> None:
        if self._closed:
            raise self._closed_error(
                f"cannot {operation}: the {self.name} is closed; create a new instance to use "
                "the database again"
            )

    def failure(self, operation: str, exc: BaseException) -> PersistenceError:
        """The store error for a failure of ``operation``: names host, port, database."""
        detail = str(exc) or type(exc).__name__
        return self._error(
            f"cannot {operation}: {self.name} at {self.where} (schema {self.schema!r}) failed: "
            f"{type(exc).__name__}: {detail}"
        )

    @contextmanager
    def errors(self, operation: str) -> Iterator[None]:
        """Translate connection and server failures into the store's error."""
        try:
            yield
        except _CONNECTION_FAILURES as exc:
            raise self.failure(operation, exc) from exc

    async def pool(self, operation: str, *, closing: bool = False) -> asyncpg.Pool:
        """The pool, opened (and the schema created) on first use. ``closing=True`` is for
        work submitted before :meth:`close`, which waits for it."""
        if not closing:
            self.check_open(operation)
        opening = self._opening
        if (
            opening is not None
            and opening.done()
            and not opening.cancelled()
            and opening.exception() is None
        ):
            return opening.result()
        if opening is None or opening.done():  # first use, or the last attempt failed
            opening = self._opening = asyncio.ensure_future(self._open())
        with self.errors(operation):
            return await asyncio.shield(opening)

    async def _open(self) -> asyncpg.Pool:
        pool = self._pool
        if pool is None:
            pool = await asyncpg.create_pool(self._dsn, **self._pool_options)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                await conn.execute(self._ddl.format(schema=f'"{self.schema}"'))
                stored = await conn.fetchval(
                    f'SELECT max(version) FROM "{self.schema}".schema_version'
                )
                if stored is None:
                    await conn.execute(
                        f'INSERT INTO "{self.schema}".schema_version (version) VALUES ($1)',
                        SCHEMA_VERSION,
                    )
                elif stored > SCHEMA_VERSION:
                    raise self._error(
                        f"cannot open the {self.name} at {self.where}: schema {self.schema!r} "
                        f"has version {stored}, written by a newer version of this library "
                        f"(this one knows version {SCHEMA_VERSION}); upgrade the library"
                    )
        except BaseException:
            if self._owns_pool:
                pool.terminate()
            raise
        self._pool = pool
        return pool

    async def run(
        self,
        operation: str,
        call: Callable[[asyncpg.Pool], Awaitable[T]],
        *,
        closing: bool = False,
    ) -> T:
        """``call(pool)`` with failures translated."""
        pool = await self.pool(operation, closing=closing)
        try:  # not self.errors(): a generator context manager per call shows in a hot path
            return await call(pool)
        except _CONNECTION_FAILURES as exc:
            raise self.failure(operation, exc) from exc

    async def release(self, connection: asyncpg.Connection) -> None:
        """Give ``connection`` back to the pool it came from (before the pool closes)."""
        if self._pool is not None:
            with suppress(asyncpg.InterfaceError):  # the pool took it back when it died
                await self._pool.release(connection)

    async def close(self, drain: Callable[[], Awaitable[None]] | None = None) -> None:
        """Finish ``drain`` (pending writes), then close the pool if this store opened it."""
        if self._closed:
            return
        self._closed = True
        try:
            if drain is not None:
                await drain()
        finally:
            await self._release()

    async def _release(self) -> None:
        opening = self._opening
        if opening is not None and not opening.done():
            opening.cancel()
            await asyncio.wait([opening])  # its outcome no longer matters
        if self._owns_pool and self._pool is not None:
            await self._pool.close()
