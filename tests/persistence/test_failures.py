"""Write failures stop the actor (a backoff supervisor brings it back); rejections do not."""

from __future__ import annotations

from collections.abc import Awaitable, MutableMapping
from dataclasses import dataclass
from typing import Any

import pytest

from actorsys import ActorSystem, BackoffOptions, BackoffSupervisor, DeadLetter
from actorsys.testing import TestProbe
from persistence import EventRejectedError, JournalError, SerializationError
from tests.persistence._actors import (
    Append,
    Appended,
    Failed,
    Holder,
    ItemLog,
    Recovered,
    Rejected,
    Replayed,
    Stored,
    Unregistered,
    start_log,
    stored_events,
)
from tests.persistence._journals import ControlledJournal

UNREGISTERED = (
    "cannot encode tests.persistence._actors.Unregistered: the type is not registered; register "
    'it with a stable name: serializer.register(Unregistered, "Unregistered") or decorate it with '
    '@event_type("Unregistered")'
)
UNENCODABLE = (
    "cannot encode tests.persistence._actors.Holder as 'Holder': field 'value' holds a value of "
    "unsupported type 'builtins.object' (supported: None, bool, int, float, str, bytes, list, "
    "tuple, dict, set, frozenset, Decimal, datetime, date, timedelta, UUID and registered "
    "dataclasses, NamedTuples and enums)"
)


@dataclass(frozen=True)
class PersistThese:
    """Persist each event with its own ``persist`` call, all in one command."""

    events: tuple[Any, ...]


@dataclass(frozen=True)
class AwaitPersist:
    """Persist ``event`` in an async handler and reply with what the await returned or raised."""

    event: Any


class MixedLog(ItemLog):
    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, PersistThese):
            for event in command.events:
                self.persist(event, self.stored)
            return None
        if isinstance(command, AwaitPersist):
            return self.await_persist(command.event)
        return super().receive_command(command)

    async def await_persist(self, event: Any) -> None:
        sender = self.context.sender
        try:
            outcome = await self.persist(event, self.stored)
        except Exception as error:  # the test checks exactly which
            outcome = error
        sender.tell(("awaited", outcome), self.context.self)


async def test_a_write_failure_calls_on_persist_failure_and_stops_the_actor(
    system: ActorSystem,
    probe: TestProbe,
    journal: ControlledJournal,
    dead_letters: list[DeadLetter],
) -> None:
    ref, _ = await start_log(system, probe, "failing")
    probe.watch(ref)
    error = JournalError("disk on fire")
    journal.fail_next_writes(error)
    journal.hold_writes()

    probe.send(ref, Append("a"))
    probe.send(ref, Append("b"))  # held back behind the failing write, then dead-lettered
    await journal.wait_for_write_calls(1)
    journal.release_writes()

    assert await probe.receive() == Failed(error, Appended("a"), 1)
    await probe.expect_terminated(ref)
    assert [letter.message for letter in dead_letters] == [Append("b")]
    assert await stored_events(journal, "failing") == []


async def test_awaiting_a_persist_whose_write_failed_raises_the_write_error(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: MixedLog("await-failing", probe.ref))
    await probe.expect_message_type(Recovered)
    error = JournalError("connection reset")
    journal.fail_next_writes(error)

    probe.send(ref, AwaitPersist(Appended("a")))

    assert await probe.receive() == Failed(error, Appended("a"), 1)
    assert await probe.receive() == ("awaited", error)


@pytest.mark.parametrize("after_storing", [False, True], ids=["not-stored", "stored"])
async def test_a_backoff_supervisor_restarts_the_actor_and_recovery_shows_what_was_stored(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal, after_storing: bool
) -> None:
    options = BackoffOptions(min_backoff=0.01, max_backoff=0.05, random_factor=0.0)
    supervisor = system.spawn(
        lambda: BackoffSupervisor(lambda: ItemLog("flaky", probe.ref), "log", options)
    )
    await probe.expect_message(Recovered((), 0))
    probe.send(supervisor, Append("a"))
    await probe.expect_message(Stored("a", 1))
    error = JournalError("journal unreachable")
    journal.fail_next_writes(error, after_storing=after_storing)

    probe.send(supervisor, Append("b"))
    assert await probe.receive() == Failed(error, Appended("b"), 2)

    # the journal works again: the restarted actor recovers whatever the failed write left
    expected = ("a", "b") if after_storing else ("a",)
    recovered = await probe.fish_for_message(lambda message: isinstance(message, Recovered))
    assert recovered == Recovered(expected, len(expected))
    probe.send(supervisor, Append("c"))
    await probe.expect_message(Stored("c", len(expected) + 1))
    assert [event.item for _, event in await stored_events(journal, "flaky")] == [
        *expected,
        "c",
    ]


@pytest.mark.parametrize(
    ("event", "message"),
    [(Unregistered("bad"), UNREGISTERED), (Holder(object()), UNENCODABLE)],
    ids=["unregistered-type", "unencodable-field"],
)
async def test_a_rejected_event_skips_its_handler_calls_on_persist_rejected_and_the_actor_goes_on(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal, event: Any, message: str
) -> None:
    ref = system.spawn(lambda: MixedLog("rejecting", probe.ref))
    await probe.expect_message_type(Recovered)

    probe.send(ref, PersistThese((event,)))
    rejected = await probe.expect_message_type(Rejected)
    probe.send(ref, Append("good"))

    await probe.expect_message(Stored("good", 2))  # no Stored for the rejected event came first
    assert rejected.sequence_nr == 1
    assert type(rejected.cause) is SerializationError
    assert str(rejected.cause) == message
    assert await stored_events(journal, "rejecting") == [(2, Appended("good"))]


async def test_the_other_writes_of_a_batch_holding_a_rejected_event_are_stored(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: MixedLog("batch", probe.ref))
    await probe.expect_message_type(Recovered)

    probe.send(ref, PersistThese((Appended("a"), Unregistered("b"), Appended("c"))))

    assert await probe.receive() == Stored("a", 1)
    rejected = await probe.receive()
    assert isinstance(rejected, Rejected)
    assert (rejected.item, rejected.sequence_nr) == ("b", 2)
    assert await probe.receive() == Stored("c", 3)
    assert journal.written_sequence_nrs() == [[1, 3]]
    await system.stop(ref)

    _, recovered = await start_log(system, probe, "batch")
    assert recovered == Recovered(("a", "c"), 3)


async def test_awaiting_a_rejected_persist_raises_event_rejected_error_naming_id_and_number(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: MixedLog("client-7", probe.ref))
    await probe.expect_message_type(Recovered)
    probe.send(ref, Append("a"))
    await probe.expect_message(Stored("a", 1))

    probe.send(ref, AwaitPersist(Unregistered("b")))

    await probe.expect_message_type(Rejected)
    tag, error = await probe.receive()
    assert tag == "awaited"
    assert type(error) is EventRejectedError
    assert str(error) == f"Rejected event, persistence_id='client-7', sequence_nr=2: {UNREGISTERED}"
    assert (error.persistence_id, error.sequence_nr) == ("client-7", 2)
    assert type(error.cause) is SerializationError
    probe.send(ref, Append("c"))
    await probe.expect_message(Stored("c", 3))


@dataclass(frozen=True)
class AppendAsync:
    item: str


class AsyncLog(ItemLog):
    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, AppendAsync):
            self.persist_async(Appended(command.item), self.stored)
            return None
        return super().receive_command(command)


async def test_outcomes_stay_with_their_writes_when_the_journal_answers_out_of_order(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: AsyncLog("reordered", probe.ref))
    await probe.expect_message_type(Recovered)
    probe.watch(ref)
    journal.hold_writes()
    error = JournalError("first write lost")
    journal.fail_next_writes(error)
    probe.send(ref, AppendAsync("a"))
    await journal.wait_for_write_calls(1)
    probe.send(ref, AppendAsync("b"))
    await journal.wait_for_write_calls(2)

    journal.release_write_call(1)  # b is stored and answered first...
    await journal.wait_for_completed_calls(1)
    await probe.expect_no_message(0.05)  # ...but its handler waits for a's outcome
    journal.release_write_call(0)

    assert await probe.receive() == Failed(error, Appended("a"), 1)
    await probe.expect_terminated(ref)  # b's handler never ran: the actor stopped first
    assert await stored_events(journal, "reordered") == [(2, Appended("b"))]


async def test_when_several_writes_in_flight_fail_the_actor_stops_once_at_the_first(
    system: ActorSystem,
    probe: TestProbe,
    journal: ControlledJournal,
    logs: list[MutableMapping[str, Any]],
) -> None:
    ref = system.spawn(lambda: AsyncLog("outage", probe.ref))
    await probe.expect_message_type(Recovered)
    probe.watch(ref)
    journal.hold_writes()
    error = JournalError("journal down")
    journal.fail_next_writes(error, count=2)
    probe.send(ref, AppendAsync("a"))
    await journal.wait_for_write_calls(1)
    probe.send(ref, AppendAsync("b"))
    await journal.wait_for_write_calls(2)

    journal.release_writes()

    assert await probe.receive() == Failed(error, Appended("a"), 1)
    await probe.expect_terminated(ref)
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == ["persist_failed"]


class Boom(Exception):
    pass


class RaisingHandlerLog(ItemLog):
    """A persist handler that raises once the event is stored."""

    def stored(self, event: Appended) -> None:
        raise Boom(f"handler failed on {event.item}")


async def test_an_ask_whose_persist_handler_raises_gets_the_error_and_the_actor_restarts(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: RaisingHandlerLog("raising-handler", probe.ref))
    assert await probe.receive() == Recovered((), 0)

    with pytest.raises(Boom, match="handler failed on a"):
        await ref.ask(Append("a"), timeout=3)
    # The supervisor restarted it, and replay includes the stored event.
    assert await probe.receive() == Replayed("a", 1, system.dead_letters)
    assert await probe.receive() == Recovered(("a",), 1)


@dataclass(frozen=True)
class Restarting:
    reason: str
    message: Any


class RestartReportingHandlerLog(RaisingHandlerLog):
    def pre_restart(self, reason: Exception, message: Any) -> None:
        self.observer.tell(Restarting(str(reason), message))
        super().pre_restart(reason, message)


async def test_a_persist_handler_that_raises_fails_the_actor_for_the_command_that_persisted(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: RestartReportingHandlerLog("raising-for-command", probe.ref))
    assert await probe.receive() == Recovered((), 0)

    probe.send(ref, Append("a"))

    # the supervisor sees the command whose handler raised, as if it had raised in receive
    assert await probe.receive() == Restarting("handler failed on a", Append("a"))
    assert await probe.receive() == Replayed("a", 1, system.dead_letters)


class Interrupt(BaseException):
    """Not an error to supervise (like a cancellation): it stops the actor it escapes from."""


class InterruptingHandlerLog(ItemLog):
    def stored(self, event: Appended) -> None:
        raise Interrupt(f"interrupted on {event.item}")


async def test_a_handler_interrupted_by_a_base_exception_leaves_the_other_actors_writes_answered(
    system: ActorSystem, probe: TestProbe
) -> None:
    interrupting = system.spawn(lambda: InterruptingHandlerLog("interrupting", probe.ref))
    assert await probe.receive() == Recovered((), 0)
    other = system.spawn(lambda: ItemLog("other", probe.ref))
    assert await probe.receive() == Recovered((), 0)
    probe.watch(interrupting)

    probe.send(interrupting, Append("a"))  # both in one journal write
    probe.send(other, Append("b"))

    assert await probe.receive() == Stored("b", 1)
    await probe.expect_terminated(interrupting)
