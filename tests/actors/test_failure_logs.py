"""How a supervised failure is logged: at a level that follows the supervisor's decision (Akka's
levels), once, with the exception for the application's handler, never with local variables."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from actorsys import Actor, ActorRef, ActorSystem, Directive, OneForOneStrategy
from actorsys.testing import settle


class Failing(Actor):
    """Raises the exception it is sent; answers anything else."""

    def receive(self, message: Any) -> None:
        if isinstance(message, Exception):
            raise message
        self.context.sender.tell(message)


class Parent(Actor):
    """Supervises one ``Failing`` child named ``child`` with ``strategy``."""

    def __init__(self, strategy: OneForOneStrategy) -> None:
        super().__init__()
        self.supervisor_strategy = strategy

    def pre_start(self) -> None:
        self.child = self.context.spawn(Failing, "child")

    def receive(self, message: Any) -> None:
        self.context.sender.tell(self.child)


def failures(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "actor_failed"]


async def fail_child(system: ActorSystem, directive: Directive, error: Exception) -> ActorRef:
    parent = system.spawn(lambda: Parent(OneForOneStrategy({Exception: directive})), "parent")
    child: ActorRef = await parent.ask("child")
    child.tell(error)
    await settle()
    return child


async def test_a_failure_the_supervisor_resumes_is_a_warning_without_traceback(
    system: ActorSystem, logs: list[dict[str, Any]]
) -> None:
    child = await fail_child(system, Directive.RESUME, ValueError("bad input"))
    assert await child.ask("still here") == "still here"
    assert failures(logs) == [
        {
            "event": "actor_failed",
            "log_level": "warning",
            "actor_path": "/user/parent/child",
            "directive": "resume",
            "error": "ValueError('bad input')",
            "message": "ValueError('bad input')",
        }
    ]


@pytest.mark.parametrize("directive", [Directive.RESTART, Directive.STOP])
async def test_a_failure_the_supervisor_restarts_or_stops_for_is_an_error_with_the_exception(
    system: ActorSystem, logs: list[dict[str, Any]], directive: Directive
) -> None:
    error = ValueError("broken")
    await fail_child(system, directive, error)
    logged = failures(logs)
    assert [(e["log_level"], e["actor_path"], e["directive"]) for e in logged] == [
        ("error", "/user/parent/child", directive.value)
    ]
    assert logged[0]["exc_info"] is error


async def test_an_escalated_failure_is_logged_once_where_it_is_decided(
    system: ActorSystem, logs: list[dict[str, Any]]
) -> None:
    error = LookupError("up the tree")
    await fail_child(system, Directive.ESCALATE, error)  # the guardian restarts the parent
    logged = failures(logs)
    assert [(e["log_level"], e["actor_path"], e["directive"]) for e in logged] == [
        ("error", "/user/parent", "restart")
    ]
    assert logged[0]["escalated_from"] == "/user/parent/child"
    assert logged[0]["exc_info"] is error


async def test_a_failure_of_a_child_whose_parent_is_stopping_is_still_logged_as_an_error(
    system: ActorSystem, logs: list[dict[str, Any]]
) -> None:
    parent = system.spawn(lambda: Parent(OneForOneStrategy()), "parent")
    child: ActorRef = await parent.ask("child")
    child.tell(RuntimeError("while the parent stops"))
    await system.stop(parent)  # the parent stops before it handles the child's failure
    logged = failures(logs)
    assert [(e["log_level"], e["actor_path"], e["directive"]) for e in logged] == [
        ("error", "/user/parent/child", None)
    ]


async def test_a_failure_of_a_child_stopped_before_its_parent_decided_is_logged_as_an_error(
    system: ActorSystem, logs: list[dict[str, Any]]
) -> None:
    gate = asyncio.Event()

    class BusyParent(Parent):
        async def receive(self, message: Any) -> None:  # type: ignore[override]
            if message == "block":
                await gate.wait()  # the child's failure waits for the parent meanwhile
            else:
                self.context.sender.tell(self.child)

    parent = system.spawn(lambda: BusyParent(OneForOneStrategy()), "parent")
    child: ActorRef = await parent.ask("child")
    parent.tell("block")
    child.tell(RuntimeError("nobody decides"))
    await settle()  # the child failed; its parent is busy
    await system.stop(child)  # a failed child still stops, before its parent gets to it
    gate.set()
    await settle()
    logged = failures(logs)
    assert [(e["log_level"], e["actor_path"], e["directive"]) for e in logged] == [
        ("error", "/user/parent/child", None)
    ]


def test_by_default_a_failure_shows_its_traceback_but_never_the_local_variables(
    tmp_path: Path,
) -> None:
    script = tmp_path / "app.py"  # a file, so that the traceback can show source lines
    script.write_text(
        textwrap.dedent(
            """
        import asyncio
        from actorsys import Actor, ActorSystem

        class Leaky(Actor):
            def receive(self, message):
                password = "hunter2-secret"
                raise RuntimeError("handler failed")

        async def main():
            async with ActorSystem("app") as system:
                ref = system.spawn(Leaky, "leaky")
                try:
                    await ref.ask("go", timeout=5)
                except RuntimeError:
                    pass

        asyncio.run(main())
        """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == ""
    assert "actor_failed" in result.stderr
    assert 'raise RuntimeError("handler failed")' in result.stderr  # the traceback is there
    assert "hunter2-secret" not in result.stderr
    assert "password" not in result.stderr
