"""TestProbe's Akka-style expectations: several messages at once, any order, fishing, within
blocks, forwarding, and death watch with a timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from actorsys import ActorSystem
from actorsys.testing import ManualClock, TestProbe
from tests.actors._helpers import Echo, Silent


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def system(clock: ManualClock) -> AsyncIterator[ActorSystem]:
    async with ActorSystem("test", clock=clock) as system:
        yield system


async def test_receive_n_returns_the_next_n_messages_in_arrival_order(probe: TestProbe) -> None:
    for message in ("a", "b", "c", "d"):
        probe.ref.tell(message)
    assert await probe.receive_n(3) == ["a", "b", "c"]
    assert await probe.expect_message("d") == "d"


async def test_receive_n_fails_naming_what_arrived_when_fewer_come_in_time(
    probe: TestProbe,
) -> None:
    probe.ref.tell("only")
    with pytest.raises(
        AssertionError,
        match=r"^/user/probe: expected 2 messages within 0\.02 s, got 1: \['only'\]$",
    ):
        await probe.receive_n(2, timeout=0.02)


async def test_expect_message_all_of_accepts_the_messages_in_any_order(probe: TestProbe) -> None:
    for message in (3, 1, 2, 1):
        probe.ref.tell(message)
    assert await probe.expect_message_all_of(1, 1, 2, 3) == [3, 1, 2, 1]


async def test_expect_message_all_of_names_the_missing_and_the_unexpected_messages(
    probe: TestProbe,
) -> None:
    for message in ("a", "x", "b"):
        probe.ref.tell(message)
    with pytest.raises(
        AssertionError,
        match=(
            r"^/user/probe: expected all of \['a', 'b', 'c'\] in any order, got "
            r"\['a', 'x', 'b'\]: missing \['c'\], unexpected \['x'\]$"
        ),
    ):
        await probe.expect_message_all_of("a", "b", "c")


async def test_expect_message_all_of_fails_when_too_few_messages_arrive(probe: TestProbe) -> None:
    probe.ref.tell("a")
    with pytest.raises(
        AssertionError,
        match=(
            r"^/user/probe: expected 2 messages within 0\.02 s, got 1: \['a'\]; "
            r"expected all of \['a', 'b'\]$"
        ),
    ):
        await probe.expect_message_all_of("a", "b", timeout=0.02)


async def test_fish_for_message_failure_lists_the_messages_it_skipped(probe: TestProbe) -> None:
    for n in range(3):
        probe.ref.tell(n)
    with pytest.raises(
        AssertionError,
        match=(
            r"^/user/probe: no message within 0\.02 s satisfied the predicate; "
            r"skipped \[0, 1, 2\]$"
        ),
    ):
        await probe.fish_for_message(lambda message: message == 99, timeout=0.02)


async def test_within_passes_when_the_block_takes_between_min_and_max(
    probe: TestProbe, clock: ManualClock
) -> None:
    async with probe.within(1, 3):
        await clock.advance(2)
        probe.ref.tell("done")
        await probe.expect_message("done")
    async with probe.within(3):  # one bound: at most
        await clock.advance(3)


async def test_within_fails_when_the_block_takes_longer_than_max(
    probe: TestProbe, clock: ManualClock
) -> None:
    with pytest.raises(
        AssertionError,
        match=r"^/user/probe: the block took 4 s, more than the 3 s of within\(1, 3\)$",
    ):
        async with probe.within(1, 3):
            await clock.advance(4)


async def test_within_fails_when_the_block_ends_before_min(
    probe: TestProbe, clock: ManualClock
) -> None:
    with pytest.raises(
        AssertionError,
        match=r"^/user/probe: the block took 0\.5 s, less than the 1 s of within\(1, 3\)$",
    ):
        async with probe.within(1, 3):
            await clock.advance(0.5)


async def test_expectations_inside_within_wait_at_most_the_time_left(
    probe: TestProbe, clock: ManualClock
) -> None:
    async with probe.within(1.02):
        await clock.advance(1)
        assert probe.remaining == pytest.approx(0.02)
        with pytest.raises(AssertionError, match=r"^/user/probe: no message within 0\.02 s$"):
            await probe.expect_message()


async def test_a_nested_within_block_ends_no_later_than_the_block_around_it(
    probe: TestProbe, clock: ManualClock
) -> None:
    async with probe.within(5):
        await clock.advance(4)
        async with probe.within(10):
            assert probe.remaining == pytest.approx(1)
        assert probe.remaining == pytest.approx(1)
    with pytest.raises(AssertionError, match=r"^/user/probe: remaining is only known inside"):
        _ = probe.remaining


async def test_a_within_block_that_raises_passes_its_error_on_unchecked(
    probe: TestProbe, clock: ManualClock
) -> None:
    with pytest.raises(KeyError):
        async with probe.within(1, 3):
            raise KeyError("from the block")


async def test_within_bounds_are_checked(probe: TestProbe) -> None:
    with pytest.raises(ValueError, match=r"^within needs 0 <= min <= max, got within\(3, 1\)$"):
        async with probe.within(3, 1):
            pass


async def test_forward_passes_the_last_message_on_with_its_original_sender(
    system: ActorSystem, probe: TestProbe
) -> None:
    client = TestProbe(system, "client")
    echo = system.spawn(Echo, "echo")
    client.send(probe.ref, "question")
    await probe.expect_message("question")
    probe.forward(echo)  # echo answers the client, not the probe
    assert await client.expect_message("question") == "question"
    assert client.last_sender is echo
    probe.forward(echo, "another")
    assert await client.expect_message("another") == "another"
    await probe.expect_no_message(0.01)


async def test_forward_before_anything_arrived_is_an_assertion_error(
    system: ActorSystem, probe: TestProbe
) -> None:
    with pytest.raises(AssertionError, match=r"^/user/probe: nothing received yet, nothing to"):
        probe.forward(system.spawn(Echo))


async def test_expect_terminated_fails_after_its_timeout_with_a_hint_to_watch(
    system: ActorSystem, probe: TestProbe
) -> None:
    silent = system.spawn(Silent, "silent")
    with pytest.raises(
        AssertionError,
        match=(
            r"^/user/probe: no Terminated\(/user/silent\) within 0\.02 s "
            r"\(did the probe watch it\?\)$"
        ),
    ):
        await probe.expect_terminated(silent, timeout=0.02)
    probe.watch(silent)
    await system.stop(silent)
    await probe.expect_terminated(silent, timeout=1)
