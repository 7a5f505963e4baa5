"""Supervision: directives, one-for-one vs all-for-one, deciders, limits, defaults, escalation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from actorsys import (
    DEFAULT_STRATEGY,
    Actor,
    ActorDeadError,
    ActorInitializationError,
    ActorKilledError,
    ActorRef,
    ActorSystem,
    AllForOneStrategy,
    Directive,
    Kill,
    OneForOneStrategy,
    SupervisorStrategy,
    Terminated,
    default_decider,
)
from actorsys.testing import ManualClock, TestProbe, settle
from tests.actors._helpers import expect_quiet


class Counter(Actor):
    """Counts ``"incr"``, answers ``"get"``, raises the exception it is sent."""

    def __init__(self, name: str, probe: ActorRef) -> None:
        super().__init__()
        self.name = name
        self.probe = probe
        self.count = 0

    def post_restart(self, reason: Exception) -> None:
        self.probe.tell((self.name, "restarted", reason))

    def post_stop(self) -> None:
        self.probe.tell((self.name, "stopped"))

    def receive(self, message: Any) -> None:
        if isinstance(message, Exception):
            raise message
        if message == "incr":
            self.count += 1
        elif message == "get":
            self.context.sender.tell(self.count)


class Supervisor(Actor):
    """Supervises ``Counter`` children named ``names`` with ``strategy``; hands out their refs."""

    def __init__(self, strategy: SupervisorStrategy, names: list[str], probe: ActorRef) -> None:
        super().__init__()
        self.supervisor_strategy = strategy
        self.names = names
        self.probe = probe

    def pre_start(self) -> None:
        for name in self.names:
            self.context.spawn(lambda n=name: Counter(n, self.probe), name)  # type: ignore[misc]

    def receive(self, message: Any) -> None:
        self.context.sender.tell({ref.name: ref for ref in self.context.children})


async def supervised(
    system: ActorSystem,
    probe: TestProbe,
    strategy: SupervisorStrategy,
    names: tuple[str, ...] = ("a",),
) -> tuple[ActorRef, dict[str, ActorRef]]:
    parent = system.spawn(lambda: Supervisor(strategy, list(names), probe.ref), "parent")
    children: dict[str, ActorRef] = await parent.ask("children")
    for child in children.values():
        probe.watch(child)
    return parent, children


async def test_resume_keeps_the_state_and_continues_with_the_next_message(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    _, children = await supervised(system, probe, OneForOneStrategy({ValueError: Directive.RESUME}))
    a = children["a"]
    a.tell("incr")
    a.tell("incr")
    with pytest.raises(ValueError, match="resume me"):
        await a.ask(ValueError("resume me"))
    a.tell("incr")
    assert await a.ask("get") == 3
    await expect_quiet(probe, clock)  # neither restarted nor stopped


async def test_restart_replaces_the_instance_so_the_state_starts_over(
    system: ActorSystem, probe: TestProbe
) -> None:
    _, children = await supervised(
        system, probe, OneForOneStrategy({ValueError: Directive.RESTART})
    )
    a = children["a"]
    a.tell("incr")
    error = ValueError("restart me")
    a.tell(error)
    await probe.expect_message(("a", "stopped"))  # default pre_restart calls post_stop
    await probe.expect_message(("a", "restarted", error))
    assert await a.ask("get") == 0


async def test_stop_stops_the_failing_child_for_good(system: ActorSystem, probe: TestProbe) -> None:
    _, children = await supervised(system, probe, OneForOneStrategy({ValueError: Directive.STOP}))
    a = children["a"]
    a.tell(ValueError("stop me"))
    await probe.expect_message(("a", "stopped"))
    await probe.expect_terminated(a)
    with pytest.raises(ActorDeadError):
        a.ask("get")


async def test_escalate_fails_the_parent_with_the_same_error(
    system: ActorSystem, probe: TestProbe
) -> None:
    seen: list[Exception] = []

    def top_decider(error: Exception) -> Directive:
        seen.append(error)
        return Directive.RESTART

    class Top(Actor):
        supervisor_strategy = OneForOneStrategy(top_decider)

        def pre_start(self) -> None:
            self.middle = self.context.spawn(
                lambda: Supervisor(
                    OneForOneStrategy({ValueError: Directive.ESCALATE}), ["a"], probe.ref
                ),
                "middle",
            )

        def receive(self, message: Any) -> None:
            self.context.sender.tell(self.middle)

    top = system.spawn(Top, "top")
    middle: ActorRef = await top.ask("middle")
    children: dict[str, ActorRef] = await middle.ask("children")
    error = ValueError("escalate me")
    children["a"].tell(error)
    await probe.expect_message(("a", "stopped"))  # the middle's restart stops its child
    assert seen == [error]
    assert seen[0] is error  # the very same exception object
    new_children: dict[str, ActorRef] = await middle.ask("children")
    assert new_children["a"] is not children["a"]  # a fresh child of the restarted middle
    assert not children["a"].is_alive


async def test_one_for_one_applies_the_directive_to_the_failing_child_only(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    _, children = await supervised(system, probe, OneForOneStrategy(), ("a", "b"))
    children["b"].tell("incr")
    error = RuntimeError("only a")
    children["a"].tell(error)
    await probe.expect_message(("a", "stopped"))
    await probe.expect_message(("a", "restarted", error))
    assert await children["b"].ask("get") == 1
    await expect_quiet(probe, clock)


async def test_all_for_one_restarts_every_sibling_of_the_failing_child(
    system: ActorSystem, probe: TestProbe
) -> None:
    _, children = await supervised(system, probe, AllForOneStrategy(), ("a", "b", "c"))
    for child in children.values():
        child.tell("incr")
    error = RuntimeError("all of you")
    children["b"].tell(error)
    got = {await probe.receive() for _ in range(6)}
    assert got == {
        *((name, "stopped") for name in "abc"),
        *((name, "restarted", error) for name in "abc"),
    }
    assert [await children[name].ask("get") for name in "abc"] == [0, 0, 0]
    assert all(child.is_alive for child in children.values())


async def test_all_for_one_stop_stops_every_sibling(system: ActorSystem, probe: TestProbe) -> None:
    parent, children = await supervised(
        system, probe, AllForOneStrategy({KeyError: Directive.STOP}), ("a", "b")
    )
    children["a"].tell(KeyError("stop all"))
    terminated = {await probe.fish_for_message(lambda m: isinstance(m, Terminated)) for _ in "ab"}
    assert terminated == {Terminated(children["a"]), Terminated(children["b"])}
    assert await parent.ask("children") == {}


async def test_a_decider_mapping_matches_the_error_class_or_a_base_class_and_escalates_the_rest(
    system: ActorSystem, probe: TestProbe
) -> None:
    strategy = OneForOneStrategy({LookupError: Directive.RESUME, ValueError: Directive.STOP})
    assert strategy.decide(KeyError("k")) is Directive.RESUME  # via its base LookupError
    assert strategy.decide(UnicodeError("u")) is Directive.STOP  # a ValueError subclass
    assert strategy.decide(TypeError("t")) is Directive.ESCALATE

    _, children = await supervised(system, probe, strategy)
    children["a"].tell("incr")
    children["a"].tell(IndexError("resumed"))
    assert await children["a"].ask("get") == 1


async def test_a_decider_can_be_any_callable_and_a_decider_that_raises_escalates() -> None:
    calls: list[Exception] = []

    def decider(error: Exception) -> Directive:
        calls.append(error)
        if isinstance(error, ZeroDivisionError):
            raise RuntimeError("decider bug")
        return Directive.RESUME

    strategy = OneForOneStrategy(decider)
    error = OSError("disk")
    assert strategy.decide(error) is Directive.RESUME
    assert strategy.decide(ZeroDivisionError()) is Directive.ESCALATE
    assert calls[0] is error
    assert AllForOneStrategy(decider).applies_to_all
    assert not strategy.applies_to_all


def test_strategies_are_frozen_values_with_builder_methods() -> None:
    base = OneForOneStrategy()
    limited = base.with_limits(3, within=1.5)
    assert (limited.max_restarts, limited.within) == (3, 1.5)
    assert (base.max_restarts, base.within) == (None, None)
    mapped = limited.with_decider({KeyError: Directive.STOP})
    assert mapped.decide(KeyError()) is Directive.STOP
    assert mapped.max_restarts == 3
    with pytest.raises(ValueError, match=r"^max_restarts must be >= 0 or None, got -1$"):
        OneForOneStrategy(max_restarts=-1)


def test_restart_limits_count_restarts_within_the_window_only() -> None:
    strategy = OneForOneStrategy(max_restarts=2, within=10.0)
    history: list[float] = []
    assert strategy.restart_allowed(history, now=100.0)
    assert strategy.restart_allowed(history, now=101.0)
    assert not strategy.restart_allowed(history, now=105.0)
    assert strategy.restart_allowed(history, now=110.5)  # the first restart left the window
    assert not OneForOneStrategy(max_restarts=0).restart_allowed([], now=0.0)
    unlimited: list[float] = []
    assert all(OneForOneStrategy().restart_allowed(unlimited) for _ in range(100))


async def test_a_child_failing_more_than_max_restarts_within_the_window_is_stopped(
    system: ActorSystem, probe: TestProbe
) -> None:
    _, children = await supervised(system, probe, OneForOneStrategy(max_restarts=2, within=60.0))
    a = children["a"]
    errors = [RuntimeError(f"failure {n}") for n in range(3)]
    for error in errors:
        a.tell(error)
    assert [await probe.receive() for _ in range(6)] == [
        ("a", "stopped"),
        ("a", "restarted", errors[0]),
        ("a", "stopped"),
        ("a", "restarted", errors[1]),
        ("a", "stopped"),
        Terminated(a),
    ]


def test_the_default_strategy_restarts_on_exceptions_and_stops_on_kill_and_init_errors() -> None:
    assert DEFAULT_STRATEGY.decide(RuntimeError()) is Directive.RESTART
    assert DEFAULT_STRATEGY.decide(ActorKilledError("killed")) is Directive.STOP
    init_error = ActorInitializationError("/user/x", ValueError("ctor"))
    assert DEFAULT_STRATEGY.decide(init_error) is Directive.STOP
    assert default_decider(KeyError()) is Directive.RESTART
    assert DEFAULT_STRATEGY.max_restarts is None
    assert not DEFAULT_STRATEGY.applies_to_all


async def test_the_default_strategy_restarts_a_failing_top_level_actor(
    system: ActorSystem, probe: TestProbe
) -> None:
    ref = system.spawn(lambda: Counter("top", probe.ref))
    ref.tell("incr")
    error = ArithmeticError("oops")
    ref.tell(error)
    await probe.expect_message(("top", "stopped"))
    await probe.expect_message(("top", "restarted", error))
    assert await ref.ask("get") == 0


def failing_in(hook: str) -> Callable[[], Actor]:
    class Broken(Actor):
        def __init__(self) -> None:
            super().__init__()
            if hook == "init":
                raise ValueError("in init")

        async def pre_start(self) -> None:
            if hook == "async pre_start":
                await asyncio.sleep(0)
                raise ValueError("in async pre_start")
            if hook == "pre_start":
                raise ValueError("in pre_start")

        def receive(self, message: Any) -> None:
            self.context.sender.tell(message)

    return Broken


@pytest.mark.parametrize("hook", ["init", "pre_start", "async pre_start"])
async def test_an_error_in_the_constructor_or_pre_start_stops_the_actor(
    system: ActorSystem, probe: TestProbe, logs: list[dict[str, Any]], hook: str
) -> None:
    ref = system.spawn(failing_in(hook), "broken")
    probe.watch(ref)
    pending = ref.ask("hello")
    stopped = f"actor /user/broken has stopped: failed to start: ValueError: in {hook}"
    with pytest.raises(ActorDeadError) as queued:
        await pending  # asked before it died
    assert str(queued.value) == stopped
    await probe.expect_terminated(ref)
    with pytest.raises(ActorDeadError) as late:
        ref.ask("hello again")  # asked after it died
    assert str(late.value) == stopped
    for caught in (queued, late):
        cause = caught.value.__cause__
        assert isinstance(cause, ActorInitializationError)
        assert cause.__cause__ is cause.cause
        assert cause.cause.args == (f"in {hook}",)
    failures = [e for e in logs if e["event"] == "actor_failed"]
    assert [e["error"] for e in failures] == [
        f"ActorInitializationError(\"actor /user/broken failed to start: ValueError('in {hook}')\")"
    ]
    error = failures[0]["exc_info"]
    assert isinstance(error, ActorInitializationError)
    assert error.path == "/user/broken"
    assert error.cause.args == (f"in {hook}",)


async def test_an_error_in_post_restart_stops_the_actor(
    system: ActorSystem, probe: TestProbe
) -> None:
    class BadRestart(Actor):
        def post_restart(self, reason: Exception) -> None:
            raise ValueError("cannot restart")

        def receive(self, message: Any) -> None:
            raise RuntimeError(message)

    ref = system.spawn(BadRestart)
    probe.watch(ref)
    ref.tell("fail")
    await probe.expect_terminated(ref)


async def test_kill_fails_the_actor_with_actor_killed_error_and_the_default_strategy_stops_it(
    system: ActorSystem, probe: TestProbe, logs: list[dict[str, Any]]
) -> None:
    ref = system.spawn(lambda: Counter("k", probe.ref), "victim")
    probe.watch(ref)
    ref.tell(Kill)
    await probe.expect_message(("k", "stopped"))
    await probe.expect_terminated(ref)
    errors = [e["exc_info"] for e in logs if e["event"] == "actor_failed"]
    assert [type(e) for e in errors] == [ActorKilledError]
    assert str(errors[0]) == "/user/victim received Kill"


async def test_a_failed_actor_is_suspended_until_its_parent_decides(
    system: ActorSystem, probe: TestProbe
) -> None:
    gate = asyncio.Event()

    class BusyParent(Actor):
        def pre_start(self) -> None:
            self.child = self.context.spawn(lambda: Counter("c", probe.ref), "c")

        async def receive(self, message: Any) -> None:
            if message == "child":
                self.context.sender.tell(self.child)
            else:
                probe.ref.tell("parent-busy")
                await gate.wait()  # cannot process the child's failure meanwhile

    parent = system.spawn(BusyParent)
    child: ActorRef = await parent.ask("child")
    parent.tell("block")
    await probe.expect_message("parent-busy")
    child.tell(RuntimeError("waiting for a decision"))
    child.tell("incr")
    await settle()
    assert child.mailbox_stats().queued == 1  # suspended: "incr" waits
    gate.set()
    await probe.expect_message(("c", "stopped"))
    assert await child.ask("get") == 1  # restarted, then handled the waiting "incr"


async def test_with_the_default_guardian_strategy_an_escalating_top_level_actor_is_restarted(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Escalating(Actor):
        supervisor_strategy = OneForOneStrategy({Exception: Directive.ESCALATE})

        def pre_start(self) -> None:
            self.child = self.context.spawn(_BoomChild)

        def post_restart(self, reason: Exception) -> None:
            probe.ref.tell(("restarted", reason))

        def receive(self, message: Any) -> None:
            self.child.tell(message)

    top = system.spawn(Escalating, "top")
    top.tell("explode")
    restarted, reason = await probe.receive()
    assert (restarted, reason.args) == ("restarted", ("explode",))
    assert isinstance(reason, LookupError)
    assert system.is_running
    assert top.is_alive


class _BoomChild(Actor):
    def receive(self, message: Any) -> None:
        raise LookupError(message)


async def test_an_escalation_reaching_the_root_stops_the_system(
    logs: list[dict[str, Any]],
) -> None:
    class Escalating(Actor):
        supervisor_strategy = OneForOneStrategy({Exception: Directive.ESCALATE})

        def pre_start(self) -> None:
            self.child = self.context.spawn(_BoomChild)

        def receive(self, message: Any) -> None:
            self.child.tell(message)

    system = ActorSystem(
        "root-test", guardian_strategy=OneForOneStrategy({Exception: Directive.ESCALATE})
    )
    async with system:
        top = system.spawn(Escalating, "top")
        top.tell("explode")
        await system.when_terminated()
        assert not system.is_running
        assert system.live_actor_count == 0
        assert not top.is_alive
    root = [e for e in logs if e["event"] == "escalation_reached_root"]
    assert len(root) == 1
    assert root[0]["error"] == "LookupError('explode')"


async def test_the_restart_window_runs_on_the_systems_clock(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    _, children = await supervised(system, probe, OneForOneStrategy(max_restarts=1, within=10.0))
    a = children["a"]
    first, second, third = (RuntimeError(f"failure {n}") for n in range(3))
    a.tell(first)
    assert [await probe.receive() for _ in range(2)] == [
        ("a", "stopped"),
        ("a", "restarted", first),
    ]
    await clock.advance(10.0)  # the first restart leaves the window: one more is allowed
    a.tell(second)
    assert [await probe.receive() for _ in range(2)] == [
        ("a", "stopped"),
        ("a", "restarted", second),
    ]
    await clock.advance(9.9)
    a.tell(third)  # a second restart within 10 s: the limit stops it
    assert [await probe.receive() for _ in range(2)] == [("a", "stopped"), Terminated(a)]


async def test_an_actor_its_supervisor_stopped_says_why_to_later_asks(
    system: ActorSystem, probe: TestProbe
) -> None:
    _, children = await supervised(system, probe, OneForOneStrategy({KeyError: Directive.STOP}))
    a = children["a"]
    error = KeyError("account-7")
    a.tell(error)
    await probe.expect_message(("a", "stopped"))
    await probe.expect_terminated(a)
    with pytest.raises(ActorDeadError) as caught:
        a.ask("get")
    assert str(caught.value) == "actor /user/parent/a has stopped: KeyError: 'account-7'"
    assert caught.value.__cause__ is error


async def test_an_actor_stopped_at_its_restart_limit_says_why_and_its_queued_asks_too(
    system: ActorSystem, probe: TestProbe
) -> None:
    _, children = await supervised(system, probe, OneForOneStrategy(max_restarts=0))
    a = children["a"]
    error = RuntimeError("once too often")
    a.tell(error)
    queued = a.ask("get")  # waits behind the failure, then the actor is stopped
    with pytest.raises(ActorDeadError) as caught:
        await queued
    assert str(caught.value) == "actor /user/parent/a has stopped: RuntimeError: once too often"
    assert caught.value.__cause__ is error


async def test_an_actor_stopped_without_an_error_says_only_that_it_stopped(
    system: ActorSystem,
) -> None:
    ref = system.spawn(lambda: Counter("plain", system.dead_letters), "plain")
    await system.stop(ref)
    with pytest.raises(ActorDeadError) as caught:
        ref.ask("get")
    assert str(caught.value) == "actor /user/plain has stopped"
    assert caught.value.__cause__ is None


# FaultHandlingDocSpec from the Akka documentation, ported: ArithmeticException,
# NullPointerException and IllegalArgumentException become ArithmeticError, AttributeError and
# ValueError.


class DocChild(Actor):
    """Keeps an int; ``"get"`` answers it; an exception it is sent is raised."""

    def __init__(self) -> None:
        super().__init__()
        self.state = 0

    def receive(self, message: Any) -> None:
        if isinstance(message, Exception):
            raise message
        if isinstance(message, int):
            self.state = message
        elif message == "get":
            self.context.sender.tell(self.state)


class DocSupervisor(Actor):
    """Spawns the actor class it is sent and answers with the new child's ref."""

    supervisor_strategy = OneForOneStrategy(
        {
            ArithmeticError: Directive.RESUME,
            AttributeError: Directive.RESTART,
            ValueError: Directive.STOP,
            Exception: Directive.ESCALATE,
        }
    ).with_limits(10, within=60.0)

    def receive(self, message: Any) -> None:
        self.context.sender.tell(self.context.spawn(message))


class DocSupervisor2(DocSupervisor):
    """Like ``DocSupervisor``, but keeps its children when it restarts."""

    def pre_restart(self, reason: Exception, message: Any) -> None:
        pass  # override the default, which stops every child


async def answer(ref: ActorRef, message: Any, clock: ManualClock) -> Any:
    """The reply to ``message``; the ask times out (fails the test) if the actor hangs."""
    asked = ref.ask(message, timeout=1.0)
    await clock.advance(1.0)
    return await asked


async def test_akka_fault_handling_doc_spec_supervisor_resume_restart_stop_escalate(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    supervisor = system.spawn(DocSupervisor, "supervisor")
    child: ActorRef = await supervisor.ask(DocChild)
    child.tell(42)
    assert await answer(child, "get", clock) == 42
    child.tell(ArithmeticError())  # resumed
    assert await answer(child, "get", clock) == 42
    child.tell(AttributeError())  # restarted
    assert await answer(child, "get", clock) == 0
    probe.watch(child)
    child.tell(ValueError())  # stopped
    await probe.expect_terminated(child)

    child2: ActorRef = await supervisor.ask(DocChild)
    probe.watch(child2)
    assert await answer(child2, "get", clock) == 0
    child2.tell(Exception("CRASH"))  # escalated: the guardian restarts the supervisor,
    await probe.expect_terminated(child2)  # whose default pre_restart stops its children
    assert supervisor.is_alive


async def test_akka_fault_handling_doc_spec_supervisor2_keeps_and_restarts_its_children(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    supervisor2 = system.spawn(DocSupervisor2, "supervisor2")
    child3: ActorRef = await supervisor2.ask(DocChild)
    probe.watch(child3)
    child3.tell(23)
    assert await answer(child3, "get", clock) == 23
    crash = Exception("CRASH")
    child3.tell(crash)  # escalated: the supervisor restarts and keeps child3, restarting it too
    assert await answer(child3, "get", clock) == 0
    assert await supervisor2.ask(DocChild) != child3  # the supervisor works again
    child3.tell(7)  # and child3 goes on with its next messages
    assert await answer(child3, "get", clock) == 7
    await expect_quiet(probe, clock)  # child3 was restarted, never stopped


async def test_a_kept_child_that_did_not_fail_is_restarted_with_its_parent_too(
    system: ActorSystem, clock: ManualClock
) -> None:
    supervisor2 = system.spawn(DocSupervisor2, "supervisor2")
    failing: ActorRef = await supervisor2.ask(DocChild)
    bystander: ActorRef = await supervisor2.ask(DocChild)
    bystander.tell(5)
    failing.tell(Exception("CRASH"))
    assert await answer(failing, "get", clock) == 0
    assert await answer(bystander, "get", clock) == 0  # Akka restarts every kept child


async def test_a_child_whose_escalated_failure_is_resumed_goes_on_with_its_state(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    class Top(Actor):
        supervisor_strategy = OneForOneStrategy({LookupError: Directive.RESUME})

        def pre_start(self) -> None:
            self.middle = self.context.spawn(
                lambda: Supervisor(
                    OneForOneStrategy({LookupError: Directive.ESCALATE}), ["a"], probe.ref
                ),
                "middle",
            )

        def receive(self, message: Any) -> None:
            self.context.sender.tell(self.middle)

    middle: ActorRef = await system.spawn(Top, "top").ask("middle")
    a = (await middle.ask("children"))["a"]
    a.tell("incr")
    a.tell(KeyError("escalate, then resume"))
    a.tell("incr")
    assert await answer(a, "get", clock) == 2  # resumed with its state, not restarted
    await expect_quiet(probe, clock)
