"""persistence_id: required, and at most one live writer per id."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest

from actorsys import ActorInitializationError, ActorSystem
from actorsys.testing import TestProbe
from persistence import (
    JournalError,
    Persistence,
    PersistenceConfigError,
    PersistenceIdInUseError,
    SequenceNrConflictError,
)
from persistence.journal import InMemoryJournal, SqliteJournal
from tests.persistence._actors import (
    Append,
    Appended,
    Failed,
    ItemLog,
    Recovered,
    Stored,
    serializer,
    start_log,
    stored_events,
)
from tests.persistence._journals import ControlledJournal


def start_failure(logs: list[MutableMapping[str, Any]], path: str) -> BaseException:
    """The cause of the logged start failure of the actor at ``path``."""
    [entry] = [e for e in logs if e["event"] == "actor_failed" and path in e["error"]]
    error = entry["exc_info"]
    assert isinstance(error, ActorInitializationError)
    assert error.path == path
    return error.cause


@pytest.mark.parametrize("persistence_id", [None, ""], ids=["missing", "empty"])
async def test_an_empty_or_missing_persistence_id_stops_the_actor_at_start(
    system: ActorSystem,
    probe: TestProbe,
    logs: list[MutableMapping[str, Any]],
    persistence_id: str | None,
) -> None:
    ref = system.spawn(lambda: ItemLog(persistence_id, probe.ref), "nameless")
    probe.watch(ref)

    await probe.expect_terminated(ref)  # before recovery: no Recovered came first
    cause = start_failure(logs, ref.path)
    assert isinstance(cause, PersistenceConfigError)
    assert str(cause) == (
        "ItemLog has no persistence_id: set it to a non-empty string identifying the entity, "
        "e.g. self.persistence_id = f'client-{client_id}'"
    )


async def test_a_second_live_actor_with_the_same_persistence_id_is_stopped_at_start(
    system: ActorSystem, probe: TestProbe, logs: list[MutableMapping[str, Any]]
) -> None:
    first, _ = await start_log(system, probe, "dup")

    second = system.spawn(lambda: ItemLog("dup", probe.ref), "second")
    probe.watch(second)
    await probe.expect_terminated(second)

    cause = start_failure(logs, second.path)
    assert type(cause) is PersistenceIdInUseError
    assert str(cause) == (
        f"persistence_id='dup' already has a live writer ({first.path}); "
        "stop it before starting another actor with the same id"
    )
    probe.send(first, Append("still-writing"))
    assert await probe.expect_message_type(Stored) == Stored("still-writing", 1)


async def test_a_persistence_id_can_be_reused_once_its_writer_has_terminated(
    system: ActorSystem, probe: TestProbe
) -> None:
    first, _ = await start_log(system, probe, "reused")
    probe.send(first, Append("a"))
    await probe.expect_message(Stored("a", 1))
    await system.stop(first)

    second, recovered = await start_log(system, probe, "reused")

    assert recovered == Recovered(("a",), 1)
    probe.send(second, Append("b"))
    await probe.expect_message(Stored("b", 2))


async def test_a_second_writer_in_another_system_gets_a_write_failure_never_an_overwrite(
    backend: str, tmp_path: Path
) -> None:
    def open_journal(shared: InMemoryJournal) -> ControlledJournal:
        if backend == "memory":
            return ControlledJournal(shared)
        return ControlledJournal(SqliteJournal(tmp_path / "journal.db"))

    shared = InMemoryJournal()
    journal_a, journal_b = open_journal(shared), open_journal(shared)
    async with (
        ActorSystem("a", extensions=[Persistence(journal_a, serializer=serializer)]) as a,
        ActorSystem("b", extensions=[Persistence(journal_b, serializer=serializer)]) as b,
    ):
        probe_a, probe_b = TestProbe(a), TestProbe(b)
        writer_a, _ = await start_log(a, probe_a, "contested")
        writer_b, _ = await start_log(b, probe_b, "contested")
        probe_b.watch(writer_b)

        probe_a.send(writer_a, Append("from-a"))
        await probe_a.expect_message(Stored("from-a", 1))
        probe_b.send(writer_b, Append("from-b"))

        failed = await probe_b.expect_message_type(Failed)
        assert isinstance(failed.cause, SequenceNrConflictError)
        assert isinstance(failed.cause, JournalError)
        assert failed.sequence_nr == 1
        await probe_b.expect_terminated(writer_b)
        assert await stored_events(journal_a, "contested") == [(1, Appended("from-a"))]
