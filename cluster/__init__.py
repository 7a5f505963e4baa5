"""cluster: sharding of entities across one process or many nodes (NATS + a shared journal).

``ClusterSharding(system).start(type_name, factory)`` returns a region ref that routes each
message to the entity it names (:class:`ShardingEnvelope`, or your :class:`MessageExtractor`),
starting entities on demand and passivating idle ones. Without a cluster configured every shard
is local; with one, shards are spread over the nodes. Modules: ``_sharding`` (the entry point,
``EntityRef``), ``_region`` (routing, buffering), ``_shard`` (entities, passivation),
``_remember`` (remember entities), ``_extractor``, ``_settings``, ``_messages``, ``_errors``,
``_placement`` (the seam between regions and placement) and ``_local`` (local placement).
"""

from cluster._errors import (
    EntityIdError,
    ShardingBufferFullError,
    ShardingConfigError,
    ShardingError,
)
from cluster._extractor import (
    HashMessageExtractor,
    MessageExtractor,
    default_shard_id,
    stable_hash,
)
from cluster._messages import ClusterShardingStats, Passivate, RegionState, ShardingEnvelope
from cluster._settings import ShardingSettings
from cluster._sharding import ClusterSharding, EntityRef

__all__ = [
    "ClusterSharding",
    "ClusterShardingStats",
    "EntityIdError",
    "EntityRef",
    "HashMessageExtractor",
    "MessageExtractor",
    "Passivate",
    "RegionState",
    "ShardingBufferFullError",
    "ShardingConfigError",
    "ShardingEnvelope",
    "ShardingError",
    "ShardingSettings",
    "default_shard_id",
    "stable_hash",
]
