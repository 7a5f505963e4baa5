"""Where shards live: the seam between a shard region and whatever decides placement.

A region never talks to NATS or a coordinator itself: it asks its :class:`Placement`. In local
mode (no :class:`~cluster.Cluster` configured) every shard lives on this node and has no epoch;
with a cluster, the NATS placement allocates shards through the coordinator, holds their leases
and carries messages to other nodes.

Calls from the region to the placement are coroutines the region runs outside its message
handler (it pipes their outcome back to itself as a message); calls from the placement to the
region are messages told to the region's ref (:class:`RegionCommand` subclasses below).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from actorsys import ActorRef, Extension

LOCAL_NODE = "local"
"""The node name of a process that runs without a cluster."""


class ShardUnavailableError(Exception):
    """The shard's lease is held by another node (or could not be taken): route again later."""


class Placement(Protocol):
    """What a region needs from placement; one instance serves every region of a node."""

    @property
    def node(self) -> str:
        """This node's name."""
        ...

    def register_region(self, type_name: str, region: ActorRef, *, role: str | None = None) -> None:
        """Messages for ``type_name`` arriving from other nodes, and region commands, go to
        ``region`` from now on. This node hosts shards of the type only if it has ``role``
        (``ShardingSettings.role``; None: every node); without it, the region only routes."""
        ...

    def unregister_region(self, type_name: str) -> None: ...

    def cached_home(self, type_name: str, shard_id: str) -> str | None:
        """The shard's owner node as last known on this node (no I/O), or None."""
        ...

    async def home_of(self, type_name: str, shard_id: str) -> str:
        """The shard's owner node, allocating it (through the coordinator) on first use.

        Raise an error that says why when no node can host the shard: the region then fails the
        asks among the messages it buffered for the shard with that error, and sends the other
        messages to dead letters."""
        ...

    async def acquire(
        self, type_name: str, shard_id: str, on_lost: Callable[[], None]
    ) -> int | None:
        """Take the shard's lease for this node and keep renewing it; return its epoch (a
        fencing token, strictly higher than every earlier acquisition's; None in local mode).
        ``on_lost`` is called (on the event loop) when the lease can no longer be renewed: the
        region must stop the shard's entities at once (self-fencing). Raises
        :class:`ShardUnavailableError` if another node holds it."""
        ...

    async def release(self, type_name: str, shard_id: str) -> None:
        """Give the lease up (after the shard's entities stopped)."""
        ...

    def send(self, node: str, type_name: str, message: Any, sender: ActorRef | None) -> None:
        """Deliver ``message`` (still wrapped as the region received it) to ``node``'s region of
        ``type_name``, in order per sender. Raises an error naming the type if ``message`` cannot
        be serialized."""
        ...

    async def cluster_stats(
        self,
        type_name: str,
        timeout: float,  # noqa: ASYNC109 - each region's ask timeout, by the system's clock
    ) -> dict[str, dict[str, int]]:
        """Entities per shard of ``type_name`` on every node hosting it: ``{node: {shard_id:
        count}}``. Each node's region answers :class:`GetShardStats` with :class:`ShardStats`
        (locally: ``region.ask(GetShardStats(), timeout)``); a node that does not answer within
        ``timeout`` seconds is left out."""
        ...


class PlacementProvider(Extension):
    """An actor-system extension that places shards (the ``Cluster`` extension is one).

    ``ClusterSharding(system)`` uses the system's provider's placement; without one, every shard
    is local (:class:`~cluster._local.LocalPlacement`).
    """

    @property
    def placement(self) -> Placement:
        """The placement every region of this system talks to (available once started)."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class RegionCommand:
    """A message from the placement to a region."""


@dataclass(frozen=True, slots=True)
class ShardHomeChanged(RegionCommand):
    """The shard now lives on ``node`` (None: unknown, being moved): forget the cached home.

    Messages the region buffered for the shard go to ``node``; with remember entities, a region
    told that a shard now lives on its own node starts the shard (and its remembered entities)
    at once, without waiting for a message."""

    shard_id: str
    node: str | None


@dataclass(frozen=True, slots=True)
class HandOffShard(RegionCommand):
    """Stop the shard's entities, buffer its messages, release the lease, then tell ``reply_to``
    :class:`ShardHandedOff`."""

    shard_id: str
    reply_to: ActorRef | None = None


@dataclass(frozen=True, slots=True)
class ShardHandedOff:
    type_name: str
    shard_id: str


@dataclass(frozen=True, slots=True)
class GetShardStats(RegionCommand):
    """Ask a region for its entities per shard; it replies :class:`ShardStats`."""


@dataclass(frozen=True, slots=True)
class ShardStats:
    """A region's answer to :class:`GetShardStats`: ``shards[shard_id]`` = running entities."""

    type_name: str
    node: str
    shards: dict[str, int]
