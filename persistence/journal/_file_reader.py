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

    async def read_records(
        self, positions: array[int], sizes: array[int]
    ) -> list[tuple[bytes, int]]:
        """The bytes of the records at ``positions``, as ``(buffer, record count)`` runs: one
        read per run of records adjacent in the file (usually the whole page)."""
        count = len(positions)
        runs: list[tuple[int, int, int]]  # (position, size, record count)
        if count == 1 or positions[1:] == array("q", map(add, positions[:-1], sizes[:-1])):
            runs = [(positions[0], sum(sizes), count)]
        else:
            runs = []
            for position, size in zip(positions, sizes, strict=True):
                if runs and runs[-1][0] + runs[-1][1] == position:
                    run_position, run_size, run_count = runs[-1]
                    runs[-1] = (run_position, run_size + size, run_count + 1)
                else:
                    runs.append((position, size, 1))
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
        return [(buffer, run[2]) for buffer, run in zip(buffers, runs, strict=True)]

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
        self, persistence_id: str, buffer: bytes, positions: array[int]
    ) -> list[StoredEvent]:
        """The common case, kept tight: adjacent records each holding one wanted event (the
        last of the record: deletion only ever cuts records from below)."""
        page: list[StoredEvent] = []
        append = page.append
        unpack_header = LENGTH_AND_BODY_CRC.unpack_from
        crc32 = _crc32
        unpackb = _unpackb
        offset = 0
        for position in positions:
            length, body_crc = unpack_header(buffer, offset)
            start = offset + RECORD_HEADER_SIZE
            offset = start + length
            body = buffer[start:offset]
            if crc32(body) != body_crc:
                raise self._corrupted_on_read(position)
            _, _, stored_id, events = unpackb(body, use_list=False)
            if stored_id != persistence_id:
                raise self._misplaced(position, stored_id, persistence_id)
            append(events[-1])
        if offset != len(buffer):
            raise self._corrupted_on_read(positions[0])
        return page

    def decode_replay_page(
        self,
        persistence_id: str,
        runs: list[tuple[bytes, int]],
        entries: array[int],
        low: int,
        high: int,
    ) -> list[StoredEvent]:
        """The events of the records in ``runs`` (described by ``entries``) within bounds, as
        stored: ``(sequence_nr, manifest, payload, writer_id, timestamp, tags)`` each (a record
        without its persistence id, and a row of ``replay_rows``)."""
        los = entries[0::4]
        if len(runs) == 1 and los[0] >= low and los[-1] <= high and los == entries[1::4]:
            return self._decode_single_events(persistence_id, runs[0][0], entries[2::4])
        page: list[StoredEvent] = []
        extend = page.extend
        unpack_header = LENGTH_AND_BODY_CRC.unpack_from
        crc32 = _crc32
        unpackb = _unpackb
        entry = 0
        for buffer, count in runs:
            position = 0
            end = entry + count
            for lo, hi, size in zip(
                entries[entry << 2 : end << 2 : 4],
                entries[(entry << 2) + 1 : end << 2 : 4],
                entries[(entry << 2) + 3 : end << 2 : 4],
                strict=True,
            ):
                length, body_crc = unpack_header(buffer, position)
                start = position + RECORD_HEADER_SIZE
                position += size
                body = buffer[start:position]
                if crc32(body) != body_crc or length + RECORD_HEADER_SIZE != size:
                    raise self._corrupted_on_read(entries[(entry << 2) + 2])
                _, _, stored_id, events = unpackb(body, use_list=False)
                if stored_id != persistence_id:
                    raise self._misplaced(entries[(entry << 2) + 2], stored_id, persistence_id)
                if lo < low or hi > high or len(events) != hi - lo + 1:
                    first = events[0][0]
                    events = events[max(lo, low) - first : min(hi, high) - first + 1]
                extend(events)
                entry += 1
        return page

    def decode_ordered(
        self, runs: list[tuple[bytes, int]], chunk: array[int], after: int, tag: str | None
    ) -> list[TaggedRecord]:
        """The live events with ``ordering > after`` (and carrying ``tag``, unless ``None``) of
        the records in ``runs``, described by ``chunk`` (``(ordering, position, size)`` each)."""
        page: list[TaggedRecord] = []
        ids = self.index.ids
        record = 0
        for buffer, count in runs:
            position = 0
            for _ in range(count):
                length, body_crc = LENGTH_AND_BODY_CRC.unpack_from(buffer, position)
                start = position + RECORD_HEADER_SIZE
                body = buffer[start : start + length]
                file_position = chunk[record * 3 + 1]
                if start + length - position != chunk[record * 3 + 2] or (_crc32(body) != body_crc):
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
                position = start + length
                record += 1
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
