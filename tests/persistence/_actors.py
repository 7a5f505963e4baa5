"""Events, commands and a small persistent actor shared by the persistent-actor tests."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from actorsys import ActorRef, ActorSystem
from actorsys.testing import TestProbe
from persistence import (
    DeleteEventsFailure,
    DeleteEventsSuccess,
    PersistentActor,
    Recovery,
    RecoveryCompleted,
    SaveSnapshotFailure,
    SaveSnapshotSuccess,
    Serializer,
    SnapshotOffer,
)
from persistence.journal import Journal

serializer = Serializer()
"""The tests' own registry (the global default one stays untouched)."""


# ---------------------------------------------------------------------- events and snapshots


@serializer.type("Appended")
@dataclass(frozen=True)
class Appended:
    item: str


@serializer.type("Items")
@dataclass(frozen=True)
class Items:
    """The snapshot of an :class:`ItemLog`."""

    items: list[str]


@serializer.type("Holder")
@dataclass(frozen=True)
class Holder:
    """Registered, but holding a value the serializer cannot encode makes it unserializable."""

    value: Any


@dataclass(frozen=True)
class Unregistered:
    """Never registered: persisting it is rejected."""

    item: str


# ---------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Append:
    item: str


@dataclass(frozen=True)
class AppendAll:
    items: list[str]


@dataclass(frozen=True)
class Get:
    pass


@dataclass(frozen=True)
class Snapshot:
    """Save the current items as a snapshot."""


@dataclass(frozen=True)
class DeleteTo:
    """Delete the events up to and including ``sequence_nr``."""

    sequence_nr: int


OUTCOMES = (SaveSnapshotSuccess, SaveSnapshotFailure, DeleteEventsSuccess, DeleteEventsFailure)
"""Outcome reports an :class:`ItemLog` passes on to its observer."""


# ---------------------------------------------------------------------- what the actor reports


@dataclass(frozen=True)
class Offered:
    sequence_nr: int
    items: tuple[str, ...]


@dataclass(frozen=True)
class Replayed:
    item: str
    sequence_nr: int
    sender: ActorRef


@dataclass(frozen=True)
class Recovered:
    items: tuple[str, ...]
    last_sequence_nr: int


@dataclass(frozen=True)
class Stored:
    item: str
    sequence_nr: int


@dataclass(frozen=True)
class Rejected:
    item: str
    sequence_nr: int
    cause: BaseException


@dataclass(frozen=True)
class Failed:
    cause: BaseException
    event: Any
    sequence_nr: int


@dataclass(frozen=True)
class RecoveryFailed:
    cause: BaseException
    message: Any


# ---------------------------------------------------------------------- the actor


class ItemLog(PersistentActor):
    """Keeps a list of items; reports recovery and persistence outcomes to ``observer``.

    ``Append(item)`` persists ``Appended(item)`` and replies ``Stored(item, sequence_nr)`` from the
    handler (to the command's sender); ``AppendAll`` does so for several items in one atomic
    write; ``Get()`` replies the items as a tuple; ``Snapshot()`` and ``DeleteTo(n)`` report their
    outcome messages to the observer.
    """

    def __init__(
        self,
        persistence_id: str | None,
        observer: ActorRef,
        *,
        recovery: Recovery | None = None,
    ) -> None:
        super().__init__()
        if persistence_id is not None:
            self.persistence_id = persistence_id
        if recovery is not None:
            self.recovery = recovery
        self.observer = observer
        self.items: list[str] = []

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, SnapshotOffer):
            self.items = list(message.snapshot.items)
            self.observer.tell(Offered(message.metadata.sequence_nr, tuple(self.items)))
        elif isinstance(message, Appended):
            self.items.append(message.item)
            self.observer.tell(Replayed(message.item, self.last_sequence_nr, self.context.sender))
        elif message is RecoveryCompleted:
            self.observer.tell(Recovered(tuple(self.items), self.last_sequence_nr))

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, Append):
            self.persist(Appended(command.item), self.stored)
        elif isinstance(command, AppendAll):
            self.persist_all([Appended(item) for item in command.items], self.stored)
        elif isinstance(command, Get):
            self.context.sender.tell(tuple(self.items), self.context.self)
        elif isinstance(command, Snapshot):
            self.save_snapshot(Items(list(self.items)))
        elif isinstance(command, DeleteTo):
            self.delete_events(command.sequence_nr)
        elif isinstance(command, OUTCOMES):
            self.observer.tell(command)
        else:
            return super().receive_command(command)
        return None

    def stored(self, event: Appended) -> None:
        """The persist handler: update the state, then reply to the command's sender."""
        self.items.append(event.item)
        self.context.sender.tell(Stored(event.item, self.last_sequence_nr), self.context.self)

    def on_persist_rejected(self, cause: BaseException, event: Any, sequence_nr: int) -> None:
        super().on_persist_rejected(cause, event, sequence_nr)
        self.observer.tell(Rejected(getattr(event, "item", repr(event)), sequence_nr, cause))

    def on_persist_failure(self, cause: BaseException, event: Any, sequence_nr: int) -> None:
        super().on_persist_failure(cause, event, sequence_nr)
        self.observer.tell(Failed(cause, event, sequence_nr))

    def on_recovery_failure(self, cause: BaseException, message: Any) -> None:
        super().on_recovery_failure(cause, message)
        self.observer.tell(RecoveryFailed(cause, message))


async def start_log(
    system: ActorSystem,
    probe: TestProbe,
    persistence_id: str,
    *,
    recovery: Recovery | None = None,
) -> tuple[ActorRef, Recovered]:
    """Spawn an :class:`ItemLog` observed by ``probe`` and wait until it has recovered (skipping
    the replay reports)."""
    ref = system.spawn(lambda: ItemLog(persistence_id, probe.ref, recovery=recovery))
    recovered = await probe.fish_for_message(lambda message: isinstance(message, Recovered))
    return ref, recovered


async def stored_events(journal: Journal, persistence_id: str) -> list[tuple[int, Any]]:
    """``(sequence_nr, event)`` of every event the journal holds for ``persistence_id``."""
    return [
        (record.sequence_nr, event)
        async for page in journal.replay(persistence_id)
        for record in page
        for event in serializer.decode(record.manifest, record.payload, persistence_id)
    ]
