"""FileJournal: storage, reopening, the index, deletion, group commit and the on-disk format."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import gc
import os
import struct
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import persistence.journal._file as file_module
import persistence.journal._file_writer as writer_module
from persistence import (
    JournalClosedError,
    JournalCorruptedError,
    JournalError,
    SequenceNrConflictError,
)
from persistence.journal import (
    AtomicWrite,
    FileJournal,
    Journal,
    PersistentRecord,
    ReadJournal,
    TaggedRecord,
)
from persistence.journal._file_index import JournalIndex
from persistence.journal._memory import InMemoryJournal


def event(
    persistence_id: str, seq: int, *, tags: tuple[str, ...] = (), payload: bytes | None = None
) -> PersistentRecord:
    body = payload if payload is not None else msgpack.packb({"n": seq})
    return PersistentRecord(persistence_id, seq, "Counted", body, "writer-1", 1_700_000 + seq, tags)


def single(persistence_id: str, seq: int, *, tags: tuple[str, ...] = ()) -> AtomicWrite:
    return AtomicWrite([event(persistence_id, seq, tags=tags)])


def forget(objects: list[Any]) -> None:
    """Drop the last references and collect, so ``__del__`` runs now."""
    objects.clear()
    gc.collect()


def atomic(persistence_id: str, first: int, last: int) -> AtomicWrite:
    return AtomicWrite([event(persistence_id, seq) for seq in range(first, last + 1)])


async def replayed(journal: FileJournal, persistence_id: str, *args: int) -> list[PersistentRecord]:
    return [record async for page in journal.replay(persistence_id, *args) for record in page]


async def test_the_constructor_touches_nothing_until_first_use(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = FileJournal(directory)
    assert not directory.exists()
    assert await journal.highest_sequence_nr("nobody") == 0
    assert sorted(os.listdir(directory)) == ["00000001.log", "LOCK"]
    await journal.close()


async def test_it_implements_both_journal_protocols(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    assert isinstance(journal, Journal)
    assert isinstance(journal, ReadJournal)


async def test_stored_events_come_back_intact_after_reopening(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    written = [
        event("acc-1", 1, tags=("deposits", "large")),
        event("acc-1", 2, payload=b"\x00\xffraw bytes"),
    ]
    assert await journal.write([AtomicWrite(written), single("acc-2", 1)]) == [None, None]
    await journal.close()

    reopened = FileJournal(tmp_path)
    assert await replayed(reopened, "acc-1") == written
    assert await reopened.highest_sequence_nr("acc-1") == 2
    assert await reopened.highest_sequence_nr("acc-2") == 1
    assert await reopened.persistence_ids() == ["acc-1", "acc-2"]
    assert await reopened.highest_ordering() == 3
    await reopened.close()


async def test_replay_yields_one_id_in_order_in_pages_of_at_most_a_thousand(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path, fsync="never")
    for start in range(1, 2501, 500):
        batch = [single("a", seq) for seq in range(start, start + 500)]
        batch += [single("b", seq) for seq in range(start, start + 500)]
        assert await journal.write(batch) == [None] * 1000
    pages = [page async for page in journal.replay("a")]
    assert [len(page) for page in pages] == [1000, 1000, 500]
    assert [record.sequence_nr for page in pages for record in page] == list(range(1, 2501))
    assert {record.persistence_id for page in pages for record in page} == {"a"}
    await journal.close()


async def test_replay_respects_bounds_and_max_count_inside_an_atomic_write(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    await journal.write([atomic("a", 1, 10), atomic("a", 11, 20)])
    assert [r.sequence_nr for r in await replayed(journal, "a", 4, 13)] == list(range(4, 14))
    assert [r.sequence_nr for r in await replayed(journal, "a", 4, 13, 3)] == [4, 5, 6]
    assert [r.sequence_nr for r in await replayed(journal, "a", 19)] == [19, 20]
    assert await replayed(journal, "a", 21) == []
    assert await replayed(journal, "a", 5, 4) == []
    assert await replayed(journal, "a", 1, 20, 0) == []
    assert await replayed(journal, "unknown") == []
    await journal.close()


async def test_a_taken_sequence_nr_rejects_the_whole_atomic_write(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    assert await journal.write([atomic("a", 1, 3)]) == [None]
    results = await journal.write([atomic("a", 3, 5), single("b", 1)])
    assert isinstance(results[0], SequenceNrConflictError)
    assert str(results[0]) == (
        "sequence number already taken, persistence_id='a', sequence_nr=3: "
        "is another writer running for this id?"
    )
    assert results[1] is None
    assert [r.sequence_nr for r in await replayed(journal, "a")] == [1, 2, 3]
    assert await journal.highest_sequence_nr("a") == 3
    await journal.close()


async def test_a_duplicate_within_one_batch_rejects_the_second_write(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    results = await journal.write([single("a", 1), single("a", 1)])
    assert results[0] is None
    assert isinstance(results[1], SequenceNrConflictError)
    assert results[1].sequence_nr == 1
    assert len(await replayed(journal, "a")) == 1
    await journal.close()


async def test_a_taken_sequence_nr_is_still_rejected_after_reopening(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    await journal.write([atomic("a", 1, 2)])
    await journal.close()
    reopened = FileJournal(tmp_path)
    [result] = await reopened.write([single("a", 2)])
    assert isinstance(result, SequenceNrConflictError)
    await reopened.close()


async def test_a_number_below_a_gap_can_be_written_late_and_replays_in_order(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    assert await journal.write([single("a", 1), single("a", 5), single("a", 3)]) == [None] * 3
    assert [r.sequence_nr for r in await replayed(journal, "a")] == [1, 3, 5]
    await journal.close()
    reopened = FileJournal(tmp_path)
    assert [r.sequence_nr for r in await replayed(reopened, "a", 2)] == [3, 5]
    assert await reopened.highest_sequence_nr("a") == 5
    await reopened.close()


async def test_malformed_atomic_writes_are_rejected_and_nothing_of_them_is_stored(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    not_bytes = AtomicWrite([event("a", 1)._replace(payload="text")])  # type: ignore[arg-type]
    gap = AtomicWrite([event("a", 1), event("a", 3)])
    tag_text = AtomicWrite([event("a", 1)._replace(tags="tag")])  # type: ignore[arg-type]
    results = await journal.write([not_bytes, gap, AtomicWrite([]), tag_text, single("a", 1)])
    assert [type(result) for result in results] == [JournalError] * 4 + [type(None)]
    assert str(results[0]) == (
        "invalid atomic write, persistence_id='a', sequence_nr=1: manifest, writer_id and tags "
        "must be str, timestamp an int and payload bytes"
    )
    assert str(results[2]) == "invalid atomic write: it holds no records"
    assert len(await replayed(journal, "a")) == 1
    await journal.close()


async def test_deleting_keeps_the_highest_sequence_nr_across_reopening(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    await journal.write([atomic("a", 1, 3), single("a", 4), single("b", 1)])
    await journal.delete_to("a", 4)
    assert await replayed(journal, "a") == []
    assert await journal.highest_sequence_nr("a") == 4
    await journal.close()

    reopened = FileJournal(tmp_path)
    assert await replayed(reopened, "a") == []
    assert await reopened.highest_sequence_nr("a") == 4
    assert await reopened.persistence_ids() == ["a", "b"]
    assert await reopened.write([single("a", 5)]) == [None]
    assert [r.sequence_nr for r in await replayed(reopened, "a")] == [5]
    await reopened.close()


async def test_deleting_part_of_an_atomic_write_replays_the_rest_after_reopening(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    await journal.write([atomic("a", 1, 5), atomic("a", 6, 8)])
    await journal.delete_to("a", 3)
    await journal.delete_to("a", 2)  # lower than before: changes nothing
    assert [r.sequence_nr for r in await replayed(journal, "a")] == [4, 5, 6, 7, 8]
    await journal.close()
    reopened = FileJournal(tmp_path)
    assert [r.sequence_nr for r in await replayed(reopened, "a")] == [4, 5, 6, 7, 8]
    assert [r.sequence_nr for r in await replayed(reopened, "a", 1, 4)] == [4]
    await reopened.close()


async def test_deleting_beyond_the_highest_leaves_later_events_alone(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    await journal.write([atomic("a", 1, 2)])
    await journal.delete_to("a", 100)
    await journal.write([single("a", 3)])
    await journal.close()
    reopened = FileJournal(tmp_path)
    assert [r.sequence_nr for r in await replayed(reopened, "a")] == [3]
    assert await reopened.highest_sequence_nr("a") == 3
    await reopened.close()


async def test_events_by_tag_uses_exclusive_offsets_and_skips_deleted_events(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    await journal.write(
        [
            AtomicWrite([event("a", 1, tags=("t",)), event("a", 2), event("a", 3, tags=("t",))]),
            single("b", 1, tags=("t", "u")),
            single("a", 4, tags=("u",)),
        ]
    )
    tagged = [r async for page in journal.events_by_tag("t") for r in page]
    assert [(r.ordering, r.record.persistence_id, r.record.sequence_nr) for r in tagged] == [
        (1, "a", 1),
        (3, "a", 3),
        (4, "b", 1),
    ]
    assert tagged[0] == TaggedRecord(1, event("a", 1, tags=("t",)))
    after_one = [r.ordering async for page in journal.events_by_tag("t", 1) for r in page]
    assert after_one == [3, 4]
    limited = [r.ordering async for page in journal.events_by_tag("t", 0, 2) for r in page]
    assert limited == [1, 3]
    await journal.delete_to("a", 1)
    await journal.close()

    reopened = FileJournal(tmp_path)
    assert [r.ordering async for page in reopened.events_by_tag("t") for r in page] == [3, 4]
    assert [r.ordering async for page in reopened.events_by_tag("u") for r in page] == [4, 5]
    assert [r async for r in reopened.events_by_tag("none")] == []
    assert await reopened.highest_ordering() == 5
    await reopened.close()


async def test_segments_roll_at_the_segment_size_and_replay_spans_them(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path, segment_size=1024)
    for seq in range(1, 101):
        assert await journal.write([single("a", seq, tags=("t",))]) == [None]
    segments = sorted(name for name in os.listdir(tmp_path) if name.endswith(".log"))
    assert len(segments) > 5
    assert all((tmp_path / name).stat().st_size <= 1024 for name in segments)
    await journal.close()

    reopened = FileJournal(tmp_path, segment_size=1024)
    assert [r.sequence_nr for r in await replayed(reopened, "a")] == list(range(1, 101))
    tagged = [r.ordering async for page in reopened.events_by_tag("t", 50) for r in page]
    assert tagged == list(range(51, 101))
    assert await reopened.write([single("a", 101)]) == [None]
    await reopened.close()


async def interleaved(journal: FileJournal) -> list[PersistentRecord]:
    """Events of ``a`` (single and multi-event records, tagged ``t``) between records of other
    ids, small ones and ones bigger than the gap a replay reads over; the events of ``a``."""
    written: list[PersistentRecord] = []
    others = {"b": 0, "big": 0}
    for round_ in range(60):
        if round_ % 5 == 4:
            low = len(written) + 1
            write = AtomicWrite([event("a", seq, tags=("t",)) for seq in range(low, low + 3)])
        else:
            write = single("a", len(written) + 1, tags=("t",))
        written.extend(write.records)
        other = "big" if round_ % 7 == 3 else "b"
        others[other] += 1
        payload = bytes(3000) if other == "big" else None
        write_other = AtomicWrite([event(other, others[other], payload=payload)])
        assert await journal.write([write, write_other]) == [None, None]
    return written


async def test_events_interleaved_with_other_ids_replay_whole_within_any_bounds(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path, segment_size=16384)
    written = await interleaved(journal)
    assert len(os.listdir(tmp_path)) > 3
    seqs = [r.sequence_nr for r in written]

    assert await replayed(journal, "a") == written
    assert await replayed(journal, "a", 6, 77) == written[5:77]
    assert await replayed(journal, "a", 2, 97, 30) == written[1:31]
    rows = [row async for page in journal.replay_rows("a", 5, 9) for row in page]
    assert rows == [(r.sequence_nr, *r[2:]) for r in written[4:9]]
    tagged = [r.record async for page in journal.events_by_tag("t") for r in page]
    assert tagged == written
    assert [r.sequence_nr for r in await replayed(journal, "b")] == list(range(1, 52))
    assert [r.sequence_nr for r in await replayed(journal, "big")] == list(range(1, 10))
    assert seqs == list(range(1, 85))
    await journal.close()


async def test_damage_to_a_record_read_along_with_others_is_reported_with_its_offset(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    segment = tmp_path / "00000001.log"
    offsets = {}
    for seq in range(1, 4):
        for persistence_id in "ab":
            offsets[persistence_id, seq] = segment.stat().st_size if segment.exists() else 8
            assert await journal.write([single(persistence_id, seq)]) == [None]
    await journal.close()
    reopened = FileJournal(tmp_path)
    assert [r.sequence_nr for r in await replayed(reopened, "a", 1, 1)] == [1]
    second_a = offsets["a", 2]
    data = bytearray(segment.read_bytes())
    data[second_a + 20] ^= 0x01  # a byte of its body, damaged after the journal opened
    segment.write_bytes(bytes(data))

    with pytest.raises(JournalCorruptedError) as raised:
        await replayed(reopened, "a")
    assert (raised.value.path, raised.value.offset, raised.value.reason) == (
        str(segment),
        second_a,
        "record checksum mismatch on read",
    )
    assert [r.sequence_nr for r in await replayed(reopened, "b")] == [1, 2, 3]
    await reopened.close()


@pytest.mark.parametrize("fsync", ["always", "batch", "never"])
async def test_every_fsync_mode_stores_what_it_acknowledged(tmp_path: Path, fsync: str) -> None:
    journal = FileJournal(tmp_path, fsync=fsync)  # type: ignore[arg-type]
    results = await asyncio.gather(*(journal.write([single(f"id-{n}", 1)]) for n in range(50)))
    assert results == [[None]] * 50
    await journal.close()
    reopened = FileJournal(tmp_path)
    assert len(await reopened.persistence_ids()) == 50
    await reopened.close()


async def test_concurrent_writers_share_syncs_through_group_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    real_sync = writer_module._sync

    def counting_sync(fd: int) -> None:
        syncs.append(fd)
        real_sync(fd)

    monkeypatch.setattr(writer_module, "_sync", counting_sync)
    journal = FileJournal(tmp_path)

    async def writer(n: int) -> None:
        for seq in range(1, 11):
            assert await journal.write([single(f"id-{n}", seq)]) == [None]

    await asyncio.gather(*(writer(n) for n in range(100)))
    assert len(syncs) < 100  # 1,000 writes, far fewer syncs
    await journal.close()


async def test_writes_submitted_in_one_loop_turn_share_one_append_and_one_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    real_sync = writer_module._sync

    def counting_sync(fd: int) -> None:
        syncs.append(fd)
        real_sync(fd)

    journal = FileJournal(tmp_path)
    await journal.highest_ordering()
    monkeypatch.setattr(writer_module, "_sync", counting_sync)
    results = await asyncio.gather(*(journal.write([single(f"id-{n}", 1)]) for n in range(50)))
    assert results == [[None]] * 50
    assert len(syncs) == 1
    await journal.close()


async def test_calls_bringing_more_writes_than_one_flush_takes_each_get_their_own_results(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path, fsync="never")
    await journal.highest_ordering()
    first = [single(f"a-{n}", 1) for n in range(6000)]
    second = [single(f"b-{n}", 1) for n in range(6000)]
    second[4321] = single("a-17", 1)  # taken by the first call
    third = [single(f"c-{n}", 1) for n in range(10)]
    results = await asyncio.gather(
        journal.write(first), journal.write(second), journal.write(third)
    )
    assert results[0] == [None] * 6000
    assert [n for n, result in enumerate(results[1]) if result is not None] == [4321]
    assert type(results[1][4321]) is SequenceNrConflictError
    assert results[2] == [None] * 10
    assert len(await journal.persistence_ids()) == 6000 + 5999 + 10
    await journal.close()


async def test_a_writer_cancelled_while_waiting_leaves_the_others_of_its_flush_their_results(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    await journal.highest_ordering()
    cancelled = asyncio.ensure_future(journal.write([single("a", 1)]))
    others = [asyncio.ensure_future(journal.write([single(f"id-{n}", 1)])) for n in range(3)]
    await asyncio.sleep(0)  # every write is submitted: they share one flush
    cancelled.cancel()
    assert await asyncio.gather(*others) == [[None]] * 3
    assert cancelled.cancelled()
    await journal.close()
    reopened = FileJournal(tmp_path)  # the cancelled caller's write was stored all the same
    assert await reopened.persistence_ids() == ["a", "id-0", "id-1", "id-2"]
    await reopened.close()


async def test_durable_writes_and_deletions_leave_the_default_executor_alone(
    tmp_path: Path,
) -> None:
    submitted: list[object] = []

    class CountingExecutor(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            submitted.append(fn)
            return super().submit(fn, *args, **kwargs)

    executor = CountingExecutor(max_workers=1)
    asyncio.get_running_loop().set_default_executor(executor)
    journal = FileJournal(tmp_path, segment_size=256)
    await journal.highest_ordering()  # the open scans on a worker thread
    opened = len(submitted)
    for seq in range(1, 11):  # rolling to new segments on the way
        assert await journal.write([single("a", seq)]) == [None]
    await journal.delete_to("a", 5)
    assert len(submitted) == opened
    assert [r.sequence_nr for r in await replayed(journal, "a")] == [6, 7, 8, 9, 10]
    await journal.close()
    executor.shutdown()


async def test_a_deletion_cancelled_while_it_syncs_is_applied_and_later_writes_follow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = FileJournal(tmp_path)
    assert await journal.write([atomic("a", 1, 3)]) == [None]
    syncing, release = threading.Event(), threading.Event()
    real_sync = writer_module._sync

    def held_sync(fd: int) -> None:
        syncing.set()
        release.wait()
        real_sync(fd)

    monkeypatch.setattr(writer_module, "_sync", held_sync)
    deleting = asyncio.ensure_future(journal.delete_to("a", 2))
    await asyncio.to_thread(syncing.wait)
    deleting.cancel()
    writing = asyncio.ensure_future(journal.write([single("a", 4)]))
    await asyncio.sleep(0)
    release.set()
    assert await writing == [None]
    assert deleting.cancelled()
    assert [r.sequence_nr for r in await replayed(journal, "a")] == [3, 4]
    await journal.close()
    reopened = FileJournal(tmp_path)
    assert [r.sequence_nr for r in await replayed(reopened, "a")] == [3, 4]
    await reopened.close()


async def test_a_failed_append_fails_its_batch_leaves_nothing_of_it_and_later_writes_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = FileJournal(tmp_path)
    assert await journal.write([single("a", 1)]) == [None]
    segment_fd = journal._writer.fd
    real_write = os.write

    def full_disk(fd: int, data: Any) -> int:
        if fd == segment_fd:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(JournalError) as raised:
        await journal.write([single("a", 2), single("b", 1)])
    segment = tmp_path / "00000001.log"
    assert str(raised.value) == (
        f"cannot append to {str(segment)!r}: [Errno 28] No space left on device"
    )
    monkeypatch.undo()
    assert await journal.write([single("a", 2)]) == [None]
    assert await journal.persistence_ids() == ["a"]
    await journal.close()
    reopened = FileJournal(tmp_path)
    assert [r.sequence_nr for r in await replayed(reopened, "a")] == [1, 2]
    assert await reopened.persistence_ids() == ["a"]
    await reopened.close()


async def test_a_failure_while_indexing_stored_writes_reaches_their_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = FileJournal(tmp_path)
    assert await journal.write([single("a", 1)]) == [None]

    def broken_index(*args: Any) -> None:
        raise RuntimeError("index broken")

    monkeypatch.setattr(JournalIndex, "add_batch", broken_index)
    with pytest.raises(RuntimeError) as raised:
        await journal.write([single("a", 2)])
    assert str(raised.value) == "index broken"
    monkeypatch.undo()
    assert await journal.write([single("b", 1)]) == [None]
    await journal.close()


async def test_a_payload_msgpack_cannot_encode_is_rejected_alone(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    strided = event("a", 1)._replace(payload=memoryview(b"abcdef")[::2])
    results = await journal.write([AtomicWrite([strided]), single("b", 1)])
    assert [type(result) for result in results] == [JournalError, type(None)]
    assert str(results[0]) == (
        "invalid atomic write, persistence_id='a': cannot encode it: memoryview: underlying "
        "buffer is not C-contiguous"
    )
    assert await journal.persistence_ids() == ["b"]
    await journal.close()


async def test_batch_mode_syncs_in_the_background_soon_after_a_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = asyncio.Event()
    real_sync = writer_module._sync

    def observing_sync(fd: int) -> None:
        real_sync(fd)
        loop.call_soon_threadsafe(synced.set)

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(writer_module, "_sync", observing_sync)
    journal = FileJournal(tmp_path, fsync="batch")
    assert await journal.write([single("a", 1)]) == [None]
    await asyncio.wait_for(synced.wait(), timeout=5)
    await journal.close()


async def test_using_a_closed_journal_raises_journal_closed_error(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    await journal.write([single("a", 1)])
    await journal.close()
    await journal.close()  # closing twice is fine
    message = (
        f"cannot write: the file journal at {str(tmp_path)!r} is closed; create a new instance "
        "to use it again"
    )
    with pytest.raises(JournalClosedError) as raised:
        await journal.write([single("a", 2)])
    assert str(raised.value) == message
    with pytest.raises(JournalClosedError, match="cannot replay"):
        await replayed(journal, "a")
    with pytest.raises(JournalClosedError, match="cannot delete events"):
        await journal.delete_to("a", 1)
    with pytest.raises(JournalClosedError, match="cannot read the highest sequence number"):
        await journal.highest_sequence_nr("a")


async def test_closing_mid_replay_fails_the_next_page(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path, fsync="never")
    await journal.write([single("a", seq) for seq in range(1, 2001)])
    pages = journal.replay("a")
    assert len(await anext(pages)) == 1000
    await journal.close()
    with pytest.raises(JournalClosedError, match="cannot replay"):
        await anext(pages)


async def test_close_waits_for_writes_already_submitted(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    await journal.highest_ordering()
    writes = [asyncio.ensure_future(journal.write([single("a", seq)])) for seq in range(1, 21)]
    await asyncio.sleep(0)
    await journal.close()
    assert [await write for write in writes] == [[None]] * 20
    reopened = FileJournal(tmp_path)
    assert await reopened.highest_sequence_nr("a") == 20
    await reopened.close()


async def test_closing_while_a_deletion_waits_for_earlier_writes_lets_it_finish_first(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    await journal.highest_ordering()
    writing = asyncio.ensure_future(journal.write([atomic("a", 1, 3)]))
    deleting = asyncio.ensure_future(journal.delete_to("a", 2))
    await asyncio.sleep(0)
    await journal.close()
    assert await writing == [None]
    assert await deleting is None
    reopened = FileJournal(tmp_path)
    assert [r.sequence_nr for r in await replayed(reopened, "a")] == [3]
    await reopened.close()


def writer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "file-journal-writer"]


async def test_an_unclosed_journal_warns_with_resource_warning(tmp_path: Path) -> None:
    journals = [FileJournal(tmp_path)]
    await journals[0].highest_sequence_nr("a")
    [thread] = writer_threads()
    with pytest.warns(ResourceWarning, match="unclosed <FileJournal"):
        forget(journals)
    await asyncio.to_thread(thread.join)  # its writer thread ends too


async def test_closing_a_journal_ends_its_writer_thread(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    assert await journal.write([single("a", 1)]) == [None]
    assert len(writer_threads()) == 1
    await journal.close()
    assert writer_threads() == []


async def test_a_never_used_journal_does_not_warn(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    del journal
    gc.collect()


async def test_a_second_opener_of_the_directory_is_refused_while_the_first_is_open(
    tmp_path: Path,
) -> None:
    first = FileJournal(tmp_path)
    await first.highest_ordering()
    second = FileJournal(tmp_path)
    with pytest.raises(JournalError) as raised:
        await second.highest_ordering()
    assert str(raised.value) == (
        f"the file journal at {str(tmp_path)!r} is in use by another process "
        "(or by another FileJournal of this one); close that one first, or open this one with "
        "read_only=True to only read"
    )
    await first.close()
    assert await second.highest_ordering() == 0
    await second.close()


def test_bad_constructor_arguments_are_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync must be 'always', 'batch' or 'never', not 'often'"):
        FileJournal(tmp_path, fsync="often")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="segment_size must be between 256 and"):
        FileJournal(tmp_path, segment_size=10)


async def test_a_segment_follows_the_documented_grammar(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    await journal.write([AtomicWrite([event("a", 1, tags=("t",)), event("a", 2)])])
    await journal.delete_to("a", 1)
    await journal.close()

    data = (tmp_path / "00000001.log").read_bytes()
    assert data[:8] == b"AJNL\x01\x00\x00\x00"
    position, bodies = 8, []
    while position < len(data):
        length, body_crc, header_crc = struct.unpack_from("<III", data, position)
        assert header_crc == zlib.crc32(data[position : position + 8])
        body = data[position + 12 : position + 12 + length]
        assert zlib.crc32(body) == body_crc
        bodies.append(msgpack.unpackb(body))
        position += 12 + length
    assert bodies == [
        [
            1,
            1,
            "a",
            [
                [1, "Counted", msgpack.packb({"n": 1}), "writer-1", 1_700_001, ["t"]],
                [2, "Counted", msgpack.packb({"n": 2}), "writer-1", 1_700_002, []],
            ],
        ],
        [2, "a", 1],
    ]


class FileJournalMatchesTheReference(RuleBasedStateMachine):
    """Random writes, deletions and reopenings: the file journal answers like the in-memory
    reference journal, before and after every reopen."""

    make_directory: Callable[[], Path]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = self.make_directory()
        self.file = FileJournal(self.directory, fsync="never", segment_size=512)
        self.model = InMemoryJournal()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    @rule(
        writes=st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c"]),
                st.sampled_from(["next", "taken", "gap"]),
                st.integers(1, 3),
                st.sampled_from([(), ("t",), ("t", "u")]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    def write(self, writes: list[tuple[str, str, int, tuple[str, ...]]]) -> None:
        batch = []
        for persistence_id, how, count, tags in writes:
            highest = self.run(self.model.highest_sequence_nr(persistence_id))
            first = {"next": highest + 1, "taken": max(1, highest), "gap": highest + 2}[how]
            batch.append(
                AtomicWrite(
                    [event(persistence_id, n, tags=tags) for n in range(first, first + count)]
                )
            )
        expected = self.run(self.model.write(batch))
        actual = self.run(self.file.write(batch))
        assert [type(result) for result in actual] == [type(result) for result in expected]

    @rule(persistence_id=st.sampled_from(["a", "b", "c"]), back=st.integers(0, 4))
    def delete(self, persistence_id: str, back: int) -> None:
        to = self.run(self.model.highest_sequence_nr(persistence_id)) - back
        self.run(self.model.delete_to(persistence_id, to))
        self.run(self.file.delete_to(persistence_id, to))

    @rule()
    def reopen(self) -> None:
        self.run(self.file.close())
        self.file = FileJournal(self.directory, fsync="never", segment_size=512)

    @rule(
        persistence_id=st.sampled_from(["a", "b", "c"]),
        low=st.integers(1, 8),
        high=st.integers(1, 12),
        most=st.integers(1, 20),
    )
    def replay(self, persistence_id: str, low: int, high: int, most: int) -> None:
        async def both() -> tuple[list[PersistentRecord], list[PersistentRecord]]:
            args = (persistence_id, low, high, most)
            model = [r async for page in self.model.replay(*args) for r in page]
            actual = [r async for page in self.file.replay(*args) for r in page]
            return model, actual

        model, actual = self.run(both())
        assert actual == model

    @invariant()
    def same_answers(self) -> None:
        async def answers(journal: Any) -> Any:
            ids = await journal.persistence_ids()
            return (
                ids,
                [await journal.highest_sequence_nr(i) for i in ids],
                [[r async for page in journal.replay(i) for r in page] for i in ids],
                [r async for page in journal.events_by_tag("t", 2) for r in page],
                await journal.highest_ordering(),
            )

        assert self.run(answers(self.file)) == self.run(answers(self.model))

    def teardown(self) -> None:
        self.run(self.file.close())
        self.run(self.model.close())
        self.loop.close()


def test_the_file_journal_matches_the_reference_journal_across_reopens(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    class Machine(FileJournalMatchesTheReference):
        @staticmethod
        def make_directory() -> Path:
            return tmp_path_factory.mktemp("stateful")

    run_state_machine_as_test(
        Machine, settings=settings(max_examples=40, stateful_step_count=25, deadline=None)
    )


async def test_a_caller_cancelled_while_opening_leaves_the_journal_usable(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    opening = asyncio.ensure_future(journal.highest_ordering())
    await asyncio.sleep(0)
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert await journal.write([single("a", 1)]) == [None]
    await journal.close()


async def test_closing_while_a_cancelled_open_is_still_running_releases_the_directory(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    opening = asyncio.ensure_future(journal.highest_ordering())
    await asyncio.sleep(0)
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    await journal.close()
    again = FileJournal(tmp_path)
    assert await again.highest_ordering() == 0
    await again.close()


async def test_a_failed_sync_fails_the_batch_and_stops_further_writes_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = FileJournal(tmp_path)
    assert await journal.write([single("a", 1)]) == [None]

    def failing_sync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(writer_module, "_sync", failing_sync)
    segment = tmp_path / "00000001.log"
    with pytest.raises(JournalError) as raised:
        await journal.write([single("a", 2)])
    assert str(raised.value) == f"cannot sync {str(segment)!r}: [Errno 5] Input/output error"
    with pytest.raises(JournalError) as refused:
        await journal.write([single("a", 3)])
    assert str(refused.value) == (
        f"the file journal at {str(tmp_path)!r} failed earlier and accepts no more writes: "
        "[Errno 5] Input/output error; close and reopen it"
    )
    assert [r.sequence_nr for r in await replayed(journal, "a")] == [1]
    await journal.close()
    monkeypatch.undo()

    reopened = FileJournal(tmp_path)  # the outcome of the failed write was unknown: it landed
    assert [r.sequence_nr for r in await replayed(reopened, "a")] == [1, 2]
    await reopened.close()


# -- opening: one shared open for every waiting caller -------------------------------------------


def count_opens(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the journal's opens (its scans of the directory); one entry per open."""
    opens: list[int] = []
    real_recover = file_module._recover

    def counting_recover(journal_ref: Any) -> None:
        opens.append(1)
        real_recover(journal_ref)

    monkeypatch.setattr(file_module, "_recover", counting_recover)
    return opens


async def test_every_caller_waiting_for_the_first_open_goes_on_as_soon_as_it_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opens = count_opens(monkeypatch)
    journal = FileJournal(tmp_path)
    callers = [asyncio.ensure_future(journal.highest_sequence_nr(f"id-{n}")) for n in range(2000)]
    callers.append(asyncio.ensure_future(replayed(journal, "id-0")))
    writing = asyncio.ensure_future(journal.write([single("id-0", 1)]))
    await asyncio.wait(callers, return_when=asyncio.FIRST_COMPLETED)
    # all of them at once, not one more per turn of the event loop
    assert [caller for caller in callers if not caller.done()] == []
    assert [caller.result() for caller in callers] == [0] * 2000 + [[]]
    assert await writing == [None]
    assert opens == [1]
    await journal.close()


async def test_every_caller_waiting_for_a_failed_open_gets_its_error_and_the_next_call_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = FileJournal(tmp_path)
    await holder.highest_ordering()
    opens = count_opens(monkeypatch)
    journal = FileJournal(tmp_path)
    results = await asyncio.gather(
        *(journal.highest_sequence_nr(f"id-{n}") for n in range(100)), return_exceptions=True
    )
    assert opens == [1]
    assert {type(result) for result in results} == {JournalError}
    assert str(results[0]) == (
        f"the file journal at {str(tmp_path)!r} is in use by another process "
        "(or by another FileJournal of this one); close that one first, or open this one with "
        "read_only=True to only read"
    )
    await holder.close()
    assert await journal.highest_sequence_nr("id-0") == 0
    assert opens == [1, 1]
    await journal.close()


async def test_closing_while_callers_wait_for_the_open_fails_them_as_closed(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    callers = [asyncio.ensure_future(journal.highest_ordering()) for _ in range(10)]
    await asyncio.sleep(0)
    await journal.close()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert {type(result) for result in results} == {JournalClosedError}
    again = FileJournal(tmp_path)  # the directory was released
    assert await again.highest_ordering() == 0
    await again.close()


# -- read-only ----------------------------------------------------------------------------------


def directory_state(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file of ``directory`` with its size, modification time and contents."""
    return {
        path.name: (path.stat().st_size, path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(directory.iterdir())
    }


async def write_sample(directory: Path) -> None:
    journal = FileJournal(directory, segment_size=256)
    await journal.write([AtomicWrite([event("a", 1, tags=("t",)), event("a", 2)])])
    for seq in range(1, 6):
        await journal.write([single("b", seq, tags=("t",))])
    await journal.delete_to("b", 2)
    await journal.close()


async def test_a_read_only_journal_reads_everything_and_creates_locks_or_changes_nothing(
    tmp_path: Path,
) -> None:
    await write_sample(tmp_path)
    (tmp_path / "LOCK").unlink()  # e.g. a copy of the segments on read-only media
    before = directory_state(tmp_path)
    assert len([name for name in before if name.endswith(".log")]) > 1

    journal = FileJournal(tmp_path, read_only=True)
    assert journal.read_only
    assert await journal.persistence_ids() == ["a", "b"]
    assert [r.sequence_nr for r in await replayed(journal, "a")] == [1, 2]
    assert [r.sequence_nr for r in await replayed(journal, "b")] == [3, 4, 5]
    assert await journal.highest_sequence_nr("b") == 5
    tagged = [r.record.sequence_nr async for page in journal.events_by_tag("t") for r in page]
    assert tagged == [1, 3, 4, 5]
    assert await journal.highest_ordering() == 7
    assert repr(journal) == f"<FileJournal {str(tmp_path)!r} read-only open>"
    await journal.close()
    assert directory_state(tmp_path) == before


async def test_a_read_only_journal_reads_while_a_writer_holds_the_journal_open(
    tmp_path: Path,
) -> None:
    writer = FileJournal(tmp_path)
    await writer.write([single("a", 1), single("a", 2)])
    reader = FileJournal(tmp_path, read_only=True)
    assert [r.sequence_nr for r in await replayed(reader, "a")] == [1, 2]
    await writer.write([single("a", 3)])  # written after the reader opened: not seen by it
    assert [r.sequence_nr for r in await replayed(reader, "a")] == [1, 2]
    await reader.close()
    assert [r.sequence_nr for r in await replayed(writer, "a")] == [1, 2, 3]
    await writer.close()


async def test_a_read_only_journal_leaves_a_torn_tail_and_logs_that_it_ignored_it(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    journal = FileJournal(tmp_path)
    await journal.write([single("a", 1)])
    await journal.close()
    segment = tmp_path / "00000001.log"
    size = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(b"\x05\x00\x00")
    before = directory_state(tmp_path)

    reader = FileJournal(tmp_path, read_only=True)
    assert [r.sequence_nr for r in await replayed(reader, "a")] == [1]
    await reader.close()
    assert directory_state(tmp_path) == before
    [warning] = [entry for entry in logs if entry["event"].startswith("journal_torn_tail")]
    assert warning == {
        "event": "journal_torn_tail_ignored",
        "log_level": "warning",
        "path": str(segment),
        "offset": size,
        "ignored_bytes": 3,
        "reason": "incomplete record header",
    }


async def test_a_read_only_journal_refuses_writes_and_deletions(tmp_path: Path) -> None:
    await write_sample(tmp_path)
    before = directory_state(tmp_path)
    journal = FileJournal(tmp_path, read_only=True)
    with pytest.raises(JournalError) as raised:
        await journal.write([single("a", 3)])
    assert type(raised.value) is JournalError
    assert str(raised.value) == (
        f"cannot write: the file journal at {str(tmp_path)!r} is open read-only; open it without "
        "read_only=True to change it"
    )
    with pytest.raises(JournalError, match=r"^cannot delete events: .* is open read-only"):
        await journal.delete_to("a", 1)
    assert [r.sequence_nr for r in await replayed(journal, "a")] == [1, 2]
    await journal.close()
    with pytest.raises(
        JournalClosedError,
        match=r"^cannot write: .* is closed; create a new instance to use it again$",
    ):
        await journal.write([single("a", 3)])
    assert directory_state(tmp_path) == before


async def test_a_read_only_journal_of_a_missing_directory_raises_and_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing"
    journal = FileJournal(missing, read_only=True)
    with pytest.raises(JournalError) as raised:
        await journal.persistence_ids()
    assert str(raised.value) == (
        f"no file journal at {str(missing)!r}: the directory does not exist (a read-only journal "
        "creates nothing)"
    )
    assert not missing.exists()
    await journal.close()


def refuse_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make this process see read-only media (as root, chmod would not stop it): every attempt
    to create, open for writing, lock or change a file fails with EROFS; returns the attempts."""
    attempts: list[str] = []
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    real_open = os.open

    def read_only_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & writing:
            attempts.append(f"open {path}")
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_open(path, flags, *args, **kwargs)

    def refused(name: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            attempts.append(name)
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

        return refuse

    monkeypatch.setattr(os, "open", read_only_open)
    for name in ("makedirs", "mkdir", "ftruncate", "truncate", "unlink", "rename", "replace"):
        monkeypatch.setattr(os, name, refused(name))
    monkeypatch.setattr(fcntl, "flock", refused("flock"))
    return attempts


async def test_a_read_only_journal_works_on_read_only_media(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write_sample(tmp_path)
    last_segment = max(name for name in os.listdir(tmp_path) if name.endswith(".log"))
    with (tmp_path / last_segment).open("ab") as file:
        file.write(b"torn")  # a torn tail, which a read-write open would truncate
    attempts = refuse_writes(monkeypatch)

    journal = FileJournal(tmp_path, read_only=True)
    assert await journal.persistence_ids() == ["a", "b"]
    assert [r.sequence_nr for r in await replayed(journal, "b")] == [3, 4, 5]
    await journal.close()
    assert attempts == []


async def test_a_read_write_open_on_read_only_media_says_to_open_it_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write_sample(tmp_path)
    refuse_writes(monkeypatch)
    journal = FileJournal(tmp_path)
    with pytest.raises(JournalError) as raised:
        await journal.highest_ordering()
    assert str(raised.value) == (
        f"cannot open the journal's lock file {str(tmp_path / 'LOCK')!r}: Read-only file system; "
        "the file system is read-only: to read the journal there, open it with "
        "FileJournal(directory, read_only=True), as `python -m persistence` does"
    )
    await journal.close()


# -- operating-system failures are journal errors -------------------------------------------------


async def test_a_directory_where_the_lock_file_should_be_is_a_journal_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "LOCK").mkdir()
    journal = FileJournal(tmp_path)
    with pytest.raises(JournalError) as raised:
        await journal.highest_ordering()
    assert str(raised.value) == (
        f"cannot open the journal's lock file {str(tmp_path / 'LOCK')!r}: Is a directory; a "
        "directory is in the way: move it elsewhere, the journal needs a file there"
    )
    assert isinstance(raised.value.__cause__, IsADirectoryError)
    await journal.close()


async def test_a_file_where_the_journal_directory_should_be_is_a_journal_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal"
    path.write_bytes(b"not a directory")
    journal = FileJournal(path)
    with pytest.raises(JournalError) as raised:
        await journal.highest_ordering()
    assert str(raised.value) == (
        f"cannot create the journal directory {str(path)!r}: File exists; a file is in the way: "
        "the journal needs a directory there"
    )
    await journal.close()


async def test_an_unreadable_segment_is_a_journal_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "00000001.log").mkdir()
    for read_only in (False, True):
        journal = FileJournal(tmp_path, read_only=read_only)
        with pytest.raises(JournalError) as raised:
            await journal.highest_ordering()
        assert str(raised.value) == (
            f"cannot read the journal segment {str(tmp_path / '00000001.log')!r}: Is a directory; "
            "a directory is in the way: move it elsewhere, the journal needs a file there"
        )
        await journal.close()


async def test_a_segment_removed_while_open_fails_replay_with_a_journal_error(
    tmp_path: Path,
) -> None:
    await write_sample(tmp_path)
    journal = FileJournal(tmp_path, segment_size=256)
    assert await journal.highest_sequence_nr("a") == 2
    segment = tmp_path / "00000001.log"
    segment.unlink()
    with pytest.raises(JournalError) as raised:
        await replayed(journal, "a")
    assert str(raised.value) == (
        f"cannot read the journal segment {str(segment)!r} at offset 8: No such file or "
        "directory; it disappeared: were the journal's files moved or deleted while in use?"
    )
    await journal.close()
