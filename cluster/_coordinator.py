"""The coordinator: one node at a time decides where shards live.

The node holding the ``coordinator`` key of the bucket ``<name>-shards`` (a lease: taken by
``create``, renewed by compare-and-set with a TTL, self-fenced; see :mod:`cluster._leases`) answers
requests on ``actorsys.<name>.coordinator`` (JSON request-reply):

- ``{"op": "home", "type": T, "shard": S, "node": N}`` → ``{"node": owner}``: a shard gets a home
  on its first request, the live node hosting ``T`` with the fewest of ``T``'s shards (ties by
  name); the requester ``N`` counts as hosting ``T`` (``N`` is null from a node that only
  routes ``T``: it lacks the type's role). The decision is written by compare-and-set to
  the key ``<T>.<S>`` (value ``{"node": owner}``), where every node's watcher reads it.
- ``{"op": "leaving", "node": N}`` → ``{"ok": true}`` once every shard of ``N`` was handed off
  and given a new home (graceful leave).

It moves shards itself: when a member leaves (its heartbeat expired) its shards get new homes at
once (their leases expire on their own; the new owner's ``acquire`` succeeds only then), and every
``rebalance_interval`` it moves at most ``rebalance_max_simultaneous`` shards of a type from the
most to the least loaded node while their counts differ by more than ``rebalance_threshold``. A
move asks the owner to hand the shard off (``{"op": "handoff"}`` on the owner's control subject:
its entities stop, its lease is released), then writes the new home.

Keys: type names and shard ids are escaped to ``[A-Za-z0-9_-]`` (any other character becomes
``=XX`` per UTF-8 byte), so ``<T>.<S>`` has exactly one dot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import nats.js.errors

from cluster._logging import log
from cluster._membership import Membership
from cluster._nats import Bucket, CasFailedError, check_cancelled

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from cluster._cluster import ClusterSettings

COORDINATOR_KEY = "coordinator"
_PLAIN = re.compile(r"[A-Za-z0-9_-]")

ShardKey = tuple[str, str]
Control = Callable[[str, dict[str, Any], float], Awaitable[dict[str, Any]]]


def _escape(text: str) -> str:
    return "".join(
        c if _PLAIN.fullmatch(c) else "".join(f"={b:02X}" for b in c.encode()) for c in text
    )


def _unescape(text: str) -> str:
    return re.sub(
        r"(?:=[0-9A-F]{2})+",
        lambda m: bytes.fromhex(m.group().replace("=", "")).decode(),
        text,
    )


def shard_key(type_name: str, shard_id: str) -> str:
    """The KV key of a shard (allocation and lease)."""
    return f"{_escape(type_name)}.{_escape(shard_id)}"


def parse_shard_key(key: str) -> ShardKey | None:
    """``(type_name, shard_id)`` of a shard key, or None for another key."""
    type_part, dot, shard_part = key.partition(".")
    if not dot or "." in shard_part:
        return None
    return _unescape(type_part), _unescape(shard_part)


def coordinator_subject(cluster_name: str) -> str:
    return f"actorsys.{cluster_name}.coordinator"


class Coordinator:
    """The coordinator's work while this node holds the coordinator lease."""

    def __init__(
        self,
        nc: Client,
        cluster_name: str,
        node: str,
        shards: Bucket,
        membership: Membership,
        settings: ClusterSettings,
        control: Control,
        is_active: Callable[[], bool] = lambda: True,
    ) -> None:
        self._nc = nc
        self._is_active = is_active
        self._name = cluster_name
        self.node = node
        self._shards = shards
        self._membership = membership
        self._settings = settings
        self._control = control
        self._allocations: dict[ShardKey, tuple[str, int]] = {}
        self._moving: dict[ShardKey, asyncio.Event] = {}
        self._locks: dict[ShardKey, asyncio.Lock] = {}
        self._writing: dict[ShardKey, str] = {}
        """Homes decided and being written: they count for the next decisions already (shards
        allocated concurrently must not all go to the node that was least loaded before)."""
        self._leaving: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subscription: Subscription | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        for key, (value, revision) in (await self._shards.entries()).items():
            shard = parse_shard_key(key)
            node = _node_of(value)
            if shard is not None and node is not None:
                self._allocations[shard] = (node, revision)
        self._subscription = await self._nc.subscribe(
            coordinator_subject(self._name), cb=self._on_request
        )
        self._spawn(self._rebalance_loop())
        live = {m.node for m in self._membership.members()}
        for gone in {node for node, _ in self._allocations.values()} - live:
            self._spawn(self._reallocate(gone))
        log.info("coordinator_started", node=self.node, shards=len(self._allocations))

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("coordinator_stopped", node=self.node)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("coordinator_task_failed", node=self.node, error=repr(error))

    def member_left(self, node: str) -> None:
        """``node``'s heartbeat is gone: its shards get new homes."""
        self._leaving.discard(node)
        self._spawn(self._reallocate(node))

    # -- requests -------------------------------------------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        self._spawn(self._answer(msg))  # never block the subscription: a home may wait for a move

    async def _answer(self, msg: Msg) -> None:
        try:
            request = json.loads(msg.data)
            op = request["op"]
            if op == "home":
                answer: dict[str, Any] = {
                    "node": await self.home(request["type"], request["shard"], request["node"])
                }
            elif op == "leaving":
                await self.leaving(request["node"])
                answer = {"ok": True}
            else:
                answer = {"error": f"unknown coordinator request {op!r}"}
        except Exception as error:
            answer = {"error": str(error) or repr(error)}
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(json.dumps(answer).encode())

    async def home(self, type_name: str, shard_id: str, requester: str | None) -> str:
        """The shard's home, allocating it (least shards first) if it has none or a dead one."""
        key = (type_name, shard_id)
        moving = self._moving.get(key)
        if moving is not None:
            await moving.wait()
        async with self._locks.setdefault(key, asyncio.Lock()):
            current = self._allocations.get(key)
            live = self._live(type_name, requester)
            if current is not None and current[0] in live:
                return current[0]
            if not live:
                raise RuntimeError(
                    f"no live node hosts {type_name!r}: start its region on a node of the cluster"
                )
            target = self._least_loaded(type_name, live)
            await self._write(key, target)
            log.info("shard_allocated", type_name=type_name, shard_id=shard_id, node=target)
            return target

    async def leaving(self, node: str) -> None:
        """Hand every shard of ``node`` off and give it a new home."""
        self._leaving.add(node)
        moves = [key for key, (owner, _) in sorted(self._allocations.items()) if owner == node]
        await asyncio.gather(*(self._move(key, node) for key in moves))
        log.info("member_handed_off", node=node, shards=len(moves))

    # -- allocation -----------------------------------------------------------------------------

    def _live(self, type_name: str, requester: str | None = None) -> list[str]:
        nodes = {
            m.node
            for m in self._membership.members()
            if type_name in m.types and m.node not in self._leaving
        }
        if requester is not None and requester not in self._leaving:
            nodes.add(requester)
        return sorted(nodes)

    def _counts(self, type_name: str, nodes: list[str]) -> dict[str, int]:
        counts = dict.fromkeys(nodes, 0)
        owners = {key: owner for key, (owner, _) in self._allocations.items()}
        owners.update(self._writing)
        for (t, _), owner in owners.items():
            if t == type_name and owner in counts:
                counts[owner] += 1
        return counts

    def _least_loaded(self, type_name: str, nodes: list[str]) -> str:
        counts = self._counts(type_name, nodes)
        return min(nodes, key=lambda n: (counts[n], n))

    async def _write(self, key: ShardKey, node: str) -> None:
        # Called right after the decision, with no await in between: counted from now on.
        self._writing[key] = node
        try:
            await self._write_home(key, node)
        finally:
            del self._writing[key]

    async def _write_home(self, key: ShardKey, node: str) -> None:
        if not self._is_active():  # woke up after losing the role: decide nothing more
            raise RuntimeError(f"node {self.node!r} is no longer the coordinator")
        name = shard_key(*key)
        value = json.dumps({"node": node}).encode()
        current = self._allocations.get(key)
        for _ in range(5):
            try:
                if current is None:
                    revision = await self._shards.create(name, value, ttl=None)
                else:
                    revision = await self._shards.renew(name, value, last=current[1], ttl=None)
            except CasFailedError:  # written meanwhile (an earlier coordinator): read it again
                check_cancelled()
                current = await self._read(name)
                continue
            self._allocations[key] = (node, revision)
            return
        raise RuntimeError(f"could not record the home of shard {key[1]!r} of {key[0]!r}")

    async def _read(self, name: str) -> tuple[str, int] | None:
        try:
            entry = await self._shards.kv.get(name)
        except nats.js.errors.KeyNotFoundError:
            return None
        node = _node_of(entry.value or b"")
        return None if node is None or entry.revision is None else (node, entry.revision)

    async def _reallocate(self, gone: str) -> None:
        for key, (owner, _) in sorted(self._allocations.items()):
            if owner != gone or key in self._moving:
                continue
            async with self._locks.setdefault(key, asyncio.Lock()):
                if self._allocations.get(key, ("", 0))[0] != gone:
                    continue
                live = self._live(key[0])
                if not live:
                    continue  # allocated again on its next request
                target = self._least_loaded(key[0], live)
                await self._write(key, target)
                log.info(
                    "shard_reallocated", type_name=key[0], shard_id=key[1], lost=gone, node=target
                )

    async def _move(self, key: ShardKey, owner: str, target: str | None = None) -> None:
        """Hand the shard off on ``owner``, then give it a new home (``target`` or the least
        loaded). The new home's ``acquire`` succeeds only once the lease was released (or
        expired), so a hand-off that fails or times out is safe to go on from."""
        moving = self._moving.get(key)
        if moving is not None:  # already moving (a leave asked again): wait for that move
            await moving.wait()
            return
        self._moving[key] = event = asyncio.Event()
        try:
            request = {"op": "handoff", "type": key[0], "shard": key[1]}
            try:
                answer = await self._control(owner, request, self._settings.request_timeout * 2)
                if "error" in answer:
                    raise RuntimeError(answer["error"])
            except Exception as error:
                log.warning(
                    "shard_hand_off_failed", type_name=key[0], shard_id=key[1], node=owner,
                    error=repr(error),
                )  # fmt: skip
            async with self._locks.setdefault(key, asyncio.Lock()):
                live = [n for n in self._live(key[0]) if n != owner]
                if target is None or target not in live:
                    target = self._least_loaded(key[0], live) if live else None
                if target is None:
                    await self._forget(key)
                else:
                    await self._write(key, target)
                log.info(
                    "shard_moved", type_name=key[0], shard_id=key[1], source=owner, node=target
                )
        finally:
            del self._moving[key]
            event.set()

    async def _forget(self, key: ShardKey) -> None:
        current = self._allocations.pop(key, None)
        if current is not None:
            with contextlib.suppress(CasFailedError):
                await self._shards.delete(shard_key(*key), last=current[1])

    # -- rebalancing ----------------------------------------------------------------------------

    async def _rebalance_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.rebalance_interval)
            try:
                self._rebalance()
            except Exception as error:
                check_cancelled()
                log.error("rebalance_failed", node=self.node, error=repr(error))

    def _rebalance(self) -> None:
        settings = self._settings
        types = {t for t, _ in self._allocations}
        for type_name in sorted(types):
            live = self._live(type_name)
            if len(live) < 2:
                continue
            if any(t == type_name for t, _ in self._moving):
                continue  # plan the next moves once these are done
            budget = settings.rebalance_max_simultaneous
            counts = self._counts(type_name, live)
            owned: dict[str, list[ShardKey]] = {n: [] for n in live}
            for key, (owner, _) in sorted(self._allocations.items()):
                if key[0] == type_name and owner in owned and key not in self._moving:
                    owned[owner].append(key)
            while budget > 0:
                most = max(live, key=lambda n: (counts[n], n))
                least = min(live, key=lambda n: (counts[n], n))
                if counts[most] - counts[least] <= settings.rebalance_threshold or not owned[most]:
                    break
                key = owned[most].pop()
                counts[most] -= 1
                counts[least] += 1
                budget -= 1
                log.info(
                    "shard_rebalancing", type_name=type_name, shard_id=key[1], source=most,
                    node=least,
                )  # fmt: skip
                self._spawn(self._move(key, most, least))


def _node_of(value: bytes) -> str | None:
    try:
        node = json.loads(value)["node"]
    except (ValueError, TypeError, KeyError):
        return None
    return node if isinstance(node, str) else None
