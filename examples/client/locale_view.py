"""The read side: a clients-by-locale view projected from the journal's tagged events.

It follows every event tagged ``client`` (a live ``events_by_tag`` query) and keeps, per client,
its current locale. The view and the offset of the last event it applied are stored together in
one transaction, so after a restart it resumes exactly after that event. With an in-memory journal
the view is in memory too.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite

from examples.client.domain import ClientLocaleChanged, ClientRegistered
from examples.client.entity import CLIENT_TAG
from persistence.journal import ReadJournal
from persistence.query import EventEnvelope, EventQueries

_SCHEMA = """
CREATE TABLE IF NOT EXISTS client_locale (client_id TEXT PRIMARY KEY, locale TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS view_offset (view TEXT PRIMARY KEY, offset INTEGER NOT NULL);
"""
_VIEW = "clients-by-locale"


class ViewError(Exception):
    """The read side cannot be opened or stopped following the journal; the message says why."""


def view_path(journal_url: str) -> Path:
    """The view's database beside a ``sqlite:PATH[?options]`` journal: ``PATH`` as ``.view.db``."""
    path = journal_url.removeprefix("sqlite:").partition("?")[0]
    return Path(path).with_suffix(".view.db")


class LocaleView:
    """Which clients have which locale, as of ``offset``."""

    def __init__(
        self, journal: ReadJournal, queries: EventQueries, db: aiosqlite.Connection | None
    ) -> None:
        self._journal = journal
        self._queries = queries
        self._db = db
        self._locales: dict[str, str] = {}
        self.offset = 0
        self._task: asyncio.Task[None] | None = None
        self._advanced = asyncio.Event()

    @classmethod
    async def open(cls, journal: Any, queries: EventQueries, journal_url: str) -> LocaleView:
        """Load the stored view (beside a SQLite journal) and start following the journal.

        Raises ``ViewError`` naming the file when the view's database cannot be opened or read.
        """
        db = None
        path = view_path(journal_url) if journal_url.startswith("sqlite:") else None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                db = await aiosqlite.connect(path)
            except (OSError, sqlite3.Error) as error:
                raise ViewError(
                    f"cannot open the read side's database {str(path)!r}: {error}"
                ) from None
        view = cls(journal, queries, db)
        try:
            if db is not None:
                await db.executescript(_SCHEMA)
            await view._load()
        except sqlite3.Error as error:
            await view.close()
            raise ViewError(
                f"cannot read the read side's database {str(path)!r}: {error}"
            ) from None
        view._task = asyncio.get_running_loop().create_task(view._follow())
        return view

    async def _load(self) -> None:
        if self._db is None:
            return
        async with self._db.execute("SELECT client_id, locale FROM client_locale") as cursor:
            self._locales = {row[0]: row[1] async for row in cursor}
        async with self._db.execute(
            "SELECT offset FROM view_offset WHERE view = ?", (_VIEW,)
        ) as cursor:
            row = await cursor.fetchone()
        self.offset = row[0] if row else 0

    async def _follow(self) -> None:
        async for envelope in self._queries.events_by_tag(CLIENT_TAG, self.offset):
            await self._apply(envelope)

    async def _apply(self, envelope: EventEnvelope) -> None:
        event = envelope.event
        changed: tuple[str, str] | None = None
        if isinstance(event, ClientRegistered | ClientLocaleChanged):
            changed = (event.client_id, event.locale)
            self._locales[event.client_id] = event.locale
        self.offset = envelope.offset
        if self._db is not None:
            if changed is not None:
                await self._db.execute(
                    "INSERT INTO client_locale VALUES (?, ?) "
                    "ON CONFLICT(client_id) DO UPDATE SET locale = excluded.locale",
                    changed,
                )
            await self._db.execute(
                "INSERT INTO view_offset VALUES (?, ?) "
                "ON CONFLICT(view) DO UPDATE SET offset = excluded.offset",
                (_VIEW, self.offset),
            )
            await self._db.commit()
        self._advanced.set()

    async def catch_up(self, within: float = 5.0) -> None:
        """Wait until the view has applied every event stored so far (read your writes).

        Raises ``TimeoutError`` if it is still behind after ``within`` seconds, and ``ViewError``
        if it stopped following the journal.
        """
        target = await self._journal.highest_ordering()
        async with asyncio.timeout(within):
            while self.offset < target:
                self._check_following()
                self._advanced.clear()
                await self._advanced.wait()

    def _check_following(self) -> None:
        task = self._task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            raise ViewError(f"the read side stopped at offset {self.offset}: {error}")

    def clients_with(self, locale: str) -> list[str]:
        return sorted(c for c, loc in self._locales.items() if loc == locale)

    def known_clients(self) -> list[str]:
        return sorted(self._locales)

    async def close(self) -> None:
        """Stop following and close the view's database (also after a failure)."""
        try:
            if self._task is not None:
                self._task.cancel()
                # wait() neither raises the task's own error nor swallows our cancellation
                await asyncio.wait([self._task])
                if not self._task.cancelled():
                    self._task.exception()  # retrieved: catch_up reports it, close does not
        finally:
            if self._db is not None:
                await self._db.close()
