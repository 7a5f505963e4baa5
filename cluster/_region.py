"""The shard region: one per entity type per node; routes every message of its type.

A region talks to placement only through :class:`~cluster._placement.Placement`. For a message
it extracts the entity id and the shard id, then:

- the shard runs here: tell the shard actor (a child of the region);
- the shard is waiting (its home being resolved, its lease being taken, its entities being
  stopped for a hand-off or after a lost lease): buffer the message, in arrival order;
- the shard's home is another node: ``placement.send`` to it;
- the home is unknown: buffer, and ask ``placement.home_of``; a home on this node is taken with
  ``placement.acquire`` (its epoch goes to the shard's persistent entities), then the shard actor
  starts and gets the buffer.

Placement calls are coroutines run as system tasks whose outcome comes back as a message, so the
region never waits inside its handler. Buffers of all shards together hold at most
``buffer_size`` messages; beyond that a message goes to dead letters with a warning (an ask
fails at once with :class:`ShardingBufferFullError`).

Per shard, the region is in one of these states (absent: nothing pending)::

    (none) --unknown home--> RESOLVING --home here--> ACQUIRING --lease--> (running)
                                  |  \\--home elsewhere: send the buffer--> (none)
                                  +<--retry-- WAITING <--lease held elsewhere--+
    (running) --HandOffShard / shard stopped--> RELEASING --released--> RESOLVING or (none)
    (running) --lease lost--> STOPPING --shard stopped--> RESOLVING or (none)
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from actorsys import Actor, ActorRef, Directive, OneForOneStrategy, Terminated, runtime
from cluster._direct import LeaseLost as _LeaseLost
from cluster._direct import ShardLink
from cluster._errors import EntityIdError, ShardingBufferFullError, ShardingError
from cluster._logging import get_logger
from cluster._messages import RegionState, ShardingEnvelope
from cluster._placement import (
    GetShardStats,
    HandOffShard,
    Placement,
    ShardHandedOff,
    ShardHomeChanged,
    ShardStats,
    ShardUnavailableError,
)
from cluster._shard import GET_ENTITIES, HAND_OFF, Envelope, Returned, Shard, ShardSpec

log = get_logger("cluster")

_WARNING_BURST = 10
_WARNING_INTERVAL = 5.0


class _State(enum.Enum):
    RESOLVING = "resolving"
    ACQUIRING = "acquiring"
    WAITING = "waiting"
    RELEASING = "releasing"
    STOPPING = "stopping"


class _Pending:
    """A shard that is not running here and not known to live elsewhere: its buffer."""

    __slots__ = ("hand_off_to", "mail", "state", "token")

    def __init__(self, state: _State) -> None:
        self.state = state
        self.mail: deque[Envelope] = deque()
        self.token = 0
        self.hand_off_to: list[ActorRef | None] | None = None


@dataclass(frozen=True, slots=True)
class GetRegionState:
    """Ask a region for its :class:`RegionState`."""


@dataclass(frozen=True, slots=True)
class _HomeResolved:
    shard_id: str
    node: str | None
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class _Acquired:
    shard_id: str
    token: int
    epoch: int | None
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class _Released:
    shard_id: str


@dataclass(frozen=True, slots=True)
class _Retry:
    shard_id: str


@dataclass(frozen=True, slots=True)
class _StartShards:
    """Start these shards where their home is this node (remember entities)."""

    shard_ids: tuple[str, ...]


def shard_name(shard_id: str) -> str:
    """The child actor name of a shard."""
    return quote(shard_id, safe="-_.:@&=+,!~*';()")


def _stop_failed_shard(error: Exception) -> Directive:
    return Directive.STOP


class ShardRegion(Actor):
    """Routes the messages of one entity type (see the module docstring)."""

    # A shard that fails is stopped (its entities with it) and started again on demand.
    supervisor_strategy = OneForOneStrategy(_stop_failed_shard)

    def __init__(self, spec: ShardSpec, placement: Placement) -> None:
        super().__init__()
        self._spec = spec
        self._type_name = spec.type_name
        self._extractor = spec.extractor
        self._placement = placement
        self._node = placement.node
        self._buffer_size = spec.settings.buffer_size
        self._routes = spec.routes
        self._shards: dict[str, ActorRef] = {}
        self._links: dict[ActorRef, ShardLink] = {}
        """The fast-path state of every live shard (running or stopping)."""
        self._shard_ids: dict[ActorRef, str] = {}
        self._leases: dict[str, int] = {}
        """Shards whose lease this region holds, with the acquisition's token."""
        self._pending: dict[str, _Pending] = {}
        self._buffered = 0
        self._homes: dict[str, str] = {}
        self._tokens = 0
        self._warnings = 0
        self._warnings_window = 0.0
        self._warnings_suppressed = 0
        self._log = log.bind(type_name=spec.type_name, node=self._node)
        self._handlers: dict[type, Callable[[Any], None]] = {
            Terminated: self._on_terminated,
            _HomeResolved: self._on_home_resolved,
            _Acquired: self._on_acquired,
            _Released: self._on_released,
            _LeaseLost: self._on_lease_lost,
            _Retry: self._on_retry,
            Returned: self._on_returned,
            ShardHomeChanged: self._on_home_changed,
            HandOffShard: self._on_hand_off,
            GetShardStats: self._on_get_stats,
            GetRegionState: self._on_get_state,
            _StartShards: self._on_start_shards,
        }

    # ------------------------------------------------------------------ routing

    def receive(self, message: Any) -> None:
        cls = message.__class__
        if cls is ShardingEnvelope:
            entity_id = message.entity_id
            if entity_id.__class__ is not str or not entity_id:
                self._unroutable(message, f"the envelope's entity id is {entity_id!r}")
                return
        else:
            handler = self._handlers.get(cls)
            if handler is not None:
                handler(message)
                return
            try:
                entity_id = self._extractor.entity_id(message)
            except Exception as error:
                self._unroutable(message, f"the extractor raised {error!r}")
                return
            if entity_id.__class__ is not str or not entity_id:
                self._unroutable(
                    message,
                    f"the extractor gave entity id {entity_id!r} (wrap it in "
                    "ShardingEnvelope(entity_id, message), or pass an extractor that knows it)",
                )
                return
        try:
            shard_id = self._extractor.shard_id(entity_id)
        except Exception as error:
            self._unroutable(message, f"the extractor's shard_id({entity_id!r}) raised {error!r}")
            return
        if shard_id.__class__ is not str or not shard_id:
            self._unroutable(
                message, f"the extractor's shard_id({entity_id!r}) gave {shard_id!r}, not a str"
            )
            return
        sender = runtime.current_envelope(self.context)[1]
        shard = self._shards.get(shard_id)
        if shard is not None:
            self._routes.dequeue_id(entity_id)
            self._links[shard].sent(entity_id)
            shard.tell(message, sender)
        else:
            self._route(shard_id, message, sender)

    def _route(self, shard_id: str, message: Any, sender: ActorRef | None) -> None:
        """Route a message for a shard that does not run here."""
        pending = self._pending.get(shard_id)
        if pending is not None:
            self._buffer(pending, shard_id, message, sender)
            return
        home = self._homes.get(shard_id)
        if home is None:
            home = self._placement.cached_home(self._type_name, shard_id)
        if home is not None and home != self._node:
            self._send(home, shard_id, message, sender)
            return
        pending = self._pending[shard_id] = _Pending(_State.RESOLVING)
        self._buffer(pending, shard_id, message, sender)
        if home is None:
            self._resolve(shard_id, pending)
        else:
            self._acquire(shard_id, pending)

    def _buffer(
        self, pending: _Pending, shard_id: str, message: Any, sender: ActorRef | None
    ) -> None:
        if self._buffered >= self._buffer_size:
            self._routes.dequeue(message)
            error = ShardingBufferFullError(self._type_name, shard_id, self._buffer_size)
            self._warn("sharding_buffer_full", shard_id=shard_id, buffer_size=self._buffer_size)
            self._reject(message, sender, error)
            return
        pending.mail.append((message, sender))
        self._buffered += 1

    def _send(self, node: str, shard_id: str, message: Any, sender: ActorRef | None) -> None:
        self._routes.dequeue(message)
        try:
            self._placement.send(node, self._type_name, message, sender)
        except Exception as error:
            self._warn("sharding_send_failed", shard_id=shard_id, node=node, error=str(error))
            self._reject(message, sender, error)

    def _reject(self, message: Any, sender: ActorRef | None, error: BaseException) -> None:
        """``message`` cannot be delivered: dead letters, and the asker learns why at once."""
        runtime.publish_dead_letter(self.context.system, message, sender, self.context.self)
        runtime.fail_ask(sender, error)

    def _unroutable(self, message: Any, why: str) -> None:
        error = EntityIdError(
            f"cannot route {type(message).__name__} to an entity of {self._type_name!r}: {why}"
        )
        self._warn("sharding_message_unroutable", error=str(error))
        self._routes.dequeue(message)
        self._reject(message, runtime.current_envelope(self.context)[1], error)

    def _warn(self, event: str, **values: Any) -> None:
        """A warning, at most a burst per interval (a full buffer must not flood the log)."""
        now = self.context.system.clock.time()
        if now - self._warnings_window > _WARNING_INTERVAL:
            if self._warnings_suppressed:
                self._log.warning("sharding_warnings_suppressed", count=self._warnings_suppressed)
            self._warnings_window = now
            self._warnings = 0
            self._warnings_suppressed = 0
        self._warnings += 1
        if self._warnings <= _WARNING_BURST:
            self._log.warning(event, **values)
        else:
            self._warnings_suppressed += 1

    # ------------------------------------------------------------------ placement calls

    def _run(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        runtime.spawn_system_task(self.context.system, coroutine, name=name)

    def _resolve(self, shard_id: str, pending: _Pending) -> None:
        pending.state = _State.RESOLVING
        self._run(self._home_of(shard_id), f"sharding-home-{self._type_name}-{shard_id}")

    async def _home_of(self, shard_id: str) -> None:
        try:
            node = await self._placement.home_of(self._type_name, shard_id)
        except Exception as error:
            self.context.self.tell(_HomeResolved(shard_id, None, error))
        else:
            self.context.self.tell(_HomeResolved(shard_id, node, None))

    def _acquire(self, shard_id: str, pending: _Pending) -> None:
        pending.state = _State.ACQUIRING
        self._tokens += 1
        pending.token = self._tokens
        self._run(
            self._acquire_lease(shard_id, self._tokens),
            f"sharding-acquire-{self._type_name}-{shard_id}",
        )

    async def _acquire_lease(self, shard_id: str, token: int) -> None:
        me = self.context.self

        def on_lost() -> None:
            me.tell(_LeaseLost(shard_id, token))

        try:
            epoch = await self._placement.acquire(self._type_name, shard_id, on_lost)
        except Exception as error:
            me.tell(_Acquired(shard_id, token, None, error))
        else:
            me.tell(_Acquired(shard_id, token, epoch, None))

    def _release(self, shard_id: str) -> None:
        self._leases.pop(shard_id, None)
        self._run(self._release_lease(shard_id), f"sharding-release-{self._type_name}-{shard_id}")

    async def _release_lease(self, shard_id: str) -> None:
        me = self.context.self
        try:
            await self._placement.release(self._type_name, shard_id)
        except Exception as error:
            self._log.warning("shard_release_failed", shard_id=shard_id, error=repr(error))
        me.tell(_Released(shard_id))

    # ------------------------------------------------------------------ outcomes

    def _on_home_resolved(self, message: _HomeResolved) -> None:
        shard_id = message.shard_id
        pending = self._pending.get(shard_id)
        if pending is None or pending.state is not _State.RESOLVING:
            return  # a home change told meanwhile settled it
        if message.error is not None:
            if isinstance(message.error, ShardUnavailableError):
                self._wait(shard_id, pending)
            else:
                self._fail_pending(shard_id, pending, message.error)
            return
        node = message.node
        assert node is not None
        self._settle(shard_id, pending, node)

    def _settle(self, shard_id: str, pending: _Pending, node: str) -> None:
        """The shard's home is ``node``: take it here, or send the buffer there."""
        if node == self._node:
            self._acquire(shard_id, pending)
            return
        self._homes[shard_id] = node
        del self._pending[shard_id]
        self._buffered -= len(pending.mail)
        for message, sender in pending.mail:
            self._send(node, shard_id, message, sender)

    def _wait(self, shard_id: str, pending: _Pending) -> None:
        pending.state = _State.WAITING
        self._homes.pop(shard_id, None)
        self.context.timers.start_single_timer(
            ("retry", shard_id), _Retry(shard_id), self._spec.settings.retry_interval
        )

    def _on_retry(self, message: _Retry) -> None:
        pending = self._pending.get(message.shard_id)
        if pending is not None and pending.state is _State.WAITING:
            self._resolve(message.shard_id, pending)

    def _fail_pending(self, shard_id: str, pending: _Pending, error: BaseException) -> None:
        del self._pending[shard_id]
        self._buffered -= len(pending.mail)
        self._log.warning(
            "shard_home_unavailable",
            shard_id=shard_id,
            error=repr(error),
            dropped=len(pending.mail),
        )
        for message, sender in pending.mail:
            self._routes.dequeue(message)
            self._reject(message, sender, error)
        self._reply_handed_off(shard_id, pending)

    def _on_acquired(self, message: _Acquired) -> None:
        shard_id = message.shard_id
        pending = self._pending.get(shard_id)
        if pending is None or pending.state is not _State.ACQUIRING:
            return
        if pending.token != message.token:
            return
        if message.error is not None:
            if isinstance(message.error, ShardUnavailableError):
                self._log.debug("shard_held_elsewhere", shard_id=shard_id)
                self._wait(shard_id, pending)
            else:
                self._fail_pending(shard_id, pending, message.error)
            return
        self._leases[shard_id] = message.token
        if pending.hand_off_to is not None:
            # Handed off while the lease was being taken: give it straight back.
            pending.state = _State.RELEASING
            self._release(shard_id)
            return
        context = self.context
        spec = self._spec
        factory: Any
        if spec.settings.remember_entities:
            from cluster._remember import RememberingShard

            factory = RememberingShard
        else:
            factory = Shard
        epoch = message.epoch
        link = ShardLink(message.token)
        shard = context.spawn(lambda: factory(spec, shard_id, epoch, link), shard_name(shard_id))
        context.watch(shard)
        self._links[shard] = self._routes.shards[shard_id] = link
        self._shards[shard_id] = shard
        self._shard_ids[shard] = shard_id
        self._homes[shard_id] = self._node
        del self._pending[shard_id]
        self._buffered -= len(pending.mail)
        self._log.debug("shard_started", shard_id=shard_id, epoch=epoch)
        routes = self._routes
        for mail, sender in pending.mail:
            routes.dequeue(mail)
            link.sent(routes.entity_of(mail))
            shard.tell(mail, sender)

    def _on_lease_lost(self, message: _LeaseLost) -> None:
        shard_id = message.shard_id
        if self._leases.get(shard_id) != message.token:
            return
        del self._leases[shard_id]
        self._homes.pop(shard_id, None)
        self._log.warning("shard_lease_lost", shard_id=shard_id)
        self._shards.pop(shard_id, None)
        self._routes.shards.pop(shard_id, None)
        # Running, or stopping its entities for a hand-off: either way, stop it now.
        live = [ref for ref, running in self._shard_ids.items() if running == shard_id]
        if live:
            pending = self._pending.setdefault(shard_id, _Pending(_State.STOPPING))
            pending.state = _State.STOPPING
            for shard in live:
                self._links[shard].close(self._routes)  # later tells wait in the buffer
                self.context.stop(shard)

    def _on_terminated(self, message: Terminated) -> None:
        shard_id = self._shard_ids.pop(message.ref, None)
        if shard_id is None:
            return
        self._links.pop(message.ref).close(self._routes)  # what its mailbox held is gone
        if self._shards.get(shard_id) == message.ref:
            del self._shards[shard_id]
            del self._routes.shards[shard_id]
        pending = self._pending.get(shard_id)
        if pending is None:
            pending = self._pending[shard_id] = _Pending(_State.RELEASING)
            self._log.warning("shard_stopped_unexpectedly", shard_id=shard_id)
        self._homes.pop(shard_id, None)
        if shard_id in self._leases:
            pending.state = _State.RELEASING
            self._release(shard_id)
        else:  # the lease was lost: nothing to give back
            self._after_release(shard_id, pending)

    def _on_released(self, message: _Released) -> None:
        pending = self._pending.get(message.shard_id)
        if pending is not None and pending.state is _State.RELEASING:
            self._after_release(message.shard_id, pending)

    def _after_release(self, shard_id: str, pending: _Pending) -> None:
        self._reply_handed_off(shard_id, pending)
        if pending.mail:
            self._resolve(shard_id, pending)
        else:
            del self._pending[shard_id]

    def _reply_handed_off(self, shard_id: str, pending: _Pending) -> None:
        replies, pending.hand_off_to = pending.hand_off_to, None
        for reply_to in replies or ():
            if reply_to is not None:
                reply_to.tell(ShardHandedOff(self._type_name, shard_id), self.context.self)

    def _on_returned(self, message: Returned) -> None:
        """Messages a stopping shard held for its passivating entities: ahead of the buffer."""
        shard_id = message.shard_id
        pending = self._pending.get(shard_id)
        if pending is None:
            # The shard stopped on its own: buffer until its Terminated is handled.
            self._shards.pop(shard_id, None)
            self._routes.shards.pop(shard_id, None)
            pending = self._pending[shard_id] = _Pending(_State.RELEASING)
        routes = self._routes
        for original, _ in message.envelopes:
            entity_id = routes.entity_of(original)
            if entity_id is not None:
                routes.enqueue(entity_id)
        pending.mail.extendleft(reversed(message.envelopes))
        self._buffered += len(message.envelopes)

    # ------------------------------------------------------------------ region commands

    def _on_home_changed(self, message: ShardHomeChanged) -> None:
        shard_id, node = message.shard_id, message.node
        if shard_id in self._shards:
            return  # it runs here, under a lease: the lease decides, not the hint
        if node is None:
            self._homes.pop(shard_id, None)
            return
        pending = self._pending.get(shard_id)
        if node == self._node:
            self._homes.pop(shard_id, None)
            if pending is None and self._spec.settings.remember_entities:
                self._start_shard(shard_id)
            elif pending is not None and pending.state in (_State.RESOLVING, _State.WAITING):
                self._acquire(shard_id, pending)
            return
        self._homes[shard_id] = node
        if pending is not None and pending.state in (_State.RESOLVING, _State.WAITING):
            self._settle(shard_id, pending, node)

    def _on_hand_off(self, message: HandOffShard) -> None:
        shard_id = message.shard_id
        shard = self._shards.get(shard_id)
        pending = self._pending.get(shard_id)
        if shard is not None:
            if pending is None:
                del self._shards[shard_id]  # from now on its messages wait in the buffer
                del self._routes.shards[shard_id]
                self._links[shard].close(self._routes)
                pending = self._pending[shard_id] = _Pending(_State.RELEASING)
                self._log.debug("shard_hand_off", shard_id=shard_id)
                shard.tell(HAND_OFF)
            pending.hand_off_to = [*(pending.hand_off_to or ()), message.reply_to]
        elif pending is not None and pending.state in (_State.ACQUIRING, _State.RELEASING):
            pending.hand_off_to = [*(pending.hand_off_to or ()), message.reply_to]
        elif message.reply_to is not None:
            message.reply_to.tell(ShardHandedOff(self._type_name, shard_id), self.context.self)

    def _on_get_stats(self, message: GetShardStats) -> None:
        sender = self.context.sender
        self._gather(
            sender,
            lambda entities: ShardStats(
                self._type_name, self._node, {s: len(ids) for s, ids in entities.items()}
            ),
        )

    def _on_get_state(self, message: GetRegionState) -> None:
        sender = self.context.sender
        self._gather(sender, lambda entities: RegionState(self._type_name, self._node, entities))

    def _gather(self, reply_to: ActorRef, build: Any) -> None:
        shards = dict(self._shards)

        async def gather() -> None:
            entities: dict[str, frozenset[str]] = {}
            for shard_id, shard in shards.items():
                try:
                    entities[shard_id] = await shard.ask(GET_ENTITIES, 5.0)
                except Exception:  # the shard stopped meanwhile: it has no entities here
                    continue
            reply_to.tell(build(entities))

        self._run(gather(), f"sharding-state-{self._type_name}")

    def _on_start_shards(self, message: _StartShards) -> None:
        for shard_id in message.shard_ids:
            self._start_shard(shard_id)

    def _start_shard(self, shard_id: str) -> None:
        """Start a shard without a message, where its home is this node (remember entities)."""
        if shard_id in self._shards or shard_id in self._pending:
            return
        home = self._homes.get(shard_id) or self._placement.cached_home(self._type_name, shard_id)
        if home is not None and home != self._node:
            return
        pending = self._pending[shard_id] = _Pending(_State.RESOLVING)
        if home is None:
            self._resolve(shard_id, pending)
        else:
            self._acquire(shard_id, pending)

    # ------------------------------------------------------------------ lifecycle

    def pre_start(self) -> None:
        if self._spec.settings.remember_entities:
            self._run(self._start_remembered(), f"sharding-remembered-{self._type_name}")

    async def _start_remembered(self) -> None:
        from cluster._remember import remembered_shard_ids

        shard_ids = await remembered_shard_ids(self.context.system, self._type_name, self._log)
        if shard_ids:
            self.context.self.tell(_StartShards(shard_ids))

    def post_stop(self) -> None:
        self._placement.unregister_region(self._type_name)
        self._routes.direct.clear()
        self._routes.shards.clear()
        for shard_id in list(self._leases):
            self._run(
                self._placement.release(self._type_name, shard_id),
                f"sharding-release-{self._type_name}-{shard_id}",
            )
        self._leases.clear()
        for pending in self._pending.values():
            for message, sender in pending.mail:
                self._reject(
                    message, sender, ShardingError(f"shard region of {self._type_name!r} stopped")
                )
        self._pending.clear()
