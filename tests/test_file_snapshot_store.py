"""FileSnapshotStore: one checksummed file per snapshot, atomic replace, damaged files skipped."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from persistence import SnapshotStoreClosedError, SnapshotStoreError
from persistence.snapshot import (
    FileSnapshotStore,
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    SnapshotStore,
    StoredSnapshot,
)
from persistence.snapshot._file import escape_persistence_id

LATEST = SnapshotSelectionCriteria.latest()


def forget(objects: list[Any]) -> None:
    """Drop the last references and collect, so ``__del__`` runs now."""
    objects.clear()
    gc.collect()


async def test_the_constructor_touches_nothing_until_first_use(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path / "snapshots")
    assert isinstance(store, SnapshotStore)
    assert not (tmp_path / "snapshots").exists()
    assert await store.load("a", LATEST) is None
    assert not (tmp_path / "snapshots").exists()
    await store.close()


async def test_a_saved_snapshot_loads_back_after_reopening(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    saved = await store.save(SnapshotMetadata("acc-1", 7), "Account", b"\x00state\xff")
    assert saved.persistence_id == "acc-1"
    assert saved.sequence_nr == 7
    assert saved.timestamp > 1_600_000_000_000  # milliseconds since the epoch, set on save
    await store.close()

    reopened = FileSnapshotStore(tmp_path)
    assert await reopened.load("acc-1", LATEST) == StoredSnapshot(
        saved, "Account", b"\x00state\xff"
    )
    assert await reopened.load("acc-2", LATEST) is None
    await reopened.close()


async def test_a_timestamp_given_in_the_metadata_is_kept(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    saved = await store.save(SnapshotMetadata("a", 1, 1234), "S", b"x")
    assert saved == SnapshotMetadata("a", 1, 1234)
    loaded = await store.load("a", LATEST)
    assert loaded is not None
    assert loaded.metadata.timestamp == 1234
    await store.close()


async def test_load_picks_the_youngest_snapshot_within_the_criteria(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    for seq, timestamp in [(5, 100), (10, 200), (15, 300)]:
        await store.save(SnapshotMetadata("a", seq, timestamp), "S", str(seq).encode())

    async def loaded_seq(criteria: SnapshotSelectionCriteria) -> int | None:
        snapshot = await store.load("a", criteria)
        return None if snapshot is None else snapshot.metadata.sequence_nr

    assert await loaded_seq(LATEST) == 15
    assert await loaded_seq(LATEST.with_max_sequence_nr(14)) == 10
    assert await loaded_seq(LATEST.with_max_sequence_nr(10)) == 10
    assert await loaded_seq(LATEST.with_max_timestamp(250)) == 10
    assert await loaded_seq(LATEST.with_max_timestamp(99)) is None
    assert await loaded_seq(SnapshotSelectionCriteria(min_sequence_nr=11)) == 15
    assert await loaded_seq(SnapshotSelectionCriteria(min_timestamp=301)) is None
    assert await loaded_seq(SnapshotSelectionCriteria.none()) is None
    await store.close()


async def test_saving_at_the_same_sequence_nr_replaces_the_snapshot(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    await store.save(SnapshotMetadata("a", 3, 10), "S", b"old")
    await store.save(SnapshotMetadata("a", 3, 20), "S", b"new")
    assert await store.load("a", LATEST) == StoredSnapshot(
        SnapshotMetadata("a", 3, 20), "S", b"new"
    )
    directory = tmp_path / escape_persistence_id("a")
    assert sorted(os.listdir(directory)) == ["3.snap"]  # no temporary files left behind
    await store.close()


@pytest.mark.parametrize("damage", ["flip_body", "flip_header", "truncate", "empty"])
async def test_a_damaged_snapshot_is_passed_over_for_the_next_older_one(
    tmp_path: Path, damage: str
) -> None:
    store = FileSnapshotStore(tmp_path)
    await store.save(SnapshotMetadata("a", 5, 100), "S", b"five")
    await store.save(SnapshotMetadata("a", 9, 200), "S", b"nine" * 10)
    path = tmp_path / "a" / "9.snap"
    data = bytearray(path.read_bytes())
    if damage == "flip_body":
        data[-3] ^= 0x10
    elif damage == "flip_header":
        data[10] ^= 0x10
    elif damage == "truncate":
        del data[-5:]
    else:
        data.clear()
    path.write_bytes(bytes(data))

    with capture_logs() as logs:
        loaded = await store.load("a", LATEST)
    assert loaded == StoredSnapshot(SnapshotMetadata("a", 5, 100), "S", b"five")
    [skip] = logs
    assert skip["event"] == "snapshot_unreadable_skipped"
    assert skip["log_level"] == "warning"
    assert (skip["path"], skip["persistence_id"], skip["sequence_nr"]) == (str(path), "a", 9)
    await store.close()


async def test_a_file_holding_another_id_is_never_returned(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    await store.save(SnapshotMetadata("b", 1, 1), "S", b"b's state")
    os.makedirs(tmp_path / "a")
    os.rename(tmp_path / "b" / "1.snap", tmp_path / "a" / "1.snap")
    with capture_logs() as logs:
        assert await store.load("a", LATEST) is None
    assert logs[0]["reason"] == "file holds persistence_id='b', sequence_nr=1 instead"
    await store.close()


async def test_delete_removes_the_snapshot_at_that_sequence_nr(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    await store.save(SnapshotMetadata("a", 1, 10), "S", b"1")
    await store.save(SnapshotMetadata("a", 2, 20), "S", b"2")
    await store.delete(SnapshotMetadata("a", 2))
    await store.delete(SnapshotMetadata("a", 99))  # nothing there: fine
    loaded = await store.load("a", LATEST)
    assert loaded is not None
    assert loaded.metadata.sequence_nr == 1
    await store.close()


async def test_delete_matching_removes_what_the_criteria_select(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    for seq in range(1, 7):
        await store.save(SnapshotMetadata("a", seq, seq * 100), "S", b"s")
    await store.save(SnapshotMetadata("b", 1, 100), "S", b"s")
    await store.delete_matching("a", LATEST.with_max_sequence_nr(4).with_max_timestamp(300))
    assert sorted(os.listdir(tmp_path / "a")) == ["4.snap", "5.snap", "6.snap"]
    await store.delete_matching("a", LATEST)
    assert await store.load("a", LATEST) is None
    assert await store.load("b", LATEST) is not None
    await store.close()


@pytest.mark.parametrize(
    ("persistence_id", "directory"),
    [
        ("acc-1", "acc-1"),
        ("Acc/1", "%41cc%2F1"),
        ("..", "%2E%2E"),
        ("ä b", "%C3%A4%20b"),
    ],
)
def test_persistence_ids_are_escaped_into_safe_directory_names(
    persistence_id: str, directory: str
) -> None:
    assert escape_persistence_id(persistence_id) == directory


async def test_awkward_and_very_long_ids_keep_their_snapshots_apart(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    ids = ["a", "A", "a/b", "a%2Fb", "x" * 300, "x" * 299 + "y", "../escape"]
    for n, persistence_id in enumerate(ids):
        await store.save(SnapshotMetadata(persistence_id, 1, 1), "S", str(n).encode())
    for n, persistence_id in enumerate(ids):
        loaded = await store.load(persistence_id, LATEST)
        assert loaded is not None
        assert loaded.payload == str(n).encode()
    assert all(len(name) <= 200 for name in os.listdir(tmp_path))
    assert not (tmp_path.parent / "escape").exists()
    await store.close()


async def test_using_a_closed_store_raises_snapshot_store_closed_error(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    await store.close()
    with pytest.raises(SnapshotStoreClosedError) as raised:
        await store.load("a", LATEST)
    assert str(raised.value) == (
        f"cannot load a snapshot: the file snapshot store at {str(tmp_path)!r} is closed; "
        "create a new instance to use it again"
    )
    with pytest.raises(SnapshotStoreClosedError, match="cannot save a snapshot"):
        await store.save(SnapshotMetadata("a", 1), "S", b"")


async def test_a_failing_file_system_surfaces_as_snapshot_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    store = FileSnapshotStore(blocker)
    with pytest.raises(SnapshotStoreError, match="cannot save a snapshot, persistence_id='a'"):
        await store.save(SnapshotMetadata("a", 1), "S", b"")
    await store.close()


async def test_an_unclosed_used_store_warns_with_resource_warning(tmp_path: Path) -> None:
    stores = [FileSnapshotStore(tmp_path)]
    await stores[0].load("a", LATEST)
    with pytest.warns(ResourceWarning, match="unclosed <FileSnapshotStore"):
        forget(stores)
