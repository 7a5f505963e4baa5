"""Message extractors: which entity a message is for, its shard, and what the entity receives."""

from __future__ import annotations

import zlib
from typing import Any, Protocol, runtime_checkable

from cluster._errors import ShardingConfigError
from cluster._messages import ShardingEnvelope


def stable_hash(entity_id: str) -> int:
    """A hash of ``entity_id`` that is the same on every node and in every run (CRC-32 of its
    UTF-8 bytes; Python's ``hash()`` is salted per process)."""
    return zlib.crc32(entity_id.encode())


def default_shard_id(entity_id: str, number_of_shards: int) -> str:
    """The default shard of an entity: ``str(stable_hash(entity_id) % number_of_shards)``."""
    return str(zlib.crc32(entity_id.encode()) % number_of_shards)


@runtime_checkable
class MessageExtractor(Protocol):
    """Maps the messages a region receives to entities (Akka's ``ShardingMessageExtractor``).

    A region handles :class:`ShardingEnvelope` itself (entity id and message from the envelope,
    shard id from :meth:`shard_id`); every other message goes through :meth:`entity_id` and
    :meth:`unwrap`. ``shard_id`` must give the same answer on every node and in every run.
    """

    def entity_id(self, message: Any) -> str | None:
        """The id of the entity ``message`` is for, or None if it is for none."""
        ...

    def shard_id(self, entity_id: str) -> str:
        """The shard of the entity ``entity_id``."""
        ...

    def unwrap(self, message: Any) -> Any:
        """What the entity receives for ``message``."""
        ...


class HashMessageExtractor:
    """The default extractor: :class:`ShardingEnvelope` messages only, shard by stable hash.

    Subclass it and override :meth:`entity_id` (and :meth:`unwrap`) to route your own message
    types while keeping the hash-based shard ids.
    """

    __slots__ = ("number_of_shards",)

    def __init__(self, number_of_shards: int) -> None:
        if isinstance(number_of_shards, bool) or not isinstance(number_of_shards, int):
            raise ShardingConfigError(
                f"number_of_shards must be a positive int, got {number_of_shards!r}"
            )
        if number_of_shards < 1:
            raise ShardingConfigError(
                f"number_of_shards must be a positive int, got {number_of_shards!r}"
            )
        self.number_of_shards = number_of_shards

    def entity_id(self, message: Any) -> str | None:
        return message.entity_id if isinstance(message, ShardingEnvelope) else None

    def shard_id(self, entity_id: str) -> str:
        return str(zlib.crc32(entity_id.encode()) % self.number_of_shards)

    def unwrap(self, message: Any) -> Any:
        return message.message if isinstance(message, ShardingEnvelope) else message

    def __repr__(self) -> str:
        return f"HashMessageExtractor({self.number_of_shards})"
