"""``python -m cluster status NATS_URL``: nodes, shards per node and entities per shard of a
running cluster; a password in the URL is never printed; clear errors when NATS is unreachable
or no cluster of that name ran there."""

from __future__ import annotations

import json
import re

import pytest

from cluster.testing import free_port
from tests.cluster._procs import Nodes, one_id_per_shard
from tests.examples._run import run_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _with_password(url: str) -> str:
    return url.replace("nats://", "nats://bob:s3cret@")


def test_status_prints_nodes_shards_per_node_and_entities_per_shard(nodes: Nodes) -> None:
    nodes.start("n1", "n2")
    driver = nodes.driver()
    for number, entity_id in enumerate(one_id_per_shard()[:6]):
        driver.request("ask", entity=entity_id, value=number)
    url = _with_password(nodes.nats_url)
    result = run_module("cluster", "status", url, "--name", nodes.name)
    assert "s3cret" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"cluster {nodes.name!r} on {url.replace('s3cret', '***')}"
    assert re.fullmatch(r"coordinator: (n1|n2|driver)", lines[1])
    assert lines[2] == "nodes (3):"
    assert [line.split()[0] for line in lines[3:6]] == ["driver", "n1", "n2"]
    assert "hosts Ledger  shards 3" in lines[4]
    assert "hosts Ledger  shards 3" in lines[5]
    assert lines[6] == "Ledger: 6 shards (n1 3, n2 3)"
    assert [re.sub(r"on n\d", "on N", line) for line in lines[7:]] == [
        f"  shard {shard}: on N, entities: 1" for shard in range(6)
    ]

    shown = run_module("cluster", "status", url, "--name", nodes.name, "--json").stdout
    as_json = json.loads(shown)
    assert as_json["shards_per_node"] == {"driver": 0, "n1": 3, "n2": 3}
    assert {s["shard"]: s["entities"] for s in as_json["shards"]} == {str(i): 1 for i in range(6)}
    assert all(s["allocated_to"] == s["lease_holder"] for s in as_json["shards"])


def test_status_says_when_nats_cannot_be_reached_without_printing_the_password() -> None:
    url = f"nats://bob:s3cret@127.0.0.1:{free_port()}"
    result = run_module("cluster", "status", url, "--timeout", "2", exit_code=1)
    assert result.stdout == ""
    assert "s3cret" not in result.stderr
    assert result.stderr.startswith(f"error: cannot reach NATS at {url.replace('s3cret', '***')}: ")
    assert result.stderr.rstrip().endswith(
        "check that the server runs, and the URL, credentials and TLS settings"
    )


def test_status_of_a_cluster_name_that_never_ran_there_says_so(nats_url: str) -> None:
    result = run_module("cluster", "status", nats_url, "--name", "never-ran", exit_code=1)
    assert result.stderr.strip() == (
        f"error: no cluster named 'never-ran' at {nats_url} (its bucket never-ran-members does "
        "not exist): start a node with Cluster(..., name=...) or pass --name"
    )
