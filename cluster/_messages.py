"""Sharding's public messages and inspection values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, final


@dataclass(frozen=True, slots=True, init=False)
class ShardingEnvelope:
    """A message for the entity ``entity_id``: what a region routes without a custom extractor
    (and what :class:`~cluster.EntityRef` sends with any extractor)."""

    entity_id: str
    message: Any

    def __init__(self, entity_id: str, message: Any) -> None:
        # Built once per message sent: the slots' setters cost less than the frozen
        # dataclass's object.__setattr__ calls.
        _set_entity_id(self, entity_id)
        _set_message(self, message)


_set_entity_id = vars(ShardingEnvelope)["entity_id"].__set__
_set_message = vars(ShardingEnvelope)["message"].__set__


@final
class _SafeStop:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SafeStop"


SafeStop: Final = _SafeStop()
"""The default stop message of passivation and hand-off: a shard sends a
:class:`~persistence.PersistentActor` entity ``persistence.StopAfterPending`` (it stops once its
persists in flight completed and the commands it held meanwhile were handled, so none is lost),
and any other entity ``PoisonPill``."""


@dataclass(frozen=True, slots=True)
class Passivate:
    """Told by an entity to its shard (``context.parent``) with itself as the sender, to be
    stopped: ``self.context.parent.tell(Passivate(), self.context.self)``.

    The shard sends the entity ``stop_message`` (default :data:`SafeStop`), holds the messages
    that arrive for it meanwhile, and starts a new incarnation for them once it stopped.
    """

    stop_message: Any = SafeStop


@dataclass(frozen=True, slots=True)
class RegionState:
    """The shards of one entity type on this node, each with the ids of its running entities."""

    type_name: str
    node: str
    shards: Mapping[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class ClusterShardingStats:
    """Entities per shard on every node hosting one entity type: ``nodes[node][shard_id]``."""

    type_name: str
    nodes: Mapping[str, Mapping[str, int]]

    @property
    def shards_per_node(self) -> dict[str, int]:
        """How many shards each node hosts."""
        return {node: len(shards) for node, shards in self.nodes.items()}

    @property
    def entity_count(self) -> int:
        """Running entities of the type, all nodes together."""
        return sum(sum(shards.values()) for shards in self.nodes.values())
