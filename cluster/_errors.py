"""The cluster's errors, two hierarchies::

    ShardingError
    ├── ShardingConfigError       a type started twice, bad settings, an unknown type name
    ├── EntityIdError             a message the extractor cannot map to an entity
    └── ShardingBufferFullError   a message dropped because the region's buffer is full

    ClusterError                  the cluster cannot do what was asked (connection, settings)
    ├── CasFailedError            a compare-and-set write lost (internal: ownership is elsewhere)
    ├── ClusterUnavailableError   NATS or the coordinator is unreachable: nothing was sent
    └── RemoteError               the actor on another node raised while handling an ask

:class:`~cluster._placement.ShardUnavailableError` (another node holds the shard's lease) stays
between a region and its placement.
"""

from __future__ import annotations


class ShardingError(Exception):
    """Base of sharding's errors."""


class ShardingConfigError(ShardingError):
    """Sharding was set up or called in a way that cannot work; the message says the fix."""


class EntityIdError(ShardingError):
    """The message extractor could not map a message to an entity id (or a shard id)."""


class ShardingBufferFullError(ShardingError):
    """A region's buffer for shards without a home was full: the message went to dead letters."""

    def __init__(self, type_name: str, shard_id: str, buffer_size: int) -> None:
        super().__init__(
            f"sharding buffer full, type_name={type_name!r}, shard_id={shard_id!r}: "
            f"{buffer_size} messages are waiting for shards without a home; the message went to "
            "dead letters (raise ShardingSettings.buffer_size, or send less while shards move)"
        )
        self.type_name = type_name
        self.shard_id = shard_id
        self.buffer_size = buffer_size


class ClusterError(Exception):
    """The cluster cannot do what was asked; the message says why and what to do."""


class ClusterUnavailableError(ClusterError):
    """The node's connection to NATS is down (reconnecting), or no coordinator answers: the
    message was not sent."""


class RemoteError(ClusterError):
    """An actor on another node raised while handling an ask; ``type_name`` names the
    exception's class there, ``node`` the node it was raised on."""

    def __init__(self, type_name: str, detail: str, node: str) -> None:
        super().__init__(f"{type_name} on node {node!r}: {detail}")
        self.type_name = type_name
        self.detail = detail
        self.node = node

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str, str]]:
        return (RemoteError, (self.type_name, self.detail, self.node))
