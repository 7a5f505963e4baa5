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

``import cluster`` needs only the base install: the names of the cluster on NATS (``Cluster``,
``ClusterSettings``, ``Member``, ``MemberUp``, ``MemberLeft``) are imported on first use, and
need the ``cluster`` extra (nats-py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from actorsys import runtime
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
from cluster._messages import (
    ClusterShardingStats,
    Passivate,
    RegionState,
    SafeStop,
    ShardingEnvelope,
)
from cluster._settings import ShardingSettings
from cluster._sharding import ClusterSharding, EntityRef

if TYPE_CHECKING:
    from cluster._cluster import Cluster, ClusterSettings, Member, MemberLeft, MemberUp

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
    "SafeStop",
    "ShardingBufferFullError",
    "ShardingConfigError",
    "ShardingEnvelope",
    "ShardingError",
    "ShardingSettings",
    "default_shard_id",
    "stable_hash",
]

# The names that need nats-py, and their module: imported on first use (PEP 562).
_NEED_NATS = {
    "Cluster": "cluster._cluster",
    "ClusterSettings": "cluster._cluster",
    "Member": "cluster._cluster",
    "MemberLeft": "cluster._cluster",
    "MemberUp": "cluster._cluster",
}


def _import_on_first_use(name: str) -> Any:
    module_name = _NEED_NATS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or error.name.partition(".")[0] != "nats":
            raise
        raise ImportError(
            f"cluster.{name} runs the cluster on NATS and needs nats-py, which is not installed: "
            "install the 'cluster' extra (pip install 'actorsys[cluster]'); sharding without a "
            "cluster (ClusterSharding in one process) works without it"
        ) from error
    value = getattr(module, name)
    globals()[name] = value  # later lookups do not come here
    runtime.publish(__name__, globals(), [name])
    return value


if not TYPE_CHECKING:  # type checkers see the imports above
    __getattr__ = _import_on_first_use


def __dir__() -> list[str]:
    return sorted({*globals(), *_NEED_NATS})


# cluster.ClusterSharding, not cluster._sharding.ClusterSharding (the NATS names on first use)
runtime.publish(__name__, globals(), [name for name in __all__ if name in globals()])
