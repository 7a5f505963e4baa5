"""A node of the cluster benchmarks: ``python -m benchmarks._cluster_node NATS_URL NAME NODE
SHARDS [SETTINGS_JSON]``.

It hosts the ``Echo`` entity type (role ``echo``): an entity answers :class:`Ping` with
:class:`Pong` and counts :class:`Tick` tells, answering :class:`Count` with how many it got. It
prints ``ready`` once it is a member, and leaves gracefully (hand-off) at the end of its stdin or
on SIGTERM. The measuring process joins the same cluster as a node without the role (see
:func:`driver`), so every routed message crosses processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from actorsys import Actor, ActorSystem
from persistence.serialization import Serializer

TYPE_NAME = "Echo"
ROLE = "echo"
READY = "ready"

serializer = Serializer()


@serializer.type("Ping")
@dataclass(frozen=True, slots=True)
class Ping:
    value: int


@serializer.type("Pong")
@dataclass(frozen=True, slots=True)
class Pong:
    value: int
    node: str


@serializer.type("Tick")
@dataclass(frozen=True, slots=True)
class Tick:
    value: int


@serializer.type("Count")
@dataclass(frozen=True, slots=True)
class Count:
    pass


@serializer.type("Counted")
@dataclass(frozen=True, slots=True)
class Counted:
    ticks: int


class Echo(Actor):
    node = ""

    def __init__(self, entity_id: str) -> None:
        super().__init__()
        self.ticks = 0

    def receive(self, message: Any) -> None:
        cls = message.__class__
        if cls is Tick:
            self.ticks += 1
        elif cls is Ping:
            self.context.sender.tell(Pong(message.value, self.node))
        elif cls is Count:
            self.context.sender.tell(Counted(self.ticks))
        else:
            self.unhandled(message)


def _cluster(url: str, name: str, node: str, roles: tuple[str, ...], settings: str) -> Any:
    from cluster import Cluster, ClusterSettings

    return Cluster(
        url,
        node=node,
        roles=roles,
        name=name,
        settings=ClusterSettings(**json.loads(settings)),
        serializer=serializer,
    )


def _start_sharding(system: ActorSystem, shards: int) -> Any:
    from cluster import ClusterSharding, ShardingSettings

    sharding = ClusterSharding(system)
    sharding.start(
        TYPE_NAME,
        Echo,
        settings=ShardingSettings(number_of_shards=shards, role=ROLE, passivate_idle_after=None),
    )
    return sharding


async def hosts(cluster: Any, count: int) -> None:
    """Until ``count`` members announce that they host the type (as this node sees them)."""
    while sum(TYPE_NAME in m.types for m in cluster.members()) < count:  # noqa: ASYNC110
        await asyncio.sleep(0.01)  # membership is a watched bucket: nothing to wait on here


@contextlib.asynccontextmanager
async def driver(
    url: str, name: str, shards: int, settings: str = "{}", node: str = "driver", nodes: int = 3
) -> AsyncIterator[Any]:
    """This process as a node without the entity role: it routes, hosts nothing. Yields its
    ``ClusterSharding`` once it sees ``nodes`` members hosting the type."""
    cluster = _cluster(url, name, node, (), settings)
    async with ActorSystem(node, extensions=[cluster]) as system:
        sharding = _start_sharding(system, shards)
        async with asyncio.timeout(60):
            await hosts(cluster, nodes)
        yield sharding


async def _serve(url: str, name: str, node: str, shards: int, settings: str) -> None:
    Echo.node = node
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    cluster = _cluster(url, name, node, (ROLE,), settings)
    async with ActorSystem(node, extensions=[cluster]) as system:
        _start_sharding(system, shards)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        reading = loop.create_task(reader.read())  # until EOF
        reading.add_done_callback(lambda _: done.set())
        print(READY, flush=True)
        await done.wait()
        reading.cancel()


if __name__ == "__main__":
    import uvloop

    url, name, node, shards = sys.argv[1:5]
    uvloop.run(_serve(url, name, node, int(shards), sys.argv[5] if len(sys.argv) > 5 else "{}"))
