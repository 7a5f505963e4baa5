"""The Client persistent actor, sharded by client id, and the messages the shell sends it.

Every message crosses nodes when the shell runs on a cluster: each is registered (by a stable
name) with the example's serializer, which the cluster uses on the wire.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from actorsys import ActorRef
from cluster import Passivate
from examples.client.domain import (
    Client,
    Command,
    Event,
    Rejected,
    decide,
    serializer,
)
from persistence import (
    PersistentActor,
    RecoveryCompleted,
    SaveSnapshotFailure,
    SaveSnapshotSuccess,
    SnapshotOffer,
)

CLIENT_TAG = "client"
CLIENT_TYPE = "Client"
"""The entity type name of clients in sharding."""


def persistence_id_of(client_id: str) -> str:
    return f"client-{client_id}"


# ---------------------------------------------------------------------- protocol


@serializer.type("Accepted")
@dataclass(frozen=True, slots=True)
class Accepted:
    """The command was valid; ``event`` was persisted and ``client`` is the new state."""

    event: Event
    client: Client


@serializer.type("CommandRejected")
@dataclass(frozen=True, slots=True)
class CommandRejected:
    reason: str


@serializer.type("GetState")
@dataclass(frozen=True, slots=True)
class GetState:
    pass


@serializer.type("ClientStatus")
@dataclass(frozen=True, slots=True)
class ClientStatus:
    client: Client
    recovered_from_snapshot: int
    """Sequence number of the snapshot this incarnation started from (0: none)."""
    replayed_events: int
    """Events this incarnation replayed on recovery."""


@serializer.type("TakeSnapshot")
@dataclass(frozen=True, slots=True)
class TakeSnapshot:
    pass


@serializer.type("SnapshotSaved")
@dataclass(frozen=True, slots=True)
class SnapshotSaved:
    sequence_nr: int


@serializer.type("SnapshotFailed")
@dataclass(frozen=True, slots=True)
class SnapshotFailed:
    reason: str


@serializer.type("Crash")
@dataclass(frozen=True, slots=True)
class Crash:
    """Makes the entity fail, to show supervision and recovery."""

    reason: str = "crash requested from the shell"


class SimulatedCrash(Exception):
    pass


class StopClient:
    """How the shard stops a client (hand-off, idle passivation): taken in turn, after the
    commands that wait for a persist to finish (a ``PoisonPill`` would stop the client before
    them, and their asks would fail)."""

    __slots__ = ()


STOP_CLIENT = StopClient()


@serializer.type("PassivateClient")
@dataclass(frozen=True, slots=True)
class PassivateClient:
    """Asks the client to passivate (stop until its next message)."""


@serializer.type("Passivating")
@dataclass(frozen=True, slots=True)
class Passivating:
    """The client asked its shard to stop it; ``was_running``: it was running before this
    message (false: this message started it, so it was passivated already)."""

    was_running: bool


# ---------------------------------------------------------------------- the entity


class ClientActor(PersistentActor):
    """One client: validates commands, persists events, derives its state by replay.

    A sharded entity: its shard starts it on its first message (``ClientActor(client_id)``),
    restarts it when it fails (the restart replays its journal) and stops it when it passivates
    (on :class:`PassivateClient`, or when idle), keeping its mail meanwhile.
    """

    def __init__(self, client_id: str) -> None:
        super().__init__()
        self.persistence_id = persistence_id_of(client_id)
        self.client = Client(client_id)
        self.replayed_events = 0
        self.recovered_from_snapshot = 0
        self.snapshot_requester: ActorRef | None = None
        self.was_running = False
        """Whether this incarnation handled a command, or was restarted, before the current one."""

    def tags_for(self, event: Any) -> tuple[str, ...]:
        return (CLIENT_TAG,)

    def receive_recover(self, message: Any) -> None:
        match message:
            case SnapshotOffer(metadata=metadata, snapshot=Client() as snapshot):
                self.client = snapshot
                self.recovered_from_snapshot = metadata.sequence_nr
            case _ if message is RecoveryCompleted:
                self.context.log.debug(
                    "client_recovered", version=self.client.version, replayed=self.replayed_events
                )
            case _:
                self.client = self.client.update(message)
                self.replayed_events += 1

    def post_restart(self, reason: Exception) -> Awaitable[None] | None:
        self.was_running = True
        return super().post_restart(reason)

    def receive_command(self, command: Any) -> None:
        sender = self.context.sender
        self._receive_command(command, sender)
        self.was_running = True

    def _receive_command(self, command: Any, sender: ActorRef) -> None:
        match command:
            case GetState():
                sender.tell(
                    ClientStatus(
                        self.client,
                        self.recovered_from_snapshot,
                        self.replayed_events,
                    )
                )
            case TakeSnapshot():
                self.save_snapshot(self.client)
                self.snapshot_requester = sender
            case SaveSnapshotSuccess(metadata=metadata):
                self._snapshot_outcome(SnapshotSaved(metadata.sequence_nr))
            case SaveSnapshotFailure(cause=cause):
                self._snapshot_outcome(SnapshotFailed(str(cause)))
            case Crash(reason=reason):
                raise SimulatedCrash(reason)
            case PassivateClient():
                self.context.parent.tell(Passivate(STOP_CLIENT), self.context.self)
                sender.tell(Passivating(self.was_running))
            case StopClient():
                self.context.stop(self.context.self)
            case _ if hasattr(command, "client_id"):
                self._handle(command, sender)
            case _:
                self.unhandled(command)

    def _snapshot_outcome(self, outcome: SnapshotSaved | SnapshotFailed) -> None:
        if self.snapshot_requester is not None:
            self.snapshot_requester.tell(outcome)
            self.snapshot_requester = None

    def _handle(self, command: Command, sender: ActorRef) -> None:
        try:
            event = decide(self.client, command)
        except Rejected as rejection:
            sender.tell(CommandRejected(str(rejection)))
            return

        def applied(event: Event) -> None:
            self.client = self.client.update(event)
            sender.tell(Accepted(event, self.client))

        self.persist(event, applied)
