"""The NATS server crashes (SIGKILL) under load and comes back on the same ports and store: the
nodes reconnect, asks during the outage fail with a clear error, nothing acknowledged is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.testing import NatsServer
from tests.cluster._procs import (
    Nodes,
    check_journal_against_acks,
    journal_events,
    load_outcome,
    one_id_per_shard,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ENTITIES = one_id_per_shard()[:10]


@pytest.fixture
def own_nats() -> Iterator[NatsServer]:
    """A NATS server of this test alone (it is killed and restarted)."""
    server = NatsServer.start()
    try:
        yield server
    finally:
        server.stop()


def test_nodes_reconnect_after_a_nats_restart_and_nothing_acknowledged_is_lost(
    own_nats: NatsServer, cluster_name: str, postgres_dsn: str, pg_schema: str, tmp_path: Path
) -> None:
    nodes = Nodes(own_nats.url, cluster_name, postgres_dsn, pg_schema, tmp_path)
    try:
        nodes.start("n1", "n2", "n3")
        driver = nodes.driver()
        driver.send("load", entities=ENTITIES, count=150, timeout=2.0, pause=0.05)
        nodes.log.wait_for(
            lambda e: e["event"] == "acked" and e["value"] == 10, 60, "the load to get going"
        )
        own_nats.kill()
        killed = len(nodes.log.snapshot())
        nodes.log.wait_for(
            lambda e: e["event"] == "failed", 30, "an ask failing during the outage", killed
        )
        outage = nodes.log.snapshot()[killed:]
        own_nats.restart()
        restarted = len(nodes.log.snapshot())
        nodes.log.wait_for(
            lambda e: e["event"] == "acked", 60, "an ask answered after the restart", restarted
        )
        nodes.log.wait_for(lambda e: e["event"] == "load_done", 120, "the end of the load")

        errors = {e["error"] for e in outage if e["event"] == "failed"}
        assert errors, "no ask failed while NATS was down"
        for error in errors:
            assert error.startswith(("ClusterUnavailableError: ", "AskTimeoutError: ")), error
        assert any("NATS" in error for error in errors), errors
        outcome = load_outcome(nodes.log, "driver", ENTITIES)
        stored = journal_events(postgres_dsn, pg_schema, ENTITIES)
        check_journal_against_acks(stored, outcome)
        after = nodes.log.snapshot()[restarted:]
        assert {e["entity"] for e in after if e["event"] == "acked"} == set(ENTITIES)
        for name in ("n1", "n2", "n3", "driver"):
            assert nodes.nodes[name].process.poll() is None, nodes.nodes[name].stderr_tail()
    finally:
        nodes.stop_all()
