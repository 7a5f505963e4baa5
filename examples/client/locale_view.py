"""The read side: a clients-by-locale view projected from the journal's tagged events.

It follows every event tagged ``client`` (a live ``events_by_tag`` query) and keeps, per client,
its current locale. The view and the offset of the last event it applied are stored together in
one transaction, so after a restart it resumes exactly after that event. With an in-memory journal
the view is in memory too.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        """Load the stored view (beside a SQLite journal) and start following the journal."""
        db = None
        if journal_url.startswith("sqlite:"):
            path = Path(journal_url.removeprefix("sqlite:")).with_suffix(".view.db")
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path)
            await db.executescript(_SCHEMA)
        view = cls(journal, queries, db)
        await view._load()
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
        """Wait until the view has applied every event stored so far (read your writes)."""
        target = await self._journal.highest_ordering()
        async with asyncio.timeout(within):
            while self.offset < target:
                self._advanced.clear()
                await self._advanced.wait()

    def clients_with(self, locale: str) -> list[str]:
        return sorted(c for c, loc in self._locales.items() if loc == locale)

    def known_clients(self) -> list[str]:
        return sorted(self._locales)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._db is not None:
            await self._db.close()
