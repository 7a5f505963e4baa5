"""Misuse fails fast with errors that say what to do instead."""

from __future__ import annotations

from typing import Any

import pytest

from actorsys import (
    Actor,
    ActorDeadError,
    ActorInitializationError,
    ActorSystem,
    ActorSystemError,
    InvalidActorNameError,
)
from actorsys.testing import TestProbe
from tests.actors._helpers import Echo


class MyActor(Actor):
    def receive(self, message: Any) -> None:
        pass


def test_constructing_an_actor_outside_spawn_raises_actor_system_error_naming_the_fix() -> None:
    with pytest.raises(ActorSystemError) as caught:
        MyActor()
    assert str(caught.value) == (
        "MyActor instances are created by an actor system: use system.spawn(MyActor) or "
        "self.context.spawn(...) instead of calling MyActor() directly"
    )


class Forgetful(Actor):
    def __init__(self) -> None:  # no super().__init__()
        self.state = 0


class ForgetfulButCurious(Actor):
    def __init__(self) -> None:  # no super().__init__(), and it touches the context
        self.path = self.context.self.path


@pytest.mark.parametrize("factory", [Forgetful, ForgetfulButCurious])
async def test_an_actor_that_forgot_super_init_fails_to_start_with_a_message_saying_so(
    system: ActorSystem,
    probe: TestProbe,
    logs: list[dict[str, Any]],
    factory: type[Actor],
) -> None:
    ref = system.spawn(factory, "forgetful")
    probe.watch(ref)
    with pytest.raises(ActorDeadError):
        await ref.ask("hello")
    await probe.expect_terminated(ref)
    errors = [e["exc_info"] for e in logs if e["event"] == "actor_failed"]
    assert len(errors) == 1
    assert isinstance(errors[0], ActorInitializationError)
    assert isinstance(errors[0].cause, ActorSystemError)
    assert str(errors[0].cause) == (
        f"{factory.__name__}.__init__ did not call Actor.__init__: "
        "did you forget super().__init__()?"
    )


async def test_a_factory_that_returns_something_else_than_an_actor_fails_to_start(
    system: ActorSystem, probe: TestProbe, logs: list[dict[str, Any]]
) -> None:
    ref = system.spawn(lambda: "not an actor", "odd")  # type: ignore[arg-type, return-value]
    probe.watch(ref)
    await probe.expect_terminated(ref)
    errors = [e["exc_info"] for e in logs if e["event"] == "actor_failed"]
    assert isinstance(errors[0].cause, TypeError)
    assert str(errors[0].cause) == (
        "the factory of /user/odd returned 'not an actor', not an Actor: pass an Actor "
        "subclass or a callable returning a new instance"
    )


async def test_spawn_with_something_that_is_not_callable_raises_type_error(
    system: ActorSystem,
) -> None:
    with pytest.raises(TypeError) as caught:
        system.spawn("MyActor", "by-name")  # type: ignore[arg-type]
    assert str(caught.value) == (
        "spawn needs an Actor subclass or a zero-argument callable, got 'MyActor'"
    )
    assert system.live_actor_count == 0


async def test_spawn_on_a_system_that_was_not_started_raises_actor_system_error() -> None:
    system = ActorSystem("idle")
    with pytest.raises(ActorSystemError) as caught:
        system.spawn(Echo)
    assert str(caught.value) == (
        "cannot spawn: actor system 'idle' is new; spawn inside "
        "`async with ActorSystem('idle') as system:`"
    )


async def test_spawn_after_shutdown_raises_actor_system_error() -> None:
    async with ActorSystem("done") as system:
        pass
    with pytest.raises(ActorSystemError) as caught:
        system.spawn(Echo)
    assert str(caught.value) == (
        "cannot spawn: actor system 'done' is terminated; spawn inside "
        "`async with ActorSystem('done') as system:`"
    )


@pytest.mark.parametrize("name", ["", "$reserved", "a/b", "with space", "naïve", "tab\t"])
async def test_invalid_actor_names_are_rejected_with_the_allowed_characters(
    system: ActorSystem, name: str
) -> None:
    with pytest.raises(InvalidActorNameError) as caught:
        system.spawn(Echo, name)
    assert str(caught.value) == (
        f"invalid actor name {name!r}: use letters, digits and -_.:@&=+,!~*'$;%() "
        "(not empty, not starting with '$')"
    )


async def test_names_with_every_allowed_character_are_accepted(system: ActorSystem) -> None:
    name = "Az09-_.:@&=+,!~*'$;%()"
    ref = system.spawn(Echo, name)
    assert ref.path == f"/user/{name}"


async def test_spawning_a_child_of_a_stopping_actor_raises_actor_system_error(
    system: ActorSystem, probe: TestProbe
) -> None:
    class LateSpawner(Actor):
        def post_stop(self) -> None:
            try:
                self.context.spawn(Echo)
            except ActorSystemError as error:
                probe.ref.tell(str(error))

    await system.stop(system.spawn(LateSpawner, "late"))
    await probe.expect_message("cannot spawn a child of /user/late: it is stopping")


async def test_starting_a_system_twice_raises_actor_system_error(system: ActorSystem) -> None:
    with pytest.raises(ActorSystemError, match=r"^actor system 'test' was already started$"):
        await system.start()


async def test_using_the_context_of_a_stopped_actor_raises_saying_it_has_stopped(
    system: ActorSystem, probe: TestProbe
) -> None:
    class Leaky(Actor):
        def receive(self, message: Any) -> None:
            probe.ref.tell(self)  # the instance escapes: a mistake this test makes on purpose

    ref = system.spawn(Leaky, "leaky")
    ref.tell("hello")
    instance = await probe.receive()
    await system.stop(ref)

    with pytest.raises(ActorSystemError) as spawn_error:
        instance.context.spawn(Echo)
    assert str(spawn_error.value) == (
        "cannot spawn a child of /user/leaky: it has stopped (an actor's context is usable only "
        "while the actor runs; keep its ActorRef, not the instance)"
    )
    with pytest.raises(ActorSystemError) as timer_error:
        instance.context.timers.start_single_timer("tick", "tick", 0.01)
    assert str(timer_error.value) == (
        "cannot start timer 'tick': /user/leaky has stopped (timers die with their actor)"
    )
