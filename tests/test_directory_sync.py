"""The file journal and the file snapshot store sync every directory whose entries they change,
so that a power loss cannot lose a file they created, renamed or removed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from persistence.journal import AtomicWrite, FileJournal, PersistentRecord
from persistence.snapshot import FileSnapshotStore, SnapshotMetadata, SnapshotSelectionCriteria

Identity = tuple[int, int]


def identity(path: Path) -> Identity:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def synced_directories(monkeypatch: pytest.MonkeyPatch) -> list[Identity]:
    """Record the directories passed to ``os.fsync`` from now on, in order."""
    synced: list[Identity] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            synced.append((info.st_dev, info.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return synced


def single(persistence_id: str, seq: int) -> AtomicWrite:
    return AtomicWrite([PersistentRecord(persistence_id, seq, "E", b"x" * 100, "w", 0, ())])


async def test_a_new_journal_syncs_the_parent_of_its_directory_then_the_directory_per_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = synced_directories(monkeypatch)
    directory = tmp_path / "journal"
    journal = FileJournal(directory, segment_size=256)
    seq = 0
    while not (directory / "00000002.log").exists():
        seq += 1
        assert await journal.write([single("a", seq)]) == [None]
    await journal.close()
    assert synced == [identity(tmp_path), identity(directory), identity(directory)]


async def test_a_snapshot_store_syncs_the_directories_it_creates_and_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = synced_directories(monkeypatch)
    root = tmp_path / "snapshots"
    store = FileSnapshotStore(root)
    await store.save(SnapshotMetadata("a", 1), "S", b"state")
    assert synced == [identity(root), identity(tmp_path), identity(root / "a")]
    del synced[:]
    await store.delete_matching("a", SnapshotSelectionCriteria.latest())
    assert synced == [identity(root / "a")]
    await store.close()
