"""Keyed timers (single, periodic, replace, cancel) and the receive timeout, on a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from actorsys import Actor, ActorContext, ActorRef, ActorSystem, ReceiveTimeout
from actorsys.testing import ManualClock, TestProbe
from tests.actors._helpers import expect_quiet


class Timed(Actor):
    """Runs the commands it is sent against its context; reports everything else to ``probe``.

    A command is a callable taking the context; its result (if not None) goes to ``probe``.
    """

    def __init__(self, probe: ActorRef) -> None:
        super().__init__()
        self.probe = probe

    async def receive(self, message: Any) -> None:
        if callable(message):
            result = message(self.context)
            if asyncio.iscoroutine(result):
                result = await result
            if result is not None:
                self.probe.tell(result)
        else:
            self.probe.tell(message)


Command = Callable[[ActorContext], Any]


async def test_a_single_timer_delivers_its_message_once_when_its_delay_has_passed(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))

    def start(context: ActorContext) -> bool:
        context.timers.start_single_timer("once", "tick", 5.0)
        return context.timers.is_timer_active("once")

    ref.tell(start)
    await probe.expect_message(True)
    await expect_quiet(probe, clock, 4.75)
    await clock.advance(0.25)
    await probe.expect_message("tick")
    ref.tell(lambda context: ("active", context.timers.is_timer_active("once")))
    await probe.expect_message(("active", False))
    await expect_quiet(probe, clock, 60.0)


async def test_a_periodic_timer_repeats_every_interval_until_cancelled(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))
    ref.tell(lambda context: context.timers.start_periodic_timer("beat", "beat", 2.0))
    await expect_quiet(probe, clock, 1.0)
    await clock.advance(5.0)  # t = 6: beats at 2, 4 and 6
    for _ in range(3):
        await probe.expect_message("beat")
    await expect_quiet(probe, clock, 1.0)
    ref.tell(lambda context: ("cancelled", context.timers.cancel("beat")))
    await probe.expect_message(("cancelled", None))
    await expect_quiet(probe, clock, 60.0)


async def test_a_timer_started_with_an_existing_key_replaces_the_old_one(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))

    def restart(context: ActorContext) -> None:
        context.timers.start_single_timer("key", "old", 1.0)
        context.timers.start_single_timer("key", "new", 2.0)

    ref.tell(restart)
    await expect_quiet(probe, clock, 1.5)  # the old one would have fired by now
    await clock.advance(0.5)
    await probe.expect_message("new")
    await expect_quiet(probe, clock, 60.0)


async def test_the_replaced_timers_message_is_never_delivered_even_if_already_queued(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))
    gate = asyncio.Event()

    async def replace_while_queued(context: ActorContext) -> int:
        context.timers.start_single_timer("key", "old", 0)
        context.timers.start_periodic_timer("periodic", "old-periodic", 1.0)
        context.self.tell("armed")  # reported once this handler is done, before the timers
        await gate.wait()  # meanwhile the test fires both: their messages wait in the mailbox
        queued = context.self.mailbox_stats().queued
        context.timers.start_single_timer("key", "new", 0)
        context.timers.start_single_timer("periodic", "new-periodic", 5.0)
        return queued

    ref.tell(replace_while_queued)
    await clock.advance(1.0)
    gate.set()
    assert await probe.receive() == 3  # "armed" and the two timer messages
    await probe.expect_message("armed")
    await clock.advance(0)
    await probe.expect_message("new")
    await expect_quiet(probe, clock, 4.75)
    await clock.advance(0.25)
    await probe.expect_message("new-periodic")
    await expect_quiet(probe, clock, 60.0)


async def test_a_cancelled_timer_is_not_delivered_even_if_already_queued(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))
    gate = asyncio.Event()

    async def cancel_while_queued(context: ActorContext) -> int:
        context.timers.start_single_timer("key", "cancelled", 0)
        await gate.wait()  # meanwhile the test fires the timer: its message waits
        queued = context.self.mailbox_stats().queued
        context.timers.cancel("key")
        context.timers.cancel("no such key")  # harmless
        return queued

    ref.tell(cancel_while_queued)
    await clock.advance(0)
    gate.set()
    await probe.expect_message(1)
    ref.tell("marker")
    await probe.expect_message("marker")  # the queued "cancelled" was dropped before it
    await expect_quiet(probe, clock, 60.0)


async def test_cancel_all_cancels_every_timer(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))
    gate = asyncio.Event()

    async def start_then_cancel_all(context: ActorContext) -> tuple[bool, bool]:
        context.timers.start_single_timer("a", "a", 0)
        context.timers.start_periodic_timer("b", "b", 1.0)
        context.timers.start_single_timer("c", "c", 10.0)
        await gate.wait()  # meanwhile "a" and "b" fire and wait in the mailbox
        context.timers.cancel_all()
        return context.timers.is_timer_active("b"), context.timers.is_timer_active("c")

    ref.tell(start_then_cancel_all)
    await clock.advance(1.0)
    gate.set()
    await probe.expect_message((False, False))
    await expect_quiet(probe, clock, 60.0)


@pytest.mark.parametrize("interval", [0, -0.5])
async def test_a_periodic_timer_needs_a_positive_interval(
    system: ActorSystem, probe: TestProbe, interval: float
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))

    def start(context: ActorContext) -> str:
        try:
            context.timers.start_periodic_timer("bad", "never", interval)
        except ValueError as error:
            return str(error)
        return "no error"

    ref.tell(start)
    await probe.expect_message(f"timer interval must be positive, got {interval!r}")


async def test_the_receive_timeout_repeats_after_each_idle_period_until_turned_off(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    class Idle(Timed):
        def pre_start(self) -> None:
            self.context.set_receive_timeout(5.0)

    ref = system.spawn(lambda: Idle(probe.ref))
    for _ in range(3):
        await expect_quiet(probe, clock, 4.75)
        await clock.advance(0.25)
        await probe.expect_message(ReceiveTimeout)
    ref.tell(lambda context: ("timeout", context.receive_timeout))
    await probe.expect_message(("timeout", 5.0))

    def turn_off(context: ActorContext) -> str:
        context.set_receive_timeout(None)
        return "off"

    ref.tell(turn_off)
    await probe.expect_message("off")
    await expect_quiet(probe, clock, 60.0)
    ref.tell(lambda context: ("timeout", context.receive_timeout))
    await probe.expect_message(("timeout", None))


async def test_the_receive_timeout_does_not_fire_while_messages_keep_coming(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    class Idle(Timed):
        def pre_start(self) -> None:
            self.context.set_receive_timeout(3.0)

    ref = system.spawn(lambda: Idle(probe.ref))
    for n in range(6):  # 12 s in all, never 3 s idle
        await clock.advance(2.0)
        ref.tell(n)
        await probe.expect_message(n)  # never a ReceiveTimeout in between
    await expect_quiet(probe, clock, 2.75)
    await clock.advance(0.25)
    await probe.expect_message(ReceiveTimeout)


@pytest.mark.parametrize("bad", [0, -1.0])
async def test_a_non_positive_receive_timeout_raises_and_keeps_the_current_one(
    system: ActorSystem, clock: ManualClock, probe: TestProbe, bad: float
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))

    def misuse(context: ActorContext) -> tuple[str, float | None]:
        context.set_receive_timeout(1.0)
        try:
            context.set_receive_timeout(bad)
        except ValueError as error:
            return str(error), context.receive_timeout
        return "no error", None

    ref.tell(misuse)
    await probe.expect_message((f"receive timeout must be positive or None, got {bad!r}", 1.0))
    await clock.advance(1.0)
    await probe.expect_message(ReceiveTimeout)  # the previous timeout still works
