"""actorsys.runtime: the API for libraries built on actorsys, and the rule that they use it
instead of the runtime's private names."""

from __future__ import annotations

import asyncio
import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest

from actorsys import (
    Actor,
    ActorDeadError,
    ActorRef,
    ActorSystem,
    ActorSystemError,
    AskTimeoutError,
    DeadLetter,
    runtime,
)
from actorsys.testing import ManualClock, TestProbe, settle

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


class Turns(Actor):
    """Records what it handles (``"seen?"`` answers the record), with the sender; ``"wait"``
    awaits ``gate``, ``"keep"`` keeps its envelope unanswered, ``"fail"`` raises."""

    def __init__(self, gate: asyncio.Future[None], observer: ActorRef | None = None) -> None:
        super().__init__()
        self.gate = gate
        self.observer = observer
        self.seen: list[tuple[Any, Any]] = []
        self.kept: runtime.Envelope | None = None

    def receive(self, message: Any) -> Any:
        if message == "seen?":
            self.context.sender.tell(list(self.seen))
            return None
        self.seen.append(runtime.current_envelope(self.context))
        if message == "wait":
            return self.wait()
        if message == "keep":
            self.kept = runtime.current_envelope(self.context)
        if message == "fail":
            raise LookupError("handler failed")
        return None

    async def wait(self) -> None:
        await self.gate

    def pre_restart(self, reason: Exception, message: Any) -> None:
        if self.observer is not None:
            self.observer.tell(("restarting", repr(reason), message))


async def started_turns(
    system: ActorSystem, observer: ActorRef | None = None
) -> tuple[ActorRef, list[Turns], asyncio.Future[None]]:
    """A started, idle ``Turns`` actor and its instances (a restart adds one)."""
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    instances: list[Turns] = []

    def make() -> Turns:
        instances.append(Turns(gate, observer))
        return instances[-1]

    ref = system.spawn(make)
    assert await ref.ask("seen?", timeout=5) == []
    return ref, instances, gate


async def test_run_turn_runs_now_in_an_idle_actor_and_delivers_the_envelope_it_returns(
    system: ActorSystem,
) -> None:
    probe = TestProbe(system)
    ref, (actor,), _ = await started_turns(system)
    ran: list[runtime.Envelope] = []

    def turn() -> runtime.Envelope:
        ran.append(runtime.current_envelope(actor.context))
        return ("held", probe.ref)

    assert runtime.run_turn(actor.context, turn) is True
    # both ran before run_turn returned: no trip through the mailbox
    assert ran == [(None, None)]
    assert actor.seen == [("held", probe.ref)]
    assert runtime.current_envelope(actor.context) == (None, None)
    ref.tell("later")
    assert await ref.ask("seen?", timeout=5) == [("held", probe.ref), ("later", None)]


async def test_run_turn_runs_nothing_while_the_actor_has_mail_waiting_or_awaits_a_handler(
    system: ActorSystem,
) -> None:
    ref, (actor,), gate = await started_turns(system)
    ran: list[str] = []

    def turn() -> None:
        ran.append("turn")

    ref.tell("first")  # mail waiting: the drain is scheduled, not run yet
    assert runtime.run_turn(actor.context, turn) is False
    ref.tell("wait")
    await settle()
    assert len(actor.seen) == 2
    assert runtime.run_turn(actor.context, turn) is False  # "wait" awaits the gate
    gate.set_result(None)
    assert [message for message, _ in await ref.ask("seen?", timeout=5)] == ["first", "wait"]
    assert ran == []


async def test_a_message_delivered_by_run_turn_that_awaits_keeps_later_mail_waiting(
    system: ActorSystem,
) -> None:
    ref, (actor,), gate = await started_turns(system)
    assert runtime.run_turn(actor.context, lambda: ("wait", None)) is True
    ref.tell("later")
    answer = asyncio.ensure_future(ref.ask("seen?", timeout=5))
    for _ in range(10):
        await asyncio.sleep(0)
    seen_while_waiting = list(actor.seen)
    gate.set_result(None)
    assert seen_while_waiting == [("wait", None)]  # "later" waits for the awaiting handler
    assert [message for message, _ in await answer] == ["wait", "later"]


async def test_a_failure_in_a_turn_fails_the_actor_for_the_envelope_being_handled(
    system: ActorSystem,
) -> None:
    probe = TestProbe(system)
    ref, instances, _ = await started_turns(system, probe.ref)
    asked = asyncio.ensure_future(ref.ask("keep", timeout=5))
    await settle()
    assert instances[0].kept is not None
    reply_to = instances[0].kept[1]

    assert runtime.run_turn(instances[0].context, lambda: ("fail", reply_to)) is True

    with pytest.raises(LookupError, match=r"^handler failed$"):
        await asked  # the asker of the failed message learns why
    assert await probe.receive() == ("restarting", "LookupError('handler failed')", "fail")
    # the default strategy restarted it: a new instance takes mail, the failed message is gone
    assert await ref.ask("seen?", timeout=5) == []
    assert len(instances) == 2


def test_get_logger_gives_libraries_the_library_logger_of_their_name(
    logs: list[MutableMapping[str, Any]],
) -> None:
    runtime.get_logger("somelib").bind(path="/user/a").info("thing_happened", count=7)
    assert logs == [{"path": "/user/a", "count": 7, "event": "thing_happened", "log_level": "info"}]


class CountingRef(ActorRef):
    """A ref that counts the tells through it before delivering them."""

    __slots__ = ("told",)

    told: int

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        self.told += 1
        ActorRef.tell(self, message, sender)


class Parent(Actor):
    """Replies its own ref to "self?"; on "spawn" starts an Echo child and says hi to it."""

    def receive(self, message: Any) -> None:
        if message == "self?":
            self.context.sender.tell(self.context.self)
        elif message == "spawn":
            child = self.context.spawn(Echo, "child")
            child.tell("hi", self.context.self)


async def test_a_replaced_ref_is_the_actors_own_ref_from_then_on(system: ActorSystem) -> None:
    spawned = system.spawn(Parent, "parent")
    ref = runtime.replace_ref(spawned, CountingRef)
    ref.told = 0

    assert await ref.ask("self?") is ref
    ref.tell("spawn")  # the child answers its parent: through the new ref
    await settle()
    assert ref.told == 3
    probe = TestProbe(system)
    probe.watch(ref)
    system.stop(ref)
    await probe.expect_terminated(ref)


async def test_only_the_plain_ref_of_an_actor_can_be_replaced(system: ActorSystem) -> None:
    ref = runtime.replace_ref(system.spawn(Echo), CountingRef)
    with pytest.raises(ActorSystemError, match="only the plain ref of an actor"):
        runtime.replace_ref(ref, CountingRef)
    remote = runtime.RemoteRef(system, "n2:/user/x", lambda m, s: None)
    with pytest.raises(ActorSystemError, match="cannot replace the ref RemoteRef"):
        runtime.replace_ref(remote, CountingRef)


async def test_tell_if_alive_tells_a_live_actor_and_leaves_a_terminated_one_alone(
    system: ActorSystem, dead_letters: list[DeadLetter]
) -> None:
    probe = TestProbe(system)
    echo = system.spawn(Echo)
    assert runtime.tell_if_alive(echo, "hi", probe.ref) is True
    await probe.expect_message(("echo", "hi"))

    await system.stop(echo)
    assert runtime.tell_if_alive(echo, "late", probe.ref) is False
    await settle()
    assert dead_letters == []


def test_publish_shows_a_private_modules_class_as_a_member_of_the_public_package() -> None:
    namespace: dict[str, Any] = {}
    exec("class Widget:\n    pass\n", namespace)
    widget = namespace["Widget"]
    widget.__module__ = "somelib._widgets"
    runtime.publish("somelib", {"Widget": widget}, ["Widget"])
    assert widget.__module__ == "somelib"
