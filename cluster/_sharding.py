"""``ClusterSharding``: the entry point (one per actor system), and ``EntityRef``."""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Callable
from typing import Any

from actorsys import Actor, ActorRef, ActorSystem, runtime
from cluster._direct import RegionRef, Routes
from cluster._errors import ShardingConfigError
from cluster._extractor import HashMessageExtractor, MessageExtractor
from cluster._local import LocalPlacement
from cluster._messages import ClusterShardingStats, RegionState, ShardingEnvelope
from cluster._placement import Placement, PlacementProvider
from cluster._region import GetRegionState, ShardRegion
from cluster._settings import ShardingSettings
from cluster._shard import ShardSpec

_TYPE_NAME = re.compile(r"[A-Za-z0-9_.:]+")
_instances: weakref.WeakKeyDictionary[ActorSystem, ClusterSharding] = weakref.WeakKeyDictionary()


class EntityRef:
    """A handle to one entity (``sharding.entity_ref(type_name, entity_id)``): messages go
    through its type's region, wrapped in :class:`ShardingEnvelope`, or straight to the entity
    when it runs on this node and nothing sent to it earlier can be overtaken."""

    __slots__ = ("_check", "_direct", "_region", "_touched", "entity_id", "type_name")

    def __init__(
        self,
        region: RegionRef,
        type_name: str,
        entity_id: str,
        check: Callable[[Any], None] | None = None,
    ) -> None:
        self._region = region
        self._direct = region._direct
        self._touched = region._touched
        self.type_name = type_name
        self.entity_id = entity_id
        self._check = check

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        """Send ``message`` to the entity (started on demand) without waiting. On a cluster, a
        message whose type the cluster's serializer does not know raises
        :class:`~persistence.SerializationError` naming it, and nothing is sent."""
        if self._check is not None:
            self._check(message)
        ref = self._direct.get(self.entity_id)
        if ref is not None and runtime.tell_if_alive(ref, message, sender):
            if self._touched is not None:
                self._touched.add(self.entity_id)
            return
        self._region.tell(ShardingEnvelope(self.entity_id, message), sender)

    def ask(self, message: Any, timeout: float = 5.0) -> asyncio.Future[Any]:
        """Send ``message`` and return an awaitable for the entity's first reply (as
        :meth:`actorsys.ActorRef.ask`: :class:`~actorsys.AskTimeoutError` after ``timeout``)."""
        if self._check is not None:
            self._check(message)
        ref = self._direct.get(self.entity_id)
        if ref is not None and ref.is_alive:
            if self._touched is not None:
                self._touched.add(self.entity_id)
            return ref.ask(message, timeout)
        return self._region.ask(ShardingEnvelope(self.entity_id, message), timeout)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, EntityRef)
            and other._region == self._region
            and other.entity_id == self.entity_id
        )

    def __hash__(self) -> int:
        return hash((self._region, self.entity_id))

    def __repr__(self) -> str:
        return f"EntityRef({self.type_name!r}, {self.entity_id!r})"


class ClusterSharding:
    """Sharding for an actor system: ``ClusterSharding(system)`` is the same object every time.

    ``start`` a region per entity type, then address entities through the region ref (with
    :class:`ShardingEnvelope` or your extractor's messages) or :meth:`entity_ref`. Without a
    ``Cluster`` extension every shard is local: this is the "get or start the actor for id X,
    passivate it when idle" registry of a single process. With one, the same code runs across
    the cluster's nodes.
    """

    _system: ActorSystem
    _placement: Placement | None
    _regions: dict[str, RegionRef]

    def __new__(cls, system: ActorSystem) -> ClusterSharding:
        existing = _instances.get(system)
        if existing is not None:
            return existing
        self = super().__new__(cls)
        self._system = system
        self._placement = None
        self._regions = {}
        _instances[system] = self
        return self

    @property
    def placement(self) -> Placement:
        """Where shards live: the ``Cluster`` extension's placement, or local placement."""
        if self._placement is None:
            provider = self._system.find_extension(PlacementProvider)
            self._placement = provider.placement if provider is not None else LocalPlacement()
        return self._placement

    def start(
        self,
        type_name: str,
        entity_factory: Callable[[str], Actor],
        *,
        settings: ShardingSettings | None = None,
        extractor: MessageExtractor | None = None,
    ) -> ActorRef:
        """Start the region of ``type_name`` on this node and return its ref.

        ``entity_factory(entity_id)`` returns a new entity instance; it is called inside the
        entity's spawn (again on every restart). ``extractor`` maps your messages to entity ids
        and shards (default: :class:`ShardingEnvelope` messages, sharded by stable hash over
        ``settings.number_of_shards``).
        """
        if not isinstance(type_name, str) or not _TYPE_NAME.fullmatch(type_name):
            raise ShardingConfigError(
                f"invalid entity type name {type_name!r}: use letters, digits, '_', '.' and ':' "
                "(it names the region's actor and the remember-entities persistence ids)"
            )
        if type_name in self._regions:
            raise ShardingConfigError(
                f"sharding of {type_name!r} is already started on this system: use "
                f"sharding.region({type_name!r}) or sharding.entity_ref({type_name!r}, id)"
            )
        if not callable(entity_factory):
            raise ShardingConfigError(
                f"entity_factory must be a callable taking the entity id, got {entity_factory!r}"
            )
        settings = settings if settings is not None else ShardingSettings()
        if not isinstance(settings, ShardingSettings):
            raise ShardingConfigError(f"settings must be ShardingSettings, got {settings!r}")
        if extractor is None:
            extractor = HashMessageExtractor(settings.number_of_shards)
        elif not isinstance(extractor, MessageExtractor):
            raise ShardingConfigError(
                f"extractor {extractor!r} is not a MessageExtractor: it needs entity_id(message), "
                "shard_id(entity_id) and unwrap(message)"
            )
        if settings.remember_entities:
            from cluster._remember import register_events
            from persistence import Persistence, PersistenceConfigError

            try:
                persistence = Persistence.of(self._system)
            except PersistenceConfigError as error:
                raise ShardingConfigError(
                    f"remember_entities for {type_name!r} needs a journal: {error}"
                ) from None
            register_events(persistence.serializer)
        placement = self.placement
        routes = Routes(extractor, idle_passivation=settings.passivate_idle_after is not None)
        spec = ShardSpec(type_name, entity_factory, settings, extractor, routes)
        spawned = self._system.spawn(lambda: ShardRegion(spec, placement), f"sharding-{type_name}")
        region = runtime.replace_ref(spawned, RegionRef).bind(routes)
        placement.register_region(type_name, region, role=settings.role)
        self._regions[type_name] = region
        return region

    def region(self, type_name: str) -> RegionRef:
        """The region ref of a started entity type."""
        region = self._regions.get(type_name)
        if region is None:
            started = ", ".join(repr(name) for name in sorted(self._regions)) or "none"
            raise ShardingConfigError(
                f"sharding of {type_name!r} is not started on this system (started: {started}): "
                f"call ClusterSharding(system).start({type_name!r}, factory) first"
            )
        return region

    def entity_ref(self, type_name: str, entity_id: str) -> EntityRef:
        """A ref to the entity ``entity_id`` of ``type_name`` (started on its first message)."""
        if not isinstance(entity_id, str) or not entity_id:
            raise ShardingConfigError(f"an entity id is a non-empty str, got {entity_id!r}")
        # a placement that sends across nodes can refuse a message it cannot encode at once
        check = getattr(self.placement, "check_sendable", None)
        return EntityRef(self.region(type_name), type_name, entity_id, check)

    async def region_state(
        self,
        type_name: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - the ask timeout, by the system's clock
    ) -> RegionState:
        """The shards of ``type_name`` running on this node, with their entities' ids."""
        state: RegionState = await self.region(type_name).ask(GetRegionState(), timeout)
        return state

    async def cluster_stats(
        self,
        type_name: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - each region's ask timeout, by the system's clock
    ) -> ClusterShardingStats:
        """Entities per shard of ``type_name`` on every node (this node only without a
        cluster); a node that does not answer within ``timeout`` seconds is left out."""
        self.region(type_name)
        nodes = await self.placement.cluster_stats(type_name, timeout)
        return ClusterShardingStats(type_name, nodes)

    def __repr__(self) -> str:
        return f"ClusterSharding({self._system.name!r}, types={sorted(self._regions)})"
