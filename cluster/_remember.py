"""Remember entities: a shard that records which of its entities run, and starts them again.

The record is event-sourced in the system's journal, one persistence id per shard
(``sharding-<type_name>-<shard_id>``), written with the shard's owner epoch: ``EntityStarted``
before an entity starts, ``EntityStopped`` once it passivated. An entity that stops by itself
(or fails past its supervisor) stays remembered. When the shard starts (on its first message, a
home change to this node, or the region's start), it recovers the record and starts every
remembered entity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actorsys import ActorSystem
from cluster._direct import ShardLink
from cluster._shard import ShardLogic, ShardSpec
from persistence import Persistence, PersistentActor, RecoveryCompleted, Serializer
from persistence.journal import ReadJournal


@dataclass(frozen=True, slots=True)
class EntityStarted:
    entity_id: str


@dataclass(frozen=True, slots=True)
class EntityStopped:
    entity_id: str


def persistence_id_prefix(type_name: str) -> str:
    return f"sharding-{type_name}-"


def register_events(serializer: Serializer) -> None:
    """Register the record's events with the journal's serializer (idempotent)."""
    serializer.register(EntityStarted, "actorsys.sharding.EntityStarted")
    serializer.register(EntityStopped, "actorsys.sharding.EntityStopped")


async def remembered_shard_ids(system: ActorSystem, type_name: str, log: Any) -> tuple[str, ...]:
    """The shards of ``type_name`` with a record in the journal (the journal must answer
    ``persistence_ids``: every built-in journal does)."""
    journal = Persistence.of(system).journal
    if not isinstance(journal, ReadJournal):
        log.warning(
            "remembered_shards_unknown",
            journal=type(journal).__name__,
            hint="the journal cannot list persistence ids: remembered entities start with "
            "their shard's first message",
        )
        return ()
    prefix = persistence_id_prefix(type_name)
    ids = await journal.persistence_ids()
    return tuple(pid[len(prefix) :] for pid in ids if pid.startswith(prefix))


class RememberingShard(ShardLogic, PersistentActor):
    """The shard actor with remember entities."""

    def __init__(
        self, spec: ShardSpec, shard_id: str, epoch: int | None, link: ShardLink
    ) -> None:
        super().__init__()
        self._init_shard(spec, shard_id, epoch, link)
        self.persistence_id = persistence_id_prefix(spec.type_name) + shard_id
        self.owner_epoch = epoch
        self._remembered: set[str] = set()

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, EntityStarted):
            self._remembered.add(message.entity_id)
        elif isinstance(message, EntityStopped):
            self._remembered.discard(message.entity_id)
        elif message is RecoveryCompleted:
            self._start_idle_checks()
            for entity_id in sorted(self._remembered):
                if entity_id not in self._entities:
                    self._spawn_entity(entity_id)

    def receive_command(self, command: Any) -> None:
        self._handle(command)

    def post_stop(self) -> None:
        self._return_held()

    def _remember_started(self, entity_id: str, then: Callable[[], None]) -> None:
        if entity_id in self._remembered:
            then()
            return

        def started(event: EntityStarted) -> None:
            self._remembered.add(entity_id)
            then()

        self.persist(EntityStarted(entity_id), started)

    def _remember_stopped(self, entity_id: str) -> None:
        if entity_id in self._remembered:
            self.persist(
                EntityStopped(entity_id), lambda event: self._remembered.discard(entity_id)
            )
