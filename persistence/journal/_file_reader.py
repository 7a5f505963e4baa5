"""The file journal's reading side: records read by file position, decoded into replay pages
and query pages, and the index of every events record that :meth:`FileJournal.all_events` uses.

Reads of a page go straight to the segment files (``pread``, one per run of adjacent records);
big ones go to a worker thread. Every record read is checked against its checksum and the index.
"""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from array import array
from itertools import islice
from operator import add
from typing import Final

import msgpack

from persistence._errors import JournalCorruptedError, JournalError
from persistence.journal._file_format import (
    KIND_EVENTS,
    LENGTH_AND_BODY_CRC,
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    os_error,
    segment_path,
)
from persistence.journal._file_index import OFFSET_BITS, OFFSET_MASK, JournalIndex
from persistence.journal._file_writer import SegmentWriter
from persistence.journal._protocol import PersistentRecord, TaggedRecord

PAGE_SIZE: Final = 1000
_INLINE_READ_LIMIT: Final = 256 * 1024  # bigger page reads go to a worker thread
_crc32: Final = zlib.crc32
_unpackb: Final = msgpack.unpackb
_U32: Final = struct.Struct("<I")
_new_tuple: Final = tuple.__new__

_GAP: Final = 1024
"""Records at most this many bytes apart are read together (see ``read_records``)."""

Run = tuple[int, bytes, int]
"""Records read together: the file position of the first, the bytes from it, how many."""

StoredEvent = tuple[int, str, bytes, str, int, tuple[str, ...]]
"""An event as an events record stores it: a :class:`PersistentRecord` without its id."""


def records_after(entries: array[int], after: int) -> array[int]:
    """The first :data:`PAGE_SIZE` of ``entries`` (``(ordering, position, size)`` each, in
    ordering order) whose ordering is ``> after``."""
    low, high = 0, len(entries) // 3
    while low < high:
        mid = (low + high) >> 1
        if entries[mid * 3] <= after:
            low = mid + 1
        else:
            high = mid
    return entries[low * 3 : (low + PAGE_SIZE) * 3]


class SegmentReader:
    """Reads and decodes the records the index points at; keeps one read-only file descriptor
    per segment read so far."""

    __slots__ = ("_all_events", "directory", "fds", "index")

    def __init__(self, directory: str, index: JournalIndex) -> None:
        self.directory = directory
        self.index = index
        self.fds: dict[int, int] = {}
        self._all_events: _AllEventsIndex | None = None

    def release(self) -> None:
        """Close the cached file descriptors."""
        fds = [*self.fds.values()]
        self.fds.clear()
        for fd in fds:
            os.close(fd)

    def _segment_path(self, number: int) -> str:
        return segment_path(self.directory, number)

    async def read_records(self, positions: array[int], sizes: array[int]) -> list[Run]:
        """The bytes of the records at ``positions``, as runs: one read per run of records
        adjacent in the file or close together (usually the whole page). The few bytes between
        the records of a run are read and skipped: cheaper than a read per record, as when the
        records of an id alternate with those of others."""
        count = len(positions)
        runs: list[tuple[int, int, int]]  # (position, size, record count)
        if count == 1 or positions[1:] == array("q", map(add, positions[:-1], sizes[:-1])):
            runs = [(positions[0], sum(sizes), count)]
        else:
            runs = []
            run_position, run_end, run_count = positions[0], positions[0] + sizes[0], 1
            for position, size in zip(positions[1:], sizes[1:], strict=True):
                # a position packs the segment number above the offset: a record of another
                # segment is never within _GAP bytes of run_end
                if 0 <= position - run_end <= _GAP:
                    run_end = position + size
                    run_count += 1
                else:
                    runs.append((run_position, run_end - run_position, run_count))
                    run_position, run_end, run_count = position, position + size, 1
            runs.append((run_position, run_end - run_position, run_count))
        if sum(size for _, size, _ in runs) <= _INLINE_READ_LIMIT:
            buffers = []
            try:
                for position, size, _ in runs:
                    buffers.append(
                        os.pread(
                            self._read_fd(position >> OFFSET_BITS), size, position & OFFSET_MASK
                        )
                    )
            except OSError as exc:
                raise self._read_failed(position, exc) from exc
        else:
            buffers = await asyncio.to_thread(self._read_by_path, runs)
        for (position, size, _), buffer in zip(runs, buffers, strict=True):
            if len(buffer) != size:
                raise JournalCorruptedError(
                    self._segment_path(position >> OFFSET_BITS),
                    (position & OFFSET_MASK) + len(buffer),
                    "the file ends inside a record",
                )
        return [
            (position, buffer, count)
            for (position, _, count), buffer in zip(runs, buffers, strict=True)
        ]

    def _read_fd(self, segment: int) -> int:
        fd = self.fds.get(segment)
        if fd is None:
            fd = self.fds[segment] = os.open(self._segment_path(segment), os.O_RDONLY)
        return fd

    def _read_by_path(self, runs: list[tuple[int, int, int]]) -> list[bytes]:
        # own file descriptors: close() may close the cached ones while this thread reads
        buffers = []
        for position, size, _ in runs:
            try:
                fd = os.open(self._segment_path(position >> OFFSET_BITS), os.O_RDONLY)
                try:
                    buffers.append(os.pread(fd, size, position & OFFSET_MASK))
                finally:
                    os.close(fd)
            except OSError as exc:
                raise self._read_failed(position, exc) from exc
        return buffers

    def _read_failed(self, position: int, exc: OSError) -> JournalError:
        return os_error(
            "read the journal segment",
            self._segment_path(position >> OFFSET_BITS),
            exc,
            offset=position & OFFSET_MASK,
        )

    def _corrupted_on_read(self, position: int) -> JournalCorruptedError:
        return JournalCorruptedError(
            self._segment_path(position >> OFFSET_BITS),
            position & OFFSET_MASK,
            "record checksum mismatch on read",
        )

    def _misplaced(
        self, position: int, stored_id: str, persistence_id: str
    ) -> JournalCorruptedError:
        return JournalCorruptedError(
            self._segment_path(position >> OFFSET_BITS),
            position & OFFSET_MASK,
            f"index points at a record of {stored_id!r}, not {persistence_id!r}",
        )

    def _decode_single_events(
        self, persistence_id: str, runs: list[Run], positions: array[int], sizes: array[int]
    ) -> list[StoredEvent]:
        """The common case, kept tight: records each holding one wanted event (the last of the
        record: deletion only ever cuts records from below)."""
        page: list[StoredEvent] = []
        append = page.append
        unpack_header = LENGTH_AND_BODY_CRC.unpack_from
        crc32 = _crc32
        unpackb = _unpackb
        records = zip(positions, sizes, strict=True)
        for run_position, buffer, count in runs:
            for position, size in islice(records, count):
                offset = position - run_position
                length, body_crc = unpack_header(buffer, offset)
                start = offset + RECORD_HEADER_SIZE
                body = buffer[start : start + length]
                if crc32(body) != body_crc or length + RECORD_HEADER_SIZE != size:
                    raise self._corrupted_on_read(position)
                _, _, stored_id, events = unpackb(body, use_list=False)
                if stored_id != persistence_id:
                    raise self._misplaced(position, stored_id, persistence_id)
                append(events[-1])
        return page

    def decode_replay_page(
        self,
        persistence_id: str,
        runs: list[Run],
        entries: array[int],
        low: int,
        high: int,
    ) -> list[StoredEvent]:
        """The events of the records in ``runs`` (described by ``entries``) within bounds, as
        stored: ``(sequence_nr, manifest, payload, writer_id, timestamp, tags)`` each (a record
        without its persistence id, and a row of ``replay_rows``)."""
        los = entries[0::4]
        positions = entries[2::4]
        sizes = entries[3::4]
        if los[0] >= low and los[-1] <= high and los == entries[1::4]:
            return self._decode_single_events(persistence_id, runs, positions, sizes)
        page: list[StoredEvent] = []
        extend = page.extend
        unpack_header = LENGTH_AND_BODY_CRC.unpack_from
        crc32 = _crc32
        unpackb = _unpackb
        records = zip(los, entries[1::4], positions, sizes, strict=True)
        for run_position, buffer, count in runs:
            for lo, hi, position, size in islice(records, count):
                offset = position - run_position
                length, body_crc = unpack_header(buffer, offset)
                start = offset + RECORD_HEADER_SIZE
                body = buffer[start : start + length]
                if crc32(body) != body_crc or length + RECORD_HEADER_SIZE != size:
                    raise self._corrupted_on_read(position)
                _, _, stored_id, events = unpackb(body, use_list=False)
                if stored_id != persistence_id:
                    raise self._misplaced(position, stored_id, persistence_id)
                if lo < low or hi > high or len(events) != hi - lo + 1:
                    first = events[0][0]
                    events = events[max(lo, low) - first : min(hi, high) - first + 1]
                extend(events)
        return page

    def decode_ordered(
        self, runs: list[Run], chunk: array[int], after: int, tag: str | None
    ) -> list[TaggedRecord]:
        """The live events with ``ordering > after`` (and carrying ``tag``, unless ``None``) of
        the records in ``runs``, described by ``chunk`` (``(ordering, position, size)`` each)."""
        page: list[TaggedRecord] = []
        ids = self.index.ids
        records = zip(chunk[1::3], chunk[2::3], strict=True)
        for run_position, buffer, count in runs:
            for file_position, size in islice(records, count):
                offset = file_position - run_position
                length, body_crc = LENGTH_AND_BODY_CRC.unpack_from(buffer, offset)
                start = offset + RECORD_HEADER_SIZE
                body = buffer[start : start + length]
                if length + RECORD_HEADER_SIZE != size or _crc32(body) != body_crc:
                    raise self._corrupted_on_read(file_position)
                _, first_ordering, persistence_id, events = _unpackb(body, use_list=False)
                index = ids[persistence_id]
                for ordering, event in enumerate(events, first_ordering):
                    if (
                        ordering > after
                        and (tag is None or tag in event[5])
                        and index.is_live(event[0], file_position)
                    ):
                        stored = _new_tuple(PersistentRecord, (persistence_id, *event))
                        page.append(TaggedRecord(ordering, stored))
        return page

    async def all_events_entries(self, writer: SegmentWriter) -> array[int]:
        """``(last ordering, position, size)`` of every events record ``writer`` wrote so far,
        scanning only what was appended since the last call (everything, on the first call)."""
        index = self._all_events
        if index is None:
            index = self._all_events = _AllEventsIndex()
        async with index.lock:
            async with writer.lock:  # no write is then between appending and indexing
                end = (writer.segment_number, writer.segment_bytes)
            if (index.segment, index.offset) < end:
                found = await asyncio.to_thread(
                    self._scan_events_records, index.segment, index.offset, *end
                )
                index.entries.extend(found)
                index.segment, index.offset = end
        return index.entries

    def _scan_events_records(
        self, segment: int, offset: int, end_segment: int, end_offset: int
    ) -> array[int]:
        """The events records from ``(segment, offset)`` up to ``(end_segment, end_offset)``
        (runs on a worker thread; the bytes before the end are whole, checksummed records)."""
        found = array("q")
        while (segment, offset) < (end_segment, end_offset):
            path = self._segment_path(segment)
            end = end_offset if segment == end_segment else os.path.getsize(path)
            fd = os.open(path, os.O_RDONLY)
            try:
                data = os.pread(fd, end - offset, offset)
            finally:
                os.close(fd)
            if len(data) != end - offset:
                raise JournalCorruptedError(path, offset + len(data), "the file ends early")
            position = 0
            while position < len(data):
                length, body_crc = LENGTH_AND_BODY_CRC.unpack_from(data, position)
                (header_crc,) = _U32.unpack_from(data, position + 8)
                start = position + RECORD_HEADER_SIZE
                body = data[start : start + length]
                if (
                    _crc32(data[position : position + 8]) != header_crc
                    or len(body) != length
                    or _crc32(body) != body_crc
                ):
                    raise JournalCorruptedError(
                        path, offset + position, "record checksum mismatch on read"
                    )
                value = _unpackb(body, use_list=False)
                if value[0] == KIND_EVENTS:
                    found.extend(
                        (
                            value[1] + len(value[3]) - 1,
                            (segment << OFFSET_BITS) | (offset + position),
                            RECORD_HEADER_SIZE + length,
                        )
                    )
                position = start + length
            if segment == end_segment:
                break
            segment, offset = segment + 1, SEGMENT_HEADER_SIZE
        return found


class _AllEventsIndex:
    """Where :meth:`FileJournal.all_events` finds each events record: built on the first query,
    extended by later ones up to the end of what was written."""

    __slots__ = ("entries", "lock", "offset", "segment")

    def __init__(self) -> None:
        self.entries = array("q")  # (last ordering, position, size) per events record
        self.segment = 1
        self.offset = SEGMENT_HEADER_SIZE
        self.lock = asyncio.Lock()
