"""Cluster cases: sharding across three node processes next to raw NATS between processes, and
local-mode sharding next to plain refs; failover and hand-off times.

A NATS server (the pinned binary of the ``cluster`` extra) is started once by the process that
declares the cases and stopped by its pid when that process exits. Routed variants run on one
loop (the measuring node's; the node processes run uvloop): their cost is in the processes and
the wire, and each run starts node processes. The failover and hand-off figures are seconds
(p50 and max over the rounds of a run), measured with the default cluster settings in a full run
and with short TTLs under ``--quick`` (a smoke run, not a figure); the throughput cases use the
default settings always.
"""

from __future__ import annotations

import atexit
import json
from typing import Any

from benchmarks._harness import Bench

RAW_ASK = "raw NATS request-reply"
RAW_PUBLISH = "raw NATS publish"
DIRECT_TELL = "direct ActorRef.tell"

QUICK_SETTINGS = {
    "heartbeat_interval": 0.3,
    "heartbeat_ttl": 1,
    "lease_ttl": 1,
    "lease_renew_interval": 0.2,
    "lease_margin": 0.5,
    "coordinator_ttl": 2,
    "rebalance_interval": 0.5,
}
"""The shortest TTLs for ``--quick`` (whole seconds: NATS's granularity)."""

_server: Any = None


def _nats(bench: Bench) -> tuple[str, str | None]:
    """The URL of this run's NATS server (started on first use), or why there is none."""
    global _server
    if _server is None:
        try:
            from cluster.testing import NatsServer

            _server = NatsServer.start()
        except (ImportError, RuntimeError) as exc:
            return "", f"unavailable: {str(exc).splitlines()[0]}"
        atexit.register(_server.stop)
    url: str = _server.url
    return url, None


def _settings(bench: Bench) -> str:
    return json.dumps(QUICK_SETTINGS if bench.quick else {})


def _loop(bench: Bench) -> str:
    return "uvloop" if "uvloop" in bench.loops else bench.loops[0]


def routed_ask(bench: Bench) -> None:
    """Ask with 100 in flight, from a fourth process, over 300 entities on three nodes."""
    url, skip = _nats(bench)
    n = bench.size(50_000, 1_000)
    loop = _loop(bench)
    bench.variant(
        RAW_ASK,
        "benchmarks._cluster_raw:raw_ask",
        n=n,
        loop=loop,
        skip=skip,
        url=url,
        prefix="bench-raw-ask",
    )
    bench.variant(
        "routed ask",
        "benchmarks._cluster_routed:routed_ask",
        n=n,
        loop=loop,
        baselines=[RAW_ASK],
        skip=skip,
        url=url,
        cluster_name="bench-ask",
    )


def routed_tell(bench: Bench) -> None:
    """Tell from a fourth process over 300 entities on three nodes, until all were counted."""
    url, skip = _nats(bench)
    n = bench.size(200_000, 2_000)
    loop = _loop(bench)
    bench.variant(
        RAW_PUBLISH,
        "benchmarks._cluster_raw:raw_publish",
        n=n,
        loop=loop,
        skip=skip,
        url=url,
        prefix="bench-raw-tell",
    )
    bench.variant(
        "routed tell",
        "benchmarks._cluster_routed:routed_tell",
        n=n,
        loop=loop,
        baselines=[RAW_PUBLISH],
        skip=skip,
        url=url,
        cluster_name="bench-tell",
    )


def local_tell(bench: Bench) -> None:
    """Local-mode sharding (no cluster): tells through the region to 100 entities, next to
    tells straight to 100 actors' refs."""
    n = bench.size(1_000_000, 20_000)
    for loop in bench.loops:
        bench.variant(
            DIRECT_TELL, "benchmarks._cluster_local:direct_tell", n=n, loop=loop, entities=100
        )
        bench.variant(
            "sharding tell (local mode)",
            "benchmarks._cluster_local:sharded_tell",
            n=n,
            loop=loop,
            baselines=[DIRECT_TELL],
            entities=100,
        )


def failover(bench: Bench) -> None:
    """SIGKILL one of three nodes: seconds until its shards answer from the others (rounds per
    run: 10; 1 with --quick). A node other than the coordinator's; in a full run also the
    coordinator's node (a new coordinator is elected first)."""
    url, skip = _nats(bench)
    bench.variant(
        "failover after SIGKILL",
        "benchmarks._cluster_routed:failover",
        n=bench.size(10, 1),
        loop=_loop(bench),
        skip=skip,
        url=url,
        cluster_name="bench-failover",
        settings=_settings(bench),
    )
    if not bench.quick:
        bench.variant(
            "failover after SIGKILL of the coordinator's node",
            "benchmarks._cluster_routed:failover",
            n=bench.size(10, 1),
            loop=_loop(bench),
            skip=skip,
            url=url,
            cluster_name="bench-failover-coordinator",
            settings=_settings(bench),
            coordinator=True,
        )


def handoff(bench: Bench) -> None:
    """SIGTERM one of three nodes (graceful leave): seconds until its shards answer from the
    others (rounds per run: 5; 1 with --quick)."""
    url, skip = _nats(bench)
    bench.variant(
        "hand-off on SIGTERM",
        "benchmarks._cluster_routed:handoff",
        n=bench.size(5, 1),
        loop=_loop(bench),
        skip=skip,
        url=url,
        cluster_name="bench-handoff",
        settings=_settings(bench),
    )


CASES = (routed_ask, routed_tell, local_tell, failover, handoff)
