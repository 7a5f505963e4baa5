"""A node frozen (SIGSTOP) past its lease TTL, then woken (SIGCONT): its shards were taken over,
its stale renewal is refused so it stops its entities, and the journal's epoch fence refused
every write its stale incarnation tried after the new owner started."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from cluster import default_shard_id
from persistence.journal import AtomicWrite, PersistentRecord, PostgresJournal
from tests.cluster._node_child import Appended, persistence_id_of, serializer
from tests.cluster._procs import (
    NodeError,
    Nodes,
    incarnations,
    journal_events,
    one_id_per_shard,
    overlaps,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def test_a_frozen_owner_woken_after_its_lease_expired_never_writes_after_the_new_owner(
    nodes: Nodes,
) -> None:
    victim, *_ = nodes.start("n1", "n2", "n3")
    driver = nodes.driver()
    ids = one_id_per_shard()
    homes = {e: driver.request("ask", entity=e, value=1)["node"] for e in ids}
    frozen = [e for e in ids if homes[e] == victim.name]
    assert frozen, "n1 hosts no shard"
    for entity_id in frozen:
        driver.request("ask", entity=entity_id, value=2)

    # a write each frozen entity will try as soon as it wakes (its timer is due first)
    for entity_id in frozen:
        driver.request("append_later", entity=entity_id, value=6, delay=0.3)
    victim.signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    # commands that reach the frozen node's socket and wait there until it wakes up
    for entity_id in frozen:
        driver.request("tell", entity=entity_id, value=3)
    # the others take the shards over once the lease expired; commands go there
    for entity_id in frozen:
        reply = _ask_until_answered(nodes, entity_id, value=4)
        assert reply["node"] != victim.name
    woken_at = time.monotonic()
    victim.signal(signal.SIGCONT)

    # the woken node stops its stale incarnations (self-fencing), or the fence stops them
    stale = [i for i in incarnations(nodes.log.snapshot()) if i.node == victim.name]
    for incarnation in stale:
        nodes.log.wait_for(
            lambda e, key=incarnation.incarnation: (
                e["event"] == "stopped" and e["incarnation"] == key
            ),
            30,
            f"the stale incarnation of {incarnation.entity} on n1 to stop",
        )
    # afterwards, everything lands on the new owners, in order
    for entity_id in frozen:
        _ask_until_answered(nodes, entity_id, value=5)

    stored = journal_events(nodes.postgres_dsn, nodes.schema, frozen)
    stale_keys = {i.incarnation for i in stale}
    for entity_id, events in stored.items():
        first_new = next(
            seq for seq, event in events if event.incarnation not in stale_keys and seq > 2
        )
        late = [
            (seq, event.value)
            for seq, event in events
            if event.incarnation in stale_keys and seq > first_new
        ]
        assert late == [], f"{entity_id}: the stale owner wrote after the new one: {late}"
        values = [event.value for _, event in events]
        assert values[:2] == [1, 2]
        assert 5 in values
        # what reached the frozen node (the tell of 3, asks of 4 that timed out there) is
        # refused by the fence or dropped with the stale incarnation, or routed on to the new
        # owner after the wake-up: late, but never stored by the stale owner
        assert set(values) <= {1, 2, 3, 4, 5, 6}
        assert values.count(3) <= 1
    # its renewals stopped before the lease could expire elsewhere: it fenced itself
    lost = victim.stderr.read_text()
    for entity_id in frozen:
        shard = default_shard_id(entity_id, 30)
        assert f"lease_lost kind='shard' node='n1' key='Ledger.{shard}'" in lost, lost[-3000:]
    # one entity live twice only while its old node was frozen: the stale incarnation started
    # before the freeze and stopped after the wake-up, nothing else overlaps
    registry = incarnations(nodes.log.snapshot())
    pairs = overlaps(registry, lambda i: i.stopped)
    for earlier, later in pairs:
        assert earlier.node == victim.name
        assert earlier.started < frozen_at
        assert later.started > frozen_at
        assert earlier.stopped is not None
        assert earlier.stopped > woken_at


def _ask_until_answered(nodes: Nodes, entity_id: str, value: int) -> dict[str, object]:
    """Ask (2 s timeout) until an answer comes; the sender keeps its order: one command at a
    time, the same value again only if the last ask failed."""
    driver = nodes.nodes["driver"]
    deadline = time.monotonic() + 60
    while True:
        try:
            reply: dict[str, object] = driver.request(
                "ask", entity=entity_id, value=value, timeout=2.0, wait=10
            )
        except Exception:
            if time.monotonic() > deadline:
                raise
            continue
        return reply


async def _write_as_newer_owner(
    dsn: str, schema: str, entity_id: str, seq: int, epoch: int
) -> None:
    manifest, payload = serializer.encode(Appended(99, "elsewhere", "newer", seq))
    record = PersistentRecord(persistence_id_of(entity_id), seq, manifest, payload, "newer")
    journal = PostgresJournal(dsn, schema=schema)
    try:
        [error] = await journal.write([AtomicWrite([record], owner_epoch=epoch)])
    finally:
        await journal.close()
    assert error is None, error


def test_a_write_below_the_epoch_the_journal_has_seen_is_refused_and_stops_the_incarnation(
    nodes: Nodes,
) -> None:
    nodes.start("n1")
    driver = nodes.driver()
    assert driver.request("ask", entity="e1", value=1)["node"] == "n1"
    [started] = nodes.events("started", entity="e1")
    # a newer owner (the next acquisition of the shard: a higher epoch) wrote meanwhile
    asyncio.run(
        _write_as_newer_owner(
            nodes.postgres_dsn, nodes.schema, "e1", seq=2, epoch=started["epoch"] + 1
        )
    )
    with pytest.raises(NodeError):
        driver.request("ask", entity="e1", value=2, timeout=2.0)
    [fenced] = nodes.events("fenced", entity="e1")
    assert fenced["incarnation"] == started["incarnation"]
    assert fenced["error"].startswith(
        f"write refused, persistence_id='ledger-e1', owner_epoch={started['epoch']}: a newer "
        "owner exists"
    )
    nodes.log.wait_for(
        lambda e: e["event"] == "stopped" and e["incarnation"] == started["incarnation"],
        10,
        "the fenced incarnation to stop",
    )
    stored = journal_events(nodes.postgres_dsn, nodes.schema, ["e1"])["e1"]
    assert [(seq, event.value, event.node) for seq, event in stored] == [
        (1, 1, "n1"),
        (2, 99, "elsewhere"),
    ]
