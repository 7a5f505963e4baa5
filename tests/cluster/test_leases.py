"""Shard leases: acquire by create (epoch = revision), renewal by compare-and-set with a TTL,
self-fencing before the lease can expire elsewhere, release by compare-and-set delete."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from actorsys import LoopClock
from actorsys.testing import ManualClock
from cluster._leases import Leases
from cluster._nats import Bucket, CasFailedError
from cluster._placement import ShardUnavailableError
from tests.cluster._support import eventually


class FakeStore:
    """An in-memory compare-and-set store; ``gate`` (when set) holds renewals until it is done."""

    def __init__(self) -> None:
        self.revisions: dict[str, int] = {}
        self.sequence = 0
        self.renewals: list[float] = []
        self.gate: asyncio.Future[None] | None = None
        self.clock: ManualClock | None = None

    async def create(self, key: str, value: bytes, *, ttl: int | None) -> int:
        if key in self.revisions:
            raise CasFailedError(key)
        self.sequence += 1
        self.revisions[key] = self.sequence
        return self.sequence

    async def renew(self, key: str, value: bytes, *, last: int, ttl: int | None) -> int:
        assert self.clock is not None
        self.renewals.append(self.clock.time())
        if self.gate is not None:
            await self.gate
        if self.revisions.get(key) != last:
            raise CasFailedError(key)
        self.sequence += 1
        self.revisions[key] = self.sequence
        return self.sequence

    async def delete(self, key: str, *, last: int) -> None:
        if self.revisions.get(key) != last:
            raise CasFailedError(key)
        del self.revisions[key]


@pytest.fixture
def store(clock: ManualClock) -> FakeStore:
    store = FakeStore()
    store.clock = clock
    return store


def leases(store: Any, clock: Any, node: str = "n1") -> Leases:
    return Leases(store, node, ttl=3, renew_interval=0.5, margin=1.0, clock=clock)


async def test_a_renewed_lease_is_kept_and_keeps_its_epoch(
    store: FakeStore, clock: ManualClock
) -> None:
    lost: list[str] = []
    mine = leases(store, clock)
    epoch = await mine.acquire("Client.7", lambda: lost.append("7"))
    assert epoch == 1
    await clock.advance(10.0)
    assert lost == []
    assert mine.held() == {"Client.7": 1}
    assert store.renewals == [0.5 * n for n in range(1, 21)]
    mine.stop()


async def test_a_lease_self_fences_ttl_minus_margin_after_the_last_successful_renewal_was_sent(
    store: FakeStore, clock: ManualClock
) -> None:
    lost: list[float] = []
    mine = leases(store, clock)
    await mine.acquire("Client.7", lambda: lost.append(clock.time()))
    await clock.advance(1.4)  # renewals sent at 0.5 and 1.0 succeeded
    store.gate = asyncio.get_running_loop().create_future()  # the one sent at 1.5 hangs
    await clock.advance(0.4)
    store.gate.set_result(None)  # ... and succeeds at 1.8: the deadline counts from 1.5
    store.gate = asyncio.get_running_loop().create_future()  # nothing succeeds any more
    await clock.advance(1.6)
    assert lost == []
    await clock.advance(0.2)
    assert lost == [3.5]
    assert mine.held() == {}


async def test_a_refused_renewal_loses_the_lease_at_once(
    store: FakeStore, clock: ManualClock
) -> None:
    lost: list[float] = []
    mine = leases(store, clock)
    await mine.acquire("Client.7", lambda: lost.append(clock.time()))
    store.revisions["Client.7"] = 99  # expired and taken by another node meanwhile
    await clock.advance(0.5)
    assert lost == [0.5]
    await clock.advance(5.0)
    assert lost == [0.5]
    assert store.renewals == [0.5]


async def test_a_released_lease_is_deleted_and_no_longer_renewed(
    store: FakeStore, clock: ManualClock
) -> None:
    lost: list[str] = []
    mine = leases(store, clock)
    await mine.acquire("Client.7", lambda: lost.append("7"))
    await clock.advance(0.6)
    await mine.release("Client.7")
    assert store.revisions == {}
    await clock.advance(10.0)
    assert (lost, store.renewals, mine.held()) == ([], [0.5], {})


async def test_a_lease_held_elsewhere_is_unavailable(store: FakeStore, clock: ManualClock) -> None:
    await leases(store, clock, "n1").acquire("Client.7", lambda: None)
    with pytest.raises(ShardUnavailableError) as raised:
        await leases(store, clock, "n2").acquire("Client.7", lambda: None)
    assert str(raised.value) == (
        "the lease 'Client.7' is held by another node; it is free once released or 3 s after its "
        "holder stopped renewing"
    )


async def real_leases(
    nats_url: str, cluster_name: str, node: str, marker_ttl: int = 1
) -> tuple[Leases, Any]:
    import nats

    client = await nats.connect(nats_url)
    bucket = await Bucket.open(client.jetstream(), f"{cluster_name}-leases", marker_ttl=marker_ttl)
    clock = LoopClock(asyncio.get_running_loop())
    return Leases(bucket, node, ttl=1, renew_interval=0.2, margin=0.5, clock=clock), client


async def test_on_nats_only_one_node_holds_a_lease_and_each_acquisition_has_a_higher_epoch(
    nats_url: str, cluster_name: str
) -> None:
    one, one_client = await real_leases(nats_url, cluster_name, "n1")
    two, two_client = await real_leases(nats_url, cluster_name, "n2")
    try:
        first = await one.acquire("Client.7", lambda: None)
        with pytest.raises(ShardUnavailableError):
            await two.acquire("Client.7", lambda: None)
        await one.release("Client.7")
        second = await two.acquire("Client.7", lambda: None)
        assert second > first
        await two.release("Client.7")
        third = await one.acquire("Client.7", lambda: None)
        assert third > second
        await one.release("Client.7")
    finally:
        await one_client.close()
        await two_client.close()


async def test_on_nats_renewals_keep_the_ttl_and_a_frozen_holder_loses_to_the_next_node(
    nats_url: str, cluster_name: str
) -> None:
    # The server marks an expired key with a marker that lives 60 s here: the next node takes
    # the lease over that marker, without waiting for it to go.
    one, one_client = await real_leases(nats_url, cluster_name, "n1", marker_ttl=60)
    two, two_client = await real_leases(nats_url, cluster_name, "n2", marker_ttl=60)
    lost: list[str] = []
    try:
        first = await one.acquire("Client.7", lambda: lost.append("n1"))
        await asyncio.sleep(1.5)  # renewed several times past the TTL: still held
        with pytest.raises(ShardUnavailableError):
            await two.acquire("Client.7", lambda: None)
        assert lost == []
        entry = await one._store.kv.get("Client.7")  # type: ignore[attr-defined]
        assert json.loads(entry.value) == {"node": "n1", "epoch": first}
        [lease] = one._held.values()
        assert lease.renewal is not None
        lease.renewal.cancel()  # frozen: no more renewals (the renewals kept the TTL)
        await eventually(lambda: lost == ["n1"])  # self-fenced first...
        deadline = asyncio.get_running_loop().time() + 15.0
        while True:  # ... then the key expires on the server and the next node takes it
            assert asyncio.get_running_loop().time() < deadline, "the lease was never taken"
            try:
                taken = await two.acquire("Client.7", lambda: None)
                break
            except ShardUnavailableError:
                await asyncio.sleep(0.05)
        assert taken > first
        with pytest.raises(CasFailedError):  # the old holder's stale renewal is refused
            await one._store.renew("Client.7", b"{}", last=lease.revision, ttl=1)
        two.stop()
    finally:
        await one_client.close()
        await two_client.close()
