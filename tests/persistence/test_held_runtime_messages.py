"""Terminated and timer messages that arrive while a persist is pending are held like any command
and reach the command handler afterwards, once each (the drain's filters ran when they arrived)."""

from __future__ import annotations

from typing import Any

from actorsys import Actor, ActorRef, ActorSystem, Terminated
from actorsys.testing import TestProbe
from persistence import PersistentActor
from tests.persistence._actors import Appended
from tests.persistence._journals import ControlledJournal


class Child(Actor):
    def receive(self, message: Any) -> None:
        pass


class Watcher(PersistentActor):
    """Persists an event per ``"persist"``; reports every Terminated and timer tick it handles."""

    def __init__(self, persistence_id: str, observer: ActorRef) -> None:
        super().__init__()
        self.persistence_id = persistence_id
        self.observer = observer
        self.child: ActorRef | None = None

    def receive_recover(self, event: Any) -> None:
        pass

    def receive_command(self, command: Any) -> None:
        if command == "spawn":
            self.child = self.context.watch(self.context.spawn(Child, "child"))
            self.observer.tell("spawned")
        elif command == "persist":
            self.persist(Appended("x"), lambda _: self.observer.tell("stored"))
        elif command == "stop child":
            assert self.child is not None
            self.context.stop(self.child)
        elif command == "tick soon":
            self.context.timers.start_single_timer("tick", "tick", 0.0)
        elif isinstance(command, Terminated):
            self.observer.tell("terminated")
        elif command == "tick":
            self.observer.tell("tick")


async def test_a_terminated_arriving_while_persisting_reaches_the_handler_afterwards(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: Watcher("held-terminated", probe.ref))
    probe.send(ref, "spawn")
    await probe.expect_message("spawned")
    journal.hold_writes()
    probe.send(ref, "persist")
    await journal.wait_for_write_calls(1)
    probe.send(ref, "stop child")  # Terminated arrives while the persist is pending
    await probe.expect_no_message(0.05)
    journal.release_writes()
    assert [await probe.receive(), await probe.receive()] == ["stored", "terminated"]


async def test_a_timer_message_arriving_while_persisting_reaches_the_handler_afterwards(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: Watcher("held-timer", probe.ref))
    journal.hold_writes()
    probe.send(ref, "persist")
    await journal.wait_for_write_calls(1)
    probe.send(ref, "tick soon")  # the tick arrives while the persist is pending
    await probe.expect_no_message(0.05)
    journal.release_writes()
    assert [await probe.receive(), await probe.receive()] == ["stored", "tick"]
