"""The snapshot store conformance suite: every rule of the snapshot store protocol, as tests.

Subclass :class:`SnapshotStoreConformance` in a test module (named ``Test...``) and provide the
``snapshot_store`` fixture (and ``reopen`` for a durable store), as for
:class:`~persistence.testing.JournalConformance`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio

from persistence._errors import SnapshotStoreClosedError, SnapshotStoreError
from persistence.snapshot._protocol import (
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStore,
    StoredSnapshot,
)

ReopenStore = Callable[[], SnapshotStore]
LATEST = SnapshotSelectionCriteria.latest()
LONE_SURROGATE = "\udc80"
"""Not valid UTF-8 on its own: no store can keep text holding it."""
CLOSED_MESSAGE = r"\bclosed\b.*\bcreate a new instance\b"
"""What using a closed store says (as a regex): it is closed, and the fix."""


def meta(persistence_id: str, sequence_nr: int, timestamp: int = 0) -> SnapshotMetadata:
    return SnapshotMetadata(persistence_id, sequence_nr, timestamp)


async def save(
    store: SnapshotStore, persistence_id: str, sequence_nr: int, timestamp: int = 0
) -> SnapshotMetadata:
    """Save a snapshot whose manifest and payload name its id and number."""
    return await store.save(
        meta(persistence_id, sequence_nr, timestamp),
        f"State{sequence_nr}",
        f"{persistence_id}@{sequence_nr}".encode(),
    )


async def loaded_seq(
    store: SnapshotStore, persistence_id: str, criteria: SnapshotSelectionCriteria = LATEST
) -> int | None:
    """The sequence number of the snapshot ``load`` picks, or ``None``."""
    stored = await store.load(persistence_id, criteria)
    return None if stored is None else stored.metadata.sequence_nr


@asynccontextmanager
async def reopened(reopen: ReopenStore | None) -> AsyncIterator[SnapshotStore]:
    """A new instance over the same storage (the test's store must be closed first)."""
    if reopen is None:
        pytest.skip("the backend keeps nothing across instances (no reopen fixture)")
    store = reopen()
    try:
        yield store
    finally:
        await store.close()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SnapshotStoreConformance:
    """Tests every snapshot store must pass. Provide ``snapshot_store`` (and ``reopen``)."""

    @pytest_asyncio.fixture
    async def snapshot_store(self, *args: Any, **kwargs: Any) -> AsyncIterator[SnapshotStore]:
        """Override: yield a new, empty store and close it afterwards."""
        raise pytest.UsageError(
            f"{type(self).__name__} must provide a `snapshot_store` fixture yielding a store"
        )
        yield  # pragma: no cover

    @pytest.fixture
    def reopen(self, *args: Any, **kwargs: Any) -> ReopenStore | None:
        """Override for durable stores: a factory of new instances over the storage of
        ``snapshot_store``. ``None`` skips the durability tests."""
        return None

    async def test_load_of_an_unknown_id_returns_none(self, snapshot_store: SnapshotStore) -> None:
        assert await snapshot_store.load("nobody", LATEST) is None

    async def test_save_then_load_returns_the_snapshot(self, snapshot_store: SnapshotStore) -> None:
        stored = await snapshot_store.save(meta("a", 7, 1234), "State", b"\x00state\xff")
        assert stored == meta("a", 7, 1234)
        assert await snapshot_store.load("a", LATEST) == StoredSnapshot(
            meta("a", 7, 1234), "State", b"\x00state\xff"
        )

    async def test_empty_and_large_payloads_round_trip(self, snapshot_store: SnapshotStore) -> None:
        large = bytes(range(256)) * 8192
        await snapshot_store.save(meta("empty", 1, 5), "Empty", b"")
        await snapshot_store.save(meta("large", 1, 5), "Large", large)
        empty = await snapshot_store.load("empty", LATEST)
        assert empty is not None
        assert empty.payload == b""
        loaded = await snapshot_store.load("large", LATEST)
        assert loaded is not None
        assert loaded.payload == large

    async def test_save_stamps_the_current_time_when_the_metadata_has_none(
        self, snapshot_store: SnapshotStore
    ) -> None:
        before = _now_ms()
        stored = await save(snapshot_store, "a", 1)
        after = _now_ms()
        assert before <= stored.timestamp <= after
        loaded = await snapshot_store.load("a", LATEST)
        assert loaded is not None
        assert loaded.metadata == stored

    async def test_load_returns_the_youngest_snapshot(self, snapshot_store: SnapshotStore) -> None:
        for sequence_nr in (5, 20, 10):
            await save(snapshot_store, "a", sequence_nr, timestamp=100 - sequence_nr)
        assert await snapshot_store.load("a", LATEST) == StoredSnapshot(
            meta("a", 20, 80), "State20", b"a@20"
        )

    async def test_criteria_bound_the_sequence_nr_inclusively(
        self, snapshot_store: SnapshotStore
    ) -> None:
        for sequence_nr in (5, 10, 15):
            await save(snapshot_store, "a", sequence_nr)
        upto = SnapshotSelectionCriteria.latest().with_max_sequence_nr
        assert await loaded_seq(snapshot_store, "a", upto(10)) == 10
        assert await loaded_seq(snapshot_store, "a", upto(14)) == 10
        assert await loaded_seq(snapshot_store, "a", upto(4)) is None
        assert (
            await loaded_seq(snapshot_store, "a", SnapshotSelectionCriteria(min_sequence_nr=15))
            == 15
        )
        assert (
            await loaded_seq(snapshot_store, "a", SnapshotSelectionCriteria(min_sequence_nr=16))
            is None
        )
        between = SnapshotSelectionCriteria(max_sequence_nr=12, min_sequence_nr=6)
        assert await loaded_seq(snapshot_store, "a", between) == 10

    async def test_criteria_bound_the_timestamp_inclusively(
        self, snapshot_store: SnapshotStore
    ) -> None:
        await save(snapshot_store, "a", 1, timestamp=1000)
        await save(snapshot_store, "a", 2, timestamp=2000)
        await save(snapshot_store, "a", 3, timestamp=3000)
        until = SnapshotSelectionCriteria.latest().with_max_timestamp
        assert await loaded_seq(snapshot_store, "a", until(2000)) == 2
        assert await loaded_seq(snapshot_store, "a", until(2999)) == 2
        assert await loaded_seq(snapshot_store, "a", until(999)) is None
        assert (
            await loaded_seq(snapshot_store, "a", SnapshotSelectionCriteria(min_timestamp=3000))
            == 3
        )
        both = SnapshotSelectionCriteria(max_sequence_nr=3, max_timestamp=2500, min_timestamp=1001)
        assert await loaded_seq(snapshot_store, "a", both) == 2

    async def test_none_criteria_load_nothing(self, snapshot_store: SnapshotStore) -> None:
        await save(snapshot_store, "a", 1)
        assert await snapshot_store.load("a", SnapshotSelectionCriteria.none()) is None

    async def test_saving_at_the_same_sequence_nr_overwrites(
        self, snapshot_store: SnapshotStore
    ) -> None:
        await snapshot_store.save(meta("a", 3, 100), "Old", b"old")
        await snapshot_store.save(meta("a", 3, 200), "New", b"new")
        assert await snapshot_store.load("a", LATEST) == StoredSnapshot(
            meta("a", 3, 200), "New", b"new"
        )
        await snapshot_store.delete(meta("a", 3))
        assert await snapshot_store.load("a", LATEST) is None

    async def test_snapshots_are_kept_per_id(self, snapshot_store: SnapshotStore) -> None:
        await save(snapshot_store, "a", 5)
        await save(snapshot_store, "ab", 9)
        assert await loaded_seq(snapshot_store, "a") == 5
        assert await loaded_seq(snapshot_store, "ab") == 9
        assert await loaded_seq(snapshot_store, "b") is None

    async def test_delete_removes_only_that_snapshot(self, snapshot_store: SnapshotStore) -> None:
        for sequence_nr in (1, 2, 3):
            await save(snapshot_store, "a", sequence_nr)
        await save(snapshot_store, "b", 3)
        await snapshot_store.delete(meta("a", 3))
        assert await loaded_seq(snapshot_store, "a") == 2
        assert await loaded_seq(snapshot_store, "b") == 3
        await snapshot_store.delete(meta("a", 3))  # already gone: nothing happens
        await snapshot_store.delete(meta("nobody", 1))
        assert await loaded_seq(snapshot_store, "a") == 2

    async def test_delete_matching_removes_every_match_and_nothing_else(
        self, snapshot_store: SnapshotStore
    ) -> None:
        for sequence_nr in (1, 2, 3, 4):
            await save(snapshot_store, "a", sequence_nr, timestamp=1000 * sequence_nr)
        await save(snapshot_store, "b", 1, timestamp=1000)
        await snapshot_store.delete_matching(
            "a", SnapshotSelectionCriteria(max_sequence_nr=3, min_sequence_nr=2)
        )
        remaining = [
            await loaded_seq(snapshot_store, "a", SnapshotSelectionCriteria(max_sequence_nr=n))
            for n in (1, 2, 3, 4)
        ]
        assert remaining == [1, 1, 1, 4]
        await snapshot_store.delete_matching("a", SnapshotSelectionCriteria(max_timestamp=4000))
        assert await loaded_seq(snapshot_store, "a") is None
        assert await loaded_seq(snapshot_store, "b") == 1

    async def test_delete_matching_with_none_criteria_deletes_nothing(
        self, snapshot_store: SnapshotStore
    ) -> None:
        await save(snapshot_store, "a", 1, timestamp=5)
        await snapshot_store.delete_matching("a", SnapshotSelectionCriteria.none())
        assert await loaded_seq(snapshot_store, "a") == 1

    async def test_a_persistence_id_that_is_not_utf8_is_refused_with_a_clear_error(
        self, snapshot_store: SnapshotStore
    ) -> None:
        bad = f"bad{LONE_SURROGATE}"
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "save a snapshot": lambda: snapshot_store.save(meta(bad, 1), "State", b"s"),
            "load a snapshot": lambda: snapshot_store.load(bad, LATEST),
            "delete a snapshot": lambda: snapshot_store.delete(meta(bad, 1)),
            "delete snapshots": lambda: snapshot_store.delete_matching(bad, LATEST),
        }
        for operation, call in calls.items():
            with pytest.raises(SnapshotStoreError) as raised:
                await call()
            assert type(raised.value) is SnapshotStoreError
            assert str(raised.value).startswith(f"cannot {operation}, persistence_id={bad!r}: ")
        await save(snapshot_store, "a", 1)
        assert await loaded_seq(snapshot_store, "a") == 1

    async def test_a_manifest_that_is_not_utf8_is_refused_and_nothing_is_saved(
        self, snapshot_store: SnapshotStore
    ) -> None:
        bad = f"State{LONE_SURROGATE}"
        with pytest.raises(SnapshotStoreError) as raised:
            await snapshot_store.save(meta("a", 1, 5), bad, b"s")
        assert type(raised.value) is SnapshotStoreError
        assert str(raised.value).startswith("cannot save a snapshot, persistence_id='a'")
        assert repr(bad) in str(raised.value)
        assert await snapshot_store.load("a", LATEST) is None

    async def test_every_call_after_close_raises_snapshot_store_closed_error_saying_what_to_do(
        self, snapshot_store: SnapshotStore
    ) -> None:
        """Closing is final: the error says the store was closed and to create a new one."""
        await save(snapshot_store, "a", 1)
        await snapshot_store.close()
        with pytest.raises(SnapshotStoreClosedError, match=CLOSED_MESSAGE):
            await save(snapshot_store, "a", 2)
        with pytest.raises(SnapshotStoreClosedError, match=CLOSED_MESSAGE):
            await snapshot_store.load("a", LATEST)
        with pytest.raises(SnapshotStoreClosedError, match=CLOSED_MESSAGE):
            await snapshot_store.delete(meta("a", 1))
        with pytest.raises(SnapshotStoreClosedError, match=CLOSED_MESSAGE):
            await snapshot_store.delete_matching("a", LATEST)

    async def test_a_store_closed_before_first_use_stays_closed(
        self, snapshot_store: SnapshotStore
    ) -> None:
        """Nothing reopens a closed store, not even one that was never opened."""
        await snapshot_store.close()
        with pytest.raises(SnapshotStoreClosedError, match=CLOSED_MESSAGE):
            await snapshot_store.load("a", LATEST)
        with pytest.raises(SnapshotStoreClosedError, match=CLOSED_MESSAGE):
            await save(snapshot_store, "a", 1)

    async def test_closing_twice_is_harmless(self, snapshot_store: SnapshotStore) -> None:
        await save(snapshot_store, "a", 1)
        await snapshot_store.close()
        await snapshot_store.close()

    async def test_snapshots_survive_closing_and_reopening(
        self, snapshot_store: SnapshotStore, reopen: ReopenStore | None
    ) -> None:
        await save(snapshot_store, "a", 1, timestamp=10)
        await save(snapshot_store, "a", 2, timestamp=20)
        await save(snapshot_store, "b", 2, timestamp=20)
        await snapshot_store.delete(meta("b", 2))
        await snapshot_store.close()
        async with reopened(reopen) as again:
            assert await again.load("a", LATEST) == StoredSnapshot(
                meta("a", 2, 20), "State2", b"a@2"
            )
            assert await loaded_seq(again, "b") is None
            await again.save(meta("a", 2, 30), "Again", b"again")
        async with reopened(reopen) as third:
            assert await third.load("a", LATEST) == StoredSnapshot(
                meta("a", 2, 30), "Again", b"again"
            )
