"""Three node processes and a driver node (no entity role): shards are allocated least-shards
first, later messages go straight to the owner, asks and tells cross nodes (replies reach the
sending actor on its own node), and a message type the serializer does not know is refused."""

from __future__ import annotations

import pytest

from cluster.testing import NatsServer
from tests.cluster._procs import NodeError, Nodes, one_id_per_shard, shard_counts
from tests.cluster._wiretap import subject_counts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_first_messages_allocate_shards_to_the_nodes_with_the_fewest(nodes: Nodes) -> None:
    nodes.start("n1", "n2", "n3")
    driver = nodes.driver()
    for number, entity_id in enumerate(one_id_per_shard()):
        reply = driver.request("ask", entity=entity_id, value=number)
        assert reply["value"] == number
    assert sorted(shard_counts(driver.request("cluster_stats")).items()) == [
        ("n1", 10),
        ("n2", 10),
        ("n3", 10),
    ]


def test_shards_first_asked_for_all_at_once_are_still_spread_least_shards_first(
    nodes: Nodes,
) -> None:
    nodes.start("n1", "n2", "n3")
    driver = nodes.driver()
    driver.send("load", entities=one_id_per_shard(), count=1, timeout=10.0)
    nodes.log.wait_for(lambda e: e["event"] == "load_done", 60, "the first asks")
    assert nodes.events("failed") == []
    assert nodes.allocations() == {"n1": 10, "n2": 10, "n3": 10}


def test_after_the_first_message_an_entity_is_reached_without_the_coordinator(
    nodes: Nodes, nats_server: NatsServer
) -> None:
    nodes.start("n1", "n2", "n3")
    driver = nodes.driver()
    ids = one_id_per_shard()
    for entity_id in ids:
        driver.request("ask", entity=entity_id, value=1)
    before = subject_counts(nats_server, nodes.name)
    for value in range(2, 12):
        for entity_id in ids:
            driver.request("ask", entity=entity_id, value=value)
    after = subject_counts(nats_server, nodes.name)
    to_nodes = sum(after.get(s, 0) - before.get(s, 0) for s in after if ".node." in s)
    to_coordinator = {
        subject: after[subject] - before.get(subject, 0)
        for subject in after
        if ".node." not in subject and after[subject] != before.get(subject, 0)
    }
    assert to_nodes >= 300  # the 300 asks, each a message to its owner's subject
    assert to_coordinator == {}


def test_asks_and_tells_cross_nodes_and_replies_reach_the_sending_actor(nodes: Nodes) -> None:
    nodes.start("n1", "n2", "n3")
    driver = nodes.driver()
    ids = one_id_per_shard()
    answered_by = {driver.request("ask", entity=e, value=1)["node"] for e in ids}
    assert answered_by == {"n1", "n2", "n3"}
    for entity_id in ids:
        driver.request("tell", entity=entity_id, value=2)
    nodes.wait_until(
        lambda: len(nodes.events("collected")) >= len(ids),
        30,
        "a reply from every entity at the driver's collector",
    )
    collected = nodes.events("collected", **{"from": "driver"})
    assert sorted(event["value"] for event in collected) == [2] * len(ids)
    assert {event["node"] for event in collected} == {"n1", "n2", "n3"}
    for entity_id in ids:
        assert driver.request("get", entity=entity_id)["values"] == [1, 2]


def test_a_message_of_an_unregistered_type_is_refused_at_tell_naming_the_type(
    nodes: Nodes,
) -> None:
    nodes.start("n1")
    driver = nodes.driver()
    with pytest.raises(NodeError) as refused:
        driver.request("tell_unregistered", entity="e1")
    assert str(refused.value).startswith(
        "SerializationError: cannot encode __main__.NotRegistered: the type is not registered; "
        'register it with a stable name: serializer.register(NotRegistered, "NotRegistered")'
    )
    assert driver.request("ask", entity="e1", value=1)["value"] == 1
