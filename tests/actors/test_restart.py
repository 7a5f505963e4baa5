"""Restart: same ref, mailbox kept, failed message dropped; hooks, children, become, stash."""

from __future__ import annotations

import asyncio
from typing import Any

from actorsys import Actor, ActorRef, ActorSystem, DeadLetter
from actorsys.testing import ManualClock, TestProbe
from tests.actors._helpers import expect_quiet


class Fragile(Actor):
    """Reports every message and hook to ``probe`` as ``(id(self), what, ...)``; "fail" raises."""

    def __init__(self, probe: ActorRef) -> None:
        super().__init__()
        self.probe = probe
        probe.tell((id(self), "init"))

    def pre_start(self) -> None:
        self.probe.tell((id(self), "pre_start"))

    def post_stop(self) -> None:
        self.probe.tell((id(self), "post_stop"))

    def receive(self, message: Any) -> None:
        if message == "fail":
            raise RuntimeError("failed on purpose")
        self.probe.tell((id(self), message))


async def test_restart_keeps_the_ref_and_the_mailbox_and_drops_the_failed_message(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Fragile(probe.ref), "fragile")
    old, _ = await probe.receive()
    await probe.expect_message((old, "pre_start"))
    ref.tell("before")
    ref.tell("fail")
    ref.tell("after-1")
    ref.tell("after-2")
    await probe.expect_message((old, "before"))
    await probe.expect_message((old, "post_stop"))  # default pre_restart
    new, what = await probe.receive()
    assert (what, new != old) == ("init", True)
    await probe.expect_message((new, "pre_start"))  # default post_restart
    await probe.expect_message((new, "after-1"))
    await probe.expect_message((new, "after-2"))
    await expect_quiet(probe, clock)  # "fail" was not delivered again
    assert ref.is_alive
    assert ref.path == "/user/fragile"


async def test_pre_restart_runs_on_the_old_instance_and_post_restart_on_the_new_one(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Hooks(Fragile):
        def pre_restart(self, reason: Exception, message: Any) -> None:
            self.probe.tell((id(self), "pre_restart", reason, message))

        def post_restart(self, reason: Exception) -> None:
            self.probe.tell((id(self), "post_restart", reason))

    ref = system.spawn(lambda: Hooks(probe.ref))
    old, _ = await probe.receive()
    await probe.expect_message((old, "pre_start"))
    ref.tell("fail")
    instance, hook, reason, message = await probe.receive()
    assert (instance, hook, message) == (old, "pre_restart", "fail")
    assert isinstance(reason, RuntimeError)
    assert reason.args == ("failed on purpose",)
    new, what = await probe.receive()
    assert (new != old, what) == (True, "init")
    await probe.expect_message((new, "post_restart", reason))  # no pre_start, no post_stop
    ref.tell("next")
    await probe.expect_message((new, "next"))


async def test_an_async_pre_restart_and_post_restart_are_awaited_in_order(
    system: ActorSystem, probe: TestProbe
) -> None:
    class AsyncHooks(Fragile):
        async def pre_restart(self, reason: Exception, message: Any) -> None:
            self.probe.tell("pre_restart-begin")
            await asyncio.sleep(0)  # suspends the hook: the restart must wait for it
            self.probe.tell("pre_restart-end")

        async def post_restart(self, reason: Exception) -> None:
            self.probe.tell("post_restart-begin")
            await asyncio.sleep(0)
            self.probe.tell("post_restart-end")

        def receive(self, message: Any) -> None:
            if message == "fail":
                raise RuntimeError("again")
            self.probe.tell(message)

    ref = system.spawn(lambda: AsyncHooks(probe.ref))
    ref.tell("fail")
    ref.tell("next")
    got = [await probe.receive() for _ in range(8)]
    assert [g for g in got if isinstance(g, str)] == [
        "pre_restart-begin",
        "pre_restart-end",
        "post_restart-begin",
        "post_restart-end",
        "next",
    ]


async def test_default_pre_restart_stops_the_children_and_waits_for_them_before_the_new_instance(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Kid(Actor):
        async def post_stop(self) -> None:
            probe.ref.tell("kid:post_stop-begin")
            await asyncio.sleep(0)  # the parent's new instance must wait for this
            probe.ref.tell("kid:post_stop-end")

        def receive(self, message: Any) -> None:
            self.context.sender.tell(message)

    class Parent(Actor):
        def __init__(self) -> None:
            super().__init__()
            probe.ref.tell("parent:init")

        def pre_start(self) -> None:
            self.kid = self.context.spawn(Kid, "kid")  # the same name on every start
            probe.ref.tell(("parent:pre_start", self.kid))

        def post_stop(self) -> None:
            probe.ref.tell("parent:post_stop")

        def receive(self, message: Any) -> None:
            raise ValueError(message)

    ref = system.spawn(Parent, "parent")
    await probe.expect_message("parent:init")
    _, old_kid = await probe.receive()
    ref.tell("fail")
    assert [await probe.receive() for _ in range(4)] == [
        "parent:post_stop",
        "kid:post_stop-begin",
        "kid:post_stop-end",
        "parent:init",
    ]
    what, new_kid = await probe.receive()
    assert what == "parent:pre_start"
    assert new_kid is not old_kid
    assert not old_kid.is_alive
    assert new_kid.path == "/user/parent/kid"
    assert await new_kid.ask("alive?") == "alive?"


async def test_children_survive_a_restart_when_pre_restart_keeps_them(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Kid(Actor):
        def receive(self, message: Any) -> None:
            self.context.sender.tell(message)

    class Keeper(Actor):
        def pre_start(self) -> None:
            probe.ref.tell(self.context.spawn(Kid, "kid"))

        def pre_restart(self, reason: Exception, message: Any) -> None:
            pass  # keep the children

        def post_restart(self, reason: Exception) -> None:
            probe.ref.tell(self.context.child("kid"))

        def receive(self, message: Any) -> None:
            raise ValueError(message)

    ref = system.spawn(Keeper)
    kid = await probe.receive()
    ref.tell("fail")
    assert await probe.receive() is kid
    assert await kid.ask("still here") == "still here"


async def test_become_reverts_to_receive_after_a_restart(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Moody(Actor):
        def receive(self, message: Any) -> None:
            if message == "switch":
                self.context.become(self.other)
            else:
                probe.ref.tell(("receive", message))

        def other(self, message: Any) -> None:
            if message == "fail":
                raise RuntimeError("in other")
            probe.ref.tell(("other", message))

    ref = system.spawn(Moody)
    ref.tell("switch")
    ref.tell("x")
    ref.tell("fail")
    ref.tell("y")
    await probe.expect_message(("other", "x"))
    await probe.expect_message(("receive", "y"))


async def test_timers_are_cancelled_on_restart_also_when_their_message_is_already_queued(
    system: ActorSystem, clock: ManualClock, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    gate = asyncio.Event()

    class Timed(Actor):
        def post_restart(self, reason: Exception) -> None:
            self.context.timers.start_single_timer("fresh", "fresh-tick", 3.0)
            probe.ref.tell(("restarted", self.context.timers.is_timer_active("pending")))

        async def receive(self, message: Any) -> None:
            if message == "arm-and-fail":
                self.context.timers.start_single_timer("queued", "queued-tick", 0)
                self.context.timers.start_single_timer("pending", "pending-tick", 1.0)
                await gate.wait()  # meanwhile "queued-tick" fires and waits in the mailbox
                probe.ref.tell(("queued", self.context.self.mailbox_stats().queued))
                raise RuntimeError("fail with timers armed")
            probe.ref.tell(message)

    ref = system.spawn(Timed)
    ref.tell("arm-and-fail")
    await clock.advance(0.5)
    gate.set()
    await probe.expect_message(("queued", 1))
    await probe.expect_message(("restarted", False))
    await expect_quiet(probe, clock, 2.75)  # "pending" was due at 1.0: never delivered
    await clock.advance(0.25)
    await probe.expect_message("fresh-tick")  # neither old timer delivered before it
    await expect_quiet(probe, clock, 60.0)
    assert dead_letters == []


async def test_stashed_messages_return_to_the_mailbox_in_order_on_restart(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Stasher(Actor):
        def __init__(self) -> None:
            super().__init__()
            self.stashing = True

        def post_restart(self, reason: Exception) -> None:
            self.stashing = False

        def receive(self, message: Any) -> None:
            if message == "fail":
                raise RuntimeError("with a stash")
            if self.stashing:
                self.context.stash()
            else:
                probe.ref.tell(message)

    ref = system.spawn(Stasher)
    for message in ("s1", "s2", "s3", "fail", "after"):
        ref.tell(message)
    for expected in ("s1", "s2", "s3", "after"):
        await probe.expect_message(expected)


async def test_a_restart_keeps_the_receive_loop_of_other_actors_going(
    system: ActorSystem, probe: TestProbe
) -> None:
    fragile = system.spawn(lambda: Fragile(probe.ref))
    other = system.spawn(lambda: Fragile(probe.ref))
    await probe.fish_for_message(lambda m: m[1] == "pre_start")
    await probe.fish_for_message(lambda m: m[1] == "pre_start")
    for _ in range(20):
        fragile.tell("fail")
        other.tell("ok")
    seen = [await probe.receive() for _ in range(20 * 4)]
    assert sum(1 for m in seen if m[1] == "ok") == 20
    assert sum(1 for m in seen if m[1] == "init") == 20
