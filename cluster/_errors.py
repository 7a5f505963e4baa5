"""Sharding's errors, one hierarchy::

    ShardingError
    ├── ShardingConfigError       a type started twice, bad settings, an unknown type name
    ├── EntityIdError             a message the extractor cannot map to an entity
    └── ShardingBufferFullError   a message dropped because the region's buffer is full

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
