"""Losing a node under load, by SIGKILL (failover) or SIGTERM (graceful hand-off): what the
sender was told is what the journal holds, and the node's shards are served again elsewhere."""

from __future__ import annotations

import signal
import time

import pytest

from tests.cluster._procs import (
    Nodes,
    check_journal_against_acks,
    incarnations,
    journal_events,
    load_outcome,
    one_id_per_shard,
    overlaps,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

ENTITIES = one_id_per_shard()[:20]
COMMANDS = 60


def _start_load(nodes: Nodes, ask_timeout: float) -> None:
    nodes.start("n1", "n2", "n3")
    driver = nodes.driver()
    driver.send("load", entities=ENTITIES, count=COMMANDS, timeout=ask_timeout, pause=0.05)
    nodes.log.wait_for(
        lambda e: e["event"] == "acked" and e["value"] == 5, 60, "the load to get going"
    )


def _served_elsewhere(nodes: Nodes, victim: str) -> None:
    """Every entity answers, and none from ``victim``."""
    driver = nodes.nodes["driver"]
    for entity_id in ENTITIES:
        reply = driver.request("get", entity=entity_id, wait=30, timeout=10)
        assert reply["node"] != victim, entity_id


def test_after_a_sigkill_every_answered_command_is_stored_once_in_order(nodes: Nodes) -> None:
    _start_load(nodes, ask_timeout=2.0)
    killed_at = time.monotonic()
    nodes.nodes["n2"].kill()
    nodes.log.wait_for(lambda e: e["event"] == "load_done", 90, "the end of the load")
    outcome = load_outcome(nodes.log, "driver", ENTITIES)
    stored = journal_events(nodes.postgres_dsn, nodes.schema, ENTITIES)
    check_journal_against_acks(stored, outcome)
    acked_by_n2 = [e for e in ENTITIES if "n2" in outcome.acked_by[e]]
    assert acked_by_n2, "n2 hosted none of the loaded entities"
    # the killed node's shards were served again: later commands were answered elsewhere
    for entity_id in acked_by_n2:
        assert outcome.acked_by[entity_id][-1] != "n2", entity_id
        assert outcome.acked[entity_id][-1] == COMMANDS, entity_id
    _served_elsewhere(nodes, "n2")
    # no entity was live twice: the killed node's incarnations ended with it
    registry = incarnations(nodes.log.snapshot())
    ended = {i.incarnation: killed_at for i in registry if i.node == "n2" and i.stopped is None}
    assert overlaps(registry, lambda i: i.stopped or ended.get(i.incarnation)) == []


def test_a_sigterm_hands_the_shards_off_without_losing_a_command(nodes: Nodes) -> None:
    _start_load(nodes, ask_timeout=10.0)
    nodes.nodes["n2"].signal(signal.SIGTERM)
    assert nodes.nodes["n2"].process.wait(timeout=30) == 0
    nodes.log.wait_for(lambda e: e["event"] == "load_done", 90, "the end of the load")
    outcome = load_outcome(nodes.log, "driver", ENTITIES)
    assert outcome.failed == {entity_id: [] for entity_id in ENTITIES}
    stored = journal_events(nodes.postgres_dsn, nodes.schema, ENTITIES)
    for entity_id in ENTITIES:
        assert [event.value for _, event in stored[entity_id]] == list(range(1, COMMANDS + 1))
    moved = [e for e in ENTITIES if "n2" in outcome.acked_by[e]]
    assert moved, "n2 hosted none of the loaded entities"
    assert all(outcome.acked_by[e][-1] != "n2" for e in moved)
    # a hand-off stops the old incarnation before the new one starts
    registry = incarnations(nodes.log.snapshot())
    assert overlaps(registry, lambda i: i.stopped) == []
    _served_elsewhere(nodes, "n2")
