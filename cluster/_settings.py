"""``ShardingSettings``: how one entity type is sharded (a frozen value, checked when built)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster._errors import ShardingConfigError
from cluster._messages import SafeStop


@dataclass(frozen=True, slots=True)
class ShardingSettings:
    """How one entity type is sharded.

    - ``number_of_shards``: shards of the default extractor (fixed for the life of a cluster;
      rule of thumb: ten times the largest number of nodes).
    - ``passivate_idle_after``: seconds without a message through sharding after which an
      entity is stopped (passivated); ``None`` turns idle passivation off. Time is the actor
      system's clock.
    - ``remember_entities``: record which entities run in each shard (in the system's journal)
      and start them again when the shard starts (after a restart, a hand-off or a crash).
    - ``buffer_size``: messages a region holds for shards without a home (being allocated,
      moved, or started), all shards together; more go to dead letters with a warning.
    - ``role``: only nodes with this role host the type (``None``: every node).
    - ``stop_message``: what an entity is sent to stop it on idle passivation and hand-off
      (default :data:`~cluster.SafeStop`: a persistent entity stops after the commands it holds
      while persisting, any other at once; a custom message must make the entity stop itself).
    - ``retry_interval``: seconds before a region asks again for the home of a shard that could
      not be taken (another node still held its lease).
    """

    number_of_shards: int = 100
    passivate_idle_after: float | None = 120.0
    remember_entities: bool = False
    buffer_size: int = 100_000
    role: str | None = None
    stop_message: Any = SafeStop
    retry_interval: float = 0.5

    def __post_init__(self) -> None:
        if (
            isinstance(self.number_of_shards, bool)
            or not isinstance(self.number_of_shards, int)
            or self.number_of_shards < 1
        ):
            raise ShardingConfigError(
                f"number_of_shards must be a positive int, got {self.number_of_shards!r}"
            )
        idle = self.passivate_idle_after
        if idle is not None and (
            isinstance(idle, bool) or not isinstance(idle, int | float) or not idle > 0
        ):
            raise ShardingConfigError(
                "passivate_idle_after must be a positive number of seconds or None (off), "
                f"got {idle!r}"
            )
        if (
            isinstance(self.buffer_size, bool)
            or not isinstance(self.buffer_size, int)
            or self.buffer_size < 0
        ):
            raise ShardingConfigError(f"buffer_size must be an int >= 0, got {self.buffer_size!r}")
        if not isinstance(self.retry_interval, int | float) or not self.retry_interval > 0:
            raise ShardingConfigError(
                f"retry_interval must be a positive number of seconds, got {self.retry_interval!r}"
            )
