"""The clock seam: ``ManualClock`` (ordering, cancellation, advancing and settling), the default
``LoopClock``, and the system handing its clock to everything that waits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actorsys import Actor, ActorSystem, ActorSystemError, AskTimeoutError, LoopClock
from actorsys.testing import ManualClock, TestProbe
from tests.actors._helpers import Echo


async def test_calls_run_in_time_order_and_ties_in_the_order_they_were_scheduled() -> None:
    clock = ManualClock()
    ran: list[tuple[str, float]] = []

    def record(name: str) -> None:
        ran.append((name, clock.time()))

    clock.call_later(3.0, record, "c")
    clock.call_later(1.0, record, "a1")
    clock.call_later(2.0, record, "b")
    clock.call_later(1.0, record, "a2")
    await clock.advance(10.0)
    assert ran == [("a1", 1.0), ("a2", 1.0), ("b", 2.0), ("c", 3.0)]  # time() is each due time
    assert clock.time() == 10.0


async def test_advance_runs_only_the_calls_due_by_then_and_keeps_the_rest() -> None:
    clock = ManualClock(start=100.0)
    ran: list[str] = []
    clock.call_later(1.0, ran.append, "due")
    clock.call_later(2.0, ran.append, "later")
    await clock.advance(1.0)  # a call due exactly now runs
    assert ran == ["due"]
    assert (clock.time(), clock.pending, clock.next_deadline()) == (101.0, 1, 102.0)
    await clock.advance(0.5)
    assert ran == ["due"]
    await clock.advance(0.5)
    assert ran == ["due", "later"]
    assert (clock.pending, clock.next_deadline()) == (0, None)


async def test_a_cancelled_call_never_runs_and_cancelling_again_is_harmless() -> None:
    clock = ManualClock()
    ran: list[str] = []
    cancelled = clock.call_later(1.0, ran.append, "cancelled")
    kept = clock.call_later(2.0, ran.append, "kept")
    cancelled.cancel()
    cancelled.cancel()
    assert clock.pending == 1
    assert clock.next_deadline() == 2.0
    await clock.advance(5.0)
    kept.cancel()
    assert ran == ["kept"]


async def test_calls_scheduled_by_a_call_within_the_advanced_span_run_in_the_same_advance() -> None:
    clock = ManualClock()
    beats: list[float] = []

    def beat() -> None:
        beats.append(clock.time())
        clock.call_later(2.0, beat)

    clock.call_later(2.0, beat)
    await clock.advance(7.0)
    assert beats == [2.0, 4.0, 6.0]
    assert clock.next_deadline() == 8.0
    clock.call_later(-1.0, beats.append, -1.0)  # a negative delay means now
    await clock.advance(0)
    assert beats == [2.0, 4.0, 6.0, -1.0]


async def test_advance_refuses_to_go_back_in_time() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match=r"^a clock cannot go back: advance\(-1\)$"):
        await clock.advance(-1)


async def test_advance_lets_the_actors_woken_by_each_call_handle_their_mail_before_the_next(
    clock: ManualClock,
) -> None:
    seen: list[tuple[str, float]] = []
    seen_by_a_later_call: list[list[tuple[str, float]]] = []

    class Chain(Actor):
        """Passes each timer's message down a chain of three async children, then records it."""

        def pre_start(self) -> None:
            self.context.timers.start_single_timer("first", "first", 1.0)
            self.context.timers.start_single_timer("second", "second", 1.0)
            self.next = self.context.spawn(lambda: Hop(2))

        def receive(self, message: Any) -> None:
            self.next.tell(message)

    class Hop(Actor):
        def __init__(self, left: int) -> None:
            super().__init__()
            self.next = self.context.spawn(lambda: Hop(left - 1)) if left else None

        async def receive(self, message: Any) -> None:
            await asyncio.sleep(0)
            if self.next is not None:
                self.next.tell(message)
            else:
                seen.append((message, clock.time()))

    async with ActorSystem("chain", clock=clock) as system:
        system.spawn(Chain)
        await clock.advance(0)  # the chain starts and arms its timers
        clock.call_later(1.0, lambda: seen_by_a_later_call.append(list(seen)))
        await clock.advance(1.0)
        assert seen == [("first", 1.0), ("second", 1.0)]
        assert seen_by_a_later_call == [seen]  # both had gone down the chain before it ran


async def test_a_system_runs_on_the_loops_clock_unless_given_one() -> None:
    system = ActorSystem("default")
    with pytest.raises(ActorSystemError, match=r"^actor system 'default' was never started$"):
        system.clock  # noqa: B018
    async with system:
        loop = asyncio.get_running_loop()
        assert isinstance(system.clock, LoopClock)
        assert system.clock.time == loop.time  # the loop's own methods: no wrapper to pay for
        assert system.clock.call_later == loop.call_later
        fired = loop.create_future()
        system.clock.call_later(0, fired.set_result, "fired")
        assert await fired == "fired"
    manual = ManualClock()
    assert ActorSystem("manual", clock=manual).clock is manual


async def test_ask_timeouts_wait_by_the_systems_clock(
    system: ActorSystem, clock: ManualClock
) -> None:
    probe = TestProbe(system, "silent-probe")  # a probe never answers
    pending = probe.ref.ask("hello?", timeout=30.0)
    await clock.advance(29.5)
    assert not pending.done()
    assert clock.pending == 1
    answered = system.spawn(Echo).ask("quick", timeout=30.0)
    assert await answered == "quick"
    assert clock.pending == 1  # the answered ask's timeout was called off
    await clock.advance(0.5)
    assert pending.done()
    assert isinstance(pending.exception(), AskTimeoutError)
