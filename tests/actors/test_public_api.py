"""The public names of actorsys and actorsys.testing are exactly the documented ones."""

from __future__ import annotations

from typing import Any

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
