"""A projection's handler recovery strategy: stop (the default), skip the envelope, or retry
with backoff and then stop or skip. Backoff waits go through an injected sleep."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from persistence.journal import InMemoryJournal
from persistence.query import (
    EventEnvelope,
    EventQueries,
    HandlerRecovery,
    InMemoryOffsetStore,
    Projection,
    ProjectionStoppedError,
)
from tests._query_support import POLL, Recorder, record, serializer, write

Logs = list[MutableMapping[str, Any]]


class Flaky(Recorder):
    """Fails ``failures`` times on the envelope at ``offset`` (every time if None), then works."""

    def __init__(self, offset: int, failures: int | None) -> None:
        super().__init__()
        self.offset = offset
        self.failures = failures
        self.calls = 0

    def __call__(self, envelope: EventEnvelope) -> None:
        if envelope.offset == self.offset:
            self.calls += 1
            if self.failures is None or self.calls <= self.failures:
                raise RuntimeError(f"attempt {self.calls} failed")
        self.handled.append(envelope)


class Sleeps:
    """An injected sleep: records each backoff and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def journal() -> Any:
    journal = InMemoryJournal()
    for seq in range(1, 4):
        await write(journal, record("a", seq, "t"))  # offsets 1, 2, 3
    yield journal
    await journal.close()


@pytest.fixture
def queries(journal: Any) -> EventQueries:
    return EventQueries(journal, serializer, poll_interval=POLL)


def events(logs: Logs, name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


async def test_retry_calls_the_handler_again_after_each_backoff_until_it_succeeds(
    queries: EventQueries, logs: Logs
) -> None:
    handler = Flaky(offset=2, failures=2)
    sleeps = Sleeps()
    strategy = HandlerRecovery.retry(3, min_backoff=0.5, max_backoff=1.5)
    store = InMemoryOffsetStore()

    async with Projection(
        "p", queries, "t", handler, store, recovery_strategy=strategy, sleep=sleeps
    ) as projection:
        await projection.caught_up()

    assert handler.offsets == [1, 2, 3]
    assert sleeps.delays == [0.5, 1.0]
    assert await store.load("p") == 3
    retries = events(logs, "projection_handler_retry")
    assert [(e["attempt"], e["retry_in"], e["log_level"]) for e in retries] == [
        (1, 0.5, "warning"),
        (2, 1.0, "warning"),
    ]
    assert retries[0]["error"] == "RuntimeError('attempt 1 failed')"
    assert (retries[0]["persistence_id"], retries[0]["sequence_nr"], retries[0]["offset"]) == (
        "a",
        2,
        2,
    )


async def test_when_retries_run_out_the_projection_stops_and_stop_raises_the_handler_error(
    queries: EventQueries, logs: Logs
) -> None:
    handler = Flaky(offset=2, failures=None)
    sleeps = Sleeps()
    store = InMemoryOffsetStore()
    projection = Projection(
        "p",
        queries,
        "t",
        handler,
        store,
        recovery_strategy=HandlerRecovery.retry(2),
        sleep=sleeps,
    )

    await projection.start()
    with pytest.raises(ProjectionStoppedError) as stopped:
        await projection.caught_up()
    assert str(stopped.value) == (
        "projection 'p' stopped before catching up with ordering 3 (offset 1): "
        "RuntimeError('attempt 3 failed')"
    )
    assert isinstance(stopped.value.__cause__, RuntimeError)
    with pytest.raises(RuntimeError, match=r"^attempt 3 failed$"):
        await projection.stop()

    assert handler.calls == 3
    assert sleeps.delays == [0.1, 0.2]
    assert await store.load("p") == 1
    [failed] = events(logs, "projection_failed")
    assert failed["log_level"] == "error"


async def test_retry_then_skip_skips_the_envelope_after_the_last_retry(
    queries: EventQueries, logs: Logs
) -> None:
    handler = Flaky(offset=2, failures=None)
    sleeps = Sleeps()
    strategy = HandlerRecovery.retry(1).then_skip()
    store = InMemoryOffsetStore()

    async with Projection(
        "p", queries, "t", handler, store, recovery_strategy=strategy, sleep=sleeps
    ) as projection:
        await projection.caught_up()

    assert handler.offsets == [1, 3]
    assert sleeps.delays == [0.1]
    assert await store.load("p") == 3
    [skipped] = events(logs, "projection_envelope_skipped")
    assert skipped["log_level"] == "warning"
    assert (skipped["offset"], skipped["attempts"], skipped["error"]) == (
        2,
        2,
        "RuntimeError('attempt 2 failed')",
    )


async def test_skip_goes_on_with_the_next_envelope_at_once(
    queries: EventQueries, logs: Logs
) -> None:
    handler = Flaky(offset=2, failures=None)
    sleeps = Sleeps()

    async with Projection(
        "p",
        queries,
        "t",
        handler,
        InMemoryOffsetStore(),
        recovery_strategy=HandlerRecovery.skip(),
        sleep=sleeps,
    ) as projection:
        await projection.caught_up()
        assert projection.is_running

    assert handler.offsets == [1, 3]
    assert handler.calls == 1
    assert sleeps.delays == []
    assert len(events(logs, "projection_envelope_skipped")) == 1


async def test_stop_is_the_default_and_retries_nothing(queries: EventQueries) -> None:
    handler = Flaky(offset=1, failures=1)
    sleeps = Sleeps()
    projection = Projection("p", queries, "t", handler, InMemoryOffsetStore(), sleep=sleeps)
    assert projection.recovery_strategy == HandlerRecovery.stop()

    await projection.start()
    with pytest.raises(ProjectionStoppedError):
        await projection.caught_up()
    with pytest.raises(RuntimeError, match=r"^attempt 1 failed$"):
        await projection.stop()
    assert handler.calls == 1
    assert sleeps.delays == []


async def test_stop_during_a_backoff_wait_ends_it_and_leaves_the_event_for_the_next_run(
    queries: EventQueries,
) -> None:
    handler = Flaky(offset=2, failures=None)
    waiting = asyncio.Event()

    async def sleep_forever(delay: float) -> None:
        waiting.set()
        await asyncio.Event().wait()

    store = InMemoryOffsetStore()
    projection = Projection(
        "p",
        queries,
        "t",
        handler,
        store,
        recovery_strategy=HandlerRecovery.retry(5),
        sleep=sleep_forever,
    )
    await projection.start()
    await asyncio.wait_for(waiting.wait(), 10)
    await asyncio.wait_for(projection.stop(), 10)  # does not wait out the backoff

    assert await store.load("p") == 1
    again = Recorder()
    async with Projection("p", queries, "t", again, store) as restarted:
        await restarted.caught_up()
    assert again.offsets == [2, 3]


async def test_the_default_sleep_is_asyncio_sleep(queries: EventQueries) -> None:
    handler = Flaky(offset=2, failures=1)
    strategy = HandlerRecovery.retry(1, min_backoff=0, max_backoff=0)
    async with Projection(
        "p", queries, "t", handler, InMemoryOffsetStore(), recovery_strategy=strategy
    ) as projection:
        await projection.caught_up()
    assert handler.offsets == [1, 2, 3]


def test_backoff_doubles_from_min_backoff_up_to_max_backoff() -> None:
    strategy = HandlerRecovery.retry(5, min_backoff=1, max_backoff=5)
    assert [strategy.delay(attempt) for attempt in range(5)] == [1, 2, 4, 5, 5]


def test_strategies_are_values_built_from_each_other() -> None:
    retry = HandlerRecovery.retry(3, min_backoff=0.5, max_backoff=4)
    assert retry == HandlerRecovery(3, "stop", 0.5, 4)
    assert retry.then_skip() == HandlerRecovery(3, "skip", 0.5, 4)
    assert retry.then_skip().then_stop() == retry
    assert HandlerRecovery.skip() == HandlerRecovery(0, "skip")
    assert HandlerRecovery.stop() == HandlerRecovery()


def test_strategy_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^retries must be >= 0, got -1$"):
        HandlerRecovery.retry(-1)
    with pytest.raises(
        ValueError,
        match=r"^backoff needs 0 <= min_backoff <= max_backoff, got min_backoff=2, max_backoff=1$",
    ):
        HandlerRecovery.retry(1, min_backoff=2, max_backoff=1)
    with pytest.raises(ValueError, match=r"^then must be 'stop' or 'skip', got 'resume'$"):
        HandlerRecovery(1, "resume")  # type: ignore[arg-type]
