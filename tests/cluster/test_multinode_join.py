"""Nodes joining a running cluster: shards move to them, a few at a time, until balanced, each
hand-off stopping the old incarnation before the new one starts."""

from __future__ import annotations

import pytest

from tests.cluster._procs import Nodes, incarnations, one_id_per_shard, overlaps, shard_counts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_one_node_with_30_shards_and_two_joining_converge_to_10_10_10(nodes: Nodes) -> None:
    [first] = nodes.start("n1")
    driver = nodes.driver()
    ids = one_id_per_shard()
    for entity_id in ids:
        assert driver.request("ask", entity=entity_id, value=1)["node"] == "n1"
    assert shard_counts(driver.request("cluster_stats")) == {"n1": 30}

    nodes.start("n2", "n3")

    def balanced() -> bool:
        return nodes.allocations() == {"n1": 10, "n2": 10, "n3": 10}

    nodes.wait_until(balanced, 60, "shards balanced 10/10/10 over n1, n2, n3")
    # every entity still answers, from its new home, with its history (from the journal)
    homes = set()
    for entity_id in ids:
        reply = driver.request("ask", entity=entity_id, value=2, timeout=10)
        homes.add(reply["node"])
        assert driver.request("get", entity=entity_id)["values"] == [1, 2]
    assert homes == {"n1", "n2", "n3"}
    assert overlaps(incarnations(nodes.log.snapshot()), lambda i: i.stopped) == []
    assert first.process.poll() is None
