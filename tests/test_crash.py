"""Crash safety: a child process killed with SIGKILL mid-write, torn tails, flipped bytes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import msgpack
import pytest
from structlog.testing import capture_logs

from persistence import JournalCorruptedError
from persistence.journal import AtomicWrite, FileJournal, Journal, PersistentRecord, ReadJournal
from tests._crash_child import open_journal, payload

ROOT = Path(__file__).resolve().parent.parent

BACKENDS = ["file-always", "file-batch", "file-never", "sqlite"]


def run_child_until_killed(
    backend: str, path: Path, seed: int, kill_after: int, acked: dict[str, int]
) -> None:
    """Start a writing child, SIGKILL it after ``kill_after`` acknowledgements, and record
    every acknowledgement it printed (also those printed while the kill was on its way)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests._crash_child", backend, str(path), "6", str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, child.kill)
    watchdog.start()
    seen = 0
    try:
        assert child.stdout is not None
        for line in child.stdout:
            _, persistence_id, _, highest = line.split()
            acked[persistence_id] = max(acked.get(persistence_id, 0), int(highest))
            seen += 1
            if seen == kill_after:
                os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stderr is not None
        errors = child.stderr.read()
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL, f"child ended on its own: {errors}"
    assert seen >= kill_after


async def check_recovered(backend: str, path: Path, acked: dict[str, int]) -> None:
    """Every acknowledged event is replayed intact, in order, without gaps or half writes."""
    journal: Any = open_journal(backend, str(path))
    try:
        tagged = 0
        persistence_ids = await journal.persistence_ids()
        assert set(acked) <= set(persistence_ids)
        for persistence_id in persistence_ids:
            records: list[PersistentRecord] = [
                record async for page in journal.replay(persistence_id) for record in page
            ]
            last = len(records)
            assert [record.sequence_nr for record in records] == list(range(1, last + 1))
            assert last >= acked.get(persistence_id, 0)
            assert await journal.highest_sequence_nr(persistence_id) == last
            for record in records:
                lowest, highest = msgpack.unpackb(record.payload)["write"]
                assert record.payload == payload(
                    persistence_id, record.sequence_nr, lowest, highest
                )
                assert highest <= last, f"half of atomic write {lowest}..{highest} was stored"
                assert record.manifest == "CrashEvent"
                assert record.writer_id == "crash-child"
                assert record.timestamp == record.sequence_nr
                assert record.tags == (("crash",) if record.sequence_nr % 3 == 0 else ())
            tagged += last // 3
        if isinstance(journal, ReadJournal):
            orderings = [r.ordering async for page in journal.events_by_tag("crash") for r in page]
            assert len(orderings) == tagged
            assert orderings == sorted(set(orderings))
    finally:
        await journal.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_acknowledged_writes_survive_sigkill_intact_in_order_and_whole(
    tmp_path: Path, backend: str
) -> None:
    path = tmp_path / ("journal.db" if backend == "sqlite" else "journal")
    rng = random.Random(backend)
    acked: dict[str, int] = {}
    for round_nr in range(5):
        run_child_until_killed(backend, path, round_nr, rng.randint(30, 600), acked)
        asyncio.run(check_recovered(backend, path, acked))


# -- torn tails and corruption of the file journal --------------------------------------------


def record(persistence_id: str, seq: int) -> PersistentRecord:
    return PersistentRecord(persistence_id, seq, "Counted", msgpack.packb(seq), "w", seq)


async def write_log(directory: Path, writes: list[list[int]], **options: Any) -> list[int]:
    """Write one atomic write per list of numbers (id ``a``); the file offset of each record."""
    journal = FileJournal(directory, **options)
    segment = directory / "00000001.log"
    offsets = []
    for numbers in writes:
        offsets.append(segment.stat().st_size if segment.exists() else 8)
        assert await journal.write([AtomicWrite([record("a", n) for n in numbers])]) == [None]
    await journal.close()
    return offsets


async def replay_numbers(journal: Journal, persistence_id: str = "a") -> list[int]:
    return [r.sequence_nr async for page in journal.replay(persistence_id) for r in page]


@pytest.mark.parametrize(
    "garbage", [b"\x00" * 7, b"\x00" * 40, bytes(range(1, 200)), b"\xff" * 12 + b"tail"]
)
async def test_garbage_after_the_last_record_is_truncated_on_open(
    tmp_path: Path, garbage: bytes
) -> None:
    await write_log(tmp_path, [[1, 2], [3]])
    segment = tmp_path / "00000001.log"
    good_size = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(garbage)

    journal = FileJournal(tmp_path)
    with capture_logs() as logs:
        assert await replay_numbers(journal) == [1, 2, 3]
    assert segment.stat().st_size == good_size
    [warning] = [entry for entry in logs if entry["event"] == "journal_torn_tail_truncated"]
    assert warning["log_level"] == "warning"
    assert warning["path"] == str(segment)
    assert warning["offset"] == good_size
    assert warning["dropped_bytes"] == len(garbage)
    assert await journal.write([AtomicWrite([record("a", 4)])]) == [None]
    await journal.close()

    reopened = FileJournal(tmp_path)
    assert await replay_numbers(reopened) == [1, 2, 3, 4]
    await reopened.close()


def test_every_truncation_of_the_log_recovers_exactly_the_whole_atomic_writes(
    tmp_path: Path,
) -> None:
    """A crash can cut the file anywhere: what survives is each atomic write whole or not at
    all, and appending after recovery works."""
    pristine = tmp_path / "pristine"
    offsets = asyncio.run(write_log(pristine, [[1, 2, 3], [4], [5, 6]]))
    data = (pristine / "00000001.log").read_bytes()
    ends = [*offsets[1:], len(data)]
    expected_by_end: dict[int, list[int]] = {0: [], 8: []} | dict(
        zip(ends, [[1, 2, 3], [1, 2, 3, 4], list(range(1, 7))], strict=True)
    )

    async def recover(directory: Path, cut: int) -> None:
        journal = FileJournal(directory)
        complete = max(end for end in expected_by_end if end <= cut)
        numbers = await replay_numbers(journal)
        assert numbers == expected_by_end[complete], f"cut at {cut}"
        next_nr = (numbers[-1] if numbers else 0) + 1
        assert await journal.write([AtomicWrite([record("a", next_nr)])]) == [None]
        await journal.close()

    for cut in range(len(data) + 1):
        directory = tmp_path / f"cut-{cut}"
        directory.mkdir()
        (directory / "00000001.log").write_bytes(data[:cut])
        with capture_logs():
            asyncio.run(recover(directory, cut))


async def test_a_flipped_byte_inside_the_final_record_drops_that_record(tmp_path: Path) -> None:
    offsets = await write_log(tmp_path, [[1], [2, 3]])
    segment = tmp_path / "00000001.log"
    data = bytearray(segment.read_bytes())
    data[offsets[1] + 20] ^= 0x01
    segment.write_bytes(bytes(data))
    journal = FileJournal(tmp_path)
    with capture_logs() as logs:
        assert await replay_numbers(journal) == [1]
    assert [entry["reason"] for entry in logs] == ["record body checksum mismatch"]
    await journal.close()


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        (20, "record body checksum mismatch"),
        (0, "record header checksum mismatch"),
        (5, "record header checksum mismatch"),
    ],
)
async def test_a_flipped_byte_before_valid_records_raises_naming_file_and_offset(
    tmp_path: Path, where: int, reason: str
) -> None:
    offsets = await write_log(tmp_path, [[1], [2, 3], [4]])
    segment = tmp_path / "00000001.log"
    data = bytearray(segment.read_bytes())
    data[offsets[1] + where] ^= 0x40
    segment.write_bytes(bytes(data))

    journal = FileJournal(tmp_path)
    with pytest.raises(JournalCorruptedError) as raised:
        await journal.highest_sequence_nr("a")
    error = raised.value
    assert (error.path, error.offset) == (str(segment), offsets[1])
    assert error.reason == f"{reason}, followed by a valid record at offset {offsets[2]}"
    assert str(error) == (
        f"journal corrupted in {str(segment)!r} at offset {offsets[1]}: {error.reason}"
    )
    assert segment.read_bytes() == bytes(data)  # nothing repaired behind the user's back
    with pytest.raises(JournalCorruptedError):  # and it stays refused
        await journal.highest_sequence_nr("a")
    await journal.close()


async def test_a_damaged_tail_of_an_earlier_segment_is_corruption_not_a_torn_write(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path, segment_size=256)
    for seq in range(1, 30):
        await journal.write([AtomicWrite([record("a", seq)])])
    await journal.close()
    first = tmp_path / "00000001.log"
    size = first.stat().st_size
    with first.open("r+b") as file:
        file.truncate(size - 3)

    reopened = FileJournal(tmp_path, segment_size=256)
    with pytest.raises(JournalCorruptedError) as raised:
        await reopened.highest_ordering()
    assert raised.value.path == str(first)
    assert raised.value.reason == "incomplete record body in a sealed segment"
    await reopened.close()


def segments(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".log")]


async def write_segments(directory: Path, count: int) -> None:
    """Write events of ``a`` until the journal has ``count`` segment files."""
    journal = FileJournal(directory, segment_size=256)
    seq = 0
    while len(segments(directory)) < count:
        seq += 1
        await journal.write([AtomicWrite([record("a", seq)])])
    await journal.close()
    assert len(segments(directory)) == count


@pytest.mark.parametrize(
    ("missing", "following"), [("00000001.log", "00000002.log"), ("00000002.log", "00000003.log")]
)
async def test_a_missing_segment_is_corruption_naming_it_on_replay(
    tmp_path: Path, missing: str, following: str
) -> None:
    await write_segments(tmp_path, 3)
    (tmp_path / missing).unlink()
    before = sorted(os.listdir(tmp_path))
    for read_only in (False, True):
        journal = FileJournal(tmp_path, segment_size=256, read_only=read_only)
        with pytest.raises(JournalCorruptedError) as raised:
            await replay_numbers(journal)
        assert (raised.value.path, raised.value.offset) == (str(tmp_path / missing), 0)
        assert raised.value.reason == (
            f"segment file is missing, but {following} exists: segments are numbered from 1 "
            "without gaps and never removed; restore it from a backup"
        )
        await journal.close()
    assert sorted(os.listdir(tmp_path)) == before  # nothing created in its place


async def test_deleting_events_keeps_every_segment_so_reopening_finds_no_gap(
    tmp_path: Path,
) -> None:
    await write_segments(tmp_path, 3)
    journal = FileJournal(tmp_path, segment_size=256)
    highest = await journal.highest_sequence_nr("a")
    await journal.delete_to("a", highest - 1)
    await journal.close()
    assert (tmp_path / "00000001.log").exists()
    reopened = FileJournal(tmp_path, segment_size=256)
    assert await replay_numbers(reopened) == [highest]
    await reopened.close()


async def test_a_torn_segment_header_is_truncated_to_a_fresh_header_with_a_warning(
    tmp_path: Path,
) -> None:
    await write_segments(tmp_path, 2)
    last = tmp_path / "00000002.log"
    last.write_bytes(b"AJN")  # the crash hit while the segment was being created
    journal = FileJournal(tmp_path, segment_size=256)
    with capture_logs() as logs:
        numbers = await replay_numbers(journal)
    [warning] = logs
    assert warning == {
        "event": "journal_torn_tail_truncated",
        "log_level": "warning",
        "path": str(last),
        "offset": 0,
        "dropped_bytes": 3,
        "reason": "incomplete segment header",
    }
    assert last.read_bytes() == b"AJNL\x01\x00\x00\x00"
    assert await journal.write([AtomicWrite([record("a", numbers[-1] + 1)])]) == [None]
    await journal.close()


async def test_damage_after_opening_is_reported_on_replay_not_returned(tmp_path: Path) -> None:
    offsets = await write_log(tmp_path, [[1], [2], [3]])
    journal = FileJournal(tmp_path)
    assert await replay_numbers(journal) == [1, 2, 3]
    segment = tmp_path / "00000001.log"
    data = bytearray(segment.read_bytes())
    data[offsets[1] + 25] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptedError) as raised:
        await replay_numbers(journal)
    assert (raised.value.path, raised.value.offset, raised.value.reason) == (
        str(segment),
        offsets[1],
        "record checksum mismatch on read",
    )
    await journal.close()
