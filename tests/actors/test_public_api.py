"""The public names of actorsys and actorsys.testing are exactly the documented ones, and show
the public module they are imported from."""

from __future__ import annotations

import inspect
import pickle
import typing
from types import ModuleType
from typing import Any, Literal

import pytest

import actorsys
import actorsys.testing


def test_actorsys_exports_exactly_the_documented_names() -> None:
    assert sorted(actorsys.__all__) == [
        "Actor",
        "ActorContext",
        "ActorDeadError",
        "ActorError",
        "ActorInitializationError",
        "ActorKilledError",
        "ActorRef",
        "ActorSystem",
        "ActorSystemError",
        "AllForOneStrategy",
        "AskTimeoutError",
        "BackoffOptions",
        "BackoffSupervisor",
        "BoundedMailbox",
        "Cancellable",
        "Clock",
        "DEFAULT_STRATEGY",
        "DeadLetter",
        "Directive",
        "EventStream",
        "Extension",
        "InvalidActorNameError",
        "Kill",
        "LoopClock",
        "MailboxFullError",
        "MailboxStats",
        "OneForOneStrategy",
        "Overflow",
        "PoisonPill",
        "ReceiveTimeout",
        "StashError",
        "SupervisorStrategy",
        "Terminated",
        "TimerScheduler",
        "UnboundedMailbox",
        "default_decider",
        "run",
    ]


def test_every_name_in_all_resolves_on_the_package() -> None:
    missing = [name for name in actorsys.__all__ if not hasattr(actorsys, name)]
    missing += [name for name in actorsys.testing.__all__ if not hasattr(actorsys.testing, name)]
    assert missing == []


def test_actorsys_testing_exports_the_probe_the_manual_clock_and_log_checks() -> None:
    assert sorted(actorsys.testing.__all__) == [
        "LogExpectation",
        "ManualClock",
        "TestProbe",
        "capture_logs",
        "expect_logged",
        "settle",
    ]


def test_every_actorsys_error_derives_from_actor_error() -> None:
    errors = [
        actorsys.ActorDeadError,
        actorsys.ActorInitializationError,
        actorsys.ActorKilledError,
        actorsys.ActorSystemError,
        actorsys.AskTimeoutError,
        actorsys.InvalidActorNameError,
        actorsys.MailboxFullError,
        actorsys.StashError,
    ]
    assert all(issubclass(error, actorsys.ActorError) for error in errors)
    assert issubclass(actorsys.AskTimeoutError, TimeoutError)


ACTOR_CONTEXT_API = [
    "become",
    "child",
    "children",
    "forward",
    "log",
    "parent",
    "path",
    "receive_timeout",
    "self",
    "sender",
    "set_receive_timeout",
    "spawn",
    "stash",
    "stop",
    "system",
    "timers",
    "unbecome",
    "unstash_all",
    "unwatch",
    "watch",
]


def public_names(obj: object) -> list[str]:
    return sorted(name for name in dir(obj) if not name.startswith("_"))


def test_the_actor_context_offers_exactly_what_an_actor_may_use() -> None:
    assert public_names(actorsys.ActorContext) == ACTOR_CONTEXT_API


async def test_an_actors_context_is_an_actor_context_and_shows_nothing_of_the_runtime() -> None:
    seen: list[tuple[bool, list[str]]] = []

    class Inspector(actorsys.Actor):
        def receive(self, message: Any) -> None:
            context = self.context
            seen.append((isinstance(context, actorsys.ActorContext), public_names(context)))
            context.sender.tell("seen")

    async with actorsys.ActorSystem("api") as system:
        assert await system.spawn(Inspector).ask("look", timeout=5) == "seen"
    assert seen == [(True, ACTOR_CONTEXT_API)]


def private_definitions(module: ModuleType) -> list[Any]:
    """The classes and functions ``module`` exports that actorsys defines (not structlog's)."""
    return [
        obj
        for obj in (getattr(module, name) for name in module.__all__)
        if (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__.partition(".")[0] == "actorsys"
    ]


@pytest.mark.parametrize("module", [actorsys, actorsys.testing], ids=lambda m: m.__name__)
def test_public_classes_and_functions_show_the_module_they_are_imported_from(
    module: ModuleType,
) -> None:
    assert {obj.__name__: obj.__module__ for obj in private_definitions(module)} == {
        obj.__name__: module.__name__ for obj in private_definitions(module)
    }
    assert repr(actorsys.ActorRef) == "<class 'actorsys.ActorRef'>"
    assert repr(actorsys.testing.ManualClock) == "<class 'actorsys.testing.ManualClock'>"


@pytest.mark.parametrize("module", [actorsys, actorsys.testing], ids=lambda m: m.__name__)
def test_public_classes_and_functions_pickle_by_their_public_name(module: ModuleType) -> None:
    for obj in private_definitions(module):
        reference = f"c{module.__name__}\n{obj.__qualname__}\n".encode()  # protocol 2's GLOBAL
        assert reference in pickle.dumps(obj, protocol=2)
        assert pickle.loads(pickle.dumps(obj)) is obj


def test_public_values_round_trip_through_pickle() -> None:
    values = [
        actorsys.BackoffOptions(0.5, 8.0),
        actorsys.OneForOneStrategy().with_limits(3, 60.0),
        actorsys.AllForOneStrategy(),
        actorsys.Directive.RESTART,
        actorsys.Overflow.FAIL,
        actorsys.BoundedMailbox(10),
        actorsys.UnboundedMailbox(),
        actorsys.MailboxStats(1, 2),
    ]
    assert [pickle.loads(pickle.dumps(value)) for value in values] == values
    error = pickle.loads(pickle.dumps(actorsys.StashError("cannot stash")))
    assert (type(error), error.args) == (actorsys.StashError, ("cannot stash",))


@pytest.mark.parametrize("module", [actorsys, actorsys.testing], ids=lambda m: m.__name__)
def test_the_type_hints_of_public_classes_and_functions_resolve(module: ModuleType) -> None:
    for obj in private_definitions(module):
        typing.get_type_hints(obj)
    assert typing.get_type_hints(actorsys.ActorContext) == {"system": actorsys.ActorSystem}
    assert typing.get_type_hints(actorsys.DeadLetter) == {
        "message": Any,
        "sender": actorsys.ActorRef | None,
        "recipient": actorsys.ActorRef,
    }
    assert typing.get_type_hints(actorsys.BackoffOptions)["on"] == Literal["stop", "failure"]
