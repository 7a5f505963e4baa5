"""DeathWatch: exactly one Terminated, also for the already dead; restarts are not deaths."""

from __future__ import annotations

import asyncio
from typing import Any

from actorsys import Actor, ActorRef, ActorSystem, DeadLetter, Terminated
from actorsys.testing import ManualClock, TestProbe
from tests.actors._helpers import Echo, expect_quiet


class Watcher(Actor):
    """Watches or unwatches the ref it is sent; reports what it receives to ``probe``.

    A ``Terminated`` is reported as ``("terminated", ref)``: like in Akka, an actor drops a
    ``Terminated`` for an actor it does not watch, so a forwarded one would never arrive.
    """

    def __init__(self, probe: ActorRef, gate: asyncio.Event | None = None) -> None:
        super().__init__()
        self.probe = probe
        self.gate = gate

    async def receive(self, message: Any) -> None:
        match message:
            case ("watch", ref):
                self.context.watch(ref)
                self.context.watch(ref)  # watching twice still means one Terminated
                self.probe.tell("watching")
            case ("block-then-unwatch", ref):
                assert self.gate is not None
                self.probe.tell("blocked")
                await self.gate.wait()
                self.probe.tell(("queued", self.context.self.mailbox_stats().queued))
                self.context.unwatch(ref)
                self.probe.tell("unwatched")
            case Terminated(ref):
                self.probe.tell(("terminated", ref))
            case _:
                self.probe.tell(message)


async def test_watch_delivers_exactly_one_terminated_when_the_watched_actor_stops(
    system: ActorSystem, probe: TestProbe
) -> None:
    target = system.spawn(Echo)
    watcher = system.spawn(lambda: Watcher(probe.ref))
    watcher.tell(("watch", target))
    await probe.expect_message("watching")
    await system.stop(target)
    await probe.expect_message(("terminated", target))
    watcher.tell("still here")
    await probe.expect_message("still here")  # nothing else was queued before it


async def test_watching_an_actor_that_is_already_dead_delivers_terminated_at_once(
    system: ActorSystem, probe: TestProbe
) -> None:
    target = system.spawn(Echo)
    await system.stop(target)
    watcher = system.spawn(lambda: Watcher(probe.ref))
    watcher.tell(("watch", target))
    await probe.expect_message("watching")
    await probe.expect_message(("terminated", target))
    watcher.tell("after")
    await probe.expect_message("after")


async def test_a_restart_is_not_a_termination_for_watchers(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    class Fails(Actor):
        def receive(self, message: Any) -> None:
            if message == "fail":
                raise RuntimeError("restart me")
            self.context.sender.tell(message)

    target = system.spawn(Fails)
    probe.watch(target)
    target.tell("fail")
    assert await target.ask("alive after restart") == "alive after restart"
    await expect_quiet(probe, clock)
    await system.stop(target)
    await probe.expect_terminated(target)


async def test_unwatch_suppresses_terminated_even_if_it_is_already_queued(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    gate = asyncio.Event()
    target = system.spawn(Echo)
    watcher = system.spawn(lambda: Watcher(probe.ref, gate))
    watcher.tell(("watch", target))
    await probe.expect_message("watching")
    watcher.tell(("block-then-unwatch", target))
    await probe.expect_message("blocked")
    await system.stop(target)  # Terminated(target) now waits in the watcher's mailbox
    gate.set()
    await probe.expect_message(("queued", 1))
    await probe.expect_message("unwatched")
    watcher.tell("next")
    await probe.expect_message("next")  # the queued Terminated was dropped, not delivered
    assert dead_letters == []


async def test_unwatch_before_the_target_stops_means_no_terminated(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    target = system.spawn(Echo)
    probe.watch(target)
    probe.ref._cell.unwatch(target)
    await system.stop(target)
    await expect_quiet(probe, clock)


async def test_a_watcher_that_stopped_first_is_not_told(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    target = system.spawn(Echo)
    watcher = system.spawn(lambda: Watcher(probe.ref))
    watcher.tell(("watch", target))
    await probe.expect_message("watching")
    await system.stop(watcher)
    await system.stop(target)
    assert dead_letters == []


async def test_a_parent_can_watch_its_child_and_every_watcher_gets_its_own_terminated(
    system: ActorSystem, probe: TestProbe
) -> None:
    other = TestProbe(system, "other")

    class Parent(Actor):
        def pre_start(self) -> None:
            self.child = self.context.watch(self.context.spawn(Echo, "child"))

        def receive(self, message: Any) -> None:
            if message == "child":
                self.context.sender.tell(self.child)
            elif isinstance(message, Terminated):
                probe.ref.tell(("terminated", message.ref))

    parent = system.spawn(Parent, "parent")
    child: ActorRef = await parent.ask("child")
    other.watch(child)
    await system.stop(child)
    await probe.expect_message(("terminated", child))
    await other.expect_terminated(child)
    assert parent.is_alive


async def test_watching_itself_is_ignored(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    class SelfWatcher(Actor):
        def pre_start(self) -> None:
            self.context.watch(self.context.self)

        def post_stop(self) -> None:
            probe.ref.tell("post_stop")

    ref = system.spawn(SelfWatcher)
    await system.stop(ref)
    await probe.expect_message("post_stop")
    await expect_quiet(probe, clock)
