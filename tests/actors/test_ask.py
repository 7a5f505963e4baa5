"""ask: replies, timeouts, errors raised by the handler, late replies and stopped actors."""

from __future__ import annotations

import asyncio
import gc
import math
import weakref
from typing import Any

import pytest

from actorsys import (
    Actor,
    ActorDeadError,
    ActorRef,
    ActorSystem,
    AskTimeoutError,
    BoundedMailbox,
    DeadLetter,
    MailboxFullError,
    Overflow,
)
from actorsys.testing import ManualClock, TestProbe
from tests.actors._helpers import Echo, Silent


class Counter(Actor):
    """Counts ``"incr"``; answers ``"get"``; ``"boom"`` raises, also after an await."""

    def __init__(self, probe: ActorRef | None = None) -> None:
        super().__init__()
        self.count = 0
        self.probe = probe

    def post_restart(self, reason: Exception) -> None:
        if self.probe is not None:
            self.probe.tell(("restarted", reason))

    async def receive(self, message: Any) -> None:
        if message == "incr":
            self.count += 1
        elif message == "get":
            self.context.sender.tell(self.count)
        elif message == "boom":
            raise ValueError("boom")
        elif message == "boom-later":
            await asyncio.sleep(0)
            raise KeyError("later")


async def test_ask_returns_the_first_reply_and_later_replies_go_to_dead_letters(
    system: ActorSystem, dead_letters: list[DeadLetter]
) -> None:
    class TwoReplies(Actor):
        def receive(self, message: Any) -> None:
            self.context.sender.tell("first")
            self.context.sender.tell("second")

    ref = system.spawn(TwoReplies)
    assert await ref.ask("question") == "first"
    await asyncio.sleep(0)
    assert [letter.message for letter in dead_letters] == ["second"]
    assert dead_letters[0].recipient.path.startswith("/temp/ask-")


async def test_ask_returns_what_the_actor_replies(system: ActorSystem) -> None:
    ref = system.spawn(Echo)
    assert await ref.ask({"hello": 1}, timeout=1.0) == {"hello": 1}


@pytest.mark.parametrize(("bad", "shown"), [(0, "0"), (-1.5, "-1.5"), (math.nan, "nan")])
async def test_ask_with_a_non_positive_timeout_raises_value_error_before_anything_is_sent(
    system: ActorSystem, dead_letters: list[DeadLetter], bad: float, shown: str
) -> None:
    ref = system.spawn(Counter)
    with pytest.raises(ValueError, match=rf"^ask timeout must be positive, got {shown}$"):
        ref.ask("get", timeout=bad)
    assert await ref.ask("get") == 0
    assert ref.mailbox_stats().processed == 1  # only the second ask arrived
    assert dead_letters == []


async def test_ask_timeout_error_names_the_target_path_and_the_timeout(
    system: ActorSystem, clock: ManualClock
) -> None:
    ref = system.spawn(Silent, "silent")
    pending = ref.ask("anyone there?", timeout=0.02)
    await clock.advance(0.019)
    assert not pending.done()
    await clock.advance(0.001)
    with pytest.raises(AskTimeoutError) as caught:
        await pending
    assert str(caught.value) == "ask to /user/silent timed out after 0.02 s"
    assert caught.value.path == "/user/silent"
    assert caught.value.timeout == 0.02
    assert isinstance(caught.value, TimeoutError)


async def test_ask_to_a_stopped_actor_raises_actor_dead_error_at_once(
    system: ActorSystem, dead_letters: list[DeadLetter]
) -> None:
    ref = system.spawn(Echo, "gone")
    await system.stop(ref)
    with pytest.raises(ActorDeadError, match=r"^actor /user/gone has stopped$") as caught:
        ref.ask("hello?")  # raises on the call itself, nothing to await
    assert caught.value.path == "/user/gone"
    assert dead_letters == []


@pytest.mark.parametrize(
    ("message", "error"), [("boom", ValueError("boom")), ("boom-later", KeyError("later"))]
)
async def test_an_exception_raised_while_handling_an_ask_reaches_the_asker_and_the_actor_restarts(
    system: ActorSystem, probe: TestProbe, message: str, error: Exception
) -> None:
    ref = system.spawn(lambda: Counter(probe.ref))
    ref.tell("incr")
    with pytest.raises(type(error)) as caught:
        await ref.ask(message)
    assert caught.value.args == error.args
    restarted = await probe.expect_message_type(tuple)
    assert restarted == ("restarted", caught.value)  # the very exception the asker got
    assert await ref.ask("get") == 0  # the default strategy restarted it: fresh state


async def test_a_reply_after_the_asker_gave_up_goes_to_dead_letters(
    system: ActorSystem, clock: ManualClock, dead_letters: list[DeadLetter]
) -> None:
    gate = asyncio.Event()

    class Slow(Actor):
        async def receive(self, message: Any) -> None:
            await gate.wait()
            self.context.sender.tell("too late", self.context.self)

    ref = system.spawn(Slow)
    pending = ref.ask("question", timeout=0.01)
    await clock.advance(0.01)
    with pytest.raises(AskTimeoutError):
        await pending
    gate.set()
    assert await ref.ask("again") == "too late"
    assert [(d.message, d.sender) for d in dead_letters] == [("too late", ref)]
    assert dead_letters[0].recipient.path.startswith("/temp/ask-")


async def test_a_reply_after_the_asker_was_cancelled_goes_to_dead_letters(
    system: ActorSystem, dead_letters: list[DeadLetter]
) -> None:
    gate = asyncio.Event()

    class Slow(Actor):
        async def receive(self, message: Any) -> None:
            await gate.wait()
            self.context.sender.tell(f"answer to {message}")

    ref = system.spawn(Slow)
    asking = asyncio.ensure_future(ref.ask("first"))
    await asyncio.sleep(0)
    asking.cancel()
    gate.set()
    assert await ref.ask("second") == "answer to second"
    assert [d.message for d in dead_letters] == ["answer to first"]


async def test_a_pending_ask_fails_with_actor_dead_error_when_the_actor_stops_with_it_queued(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    gate = asyncio.Event()

    class Busy(Actor):
        async def receive(self, message: Any) -> None:
            probe.ref.tell("busy")
            await gate.wait()

    ref = system.spawn(Busy, "busy")
    ref.tell("block")
    await probe.expect_message("busy")
    pending = ref.ask("queued")
    stopped = system.stop(ref)
    gate.set()
    await stopped
    with pytest.raises(ActorDeadError, match=r"^actor /user/busy has stopped$"):
        await pending
    assert dead_letters == []  # the asker was told; nothing went to dead letters


async def test_ask_to_a_full_mailbox_that_fails_raises_mailbox_full_error_and_leaves_no_timer(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    gate = asyncio.Event()
    unhandled: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))

    class Busy(Actor):
        async def receive(self, message: Any) -> None:
            probe.ref.tell("busy")
            await gate.wait()

    try:
        ref = system.spawn(Busy, "full", mailbox=BoundedMailbox(1, Overflow.FAIL))
        ref.tell("block")
        await probe.expect_message("busy")
        ref.tell("queued")
        with pytest.raises(
            MailboxFullError, match=r"^mailbox of /user/full is full \(capacity 1\)$"
        ):
            ref.ask("no room", timeout=0.01)
        assert clock.pending == 0  # the refused ask's timeout was called off
        await clock.advance(0.03)  # past the ask timeout
        gc.collect()
        assert unhandled == []  # no orphaned future failed with AskTimeoutError
    finally:
        gate.set()
        loop.set_exception_handler(None)


async def test_asks_with_the_same_timeout_each_time_out_at_their_own_deadline(
    system: ActorSystem, clock: ManualClock
) -> None:
    ref = system.spawn(Silent)
    first = ref.ask("first", timeout=10.0)
    await clock.advance(4.0)
    second = ref.ask("second", timeout=10.0)
    shorter = ref.ask("shorter", timeout=3.0)
    await clock.advance(3.0)
    assert (first.done(), second.done(), shorter.done()) == (False, False, True)
    await clock.advance(3.0)
    assert (first.done(), second.done()) == (True, False)
    await clock.advance(3.9)
    assert not second.done()
    await clock.advance(0.1)
    for pending, timeout in ((first, 10.0), (second, 10.0), (shorter, 3.0)):
        with pytest.raises(AskTimeoutError) as caught:
            await pending
        assert caught.value.timeout == timeout


async def test_answered_asks_leave_no_clock_call_once_their_timeout_has_passed(
    system: ActorSystem, clock: ManualClock
) -> None:
    ref = system.spawn(Echo)
    for n in range(3):
        assert await ref.ask(n, timeout=5.0) == n
    await clock.advance(5.0)
    assert clock.pending == 0


async def test_answered_asks_are_not_kept_alive_behind_one_that_is_still_pending(
    system: ActorSystem,
) -> None:
    silent, echo = system.spawn(Silent), system.spawn(Echo)
    waiting = silent.ask("never answered", timeout=60.0)
    answered: list[weakref.ref[asyncio.Future[Any]]] = []
    for n in range(1000):
        future = echo.ask(n, timeout=60.0)
        assert await future == n
        answered.append(weakref.ref(future))
        del future
    gc.collect()
    assert sum(ref() is not None for ref in answered) < 100
    assert not waiting.done()
