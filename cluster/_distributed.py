"""The NATS placement: where shards live when a :class:`~cluster.Cluster` is configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actorsys import ActorSystem
from cluster._membership import MemberEvent, Membership
from cluster._nats import Bucket, connect

if TYPE_CHECKING:
    from nats.aio.client import Client

    from cluster._cluster import Cluster


class NatsPlacement:
    """This node's part of the cluster: connection, membership, leases, coordinator candidacy,
    transport; implements :class:`cluster._placement.Placement`."""

    def __init__(self, cluster: Cluster, system: ActorSystem) -> None:
        self.cluster = cluster
        self.system = system
        self._nc: Client | None = None
        self._left = False
        self.membership: Membership = None  # type: ignore[assignment]  # set by start()

    @property
    def node(self) -> str:
        return self.cluster.node

    async def start(self) -> None:
        cluster = self.cluster
        settings = cluster.settings
        self._nc, self.redact = await connect(cluster.servers, settings, name=cluster.node)
        try:
            js = self._nc.jetstream()
            marker = max(settings.heartbeat_ttl, settings.lease_ttl, settings.coordinator_ttl)
            self.members_bucket = await Bucket.open(
                js, f"{cluster.name}-members", marker_ttl=marker
            )
            self.membership = Membership(
                self.members_bucket,
                cluster.node,
                cluster.roles,
                interval=settings.heartbeat_interval,
                ttl=settings.heartbeat_ttl,
                on_event=self._member_event,
            )
            await self.membership.join()
        except BaseException:
            await self._nc.close()
            raise

    def _member_event(self, event: MemberEvent) -> None:
        self.cluster._publish(event)

    async def leave(self) -> None:
        if self._left:
            return
        self._left = True
        await self.membership.leave()

    async def close(self) -> None:
        await self.leave()
        if self._nc is not None:
            await self._nc.close()
