"""Bounded mailboxes (drop to dead letters, or fail the tell) and mailbox statistics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actorsys import (
    Actor,
    ActorSystem,
    BoundedMailbox,
    DeadLetter,
    MailboxFullError,
    MailboxStats,
    Overflow,
    UnboundedMailbox,
)
from actorsys.testing import ManualClock, TestProbe, settle
from tests.actors._helpers import expect_quiet


class Gated(Actor):
    """Blocks on ``gate`` while handling its first message; reports messages to ``probe``."""

    def __init__(self, probe: TestProbe, gate: asyncio.Event) -> None:
        super().__init__()
        self.probe = probe
        self.gate = gate

    async def receive(self, message: Any) -> None:
        self.probe.ref.tell(message)
        await self.gate.wait()


async def test_a_full_bounded_mailbox_with_drop_sends_new_messages_to_dead_letters(
    system: ActorSystem, clock: ManualClock, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    gate = asyncio.Event()
    ref = system.spawn(lambda: Gated(probe, gate), "small", mailbox=BoundedMailbox(2))
    ref.tell("first")
    await probe.expect_message("first")
    for message in ("a", "b", "c", "d"):
        ref.tell(message, probe.ref)  # returns normally also when the message is dropped
    assert ref.mailbox_stats() == MailboxStats(queued=2, processed=1)
    assert dead_letters == [DeadLetter("c", probe.ref, ref), DeadLetter("d", probe.ref, ref)]
    gate.set()
    await probe.expect_message("a")
    await probe.expect_message("b")
    await expect_quiet(probe, clock)


async def test_a_full_bounded_mailbox_with_fail_raises_mailbox_full_error_from_tell(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    gate = asyncio.Event()
    ref = system.spawn(
        lambda: Gated(probe, gate), "strict", mailbox=BoundedMailbox(2, Overflow.FAIL)
    )
    ref.tell("first")
    await probe.expect_message("first")
    ref.tell("a")
    ref.tell("b")
    with pytest.raises(MailboxFullError) as caught:
        ref.tell("c")
    assert str(caught.value) == "mailbox of /user/strict is full (capacity 2)"
    assert (caught.value.path, caught.value.capacity) == ("/user/strict", 2)
    assert dead_letters == []
    gate.set()
    await probe.expect_message("a")
    await probe.expect_message("b")
    ref.tell("room again")
    await probe.expect_message("room again")


async def test_a_child_can_be_spawned_with_a_bounded_mailbox(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    gate = asyncio.Event()

    class Parent(Actor):
        def receive(self, message: Any) -> None:
            child = self.context.spawn(
                lambda: Gated(probe, gate), "child", mailbox=BoundedMailbox(1)
            )
            self.context.sender.tell(child)

    child = await system.spawn(Parent).ask("spawn")
    child.tell("busy")
    await probe.expect_message("busy")
    child.tell("kept")
    child.tell("dropped")
    assert [d.message for d in dead_letters] == ["dropped"]
    gate.set()


@pytest.mark.parametrize("capacity", [0, -3])
def test_a_bounded_mailbox_needs_a_positive_capacity(capacity: int) -> None:
    with pytest.raises(
        ValueError, match=rf"^BoundedMailbox capacity must be positive, got {capacity}$"
    ):
        BoundedMailbox(capacity)


async def test_mailbox_stats_count_queued_and_processed_messages(
    system: ActorSystem, probe: TestProbe
) -> None:
    gate = asyncio.Event()
    ref = system.spawn(lambda: Gated(probe, gate), mailbox=UnboundedMailbox())
    assert ref.mailbox_stats() == MailboxStats(queued=0, processed=0)
    for n in range(5):
        ref.tell(n)
    assert ref.mailbox_stats() == MailboxStats(queued=5, processed=0)
    await probe.expect_message(0)
    assert ref.mailbox_stats() == MailboxStats(queued=4, processed=1)
    gate.set()
    for n in range(1, 5):
        await probe.expect_message(n)
    await settle()
    assert ref.mailbox_stats() == MailboxStats(queued=0, processed=5)
