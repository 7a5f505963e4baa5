"""The internal stash: overflow policies, and commands it holds surviving a restart."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pytest

from actorsys import ActorRef, ActorSystem, DeadLetter
from actorsys.testing import TestProbe
from persistence import StashOverflowError
from tests.persistence._actors import Append, Appended, Get, ItemLog, Recovered, Stored
from tests.persistence._journals import ControlledJournal


@dataclass(frozen=True)
class Restarted:
    reason: Exception


class RestartReporting(ItemLog):
    def post_restart(self, reason: Exception) -> None:
        self.observer.tell(Restarted(reason))


def bounded(policy: Literal["fail", "drop"]) -> type[ItemLog]:
    class Bounded(RestartReporting):
        stash_capacity: ClassVar[int] = 2
        stash_overflow: ClassVar[Literal["fail", "drop"]] = policy

    return Bounded


async def fill_stash(probe: TestProbe, ref: ActorRef, journal: ControlledJournal) -> None:
    """Append a (its write held), then b and c wait in the stash, then d overflows it."""
    journal.hold_writes()
    probe.send(ref, Append("a"))
    await journal.wait_for_write_calls(1)
    for item in "bcd":
        probe.send(ref, Append(item))


async def test_an_overflowing_internal_stash_fails_the_actor_with_policy_fail(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    actor_class = bounded("fail")
    ref = system.spawn(lambda: actor_class("bounded", probe.ref))
    await probe.expect_message_type(Recovered)

    await fill_stash(probe, ref, journal)

    restarted = await probe.expect_message_type(Restarted)
    assert type(restarted.reason) is StashOverflowError
    assert str(restarted.reason) == (
        "internal stash of persistence_id='bounded' is full (2 commands waiting for persist "
        "handlers); raise stash_capacity or send fewer commands at once"
    )
    journal.release_writes()
    # the restarted actor recovers the held write, then handles the stashed commands in order;
    # the overflowing command was the failed message and is dropped
    assert await probe.fish_for_message(lambda m: isinstance(m, Recovered)) == Recovered(("a",), 1)
    assert [await probe.receive() for _ in range(2)] == [Stored("b", 2), Stored("c", 3)]
    probe.send(ref, Get())
    await probe.expect_message(("a", "b", "c"))


async def test_an_overflowing_internal_stash_drops_to_dead_letters_with_policy_drop(
    system: ActorSystem,
    probe: TestProbe,
    journal: ControlledJournal,
    dead_letters: list[DeadLetter],
) -> None:
    actor_class = bounded("drop")
    ref = system.spawn(lambda: actor_class("dropping", probe.ref))
    await probe.expect_message_type(Recovered)

    await fill_stash(probe, ref, journal)
    journal.release_writes()

    assert [await probe.receive() for _ in range(3)] == [
        Stored("a", 1),
        Stored("b", 2),
        Stored("c", 3),
    ]
    assert [(d.message, d.sender, d.recipient) for d in dead_letters] == [
        (Append("d"), probe.ref, ref)
    ]


@dataclass(frozen=True)
class Explode:
    item: str


@dataclass(frozen=True)
class Crash:
    pass


class Exploding(RestartReporting):
    """``Explode`` persists an event whose handler raises; ``Crash`` raises in the command."""

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, Explode):
            self.persist(Appended(command.item), self.explode)
            return None
        if isinstance(command, Crash):
            raise RuntimeError("command handler crashed")
        return super().receive_command(command)

    def explode(self, event: Appended) -> None:
        raise RuntimeError(f"handler failed on {event.item}")


async def test_a_restart_after_a_failing_handler_replays_and_then_handles_the_stashed_commands(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: Exploding("exploding", probe.ref))
    await probe.expect_message_type(Recovered)
    journal.hold_writes()

    probe.send(ref, Explode("boom"))
    await journal.wait_for_write_calls(1)
    probe.send(ref, Append("b"))
    probe.send(ref, Get())
    probe.send(ref, Append("c"))
    journal.release_writes()

    restarted = await probe.expect_message_type(Restarted)
    assert str(restarted.reason) == "handler failed on boom"
    assert await probe.fish_for_message(lambda m: isinstance(m, Recovered)) == Recovered(
        ("boom",), 1
    )
    assert [await probe.receive() for _ in range(3)] == [
        Stored("b", 2),
        ("boom", "b"),
        Stored("c", 3),
    ]


async def test_a_restart_after_a_failing_command_replays_what_was_stored(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Exploding("crashing", probe.ref))
    await probe.expect_message_type(Recovered)
    for item in "ab":
        probe.send(ref, Append(item))
        await probe.expect_message_type(Stored)

    probe.send(ref, Crash())
    probe.send(ref, Get())

    restarted = await probe.expect_message_type(Restarted)
    assert str(restarted.reason) == "command handler crashed"
    assert await probe.fish_for_message(lambda m: isinstance(m, Recovered)) == Recovered(
        ("a", "b"), 2
    )
    await probe.expect_message(("a", "b"))


@dataclass(frozen=True)
class ExplodeAwaiting:
    catch: bool


class AwaitingExplosion(Exploding):
    """Awaits a persist whose handler raises, after an earlier ``persist_async`` of ``x``."""

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, ExplodeAwaiting):
            return self.explode_awaiting(command.catch)
        if command == "async":
            self.persist_async(Appended("x"), self.stored)
            return None
        return super().receive_command(command)

    async def explode_awaiting(self, catch: bool) -> None:
        try:
            await self.persist(Appended("a"), self.explode)
        except RuntimeError as error:
            self.observer.tell(("awaited", str(error)))
            if not catch:
                raise


@pytest.mark.parametrize("catch", [False, True], ids=["raised", "caught"])
async def test_a_handler_raising_under_an_awaited_persist_fails_the_actor_even_if_caught(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal, catch: bool
) -> None:
    ref = system.spawn(lambda: AwaitingExplosion("awaiting", probe.ref))
    await probe.expect_message_type(Recovered)
    journal.hold_writes()
    probe.send(ref, "async")  # an earlier write in flight: its handler still runs first
    await journal.wait_for_write_calls(1)
    probe.send(ref, ExplodeAwaiting(catch))
    await journal.wait_for_write_calls(2)
    journal.release_writes()

    assert await probe.receive() == Stored("x", 1)
    assert await probe.receive() == ("awaited", "handler failed on a")
    restarted = await probe.expect_message_type(Restarted)
    assert str(restarted.reason) == "handler failed on a"
    recovered = await probe.fish_for_message(lambda m: isinstance(m, Recovered))
    assert recovered == Recovered(("x", "a"), 2)
