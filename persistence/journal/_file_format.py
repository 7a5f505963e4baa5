"""The on-disk format of :class:`~persistence.journal.FileJournal`: segments, framing, recovery.

A journal is a directory. Its files::

    directory      := ["LOCK"] segment*
    segment        := "%08d.log", numbered from 1 without gaps; appends go to the highest

The lock file is held with ``flock`` by the one process that has the journal open for writing
(a read-only opener neither creates nor locks it). A directory without segments is an empty
journal; the first writer creates ``00000001.log``. Segment files are never removed: deleting
events appends a ``deletion`` record. So a missing number, ``00000001.log`` included, is damage
(a file lost or deleted by hand) and is reported as corruption naming the missing file; only the
loss of the newest segments cannot be told from a shorter journal. Each segment is a header
followed by records; a record never spans two segments::

    segment_file   := segment_header record*
    segment_header := "AJNL" version:u8 (= 1) reserved:u8[3] (= 0)
    record         := length:u32le body_crc:u32le header_crc:u32le body:u8[length]
        length     >= 1
        body_crc   =  crc32(body)                            (zlib's CRC-32)
        header_crc =  crc32(length:u32le body_crc:u32le)
    body           := msgpack(events | deletion)
    events         := [1, first_ordering, persistence_id, [event, ...]]
    event          := [sequence_nr, manifest, payload:bin, writer_id, timestamp, [tag, ...]]
    deletion       := [2, persistence_id, to_sequence_nr]

An ``event`` lists the fields of a :class:`~persistence.journal.PersistentRecord` after its
persistence id, in the same order. One ``events`` record is one atomic write: it is stored, or
torn and dropped, as a whole. Its events have the journal-wide orderings ``first_ordering``,
``first_ordering + 1``, ...; orderings increase strictly from record to record. A ``deletion``
record deletes the events of the id stored *before it* with ``sequence_nr <= to_sequence_nr``
(events written later, even with lower numbers, are not affected); the highest sequence number
is computed over all events records, so deletion never lowers it.

The header checksum lets recovery trust ``length`` before the body is read: a flipped bit in a
length field is reported as corruption instead of looking like a record cut short by a crash.

Recovery on open scans every record and checks both checksums:

- A bad record at the tail of the last segment (fewer bytes left than a header or its body, a
  checksum mismatch with no valid record after it) is taken for a write torn by a crash: a
  read-write open truncates the segment before it and logs a warning naming the file, the offset
  and the bytes dropped (a read-only open leaves it and logs that it ignored it). It was possibly
  acknowledged: a write cut short by a crash is never acknowledged with ``fsync="always"``, but
  with ``"batch"`` or ``"never"`` a power loss can tear acknowledged writes, damage to a synced
  last record looks the same, and the files do not record the fsync mode they were written with.
- A bad record anywhere else (a valid record follows it, or it lies in an earlier segment), a
  body that is not a valid record, orderings that do not increase, or a missing segment is
  corruption: :class:`~persistence.JournalCorruptedError` names the file and the offset and
  nothing is repaired. Torn writes only happen at the end of the log: a process killed with
  SIGKILL leaves whole ``write`` calls in the page cache, and after a power loss only the
  unsynced tail can be damaged (segments are synced before the next one is started, in every
  fsync mode).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from persistence._errors import JournalCorruptedError, JournalError

SEGMENT_MAGIC: Final = b"AJNL"
FORMAT_VERSION: Final = 1
SEGMENT_HEADER: Final = SEGMENT_MAGIC + bytes((FORMAT_VERSION, 0, 0, 0))
SEGMENT_HEADER_SIZE: Final = len(SEGMENT_HEADER)
RECORD_HEADER: Final = struct.Struct("<III")
RECORD_HEADER_SIZE: Final = RECORD_HEADER.size
LENGTH_AND_BODY_CRC: Final = struct.Struct("<II")

KIND_EVENTS: Final = 1
KIND_DELETION: Final = 2

LOCK_FILE_NAME: Final = "LOCK"
_SEGMENT_NAME = re.compile(r"^(\d{8,})\.log$")

_packb = msgpack.packb
_unpackb = msgpack.unpackb
_crc32 = zlib.crc32


_ADVICE: Final = {
    errno.EROFS: "the file system is read-only: to read the journal there, open it with "
    "FileJournal(directory, read_only=True), as `python -m persistence` does",
    errno.EACCES: "check the permissions (to only read the journal, open it with "
    "FileJournal(directory, read_only=True))",
    errno.EPERM: "check the permissions (to only read the journal, open it with "
    "FileJournal(directory, read_only=True))",
    errno.EISDIR: "a directory is in the way: move it elsewhere, the journal needs a file there",
    errno.ENOTDIR: "a file is in the way: the journal needs a directory there",
    errno.EEXIST: "a file is in the way: the journal needs a directory there",
    errno.ENOENT: "it disappeared: were the journal's files moved or deleted while in use?",
    errno.ENOSPC: "the disk is full: free some space, then close and reopen the journal",
}


def os_error(action: str, path: str, exc: OSError, *, offset: int | None = None) -> JournalError:
    """A :class:`~persistence.JournalError` for an ``OSError`` met while doing ``action`` on
    ``path`` (at ``offset``): names them, the system's reason, and what to do."""
    where = f"{path!r}" if offset is None else f"{path!r} at offset {offset}"
    reason = exc.strerror or str(exc)
    advice = _ADVICE.get(exc.errno or 0, "check the journal's directory and files")
    return JournalError(f"cannot {action} {where}: {reason}; {advice}")


@contextlib.contextmanager
def os_errors(action: str, path: str) -> Iterator[None]:
    """Raise an ``OSError`` of the block as a :class:`~persistence.JournalError`."""
    try:
        yield
    except OSError as exc:
        raise os_error(action, path, exc) from exc


def segment_name(number: int) -> str:
    """The file name of segment ``number`` (``00000001.log`` for 1)."""
    return f"{number:08d}.log"


def segment_path(directory: str, number: int) -> str:
    """The path of segment ``number`` in the journal ``directory``."""
    return os.path.join(directory, segment_name(number))


def list_segments(directory: str) -> list[tuple[int, str]]:
    """The ``(number, path)`` of each segment file in ``directory``, in number order."""
    found: list[tuple[int, str]] = []
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise os_error("list the journal directory", directory, exc) from exc
    for name in names:
        match = _SEGMENT_NAME.match(name)
        if match is not None:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    found.sort()
    return found


def frame(body: bytes) -> bytes:
    """``body`` with its record header in front."""
    length_and_crc = LENGTH_AND_BODY_CRC.pack(len(body), _crc32(body))
    return length_and_crc + _crc32(length_and_crc).to_bytes(4, "little") + body


def encode_deletion(persistence_id: str, to_sequence_nr: int) -> bytes:
    """One framed deletion record."""
    return frame(_packb([KIND_DELETION, persistence_id, to_sequence_nr]))


def decode_body(body: bytes | memoryview) -> Any:
    """The msgpack value of a record body (arrays decode as tuples)."""
    return _unpackb(body, use_list=False)


@dataclass(frozen=True, slots=True)
class TornTail:
    """Where a segment's valid records end and why the bytes after them are not a record."""

    offset: int
    size: int
    reason: str


class SegmentScanner:
    """Walks the records of one segment file, verifying checksums.

    Iterate :meth:`records` for ``(offset, size, body)``; afterwards :attr:`torn` says whether
    the segment ends in a torn write (only possible when ``is_last``). Corruption raises
    :class:`~persistence.JournalCorruptedError`.
    """

    def __init__(self, path: str, data: bytes, *, is_last: bool) -> None:
        self.path = path
        self.data = data
        self.is_last = is_last
        self.torn: TornTail | None = None
        self.valid_end = 0

    def records(self) -> Iterator[tuple[int, int, Any]]:
        data = self.data
        end = len(data)
        header = data[:SEGMENT_HEADER_SIZE]
        if header != SEGMENT_HEADER:
            if (
                self.is_last
                and len(header) < SEGMENT_HEADER_SIZE
                and SEGMENT_HEADER.startswith(header)
            ):
                self.torn = TornTail(0, end, "incomplete segment header")
                return
            raise JournalCorruptedError(self.path, 0, "not a journal segment (bad header)")
        position = SEGMENT_HEADER_SIZE
        self.valid_end = position
        unpack_header = RECORD_HEADER.unpack_from
        while position < end:
            if end - position < RECORD_HEADER_SIZE:
                self._bad(position, "incomplete record header", resync_from=None)
                return
            length, body_crc, header_crc = unpack_header(data, position)
            if length < 1 or _crc32(data[position : position + 8]) != header_crc:
                self._bad(position, "record header checksum mismatch", resync_from=position + 1)
                return
            body_start = position + RECORD_HEADER_SIZE
            body_end = body_start + length
            if body_end > end:
                self._bad(position, "incomplete record body", resync_from=None)
                return
            body = data[body_start:body_end]
            if _crc32(body) != body_crc:
                self._bad(position, "record body checksum mismatch", resync_from=body_end)
                return
            try:
                value = decode_body(body)
            except Exception as exc:  # a checksummed body that does not decode is corruption
                raise JournalCorruptedError(
                    self.path, position, f"record body is not valid msgpack: {exc}"
                ) from exc
            yield position, body_end - position, value
            position = body_end
            self.valid_end = position

    def _bad(self, offset: int, reason: str, *, resync_from: int | None) -> None:
        """A bad record at ``offset``: a torn tail, or corruption if valid data follows it."""
        if not self.is_last:
            raise JournalCorruptedError(self.path, offset, f"{reason} in a sealed segment")
        if resync_from is not None:
            found = find_valid_record(self.data, resync_from)
            if found is not None:
                raise JournalCorruptedError(
                    self.path, offset, f"{reason}, followed by a valid record at offset {found}"
                )
        self.torn = TornTail(offset, len(self.data) - offset, reason)


def find_valid_record(data: bytes, start: int) -> int | None:
    """The offset of the first complete, checksummed record at or after ``start``, if any.

    Only used on the error path, over the bytes after a bad record.
    """
    end = len(data)
    if data[start:end].count(0) == end - start:  # a zero-filled tail holds nothing
        return None
    unpack_header = RECORD_HEADER.unpack_from
    for position in range(start, end - RECORD_HEADER_SIZE + 1):
        length, body_crc, header_crc = unpack_header(data, position)
        body_end = position + RECORD_HEADER_SIZE + length
        if (
            length >= 1
            and body_end <= end
            and _crc32(data[position : position + 8]) == header_crc
            and _crc32(data[position + RECORD_HEADER_SIZE : body_end]) == body_crc
        ):
            return position
    return None


def check_events_body(path: str, offset: int, value: Any) -> None:
    """Raise :class:`~persistence.JournalCorruptedError` unless ``value`` is an events body
    (six fields per event, consecutive sequence numbers)."""
    events = value[3] if len(value) == 4 else None
    if type(events) is not tuple or not events or type(value[1]) is not int:
        raise JournalCorruptedError(path, offset, "malformed events record")
    first, last = events[0], events[-1]
    if len(events) == 1:
        well_formed = type(first) is tuple and len(first) == 6 and type(first[0]) is int
    else:
        well_formed = (
            all(type(event) is tuple and len(event) == 6 for event in events)
            and type(first[0]) is int
            and type(last[0]) is int
            and last[0] - first[0] == len(events) - 1
        )
    if not (well_formed and type(value[2]) is str):
        raise JournalCorruptedError(path, offset, "malformed events record")


def check_body(path: str, offset: int, value: Any) -> None:
    """Raise :class:`~persistence.JournalCorruptedError` unless ``value`` is a record body."""
    if type(value) is not tuple or not value:
        raise JournalCorruptedError(path, offset, "record body is not an array")
    kind = value[0]
    if kind == KIND_EVENTS:
        check_events_body(path, offset, value)
    elif kind == KIND_DELETION:
        if not (len(value) == 3 and type(value[1]) is str and type(value[2]) is int):
            raise JournalCorruptedError(path, offset, "malformed deletion record")
    else:
        raise JournalCorruptedError(path, offset, f"unknown record kind {kind!r}")


class JournalScan:
    """Reads every record of a journal directory in order, checking framing and orderings.

    Iterate :meth:`records` for ``(segment_number, offset, size, body)``; afterwards
    :attr:`torn` names the last segment's torn tail, if any. Nothing is modified: truncating the
    tail is the opener's decision.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.segments = list_segments(directory)
        self.torn: tuple[str, TornTail] | None = None
        self.last_ordering = 0
        self.last_valid_end = 0

    def records(self) -> Iterator[tuple[int, int, int, Any]]:
        segments = self.segments
        for index, (number, path) in enumerate(segments):
            expected = segments[index - 1][0] + 1 if index else 1
            if number != expected:
                raise JournalCorruptedError(
                    segment_path(self.directory, expected),
                    0,
                    f"segment file is missing, but {segment_name(number)} exists: segments are "
                    "numbered from 1 without gaps and never removed; restore it from a backup",
                )
            is_last = index == len(segments) - 1
            data: Any
            try:
                with open(path, "rb") as file:
                    size = os.fstat(file.fileno()).st_size
                    data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            except OSError as exc:
                raise os_error("read the journal segment", path, exc) from exc
            try:
                scanner = SegmentScanner(path, data, is_last=is_last)
                for offset, length, value in scanner.records():
                    check_body(path, offset, value)
                    if value[0] == KIND_EVENTS:
                        first = value[1]
                        if first <= self.last_ordering:
                            raise JournalCorruptedError(
                                path,
                                offset,
                                f"ordering {first} does not follow {self.last_ordering}",
                            )
                        self.last_ordering = first + len(value[3]) - 1
                    yield number, offset, length, value
                self.last_valid_end = scanner.valid_end
                if scanner.torn is not None:
                    self.torn = (path, scanner.torn)
            finally:
                if isinstance(data, mmap.mmap):
                    data.close()
