"""A NATS outage: sends fail at once with a clear error, leases that cannot be renewed
self-fence, and the nodes carry on once the server is back."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest

from actorsys import DeadLetter
from cluster import Cluster, ClusterSharding, ClusterUnavailableError
from cluster.testing import NatsServer
from tests.cluster._nodes import Get, placement, start_node
from tests.cluster._support import eventually
from tests.cluster.test_distributed_failover import ask_until_answered
from tests.cluster.test_distributed_routing import entity_on, touch_every_shard, two_nodes

NODES = ["n1", "n2", "n3"]


@pytest.fixture
def own_server() -> Iterator[NatsServer]:
    """A server of this test's own, to stop and start again."""
    server = NatsServer.start()
    try:
        yield server
    finally:
        server.stop()


async def test_during_an_outage_asks_fail_clearly_leases_self_fence_and_service_resumes_after(
    own_server: NatsServer, logs: list[MutableMapping[str, Any]]
) -> None:
    one, two = await two_nodes(own_server.url, "outage")
    try:
        await touch_every_shard(one)
        remote = entity_on(one, "n2")
        local = entity_on(one, "n1")
        own_server.kill()
        await eventually(lambda: not placement(one).nc.is_connected)
        with pytest.raises(ClusterUnavailableError) as raised:
            await ClusterSharding(one).entity_ref("Counter", remote).ask(Get())
        assert str(raised.value) == (
            "cannot send to node 'n2': this node (n1) is not connected to NATS (reconnecting); "
            "the message was not sent, try again"
        )
        # A reply to an actor of another node is a dead letter meanwhile, never an error in the
        # replying actor.
        await eventually(lambda: not placement(two).nc.is_connected)
        letters: list[DeadLetter] = []
        two.event_stream.subscribe(letters.append, DeadLetter)
        asker = placement(two).transport._import(["n1", "/user/asker", False])
        assert asker is not None
        asker.tell(Get())
        assert letters == [DeadLetter(Get(), None, asker)]
        await eventually(
            lambda: any(
                e["event"] == "lease_lost" and e["node"] == "n1" and e["kind"] == "shard"
                for e in logs
            )
        )
        await eventually(lambda: placement(one).leases.held() == {})
        own_server.restart()
        assert (await ask_until_answered(one, local)).entity_id == local
        assert (await ask_until_answered(one, remote)).entity_id == remote
        # The watches carry on after the restart: a node that joins now is seen.
        three = await start_node(own_server.url, "outage", "n3")
        await eventually(lambda: [m.node for m in one.extension(Cluster).members()] == NODES)
        await three.shutdown()
    finally:
        await two.shutdown()
        await one.shutdown()
