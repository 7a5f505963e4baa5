"""Shard leases: who may host a shard, decided by compare-and-set writes only.

A lease is the key ``<type>.<shard>`` in the bucket ``<name>-leases`` with a per-key TTL; its
value is JSON: ``{"node": holder}``, and ``{"node": holder, "epoch": epoch}`` once renewed.

- ``acquire``: a KV ``create`` (succeeds only if nobody holds the key; an expired or released
  lease counts as free). The revision it returns is the lease's **epoch**: revisions only grow,
  so every acquisition of a shard has a higher epoch than all before it (the fencing token the
  shard's entities write with).
- Renewal: every ``renew_interval`` a compare-and-set on the last revision with a fresh TTL.
- **Self-fencing**: the lease is lost, and ``on_lost`` is called at once, when a renewal is
  refused (the key expired or changed), or when no renewal succeeded for ``ttl - margin``
  seconds, measured on the local monotonic clock from the *send* time of the last successful
  write. The server started the TTL after that send, so the holder stops before the lease can
  expire and be taken elsewhere.
- ``release``: a compare-and-set delete, after the shard's entities stopped.

Reads never decide ownership. The deadline logic runs on an injectable clock
(:class:`~actorsys.Clock`), so tests drive it with a manual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from actorsys import Cancellable, Clock
from cluster._logging import log
from cluster._nats import CasFailedError, check_cancelled
from cluster._placement import ShardUnavailableError


class LeaseStore(Protocol):
    """The compare-and-set operations leases need (:class:`cluster._nats.Bucket` has them)."""

    async def create(self, key: str, value: bytes, *, ttl: int | None) -> int: ...

    async def renew(self, key: str, value: bytes, *, last: int, ttl: int | None) -> int: ...

    async def delete(self, key: str, *, last: int) -> None: ...


@dataclass(eq=False, slots=True)
class Lease:
    """A lease this node holds."""

    key: str
    epoch: int
    revision: int
    valid_from: float  # local send time of the last successful write
    on_lost: Callable[[], None]
    value: bytes = b""
    renewal: Cancellable | None = None
    deadline: Cancellable | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    active: bool = True


class Leases:
    """The leases of one node: acquire, renew on a timer, self-fence, release."""

    def __init__(
        self,
        store: LeaseStore,
        node: str,
        *,
        ttl: int,
        renew_interval: float,
        margin: float,
        clock: Clock,
        what: str = "shard",
    ) -> None:
        self._store = store
        self.node = node
        self._ttl = ttl
        self._interval = renew_interval
        self._margin = margin
        self._clock = clock
        self._what = what
        self._value = json.dumps({"node": node}).encode()
        self._held: dict[str, Lease] = {}

    def held(self) -> dict[str, int]:
        """The keys this node holds a lease on, with their epochs."""
        return {key: lease.epoch for key, lease in self._held.items()}

    def epoch(self, key: str) -> int | None:
        lease = self._held.get(key)
        return None if lease is None else lease.epoch

    async def acquire(self, key: str, on_lost: Callable[[], None]) -> int:
        """Take the lease on ``key``; return its epoch. Raises :class:`ShardUnavailableError`
        while another node holds it (or this node already does)."""
        if key in self._held:
            raise ShardUnavailableError(f"this node ({self.node}) already holds the lease {key!r}")
        sent = self._clock.time()
        try:
            revision = await self._store.create(key, self._value, ttl=self._ttl)
        except CasFailedError:
            raise ShardUnavailableError(
                f"the lease {key!r} is held by another node; it is free once released or "
                f"{self._ttl} s after its holder stopped renewing"
            ) from None
        value = json.dumps({"node": self.node, "epoch": revision}).encode()
        lease = Lease(key, revision, revision, sent, on_lost, value)
        self._held[key] = lease
        self._arm(lease)
        log.debug("lease_acquired", node=self.node, key=key, epoch=revision)
        return revision

    async def release(self, key: str) -> None:
        """Give the lease up (compare-and-set delete); a lease already lost is ignored."""
        lease = self._held.pop(key, None)
        if lease is None:
            return
        self._disarm(lease)
        with contextlib.suppress(CasFailedError):  # expired or lost meanwhile: not ours now
            await self._store.delete(key, last=lease.revision)
        log.debug("lease_released", node=self.node, key=key, epoch=lease.epoch)

    async def release_all(self) -> None:
        for key in list(self._held):
            try:
                await self.release(key)
            except Exception as error:  # NATS down: the TTL frees it
                log.warning("lease_release_failed", node=self.node, key=key, error=repr(error))

    def stop(self) -> None:
        """Stop renewing every lease without releasing it (the process is going away)."""
        for lease in self._held.values():
            self._disarm(lease)
        self._held.clear()

    # -- renewal and self-fencing ---------------------------------------------------------------

    def _arm(self, lease: Lease) -> None:
        clock = self._clock
        lease.renewal = clock.call_later(self._interval, self._renew, lease)
        if lease.deadline is not None:
            lease.deadline.cancel()
        remaining = lease.valid_from + self._ttl - self._margin - clock.time()
        lease.deadline = clock.call_later(remaining, self._expire, lease)

    def _disarm(self, lease: Lease) -> None:
        lease.active = False
        for timer in (lease.renewal, lease.deadline):
            if timer is not None:
                timer.cancel()
        task = lease.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    def _renew(self, lease: Lease) -> None:
        if lease.active:
            lease.task = asyncio.get_running_loop().create_task(self._renewal(lease))

    async def _renewal(self, lease: Lease) -> None:
        sent = self._clock.time()
        try:
            revision = await self._store.renew(
                lease.key, lease.value, last=lease.revision, ttl=self._ttl
            )
        except CasFailedError:
            check_cancelled()
            if lease.active:
                self._lose(lease, "renewal_refused")
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # NATS unreachable: try again; the deadline decides
            check_cancelled()
            if lease.active:
                log.warning(
                    "lease_renewal_failed",
                    kind=self._what,
                    node=self.node,
                    key=lease.key,
                    error=repr(error),
                )
                lease.renewal = self._clock.call_later(self._interval, self._renew, lease)
            return
        if not lease.active:  # lost (deadline) while the write was in flight: free it early
            await self._forget(lease.key, revision)
            return
        lease.revision = revision
        lease.valid_from = sent
        self._arm(lease)

    def _expire(self, lease: Lease) -> None:
        if lease.active:
            self._lose(lease, "renewal_deadline_passed")

    def _lose(self, lease: Lease, reason: str) -> None:
        self._disarm(lease)
        if self._held.get(lease.key) is lease:
            del self._held[lease.key]
        log.warning(
            "lease_lost",
            kind=self._what,
            node=self.node,
            key=lease.key,
            epoch=lease.epoch,
            reason=reason,
        )
        lease.on_lost()

    async def _forget(self, key: str, revision: int) -> None:
        try:
            await self._store.delete(key, last=revision)
        except Exception as error:
            log.debug("lease_forget_failed", node=self.node, key=key, error=repr(error))
