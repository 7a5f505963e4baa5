"""The NATS placement: where shards live when a :class:`~cluster.Cluster` is configured.

One per node; it implements :class:`cluster._placement.Placement` for every region of the node:

- ``cached_home``: the allocations every node watches in the bucket ``<name>-shards`` (a
  routing hint; regions are told :class:`ShardHomeChanged` when one changes);
- ``home_of``: a request to the coordinator (retried with backoff while there is none, e.g.
  during a coordinator failover);
- ``acquire``/``release``: shard leases (:mod:`cluster._leases`), the key ``<type>.<shard>`` in
  ``<name>-leases``;
- ``send``: the transport (:mod:`cluster._transport`);
- control requests on ``actorsys.<name>.control.<node>`` (JSON request-reply):
  ``{"op": "handoff", "type", "shard"}`` from the coordinator (the region hands the shard off),
  ``{"op": "stats", "type"}`` (entities per shard) and ``{"op": "forget", "node"}`` from a leaving
  node (answered once this node routes nothing more to it).

Every node stands for coordinator (:mod:`cluster._coordinator`). ``leave`` is the graceful exit:
the coordinator hands every shard of this node off and gives it a new home; every member then
confirms that it knows the new homes and handed what it had routed here to the connection (so
that it arrives while this node still forwards it); then the node gives up the coordinator lease,
releases its leases and deletes its heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import nats.errors

from actorsys import ActorRef, ActorSystem, LoopClock, runtime
from cluster._coordinator import (
    COORDINATOR_KEY,
    Coordinator,
    coordinator_subject,
    parse_shard_key,
    shard_key,
)
from cluster._errors import ClusterError, ClusterUnavailableError
from cluster._leases import Leases
from cluster._logging import log
from cluster._membership import MemberEvent, MemberLeft, Membership
from cluster._nats import Bucket, Change, check_cancelled, connect, watch
from cluster._placement import (
    GetShardStats,
    HandOffShard,
    ShardHomeChanged,
    ShardStats,
    ShardUnavailableError,
)
from cluster._transport import Transport

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

    from cluster._cluster import Cluster


def control_subject(cluster_name: str, node: str) -> str:
    return f"actorsys.{cluster_name}.control.{node}"


class NatsPlacement:
    """This node's part of the cluster (see the module docstring)."""

    def __init__(self, cluster: Cluster, system: ActorSystem) -> None:
        self.cluster = cluster
        self.system = system
        self.settings = cluster.settings
        self._name = cluster.name
        self._nc: Client | None = None
        self._regions: dict[str, ActorRef] = {}
        self._hosted: set[str] = set()
        """Types whose shards this node hosts (it has their role): announced in membership."""
        self._homes: dict[tuple[str, str], str] = {}
        self._moving_out: set[tuple[str, str]] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        self._coordinator: Coordinator | None = None
        self._coordinator_lost = asyncio.Event()
        self._home_waiters: set[asyncio.Event] = set()
        self._homes_watch: asyncio.Task[None] | None = None
        self._left = False
        self.membership: Membership = None  # type: ignore[assignment]  # set by start()
        self.leases: Leases = None  # type: ignore[assignment]
        self.transport: Transport = None  # type: ignore[assignment]

    @property
    def node(self) -> str:
        return self.cluster.node

    @property
    def nc(self) -> Client:
        assert self._nc is not None
        return self._nc

    @property
    def is_coordinator(self) -> bool:
        return self._coordinator is not None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        cluster = self.cluster
        settings = self.settings
        self._nc, self.redact = await connect(
            cluster.servers, settings, name=cluster.node, on_reconnected=self._reconnected
        )
        try:
            js = self._nc.jetstream()
            marker = max(settings.heartbeat_ttl, settings.lease_ttl, settings.coordinator_ttl)
            buckets = [
                await Bucket.open(js, f"{self._name}-{kind}", marker_ttl=marker)
                for kind in ("members", "leases", "shards")
            ]
            self.members_bucket, self.leases_bucket, self.shards_bucket = buckets
            clock = LoopClock(asyncio.get_running_loop())
            self.leases = Leases(
                self.leases_bucket,
                cluster.node,
                ttl=settings.lease_ttl,
                renew_interval=settings.lease_renew_interval,
                margin=settings.lease_margin,
                clock=clock,
            )
            self.transport = Transport(
                self._nc, self.system, self._name, cluster.node, cluster.serializer, self._regions
            )
            await self.transport.start()
            await self._nc.subscribe(control_subject(self._name, cluster.node), cb=self._control)
            await self._watch_homes()
            self.membership = Membership(
                self.members_bucket,
                cluster.node,
                cluster.roles,
                interval=settings.heartbeat_interval,
                ttl=settings.heartbeat_ttl,
                on_event=self._member_event,
            )
            await self.membership.join()
            self._tasks.append(
                asyncio.create_task(
                    self._candidacy(clock), name=f"cluster-{cluster.node}-candidacy"
                )
            )
        except BaseException:
            await self._abandon()
            raise

    async def leave(self) -> None:
        """Hand every shard of this node off, give up the coordinator role, release the leases
        and delete the heartbeat. Idempotent."""
        if self._left:
            return
        self._left = True
        log.info("cluster_node_leaving", node=self.node)
        if self.nc.is_connected:
            try:
                # every shard is handed off before the answer: give it longer than a request
                await self._ask_coordinator(
                    {"op": "leaving", "node": self.node}, self.settings.request_timeout * 6
                )
            except Exception as error:
                log.warning("cluster_hand_off_failed", node=self.node, error=repr(error))
        # Messages still on their way here are forwarded to the new homes (and replied to
        # straight from there) only while this node runs: leave once every member, this one
        # too, learned the new homes and handed what it routed here to the connection. A message
        # published to this node's subject after it unsubscribed would be lost.
        others = [m.node for m in self.membership.members() if m.node != self.node]
        await asyncio.gather(
            self._forget(self.node), *(self._forgotten_by(node) for node in others)
        )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._step_down()
        await self.leases.release_all()
        await self.membership.leave()
        log.info("cluster_node_left", node=self.node)

    async def _forgotten_by(self, node: str) -> None:
        """Wait until ``node`` routes nothing more to this node (see :meth:`_forget`)."""
        if not self.nc.is_connected:
            return
        try:
            answer = await self._request_control(
                node, {"op": "forget", "node": self.node}, self.settings.request_timeout * 2
            )
            if "error" in answer:
                raise ClusterError(answer["error"])
        except Exception as error:
            check_cancelled()
            log.warning("cluster_member_not_synced", node=self.node, member=node, error=repr(error))

    async def _forget(self, node: str) -> None:
        """``node`` is leaving: once no shard lives there in this node's view (the coordinator
        moved them all), let every region route what it holds, and hand it to the connection.
        Whatever this node routed to ``node`` is then published before the answer to ``node``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.request_timeout
        while node in self._homes.values():
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("cluster_homes_not_moved", node=self.node, leaving=node)
                break
            changed = asyncio.Event()
            self._home_waiters.add(changed)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
            finally:
                self._home_waiters.discard(changed)
        # A region answers after the messages it got before: those told the new homes
        # (ShardHomeChanged) and the ones it routed with the old home.
        for region in list(self._regions.values()):
            with contextlib.suppress(Exception):
                await region.ask(GetShardStats(), self.settings.request_timeout)
        await self.transport.flush()

    async def close(self) -> None:
        try:
            await self.leave()
        finally:
            await self._abandon()

    async def _abandon(self) -> None:
        for task in [*self._tasks, *self._handlers]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._handlers, return_exceptions=True)
        self._tasks.clear()
        if self.leases is not None:
            self.leases.stop()
        if self.transport is not None:
            with contextlib.suppress(Exception):
                await self.transport.stop()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def _watch_homes(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._homes_watch = asyncio.create_task(
            watch(self.shards_bucket, self._home_changed, ready),
            name=f"cluster-{self.node}-shards-watch",
        )
        self._tasks.append(self._homes_watch)
        await ready

    async def _reconnected(self) -> None:
        # The watches are consumers on the server: after a reconnection (maybe to a restarted
        # server) start them again rather than wait for them to notice.
        if not self._left:
            task = asyncio.get_running_loop().create_task(self._rewatch())
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _rewatch(self) -> None:
        try:
            old = self._homes_watch
            if old is None or self.membership is None:
                return  # still starting: its watches are new
            old.cancel()
            await asyncio.gather(old, return_exceptions=True)
            self._tasks.remove(old)
            await self._watch_homes()
            await self.membership.rewatch()
        except Exception as error:
            check_cancelled()
            log.warning("cluster_rewatch_failed", node=self.node, error=repr(error))
        else:
            log.info("cluster_node_reconnected", node=self.node)

    # -- coordinator candidacy ------------------------------------------------------------------

    async def _candidacy(self, clock: LoopClock) -> None:
        ttl = self.settings.coordinator_ttl
        self._coordinator_leases = Leases(
            self.shards_bucket,
            self.node,
            ttl=ttl,
            renew_interval=ttl * 0.2,
            margin=ttl * 0.4,
            clock=clock,
            what="coordinator",
        )
        while True:
            try:
                await self._coordinator_leases.acquire(COORDINATOR_KEY, self._coordinator_lost.set)
            except ShardUnavailableError:
                check_cancelled()
                await asyncio.sleep(self.settings.heartbeat_interval)
                continue
            except Exception as error:
                check_cancelled()
                log.warning("coordinator_candidacy_failed", node=self.node, error=repr(error))
                await asyncio.sleep(self.settings.heartbeat_interval)
                continue
            self._coordinator_lost.clear()
            coordinator = Coordinator(
                self.nc,
                self._name,
                self.node,
                self.shards_bucket,
                self.membership,
                self.settings,
                self._request_control,
                lambda: COORDINATOR_KEY in self._coordinator_leases.held(),
            )
            self._coordinator = coordinator
            try:
                await coordinator.start()
                await self._coordinator_lost.wait()
            finally:
                self._coordinator = None
                await coordinator.stop()

    async def _step_down(self) -> None:
        coordinator, self._coordinator = self._coordinator, None
        if coordinator is not None:
            await coordinator.stop()
        leases = getattr(self, "_coordinator_leases", None)
        if leases is not None:
            await leases.release_all()

    async def _ask_coordinator(
        self,
        request: dict[str, Any],
        timeout: float,  # noqa: ASYNC109 - one attempt's NATS request timeout
    ) -> dict[str, Any]:
        """Request-reply to the coordinator, retried with backoff while none answers."""
        settings = self.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.coordinator_ttl * 3 + settings.request_timeout
        delay = 0.05
        data = json.dumps(request).encode()
        while True:
            if not self.nc.is_connected:
                raise ClusterUnavailableError(
                    f"node {self.node!r} is not connected to NATS (reconnecting): the coordinator "
                    "cannot be reached; try again"
                )
            try:
                reply = await self.nc.request(
                    coordinator_subject(self._name), data, timeout=timeout
                )
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError) as error:
                check_cancelled()
                if loop.time() + delay > deadline:
                    raise ShardUnavailableError(
                        f"no coordinator answered within "
                        f"{settings.coordinator_ttl * 3 + settings.request_timeout:g} s "
                        f"({error}); it is being replaced: try again"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            answer: dict[str, Any] = json.loads(reply.data)
            if "error" in answer:
                raise ClusterError(f"the coordinator refused {request['op']!r}: {answer['error']}")
            return answer

    # -- membership -----------------------------------------------------------------------------

    def _member_event(self, event: MemberEvent) -> None:
        self.cluster._publish(event)
        if isinstance(event, MemberLeft) and self._coordinator is not None:
            self._coordinator.member_left(event.member.node)

    # -- shard homes ----------------------------------------------------------------------------

    def _home_changed(self, change: Change) -> None:
        if change.key == COORDINATOR_KEY:
            return
        shard = parse_shard_key(change.key)
        if shard is None:
            return
        node: str | None = None
        if change.value is not None:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                node = json.loads(change.value)["node"]
        self._moving_out.discard(shard)
        for waiter in self._home_waiters:
            waiter.set()
        previous = self._homes.pop(shard, None) if node is None else self._homes.get(shard)
        if node is not None:
            self._homes[shard] = node
        if previous != node:
            region = self._regions.get(shard[0])
            if region is not None:
                region.tell(ShardHomeChanged(shard[1], node))

    # -- Placement ------------------------------------------------------------------------------

    def register_region(self, type_name: str, region: ActorRef, *, role: str | None = None) -> None:
        self._regions[type_name] = region
        if role is None or role in self.cluster.roles:
            self._hosted.add(type_name)
        self.membership.host_types(tuple(self._hosted))

    def unregister_region(self, type_name: str) -> None:
        self._hosted.discard(type_name)
        if self._regions.pop(type_name, None) is not None and not self._left:
            self.membership.host_types(tuple(self._hosted))

    def cached_home(self, type_name: str, shard_id: str) -> str | None:
        key = (type_name, shard_id)
        return None if key in self._moving_out else self._homes.get(key)

    async def home_of(self, type_name: str, shard_id: str) -> str:
        # a node that only routes the type (it lacks the role) asks without counting as a host
        requester = self.node if type_name in self._hosted else None
        answer = await self._ask_coordinator(
            {"op": "home", "type": type_name, "shard": shard_id, "node": requester},
            self.settings.request_timeout * 2,
        )
        node: str = answer["node"]
        key = (type_name, shard_id)
        if key not in self._moving_out:
            self._homes[key] = node
        return node

    async def acquire(
        self, type_name: str, shard_id: str, on_lost: Callable[[], None]
    ) -> int | None:
        if self._left:
            raise ShardUnavailableError(f"node {self.node!r} is leaving the cluster")
        return await self.leases.acquire(shard_key(type_name, shard_id), on_lost)

    async def release(self, type_name: str, shard_id: str) -> None:
        await self.leases.release(shard_key(type_name, shard_id))

    def send(self, node: str, type_name: str, message: Any, sender: ActorRef | None) -> None:
        self.transport.deliver(node, type_name, message, sender)

    def check_sendable(self, message: Any) -> None:
        """Raise the serializer's error naming ``message``'s type if it is not registered (what
        :class:`~cluster.EntityRef` checks at ``tell``, before anything is routed)."""
        serializer = self.cluster.serializer
        if not serializer.is_registered(message.__class__):
            serializer.encode(message)  # raises SerializationError, naming the type

    async def cluster_stats(
        self,
        type_name: str,
        timeout: float,  # noqa: ASYNC109 - each node's answer timeout
    ) -> dict[str, dict[str, int]]:
        nodes = [m.node for m in self.membership.members() if type_name in m.types]

        async def stats_of(node: str) -> tuple[str, dict[str, int] | None]:
            try:
                answer = await self._request_control(
                    node, {"op": "stats", "type": type_name}, timeout
                )
            except Exception:
                return node, None
            shards = answer.get("shards")
            return node, shards if isinstance(shards, dict) else None

        answers = await asyncio.gather(*(stats_of(node) for node in nodes))
        return {node: shards for node, shards in answers if shards is not None}

    # -- control requests -----------------------------------------------------------------------

    async def _request_control(
        self,
        node: str,
        request: dict[str, Any],
        timeout: float,  # noqa: ASYNC109 - NATS request timeout
    ) -> dict[str, Any]:
        reply = await self.nc.request(
            control_subject(self._name, node), json.dumps(request).encode(), timeout=timeout
        )
        answer: dict[str, Any] = json.loads(reply.data)
        return answer

    async def _control(self, msg: Msg) -> None:
        task = asyncio.get_running_loop().create_task(self._answer_control(msg))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _answer_control(self, msg: Msg) -> None:
        try:
            request = json.loads(msg.data)
            op = request["op"]
            region = self._regions.get(request.get("type", ""))
            if op == "forget":
                await self._forget(request["node"])
                answer: dict[str, Any] = {"ok": True}
            elif op == "handoff":
                key = (request["type"], request["shard"])
                self._moving_out.add(key)
                if region is not None:
                    promise, done = runtime.new_promise(region, self.settings.request_timeout * 2)
                    region.tell(ShardHomeChanged(key[1], None))
                    region.tell(HandOffShard(key[1], promise))
                    await done
                answer = {"ok": True}
            elif op == "stats":
                shards: dict[str, int] = {}
                if region is not None:
                    stats: ShardStats = await region.ask(
                        GetShardStats(), self.settings.request_timeout
                    )
                    shards = dict(stats.shards)
                answer = {"shards": shards}
            else:
                answer = {"error": f"unknown control request {op!r}"}
        except Exception as error:
            answer = {"error": str(error) or repr(error)}
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(json.dumps(answer).encode())
