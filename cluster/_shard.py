"""The shard actor: the entities of one shard on this node, as its children.

It starts an entity on its first message, passivates entities on request (:class:`Passivate`)
and when idle, holds the messages that arrive for an entity while it stops and starts a new
incarnation for them, and stops every entity on hand-off. With remember entities the same logic
runs in a persistent actor (:mod:`cluster._remember`) that records which entities run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from actorsys import Actor, ActorRef, PoisonPill, Terminated, runtime
from cluster._errors import EntityIdError, ShardingBufferFullError
from cluster._extractor import MessageExtractor
from cluster._logging import get_logger
from cluster._messages import Passivate, SafeStop, ShardingEnvelope
from cluster._settings import ShardingSettings
from persistence import PersistentActor, StopAfterPending

if TYPE_CHECKING:
    from cluster._direct import Routes, ShardLink

log = get_logger("cluster")

EntityFactory = Callable[[str], Actor]
Envelope = tuple[Any, ActorRef | None]


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """What every shard of one entity type needs (shared by the region and its shards)."""

    type_name: str
    factory: EntityFactory
    settings: ShardingSettings
    extractor: MessageExtractor
    routes: Routes
    """The fast path's state (:mod:`cluster._direct`)."""


class HandOff:
    """Region → shard: stop every entity with the stop message, then stop."""

    __slots__ = ()


class GetEntities:
    """Region → shard: reply with the ids of the running entities (a frozenset)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Returned:
    """Shard → region, when the shard stops: messages it held for passivating entities, to be
    routed again ahead of what the region buffered since."""

    shard_id: str
    envelopes: list[Envelope]


class _CheckIdle:
    __slots__ = ()


_CHECK_IDLE = _CheckIdle()
HAND_OFF = HandOff()
GET_ENTITIES = GetEntities()


def entity_name(entity_id: str) -> str:
    """The child actor name of an entity (its id, escaped where actor names need it)."""
    return quote(entity_id, safe="-_.:@&=+,!~*';()")


class ShardLogic:
    """The shard's behaviour, shared by :class:`Shard` and the remembering shard."""

    # The remembering shard is a PersistentActor: these attribute names stay clear of its own.
    def _init_shard(
        self, spec: ShardSpec, shard_id: str, epoch: int | None, link: ShardLink
    ) -> None:
        self._spec = spec
        self._shard_id = shard_id
        self._epoch = epoch
        self._routes = spec.routes
        self._link = link
        self._inbox = link.inbox
        self._entities: dict[str, ActorRef] = link.entities
        """Running entities that are not passivating."""
        self._ids: dict[ActorRef, str] = {}
        """Every live entity (passivating too), by ref."""
        self._passivating: dict[str, list[Envelope]] = {}
        """Entities asked to stop, with the messages (as received) that arrived for them since."""
        self._held = 0
        self._persistent: set[str] = set()
        """Entities whose instance is a PersistentActor (what SafeStop sends them)."""
        self._handing_off = False
        idle = spec.settings.passivate_idle_after
        self._idle_after = idle
        self._last_active: dict[str, float] = {}
        self._log = log.bind(type_name=spec.type_name, shard_id=shard_id)

    # What the actor base classes provide.
    context: Any

    def _start_idle_checks(self) -> None:
        if self._idle_after is not None:
            self.context.timers.start_periodic_timer(
                "passivate-idle", _CHECK_IDLE, self._idle_after / 2
            )

    # ------------------------------------------------------------------ messages

    def _handle(self, message: Any) -> None:
        cls = message.__class__
        if cls is ShardingEnvelope:
            self._deliver(message.entity_id, message.message, message)
            return
        if cls is Terminated:
            self._entity_terminated(message.ref)
        elif cls is Passivate:
            self._passivate_sender(message.stop_message)
        elif cls is _CheckIdle:
            self._passivate_idle()
        elif cls is HandOff:
            self._hand_off()
        elif cls is GetEntities:
            self.context.sender.tell(frozenset(self._entities))
        else:
            extractor = self._spec.extractor
            try:
                entity_id = extractor.entity_id(message)
                payload = extractor.unwrap(message)
            except Exception as error:
                self._unroutable(message, repr(error))
                return
            if entity_id.__class__ is not str or not entity_id:
                self._unroutable(message, f"entity id {entity_id!r}")
                return
            self._deliver(entity_id, payload, message)

    def _deliver(self, entity_id: str, payload: Any, original: Any) -> None:
        sender = runtime.current_envelope(self.context)[1]
        inbox = self._inbox
        count = inbox.get(entity_id)
        if count is not None:
            if count > 1:
                inbox[entity_id] = count - 1
            else:
                del inbox[entity_id]
        ref = self._entities.get(entity_id)
        if ref is not None and not ref.is_alive:
            # It stopped by itself (or failed past its supervisor) and its Terminated is still
            # on the way: forget it now, so that this message starts a new incarnation.
            self._entity_terminated(ref)
            ref = None
        if ref is not None:
            ref.tell(payload, sender)
            self._allow_direct(entity_id, ref)
        elif (held := self._passivating.get(entity_id)) is not None:
            if self._held >= self._spec.settings.buffer_size:
                self._drop(original, sender, entity_id)
                return
            held.append((original, sender))  # as received: it may go back to the region
            self._held += 1
        elif self._handing_off:
            # The region buffers this shard's messages now: give it back to be routed again.
            self.context.parent.tell(original, sender)
            return
        else:
            self._start_entity(entity_id, [(payload, sender)])
        if self._idle_after is not None:
            self._last_active[entity_id] = self.context.system.clock.time()

    def _unroutable(self, message: Any, why: str) -> None:
        context = self.context
        sender = runtime.current_envelope(context)[1]
        error = EntityIdError(
            f"cannot route {type(message).__name__} in shard {self._shard_id!r} of "
            f"{self._spec.type_name!r}: the extractor gave {why}"
        )
        self._log.warning("sharding_message_unroutable", error=str(error))
        runtime.publish_dead_letter(context.system, message, sender, context.self)
        runtime.fail_ask(sender, error)

    def _drop(self, message: Any, sender: ActorRef | None, entity_id: str) -> None:
        context = self.context
        self._log.warning(
            "sharding_buffer_full", entity_id=entity_id, buffer_size=self._spec.settings.buffer_size
        )
        runtime.publish_dead_letter(context.system, message, sender, context.self)
        runtime.fail_ask(
            sender,
            ShardingBufferFullError(
                self._spec.type_name, self._shard_id, self._spec.settings.buffer_size
            ),
        )

    # ------------------------------------------------------------------ entity lifecycle

    def _start_entity(self, entity_id: str, envelopes: list[Envelope]) -> None:
        """Start ``entity_id`` (recording it first with remember entities) and deliver."""

        def start() -> None:
            ref = self._spawn_entity(entity_id)
            for payload, sender in envelopes:
                ref.tell(payload, sender)

        self._remember_started(entity_id, start)

    def _spawn_entity(self, entity_id: str) -> ActorRef:
        spec = self._spec
        epoch = self._epoch
        factory = spec.factory

        persistent = self._persistent

        def make() -> Actor:
            instance = factory(entity_id)
            if isinstance(instance, PersistentActor):
                persistent.add(entity_id)
                if epoch is not None:
                    instance.owner_epoch = epoch
            return instance

        context = self.context
        ref: ActorRef = context.spawn(make, entity_name(entity_id))
        context.watch(ref)
        self._entities[entity_id] = ref
        self._ids[ref] = entity_id
        if self._idle_after is not None:
            self._last_active[entity_id] = context.system.clock.time()
        self._allow_direct(entity_id, ref)  # its first messages are told in this same turn
        return ref

    def _allow_direct(self, entity_id: str, ref: ActorRef) -> None:
        """Let tells reach the running entity directly if none for it is on the slow path."""
        if entity_id not in self._inbox and self._link.open:
            routes = self._routes
            if entity_id not in routes.queued:
                routes.direct[entity_id] = ref

    def _remember_started(self, entity_id: str, then: Callable[[], None]) -> None:
        then()

    def _remember_stopped(self, entity_id: str) -> None:
        return None

    def _passivate_sender(self, stop_message: Any) -> None:
        sender = runtime.current_envelope(self.context)[1]
        entity_id = self._ids.get(sender) if sender is not None else None
        if entity_id is None:
            self._log.warning(
                "passivate_from_unknown_sender",
                sender=sender.path if sender is not None else None,
                hint="an entity passivates with context.parent.tell(Passivate(), context.self)",
            )
            return
        self._passivate(entity_id, stop_message)

    def _passivate(self, entity_id: str, stop_message: Any) -> None:
        ref = self._entities.pop(entity_id, None)
        if ref is None:
            return  # already passivating
        self._disallow_direct(entity_id, ref)  # later tells are held until it stopped
        self._passivating[entity_id] = []
        self._last_active.pop(entity_id, None)
        self._send_stop(entity_id, ref, stop_message)

    def _send_stop(self, entity_id: str, ref: ActorRef, stop_message: Any) -> None:
        if stop_message is SafeStop:
            stop_message = StopAfterPending if entity_id in self._persistent else PoisonPill
        ref.tell(stop_message, self.context.self)

    def _passivate_idle(self) -> None:
        idle_after = self._idle_after
        assert idle_after is not None
        now = self.context.system.clock.time()
        last_active = self._last_active
        touched = self._routes.touched
        if touched:  # told directly since the last check (cluster._direct)
            for entity_id in last_active:
                if entity_id in touched:
                    touched.discard(entity_id)
                    last_active[entity_id] = now
        idle = [eid for eid, last in last_active.items() if now - last >= idle_after]
        stop_message = self._spec.settings.stop_message
        for entity_id in idle:
            self._log.debug("entity_passivated_idle", entity_id=entity_id)
            self._passivate(entity_id, stop_message)

    def _entity_terminated(self, ref: ActorRef) -> None:
        entity_id = self._ids.pop(ref, None)
        if entity_id is None:
            return
        self._disallow_direct(entity_id, ref)
        self._persistent.discard(entity_id)
        held = self._passivating.pop(entity_id, None)
        if self._handing_off:
            if held:
                self._give_back(held)
            self._entities.pop(entity_id, None)
            if not self._ids:
                self.context.stop(self.context.self)
            return
        if held is None:
            # Stopped by itself, or failed past its supervisor: forget it; the next message
            # starts a new one.
            if self._entities.get(entity_id) is ref:
                del self._entities[entity_id]
                self._last_active.pop(entity_id, None)
            self._log.debug("entity_stopped", entity_id=entity_id)
            return
        self._held -= len(held)
        if held:
            self._spawn_entity_for(entity_id, held)
        else:
            self._remember_stopped(entity_id)

    def _spawn_entity_for(self, entity_id: str, held: list[Envelope]) -> None:
        """A new incarnation for the messages that arrived while the old one stopped."""
        ref = self._spawn_entity(entity_id)
        unwrap = self._spec.extractor.unwrap
        for original, sender in held:
            if original.__class__ is ShardingEnvelope:
                payload = original.message
            else:
                payload = unwrap(original)
            ref.tell(payload, sender)

    def _disallow_direct(self, entity_id: str, ref: ActorRef) -> None:
        routes = self._routes
        if routes.direct.get(entity_id) is ref:
            del routes.direct[entity_id]
        if routes.touched is not None:
            routes.touched.discard(entity_id)

    def _hand_off(self) -> None:
        self._handing_off = True
        self._link.close(self._routes)
        context = self.context
        stop_message = self._spec.settings.stop_message
        for entity_id, ref in self._entities.items():
            self._send_stop(entity_id, ref, stop_message)
        self._entities.clear()
        self._last_active.clear()
        if not self._ids:
            context.stop(context.self)

    def _give_back(self, held: list[Envelope]) -> None:
        self._held -= len(held)
        self.context.parent.tell(Returned(self._shard_id, held))

    def _return_held(self) -> None:
        """On stop: messages still held for passivating entities go back to the region."""
        self._link.close(self._routes)
        held = [envelope for envelopes in self._passivating.values() for envelope in envelopes]
        self._passivating.clear()
        if held:
            self._give_back(held)


class Shard(ShardLogic, Actor):
    """The shard actor without remember entities."""

    def __init__(
        self, spec: ShardSpec, shard_id: str, epoch: int | None, link: ShardLink
    ) -> None:
        super().__init__()
        self._init_shard(spec, shard_id, epoch, link)

    def pre_start(self) -> None:
        self._start_idle_checks()

    def receive(self, message: Any) -> None:
        self._handle(message)

    def post_stop(self) -> None:
        self._return_held()
