"""delete_events: inclusive, up to the last sequence number, reported both ways."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from actorsys import ActorSystem
from actorsys.testing import TestProbe
from persistence import DeleteEventsFailure, DeleteEventsOutOfRangeError, DeleteEventsSuccess
from tests.persistence._actors import (
    Append,
    Appended,
    DeleteTo,
    ItemLog,
    Recovered,
    Replayed,
    Stored,
    start_log,
    stored_events,
)
from tests.persistence._journals import ControlledJournal


@dataclass(frozen=True)
class DeleteAwaiting:
    sequence_nr: int


class DeletingLog(ItemLog):
    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, DeleteAwaiting):
            return self.delete(command.sequence_nr)
        return super().receive_command(command)

    async def delete(self, sequence_nr: int) -> None:
        sender = self.context.sender
        try:
            outcome: Any = await self.delete_events(sequence_nr)
        except Exception as error:  # the test checks exactly which
            outcome = error
        sender.tell(("awaited", outcome), self.context.self)


async def test_delete_events_is_inclusive_and_replay_starts_after_it(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref, _ = await start_log(system, probe, "deleting")
    for item in "abc":
        probe.send(ref, Append(item))
        await probe.expect_message_type(Stored)

    probe.send(ref, DeleteTo(2))

    await probe.expect_message(DeleteEventsSuccess(2))
    assert await stored_events(journal, "deleting") == [(3, Appended("c"))]
    await system.stop(ref)
    system.spawn(lambda: ItemLog("deleting", probe.ref))
    assert [await probe.receive() for _ in range(2)] == [
        Replayed("c", 3, system.dead_letters),
        Recovered(("c",), 3),
    ]


async def test_delete_events_reports_success_through_the_awaitable_too(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: DeletingLog("deleting", probe.ref))
    await probe.expect_message_type(Recovered)
    probe.send(ref, Append("a"))
    await probe.expect_message_type(Stored)

    probe.send(ref, DeleteAwaiting(1))

    replies = [await probe.receive() for _ in range(2)]
    assert sorted(map(repr, replies)) == sorted(map(repr, [("awaited", 1), DeleteEventsSuccess(1)]))


async def test_deleting_beyond_the_last_sequence_nr_is_reported_as_a_failure_both_ways(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: DeletingLog("overreaching", probe.ref))
    await probe.expect_message_type(Recovered)
    probe.send(ref, Append("a"))
    await probe.expect_message_type(Stored)

    probe.send(ref, DeleteAwaiting(5))

    replies = [await probe.receive() for _ in range(2)]
    [(_, error)] = [reply for reply in replies if isinstance(reply, tuple)]
    assert DeleteEventsFailure(5, error) in replies
    assert type(error) is DeleteEventsOutOfRangeError
    assert str(error) == (
        "cannot delete events up to 5: persistence_id='overreaching' has only reached sequence_nr=1"
    )
    assert await stored_events(journal, "overreaching") == [(1, Appended("a"))]
