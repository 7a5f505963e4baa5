"""cluster: sharding of entities across one process or many nodes (NATS + a shared journal).

``ClusterSharding(system).start(type_name, factory)`` returns a region ref that routes each
message to the entity it names (:class:`ShardingEnvelope`, or your :class:`MessageExtractor`),
starting entities on demand and passivating idle ones. Without a cluster configured every shard
is local; with one, shards are spread over the nodes. Modules: ``_sharding`` (the entry point,
``EntityRef``), ``_region`` (routing, buffering), ``_shard`` (entities, passivation),
``_remember`` (remember entities), ``_extractor``, ``_settings``, ``_messages``, ``_errors``,
``_placement`` (the seam between regions and placement) and ``_local`` (local placement). The
cluster on NATS: ``_cluster`` (the ``Cluster`` extension), ``_nats`` (connection, key-value
compare-and-set), ``_membership``, ``_leases``, ``_coordinator``, ``_transport`` and
``_distributed`` (the NATS placement).
"""

from cluster._cluster import Cluster, ClusterSettings, Member, MemberLeft, MemberUp
from cluster._errors import (
    ClusterError,
    ClusterUnavailableError,
    EntityIdError,
    RemoteError,
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
    "Cluster",
    "ClusterError",
    "ClusterSettings",
    "ClusterSharding",
    "ClusterShardingStats",
    "ClusterUnavailableError",
    "EntityIdError",
    "EntityRef",
    "HashMessageExtractor",
    "Member",
    "MemberLeft",
    "MemberUp",
    "MessageExtractor",
    "Passivate",
    "RegionState",
    "RemoteError",
    "ShardingBufferFullError",
    "ShardingConfigError",
    "ShardingEnvelope",
    "ShardingError",
    "ShardingSettings",
    "default_shard_id",
    "stable_hash",
]
