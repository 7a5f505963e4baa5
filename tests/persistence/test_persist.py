"""Persist, then apply: handlers after the journal confirmed, commands held back meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from actorsys import ActorRef, ActorSystem
from actorsys.testing import TestProbe, settle
from tests.persistence._actors import (
    Append,
    AppendAll,
    Appended,
    Get,
    ItemLog,
    Recovered,
    Stored,
    start_log,
    stored_events,
)
from tests.persistence._journals import ControlledJournal


@dataclass(frozen=True)
class Handled:
    """A handler ran; ``completed_writes`` is how many journal writes had been answered then."""

    item: str
    sequence_nr: int
    completed_writes: int


class WatchedLog(ItemLog):
    """An item log whose handlers report how many writes the journal had answered."""

    def __init__(self, persistence_id: str, observer: ActorRef, journal: ControlledJournal) -> None:
        super().__init__(persistence_id, observer)
        self.journal = journal

    def stored(self, event: Appended) -> None:
        self.observer.tell(Handled(event.item, self.last_sequence_nr, self.journal.completed_calls))
        super().stored(event)


async def test_the_handler_runs_only_after_the_journal_confirmed_the_write(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: WatchedLog("confirmed", probe.ref, journal))
    await probe.expect_message_type(Recovered)
    journal.hold_writes()

    probe.send(ref, Append("a"))
    await journal.wait_for_write_calls(1)
    await probe.expect_no_message(0.05)  # the write is held: no handler ran
    journal.release_writes()

    assert await probe.expect_message_type(Handled) == Handled("a", 1, completed_writes=1)
    await probe.expect_message(Stored("a", 1))


async def test_commands_arriving_while_handlers_are_pending_wait_and_then_run_in_order(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref, _ = await start_log(system, probe, "held")
    journal.hold_writes()

    for command in (Append("a"), Get(), Append("b"), Get(), Append("c")):
        probe.send(ref, command)
    await journal.wait_for_write_calls(1)
    await probe.expect_no_message(0.05)  # Get is held back behind the pending handler
    journal.release_writes()

    assert [await probe.receive() for _ in range(5)] == [
        Stored("a", 1),
        ("a",),
        Stored("b", 2),
        ("a", "b"),
        Stored("c", 3),
    ]


@dataclass(frozen=True)
class PersistEach:
    items: tuple[str, ...]


class EachLog(ItemLog):
    """Persists every item of ``PersistEach`` with its own ``persist`` call, in one command."""

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, PersistEach):
            for item in command.items:
                self.persist(Appended(item), self.stored)
            return None
        return super().receive_command(command)


async def test_several_persists_in_one_command_are_one_journal_write_with_handlers_in_call_order(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: EachLog("each", probe.ref))
    await probe.expect_message_type(Recovered)

    probe.send(ref, PersistEach(("x", "y", "z")))

    assert [await probe.receive() for _ in range(3)] == [
        Stored("x", 1),
        Stored("y", 2),
        Stored("z", 3),
    ]
    assert len(journal.write_calls) == 1
    assert [len(write.records) for write in journal.write_calls[0]] == [1, 1, 1]
    assert journal.written_sequence_nrs() == [[1, 2, 3]]


async def test_persist_all_is_one_atomic_write_and_its_handlers_run_in_order(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref, _ = await start_log(system, probe, "all")

    probe.send(ref, AppendAll(["a", "b", "c"]))

    assert [await probe.receive() for _ in range(3)] == [
        Stored("a", 1),
        Stored("b", 2),
        Stored("c", 3),
    ]
    [[atomic_write]] = journal.write_calls
    assert [record.sequence_nr for record in atomic_write.records] == [1, 2, 3]
    assert await stored_events(journal, "all") == [
        (1, Appended("a")),
        (2, Appended("b")),
        (3, Appended("c")),
    ]


@dataclass(frozen=True)
class AppendAsync:
    item: str


@dataclass(frozen=True)
class Received:
    item: str


class AsyncLog(ItemLog):
    """Persists ``AppendAsync`` with ``persist_async``, telling the observer it got the command."""

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, AppendAsync):
            self.observer.tell(Received(command.item))
            self.persist_async(Appended(command.item), self.stored)
            return None
        return super().receive_command(command)


async def test_persist_async_does_not_hold_back_later_commands_but_handlers_run_in_call_order(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: AsyncLog("async", probe.ref))
    await probe.expect_message_type(Recovered)
    journal.hold_writes()

    probe.send(ref, AppendAsync("a"))
    await journal.wait_for_write_calls(1)
    probe.send(ref, AppendAsync("b"))
    probe.send(ref, Get())

    # with the first write still held, later commands are handled at once
    assert [await probe.receive() for _ in range(3)] == [Received("a"), Received("b"), ()]
    journal.release_writes()
    assert [await probe.receive() for _ in range(2)] == [Stored("a", 1), Stored("b", 2)]
    probe.send(ref, Get())
    await probe.expect_message(("a", "b"))


@dataclass(frozen=True)
class PersistAndDefer:
    pass


@dataclass(frozen=True)
class DeferOnly:
    pass


@dataclass(frozen=True)
class Deferred:
    what: str
    last_sequence_nr: int


class DeferringLog(ItemLog):
    """``PersistAndDefer``: persist a, defer, persist b; ``DeferOnly``: defer with nothing
    pending."""

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, PersistAndDefer):
            self.persist(Appended("a"), self.stored)
            self.defer("deferred", self.report)
            self.persist(Appended("b"), self.stored)
            return None
        if isinstance(command, DeferOnly):
            self.defer("at once", self.report)
            self.context.sender.tell("after defer", self.context.self)
            return None
        return super().receive_command(command)

    def report(self, what: str) -> None:
        self.context.sender.tell(Deferred(what, self.last_sequence_nr), self.context.self)


async def test_defer_runs_after_the_pending_handlers_and_persists_nothing(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: DeferringLog("deferring", probe.ref))
    await probe.expect_message_type(Recovered)

    probe.send(ref, PersistAndDefer())
    probe.send(ref, Get())

    assert [await probe.receive() for _ in range(4)] == [
        Stored("a", 1),
        Deferred("deferred", 1),
        Stored("b", 2),
        ("a", "b"),
    ]
    assert await stored_events(journal, "deferring") == [(1, Appended("a")), (2, Appended("b"))]


async def test_defer_with_no_pending_handler_runs_at_once(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: DeferringLog("deferring", probe.ref))
    await probe.expect_message_type(Recovered)

    probe.send(ref, DeferOnly())

    assert [await probe.receive() for _ in range(2)] == [Deferred("at once", 0), "after defer"]
    assert journal.write_calls == []


@dataclass(frozen=True)
class AppendAwaiting:
    items: tuple[str, ...]


class AwaitingLog(ItemLog):
    """Handles ``AppendAwaiting`` in an async handler awaiting each persist, then replies."""

    async def handle(self, command: AppendAwaiting) -> None:
        sender = self.context.sender
        for item in command.items:
            event = await self.persist(Appended(item), self.apply)
            assert self.items[-1] == event.item  # the handler ran before the await returned
        stored = await self.persist_all([Appended(f"{command.items[-1]}!")], self.apply)
        sender.tell(("done", tuple(self.items), self.last_sequence_nr, stored), self.context.self)

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, AppendAwaiting):
            return self.handle(command)
        if isinstance(command, AppendAsync):
            self.persist_async(Appended(command.item), self.stored)
            return None
        return super().receive_command(command)

    def apply(self, event: Appended) -> None:
        self.items.append(event.item)


async def test_awaiting_persist_inside_an_async_command_handler_does_not_deadlock(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: AwaitingLog("awaiting", probe.ref))
    await probe.expect_message_type(Recovered)

    probe.send(ref, AppendAwaiting(("a", "b")))
    probe.send(ref, Get())

    assert await probe.receive() == ("done", ("a", "b", "b!"), 3, Appended("b!"))
    assert await probe.receive() == ("a", "b", "b!")
    assert len(journal.write_calls) == 3


async def test_awaiting_persist_while_an_earlier_persist_async_is_in_flight_does_not_deadlock(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: AwaitingLog("awaiting", probe.ref))
    await probe.expect_message_type(Recovered)
    journal.hold_writes()

    probe.send(ref, AppendAsync("early"))
    await journal.wait_for_write_calls(1)
    probe.send(ref, AppendAwaiting(("late",)))
    await journal.wait_for_write_calls(2)
    journal.release_writes()

    # the earlier handler still runs first, then the awaiting command finishes
    assert await probe.receive() == Stored("early", 1)
    assert await probe.receive() == ("done", ("early", "late", "late!"), 3, Appended("late!"))


async def test_an_ask_is_answered_by_the_persist_handler_of_the_asked_command(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref, _ = await start_log(system, probe, "asked")

    assert await ref.ask(Append("a"), timeout=3.0) == Stored("a", 1)
    assert await ref.ask(AppendAll(["b"]), timeout=3.0) == Stored("b", 2)


async def test_a_persist_handler_replies_to_the_sender_of_its_command(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref, _ = await start_log(system, probe, "senders")
    first, second = TestProbe(system, "first"), TestProbe(system, "second")
    journal.hold_writes()

    first.send(ref, Append("from-first"))
    second.send(ref, Append("from-second"))
    await journal.wait_for_write_calls(1)
    journal.release_writes()

    await first.expect_message(Stored("from-first", 1))
    await second.expect_message(Stored("from-second", 2))


@dataclass(frozen=True)
class AsyncThenDefer:
    item: str


class AsyncDeferringLog(AsyncLog):
    """``AsyncThenDefer``: persist_async, then defer_async; neither holds back commands."""

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, AsyncThenDefer):
            self.persist_async(Appended(command.item), self.stored)
            self.defer_async(f"after {command.item}", self.report)
            return None
        return super().receive_command(command)

    def report(self, what: str) -> None:
        self.context.sender.tell(what, self.context.self)


async def test_defer_async_runs_after_the_pending_handlers_without_holding_back_commands(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: AsyncDeferringLog("defer-async", probe.ref))
    await probe.expect_message_type(Recovered)
    journal.hold_writes()

    probe.send(ref, AsyncThenDefer("a"))
    await journal.wait_for_write_calls(1)
    probe.send(ref, Get())
    await probe.expect_message(())  # not held back
    journal.release_writes()

    assert [await probe.receive() for _ in range(2)] == [Stored("a", 1), "after a"]


class Becoming(ItemLog):
    """After ``"shout"``, handles commands with ``shouting``, which persists upper-case items."""

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if command == "shout":
            self.context.become(self.shouting)
            return None
        return super().receive_command(command)

    def shouting(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, Append):
            self.persist(Appended(command.item.upper()), self.stored)
            return None
        return super().receive_command(command)


async def test_become_swaps_the_command_handler_and_persisting_still_works(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Becoming("becoming", probe.ref))
    await probe.expect_message_type(Recovered)

    probe.send(ref, "shout")
    probe.send(ref, Append("a"))

    await probe.expect_message(Stored("A", 1), timeout=0.3)


@dataclass(frozen=True)
class WaitForGate:
    pass


@dataclass(frozen=True)
class Waited:
    items: tuple[str, ...]


class GatedLog(AsyncLog):
    """``WaitForGate`` awaits ``gate`` in an async handler, then reports the items it sees."""

    def __init__(self, persistence_id: str, observer: ActorRef) -> None:
        super().__init__(persistence_id, observer)
        self.gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, WaitForGate):
            return self.wait_for_gate()
        return super().receive_command(command)

    async def wait_for_gate(self) -> None:
        await self.gate
        self.observer.tell(Waited(tuple(self.items)))


async def test_a_journal_answer_for_an_actor_awaiting_another_command_waits_for_that_command(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    actors: list[GatedLog] = []
    ref = system.spawn(lambda: actors.append(GatedLog("gated", probe.ref)) or actors[-1])
    await probe.expect_message_type(Recovered)
    journal.hold_writes()
    probe.send(ref, AppendAsync("early"))
    await journal.wait_for_write_calls(1)
    assert await probe.receive() == Received("early")
    probe.send(ref, WaitForGate())

    journal.release_writes()
    await journal.wait_for_completed_calls(1)
    await settle()  # the answer reached the engine while the actor awaits the gate
    actors[0].gate.set_result(None)

    # one message at a time: the handler ran after the awaiting command, not inside its await
    assert await probe.receive() == Waited(())
    assert await probe.receive() == Stored("early", 1)


class StashingLog(ItemLog):
    """``"aside"`` is put aside with the actor's own stash until ``"release"`` unstashes it;
    other text commands are reported as handled."""

    def __init__(self, persistence_id: str, observer: ActorRef) -> None:
        super().__init__(persistence_id, observer)
        self.released = False

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if command == "aside" and not self.released:
            self.context.stash()
        elif command == "release":
            self.released = True
            self.observer.tell("released")
            self.context.unstash_all()
        elif isinstance(command, str):
            self.observer.tell(("handled", command))
        else:
            return super().receive_command(command)
        return None


async def test_commands_held_for_pending_handlers_and_the_actors_own_stash_keep_their_order(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: StashingLog("stashing", probe.ref))
    await probe.expect_message_type(Recovered)
    journal.hold_writes()
    probe.send(ref, Append("a"))
    await journal.wait_for_write_calls(1)
    for command in ("aside", "release", Append("b"), "after"):
        probe.send(ref, command)  # all held back: the handler of "a" is pending
    journal.release_writes()

    # Held commands run in arrival order. What the actor unstashes goes to the front of the
    # mailbox, and the next held command is put in front of it (as Akka's internal stash does):
    # "aside" is handled after the commands that were held back with it.
    assert [await probe.receive() for _ in range(5)] == [
        Stored("a", 1),
        "released",
        Stored("b", 2),
        ("handled", "after"),
        ("handled", "aside"),
    ]
