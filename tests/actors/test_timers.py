"""Keyed timers (single, periodic, replace, cancel) and the receive timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from actorsys import Actor, ActorContext, ActorRef, ActorSystem, ReceiveTimeout
from actorsys.testing import TestProbe


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


async def test_a_single_timer_delivers_its_message_once(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))

    def start(context: ActorContext) -> bool:
        context.timers.start_single_timer("once", "tick", 0.005)
        return context.timers.is_timer_active("once")

    ref.tell(start)
    await probe.expect_message(True)
    await probe.expect_message("tick")
    ref.tell(lambda context: ("active", context.timers.is_timer_active("once")))
    await probe.expect_message(("active", False))
    await probe.expect_no_message(0.02)


async def test_a_periodic_timer_repeats_until_cancelled(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))
    ref.tell(lambda context: context.timers.start_periodic_timer("beat", "beat", 0.005))
    for _ in range(3):
        await probe.expect_message("beat")
    ref.tell(lambda context: ("cancelled", context.timers.cancel("beat")))
    await probe.fish_for_message(lambda m: m == ("cancelled", None))
    await probe.expect_no_message(0.03)


async def test_a_timer_started_with_an_existing_key_replaces_the_old_one(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))

    def restart(context: ActorContext) -> None:
        context.timers.start_single_timer("key", "old", 0.01)
        context.timers.start_single_timer("key", "new", 0.02)

    ref.tell(restart)
    await probe.expect_message("new")
    await probe.expect_no_message(0.02)


async def test_the_replaced_timers_message_is_never_delivered_even_if_already_queued(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))

    async def replace_while_queued(context: ActorContext) -> int:
        context.timers.start_single_timer("key", "old", 0)
        context.timers.start_periodic_timer("periodic", "old-periodic", 0.001)
        await asyncio.sleep(0.01)  # both fire and wait in the mailbox
        queued = context.self.mailbox_stats().queued
        context.timers.start_single_timer("key", "new", 0)
        context.timers.start_single_timer("periodic", "new-periodic", 0.005)
        return queued

    ref.tell(replace_while_queued)
    assert await probe.receive() >= 2
    await probe.expect_message("new")
    await probe.expect_message("new-periodic")
    await probe.expect_no_message(0.02)


async def test_a_cancelled_timer_is_not_delivered_even_if_already_queued(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))

    async def cancel_while_queued(context: ActorContext) -> str:
        context.timers.start_single_timer("key", "cancelled", 0)
        await asyncio.sleep(0.005)
        context.timers.cancel("key")
        context.timers.cancel("no such key")  # harmless
        return "done"

    ref.tell(cancel_while_queued)
    await probe.expect_message("done")
    ref.tell("marker")
    await probe.expect_message("marker")


async def test_cancel_all_cancels_every_timer(system: ActorSystem, probe: TestProbe) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))

    async def start_then_cancel_all(context: ActorContext) -> tuple[bool, bool]:
        context.timers.start_single_timer("a", "a", 0)
        context.timers.start_periodic_timer("b", "b", 0.001)
        context.timers.start_single_timer("c", "c", 0.01)
        await asyncio.sleep(0.005)
        context.timers.cancel_all()
        return context.timers.is_timer_active("b"), context.timers.is_timer_active("c")

    ref.tell(start_then_cancel_all)
    await probe.expect_message((False, False))
    await probe.expect_no_message(0.03)


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
    system: ActorSystem, probe: TestProbe
) -> None:
    class Idle(Timed):
        def pre_start(self) -> None:
            self.context.set_receive_timeout(0.005)

    ref = system.spawn(lambda: Idle(probe.ref))
    for _ in range(3):
        await probe.expect_message(ReceiveTimeout)
    ref.tell(lambda context: ("timeout", context.receive_timeout))
    await probe.fish_for_message(lambda m: m == ("timeout", 0.005))

    def turn_off(context: ActorContext) -> str:
        context.set_receive_timeout(None)
        return "off"

    ref.tell(turn_off)
    await probe.fish_for_message(lambda m: m == "off")
    await probe.expect_no_message(0.03)
    ref.tell(lambda context: ("timeout", context.receive_timeout))
    await probe.expect_message(("timeout", None))


async def test_the_receive_timeout_does_not_fire_while_messages_keep_coming(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Idle(Timed):
        def pre_start(self) -> None:
            self.context.set_receive_timeout(0.03)

    ref = system.spawn(lambda: Idle(probe.ref))
    for n in range(6):
        await asyncio.sleep(0.01)
        ref.tell(n)
        await probe.expect_message(n)  # never a ReceiveTimeout in between
    await probe.expect_message(ReceiveTimeout)


@pytest.mark.parametrize("bad", [0, -1.0])
async def test_a_non_positive_receive_timeout_raises_and_keeps_the_current_one(
    system: ActorSystem, probe: TestProbe, bad: float
) -> None:
    ref = system.spawn(lambda: Timed(probe.ref))

    def misuse(context: ActorContext) -> tuple[str, float | None]:
        context.set_receive_timeout(0.01)
        try:
            context.set_receive_timeout(bad)
        except ValueError as error:
            return str(error), context.receive_timeout
        return "no error", None

    ref.tell(misuse)
    await probe.expect_message((f"receive timeout must be positive or None, got {bad!r}", 0.01))
    await probe.expect_message(ReceiveTimeout)  # the previous timeout still works
