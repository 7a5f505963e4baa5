"""``python -m cluster status NATS_URL``: a cluster as its NATS buckets and its nodes see it.

It reads the members (``<name>-members``), the coordinator's allocations (``<name>-shards``)
and the leases (``<name>-leases``), and asks every member hosting an entity type for its
entities per shard (the ``stats`` control request of :mod:`cluster._distributed`).
Nothing is written: status is read-only and safe to run against a live cluster. Reads are
routing hints (a follower may lag), which is fine for a picture of the cluster. Secrets in the
URL never appear in the output or in errors.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cluster._cluster import ClusterSettings
from cluster._coordinator import COORDINATOR_KEY, parse_shard_key
from cluster._distributed import control_subject
from cluster._errors import ClusterError
from cluster._membership import Member
from cluster._nats import Bucket, Redactor, _secrets, _tls_context, redact_url


@dataclass(frozen=True, slots=True)
class ShardStatus:
    """One shard: where the coordinator allocated it, who holds its lease, its entities."""

    type_name: str
    shard_id: str
    allocated_to: str | None
    lease_holder: str | None
    entities: int | None = None
    """Entities running in it, as its host reported (None: not reported)."""


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """What :func:`read_status` found."""

    name: str
    servers: tuple[str, ...]
    """The NATS URLs, with passwords and tokens masked."""
    members: tuple[Member, ...]
    coordinator: str | None
    shards: tuple[ShardStatus, ...]
    unanswered: tuple[str, ...] = field(default=())
    """Members that did not report their entities in time."""

    def shards_per_node(self, type_name: str | None = None) -> dict[str, int]:
        """Shards per node (by lease holder, else allocation); every member is listed, or with
        ``type_name`` every member hosting that type."""
        counts = {
            member.node: 0
            for member in self.members
            if type_name is None or type_name in member.types
        }
        for shard in self.shards:
            home = shard.lease_holder or shard.allocated_to
            if home is not None and type_name in (None, shard.type_name):
                counts[home] = counts.get(home, 0) + 1
        return counts


async def _lookup(js: Any, bucket: str) -> Bucket | None:
    import nats.js.errors

    try:
        kv = await js.key_value(bucket)
    except nats.js.errors.BucketNotFoundError:
        return None
    return Bucket(js, kv, bucket)


def _json_node(value: bytes) -> str | None:
    """The node an allocation, lease or coordinator value names (JSON ``{"node": ...}``)."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    node = decoded.get("node") if isinstance(decoded, dict) else None
    return None if node is None else str(node)


async def read_status(
    servers: Sequence[str],
    *,
    name: str = "actorsys",
    settings: ClusterSettings | None = None,
    type_name: str | None = None,
    timeout: float = 5.0,  # noqa: ASYNC109 - the connect and NATS request timeout
) -> ClusterStatus:
    """Read the cluster ``name`` from the NATS servers ``servers``.

    Raises :class:`~cluster.ClusterError` (secrets masked) if no server answers within
    ``timeout`` seconds, or if no cluster of that name ever ran there.
    """
    import nats
    import nats.errors

    settings = ClusterSettings() if settings is None else settings
    redactor = Redactor(_secrets(servers, settings))
    shown = tuple(redact_url(url) for url in servers)

    seen: list[Exception] = []

    async def quiet(error: Exception) -> None:
        """Connection errors are reported once, by the exception below."""
        seen.append(error)

    options: dict[str, Any] = {
        "servers": list(servers),
        "name": "status",
        "connect_timeout": timeout,
        "allow_reconnect": False,
        "max_reconnect_attempts": 0,
        "error_cb": quiet,
    }
    if settings.user is not None:
        options.update(user=settings.user, password=settings.password)
    if settings.token is not None:
        options["token"] = settings.token
    if settings.creds_file is not None:
        options["user_credentials"] = str(settings.creds_file)
    tls = _tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    try:
        async with asyncio.timeout(timeout):
            nc = await nats.connect(**options)
    except (TimeoutError, OSError, nats.errors.Error) as error:
        cause = seen[-1] if seen else error
        detail = redactor(str(cause) or f"no answer within {timeout} s")
        raise ClusterError(
            f"cannot reach NATS at {', '.join(shown)}: {detail}; check that the server runs, "
            "and the URL, credentials and TLS settings"
        ) from None
    try:
        async with asyncio.timeout(timeout):
            return await _read(nc, name, shown, type_name, timeout / 2)
    except TimeoutError:
        raise ClusterError(
            f"NATS at {', '.join(shown)} did not answer within {timeout} s"
        ) from None
    finally:
        await nc.close()


async def _read(
    nc: Any, name: str, shown: tuple[str, ...], type_name: str | None, wait: float
) -> ClusterStatus:
    js = nc.jetstream()
    members_bucket = await _lookup(js, f"{name}-members")
    if members_bucket is None:
        raise ClusterError(
            f"no cluster named {name!r} at {', '.join(shown)} (its bucket {name}-members does "
            "not exist): start a node with Cluster(..., name=...) or pass --name"
        )
    members = tuple(
        Member.decode(node, value)
        for node, (value, _) in sorted((await members_bucket.entries()).items())
    )
    allocations: dict[tuple[str, str], str | None] = {}
    coordinator = None
    shards_bucket = await _lookup(js, f"{name}-shards")
    if shards_bucket is not None:
        for key, (value, _) in (await shards_bucket.entries()).items():
            if key == COORDINATOR_KEY:
                coordinator = _json_node(value)
            elif (split := parse_shard_key(key)) is not None:
                allocations[split] = _json_node(value)
    leases: dict[tuple[str, str], str | None] = {}
    leases_bucket = await _lookup(js, f"{name}-leases")
    if leases_bucket is not None:
        for key, (value, _) in (await leases_bucket.entries()).items():
            if (split := parse_shard_key(key)) is not None:
                leases[split] = _json_node(value)
    types = {key[0] for key in (*allocations, *leases)} | {t for m in members for t in m.types}
    entities, unanswered = await _entities(nc, name, members, types, wait)
    keys = sorted(
        {*allocations, *leases},
        key=lambda k: (k[0], int(k[1]) if k[1].isdigit() else k[1]),
    )
    shards = tuple(
        ShardStatus(
            type_name=key[0],
            shard_id=key[1],
            allocated_to=allocations.get(key),
            lease_holder=leases.get(key),
            entities=entities.get(key),
        )
        for key in keys
        if type_name is None or key[0] == type_name
    )
    return ClusterStatus(name, shown, members, coordinator, shards, unanswered)


async def _entities(
    nc: Any, name: str, members: tuple[Member, ...], types: set[str], wait: float
) -> tuple[dict[tuple[str, str], int], tuple[str, ...]]:
    """Entities per shard, as each member hosting a type reports them; the members that did
    not answer."""
    asked = [(m.node, t) for m in members for t in sorted(types) if t in m.types]

    async def stats(node: str, type_name: str) -> dict[str, int]:
        request = json.dumps({"op": "stats", "type": type_name}).encode()
        reply = await nc.request(control_subject(name, node), request, timeout=wait)
        answer = json.loads(reply.data)
        shards = answer.get("shards") if isinstance(answer, dict) else None
        if not isinstance(shards, dict):
            raise ClusterError(f"node {node!r} answered {answer!r}")
        return {str(shard): int(count) for shard, count in shards.items()}

    answers = await asyncio.gather(
        *(stats(node, type_name) for node, type_name in asked), return_exceptions=True
    )
    found: dict[tuple[str, str], int] = {}
    unanswered: list[str] = []
    for (node, type_name), answer in zip(asked, answers, strict=True):
        if isinstance(answer, BaseException):
            if node not in unanswered:
                unanswered.append(node)
            continue
        for shard_id, count in answer.items():
            found[(type_name, shard_id)] = count
    return found, tuple(unanswered)


def _since(member: Member) -> str:
    if not member.since:
        return "-"
    return datetime.fromtimestamp(member.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_status(status: ClusterStatus) -> str:
    """The status as text: nodes, shards per node, entities per shard."""
    lines = [f"cluster {status.name!r} on {', '.join(status.servers)}"]
    lines.append(f"coordinator: {status.coordinator or '(none)'}")
    lines.append(f"nodes ({len(status.members)}):")
    per_node = status.shards_per_node()
    for member in status.members:
        roles = ",".join(member.roles) or "-"
        types = ",".join(member.types) or "-"
        lines.append(
            f"  {member.node}  roles {roles}  hosts {types}  shards {per_node.get(member.node, 0)}"
            f"  up since {_since(member)}"
        )
    if status.unanswered:
        lines.append(f"  (no entity counts from: {', '.join(status.unanswered)})")
    by_type: dict[str, list[ShardStatus]] = {}
    for shard in status.shards:
        by_type.setdefault(shard.type_name, []).append(shard)
    if not by_type:
        lines.append("shards: none allocated yet")
    for type_name, shards in by_type.items():
        counts = status.shards_per_node(type_name)
        summary = ", ".join(f"{node} {count}" for node, count in sorted(counts.items()))
        lines.append(f"{type_name}: {len(shards)} shards ({summary})")
        for shard in shards:
            lines.append("  " + _shard_line(shard))
    return "\n".join(lines)


def _shard_line(shard: ShardStatus) -> str:
    home = shard.lease_holder or "-"
    entities = "?" if shard.entities is None else str(shard.entities)
    moving = ""
    if shard.allocated_to is not None and shard.allocated_to != shard.lease_holder:
        moving = f" (allocated to {shard.allocated_to})"
    return f"shard {shard.shard_id}: on {home}{moving}, entities: {entities}"


def as_json(status: ClusterStatus) -> Mapping[str, Any]:
    """The status as a JSON-ready mapping (``--json``)."""
    return {
        "name": status.name,
        "servers": list(status.servers),
        "coordinator": status.coordinator,
        "nodes": [
            {"node": m.node, "roles": list(m.roles), "types": list(m.types), "since": m.since}
            for m in status.members
        ],
        "shards_per_node": status.shards_per_node(),
        "shards": [
            {
                "type": s.type_name,
                "shard": s.shard_id,
                "allocated_to": s.allocated_to,
                "lease_holder": s.lease_holder,
                "entities": s.entities,
            }
            for s in status.shards
        ],
        "unanswered": list(status.unanswered),
    }
