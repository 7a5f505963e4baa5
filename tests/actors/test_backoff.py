"""Backoff supervision: restarts after a stop or a failure, delays, reset, giving up, downtime.

The delays run on the test's manual clock: each test advances it by exactly the delay it expects.
"""

from __future__ import annotations

from typing import Any

import pytest

from actorsys import (
    Actor,
    ActorRef,
    ActorSystem,
    BackoffOptions,
    BackoffSupervisor,
    DeadLetter,
    Terminated,
)
from actorsys.testing import ManualClock, TestProbe
from tests.actors._helpers import expect_quiet


def test_the_delay_is_min_backoff_doubled_per_restart_capped_and_randomized() -> None:
    options = BackoffOptions(min_backoff=0.1, max_backoff=1.0, random_factor=0.5)
    assert [options.delay(n, rnd=lambda: 0.0) for n in range(6)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )
    assert options.delay(2, rnd=lambda: 1.0) == pytest.approx(0.4 * 1.5)
    assert options.delay(9, rnd=lambda: 0.5) == pytest.approx(1.0 * 1.25)
    assert BackoffOptions(0.1, 1.0, random_factor=0).delay(3) == pytest.approx(0.8)


def test_backoff_options_validate_their_values_and_build_new_values() -> None:
    with pytest.raises(ValueError, match=r"^backoff needs 0 < min_backoff <= max_backoff$"):
        BackoffOptions(min_backoff=0)
    with pytest.raises(ValueError, match=r"^backoff needs 0 < min_backoff <= max_backoff$"):
        BackoffOptions(min_backoff=2.0, max_backoff=1.0)
    with pytest.raises(ValueError, match=r"^random_factor must be >= 0$"):
        BackoffOptions(random_factor=-0.1)
    base = BackoffOptions()
    changed = base.with_max_retries(3).with_reset_after(2.0).with_reply_while_down("down")
    assert (changed.max_retries, changed.reset_after, changed.reply_while_down) == (3, 2.0, "down")
    assert (base.max_retries, base.reset_after, base.reply_while_down) == (None, None, None)


class Child(Actor):
    """Reports its start to ``probe``; ``"stop"`` stops it, ``"fail"`` raises, else it echoes."""

    def __init__(self, probe: ActorRef) -> None:
        super().__init__()
        self.probe = probe

    def pre_start(self) -> None:
        self.probe.tell(("started", self.context.self))

    def post_restart(self, reason: Exception) -> None:
        self.probe.tell(("restarted in place", self.context.self))

    def receive(self, message: Any) -> None:
        if message == "stop":
            self.context.stop(self.context.self)
        elif message == "fail":
            raise RuntimeError("child failed")
        else:
            self.context.sender.tell(("echo", message))


def spawn_supervisor(
    system: ActorSystem, probe: TestProbe, options: BackoffOptions
) -> tuple[ActorRef, list[BackoffSupervisor]]:
    instances: list[BackoffSupervisor] = []

    def make() -> BackoffSupervisor:
        supervisor = BackoffSupervisor(lambda: Child(probe.ref), "child", options)
        instances.append(supervisor)
        return supervisor

    return system.spawn(make, "sup"), instances


async def next_start(probe: TestProbe) -> ActorRef:
    what, ref = await probe.receive()
    assert what == "started"
    return ref  # type: ignore[no-any-return]


async def test_the_backoff_supervisor_restarts_its_child_min_backoff_after_it_stops(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    sup, instances = spawn_supervisor(system, probe, BackoffOptions(0.5, 8.0, 0.0))
    first = await next_start(probe)
    assert first.path == "/user/sup/child"
    assert instances[0].child is first
    assert await sup.ask("hello") == ("echo", "hello")  # forwarded with the asker as sender
    sup.tell("stop")
    await expect_quiet(probe, clock, 0.25)
    assert instances[0].child is None
    await clock.advance(0.25)
    second = await next_start(probe)
    assert second is not first
    assert second.path == first.path
    assert not first.is_alive
    assert instances[0].restart_count == 1
    assert await sup.ask("again") == ("echo", "again")


async def test_restart_delays_grow_per_formula_and_reset_after_a_quiet_period(
    system: ActorSystem, clock: ManualClock, probe: TestProbe, logs: list[dict[str, Any]]
) -> None:
    options = BackoffOptions(1.0, 30.0, 0.0, reset_after=20.0)
    sup, instances = spawn_supervisor(system, probe, options)
    await next_start(probe)
    for delay in (1.0, 2.0, 4.0, 8.0):
        sup.tell("stop")
        await expect_quiet(probe, clock, delay - 0.5)  # not a moment earlier
        await clock.advance(0.5)
        await next_start(probe)
    scheduled = [e for e in logs if e["event"] == "backoff_restart_scheduled"]
    assert [(e["attempt"], e["delay"]) for e in scheduled] == [
        (1, 1.0),
        (2, 2.0),
        (3, 4.0),
        (4, 8.0),
    ]
    assert instances[0].restart_count == 4
    await clock.advance(19.5)
    assert instances[0].restart_count == 4
    await clock.advance(0.5)  # the child stayed up for reset_after: the count starts over
    assert instances[0].restart_count == 0
    sup.tell("stop")
    await clock.advance(1.0)
    await next_start(probe)
    scheduled = [e for e in logs if e["event"] == "backoff_restart_scheduled"]
    assert (scheduled[-1]["attempt"], scheduled[-1]["delay"]) == (1, 1.0)


async def test_the_delay_stops_growing_at_max_backoff(
    system: ActorSystem, clock: ManualClock, probe: TestProbe, logs: list[dict[str, Any]]
) -> None:
    sup, _ = spawn_supervisor(system, probe, BackoffOptions(2.0, 4.0, 0.0))
    await next_start(probe)
    for delay in (2.0, 4.0, 4.0):
        sup.tell("stop")
        await expect_quiet(probe, clock, delay - 0.25)
        await clock.advance(0.25)
        await next_start(probe)
    scheduled = [e for e in logs if e["event"] == "backoff_restart_scheduled"]
    assert [e["delay"] for e in scheduled] == [2.0, 4.0, 4.0]


async def test_the_backoff_supervisor_gives_up_after_max_retries(
    system: ActorSystem, clock: ManualClock, probe: TestProbe, logs: list[dict[str, Any]]
) -> None:
    sup, _ = spawn_supervisor(system, probe, BackoffOptions(1.0, 8.0, 0.0, max_retries=2))
    probe.watch(sup)
    await next_start(probe)
    for delay in (1.0, 2.0):
        sup.tell("stop")
        await clock.advance(delay)
        await next_start(probe)
    sup.tell("stop")
    await probe.expect_terminated(sup)
    assert [e["child"] for e in logs if e["event"] == "backoff_gave_up"] == ["child"]


async def test_messages_sent_while_the_child_is_down_go_to_dead_letters(
    system: ActorSystem, clock: ManualClock, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    sup, instances = spawn_supervisor(system, probe, BackoffOptions(1.0, 8.0, 0.0))
    child = await next_start(probe)
    probe.watch(child)
    sup.tell("stop")
    await probe.expect_terminated(child)
    await clock.advance(0.5)  # half-way through the backoff
    sup.tell("while down", probe.ref)
    await clock.advance(0)
    assert instances[0].child is None
    assert dead_letters == [DeadLetter("while down", probe.ref, sup)]
    await clock.advance(0.5)
    await next_start(probe)
    assert await sup.ask("after") == ("echo", "after")


async def test_reply_while_down_answers_the_sender_instead_of_dead_letters(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    options = BackoffOptions(1.0, 8.0, 0.0).with_reply_while_down("child is down")
    sup, _ = spawn_supervisor(system, probe, options)
    child = await next_start(probe)
    probe.watch(child)
    sup.tell("stop")
    await probe.expect_terminated(child)
    assert await sup.ask("anyone?") == "child is down"
    assert dead_letters == []


async def test_in_stop_mode_a_failing_child_is_restarted_in_place_by_normal_supervision(
    system: ActorSystem, probe: TestProbe
) -> None:
    sup, instances = spawn_supervisor(system, probe, BackoffOptions(1.0, 8.0, 0.0))
    child = await next_start(probe)
    sup.tell("fail")
    assert await probe.receive() == ("restarted in place", child)
    assert instances[0].child is child
    assert instances[0].restart_count == 0


async def test_in_failure_mode_a_failing_child_is_restarted_with_backoff(
    system: ActorSystem, clock: ManualClock, probe: TestProbe, logs: list[dict[str, Any]]
) -> None:
    options = BackoffOptions(1.0, 8.0, 0.0, on="failure")
    sup, instances = spawn_supervisor(system, probe, options)
    first = await next_start(probe)
    sup.tell("fail")
    await expect_quiet(probe, clock, 0.5)
    await clock.advance(0.5)
    second = await next_start(probe)  # a fresh child, not a restart in place
    assert second is not first
    assert instances[0].restart_count == 1
    scheduled = [e for e in logs if e["event"] == "backoff_restart_scheduled"]
    assert [(e["attempt"], e["delay"]) for e in scheduled] == [(1, 1.0)]


async def test_in_failure_mode_a_child_that_stops_by_itself_stops_the_supervisor(
    system: ActorSystem, probe: TestProbe
) -> None:
    sup, _ = spawn_supervisor(system, probe, BackoffOptions(1.0, 8.0, 0.0, on="failure"))
    probe.watch(sup)
    await next_start(probe)
    sup.tell("stop")
    await probe.expect_terminated(sup)


async def test_stopping_the_backoff_supervisor_stops_its_child(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    sup, _ = spawn_supervisor(system, probe, BackoffOptions(1.0, 8.0, 0.0))
    child = await next_start(probe)
    probe.watch(child)
    await system.stop(sup)
    assert await probe.receive() == Terminated(child)
    await expect_quiet(probe, clock, 60.0)  # no restart once the supervisor is gone
