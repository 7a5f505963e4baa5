"""The fast path: a tell for a running entity of this node goes straight to the entity's ref.

The slow path is three mailbox hops (region, shard, entity). A :class:`RegionRef` (the region's
ref) and :class:`~cluster.EntityRef` skip the first two for an entity found in
:attr:`Routes.direct`. The shard puts an entity there only while both hold:

- the entity runs and is not stopping: not passivating, its shard not handing off, the shard's
  lease not lost (the shard, or the region on a lost lease, takes it out *before* sending the
  stop, all on the loop's one thread, so later tells take the slow path and are buffered; a
  hand-off or a lost lease takes the shard's entities out as soon as it is told to the region's
  ref);
- no message for it is on the slow path: none in the region's mailbox or buffers
  (:attr:`Routes.queued`, counted at the slow-path tell, until the region passes the message on)
  and none in its shard's mailbox (:attr:`ShardLink.inbox`, counted when the region tells the
  shard, until the shard handles it). A later fast tell can then never overtake an earlier one.

Any message that takes the slow path takes its entity out of ``direct``. Only envelopes
(:class:`~cluster.ShardingEnvelope`, what ``EntityRef`` sends) take the fast path; messages of a
custom extractor are counted (so envelopes cannot overtake them) and always routed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from actorsys import ActorRef
from actorsys.runtime import tell_if_alive
from cluster._extractor import HashMessageExtractor, MessageExtractor
from cluster._messages import ShardingEnvelope
from cluster._placement import HandOffShard


class Routes:
    """What the region's ref, the region and its shards share (one entity type, one node)."""

    __slots__ = ("_custom", "direct", "queued", "shards", "touched")

    def __init__(self, extractor: MessageExtractor, *, idle_passivation: bool) -> None:
        self.direct: dict[str, ActorRef] = {}
        """Entity id -> ref, for entities a tell may reach directly (see the module docstring)."""
        self.queued: dict[str, int] = {}
        """Entity id -> messages for it in the region's mailbox or buffers."""
        self.shards: dict[str, ShardLink] = {}
        """Shard id -> link, for the shards running here (not handing off)."""
        self.touched: set[str] | None = set() if idle_passivation else None
        """With idle passivation: the entities a tell reached directly since their shard's last
        idle check (the shard counts them active at that check)."""
        self._custom = None if type(extractor) is HashMessageExtractor else extractor

    def entity_of(self, message: Any) -> str | None:
        """The entity id of a message a region routes, or None (not routable)."""
        entity_id: Any
        if message.__class__ is ShardingEnvelope:
            entity_id = message.entity_id
        elif self._custom is None:
            return None
        else:
            try:
                entity_id = self._custom.entity_id(message)
            except Exception:  # the region reports it when it routes the message
                return None
        return entity_id if entity_id.__class__ is str else None

    def enqueue(self, entity_id: str) -> None:
        """A message for ``entity_id`` takes the slow path."""
        self.direct.pop(entity_id, None)
        self.queued[entity_id] = self.queued.get(entity_id, 0) + 1

    def dequeue(self, message: Any) -> None:
        """The region passed ``message`` on (to a shard, another node, or dead letters)."""
        entity_id = self.entity_of(message)
        if entity_id is not None:
            self.dequeue_id(entity_id)

    def dequeue_id(self, entity_id: str) -> None:
        """The region passed a message for ``entity_id`` on."""
        count = self.queued.get(entity_id)
        if count is not None:
            if count > 1:
                self.queued[entity_id] = count - 1
            else:
                del self.queued[entity_id]


class ShardLink:
    """One running shard's part of the routes: shared by the region and that shard."""

    __slots__ = ("entities", "inbox", "open", "token")

    def __init__(self, token: int) -> None:
        self.token = token
        """The region's token of the lease acquisition the shard runs under."""
        self.inbox: dict[str, int] = {}
        """Entity id -> messages for it the region told the shard that it has not handled."""
        self.entities: dict[str, ActorRef] = {}
        """The shard's running entities (the shard's own dict)."""
        self.open = True
        """False once the shard hands off or lost its lease: it adds no entity to ``direct``."""

    def sent(self, entity_id: str | None) -> None:
        """The region told the shard a message for ``entity_id``."""
        if entity_id is not None:
            self.inbox[entity_id] = self.inbox.get(entity_id, 0) + 1

    def close(self, routes: Routes) -> None:
        """Take the shard's entities out of ``direct`` (before they are stopped)."""
        self.open = False
        direct = routes.direct
        for entity_id, ref in self.entities.items():
            if direct.get(entity_id) is ref:
                del direct[entity_id]


@dataclass(frozen=True, slots=True)
class LeaseLost:
    """Placement → region (through the region's ref): the lease of the shard's acquisition
    ``token`` is lost."""

    shard_id: str
    token: int


CLOSING = frozenset({HandOffShard, LeaseLost})
"""Region messages that stop a shard's entities."""


class RegionRef(ActorRef):
    """A shard region's ref: an envelope for an entity in :attr:`Routes.direct` goes straight
    to it, anything else to the region (made by ``runtime.replace_ref``; see :meth:`bind`)."""

    __slots__ = ("_direct", "_routes", "_touched")

    _direct: dict[str, ActorRef]
    _routes: Routes
    _touched: set[str] | None

    def bind(self, routes: Routes) -> RegionRef:
        self._routes = routes
        self._direct = routes.direct
        self._touched = routes.touched
        return self

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        entity_id: Any
        if message.__class__ is ShardingEnvelope:
            entity_id = message.entity_id
            if entity_id.__class__ is str:
                ref = self._direct.get(entity_id)
                if ref is not None and tell_if_alive(ref, message.message, sender):
                    if self._touched is not None:
                        self._touched.add(entity_id)
                    return
                self._routes.enqueue(entity_id)
        elif message.__class__ in CLOSING:
            # A hand-off or a lost lease: tells from now on reach the shard's entities only
            # after the region handled it (buffered, for their next incarnation).
            closing = cast("HandOffShard | LeaseLost", message)
            link = self._routes.shards.get(closing.shard_id)
            if link is not None and getattr(closing, "token", link.token) == link.token:
                link.close(self._routes)
        elif self._routes._custom is not None:
            entity_id = self._routes.entity_of(message)
            if entity_id is not None:
                self._routes.enqueue(entity_id)
        ActorRef.tell(self, message, sender)
