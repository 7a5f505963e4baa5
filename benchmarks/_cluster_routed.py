"""The routed variants of the cluster cases: three node processes host the ``Echo`` type, this
process joins as a node without the role and sends (see :mod:`benchmarks._cluster_node`).

Node processes are started untimed, for every run (and every failover round) anew, in a cluster
of a new name; they are killed once measured (the measuring node leaves first, gracefully).

Failover: every entity of the victim's shards is asked once a round with a short timeout until
it answers from another node; the time from the SIGKILL (or SIGTERM, for a graceful hand-off) to
the last shard answering again is the round's figure.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import signal
import statistics
from typing import Any

from benchmarks._cluster_node import Count, Counted, Ping, Pong, Tick, driver
from benchmarks._cluster_procs import children
from benchmarks._common import clock, rate
from benchmarks._harness import Result

NODES = 3
SHARDS = 30
ENTITIES = 300
IN_FLIGHT = 100
RETRY_TIMEOUT = 0.5
ROUND_LIMIT = 120.0

_rounds = itertools.count(1)


def _specs(url: str, name: str, settings: str) -> list[tuple[str, str, list[str]]]:
    return [
        (f"n{i}", "benchmarks._cluster_node", [url, name, f"n{i}", str(SHARDS), settings])
        for i in range(1, NODES + 1)
    ]


def _ids() -> list[str]:
    return [f"e{i}" for i in range(ENTITIES)]


async def _warm_up(sharding: Any, ids: list[str]) -> dict[str, str]:
    """Ask every entity once (allocating every shard); the node each one answered from."""
    homes: dict[str, str] = {}

    async def one(entity_id: str) -> None:
        deadline = clock() + ROUND_LIMIT
        while True:
            try:
                pong = await sharding.entity_ref("Echo", entity_id).ask(Ping(0), timeout=5.0)
            except Exception:
                if clock() > deadline:
                    raise
                await asyncio.sleep(0.05)
            else:
                homes[entity_id] = pong.node
                return

    await asyncio.gather(*(one(entity_id) for entity_id in ids))
    return homes


async def routed_ask(n: int, url: str, cluster_name: str, settings: str = "{}") -> Result:
    """``n`` asks over ``ENTITIES`` entities on three node processes, ``IN_FLIGHT`` at a time."""
    name = _fresh(cluster_name)
    async with (
        children(_specs(url, name, settings), graceful=False),
        driver(url, name, SHARDS, settings) as sharding,
    ):
        ids = _ids()
        await _warm_up(sharding, ids)
        refs = [sharding.entity_ref("Echo", entity_id) for entity_id in ids]
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                pong = await refs[i % ENTITIES].ask(Ping(i), timeout=30.0)
                if pong.value != i:
                    raise AssertionError(f"ask {i} answered with {pong!r}")

        started = clock()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        elapsed = clock() - started
    return {"round trips/s": rate(n, elapsed)}


async def routed_tell(n: int, url: str, cluster_name: str, settings: str = "{}") -> Result:
    """``n`` tells over the entities, timed until the entities counted them all."""
    name = _fresh(cluster_name)
    async with (
        children(_specs(url, name, settings), graceful=False),
        driver(url, name, SHARDS, settings) as sharding,
    ):
        ids = _ids()
        await _warm_up(sharding, ids)
        refs = [sharding.entity_ref("Echo", entity_id) for entity_id in ids]
        before = await _counted(refs)
        started = clock()
        for i in range(n):
            refs[i % ENTITIES].tell(Tick(i))
        # the counters live in other processes: poll them (no event to wait on here)
        while await _counted(refs) - before < n:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        elapsed = clock() - started
    return {"msg/s": rate(n, elapsed)}


async def _counted(refs: list[Any]) -> int:
    answers: list[Counted] = await asyncio.gather(*(ref.ask(Count(), timeout=30.0) for ref in refs))
    return sum(answer.ticks for answer in answers)


async def _served_elsewhere(sharding: Any, victims: list[str], victim: str) -> None:
    """Until every entity in ``victims`` answered from a node other than ``victim``."""
    pending = set(victims)

    async def one(entity_id: str) -> None:
        ref = sharding.entity_ref("Echo", entity_id)
        while True:
            try:
                pong: Pong = await ref.ask(Ping(1), timeout=RETRY_TIMEOUT)
            except Exception:
                await asyncio.sleep(0.01)
                continue
            if pong.node != victim:
                pending.discard(entity_id)
                return
            await asyncio.sleep(0.01)

    async with asyncio.timeout(ROUND_LIMIT):
        await asyncio.gather(*(one(entity_id) for entity_id in sorted(pending)))


async def _coordinator(url: str, name: str) -> str | None:
    from cluster._status import read_status

    return (await read_status([url], name=name)).coordinator


async def _one_round(
    url: str, name: str, settings: str, graceful: bool, coordinator: bool = False
) -> float:
    """Seconds from ending one node to all its shards answering from the others; the node
    is the coordinator's with ``coordinator``, another one otherwise."""
    async with (
        children(_specs(url, name, settings), graceful=False) as nodes,
        driver(url, name, SHARDS, settings) as sharding,
    ):
        homes = await _warm_up(sharding, _ids())
        chief = await _coordinator(url, name)
        victim = next(n for n in nodes if (n.name == chief) == coordinator)
        # one entity per shard the victim hosts is enough: a shard answers as a whole
        by_shard: dict[str, str] = {}
        from cluster import default_shard_id

        for entity_id, node in homes.items():
            if node == victim.name:
                by_shard.setdefault(default_shard_id(entity_id, SHARDS), entity_id)
        if not by_shard:
            raise AssertionError(
                f"node {victim.name} hosts no shard after the warm-up (coordinator {chief}, "
                f"homes {sorted(collections.Counter(homes.values()).items())})"
            )
        started = clock()
        victim.signal(signal.SIGTERM if graceful else signal.SIGKILL)
        await _served_elsewhere(sharding, list(by_shard.values()), victim.name)
        return clock() - started


def _fresh(cluster_name: str) -> str:
    """A cluster name no earlier round or process used."""
    return f"{cluster_name}-{os.getpid()}-{next(_rounds)}"


async def failover(
    n: int, url: str, cluster_name: str, settings: str = "{}", coordinator: bool = False
) -> Result:
    """``n`` rounds: SIGKILL one of three nodes (not the coordinator's, or, with
    ``coordinator``, the coordinator's: then a new coordinator is elected first); p50 and max
    of the time until its shards are served again."""
    times = [
        await _one_round(url, _fresh(cluster_name), settings, False, coordinator) for _ in range(n)
    ]
    return {"p50 s": statistics.median(times), "max s": max(times)}


async def handoff(n: int, url: str, cluster_name: str, settings: str = "{}") -> Result:
    """``n`` rounds: SIGTERM one of three nodes (graceful leave, hand-off); p50 and max of the
    time until its shards are served by the others."""
    times = [await _one_round(url, _fresh(cluster_name), settings, True) for _ in range(n)]
    return {"p50 s": statistics.median(times), "max s": max(times)}
