"""The Client persistent actor and the registry that finds (or starts) clients by id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actorsys import Actor, ActorRef, Terminated
from examples.client.domain import (
    Client,
    Command,
    Event,
    Rejected,
    decide,
)
from persistence import (
    PersistentActor,
    RecoveryCompleted,
    SaveSnapshotFailure,
    SaveSnapshotSuccess,
    SnapshotOffer,
)

CLIENT_TAG = "client"


def persistence_id_of(client_id: str) -> str:
    return f"client-{client_id}"


# ---------------------------------------------------------------------- protocol


@dataclass(frozen=True, slots=True)
class Accepted:
    """The command was valid; ``event`` was persisted and ``client`` is the new state."""

    event: Event
    client: Client


@dataclass(frozen=True, slots=True)
class CommandRejected:
    reason: str


@dataclass(frozen=True, slots=True)
class GetState:
    pass


@dataclass(frozen=True, slots=True)
class ClientStatus:
    client: Client
    recovered_from_snapshot: int
    """Sequence number of the snapshot this incarnation started from (0: none)."""
    replayed_events: int
    """Events this incarnation replayed on recovery."""


@dataclass(frozen=True, slots=True)
class TakeSnapshot:
    pass


@dataclass(frozen=True, slots=True)
class Crash:
    """Makes the entity fail, to show supervision and recovery."""

    reason: str = "crash requested from the shell"


class SimulatedCrash(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ToClient:
    """Route ``message`` to the client with this id (started on first use)."""

    client_id: str
    message: Any


@dataclass(frozen=True, slots=True)
class Passivate:
    client_id: str


@dataclass(frozen=True, slots=True)
class Passivated:
    client_id: str
    was_running: bool


@dataclass(frozen=True, slots=True)
class ListRunning:
    """Asks for the ids of the running clients, sorted."""


# ---------------------------------------------------------------------- the entity


class ClientActor(PersistentActor):
    """One client: validates commands, persists events, derives its state by replay."""

    def __init__(self, client_id: str) -> None:
        super().__init__()
        self.persistence_id = persistence_id_of(client_id)
        self.client = Client(client_id)
        self.replayed_events = 0
        self.recovered_from_snapshot = 0
        self.snapshot_requester: ActorRef | None = None

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

    def receive_command(self, command: Any) -> None:
        sender = self.context.sender
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
            case SaveSnapshotSuccess() | SaveSnapshotFailure():
                if self.snapshot_requester is not None:
                    self.snapshot_requester.tell(command)
                    self.snapshot_requester = None
            case Crash(reason=reason):
                raise SimulatedCrash(reason)
            case _ if hasattr(command, "client_id"):
                self._handle(command, sender)
            case _:
                self.unhandled(command)

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


class ClientRegistry(Actor):
    """Parent and supervisor of every client: routes by id, starts clients on first use.

    It trusts its callers with ids: the shell sends only valid ids (``is_client_id``), and only
    ids of registered clients except for ``RegisterClient``, so no actor starts for a typo.

    The default strategy restarts a client that fails; its restart replays its journal. A client
    being passivated keeps its mail here until it has stopped, then comes back by replay.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stopping: dict[str, list[tuple[Any, ActorRef]]] = {}

    def receive(self, message: Any) -> None:
        match message:
            case ToClient(client_id=client_id, message=inner):
                if client_id in self.stopping:
                    self.stopping[client_id].append((inner, self.context.sender))
                else:
                    self.context.forward(inner, self._client(client_id))
            case Passivate(client_id=client_id):
                child = self.context.child(persistence_id_of(client_id))
                if child is not None and client_id not in self.stopping:
                    self.stopping[client_id] = []
                    self.context.watch(child)
                    self.context.stop(child)
                self.context.sender.tell(Passivated(client_id, child is not None))
            case Terminated(ref=ref):
                client_id = ref.name.removeprefix("client-")
                waiting = self.stopping.pop(client_id, [])
                for inner, sender in waiting:
                    self._client(client_id).tell(inner, sender)
            case ListRunning():
                self.context.sender.tell(
                    sorted(ref.name.removeprefix("client-") for ref in self.context.children)
                )
            case _:
                self.unhandled(message)

    def _client(self, client_id: str) -> ActorRef:
        name = persistence_id_of(client_id)
        child = self.context.child(name)
        if child is None:
            child = self.context.spawn(lambda: ClientActor(client_id), name)
        return child
