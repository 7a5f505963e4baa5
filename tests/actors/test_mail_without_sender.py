"""Mail told without a sender: what the receiver, stash, dead letters and libraries see.

A mailbox keeps such a message as it is, without wrapping it with its sender; these rules hold
whatever the message is, a tuple included.
"""

from __future__ import annotations

import asyncio
from typing import Any

from actorsys import (
    Actor,
    ActorRef,
    ActorSystem,
    BoundedMailbox,
    DeadLetter,
    PoisonPill,
    runtime,
)
from actorsys.testing import TestProbe, settle


class Reporter(Actor):
    """Reports each message with its sender (``None`` for dead letters) to ``probe``."""

    def __init__(self, probe: ActorRef) -> None:
        super().__init__()
        self.probe = probe

    def receive(self, message: Any) -> None:
        sender = self.context.sender
        dead = self.context.system.dead_letters
        self.probe.tell((message, None if sender == dead else sender))


async def test_a_tuple_told_without_a_sender_arrives_whole_with_no_sender(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Reporter(probe.ref))
    ref.tell(("deposit", 5))
    ref.tell(("deposit", 5, probe.ref))
    ref.tell(())
    ref.tell(("withdraw", 1), probe.ref)
    await probe.expect_message((("deposit", 5), None))
    await probe.expect_message((("deposit", 5, probe.ref), None))
    await probe.expect_message(((), None))
    await probe.expect_message((("withdraw", 1), probe.ref))


async def test_a_tuple_told_to_a_stopped_actor_is_a_dead_letter_without_a_sender(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    ref = system.spawn(lambda: Reporter(probe.ref))
    await system.stop(ref)
    ref.tell(("late", probe.ref))
    ref.tell("later", probe.ref)
    assert dead_letters == [
        DeadLetter(("late", probe.ref), None, ref),
        DeadLetter("later", probe.ref, ref),
    ]


async def test_a_full_bounded_mailbox_drops_a_tuple_as_a_dead_letter_without_a_sender(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    gate = asyncio.Event()

    class Gated(Actor):
        async def receive(self, message: Any) -> None:
            probe.ref.tell(message)
            await gate.wait()

    ref = system.spawn(Gated, mailbox=BoundedMailbox(1))
    ref.tell("first")
    await probe.expect_message("first")
    ref.tell(("kept", 1))
    ref.tell(("dropped", 2))
    assert dead_letters == [DeadLetter(("dropped", 2), None, ref)]
    gate.set()
    await probe.expect_message(("kept", 1))


async def test_one_message_object_told_twice_is_stashed_once_per_delivery(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Hoarder(Actor):
        def receive(self, message: Any) -> None:
            if message == "open":
                self.context.become(self.opened)
                self.context.unstash_all()
            else:
                self.context.stash()

        def opened(self, message: Any) -> None:
            probe.ref.tell(message)

    ref = system.spawn(Hoarder)
    token = ("token",)
    for message in ("same", "same", token, token, "open"):
        ref.tell(message)
    for expected in ("same", "same", token, token):
        await probe.expect_message(expected)


async def test_the_current_envelope_is_one_object_per_delivery_even_of_the_same_message(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Inspector(Actor):
        def __init__(self) -> None:
            super().__init__()
            self.previous: runtime.Envelope | None = None

        def receive(self, message: Any) -> None:
            envelope = runtime.current_envelope(self.context)
            again = runtime.current_envelope(self.context)
            probe.ref.tell((envelope, again is envelope, envelope is self.previous))
            self.previous = envelope

    ref = system.spawn(Inspector)
    ref.tell("same")
    ref.tell("same")
    await probe.expect_message((("same", None), True, False))
    await probe.expect_message((("same", None), True, False))


async def test_a_poison_pill_told_with_a_sender_stops_the_actor(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Reporter(probe.ref))
    probe.watch(ref)
    ref.tell(PoisonPill, probe.ref)
    ref.tell("never handled")
    await probe.expect_terminated(ref)


async def test_unhandled_mail_told_without_a_sender_is_a_dead_letter_without_a_sender(
    system: ActorSystem, dead_letters: list[DeadLetter]
) -> None:
    class Nothing(Actor):
        pass

    ref = system.spawn(Nothing)
    ref.tell("huh?")
    ref.tell(("what", 1))
    await settle()  # handled (by the default receive), not dropped when it stops
    assert dead_letters == [DeadLetter("huh?", None, ref), DeadLetter(("what", 1), None, ref)]
