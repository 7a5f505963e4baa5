"""A journal that stops answering neither hangs an actor nor the shutdown: recovery times out,
a stop cancels a recovery in progress, and closing persistence is bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, MutableMapping
from typing import Any

import pytest

from actorsys import ActorDeadError, ActorInitializationError, ActorSystem
from actorsys.testing import ManualClock, TestProbe, settle
from persistence import (
    Persistence,
    PersistenceConfigError,
    RecoveryTimedOutError,
)
from persistence.journal import AtomicWrite, InMemoryJournal, Journal, PersistentRecord
from persistence.snapshot import InMemorySnapshotStore
from tests.persistence._actors import (
    Append,
    Appended,
    Get,
    ItemLog,
    Recovered,
    RecoveryFailed,
    Replayed,
    Snapshot,
    Stored,
    serializer,
    start_log,
)
from tests.persistence._journals import (
    ControlledJournal,
    PagedJournal,
    StuckJournal,
    StuckSnapshotStore,
)

Logs = list[MutableMapping[str, Any]]

HANG_GUARD = 10.0
"""Seconds after which a stop or shutdown that should finish fails the test instead of hanging
the suite (the per-test timeout cannot interrupt uvloop)."""


class Watched(ItemLog):
    """Tells its observer when ``post_stop`` runs."""

    def post_stop(self) -> None:
        self.observer.tell("post_stop")


def persistence(journal: Journal, **options: Any) -> Persistence:
    return Persistence(journal, serializer=serializer, **options)


async def write_events(journal: Journal, persistence_id: str, *items: str) -> None:
    records = [
        PersistentRecord(persistence_id, sequence_nr, *serializer.encode(Appended(item)))
        for sequence_nr, item in enumerate(items, start=1)
    ]
    assert await journal.write([AtomicWrite(records)]) == [None]


def logged(logs: Logs, event: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


# ---------------------------------------------------------------------- recovery timeout


async def test_a_recovery_without_progress_for_30_seconds_fails_with_recovery_timed_out(
    logs: Logs,
) -> None:
    clock = ManualClock()
    journal = StuckJournal(InMemoryJournal(), {"highest_sequence_nr"})
    async with ActorSystem("stuck", clock=clock, extensions=[persistence(journal)]) as system:
        probe = TestProbe(system)
        ref = system.spawn(lambda: ItemLog("stuck", probe.ref))
        probe.watch(ref)
        await journal.wait_for_call("highest_sequence_nr")

        await clock.advance(29.9)
        assert logged(logs, "recovery_failed") == []
        await clock.advance(0.1)

        failed = await probe.expect_message_type(RecoveryFailed)
        assert type(failed.cause) is RecoveryTimedOutError
        assert str(failed.cause) == (
            "recovery of persistence_id='stuck' timed out: no progress within 30 s while waiting "
            "for the highest sequence number; check the journal and the snapshot store, or raise "
            "recovery_timeout"
        )
        assert failed.message is None
        await probe.expect_terminated(ref)


async def test_a_slow_replay_that_keeps_making_progress_is_not_timed_out() -> None:
    clock = ManualClock()
    journal = PagedJournal(InMemoryJournal())
    await write_events(journal, "slow", "a", "b", "c")
    async with ActorSystem("slow", clock=clock, extensions=[persistence(journal)]) as system:
        probe = TestProbe(system)
        system.spawn(lambda: ItemLog("slow", probe.ref))

        for sequence_nr, item in enumerate("abc", start=1):  # 20 s between pages, 60 s in all
            await clock.advance(20)
            journal.release_page()
            assert await probe.receive() == Replayed(item, sequence_nr, system.dead_letters)

        assert await probe.receive() == Recovered(("a", "b", "c"), 3)


async def test_the_recovery_timeout_is_set_per_actor_and_names_the_events_it_waited_for() -> None:
    class Impatient(ItemLog):
        recovery_timeout = 5.0

    clock = ManualClock()
    journal = PagedJournal(InMemoryJournal())
    await write_events(journal, "impatient", "a", "b")
    async with ActorSystem("slow", clock=clock, extensions=[persistence(journal)]) as system:
        probe = TestProbe(system)
        ref = system.spawn(lambda: Impatient("impatient", probe.ref))
        probe.watch(ref)
        journal.release_page()
        await probe.expect_message(Replayed("a", 1, system.dead_letters))

        await clock.advance(5)

        failed = await probe.expect_message_type(RecoveryFailed)
        assert type(failed.cause) is RecoveryTimedOutError
        assert str(failed.cause) == (
            "recovery of persistence_id='impatient' timed out: no progress within 5 s while "
            "waiting for events after sequence_nr=1; check the journal and the snapshot store, "
            "or raise recovery_timeout"
        )
        await probe.expect_terminated(ref)


@pytest.mark.parametrize("seconds", [0, -1.0, "30", True])
async def test_a_recovery_timeout_that_is_not_a_positive_number_fails_the_start(
    logs: Logs, seconds: object
) -> None:
    class Misconfigured(ItemLog):
        recovery_timeout = seconds  # type: ignore[assignment]

    async with ActorSystem("misconfigured", extensions=[persistence(InMemoryJournal())]) as system:
        probe = TestProbe(system)
        ref = system.spawn(lambda: Misconfigured("misconfigured", probe.ref))
        probe.watch(ref)
        await probe.expect_terminated(ref)

    [entry] = logged(logs, "actor_failed")
    error = entry["exc_info"]
    assert isinstance(error, ActorInitializationError)
    assert type(error.cause) is PersistenceConfigError
    assert str(error.cause) == (
        "Misconfigured.recovery_timeout must be a positive number of seconds or None (no "
        f"timeout), got {seconds!r}"
    )


# ---------------------------------------------------------------------- stop during recovery


class Fragile(Watched):
    """Fails on ``"fail"`` (and is restarted by the default strategy)."""

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if command == "fail":
            raise RuntimeError("failing on purpose")
        return super().receive_command(command)


@pytest.mark.parametrize("when", ["start", "restart"])
async def test_stopping_an_actor_whose_recovery_hangs_stops_it_at_once(when: str) -> None:
    journal = StuckJournal(InMemoryJournal(), set())
    clock = ManualClock()  # never advanced: no recovery timeout comes to the rescue
    async with asyncio.timeout(HANG_GUARD):  # a failure must not hang the suite
        async with ActorSystem("stuck", clock=clock, extensions=[persistence(journal)]) as system:
            probe = TestProbe(system)
            if when == "start":
                journal.stuck.add("replay")
                ref = system.spawn(lambda: Fragile("stuck", probe.ref))
            else:
                ref = system.spawn(lambda: Fragile("stuck", probe.ref))
                await probe.expect_message_type(Recovered)
                journal.stuck.add("replay")
                ref.tell("fail")  # the restarted incarnation recovers again
                assert await probe.receive() == "post_stop"  # the failed one's pre_restart
            probe.watch(ref)
            await journal.wait_for_call("replay", 1 if when == "start" else 2)
            asking = ref.ask(Get(), timeout=60)

            stopping = system.stop(ref)

            assert await probe.receive() == "post_stop"
            await probe.expect_terminated(ref)
            await stopping
            with pytest.raises(ActorDeadError) as caught:
                await asking
            assert str(caught.value) == f"actor {ref.path} has stopped"


async def test_an_actor_stopped_before_its_recovery_began_never_asks_the_journal() -> None:
    journal = StuckJournal(InMemoryJournal(), {"highest_sequence_nr"})
    clock = ManualClock()
    async with asyncio.timeout(HANG_GUARD):  # a failure must not hang the suite
        async with ActorSystem("stuck", clock=clock, extensions=[persistence(journal)]) as system:
            probe = TestProbe(system)
            ref = system.spawn(lambda: Watched("early", probe.ref))
            probe.watch(ref)

            stopping = system.stop(ref)

            assert await probe.receive() == "post_stop"
            await probe.expect_terminated(ref)
            await stopping
            assert journal.calls == []


async def test_stopping_a_recovering_actor_leaves_the_writes_of_other_actors_in_flight(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    writer, _ = await start_log(system, probe, "writer")
    journal.hold_writes()
    probe.send(writer, Append("a"))
    await journal.wait_for_write_calls(1)
    recovering = system.spawn(lambda: ItemLog("recovering", probe.ref))
    await settle()  # its recovery now waits for the writes in flight

    stopping = system.stop(recovering)
    journal.release_writes()

    assert await probe.receive() == Stored("a", 1)
    await stopping


# ---------------------------------------------------------------------- bounded close


async def test_shutdown_finishes_when_a_recovery_hangs_and_the_journal_close_never_returns(
    logs: Logs,
) -> None:
    journal = StuckJournal(InMemoryJournal(), {"highest_sequence_nr", "close"})
    clock = ManualClock()  # never advanced: no recovery timeout comes to the rescue
    async with asyncio.timeout(HANG_GUARD):  # a failure must not hang the suite
        async with ActorSystem(
            "stuck", clock=clock, extensions=[persistence(journal, close_timeout=0.01)]
        ) as system:
            probe = TestProbe(system)
            system.spawn(lambda: Watched("stuck", probe.ref))
            await journal.wait_for_call("highest_sequence_nr")
            # leaving the block shuts the system down

    assert not system.is_running
    assert logged(logs, "persistence_close_abandoned") == [
        {
            "event": "persistence_close_abandoned",
            "log_level": "warning",
            "step": "journal close",
            "resource": repr(journal),
            "close_timeout": 0.01,
        }
    ]


async def test_shutdown_abandons_writes_in_flight_that_never_finish_and_names_their_ids(
    logs: Logs,
) -> None:
    journal = StuckJournal(InMemoryJournal(), {"write"})
    async with asyncio.timeout(HANG_GUARD):  # a failure must not hang the suite
        async with ActorSystem(
            "stuck", extensions=[persistence(journal, close_timeout=0.01)]
        ) as system:
            probe = TestProbe(system)
            ref, _ = await start_log(system, probe, "stuck-writer")
            probe.send(ref, Append("a"))
            await journal.wait_for_call("write")

    assert journal.calls[-1] == "close"
    assert logged(logs, "persistence_close_abandoned") == [
        {
            "event": "persistence_close_abandoned",
            "log_level": "warning",
            "step": "writes in flight",
            "tasks": 1,
            "persistence_ids": ["stuck-writer"],
            "close_timeout": 0.01,
        }
    ]


@pytest.mark.parametrize("close_timeout", [0, -1.0])
def test_a_close_timeout_that_is_not_positive_is_refused(close_timeout: float) -> None:
    with pytest.raises(PersistenceConfigError) as caught:
        persistence(InMemoryJournal(), close_timeout=close_timeout)
    assert str(caught.value) == (
        f"close_timeout must be a positive number of seconds, got {close_timeout!r}"
    )


async def test_shutdown_abandons_a_snapshot_save_that_never_finishes_without_a_callback_error(
    logs: Logs, caplog: pytest.LogCaptureFixture
) -> None:
    store = StuckSnapshotStore(InMemorySnapshotStore())
    async with asyncio.timeout(HANG_GUARD):  # a failure must not hang the suite
        async with ActorSystem(
            "stuck",
            extensions=[
                Persistence(InMemoryJournal(), store, serializer=serializer, close_timeout=0.01)
            ],
        ) as system:
            probe = TestProbe(system)
            ref, _ = await start_log(system, probe, "snapper")
            probe.send(ref, Snapshot())
            await store.saving.wait()
        await settle()  # the abandoned save's cancellation runs its callbacks

    assert logged(logs, "persistence_close_abandoned") == [
        {
            "event": "persistence_close_abandoned",
            "log_level": "warning",
            "step": "writes in flight",
            "tasks": 1,
            "persistence_ids": ["snapper"],
            "close_timeout": 0.01,
        }
    ]
    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []
