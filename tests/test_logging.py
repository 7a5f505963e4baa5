"""The library never writes to stdout and never configures logging: its events go to the
standard ``logging`` loggers ``actorsys`` and ``persistence`` (or through the application's own
structlog pipeline when it configured one), so the application decides what shows.

Each scenario runs in a fresh interpreter: logging configuration is process-global.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCENARIO = """
import asyncio, logging, sys
from dataclasses import dataclass
from actorsys import Actor, ActorSystem
from persistence import Persistence, PersistentActor, event_type

{setup}

@event_type("Deposited")
@dataclass(frozen=True)
class Deposited:
    amount: int

class Account(PersistentActor):
    def __init__(self):
        super().__init__()
        self.persistence_id = "account-1"
        self.balance = 0
    def receive_recover(self, event):
        if isinstance(event, Deposited):
            self.balance += event.amount
    async def receive_command(self, command):
        if command == "boom":
            raise RuntimeError("boom")
        await self.persist(Deposited(command))
        self.balance += command
        self.context.sender.tell(self.balance)

async def main():
    async with ActorSystem("bank", extensions=[Persistence("memory:")]) as system:
        account = system.spawn(Account, "account")
        print(await account.ask(100, timeout=5))
        account.tell("boom")
        print(await account.ask(5, timeout=5))

asyncio.run(main())
"""


def _run(setup: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(SCENARIO).replace("{setup}", setup)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )


def test_unconfigured_logging_leaves_stdout_to_the_program_and_shows_only_failures() -> None:
    result = _run("")
    assert result.stdout == "100\n105\n"
    assert "actor_system_started" not in result.stderr  # debug: hidden by default
    assert "actor_failed" in result.stderr  # a failure is worth a line on stderr
    assert "RuntimeError: boom" in result.stderr
    assert "locals" not in result.stderr.lower()


def test_an_application_turns_library_logs_on_with_the_standard_logging_module() -> None:
    result = _run("logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)")
    assert result.stdout == "100\n105\n"
    assert "DEBUG:actorsys:actor_system_started system='bank'" in result.stderr
    assert "persistence:" in result.stderr


def test_an_application_that_configured_structlog_receives_library_events_in_its_pipeline() -> None:
    setup = textwrap.dedent(
        """
        import structlog
        seen = []
        def keep(_, __, event):
            seen.append(event["event"])
            raise structlog.DropEvent
        structlog.configure(processors=[keep])
        import atexit
        atexit.register(lambda: print("seen", "actor_system_started" in seen, file=sys.stderr))
        """
    )
    result = _run(setup)
    assert result.stdout == "100\n105\n"
    assert "seen True" in result.stderr
