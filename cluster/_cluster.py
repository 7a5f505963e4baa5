"""The ``Cluster`` extension: one node of a cluster on NATS.

    system = ActorSystem("app", extensions=[Cluster("nats://127.0.0.1:4222", node="n1")])

Starting the system connects to NATS, announces this node (membership), stands for coordinator
and makes the NATS placement available to sharding; shutting it down hands every shard off,
releases the leases and leaves. Names on NATS (see ``cluster-design``): subjects under
``actorsys.<name>``, buckets ``<name>-members``, ``<name>-leases`` and ``<name>-shards``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from actorsys import ActorSystem, runtime
from cluster._errors import ClusterError
from cluster._logging import log
from cluster._membership import Member, MemberEvent, MemberLeft, MemberUp
from cluster._nats import redact_url
from cluster._placement import PlacementProvider
from persistence.serialization import Serializer, default_serializer

if TYPE_CHECKING:
    from cluster._distributed import NatsPlacement

__all__ = ["Cluster", "ClusterSettings", "Member", "MemberLeft", "MemberUp"]


_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """How a node takes part in the cluster. TTLs are whole seconds (NATS's granularity).

    - ``heartbeat_interval`` / ``heartbeat_ttl``: a node that has not renewed its heartbeat for
      ``heartbeat_ttl`` seconds has left.
    - ``lease_ttl`` / ``lease_renew_interval`` / ``lease_margin``: a shard's lease expires
      ``lease_ttl`` seconds after its last renewal; a node stops the shard's entities when no
      renewal succeeded for ``lease_ttl - lease_margin`` seconds (measured from the send time of
      the last successful one), before the lease can expire and be taken elsewhere.
    - ``coordinator_ttl``: a coordinator that stops renewing is replaced after this long.
    - ``rebalance_interval``, ``rebalance_max_simultaneous``, ``rebalance_threshold``: every
      interval the coordinator moves at most that many shards of a type from the most to the
      least loaded node while their counts differ by more than the threshold.
    - ``request_timeout``: how long a node waits for the coordinator's answer.
    - Credentials: ``user``/``password``, ``token`` or ``creds_file`` (or in the URL); TLS:
      ``tls_ca`` (the CA to trust), ``tls_cert``/``tls_key`` (a client certificate).
    - Reconnection: ``reconnect_wait`` between attempts, ``max_reconnect_attempts`` (-1: never
      give up).
    """

    heartbeat_interval: float = 1.0
    heartbeat_ttl: int = 3
    lease_ttl: int = 3
    lease_renew_interval: float = 0.5
    lease_margin: float = 1.0
    coordinator_ttl: int = 3
    rebalance_interval: float = 2.0
    rebalance_max_simultaneous: int = 3
    rebalance_threshold: int = 1
    request_timeout: float = 5.0
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds_file: Path | str | None = None
    tls_ca: Path | str | None = None
    tls_cert: Path | str | None = None
    tls_key: Path | str | None = None
    connect_timeout: float = 5.0
    reconnect_wait: float = 0.5
    max_reconnect_attempts: int = -1

    def __post_init__(self) -> None:
        for name in ("heartbeat_ttl", "lease_ttl", "coordinator_ttl"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"ClusterSettings.{name} must be a whole number of seconds >= 1 (NATS "
                    f"expires keys by the second), got {value!r}"
                )
        if not 0 < self.heartbeat_interval < self.heartbeat_ttl:
            raise ValueError(
                "ClusterSettings.heartbeat_interval must be positive and below heartbeat_ttl, got "
                f"{self.heartbeat_interval!r} (heartbeat_ttl={self.heartbeat_ttl})"
            )
        if not 0 < self.lease_margin < self.lease_ttl:
            raise ValueError(
                "ClusterSettings.lease_margin must be positive and below lease_ttl, got "
                f"{self.lease_margin!r} (lease_ttl={self.lease_ttl})"
            )
        if not 0 < self.lease_renew_interval < self.lease_ttl - self.lease_margin:
            raise ValueError(
                "ClusterSettings.lease_renew_interval must be positive and below lease_ttl - "
                f"lease_margin ({self.lease_ttl - self.lease_margin}), got "
                f"{self.lease_renew_interval!r}: otherwise a lease self-fences before its first "
                "renewal"
            )
        if self.rebalance_interval <= 0 or self.rebalance_max_simultaneous < 1:
            raise ValueError(
                "ClusterSettings.rebalance_interval must be positive and "
                "rebalance_max_simultaneous at least 1"
            )
        if self.rebalance_threshold < 1:
            raise ValueError(
                f"ClusterSettings.rebalance_threshold must be at least 1, got "
                f"{self.rebalance_threshold!r}"
            )

    def __repr__(self) -> str:
        hidden = {"password", "token"}
        shown = ", ".join(
            f"{name}={'***' if name in hidden and getattr(self, name) else getattr(self, name)!r}"
            for name in self.__dataclass_fields__
        )
        return f"ClusterSettings({shown})"


def _servers(servers: str | Sequence[str]) -> list[str]:
    urls = servers.split(",") if isinstance(servers, str) else list(servers)
    urls = [url.strip() for url in urls if url.strip()]
    if not urls:
        raise ValueError("Cluster needs at least one NATS server URL, e.g. nats://127.0.0.1:4222")
    return urls


def _check_name(kind: str, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"invalid cluster {kind} {value!r}: use letters, digits, '-' and '_' only (it is part "
            "of NATS subjects and bucket names)"
        )


class Cluster(PlacementProvider):
    """An :class:`~actorsys.ActorSystem` extension: this process is node ``node`` of cluster
    ``name`` on the NATS servers ``servers`` (a URL, a comma-separated list or a sequence)."""

    def __init__(
        self,
        servers: str | Sequence[str],
        *,
        node: str,
        roles: Sequence[str] = (),
        name: str = "actorsys",
        settings: ClusterSettings | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        self.servers = _servers(servers)
        _check_name("node name", node)
        _check_name("name", name)
        self.node = node
        self.roles = tuple(roles)
        self.name = name
        self.settings = ClusterSettings() if settings is None else settings
        self.serializer = default_serializer if serializer is None else serializer
        self._system: ActorSystem | None = None
        self._placement: NatsPlacement | None = None

    @property
    def placement(self) -> NatsPlacement:
        """The NATS placement sharding uses on this node (started systems only)."""
        if self._placement is None:
            raise ClusterError(
                f"cluster node {self.node!r} is not started: start the ActorSystem first"
            )
        return self._placement

    def members(self) -> tuple[Member, ...]:
        """The members this node sees now (itself included), sorted by node name."""
        return self.placement.membership.members()

    @property
    def is_coordinator(self) -> bool:
        """Whether this node is the cluster's coordinator now."""
        return self.placement.is_coordinator

    def shard_homes(self) -> dict[tuple[str, str], str]:
        """Every allocated shard, ``(type_name, shard_id)`` → node, as this node knows them now
        (from the coordinator's decisions it watches: a routing hint, not a lease)."""
        return dict(self.placement._homes)

    async def start(self, system: ActorSystem) -> None:
        from cluster._distributed import NatsPlacement

        self._system = system
        placement = NatsPlacement(self, system)
        await placement.start()
        self._placement = placement
        runtime.before_stop(system, self.leave)  # hand shards off while the regions still run
        log.info(
            "cluster_node_started",
            node=self.node,
            cluster=self.name,
            servers=[redact_url(url) for url in self.servers],
        )

    async def leave(self) -> None:
        """Leave gracefully now: hand every shard of this node off, release the leases and
        delete the heartbeat (shutdown does this if it was not done)."""
        if self._placement is not None:
            await self._placement.leave()

    async def close(self) -> None:
        placement, self._placement = self._placement, None
        if placement is not None:
            await placement.close()

    def _publish(self, event: MemberEvent) -> None:
        if self._system is not None:
            self._system.event_stream.publish(event)

    def __repr__(self) -> str:
        servers = ",".join(redact_url(url) for url in self.servers)
        return f"Cluster({servers!r}, node={self.node!r}, name={self.name!r})"
