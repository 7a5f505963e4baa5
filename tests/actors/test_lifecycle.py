"""Start and stop: hook order, children first, the rest of the mailbox, names, PoisonPill."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actorsys import (
    Actor,
    ActorSystem,
    DeadLetter,
    InvalidActorNameError,
    PoisonPill,
    Terminated,
)
from actorsys.testing import ManualClock, TestProbe, settle
from tests.actors._helpers import Echo, Silent, expect_quiet


class Node(Actor):
    """Spawns the children named in ``tree`` and records its lifecycle in ``events``."""

    def __init__(self, name: str, tree: dict[str, list[str]], events: list[str]) -> None:
        super().__init__()
        self.name = name
        self.tree = tree
        self.events = events
        events.append(f"{name}:init")

    def pre_start(self) -> None:
        self.events.append(f"{self.name}:pre_start")
        for child in self.tree.get(self.name, []):
            self.context.spawn(lambda c=child: Node(c, self.tree, self.events), child)  # type: ignore[misc]

    async def post_stop(self) -> None:
        self.events.append(f"{self.name}:post_stop-begin")
        await asyncio.sleep(0)  # an async post_stop is awaited before the parent's
        self.events.append(f"{self.name}:post_stop")

    def receive(self, message: Any) -> None:
        self.events.append(f"{self.name}:{message}")
        self.context.sender.tell(message)


async def test_start_runs_the_constructor_then_pre_start_before_the_first_message(
    system: ActorSystem,
) -> None:
    events: list[str] = []
    ref = system.spawn(lambda: Node("a", {}, events))
    assert events == []  # construction happens on the actor's own turn, not in spawn
    assert await ref.ask("hello") == "hello"
    assert events == ["a:init", "a:pre_start", "a:hello"]


async def test_an_async_pre_start_finishes_before_the_first_message(
    system: ActorSystem,
) -> None:
    events: list[str] = []
    gate = asyncio.Event()

    class SlowStart(Actor):
        async def pre_start(self) -> None:
            events.append("pre_start-begin")
            await gate.wait()
            events.append("pre_start-end")

        def receive(self, message: Any) -> None:
            events.append(message)
            self.context.sender.tell(message)

    ref = system.spawn(SlowStart)
    answer = ref.ask("first")
    await settle()
    assert events == ["pre_start-begin"]
    gate.set()
    assert await answer == "first"
    assert events == ["pre_start-begin", "pre_start-end", "first"]


async def test_stop_lets_the_current_message_finish_then_stops_children_first_then_post_stop(
    system: ActorSystem, probe: TestProbe
) -> None:
    events: list[str] = []
    gate = asyncio.Event()
    tree = {"parent": ["left", "right"], "left": ["leaf"]}

    class Parent(Node):
        async def receive(self, message: Any) -> None:  # type: ignore[override]
            events.append("parent:busy")
            probe.ref.tell("busy")
            await gate.wait()
            events.append("parent:done")

    ref = system.spawn(lambda: Parent("parent", tree, events), "parent")
    ref.tell("work")
    await probe.expect_message("busy")
    stopped = system.stop(ref)
    await settle()
    assert "parent:done" not in events  # still working on its message
    assert not any(e.endswith("post_stop-begin") for e in events)
    gate.set()
    await stopped
    stop_events = events[events.index("parent:done") :]
    assert stop_events[-2:] == ["parent:post_stop-begin", "parent:post_stop"]
    assert stop_events.index("leaf:post_stop") < stop_events.index("left:post_stop-begin")
    assert stop_events.index("left:post_stop") < stop_events.index("parent:post_stop-begin")
    assert stop_events.index("right:post_stop") < stop_events.index("parent:post_stop-begin")
    assert system.live_actor_count == 1  # only the probe is left


async def test_stop_sends_the_rest_of_the_mailbox_to_dead_letters_in_order(
    system: ActorSystem, clock: ManualClock, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    gate = asyncio.Event()

    class Busy(Actor):
        async def receive(self, message: Any) -> None:
            probe.ref.tell(message)
            await gate.wait()

    ref = system.spawn(Busy)
    ref.tell("current")
    await probe.expect_message("current")
    ref.tell("m1", probe.ref)
    ref.tell("m2")
    stopped = system.stop(ref)
    ref.tell("m3")
    gate.set()
    await stopped
    assert dead_letters == [
        DeadLetter("m1", probe.ref, ref),
        DeadLetter("m2", None, ref),
        DeadLetter("m3", None, ref),
    ]
    await expect_quiet(probe, clock)


async def test_watchers_get_terminated_with_the_ref_when_an_actor_stops(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(Echo, "watched")
    probe.watch(ref)
    system.stop(ref)
    assert await probe.expect_message_type(Terminated) == Terminated(ref)
    assert not ref.is_alive


async def test_an_actor_can_stop_itself_and_its_timers_die_with_it(
    system: ActorSystem, clock: ManualClock, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    class Ticking(Actor):
        def pre_start(self) -> None:
            self.context.timers.start_periodic_timer("tick", "tick", 1.0)

        def receive(self, message: Any) -> None:
            probe.ref.tell(message)
            if message == "tick":
                self.context.stop(self.context.self)

    ref = system.spawn(Ticking)
    probe.watch(ref)
    await clock.advance(1.0)
    await probe.expect_message("tick")
    await probe.expect_terminated(ref)
    await expect_quiet(probe, clock, 10.0)  # several periods: the timer died with the actor
    assert clock.pending == 0
    assert dead_letters == []


async def test_a_name_can_be_reused_after_the_actor_terminated_but_not_before(
    system: ActorSystem,
) -> None:
    old = system.spawn(Echo, "worker")
    stopped = system.stop(old)
    with pytest.raises(InvalidActorNameError) as caught:
        system.spawn(Echo, "worker")
    assert str(caught.value) == (
        "actor name 'worker' is already in use by /user/worker: stop it and wait for it to "
        "terminate (await system.stop(ref)) before reusing the name"
    )
    await stopped
    new = system.spawn(Echo, "worker")
    assert new is not old
    assert new.path == old.path == "/user/worker"
    assert await new.ask("ping") == "ping"
    assert not old.is_alive


async def test_poison_pill_stops_the_actor_after_the_messages_queued_before_it(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    ref = system.spawn(lambda: Node("n", {}, []))
    probe.watch(ref)
    probe.send(ref, "a")
    probe.send(ref, "b")
    ref.tell(PoisonPill)
    probe.send(ref, "c")
    await probe.expect_message("a")
    await probe.expect_message("b")
    await probe.expect_terminated(ref)
    assert dead_letters == [DeadLetter("c", probe.ref, ref)]


async def test_stopping_an_actor_twice_or_after_it_terminated_is_harmless(
    system: ActorSystem,
) -> None:
    events: list[str] = []
    ref = system.spawn(lambda: Node("n", {}, events))
    first = system.stop(ref)
    second = system.stop(ref)
    await first
    await second
    await system.stop(ref)
    assert events.count("n:post_stop") == 1


async def test_the_context_names_children_and_knows_parent_children_and_sender(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Family(Actor):
        def pre_start(self) -> None:
            self.first = self.context.spawn(Silent)
            self.second = self.context.spawn(Silent)
            self.named = self.context.spawn(Silent, "named")

        def receive(self, message: Any) -> None:
            context = self.context
            context.sender.tell(
                (
                    [c.path for c in sorted(context.children)],
                    context.child("named") is self.named,
                    context.child("nobody"),
                    context.parent.path,
                    context.self is ref,
                    context.sender is probe.ref,
                )
            )

    ref = system.spawn(Family, "family")
    probe.send(ref, "report")
    assert await probe.receive() == (
        ["/user/family/$a", "/user/family/$b", "/user/family/named"],
        True,
        None,
        "/user",
        True,
        True,
    )
    assert ref.name == "family"
    assert repr(ref) == "ActorRef(/user/family)"


async def test_the_sender_of_a_message_told_without_sender_is_dead_letters(
    system: ActorSystem, dead_letters: list[DeadLetter]
) -> None:
    ref = system.spawn(Echo)
    ref.tell("no sender")
    assert await ref.ask("with sender") == "with sender"
    assert dead_letters == [DeadLetter("no sender", ref, system.dead_letters)]


async def test_many_auto_named_children_get_distinct_names(system: ActorSystem) -> None:
    class Many(Actor):
        def pre_start(self) -> None:
            for _ in range(30):
                self.context.spawn(Silent)

        def receive(self, message: Any) -> None:
            self.context.sender.tell([c.name for c in self.context.children])

    names: list[str] = await system.spawn(Many).ask("names")
    assert len(set(names)) == 30
    assert names[:3] == ["$a", "$b", "$c"]
    assert names[25:27] == ["$z", "$aa"]
