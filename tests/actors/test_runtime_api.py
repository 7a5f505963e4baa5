"""actorsys.runtime: the API for libraries built on actorsys, and the rule that they use it
instead of the runtime's private names."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from actorsys import (
    Actor,
    ActorDeadError,
    ActorSystem,
    ActorSystemError,
    AskTimeoutError,
    DeadLetter,
    runtime,
)
from actorsys.testing import ManualClock, TestProbe

ROOT = Path(__file__).resolve().parents[2]

PRIVATE_REACH = re.compile(
    r"\bactorsys\._[a-z]|\bcontext\._[a-z]|\bsystem\._[a-z]|\._current\b|\._prepend\b"
)


@pytest.mark.parametrize("package", ["persistence", "examples", "cluster"])
def test_libraries_built_on_actorsys_use_only_its_public_and_runtime_names(package: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE_REACH.search(line.split("#", 1)[0])
    ]
    assert found == []


class Gate(Actor):
    """Holds messages back while closed; "open" puts them in front of the mailbox, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[runtime.Envelope] | None = []

    def receive(self, message: Any) -> None:
        if message == "envelope":
            self.context.sender.tell(runtime.current_envelope(self.context))
        elif message == "open":
            held, self.held = self.held or [], None
            runtime.prepend(self.context, held)
        elif self.held is not None:
            self.held.append(runtime.current_envelope(self.context))
        else:
            self.context.sender.tell(("got", message))


async def test_the_current_envelope_is_the_message_and_its_sender(system: ActorSystem) -> None:
    probe = TestProbe(system)
    system.spawn(Gate).tell("envelope", probe.ref)
    await probe.expect_message(("envelope", probe.ref))


async def test_prepended_envelopes_run_before_later_mail_in_order_with_their_senders(
    system: ActorSystem,
) -> None:
    first, second, later = TestProbe(system), TestProbe(system), TestProbe(system)
    ref = system.spawn(Gate)
    ref.tell(1, first.ref)
    ref.tell(2, second.ref)
    ref.tell("open")
    ref.tell(3, later.ref)
    got = []
    for probe in (first, second, later):
        got.append(await probe.receive())
    assert got == [("got", 1), ("got", 2), ("got", 3)]


class Deferred(Actor):
    """Answers an earlier message later, as that message's sender sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: runtime.Envelope | None = None

    def receive(self, message: Any) -> None:
        if message == "keep":
            self.kept = runtime.current_envelope(self.context)
        elif message == "answer":
            assert self.kept is not None
            previous = runtime.current_envelope(self.context)
            runtime.set_current_envelope(self.context, self.kept)
            try:
                self.context.sender.tell("answered later")
            finally:
                runtime.set_current_envelope(self.context, previous)
            self.context.sender.tell("answered now")


async def test_a_handler_run_for_an_earlier_message_answers_that_messages_sender(
    system: ActorSystem,
) -> None:
    early, late = TestProbe(system), TestProbe(system)
    ref = system.spawn(Deferred)
    ref.tell("keep", early.ref)
    ref.tell("answer", late.ref)
    await early.expect_message("answered later")
    await late.expect_message("answered now")


class Failing(Actor):
    def receive(self, message: Any) -> None:
        sender = self.context.sender
        if message == "refuse":
            self.context.sender.tell(runtime.fail_ask(sender, LookupError("no such entity")))
        elif message == "stop":
            runtime.stop_for(self.context, LookupError("the shard moved"))
            self.context.sender.tell(runtime.is_stopping(self.context))


async def test_fail_ask_fails_an_ask_and_leaves_other_senders_alone(system: ActorSystem) -> None:
    ref = system.spawn(Failing)
    with pytest.raises(LookupError, match="no such entity"):
        await ref.ask("refuse", timeout=5)
    probe = TestProbe(system)
    ref.tell("refuse", probe.ref)
    await probe.expect_message(False)


async def test_stop_for_stops_the_actor_and_later_asks_name_the_cause(
    system: ActorSystem,
) -> None:
    probe = TestProbe(system)
    ref = system.spawn(Failing, "failing")
    ref.tell("stop", probe.ref)
    await probe.expect_message(True)  # stopping as soon as stop_for was called
    await system.stop(ref)
    with pytest.raises(ActorDeadError, match=r"^actor /user/failing has stopped: LookupError"):
        ref.ask("stop", timeout=5)


async def test_a_published_dead_letter_reaches_the_event_stream(system: ActorSystem) -> None:
    probe = TestProbe(system)
    system.event_stream.subscribe(probe.ref, DeadLetter)
    ref = system.spawn(Failing)
    runtime.publish_dead_letter(system, "lost", None, ref)
    await probe.expect_message(DeadLetter("lost", None, ref))


async def test_shutdown_waits_for_system_tasks_and_logs_their_failures(
    logs: list[dict[str, Any]],
) -> None:
    finished: list[str] = []

    async def work(name: str, fail: bool) -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        finished.append(name)
        if fail:
            raise RuntimeError(f"{name} broke")

    async with ActorSystem("tasks") as system:
        assert runtime.event_loop(system) is asyncio.get_running_loop()
        runtime.spawn_system_task(system, work("flush", False), name="flush")
        runtime.spawn_system_task(system, work("compact", True), name="compact")
    assert sorted(finished) == ["compact", "flush"]
    assert [(e["event"], e["task"]) for e in logs if e["event"] == "system_task_failed"] == [
        ("system_task_failed", "compact")
    ]


async def test_a_system_that_never_started_has_no_loop_and_takes_no_tasks() -> None:
    system = ActorSystem("idle")
    with pytest.raises(ActorSystemError, match="was never started"):
        runtime.event_loop(system)

    async def nothing() -> None:
        return None

    with pytest.raises(ActorSystemError, match="was never started"):
        runtime.spawn_system_task(system, nothing())


class Echo(Actor):
    """Answers its sender with ("echo", message), or raises for "boom"."""

    def receive(self, message: Any) -> None:
        if message == "boom":
            raise ValueError("boom")
        self.context.sender.tell(("echo", message))


async def test_a_remote_ref_hands_tells_to_its_sender_function_and_serves_as_a_sender(
    system: ActorSystem,
) -> None:
    sent: list[tuple[Any, Any]] = []
    remote = runtime.RemoteRef(system, "n2:/user/client", lambda m, s: sent.append((m, s)))
    probe = TestProbe(system)
    remote.tell("hello", probe.ref)
    assert sent == [("hello", probe.ref)]
    system.spawn(Echo).tell("hi", remote)
    await asyncio.sleep(0)
    await probe.expect_no_message(0.0)
    assert sent[1] == (("echo", "hi"), None)
    assert (remote.path, remote.name, remote.is_alive) == ("n2:/user/client", "client", True)
    assert remote == runtime.RemoteRef(system, "n2:/user/client", sent.append)
    assert len({remote, runtime.RemoteRef(system, "n2:/user/client", sent.append)}) == 1
    assert repr(remote) == "RemoteRef(n2:/user/client)"
    with pytest.raises(ActorSystemError, match="is on another node: its mailbox is not here"):
        remote.mailbox_stats()


async def test_an_ask_to_a_remote_ref_completes_with_the_reply_sent_to_its_reply_address(
    system: ActorSystem, clock: ManualClock
) -> None:
    sent: list[tuple[Any, Any]] = []
    remote = runtime.RemoteRef(system, "n2:/user/x", lambda m, s: sent.append((m, s)))
    answer = remote.ask("question", timeout=3.0)
    [(message, reply_to)] = sent
    assert message == "question"
    assert runtime.promise_future(reply_to) is answer
    reply_to.tell("answer")
    assert await answer == "answer"
    late = remote.ask("again", timeout=3.0)
    await clock.advance(3.0)
    with pytest.raises(AskTimeoutError) as raised:
        await late
    assert str(raised.value) == str(AskTimeoutError("n2:/user/x", 3.0))


async def test_a_new_promise_relays_a_reply_or_the_failure_of_an_asked_actor(
    system: ActorSystem, clock: ManualClock
) -> None:
    echo = system.spawn(Echo, "echo")
    promise, reply = runtime.new_promise(echo, 5.0)
    echo.tell("ping", promise)
    assert await reply == ("echo", "ping")
    promise, failed = runtime.new_promise(echo, 5.0)
    echo.tell("boom", promise)
    with pytest.raises(ValueError, match=r"^boom$"):
        await failed
    promise, unanswered = runtime.new_promise(echo, 5.0)
    await clock.advance(5.0)
    with pytest.raises(AskTimeoutError) as raised:
        await unanswered
    assert str(raised.value) == str(AskTimeoutError("/user/echo", 5.0))
    assert runtime.promise_future(echo) is None
    with pytest.raises(ValueError, match="ask timeout must be positive, got 0"):
        runtime.new_promise(echo, 0)


async def test_before_stop_hooks_run_when_shutdown_begins_while_the_actors_still_run(
    clock: ManualClock,
) -> None:
    seen: list[object] = []
    system = await ActorSystem("hooks", clock=clock).start()
    echo = system.spawn(Echo, "echo")

    async def hook() -> None:
        seen.append(await echo.ask("still here"))

    async def failing() -> None:
        raise RuntimeError("hook failed")

    runtime.before_stop(system, failing)
    runtime.before_stop(system, hook)
    await system.shutdown()
    assert seen == [("echo", "still here")]
    assert not echo.is_alive
