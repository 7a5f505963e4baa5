"""The TestProbe users write their actor tests with."""

from __future__ import annotations

import pytest

from actorsys import ActorSystem, PoisonPill, Terminated
from actorsys.testing import TestProbe
from tests.actors._helpers import Echo, Forward


async def test_expect_message_returns_the_next_message_and_checks_it(
    system: ActorSystem, probe: TestProbe
) -> None:
    probe.ref.tell("a")
    probe.ref.tell({"b": 2})
    assert await probe.expect_message("a") == "a"
    assert await probe.expect_message() == {"b": 2}  # any message


async def test_expect_message_fails_on_a_different_message(
    system: ActorSystem, probe: TestProbe
) -> None:
    probe.ref.tell("actual")
    with pytest.raises(AssertionError, match=r"^/user/probe: expected 'wanted', got 'actual'$"):
        await probe.expect_message("wanted")


async def test_expect_message_fails_when_nothing_arrives_in_time(
    system: ActorSystem, probe: TestProbe
) -> None:
    with pytest.raises(AssertionError, match=r"^/user/probe: no message within 0.01 s$"):
        await probe.expect_message("never", timeout=0.01)


async def test_expect_message_type_checks_the_class(system: ActorSystem, probe: TestProbe) -> None:
    probe.ref.tell(42)
    assert await probe.expect_message_type(int) == 42
    probe.ref.tell("text")
    with pytest.raises(AssertionError, match=r"^/user/probe: expected a int, got 'text'$"):
        await probe.expect_message_type(int)


async def test_expect_no_message_passes_when_quiet_and_fails_when_something_arrives(
    system: ActorSystem, probe: TestProbe
) -> None:
    await probe.expect_no_message(0.01)
    probe.ref.tell("noise")
    with pytest.raises(AssertionError, match=r"^/user/probe: expected no message, got 'noise'$"):
        await probe.expect_no_message(0.01)


async def test_expect_terminated_needs_the_terminated_of_that_actor(
    system: ActorSystem, probe: TestProbe
) -> None:
    first = system.spawn(Echo, "first")
    second = system.spawn(Echo, "second")
    probe.watch(first)
    probe.watch(second)
    await system.stop(second)
    with pytest.raises(
        AssertionError,
        match=r"^/user/probe: expected Terminated\(/user/first\), got Terminated\(ref=ActorRef",
    ):
        await probe.expect_terminated(first)
    first.tell(PoisonPill)
    await probe.expect_terminated(first)


async def test_fish_for_message_skips_until_the_predicate_matches(
    system: ActorSystem, probe: TestProbe
) -> None:
    for n in range(5):
        probe.ref.tell(n)
    assert await probe.fish_for_message(lambda m: m > 2) == 3
    assert await probe.expect_message(4) == 4
    probe.ref.tell("x")
    with pytest.raises(AssertionError, match="no message within"):
        await probe.fish_for_message(lambda m: m == "y", timeout=0.02)


async def test_send_and_reply_let_the_probe_play_a_correspondent(
    system: ActorSystem, probe: TestProbe
) -> None:
    echo = system.spawn(Echo, "echo")
    probe.send(echo, "ping")
    assert await probe.expect_message("ping") == "ping"
    assert probe.last_sender is echo
    other = TestProbe(system, "other")
    forward = system.spawn(lambda: Forward(probe.ref))
    other.send(forward, "question")
    await probe.expect_message("question")
    assert probe.last_sender is forward
    probe.reply("answer")  # to the forwarder, which forwards to the probe again
    await probe.expect_message("answer")


async def test_reply_before_anything_arrived_is_an_assertion_error(
    system: ActorSystem, probe: TestProbe
) -> None:
    with pytest.raises(AssertionError, match=r"^/user/probe: nothing received yet"):
        probe.reply("hello?")


async def test_probes_can_be_named_or_anonymous(system: ActorSystem) -> None:
    anonymous = TestProbe(system)
    assert anonymous.ref.path.startswith("/user/$")
    assert TestProbe(system, "named").ref.path == "/user/named"
    anonymous.ref.tell(Terminated(anonymous.ref))  # not watched: dropped like in Akka
    await anonymous.expect_no_message(0.01)
