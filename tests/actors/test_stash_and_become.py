"""Stash and become: stashing twice is an error, unstash_all prepends in original order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actorsys import (
    Actor,
    ActorDeadError,
    ActorSystem,
    ActorSystemError,
    DeadLetter,
    StashError,
)
from actorsys.testing import TestProbe


class Gatekeeper(Actor):
    """Stashes everything until ``"open"``, then unstashes and reports messages to ``probe``."""

    def __init__(self, probe: TestProbe) -> None:
        super().__init__()
        self.probe = probe

    def receive(self, message: Any) -> None:
        if message == "open":
            self.context.become(self.opened)
            self.context.unstash_all()
        else:
            self.context.stash()

    def opened(self, message: Any) -> None:
        self.probe.ref.tell(message)


async def test_unstash_all_puts_stashed_messages_first_in_their_original_order(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Gatekeeper(probe))
    for message in ("a", "b", "c", "open", "d", "e"):
        ref.tell(message)
    for expected in ("a", "b", "c", "d", "e"):
        await probe.expect_message(expected)


async def test_unstash_all_prepends_before_messages_that_arrived_while_stashing(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Gatekeeper(probe))
    ref.tell("a")
    ref.tell("b")
    await asyncio.sleep(0)  # a and b are stashed
    ref.tell("open")
    ref.tell("c")
    await probe.expect_message("a")
    await probe.expect_message("b")
    await probe.expect_message("c")


async def test_stashing_the_same_message_twice_raises_stash_error(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Greedy(Actor):
        def receive(self, message: Any) -> None:
            self.context.stash()
            try:
                self.context.stash()
            except StashError as error:
                probe.ref.tell(str(error))

    ref = system.spawn(Greedy, "greedy")
    ref.tell("twice")
    await probe.expect_message(
        "cannot stash 'twice' twice: /user/greedy already stashed this message"
    )


async def test_a_message_can_be_stashed_again_after_it_was_unstashed(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Juggler(Actor):
        def __init__(self) -> None:
            super().__init__()
            self.rounds = 0

        def receive(self, message: Any) -> None:
            if message == "again":
                self.context.unstash_all()
                return
            self.rounds += 1
            probe.ref.tell((message, self.rounds))
            if self.rounds < 3:
                self.context.stash()
                self.context.self.tell("again")

    ref = system.spawn(Juggler)
    ref.tell("ball")
    for n in (1, 2, 3):
        await probe.expect_message(("ball", n))


async def test_stash_outside_message_handling_raises_stash_error(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Early(Actor):
        def pre_start(self) -> None:
            try:
                self.context.stash()
            except StashError as error:
                probe.ref.tell(str(error))

    system.spawn(Early, "early")
    await probe.expect_message("cannot stash: /user/early is not handling a message")


async def test_stashed_messages_go_to_dead_letters_and_stashed_asks_fail_when_the_actor_stops(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    ref = system.spawn(lambda: Gatekeeper(probe), "keeper")
    ref.tell("told", probe.ref)
    asked = ref.ask("asked")
    await asyncio.sleep(0)
    await system.stop(ref)
    with pytest.raises(ActorDeadError, match=r"^actor /user/keeper has stopped$"):
        await asked
    assert dead_letters == [DeadLetter("told", probe.ref, ref)]


async def test_become_replaces_the_behavior_and_unbecome_returns_to_the_previous_one(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Layers(Actor):
        def receive(self, message: Any) -> None:
            probe.ref.tell(("base", message))
            if message == "push":
                self.context.become(self.first, discard_old=False)

        def first(self, message: Any) -> None:
            probe.ref.tell(("first", message))
            if message == "push":
                self.context.become(self.second, discard_old=False)
            elif message == "replace":
                self.context.become(self.replacement)
            elif message == "pop":
                self.context.unbecome()

        def second(self, message: Any) -> None:
            probe.ref.tell(("second", message))
            if message == "pop":
                self.context.unbecome()

        async def replacement(self, message: Any) -> None:
            await asyncio.sleep(0)
            probe.ref.tell(("replacement", message))
            if message == "pop":
                self.context.unbecome()

    ref = system.spawn(Layers)
    script = ["push", "push", "x", "pop", "replace", "y", "pop", "z", "pop", "pop", "w"]
    for message in script:
        ref.tell(message)
    assert [await probe.receive() for _ in script] == [
        ("base", "push"),
        ("first", "push"),
        ("second", "x"),
        ("second", "pop"),
        ("first", "replace"),
        ("replacement", "y"),
        ("replacement", "pop"),
        ("base", "z"),  # replace discarded "first": one pop goes back to receive
        ("base", "pop"),
        ("base", "pop"),  # never below receive
        ("base", "w"),
    ]


async def test_become_before_the_actor_runs_raises_actor_system_error(
    system: ActorSystem, probe: TestProbe
) -> None:
    class TooEarly(Actor):
        def __init__(self) -> None:
            super().__init__()
            try:
                self.context.become(self.receive)
            except ActorSystemError as error:
                probe.ref.tell(str(error))

    system.spawn(TooEarly, "early")
    await probe.expect_message("cannot become: /user/early is not running")
