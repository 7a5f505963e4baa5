"""Many persistent actors starting at once on a file journal that is not open yet."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import persistence.journal._file as file_module
from actorsys import ActorSystem
from actorsys.testing import settle
from persistence import Persistence, PersistentActor, RecoveryCompleted
from persistence.journal import FileJournal

ACTORS = 2000


class Recoveries:
    """Counts the actors that completed recovery; ``first`` is set by the first of them."""

    def __init__(self) -> None:
        self.count = 0
        self.first = asyncio.Event()


class Counter(PersistentActor):
    def __init__(self, persistence_id: str, recoveries: Recoveries) -> None:
        super().__init__()
        self.persistence_id = persistence_id
        self.recoveries = recoveries

    def receive_recover(self, message: Any) -> None:
        if message is RecoveryCompleted:
            self.recoveries.count += 1
            self.recoveries.first.set()

    def receive_command(self, command: Any) -> None:
        return None


async def test_thousands_of_actors_started_before_the_first_open_all_recover_after_one_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opens: list[int] = []
    real_recover = file_module._recover

    def counting_recover(journal_ref: Any) -> None:
        opens.append(1)
        real_recover(journal_ref)

    monkeypatch.setattr(file_module, "_recover", counting_recover)
    recoveries = Recoveries()
    journal = FileJournal(tmp_path / "journal")
    async with ActorSystem("startup", extensions=[Persistence(journal)]) as system:
        for n in range(ACTORS):
            system.spawn(lambda n=n: Counter(f"counter-{n}", recoveries), f"counter-{n}")
        await recoveries.first.wait()
        await settle()  # a few turns of the loop: the others are not queued one per turn
        assert recoveries.count == ACTORS
    assert opens == [1]
