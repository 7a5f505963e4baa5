"""expect_logged: Akka's EventFilter for structlog events (the library's logs), and the
capture_logs helper re-exported from structlog."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest

from actorsys import Actor, ActorSystem
from actorsys.testing import capture_logs, expect_logged


class Worker(Actor):
    def receive(self, message: Any) -> None:
        if message == "boom":
            raise RuntimeError("boom")


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("test") as system:
        yield system


async def test_async_with_waits_for_an_event_logged_after_the_block(system: ActorSystem) -> None:
    worker = system.spawn(Worker, "worker")
    async with expect_logged("error", "actor_failed", actor_path="/user/worker") as expectation:
        worker.tell("boom")  # handled, and logged, only after the block's body returned
    [entry] = expectation.matched
    assert entry["error"] == "RuntimeError('boom')"
    assert entry["log_level"] == "error"


async def test_with_checks_the_events_logged_inside_the_block(system: ActorSystem) -> None:
    worker = system.spawn(Worker, "worker")
    await system.stop(worker)
    with expect_logged("info", "dead_letter", recipient="/user/worker", message="'late'"):
        worker.tell("late")


async def test_a_missing_event_fails_listing_what_was_logged_at_that_level(
    system: ActorSystem,
) -> None:
    worker = system.spawn(Worker, "worker")
    with pytest.raises(
        AssertionError,
        match=(
            r"^expected 1 error event\(s\) 'actor_failed' actor_path='/user/other' to be "
            r"logged, got 0; error events logged during the block: actor_failed$"
        ),
    ):
        async with expect_logged("error", "actor_failed", actor_path="/user/other", timeout=0.05):
            worker.tell("boom")


async def test_more_occurrences_than_expected_fail(system: ActorSystem) -> None:
    worker = system.spawn(Worker, "worker")

    async def fail_twice() -> None:
        async with expect_logged("error", "actor_failed"):
            worker.tell("boom")
            worker.tell("boom")

    with pytest.raises(
        AssertionError,
        match=r"^expected 1 error event\(s\) 'actor_failed' to be logged, got 2; ",
    ):
        await fail_twice()


async def test_occurrences_none_accepts_any_positive_count_and_zero_asserts_silence(
    system: ActorSystem,
) -> None:
    worker = system.spawn(Worker, "worker")
    async with expect_logged("error", "actor_failed", occurrences=None) as expectation:
        worker.tell("boom")
        worker.tell("boom")
    assert len(expectation.matched) == 2
    async with expect_logged("error", occurrences=0):
        worker.tell("fine")


async def test_expected_events_still_reach_the_tests_own_log_capture(
    system: ActorSystem, logs: list[MutableMapping[str, Any]]
) -> None:
    worker = system.spawn(Worker, "worker")
    async with expect_logged("error", "actor_failed"):
        worker.tell("boom")
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == ["actor_failed"]


def test_capture_logs_is_structlogs_and_collects_library_events() -> None:
    from structlog.testing import capture_logs as structlogs

    assert capture_logs is structlogs


def test_an_unknown_level_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^level must be one of debug, info, warning, error, "):
        expect_logged("warn")


def test_expect_logged_without_structlog_configured_says_how_to_capture_logs() -> None:
    code = textwrap.dedent(
        """
        from actorsys.testing import expect_logged
        try:
            with expect_logged("warning", "anything"):
                pass
        except RuntimeError as error:
            print(error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.startswith("expect_logged needs structlog configured")
    assert "`with capture_logs():`" in result.stdout
