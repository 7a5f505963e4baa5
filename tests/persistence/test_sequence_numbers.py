"""Sequence numbers: from 1, consecutive, consumed by rejections, never decreasing."""

from __future__ import annotations

from typing import Any

from actorsys import ActorSystem
from actorsys.testing import TestProbe
from persistence import DeleteEventsSuccess
from tests.persistence._actors import (
    Append,
    Appended,
    DeleteTo,
    ItemLog,
    Recovered,
    Rejected,
    Stored,
    Unregistered,
    start_log,
    stored_events,
)
from tests.persistence._journals import ControlledJournal


class PersistUnregistered:
    """Persist an event whose type is not registered (it is rejected)."""

    def __init__(self, *items: Any) -> None:
        self.items = items


class RejectingLog(ItemLog):
    """Also persists unserializable events on request, alone or inside one persist_all."""

    def receive_command(self, command: Any) -> None:
        if isinstance(command, PersistUnregistered):
            if len(command.items) == 1:
                self.persist(command.items[0], self.stored)
            else:
                self.persist_all(list(command.items), self.stored)
            return
        super().receive_command(command)


async def test_sequence_numbers_start_at_1_and_are_consecutive(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref, recovered = await start_log(system, probe, "seq")
    assert recovered == Recovered((), 0)

    for item in "abc":
        probe.send(ref, Append(item))
    assert [await probe.expect_message_type(Stored) for _ in "abc"] == [
        Stored("a", 1),
        Stored("b", 2),
        Stored("c", 3),
    ]
    assert await stored_events(journal, "seq") == [
        (1, Appended("a")),
        (2, Appended("b")),
        (3, Appended("c")),
    ]


async def test_a_rejected_event_consumes_its_sequence_number(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: RejectingLog("rejects", probe.ref))
    await probe.expect_message_type(Recovered)

    probe.send(ref, Append("a"))
    await probe.expect_message(Stored("a", 1))
    probe.send(ref, PersistUnregistered(Unregistered("b")))
    rejected = await probe.expect_message_type(Rejected)
    probe.send(ref, Append("c"))
    await probe.expect_message(Stored("c", 3))

    assert (rejected.item, rejected.sequence_nr) == ("b", 2)
    assert await stored_events(journal, "rejects") == [(1, Appended("a")), (3, Appended("c"))]


async def test_a_rejected_persist_all_consumes_all_of_its_numbers(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: RejectingLog("rejects-all", probe.ref))
    await probe.expect_message_type(Recovered)

    probe.send(ref, PersistUnregistered(Appended("a"), Unregistered("b"), Appended("c")))
    rejected = [await probe.expect_message_type(Rejected) for _ in range(3)]
    probe.send(ref, Append("d"))
    await probe.expect_message(Stored("d", 4))

    assert [(r.item, r.sequence_nr) for r in rejected] == [("a", 1), ("b", 2), ("c", 3)]
    assert await stored_events(journal, "rejects-all") == [(4, Appended("d"))]


async def test_the_highest_sequence_nr_never_decreases_not_even_after_deleting_every_event(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref, _ = await start_log(system, probe, "emptied")
    for item in "abc":
        probe.send(ref, Append(item))
        await probe.expect_message_type(Stored)
    probe.send(ref, DeleteTo(3))
    await probe.expect_message(DeleteEventsSuccess(3))
    await system.stop(ref)
    assert await stored_events(journal, "emptied") == []
    assert await journal.highest_sequence_nr("emptied") == 3

    ref, recovered = await start_log(system, probe, "emptied")
    assert recovered == Recovered((), 3)
    probe.send(ref, Append("d"))
    await probe.expect_message(Stored("d", 4))
