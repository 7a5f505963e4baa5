"""The multi-node tests' side of :mod:`tests.cluster._node_child`: start nodes as child
processes, send them ops, watch what they print, and check the journal afterwards.

Every line a node prints is kept (in arrival order, across nodes) in one :class:`Log`, so a test
can wait for an event with a deadline (never a fixed sleep) and check the registry of entity
incarnations: which incarnation of which entity was live on which node, and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster._status import read_status
from persistence.journal import PostgresJournal
from tests.cluster._node_child import ROLE, Appended, persistence_id_of, serializer

ROOT = Path(__file__).resolve().parents[2]
Event = dict[str, Any]

FAST = {
    "heartbeat_interval": 0.3,
    "heartbeat_ttl": 1,
    "lease_ttl": 2,
    "lease_renew_interval": 0.3,
    "lease_margin": 0.8,
    "coordinator_ttl": 1,
    "rebalance_interval": 0.3,
}
"""Cluster settings with short TTLs (as ``tests/cluster/_support.FAST``): a lost node's shards
are taken over in about two seconds."""


class NodeError(Exception):
    """A node answered an op with an error (the message is its ``TypeName: text``)."""


class Log:
    """Every event every node printed, in arrival order; waiters wake on each new one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = threading.Condition()

    def add(self, event: Event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def snapshot(self) -> list[Event]:
        with self._changed:
            return list(self.events)

    def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float, what: str, start: int = 0
    ) -> Event:
        """The first event from index ``start`` on that matches; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        index = start
        with self._changed:
            while True:
                while index < len(self.events):
                    if predicate(self.events[index]):
                        return self.events[index]
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {what} within {timeout} s")
                self._changed.wait(remaining)


@dataclass
class Node:
    """One node child process."""

    name: str
    process: subprocess.Popen[bytes]
    log: Log
    stderr: Path
    reader: threading.Thread | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            event["from"] = self.name
            self.log.add(event)
        self.process.stdout.close()
        self.log.add({"event": "exited", "from": self.name})

    def send(self, op: str, **fields: Any) -> int:
        """Send an op without waiting for its reply; its id."""
        request_id = next(self._ids)
        line = json.dumps({"op": op, "id": request_id, **fields}).encode() + b"\n"
        assert self.process.stdin is not None
        with self._lock:
            self.process.stdin.write(line)
            self.process.stdin.flush()
        return request_id

    def request(self, op: str, wait: float = 30.0, **fields: Any) -> Any:
        """Send an op and wait (at most ``wait`` seconds) for its reply: its result, or
        :class:`NodeError`. An op's own ``timeout`` field is the node's ask timeout."""
        start = len(self.log.snapshot())
        request_id = self.send(op, **fields)
        reply = self.log.wait_for(
            lambda e: (
                e["from"] == self.name
                and (e["event"] == "exited" or (e["event"] == "reply" and e["id"] == request_id))
            ),
            wait,
            f"reply to {op} from {self.name}",
            start,
        )
        if reply["event"] == "exited":
            raise AssertionError(f"node {self.name} exited: {self.stderr_tail()}")
        if "error" in reply:
            raise NodeError(reply["error"])
        return reply["result"]

    def signal(self, signum: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL (a crash), waited for."""
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def close_input(self) -> None:
        """End of stdin: the node hands its shards off and exits."""
        with self._lock:
            if self.process.stdin is not None and not self.process.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    self.process.stdin.close()

    def leave(self, timeout: float = 30.0) -> int:
        """Leave gracefully and wait for the exit; the exit status."""
        self.close_input()
        return self.process.wait(timeout=timeout)

    def stderr_tail(self) -> str:
        return self.stderr.read_text(errors="replace")[-3000:]


@dataclass
class Nodes:
    """The nodes of one test: same NATS cluster name, same journal schema."""

    nats_url: str
    name: str
    postgres_dsn: str
    schema: str
    directory: Path
    shards: int = 30
    settings: dict[str, Any] = field(default_factory=lambda: dict(FAST))
    sharding: dict[str, Any] = field(default_factory=dict)
    log: Log = field(default_factory=Log)
    nodes: dict[str, Node] = field(default_factory=dict)

    def start(self, *names: str, roles: str = ROLE, wait: bool = True) -> list[Node]:
        """Start nodes (in parallel) and, unless ``wait`` is false, wait until each is ready."""
        started = [self._spawn(name, roles) for name in names]
        if wait:
            for node in started:
                self.ready(node)
        return started

    def driver(self, name: str = "driver") -> Node:
        """A node without the entity role: it hosts no shard and only routes."""
        [node] = self.start(name, roles="")
        return node

    def ready(self, node: Node, timeout: float = 60.0) -> None:
        event = self.log.wait_for(
            lambda e: e["from"] == node.name and e["event"] in ("ready", "exited"),
            timeout,
            f"ready from {node.name}",
        )
        if event["event"] == "exited":
            raise AssertionError(f"node {node.name} did not start: {node.stderr_tail()}")

    def _spawn(self, name: str, roles: str) -> Node:
        stderr = self.directory / f"{name}.stderr"
        with open(stderr, "ab") as err:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.cluster._node_child",
                    "--nats", self.nats_url,
                    "--name", self.name,
                    "--node", name,
                    "--roles", roles,
                    "--pg", self.postgres_dsn,
                    "--schema", self.schema,
                    "--shards", str(self.shards),
                    "--settings", json.dumps(self.settings),
                    "--sharding", json.dumps(self.sharding),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
        node = Node(name, process, self.log, stderr)
        node.reader = threading.Thread(target=node._read, name=f"read-{name}", daemon=True)
        node.reader.start()
        self.nodes[name] = node
        return node

    def stop_all(self) -> None:
        """Every node still running is killed (a test checks what it needs first; graceful
        leaves have tests of their own, and all nodes leaving at once only takes longer)."""
        for node in self.nodes.values():
            if node.process.poll() is None:
                node.kill()
        for node in self.nodes.values():
            node.close_input()
            if node.reader is not None:
                node.reader.join(timeout=10)

    # -- what the nodes reported ------------------------------------------------------------

    def events(self, kind: str, **match: Any) -> list[Event]:
        return [
            e
            for e in self.log.snapshot()
            if e["event"] == kind and all(e.get(k) == v for k, v in match.items())
        ]

    def allocations(self) -> dict[str, int]:
        """Shards per node as the coordinator allocated them (read from NATS by
        ``python -m cluster status``'s reader): started or not."""
        status = asyncio.run(read_status([self.nats_url], name=self.name, type_name="Ledger"))
        counts: dict[str, int] = {}
        for shard in status.shards:
            if shard.allocated_to is not None:
                counts[shard.allocated_to] = counts.get(shard.allocated_to, 0) + 1
        return counts

    def wait_until(
        self, check: Callable[[], bool], timeout: float, what: str, every: float = 0.1
    ) -> None:
        """Poll ``check`` until it holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s")
            time.sleep(every)


def shard_counts(stats: Any) -> dict[str, int]:
    """Shards per node out of ``cluster_stats`` (``ClusterShardingStats`` as plain JSON)."""
    return {node: len(shards) for node, shards in stats["nodes"].items()}


@dataclass(frozen=True)
class Incarnation:
    entity: str
    node: str
    incarnation: str
    started: float
    stopped: float | None
    """When it printed ``stopped``; None if it never did (its node was killed or is alive)."""


def incarnations(events: Iterable[Event]) -> list[Incarnation]:
    """The registry of live incarnations, from the ``started``/``stopped`` events."""
    started: dict[str, Event] = {}
    stopped: dict[str, float] = {}
    for event in events:
        if event["event"] == "started":
            started[event["incarnation"]] = event
        elif event["event"] == "stopped":
            stopped[event["incarnation"]] = event["t"]
    return [
        Incarnation(e["entity"], e["node"], key, e["t"], stopped.get(key))
        for key, e in started.items()
    ]


def overlaps(
    registry: list[Incarnation], ended: Callable[[Incarnation], float | None]
) -> list[tuple[Incarnation, Incarnation]]:
    """Pairs of incarnations of one entity that were live at the same time; ``ended`` says
    when an incarnation ended (e.g. its ``stopped`` time, or when its node was killed)."""
    found = []
    by_entity: dict[str, list[Incarnation]] = {}
    for item in registry:
        by_entity.setdefault(item.entity, []).append(item)
    for items in by_entity.values():
        items.sort(key=lambda i: i.started)
        for earlier, later in itertools.pairwise(items):
            end = ended(earlier)
            if end is None or end > later.started:
                found.append((earlier, later))
    return found


async def _journal_events(dsn: str, schema: str, entity_ids: list[str]) -> dict[str, list[Any]]:
    journal = PostgresJournal(dsn, schema=schema)
    out: dict[str, list[Any]] = {}
    try:
        for entity_id in entity_ids:
            events = []
            async for page in journal.replay(persistence_id_of(entity_id)):
                for record in page:
                    [event] = serializer.decode(record.manifest, record.payload)
                    events.append((record.sequence_nr, event))
            out[entity_id] = events
    finally:
        await journal.close()
    return out


def journal_events(dsn: str, schema: str, entity_ids: list[str]) -> dict[str, list[Any]]:
    """Per entity: ``(sequence_nr, Appended)`` of every stored event, in order."""
    result: dict[str, list[tuple[int, Appended]]] = asyncio.run(
        _journal_events(dsn, schema, entity_ids)
    )
    return result


def one_id_per_shard(shards: int = 30, prefix: str = "e") -> list[str]:
    """Entity ids ``prefix0``, ``prefix1``, ...: the first one found for each shard, by shard."""
    from cluster import default_shard_id

    found: dict[str, str] = {}
    for number in itertools.count():
        entity_id = f"{prefix}{number}"
        found.setdefault(default_shard_id(entity_id, shards), entity_id)
        if len(found) == shards:
            return [found[str(shard)] for shard in range(shards)]
    raise AssertionError("unreachable")


@dataclass
class LoadOutcome:
    """What the driver reported for a ``load``: per entity, the values acked and failed."""

    acked: dict[str, list[int]]
    failed: dict[str, list[tuple[int, str]]]
    acked_by: dict[str, list[str]]


def load_outcome(log: Log, driver: str, entities: list[str]) -> LoadOutcome:
    acked: dict[str, list[int]] = {e: [] for e in entities}
    acked_by: dict[str, list[str]] = {e: [] for e in entities}
    failed: dict[str, list[tuple[int, str]]] = {e: [] for e in entities}
    for event in log.snapshot():
        if event["from"] != driver:
            continue
        if event["event"] == "acked":
            acked[event["entity"]].append(event["value"])
            acked_by[event["entity"]].append(event["node"])
        elif event["event"] == "failed":
            failed[event["entity"]].append((event["value"], event["error"]))
    return LoadOutcome(acked, failed, acked_by)


def check_journal_against_acks(
    stored: dict[str, list[tuple[int, Appended]]], outcome: LoadOutcome
) -> None:
    """Every acknowledged command is in the journal exactly once, in order; nothing else is
    there but commands whose ask failed (their outcome was unknown to the sender)."""
    for entity_id, events in stored.items():
        values = [event.value for _, event in events]
        assert values == sorted(set(values)), f"{entity_id}: out of order or twice: {values}"
        assert [seq for seq, _ in events] == list(range(1, len(events) + 1)), entity_id
        acked = outcome.acked[entity_id]
        missing = set(acked) - set(values)
        assert not missing, f"{entity_id}: acknowledged but not stored: {sorted(missing)}"
        unknown = {value for value, _ in outcome.failed[entity_id]}
        extra = set(values) - set(acked) - unknown
        assert not extra, f"{entity_id}: stored but never sent or acknowledged: {sorted(extra)}"
