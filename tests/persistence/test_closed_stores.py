"""Closing a journal or snapshot store is final: handing a closed one to another actor system
fails at configuration with an error saying so, not obscurely at the first persist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from actorsys import ActorSystem
from actorsys.testing import TestProbe
from persistence import Persistence, PersistenceConfigError
from persistence.journal import FileJournal, InMemoryJournal, SqliteJournal
from persistence.snapshot import SqliteSnapshotStore
from tests.persistence._actors import Append, ItemLog, Stored, serializer


@pytest.mark.parametrize("kind", ["memory", "sqlite", "file"])
async def test_a_journal_closed_by_a_first_system_is_refused_by_the_second(
    tmp_path: Path, kind: str
) -> None:
    journal = {
        "memory": InMemoryJournal,
        "sqlite": lambda: SqliteJournal(tmp_path / "j.db"),
        "file": lambda: FileJournal(tmp_path / "journal"),
    }[kind]()
    async with ActorSystem(
        "first", extensions=[Persistence(journal, serializer=serializer)]
    ) as system:
        observer = TestProbe(system).ref
        log = system.spawn(lambda: ItemLog("log-1", observer), "log")
        assert await log.ask(Append("a"), timeout=5) == Stored("a", 1)
    with pytest.raises(PersistenceConfigError, match=re.escape("this journal was closed (")):
        Persistence(journal)


async def test_a_closed_snapshot_store_is_refused_naming_it(tmp_path: Path) -> None:
    store = SqliteSnapshotStore(tmp_path / "s.db")
    await store.close()
    with pytest.raises(
        PersistenceConfigError,
        match=r"^this snapshot store was closed \(.*\); create a new instance for this actor "
        r"system \(closing is final\)$",
    ):
        Persistence(InMemoryJournal(), store)


async def test_a_persistence_extension_reused_by_a_second_system_fails_its_start_cleanly() -> None:
    persistence = Persistence(InMemoryJournal())
    async with ActorSystem("first", extensions=[persistence]):
        pass
    second = ActorSystem("second", extensions=[persistence])
    with pytest.raises(PersistenceConfigError, match="give actor system 'second' a new"):
        await second.start()
    assert not second.is_running  # shut down again: no actor system left running
