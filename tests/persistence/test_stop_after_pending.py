"""``StopAfterPending``: a persistent actor stops once its persists in flight and the commands it
held meanwhile are done (a ``PoisonPill`` would stop it before them)."""

from __future__ import annotations

import pytest

from actorsys import ActorDeadError, ActorSystem, DeadLetter
from actorsys.testing import TestProbe, settle
from persistence import Persistence, StopAfterPending
from persistence.journal import InMemoryJournal
from tests.persistence._actors import Append, Get, Stored, serializer, start_log
from tests.persistence._journals import ControlledJournal


async def test_an_idle_persistent_actor_stops_at_once_and_its_handler_never_sees_it() -> None:
    async with ActorSystem(
        "stop", extensions=[Persistence(InMemoryJournal(), serializer=serializer)]
    ) as system:
        probe = TestProbe(system)
        log, _ = await start_log(system, probe, "log-1")
        probe.watch(log)
        log.tell(StopAfterPending)
        await probe.expect_terminated(log)


async def test_the_commands_held_behind_a_persist_are_handled_before_it_stops() -> None:
    journal = ControlledJournal(InMemoryJournal())
    async with ActorSystem(
        "stop", extensions=[Persistence(journal, serializer=serializer)]
    ) as system:
        letters: list[DeadLetter] = []
        system.event_stream.subscribe(letters.append, DeadLetter)
        probe = TestProbe(system)
        log, _ = await start_log(system, probe, "log-1")
        journal.hold_writes()
        answers = [log.ask(Append("a")), log.ask(Append("b")), log.ask(Get())]
        await settle()
        log.tell(StopAfterPending)
        late = log.ask(Get())  # after the stop request: never handled
        probe.watch(log)
        journal.release_writes()

        assert [await answer for answer in answers] == [
            Stored("a", 1),
            Stored("b", 2),
            ("a", "b"),
        ]
        await probe.expect_terminated(log)
        with pytest.raises(ActorDeadError):
            await late
        assert letters == []
