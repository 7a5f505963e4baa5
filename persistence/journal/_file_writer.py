"""The file journal's writing side: encoding atomic writes into records, appending them to the
current segment file, rolling to a new segment, and syncing per the fsync mode.

Group commit happens above it (:class:`~persistence.journal._group_commit.GroupCommitter` hands
the journal one batch at a time); the writer appends each batch with one ``write`` and, with
``fsync="always"``, one ``fdatasync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import zlib
from collections.abc import Sequence
from typing import Final, Literal

import msgpack

from persistence._errors import JournalError, SequenceNrConflictError
from persistence._fsync import sync_directory
from persistence._logging import get_logger
from persistence.journal._file_format import (
    KIND_EVENTS,
    LENGTH_AND_BODY_CRC,
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER,
    SEGMENT_HEADER_SIZE,
    os_errors,
    segment_path,
)
from persistence.journal._file_index import OFFSET_BITS, Accepted, JournalIndex
from persistence.journal._group_commit import WriteResults
from persistence.journal._protocol import MAX_SEQUENCE_NR, AtomicWrite, PersistentRecord
from persistence.journal._validation import check_atomic_write

log = get_logger("persistence.journal")

FsyncMode = Literal["always", "batch", "never"]

_BATCH_SYNC_INTERVAL: Final = 0.010
_INLINE_WRITE_LIMIT: Final = 1024 * 1024  # bigger un-synced writes go to a worker thread
_crc32: Final = zlib.crc32
_packb: Final = msgpack.packb
_U32: Final = struct.Struct("<I")
_BYTES_LIKE: Final = (bytes, bytearray, memoryview)
_TAG_SEQUENCES: Final = (tuple, list)


def _sync(fd: int) -> None:
    getattr(os, "fdatasync", os.fsync)(fd)


def _first_taken(ranges: list[tuple[int, int]], lo: int, hi: int) -> int | None:
    """The lowest number of ``[lo, hi]`` inside one of ``ranges``, if any."""
    taken = [
        max(lo, other_lo) for other_lo, other_hi in ranges if other_lo <= hi and lo <= other_hi
    ]
    return min(taken) if taken else None


def _encode_events(
    records: Sequence[PersistentRecord], first_ordering: int
) -> tuple[bytes, list[Sequence[str]] | None] | JournalError:
    """The msgpack body of one atomic write and its tags per event (``None`` if untagged), or
    the error that rejects it."""
    tagged = False
    events = []
    for record in records:
        payload = record.payload
        tags = record.tags
        if not (
            type(record.manifest) is str
            and type(record.writer_id) is str
            and type(record.timestamp) is int
            and (type(payload) is bytes or isinstance(payload, _BYTES_LIKE))
        ) or (tags and (type(tags) not in _TAG_SEQUENCES or not all(type(t) is str for t in tags))):
            return JournalError(
                f"invalid atomic write, persistence_id={record.persistence_id!r}, "
                f"sequence_nr={record.sequence_nr}: manifest, writer_id and tags must be str, "
                "timestamp an int and payload bytes"
            )
        tagged = tagged or bool(tags)
        events.append(record[1:])  # the grammar's event is the record without its id
    try:
        body: bytes = _packb((KIND_EVENTS, first_ordering, records[0].persistence_id, events))
    except (TypeError, ValueError, OverflowError) as exc:
        return JournalError(
            f"invalid atomic write, persistence_id={records[0].persistence_id!r}: cannot encode "
            f"it: {exc}"
        )
    return body, [record.tags for record in records] if tagged else None


def encode_batch(
    writes: list[AtomicWrite], index: JournalIndex
) -> tuple[WriteResults, list[bytes], list[Accepted]]:
    """Per write ``None`` or its rejection; the framed records; where each accepted one is
    (checked against what ``index`` says is stored)."""
    results: WriteResults = [None] * len(writes)
    pieces: list[bytes] = []
    accepted: list[Accepted] = []
    in_batch: dict[str, list[tuple[int, int]]] = {}
    ordering = index.ordering + 1
    offset = 0
    crc32 = _crc32
    pack_length_and_crc = LENGTH_AND_BODY_CRC.pack
    pack_crc = _U32.pack
    ids = index.ids
    for position, write in enumerate(writes):
        error = check_atomic_write(write)
        if error is None and write.owner_epoch is not None:
            error = JournalError(
                f"cannot write persistence_id={write.persistence_id!r} with an owner epoch: "
                "the file journal does not support owner epochs; use the SQLite or "
                "PostgreSQL journal to fence owners"
            )
        if error is None:
            records = write.records
            persistence_id = records[0].persistence_id
            lo, hi = records[0].sequence_nr, records[-1].sequence_nr
            stored = ids.get(persistence_id)
            if (
                (stored is not None and lo <= stored.highest)
                or persistence_id in in_batch
                or type(persistence_id) is not str
                or hi > MAX_SEQUENCE_NR
            ):
                error = _conflict(index, persistence_id, lo, hi, in_batch)
        if error is None:
            encoded = _encode_events(records, ordering)
            if isinstance(encoded, JournalError):
                error = encoded
            else:
                body, tags = encoded
        if error is not None:
            results[position] = error
            continue
        header = pack_length_and_crc(len(body), crc32(body))
        pieces += (header, pack_crc(crc32(header)), body)
        size = RECORD_HEADER_SIZE + len(body)
        accepted.append((persistence_id, lo, hi, offset, size, tags))
        earlier = in_batch.get(persistence_id)
        if earlier is None:
            in_batch[persistence_id] = [(lo, hi)]
        else:
            earlier.append((lo, hi))
        offset += size
        ordering += hi - lo + 1
    return results, pieces, accepted


def _conflict(
    index: JournalIndex,
    persistence_id: str,
    lo: int,
    hi: int,
    in_batch: dict[str, list[tuple[int, int]]],
) -> JournalError | None:
    """Why an atomic write of ``[lo, hi]`` cannot be stored next to what is stored and
    earlier in the batch."""
    if type(persistence_id) is not str or hi > MAX_SEQUENCE_NR:
        return JournalError(
            f"invalid atomic write, persistence_id={persistence_id!r}: the persistence id "
            f"must be a str and sequence numbers at most {MAX_SEQUENCE_NR}"
        )
    stored = index.ids.get(persistence_id)
    if stored is not None and lo <= stored.highest:
        taken = stored.first_stored_in(lo, hi)
        if taken is not None:
            return SequenceNrConflictError(persistence_id, taken)
    earlier = in_batch.get(persistence_id)
    if earlier is not None:
        taken = _first_taken(earlier, lo, hi)
        if taken is not None:
            return SequenceNrConflictError(persistence_id, taken)
    return None


class SegmentWriter:
    """Appends records to the journal's current segment file and syncs them per ``fsync``.

    ``lock`` serializes everything that appends, indexes what was appended, or reads where the
    appends end. Until the journal is opened (and forever, read-only) ``fd`` is ``-1``.
    """

    __slots__ = (
        "_dirty",
        "_syncer",
        "_syncer_stopping",
        "_syncer_wakeup",
        "directory",
        "failed",
        "fd",
        "fsync",
        "lock",
        "segment_bytes",
        "segment_number",
        "segment_size",
    )

    def __init__(self, directory: str, fsync: FsyncMode, segment_size: int) -> None:
        self.directory = directory
        self.fsync: FsyncMode = fsync
        self.segment_size = segment_size
        self.lock = asyncio.Lock()
        self.fd = -1
        self.segment_number = 0
        self.segment_bytes = 0
        self.failed: BaseException | None = None
        self._dirty = False
        self._syncer: asyncio.Task[None] | None = None
        self._syncer_wakeup = asyncio.Event()
        self._syncer_stopping = False

    def create_segment(self, number: int) -> None:
        """Create segment ``number`` (header synced, directory entry synced) and append to it."""
        path = segment_path(self.directory, number)
        with os_errors("create the journal segment", path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            try:
                os.write(fd, SEGMENT_HEADER)
                os.fsync(fd)
                sync_directory(self.directory)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(path)
                raise
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = fd
        self.segment_number = number
        self.segment_bytes = SEGMENT_HEADER_SIZE

    def open_segment(self, number: int, path: str, valid_end: int) -> None:
        """Append to the existing segment ``number`` at ``path``, whose records end at
        ``valid_end``."""
        with os_errors("open for appending the journal segment", path):
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.segment_number = number
        self.segment_bytes = valid_end

    def _roll(self) -> None:
        """Seal the current segment (synced in every mode: only the last one may be torn) and
        continue in a new one; on failure the current one stays in use."""
        self._sync_current()
        self.create_segment(self.segment_number + 1)

    def check_not_failed(self) -> None:
        """Refuse to write after a failure that may have lost acknowledged data."""
        if self.failed is not None:
            raise JournalError(
                f"the file journal at {self.directory!r} failed earlier and accepts no more "
                f"writes: {self.failed}; close and reopen it"
            )

    async def append(self, buffer: bytes) -> int:
        """Append ``buffer`` (whole records) durably per the fsync mode; its position."""
        if (
            self.segment_bytes + len(buffer) > self.segment_size
            and self.segment_bytes > SEGMENT_HEADER_SIZE
        ):
            await asyncio.to_thread(self._roll)
        if self.fsync == "always":
            return await asyncio.to_thread(self._write, buffer, True)
        if len(buffer) > _INLINE_WRITE_LIMIT:
            position = await asyncio.to_thread(self._write, buffer, False)
        else:
            position = self._write(buffer, False)
        if self._syncer is not None:
            self._dirty = True
            self._syncer_wakeup.set()
        return position

    def _write(self, buffer: bytes, sync: bool) -> int:
        """Append ``buffer`` to the current segment (and sync it if ``sync``); its position."""
        fd = self.fd
        before = self.segment_bytes
        try:
            written = os.write(fd, buffer)
            if written < len(buffer):
                view = memoryview(buffer)
                while written < len(buffer):
                    written += os.write(fd, view[written:])
        except OSError as exc:
            try:
                os.ftruncate(fd, before)  # leave no partial record for later appends to follow
            except OSError as truncate_exc:
                self.failed = truncate_exc
            raise JournalError(
                f"cannot append to {segment_path(self.directory, self.segment_number)!r}: {exc}"
            ) from exc
        self.segment_bytes = before + len(buffer)
        if sync:
            self._sync_current()
        return (self.segment_number << OFFSET_BITS) | before

    def _sync_current(self) -> None:
        try:
            _sync(self.fd)
        except OSError as exc:
            # after a failed fsync the page cache may have dropped the data: stop writing
            self.failed = exc
            raise JournalError(
                f"cannot sync {segment_path(self.directory, self.segment_number)!r}: {exc}"
            ) from exc

    async def _sync_in_batches(self) -> None:
        """``fsync="batch"``: sync at most every few milliseconds while writes come in."""
        while not self._syncer_stopping:
            await self._syncer_wakeup.wait()
            self._syncer_wakeup.clear()
            if self._syncer_stopping:
                return
            await asyncio.sleep(_BATCH_SYNC_INTERVAL)
            async with self.lock:
                if not self._dirty or self.fd < 0 or self.failed is not None:
                    continue
                self._dirty = False
                fd = os.dup(self.fd)  # a roll may close the original meanwhile
            try:
                await asyncio.to_thread(_sync, fd)
            except OSError as exc:
                self.failed = exc
                log.error("journal_sync_failed", directory=self.directory, error=str(exc))
            finally:
                os.close(fd)

    def start_syncer(self) -> None:
        """Start syncing in the background if the fsync mode is ``"batch"``."""
        if self.fsync == "batch":
            self._syncer = asyncio.get_running_loop().create_task(self._sync_in_batches())

    async def stop_syncer(self) -> None:
        """Stop the background syncer, if any, and wait for it."""
        if self._syncer is not None:
            self._syncer_stopping = True
            self._syncer_wakeup.set()
            await self._syncer
            self._syncer = None

    def release(self) -> None:
        """Sync the current segment (unless a failure stopped the writes) and close it."""
        try:
            if self.fd >= 0 and self.failed is None:
                path = segment_path(self.directory, self.segment_number)
                with os_errors("sync on close the journal segment", path):
                    _sync(self.fd)
        finally:
            if self.fd >= 0:
                os.close(self.fd)
            self.fd = -1
