"""Membership: who is in the cluster, from heartbeat keys with a per-key TTL.

Each node owns the key ``<node>`` in the bucket ``<name>-members``; its value (JSON) holds the
node's roles, the entity types it hosts and its start time. The node renews the key every
heartbeat interval by compare-and-set with a fresh TTL; a node that stops renewing (killed, frozen,
cut off) disappears when its TTL runs out, and the server's purge marker is the "member left"
event. A graceful leave deletes the key at once.

Every node watches the bucket: a key appearing is :class:`MemberUp`, a key deleted, purged or
expired is :class:`MemberLeft`; both are published on the system's event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from cluster._errors import ClusterError
from cluster._logging import log
from cluster._nats import Bucket, CasFailedError, Change, check_cancelled, watch


@dataclass(frozen=True, slots=True)
class Member:
    """A node of the cluster: its name, its roles, the entity types it hosts (regions started)
    and when it joined (wall-clock seconds, as the node itself reported)."""

    node: str
    roles: tuple[str, ...] = ()
    types: tuple[str, ...] = field(default=(), compare=False)
    since: float = field(default=0.0, compare=False)

    def has_role(self, role: str | None) -> bool:
        return role is None or role in self.roles

    def encode(self, incarnation: str = "") -> bytes:
        return json.dumps(
            {
                "roles": list(self.roles),
                "types": list(self.types),
                "since": self.since,
                "incarnation": incarnation,
            }
        ).encode()

    @classmethod
    def decode(cls, node: str, value: bytes) -> Member:
        try:
            fields = json.loads(value)
            return cls(
                node,
                tuple(str(r) for r in fields.get("roles", ())),
                tuple(str(t) for t in fields.get("types", ())),
                float(fields.get("since", 0.0)),
            )
        except (ValueError, TypeError, AttributeError):
            return cls(node)  # a value this version cannot read: still a member


@dataclass(frozen=True, slots=True)
class MemberUp:
    """``member`` joined the cluster (published on the system's event stream)."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberLeft:
    """``member`` left the cluster: it left gracefully or its heartbeat expired."""

    member: Member


MemberEvent = MemberUp | MemberLeft


class Membership:
    """This node's heartbeat and its view of every member."""

    def __init__(
        self,
        bucket: Bucket,
        node: str,
        roles: tuple[str, ...],
        *,
        interval: float,
        ttl: int,
        on_event: Callable[[MemberEvent], None],
    ) -> None:
        self._bucket = bucket
        self.node = node
        self._me = Member(node, roles, (), time.time())
        self._interval = interval
        self._ttl = ttl
        self._on_event = on_event
        self._members: dict[str, Member] = {}
        self._revision = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._watch: asyncio.Task[None] | None = None
        self._seen: set[str] | None = None
        self._renew_now = asyncio.Event()
        self._leaving = False
        self._incarnation = uuid.uuid4().hex

    def members(self) -> tuple[Member, ...]:
        """The members this node sees now, sorted by name (itself included once joined)."""
        return tuple(self._members[name] for name in sorted(self._members))

    def member(self, node: str) -> Member | None:
        return self._members.get(node)

    def host_types(self, types: tuple[str, ...]) -> None:
        """Announce the entity types this node hosts (at the next heartbeat, sent at once)."""
        self._me = Member(self._me.node, self._me.roles, tuple(sorted(types)), self._me.since)
        self._renew_now.set()

    async def join(self) -> None:
        """Write this node's heartbeat key and start watching the others. A node of the same
        name that is still alive makes this fail after the heartbeat TTL."""
        deadline = time.monotonic() + self._ttl + 2.0
        while True:
            try:
                self._revision = await self._bucket.create(self.node, self._value(), ttl=self._ttl)
                break
            except CasFailedError:
                check_cancelled()
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"cannot join as node {self.node!r}: a live node of that name is in the "
                        "cluster; give every node a unique name"
                    ) from None
                await asyncio.sleep(min(self._interval, 0.5))
        await self._start_watch()
        self._tasks.append(
            asyncio.create_task(self._heartbeat(), name=f"cluster-{self.node}-heartbeat")
        )

    def _value(self) -> bytes:
        return self._me.encode(self._incarnation)

    async def _start_watch(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watch = asyncio.create_task(
            watch(self._bucket, self._changed, ready), name=f"cluster-{self.node}-members-watch"
        )
        self._tasks.append(self._watch)
        await ready

    async def rewatch(self) -> None:
        """Watch again from the bucket's current state (after a reconnection): members whose
        keys went away meanwhile leave."""
        old = self._watch
        if old is not None:
            old.cancel()
            await asyncio.gather(old, return_exceptions=True)
            self._tasks.remove(old)
        self._seen = set()
        try:
            await self._start_watch()
            for node in [n for n in self._members if n not in self._seen]:
                self._changed(Change(node, None, 0))
        finally:
            self._seen = None

    async def leave(self) -> None:
        """Stop the heartbeat and delete the key: the others see :class:`MemberLeft` at once."""
        self._leaving = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        try:
            await self._bucket.delete(self.node, last=self._revision)
        except CasFailedError:
            pass  # it expired already: the others saw this node leave
        except Exception as error:
            log.warning("member_leave_failed", node=self.node, error=repr(error))

    async def _heartbeat(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._renew_now.wait(), self._interval)
            self._renew_now.clear()
            try:
                self._revision = await self._bucket.renew(
                    self.node, self._value(), last=self._revision, ttl=self._ttl
                )
            except CasFailedError:
                check_cancelled()
                if await self._adopt():
                    continue
                # The key expired (this process was frozen or cut off longer than the TTL), or
                # someone took the name: join again if the name is free.
                try:
                    self._revision = await self._bucket.create(
                        self.node, self._value(), ttl=self._ttl
                    )
                    log.warning("member_rejoined", node=self.node)
                except CasFailedError:
                    check_cancelled()
                    log.error("member_name_taken", node=self.node)
                except Exception as error:
                    check_cancelled()
                    log.warning("heartbeat_failed", node=self.node, error=repr(error))
            except Exception as error:  # NATS unreachable: the TTL decides
                check_cancelled()
                log.warning("heartbeat_failed", node=self.node, error=repr(error))

    async def _adopt(self) -> bool:
        """After a refused renewal: if the key still holds this incarnation's heartbeat (a
        renewal sent before a disconnection was applied after it), carry on from its revision."""
        try:
            entry = await self._bucket.kv.get(self.node)
            mine = json.loads(entry.value or b"{}").get("incarnation") == self._incarnation
        except Exception:
            return False
        if mine and entry.revision is not None:
            self._revision = entry.revision
            self._renew_now.set()
            return True
        return False

    def _changed(self, change: Change) -> None:
        if self._seen is not None:
            self._seen.add(change.key)
        old = self._members.get(change.key)
        if change.value is None:
            if old is not None:
                del self._members[change.key]
                log.info("member_left", node=change.key, seen_by=self.node)
                self._on_event(MemberLeft(old))
            return
        member = Member.decode(change.key, change.value)
        self._members[change.key] = member
        if old is None:
            log.info("member_up", node=change.key, roles=list(member.roles), seen_by=self.node)
            self._on_event(MemberUp(member))
