"""Membership: heartbeat keys with a TTL, MemberUp/MemberLeft on the event stream, members()."""

from __future__ import annotations

import asyncio

import nats.js.errors
import pytest

from actorsys import ActorSystem
from cluster._cluster import Cluster, Member, MemberLeft, MemberUp
from cluster._errors import ClusterError
from tests.cluster._nodes import crash
from tests.cluster._support import FAST, eventually


def node(url: str, name: str, node_name: str, roles: tuple[str, ...] = ()) -> ActorSystem:
    return ActorSystem(
        node_name,
        extensions=[Cluster(url, node=node_name, roles=roles, name=name, settings=FAST)],
    )


async def test_members_see_each_other_join_and_a_graceful_leave(
    nats_url: str, cluster_name: str
) -> None:
    async with node(nats_url, cluster_name, "n1", ("web",)) as one:
        cluster = one.extension(Cluster)
        events: list[object] = []
        one.event_stream.subscribe(events.append, MemberUp)
        one.event_stream.subscribe(events.append, MemberLeft)
        assert [m.node for m in cluster.members()] == ["n1"]
        two = await node(nats_url, cluster_name, "n2").start()
        await eventually(lambda: len(cluster.members()) == 2)
        assert cluster.members() == (Member("n1", ("web",)), Member("n2"))
        assert two.extension(Cluster).members() == (Member("n1", ("web",)), Member("n2"))
        await two.shutdown()
        await eventually(lambda: len(cluster.members()) == 1)
        assert events == [MemberUp(Member("n2")), MemberLeft(Member("n2"))]


async def test_a_member_that_stops_heartbeating_leaves_when_its_ttl_runs_out(
    nats_url: str, cluster_name: str
) -> None:
    async with node(nats_url, cluster_name, "n1") as one:
        cluster = one.extension(Cluster)
        left: list[MemberLeft] = []
        one.event_stream.subscribe(left.append, MemberLeft)
        two = await node(nats_url, cluster_name, "n2").start()
        await eventually(lambda: len(cluster.members()) == 2)
        two_membership = two.extension(Cluster).placement.membership
        for task in two_membership._tasks:  # the process froze: no heartbeat, no leave
            task.cancel()
        await eventually(lambda: len(left) == 1)
        assert left == [MemberLeft(Member("n2"))]
        assert cluster.members() == (Member("n1"),)
        two_membership._tasks.clear()
        await two.shutdown()


async def test_a_second_live_node_with_the_same_name_is_refused(
    nats_url: str, cluster_name: str
) -> None:
    async with node(nats_url, cluster_name, "n1"):
        with pytest.raises(ClusterError) as raised:
            await node(nats_url, cluster_name, "n1").start()
        assert str(raised.value) == (
            "cannot join as node 'n1': a live node of that name is in the cluster; give every "
            "node a unique name"
        )


async def test_watching_again_reports_members_that_went_away_unseen(
    nats_url: str, cluster_name: str
) -> None:
    async with node(nats_url, cluster_name, "n1") as one:
        membership = one.extension(Cluster).placement.membership
        left: list[MemberLeft] = []
        one.event_stream.subscribe(left.append, MemberLeft)
        two = await node(nats_url, cluster_name, "n2").start()
        await eventually(lambda: len(membership.members()) == 2)
        assert membership._watch is not None
        membership._watch.cancel()  # disconnected: n1 sees nothing from now on
        await asyncio.gather(membership._watch, return_exceptions=True)
        await crash(two)  # its key expires, then the server's marker of that expires too
        bucket = one.extension(Cluster).placement.members_bucket

        async def gone() -> bool:
            try:
                await bucket.kv.get("n2")
            except nats.js.errors.KeyNotFoundError:
                return True
            return False

        for _ in range(300):
            if await gone():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the key of n2 never went away")
        assert left == []
        await membership.rewatch()
        assert left == [MemberLeft(Member("n2"))]
        assert membership.members() == (Member("n1"),)
