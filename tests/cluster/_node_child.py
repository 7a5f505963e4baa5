"""One cluster node for the multi-node tests: ``python -m tests.cluster._node_child ARGS``.

An ActorSystem with Persistence on the PostgreSQL test server (its own schema) and a Cluster on
the NATS test server, hosting the persistent entity type ``Ledger`` (unless started without the
``ledger`` role: a driver node that only routes). The test drives it over stdin and reads what
happens on stdout, one JSON object per line each way:

- in: ``{"op": ..., "id": k, ...}``, out: ``{"event": "reply", "id": k, "result": ...}`` or
  ``{"event": "reply", "id": k, "error": "TypeName: message"}`` (see :class:`Node` for the ops);
- out, unasked: ``ready``; ``started``/``stopped`` for every entity incarnation (with the node,
  the incarnation id, the owner epoch and ``time.monotonic()``, comparable across processes on
  Linux); ``fenced`` when the journal refused an incarnation's write for its stale epoch;
  ``acked``/``failed`` for every command of a ``load``; ``left`` after a graceful leave.

SIGTERM makes the node leave gracefully (hand-off), like end of stdin does. With the environment
variable ``NODE_CHILD_LOG`` set to a level (``DEBUG``, ``INFO``), the library's logs go to the
node's stderr (kept in the test's temporary directory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import actorsys
from actorsys import Actor, ActorRef, ActorSystem
from cluster import Cluster, ClusterSettings, ClusterSharding, ShardingSettings
from persistence import OwnerEpochFencedError, Persistence, PersistentActor, Serializer
from persistence.journal import PostgresJournal
from persistence.snapshot import PostgresSnapshotStore

TYPE_NAME = "Ledger"
ROLE = "ledger"

serializer = Serializer()
"""Events and cross-node messages of the test entity."""


@serializer.type("Append")
@dataclass(frozen=True, slots=True)
class Append:
    value: int


@serializer.type("Appended")
@dataclass(frozen=True, slots=True)
class Appended:
    """The event, and the reply to :class:`Append`: who stored it, in which incarnation."""

    value: int
    node: str
    incarnation: str
    sequence_nr: int


@serializer.type("AppendLater")
@dataclass(frozen=True, slots=True)
class AppendLater:
    """Append ``value`` after ``delay`` seconds (a timer of the entity); answered at once."""

    value: int
    delay: float


@serializer.type("Scheduled")
@dataclass(frozen=True, slots=True)
class Scheduled:
    node: str
    incarnation: str


@serializer.type("GetValues")
@dataclass(frozen=True, slots=True)
class GetValues:
    pass


@serializer.type("Values")
@dataclass(frozen=True, slots=True)
class Values:
    values: list[int]
    node: str
    incarnation: str


class Stop:
    """The shard's stop message (hand-off, passivation): handled in turn, after the commands
    stashed while a persist was in flight (a ``PoisonPill`` would stop the entity before them,
    and their asks would fail; Akka's advice for persistent entities)."""


STOP = Stop()


@dataclass(frozen=True, slots=True)
class NotRegistered:
    """A message type the cluster's serializer does not know."""

    value: int


def persistence_id_of(entity_id: str) -> str:
    return f"ledger-{entity_id}"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Ledger(PersistentActor):
    """Appends values; every event names the node and incarnation that stored it."""

    node = ""

    def __init__(self, entity_id: str) -> None:
        super().__init__()
        self.entity_id = entity_id
        self.persistence_id = persistence_id_of(entity_id)
        self.incarnation = uuid.uuid4().hex[:12]
        self.values: list[int] = []

    def _emit(self, event: str, **fields: Any) -> None:
        emit(
            event,
            entity=self.entity_id,
            node=self.node,
            incarnation=self.incarnation,
            epoch=self.owner_epoch,
            t=time.monotonic(),
            **fields,
        )

    def pre_start(self) -> None:
        self._emit("started")
        super().pre_start()

    def post_stop(self) -> None:
        self._emit("stopped")
        super().post_stop()

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, Appended):
            self.values.append(message.value)

    def receive_command(self, command: Any) -> None:
        sender = self.context.sender
        match command:
            case Append(value=value):
                event = Appended(value, self.node, self.incarnation, self.last_sequence_nr + 1)

                def stored(event: Appended) -> None:
                    self.values.append(event.value)
                    sender.tell(event)

                self.persist(event, stored)
            case AppendLater(value=value, delay=delay):
                self.context.timers.start_single_timer("later", Append(value), delay)
                sender.tell(Scheduled(self.node, self.incarnation))
            case GetValues():
                sender.tell(Values(list(self.values), self.node, self.incarnation))
            case Stop():
                self.context.stop(self.context.self)
            case _:
                self.unhandled(command)

    def on_persist_failure(self, cause: BaseException, event: Any, sequence_nr: int) -> None:
        if isinstance(cause, OwnerEpochFencedError):
            self._emit("fenced", sequence_nr=sequence_nr, error=str(cause))
        super().on_persist_failure(cause, event, sequence_nr)


class Collector(Actor):
    """Receives replies sent to it by remote entities (refs that crossed nodes)."""

    def receive(self, message: Any) -> None:
        if isinstance(message, Appended):
            emit("collected", value=message.value, node=message.node)
        else:
            self.unhandled(message)


def _describe(value: Any) -> Any:
    if isinstance(value, Appended):
        return {"value": value.value, "node": value.node, "incarnation": value.incarnation}
    if isinstance(value, Values):
        return {"values": value.values, "node": value.node, "incarnation": value.incarnation}
    if isinstance(value, Scheduled):
        return {"node": value.node, "incarnation": value.incarnation}
    return value


def _error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class Node:
    """The ops a test can send (each answered with one ``reply`` line)."""

    def __init__(self, system: ActorSystem, sharding: ClusterSharding, cluster: Cluster) -> None:
        self.system = system
        self.sharding = sharding
        self.cluster = cluster
        self.collector: ActorRef = system.spawn(Collector, "collector")
        self.loads: set[asyncio.Task[None]] = set()

    async def handle(self, request: dict[str, Any]) -> Any:
        op = request["op"]
        if op == "region_state":
            return _plain(await self.sharding.region_state(TYPE_NAME))
        if op == "cluster_stats":
            return _plain(await self.sharding.cluster_stats(TYPE_NAME))
        if op == "members":
            return sorted(member.node for member in self.cluster.members())
        if op == "load":
            task = asyncio.get_running_loop().create_task(self._load(request))
            self.loads.add(task)
            task.add_done_callback(self.loads.discard)
            return None
        ref = self.sharding.entity_ref(TYPE_NAME, str(request["entity"]))
        if op == "ask":
            reply = await ref.ask(Append(int(request["value"])), timeout=request.get("timeout", 5))
            return _describe(reply)
        if op == "get":
            return _describe(await ref.ask(GetValues(), timeout=request.get("timeout", 5)))
        if op == "tell":
            ref.tell(Append(int(request["value"])), self.collector)
            return None
        if op == "append_later":
            message = AppendLater(int(request["value"]), float(request["delay"]))
            return _describe(await ref.ask(message, timeout=request.get("timeout", 5)))
        if op == "tell_unregistered":
            ref.tell(NotRegistered(1))
            return None
        raise ValueError(f"unknown op {op!r}")

    async def _load(self, request: dict[str, Any]) -> None:
        """Per entity, ``count`` commands one after the other (each ask awaited or failed,
        never retried; ``pause`` seconds between two), all entities at once; then
        ``load_done``."""
        timeout = float(request.get("timeout", 2.0))
        pause = float(request.get("pause", 0.0))

        async def one(entity_id: str) -> None:
            ref = self.sharding.entity_ref(TYPE_NAME, entity_id)
            for value in range(1, int(request["count"]) + 1):
                try:
                    reply = await ref.ask(Append(value), timeout=timeout)
                except Exception as error:
                    emit("failed", entity=entity_id, value=value, error=_error(error))
                    await asyncio.sleep(0.05)
                else:
                    emit("acked", entity=entity_id, value=value, node=reply.node)
                if pause:
                    await asyncio.sleep(pause)

        await asyncio.gather(*(one(entity_id) for entity_id in request["entities"]))
        emit("load_done", id=request.get("id"))


def _plain(value: Any) -> Any:
    """Dataclasses, mappings and sets as JSON values."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(item) for item in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    return value


async def _serve(node: Node, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pending: set[asyncio.Task[None]] = set()

    async def answer(request: dict[str, Any]) -> None:
        try:
            result = await node.handle(request)
        except Exception as error:
            emit("reply", id=request.get("id"), error=_error(error))
        else:
            emit("reply", id=request.get("id"), result=result)

    async def read() -> None:
        while line := await reader.readline():
            request = json.loads(line)
            if request.get("op") == "leave":
                break
            task = loop.create_task(answer(request))
            pending.add(task)
            task.add_done_callback(pending.discard)
        stop.set()

    reading = loop.create_task(read())
    await stop.wait()
    reading.cancel()
    for task in [*pending, *node.loads]:
        task.cancel()


async def main(args: argparse.Namespace) -> None:
    journal = PostgresJournal(args.pg, schema=args.schema)
    snapshots = PostgresSnapshotStore(args.pg, schema=args.schema)
    Ledger.node = args.node
    cluster = Cluster(
        args.nats,
        node=args.node,
        roles=tuple(role for role in args.roles.split(",") if role),
        name=args.name,
        settings=ClusterSettings(**json.loads(args.settings)),
        serializer=serializer,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with ActorSystem(
        args.node, extensions=[Persistence(journal, snapshots, serializer=serializer), cluster]
    ) as system:
        sharding = ClusterSharding(system)
        sharding.start(
            TYPE_NAME,
            Ledger,
            settings=ShardingSettings(
                number_of_shards=args.shards,
                role=ROLE,
                stop_message=STOP,
                **json.loads(args.sharding),
            ),
        )
        emit("ready", node=args.node)
        await _serve(Node(system, sharding, cluster), stop)
    emit("left", node=args.node)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster._node_child")
    parser.add_argument("--nats", required=True)
    parser.add_argument("--name", required=True, help="the cluster name (subjects, buckets)")
    parser.add_argument("--node", required=True)
    parser.add_argument("--roles", default=ROLE, help="comma-separated; empty: a driver node")
    parser.add_argument("--pg", required=True, help="the PostgreSQL DSN")
    parser.add_argument("--schema", required=True)
    parser.add_argument("--shards", type=int, default=30)
    parser.add_argument("--settings", default="{}", help="ClusterSettings keywords, as JSON")
    parser.add_argument("--sharding", default="{}", help="ShardingSettings keywords, as JSON")
    return parser


if __name__ == "__main__":
    if level := os.environ.get("NODE_CHILD_LOG"):  # e.g. DEBUG: the library's logs on stderr
        logging.basicConfig(level=level, format="%(created).3f %(name)s %(message)s")
    actorsys.run(main(_parser().parse_args()))
