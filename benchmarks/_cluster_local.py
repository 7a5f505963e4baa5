"""Local-mode sharding next to plain refs, in one process (imported only when they run).

The same entities either way: ``entities`` counting actors, each message handled by the trivial
handler. The baseline tells each actor's ref directly; the sharded variant tells the region a
:class:`~cluster.ShardingEnvelope` per message (built in the loop, as an application does), and
the region routes it through the entity's shard, starting entities on their first message.
"""

from __future__ import annotations

import asyncio
from typing import Any

from actorsys import Actor, ActorSystem
from benchmarks._common import clock, rate, work
from benchmarks._harness import Result


class _Countdown:
    """Resolves :attr:`warm` after the first ``warm_up`` ticks and :attr:`done` after
    ``warm_up + count`` (both variants count with it, so their per-message cost is the same)."""

    __slots__ = ("_mark", "done", "remaining", "warm")

    def __init__(self, count: int, warm_up: int) -> None:
        loop = asyncio.get_running_loop()
        self.remaining = count + warm_up
        self._mark = count
        self.warm: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        if warm_up == 0:
            self.warm.set_result(None)

    def tick(self) -> None:
        self.remaining -= 1
        if self.remaining == self._mark:
            self.warm.set_result(None)
        elif self.remaining == 0:
            self.done.set_result(None)


class _Counting(Actor):
    """Calls the trivial handler, then ticks the shared countdown."""

    def __init__(self, countdown: _Countdown) -> None:
        super().__init__()
        self._tick = countdown.tick

    def receive(self, message: Any) -> None:
        work(message)
        self._tick()


async def direct_tell(n: int, entities: int) -> Result:
    """``n`` tells spread round-robin over ``entities`` actors, straight to their refs."""
    per = n // entities
    async with ActorSystem("bench") as system:
        countdown = _Countdown(per * entities, 0)
        refs = [system.spawn(lambda: _Counting(countdown), f"e{i}") for i in range(entities)]
        await asyncio.sleep(0)
        started = clock()
        for i in range(per):
            for ref in refs:
                ref.tell(i)
        await countdown.done
        elapsed = clock() - started
    return {"msg/s": rate(per * entities, elapsed)}


async def sharded_tell(n: int, entities: int) -> Result:
    """The same tells through the region of a sharded type (all shards local); the entities
    are started by a first round of messages before the clock starts."""
    from cluster import ClusterSharding, ShardingEnvelope, ShardingSettings

    per = n // entities
    async with ActorSystem("bench") as system:
        countdown = _Countdown(per * entities, entities)
        region = ClusterSharding(system).start(
            "Counter",
            lambda entity_id: _Counting(countdown),
            settings=ShardingSettings(number_of_shards=100, passivate_idle_after=None),
        )
        ids = [f"e{i}" for i in range(entities)]
        for entity_id in ids:  # warm-up: shards and entities started, untimed
            region.tell(ShardingEnvelope(entity_id, -1))
        await countdown.warm
        started = clock()
        for i in range(per):
            for entity_id in ids:
                region.tell(ShardingEnvelope(entity_id, i))
        await countdown.done
        elapsed = clock() - started
    return {"msg/s": rate(per * entities, elapsed)}
