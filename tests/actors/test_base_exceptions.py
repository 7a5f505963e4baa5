"""BaseException (KeyboardInterrupt, SystemExit, cancellation) raised in an actor is never
swallowed: it is not handed to the supervisor, it propagates, and the system still shuts down.

Each scenario runs in its own interpreter (``python -c``) so that an interrupt that escapes
cannot take the test runner down with it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

LOOPS = ["asyncio", "uvloop"]

PRELUDE = """
import asyncio, sys
import structlog
import uvloop
from actorsys import Actor, ActorDeadError, ActorSystem, Directive, OneForOneStrategy

structlog.configure(processors=[], logger_factory=structlog.ReturnLoggerFactory())

def say(*words):
    print(*words, flush=True)

def decider(error):
    say("supervisor consulted", type(error).__name__)
    return Directive.RESTART

class Interrupted(Actor):
    def pre_start(self):
        say("pre_start")

    def post_restart(self, reason):
        say("restarted")

    def post_stop(self):
        say("post_stop")

async def main():
    system = ActorSystem("t", guardian_strategy=OneForOneStrategy(decider))
    try:
        async with system:
            ref = system.spawn(Victim, "victim")
            await scenario(system, ref)
            say("scenario returned")
    finally:
        say("shut down", system.is_running, system.live_actor_count)

factory = uvloop.new_event_loop if sys.argv[1] == "uvloop" else asyncio.new_event_loop
with asyncio.Runner(loop_factory=factory) as runner:
    runner.run(main())
say("runner returned")
"""


RECEIVE = {
    "plain": "def receive(self, message):\n    raise {error}\n",
    "async": "async def receive(self, message):\n    await asyncio.sleep(0)\n    raise {error}\n",
}


def victim(handler: str, error: str) -> str:
    """The source of a ``Victim`` actor whose receive (plain or async) raises ``error``."""
    body = RECEIVE[handler].format(error=error)
    return "class Victim(Interrupted):\n" + textwrap.indent(body, "    ")


def run_scenario(loop: str, code: str, victim_source: str = "") -> subprocess.CompletedProcess[str]:
    source = victim_source + textwrap.dedent(code)
    script = PRELUDE.replace("async def main", source + "\n\nasync def main")
    return subprocess.run(
        [sys.executable, "-c", script, loop],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )


def died_of_keyboard_interrupt(result: subprocess.CompletedProcess[str]) -> bool:
    # Python re-raises an uncaught KeyboardInterrupt as SIGINT so the parent sees the signal.
    return result.returncode == -signal.SIGINT and "KeyboardInterrupt" in result.stderr


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("handler", ["plain", "async"])
def test_keyboard_interrupt_in_a_handler_propagates_out_of_the_loop_and_the_system_shuts_down(
    loop: str, handler: str
) -> None:
    result = run_scenario(
        loop,
        """
        async def scenario(system, ref):
            ref.tell("interrupt")
            await asyncio.sleep(10)
        """,
        victim(handler, "KeyboardInterrupt"),
    )
    assert died_of_keyboard_interrupt(result), result
    assert result.stdout.splitlines() == ["pre_start", "post_stop", "shut down False 0"]


@pytest.mark.parametrize("loop", LOOPS)
def test_keyboard_interrupt_in_one_actor_leaves_the_actors_woken_with_it_able_to_run_and_stop(
    loop: str,
) -> None:
    result = run_scenario(
        loop,
        """
        class Bystander(Actor):
            def receive(self, message):
                say("bystander got", message)

            def post_stop(self):
                say("bystander stopped")

        async def scenario(system, ref):
            bystander = system.spawn(Bystander, "bystander")
            await asyncio.sleep(0)
            ref.tell("interrupt")
            bystander.tell("hello")  # woken in the same round as the victim, after it
            await asyncio.sleep(10)
        """,
        victim("plain", "KeyboardInterrupt"),
    )
    assert died_of_keyboard_interrupt(result), result
    assert result.stdout.splitlines() == [
        "pre_start",
        "bystander got hello",
        "post_stop",
        "bystander stopped",
        "shut down False 0",
    ]


@pytest.mark.parametrize("loop", LOOPS)
def test_keyboard_interrupt_in_pre_start_propagates_and_is_not_an_initialization_failure(
    loop: str,
) -> None:
    result = run_scenario(
        loop,
        """
        class Victim(Interrupted):
            def pre_start(self):
                say("pre_start")
                raise KeyboardInterrupt

        async def scenario(system, ref):
            await asyncio.sleep(10)
        """,
    )
    assert died_of_keyboard_interrupt(result), result
    assert result.stdout.splitlines() == ["pre_start", "post_stop", "shut down False 0"]


@pytest.mark.parametrize("loop", LOOPS)
def test_system_exit_in_a_handler_exits_the_process_with_its_code(loop: str) -> None:
    result = run_scenario(
        loop,
        """
        class Victim(Interrupted):
            async def receive(self, message):
                raise SystemExit(7)

        async def scenario(system, ref):
            ref.tell("exit")
            await asyncio.sleep(10)
        """,
    )
    assert result.returncode == 7, result
    assert result.stdout.splitlines() == ["pre_start", "post_stop", "shut down False 0"]


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("handler", ["plain", "async"])
def test_cancelled_error_in_a_handler_is_not_supervised_and_stops_the_actor_failing_the_ask(
    loop: str, handler: str
) -> None:
    result = run_scenario(
        loop,
        """
        from actorsys.testing import TestProbe

        async def scenario(system, ref):
            escaped = []
            asyncio.get_running_loop().set_exception_handler(
                lambda loop, context: escaped.append(type(context.get("exception")).__name__)
            )
            probe = TestProbe(system)
            probe.watch(ref)
            try:
                await ref.ask("cancel")
            except ActorDeadError as error:
                say("the asker got", repr(error))
            await probe.expect_terminated(ref)
            say("terminated; escaped to the loop:", escaped)
        """,
        victim(handler, "asyncio.CancelledError"),
    )
    assert result.returncode == 0, result
    escaped = "['CancelledError']" if handler == "plain" else "[]"  # a task just ends cancelled
    assert result.stdout.splitlines() == [
        "pre_start",
        "the asker got ActorDeadError('actor /user/victim has stopped')",
        "post_stop",
        f"terminated; escaped to the loop: {escaped}",
        "scenario returned",
        "shut down False 0",
        "runner returned",
    ]


@pytest.mark.parametrize("loop", LOOPS)
def test_cancelling_the_main_task_while_an_actor_awaits_still_shuts_down_gracefully(
    loop: str,
) -> None:
    result = run_scenario(
        loop,
        """
        handling = asyncio.Event()

        class Victim(Interrupted):
            async def receive(self, message):
                say("handling")
                handling.set()
                for _ in range(100):  # busy for many loop turns: the shutdown starts meanwhile
                    await asyncio.sleep(0)
                say("handled")

        async def scenario(system, ref):
            ref.tell("work")
            await handling.wait()
            asyncio.current_task().cancel()
            await asyncio.sleep(10)  # cancelled right away
        """,
    )
    assert "CancelledError" in result.stderr, result
    assert result.stdout.splitlines() == [
        "pre_start",
        "handling",
        "handled",  # the current message finishes before the actor stops
        "post_stop",
        "shut down False 0",
    ]
