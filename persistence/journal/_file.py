"""An append-only file journal: segment files, group commit, an in-memory index.

The directory holds segment files of framed, checksummed records (the format and the recovery
rules are in :mod:`persistence.journal._file_format`). One atomic write is one record, so a crash
never leaves half of one. Opening scans every segment once to build an index per persistence id
(sequence number ranges and file positions, in flat ``array('q')`` buffers: about 32 bytes per
record), so replaying one id reads only that id's records, page by page.

Durability (``fsync``):

- ``"always"``: ``write`` returns after the data is written and ``fdatasync``-ed. Concurrent
  writes share one write and one sync (group commit). Survives a process kill and a power loss.
- ``"batch"``: ``write`` returns once the data is in the operating system's page cache; a
  background task syncs at most every 10 ms. Survives ``kill -9`` of the process, but a power
  loss or kernel crash can lose the last few milliseconds of acknowledged writes.
- ``"never"``: no sync while running (only at segment roll and on ``close``). Survives
  ``kill -9``; a power loss can lose everything not yet written back by the kernel.

The journal is single-process: opening it takes an exclusive ``flock`` on ``LOCK`` in the
directory, so a second opener (another process, or another instance in this one) fails cleanly
instead of interleaving writes. ``read_only=True`` opens it for reading only: nothing is created,
locked, truncated or written (it works on read-only media and while a writer has the journal
open, and sees the records that were complete when it was opened).

Failures of the operating system (a missing or unreadable file, a directory where ``LOCK``
should be, a full disk) are raised as :class:`~persistence.JournalError` naming the path and
what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import warnings
import weakref
import zlib
from array import array
from collections.abc import AsyncIterator, Iterator, Sequence
from operator import add, sub
from typing import Final, Literal

import msgpack

from persistence._errors import (
    JournalClosedError,
    JournalCorruptedError,
    JournalError,
    SequenceNrConflictError,
)
from persistence._logging import get_logger
from persistence.journal._file_format import (
    KIND_EVENTS,
    LENGTH_AND_BODY_CRC,
    LOCK_FILE_NAME,
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER,
    SEGMENT_HEADER_SIZE,
    JournalScan,
    encode_deletion,
    os_error,
    segment_name,
)
from persistence.journal._group_commit import GroupCommitter, WriteResults
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    PersistentRecord,
    TaggedRecord,
)
from persistence.journal._validation import check_atomic_write

log = get_logger("persistence.journal")

# an accepted write: persistence id, lo, hi, offset in the batch buffer, size, tags per event
_Accepted = tuple[str, int, int, int, int, "list[Sequence[str]] | None"]

FsyncMode = Literal["always", "batch", "never"]

_PAGE_SIZE: Final = 1000
_BATCH_SYNC_INTERVAL: Final = 0.010
_INLINE_READ_LIMIT: Final = 256 * 1024  # bigger page reads go to a worker thread
_INLINE_WRITE_LIMIT: Final = 1024 * 1024  # bigger un-synced writes go to a worker thread
_OFFSET_BITS: Final = 40  # a position packs (segment_number << 40) | offset into one int64
_OFFSET_MASK: Final = (1 << _OFFSET_BITS) - 1
_MIN_SEGMENT_SIZE: Final = 256
_crc32: Final = zlib.crc32
_unpackb: Final = msgpack.unpackb
_packb: Final = msgpack.packb
_U32: Final = struct.Struct("<I")
_BYTES_LIKE: Final = (bytes, bytearray, memoryview)
_TAG_SEQUENCES: Final = (tuple, list)
_LENGTH_AND_BODY_CRC: Final = LENGTH_AND_BODY_CRC
_new_tuple: Final = tuple.__new__


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


def _recover(journal_ref: weakref.ref[FileJournal]) -> None:
    # Holds the journal only while it runs: the executor keeps its arguments a little longer,
    # and an unclosed journal must still be collectable (and warn) right after opening.
    journal = journal_ref()
    if journal is not None:
        journal._recover()


def _sync(fd: int) -> None:
    getattr(os, "fdatasync", os.fsync)(fd)


def _sync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _os_errors(action: str, path: str) -> Iterator[None]:
    """Raise an ``OSError`` of the block as a :class:`~persistence.JournalError`."""
    try:
        yield
    except OSError as exc:
        raise os_error(action, path, exc) from exc


class _IdIndex:
    """Where the live events of one persistence id are: ``(lo, hi, position, size)`` per record.

    Entries are sorted by sequence number and never overlap (one entry per atomic write, which
    holds consecutive numbers); deleted events are cut out of the entries.
    """

    __slots__ = ("deleted_to", "entries", "highest")

    def __init__(self) -> None:
        self.entries = array("q")
        self.highest = 0
        self.deleted_to = 0

    def first_ending_at_or_after(self, seq: int) -> int:
        """The index of the first entry with ``hi >= seq``."""
        entries = self.entries
        low, high = 0, len(entries) >> 2
        while low < high:
            mid = (low + high) >> 1
            if entries[(mid << 2) + 1] < seq:
                low = mid + 1
            else:
                high = mid
        return low

    def first_stored_in(self, lo: int, hi: int) -> int | None:
        """The lowest stored sequence number within ``[lo, hi]``, if any."""
        entries = self.entries
        index = self.first_ending_at_or_after(lo) << 2
        if index < len(entries) and entries[index] <= hi:
            return max(lo, entries[index])
        return None

    def add(self, lo: int, hi: int, position: int, size: int) -> None:
        entries = self.entries
        if not entries or lo > entries[-3]:
            entries.extend((lo, hi, position, size))
        else:  # a number below a gap, written late: keep the entries sorted
            index = self.first_ending_at_or_after(lo) << 2
            entries[index:index] = array("q", (lo, hi, position, size))
        self.highest = max(self.highest, hi)

    def deletes_something(self, to_sequence_nr: int) -> bool:
        entries = self.entries
        return bool(entries) and entries[0] <= to_sequence_nr

    def delete_to(self, to_sequence_nr: int) -> None:
        entries = self.entries
        index = self.first_ending_at_or_after(to_sequence_nr + 1)
        del entries[: index << 2]
        if entries and entries[0] <= to_sequence_nr:
            entries[0] = to_sequence_nr + 1
        self.deleted_to = max(self.deleted_to, to_sequence_nr)

    def is_live(self, seq: int, position: int) -> bool:
        """Whether event ``seq`` of the record at ``position`` is still stored."""
        if seq > self.deleted_to:
            return True
        index = self.first_ending_at_or_after(seq) << 2
        entries = self.entries
        return index < len(entries) and entries[index] <= seq and entries[index + 2] == position

    def page(self, low: int, high: int, want: int) -> array[int]:
        """The entries holding the first ``want`` events within ``[low, high]`` (a slice of
        :attr:`entries`; the last one may hold more: an atomic write is read whole)."""
        entries = self.entries
        start = self.first_ending_at_or_after(low)
        stop = min(len(entries) >> 2, start + want)
        if stop > start and entries[(stop - 1) << 2] > high:
            stop = self.first_starting_after(high, start, stop)
        if stop - start > 1:
            los = entries[start << 2 : stop << 2 : 4]
            his = entries[(start << 2) + 1 : stop << 2 : 4]
            if sum(his) - sum(los) + stop - start > want:  # multi-event records: take fewer
                taken = 0
                for count, width in enumerate(map(sub, his, los), 1):
                    taken += width + 1
                    if taken >= want:
                        stop = start + count
                        break
        return entries[start << 2 : stop << 2]

    def first_starting_after(self, seq: int, low: int, high: int) -> int:
        """The index of the first entry in ``[low, high)`` with ``lo > seq``."""
        entries = self.entries
        while low < high:
            mid = (low + high) >> 1
            if entries[mid << 2] <= seq:
                low = mid + 1
            else:
                high = mid
        return low


class FileJournal:
    """A :class:`~persistence.journal.Journal` and :class:`~persistence.journal.ReadJournal`
    storing events in append-only segment files in ``directory``.

    ``fsync`` chooses durability (see the module docstring); ``segment_size`` is the size in
    bytes at which appends move on to a new segment file. ``read_only=True`` only reads an
    existing journal: it creates, locks and changes nothing, leaves a torn tail in place (logging
    that it ignored it), and refuses writes and deletions. Nothing is touched until first use.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: FsyncMode = "always",
        segment_size: int = 64 * 1024 * 1024,
        read_only: bool = False,
    ) -> None:
        if fsync not in ("always", "batch", "never"):
            raise ValueError(f"fsync must be 'always', 'batch' or 'never', not {fsync!r}")
        if not _MIN_SEGMENT_SIZE <= segment_size <= _OFFSET_MASK:
            raise ValueError(
                f"segment_size must be between {_MIN_SEGMENT_SIZE} and {_OFFSET_MASK} bytes, "
                f"not {segment_size}"
            )
        self._directory = os.fspath(directory)
        self._fsync: FsyncMode = fsync
        self._segment_size = segment_size
        self._read_only = read_only
        self._opening: asyncio.Future[None] | None = None  # the open in progress, shared
        self._write_lock = asyncio.Lock()
        self._committer = GroupCommitter(self._flush)
        self._opened = False
        self._closed = False
        self._failed: BaseException | None = None
        # set while open
        self._lock_fd = -1
        self._write_fd = -1
        self._segment_number = 0
        self._segment_bytes = 0
        self._read_fds: dict[int, int] = {}
        self._ids: dict[str, _IdIndex] = {}  # insertion order is first-write order
        self._tags: dict[str, array[int]] = {}  # (highest tagged ordering, position, size)
        self._ordering = 0
        self._dirty = False
        self._syncer: asyncio.Task[None] | None = None
        self._syncer_wakeup = asyncio.Event()
        self._syncer_stopping = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._opened else "not opened"
        mode = "read-only" if self._read_only else f"fsync={self._fsync!r}"
        return f"<FileJournal {self._directory!r} {mode} {state}>"

    def __del__(self) -> None:
        if getattr(self, "_opened", False) and not self._closed:
            warnings.warn(
                f"unclosed {self!r}: call 'await journal.close()'", ResourceWarning, stacklevel=1
            )
            for fd in (self._write_fd, self._lock_fd, *self._read_fds.values()):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)

    @property
    def directory(self) -> str:
        """The journal's directory."""
        return self._directory

    @property
    def read_only(self) -> bool:
        """Whether the journal was opened for reading only."""
        return self._read_only

    # -- opening and closing -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every later call raises)."""
        return self._closed

    def _closed_error(self, operation: str) -> JournalClosedError:
        return JournalClosedError(
            f"cannot {operation}: the file journal at {self._directory!r} is closed; create a "
            "new instance to use it again"
        )

    async def _ensure_open(self, operation: str) -> None:
        """Open the journal on first use. Every caller waits on the one shared open, without a
        lock: when it finishes they all go on at once, and when it fails they all get its error
        (the next call tries again)."""
        if self._closed:
            raise self._closed_error(operation)
        if self._opened:
            return
        opening = self._opening
        if opening is None:
            opening = self._opening = asyncio.get_running_loop().run_in_executor(
                None, _recover, weakref.ref(self)
            )
        try:
            # shielded: a cancelled caller leaves the open running for the others (or close)
            await asyncio.shield(opening)
        except asyncio.CancelledError:
            raise
        except BaseException:
            if self._opening is opening:
                self._opening = None
            raise
        if self._closed:  # close() took the opened journal over meanwhile
            raise self._closed_error(operation)
        if not self._opened:  # the first caller to resume finishes the open for everyone
            self._opened = True
            self._opening = None
            if self._fsync == "batch" and not self._read_only:
                self._syncer = asyncio.get_running_loop().create_task(self._sync_in_batches())

    def _recover(self) -> None:
        """Lock the directory, scan every segment into the index, drop a torn tail (read-only:
        just scan, and leave a torn tail alone)."""
        directory = self._directory
        if self._read_only:
            if not os.path.isdir(directory):
                raise JournalError(
                    f"no file journal at {directory!r}: the directory does not exist (a "
                    "read-only journal creates nothing)"
                )
            lock_fd = -1
        else:
            lock_fd = self._lock_directory()
        try:
            scan = JournalScan(directory)
            self._index_records(scan)
            if self._read_only:
                if scan.torn is not None:
                    path, torn = scan.torn
                    log.warning(
                        "journal_torn_tail_ignored",
                        path=path,
                        offset=torn.offset,
                        ignored_bytes=torn.size,
                        reason=torn.reason,
                    )
            else:
                self._prepare_appending(scan)
            self._ordering = scan.last_ordering
            self._lock_fd = lock_fd
        except BaseException:
            if lock_fd >= 0:
                os.close(lock_fd)  # closing releases the flock
            self._ids.clear()
            self._tags.clear()
            raise

    def _index_records(self, scan: JournalScan) -> None:
        """Index every record of the journal, applying deletions in order."""
        ids = self._ids
        for number, offset, size, value in scan.records():
            position = (number << _OFFSET_BITS) | offset
            if value[0] == KIND_EVENTS:
                _, first_ordering, persistence_id, events = value
                index = ids.get(persistence_id)
                if index is None:
                    index = ids[persistence_id] = _IdIndex()
                index.add(events[0][0], events[-1][0], position, size)
                if len(events) == 1:
                    if events[0][5]:
                        self._index_tags((events[0][5],), first_ordering, position, size)
                else:
                    tags = [event[5] for event in events]
                    if any(tags):
                        self._index_tags(tags, first_ordering, position, size)
            else:
                _, persistence_id, to_sequence_nr = value
                index = ids.get(persistence_id)
                if index is not None:
                    index.delete_to(to_sequence_nr)

    def _prepare_appending(self, scan: JournalScan) -> None:
        """Drop a torn tail and open the last segment for appending (or create the first)."""
        if not scan.segments:
            self._create_segment(1)
            return
        number, path = scan.segments[-1]
        valid_end = scan.last_valid_end
        if scan.torn is not None:
            self._truncate_torn_tail(path, scan.torn[1].offset, scan.torn[1].reason)
            valid_end = max(scan.torn[1].offset, SEGMENT_HEADER_SIZE)
        with _os_errors("open for appending the journal segment", path):
            self._write_fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._segment_number = number
        self._segment_bytes = valid_end

    def _lock_directory(self) -> int:
        """Create the directory if need be and lock it; the locked ``LOCK`` file descriptor."""
        directory = self._directory
        if not os.path.isdir(directory):
            with _os_errors("create the journal directory", directory):
                os.makedirs(directory, exist_ok=True)
                _sync_directory(os.path.dirname(os.path.abspath(directory)))
        lock_path = os.path.join(directory, LOCK_FILE_NAME)
        with _os_errors("open the journal's lock file", lock_path):
            lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise JournalError(
                f"the file journal at {directory!r} is in use by another process "
                "(or by another FileJournal of this one); close that one first, or open this one "
                "with read_only=True to only read"
            ) from None
        except OSError as exc:
            os.close(lock_fd)
            raise os_error("lock the journal's lock file", lock_path, exc) from exc
        return lock_fd

    def _truncate_torn_tail(self, path: str, offset: int, reason: str) -> None:
        with _os_errors("truncate the torn tail of the journal segment", path):
            size = os.path.getsize(path)
            log.warning(
                "journal_torn_tail_truncated",
                path=path,
                offset=offset,
                dropped_bytes=size - offset,
                reason=reason,
            )
            fd = os.open(path, os.O_WRONLY)
            try:
                if offset < SEGMENT_HEADER_SIZE:  # the crash hit while the segment was created
                    os.ftruncate(fd, 0)
                    os.write(fd, SEGMENT_HEADER)
                else:
                    os.ftruncate(fd, offset)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _create_segment(self, number: int) -> None:
        path = os.path.join(self._directory, segment_name(number))
        with _os_errors("create the journal segment", path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            try:
                os.write(fd, SEGMENT_HEADER)
                os.fsync(fd)
                _sync_directory(self._directory)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(path)
                raise
        if self._write_fd >= 0:
            os.close(self._write_fd)
        self._write_fd = fd
        self._segment_number = number
        self._segment_bytes = SEGMENT_HEADER_SIZE

    def _roll(self) -> None:
        """Seal the current segment (synced in every mode: only the last one may be torn) and
        continue in a new one; on failure the current one stays in use."""
        self._sync_current()
        self._create_segment(self._segment_number + 1)

    async def close(self) -> None:
        """Finish pending writes, sync, and release the files; later calls raise
        :class:`~persistence.JournalClosedError`."""
        if self._closed:
            return
        self._closed = True
        opening, self._opening = self._opening, None
        if opening is not None:  # an open still running, or not yet taken over by a caller
            with contextlib.suppress(Exception):
                await opening
            if not opening.cancelled() and opening.exception() is None:
                self._opened = True
        if not self._opened:
            return
        await self._committer.drain()
        if self._syncer is not None:
            self._syncer_stopping = True
            self._syncer_wakeup.set()
            await self._syncer
            self._syncer = None
        async with self._write_lock:
            await asyncio.to_thread(self._release)

    def _release(self) -> None:
        try:
            if self._write_fd >= 0 and self._failed is None:
                path = self._segment_path(self._segment_number)
                with _os_errors("sync on close the journal segment", path):
                    _sync(self._write_fd)
        finally:
            for fd in (self._write_fd, self._lock_fd, *self._read_fds.values()):
                if fd >= 0:
                    os.close(fd)
            self._write_fd = self._lock_fd = -1
            self._read_fds.clear()

    # -- writing -------------------------------------------------------------------------

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        """Store each atomic write unless it is malformed or one of its numbers is taken."""
        if self._closed or not self._opened:
            await self._ensure_open("write")
        if not writes:
            return []
        return await self._committer.submit(writes)

    def _unwritable(self, operation: str) -> JournalError:
        """Why the journal has no segment to append to: it is read-only, or closed."""
        if self._read_only and not self._closed:
            return JournalError(
                f"cannot {operation}: the file journal at {self._directory!r} is open read-only; "
                "open it without read_only=True to change it"
            )
        return self._closed_error(operation)

    async def _flush(self, writes: list[AtomicWrite]) -> WriteResults:
        """Validate, encode and append a group-committed batch as one write (and one sync)."""
        async with self._write_lock:
            if self._write_fd < 0:
                raise self._unwritable("write")
            self._check_not_failed()
            results, pieces, accepted = self._encode_batch(writes)
            if accepted:
                self._index_batch(accepted, await self._append(b"".join(pieces)))
            return results

    def _encode_batch(
        self, writes: list[AtomicWrite]
    ) -> tuple[WriteResults, list[bytes], list[_Accepted]]:
        """Per write ``None`` or its rejection; the framed records; where each accepted one is."""
        results: WriteResults = [None] * len(writes)
        pieces: list[bytes] = []
        accepted: list[_Accepted] = []
        in_batch: dict[str, list[tuple[int, int]]] = {}
        ordering = self._ordering + 1
        offset = 0
        crc32 = _crc32
        pack_length_and_crc = _LENGTH_AND_BODY_CRC.pack
        pack_crc = _U32.pack
        ids = self._ids
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
                index = ids.get(persistence_id)
                if (
                    (index is not None and lo <= index.highest)
                    or persistence_id in in_batch
                    or type(persistence_id) is not str
                    or hi > MAX_SEQUENCE_NR
                ):
                    error = self._conflict(persistence_id, lo, hi, in_batch)
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
        self, persistence_id: str, lo: int, hi: int, in_batch: dict[str, list[tuple[int, int]]]
    ) -> JournalError | None:
        """Why an atomic write of ``[lo, hi]`` cannot be stored next to what is stored and
        earlier in the batch."""
        if type(persistence_id) is not str or hi > MAX_SEQUENCE_NR:
            return JournalError(
                f"invalid atomic write, persistence_id={persistence_id!r}: the persistence id "
                f"must be a str and sequence numbers at most {MAX_SEQUENCE_NR}"
            )
        index = self._ids.get(persistence_id)
        if index is not None and lo <= index.highest:
            taken = index.first_stored_in(lo, hi)
            if taken is not None:
                return SequenceNrConflictError(persistence_id, taken)
        earlier = in_batch.get(persistence_id)
        if earlier is not None:
            taken = _first_taken(earlier, lo, hi)
            if taken is not None:
                return SequenceNrConflictError(persistence_id, taken)
        return None

    def _check_not_failed(self) -> None:
        if self._failed is not None:
            raise JournalError(
                f"the file journal at {self._directory!r} failed earlier and accepts no more "
                f"writes: {self._failed}; close and reopen it"
            )

    def _index_batch(self, accepted: list[_Accepted], start: int) -> None:
        """Add records appended at ``start`` to the indexes; their orderings follow on."""
        ids = self._ids
        ordering = self._ordering + 1
        for persistence_id, lo, hi, offset, size, tags in accepted:
            index = ids.get(persistence_id)
            if index is None:
                index = ids[persistence_id] = _IdIndex()
            entries = index.entries
            if entries and lo <= entries[-3]:
                index.add(lo, hi, start + offset, size)
            else:  # appending in sequence order: the common case, inlined
                entries.extend((lo, hi, start + offset, size))
                index.highest = max(index.highest, hi)
            if tags is not None:
                self._index_tags(tags, ordering, start + offset, size)
            ordering += hi - lo + 1
        self._ordering = ordering - 1

    def _index_tags(
        self, tags: Sequence[Sequence[str]], first_ordering: int, position: int, size: int
    ) -> None:
        highest_tagged: dict[str, int] = {}
        for event_ordering, event_tags in enumerate(tags, first_ordering):
            for tag in event_tags:
                highest_tagged[tag] = event_ordering
        for tag, tagged_ordering in highest_tagged.items():
            entries = self._tags.get(tag)
            if entries is None:
                entries = self._tags[tag] = array("q")
            entries.extend((tagged_ordering, position, size))

    async def _append(self, buffer: bytes) -> int:
        """Append ``buffer`` (whole records) durably per the fsync mode; its position."""
        if (
            self._segment_bytes + len(buffer) > self._segment_size
            and self._segment_bytes > SEGMENT_HEADER_SIZE
        ):
            await asyncio.to_thread(self._roll)
        if self._fsync == "always":
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
        fd = self._write_fd
        before = self._segment_bytes
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
                self._failed = truncate_exc
            raise JournalError(
                f"cannot append to {self._segment_path(self._segment_number)!r}: {exc}"
            ) from exc
        self._segment_bytes = before + len(buffer)
        if sync:
            self._sync_current()
        return (self._segment_number << _OFFSET_BITS) | before

    def _sync_current(self) -> None:
        try:
            _sync(self._write_fd)
        except OSError as exc:
            # after a failed fsync the page cache may have dropped the data: stop writing
            self._failed = exc
            raise JournalError(
                f"cannot sync {self._segment_path(self._segment_number)!r}: {exc}"
            ) from exc

    async def _sync_in_batches(self) -> None:
        """``fsync="batch"``: sync at most every few milliseconds while writes come in."""
        while not self._syncer_stopping:
            await self._syncer_wakeup.wait()
            self._syncer_wakeup.clear()
            if self._syncer_stopping:
                return
            await asyncio.sleep(_BATCH_SYNC_INTERVAL)
            async with self._write_lock:
                if not self._dirty or self._write_fd < 0 or self._failed is not None:
                    continue
                self._dirty = False
                fd = os.dup(self._write_fd)  # a roll may close the original meanwhile
            try:
                await asyncio.to_thread(_sync, fd)
            except OSError as exc:
                self._failed = exc
                log.error("journal_sync_failed", directory=self._directory, error=str(exc))
            finally:
                os.close(fd)

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        """Delete the stored events of the id up to and including ``to_sequence_nr``.

        Appends a deletion record (synced per the fsync mode); the highest sequence number is
        kept.
        """
        await self._ensure_open("delete events")
        await self._committer.drain()
        async with self._write_lock:
            if self._write_fd < 0:
                raise self._unwritable("delete events")
            self._check_not_failed()
            index = self._ids.get(persistence_id)
            if index is None or not index.deletes_something(to_sequence_nr):
                return
            await self._append(encode_deletion(persistence_id, to_sequence_nr))
            index.delete_to(to_sequence_nr)

    # -- reading -------------------------------------------------------------------------

    def _segment_path(self, number: int) -> str:
        return os.path.join(self._directory, segment_name(number))

    async def _read_records(
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
                            self._read_fd(position >> _OFFSET_BITS), size, position & _OFFSET_MASK
                        )
                    )
            except OSError as exc:
                raise self._read_failed(position, exc) from exc
        else:
            buffers = await asyncio.to_thread(self._read_by_path, runs)
        if self._closed:
            raise self._closed_error("read events")
        for (position, size, _), buffer in zip(runs, buffers, strict=True):
            if len(buffer) != size:
                raise JournalCorruptedError(
                    self._segment_path(position >> _OFFSET_BITS),
                    (position & _OFFSET_MASK) + len(buffer),
                    "the file ends inside a record",
                )
        return [(buffer, run[2]) for buffer, run in zip(buffers, runs, strict=True)]

    def _read_fd(self, segment: int) -> int:
        fd = self._read_fds.get(segment)
        if fd is None:
            fd = self._read_fds[segment] = os.open(self._segment_path(segment), os.O_RDONLY)
        return fd

    def _read_by_path(self, runs: list[tuple[int, int, int]]) -> list[bytes]:
        # own file descriptors: close() may close the cached ones while this thread reads
        buffers = []
        for position, size, _ in runs:
            try:
                fd = os.open(self._segment_path(position >> _OFFSET_BITS), os.O_RDONLY)
                try:
                    buffers.append(os.pread(fd, size, position & _OFFSET_MASK))
                finally:
                    os.close(fd)
            except OSError as exc:
                raise self._read_failed(position, exc) from exc
        return buffers

    def _read_failed(self, position: int, exc: OSError) -> JournalError:
        return os_error(
            "read the journal segment",
            self._segment_path(position >> _OFFSET_BITS),
            exc,
            offset=position & _OFFSET_MASK,
        )

    def _corrupted_on_read(self, position: int) -> JournalCorruptedError:
        return JournalCorruptedError(
            self._segment_path(position >> _OFFSET_BITS),
            position & _OFFSET_MASK,
            "record checksum mismatch on read",
        )

    def _misplaced(
        self, position: int, stored_id: str, persistence_id: str
    ) -> JournalCorruptedError:
        return JournalCorruptedError(
            self._segment_path(position >> _OFFSET_BITS),
            position & _OFFSET_MASK,
            f"index points at a record of {stored_id!r}, not {persistence_id!r}",
        )

    def _decode_single_events(
        self, persistence_id: str, buffer: bytes, positions: array[int]
    ) -> list[PersistentRecord]:
        """The common case, kept tight: adjacent records each holding one wanted event (the
        last of the record: deletion only ever cuts records from below)."""
        page: list[PersistentRecord] = []
        append = page.append
        unpack_header = _LENGTH_AND_BODY_CRC.unpack_from
        crc32 = _crc32
        unpackb = _unpackb
        new = _new_tuple
        record_type = PersistentRecord
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
            append(new(record_type, (persistence_id, *events[-1])))
        if offset != len(buffer):
            raise self._corrupted_on_read(positions[0])
        return page

    def _decode_replay_page(
        self,
        persistence_id: str,
        runs: list[tuple[bytes, int]],
        entries: array[int],
        low: int,
        high: int,
    ) -> list[PersistentRecord]:
        """The events of the records in ``runs`` (described by ``entries``) within bounds."""
        los = entries[0::4]
        if len(runs) == 1 and los[0] >= low and los[-1] <= high and los == entries[1::4]:
            return self._decode_single_events(persistence_id, runs[0][0], entries[2::4])
        page: list[PersistentRecord] = []
        append = page.append
        unpack_header = _LENGTH_AND_BODY_CRC.unpack_from
        crc32 = _crc32
        unpackb = _unpackb
        new = _new_tuple
        record_type = PersistentRecord
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
                for event in events:
                    append(new(record_type, (persistence_id, *event)))
                entry += 1
        return page

    async def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        """Yield the events of ``persistence_id`` within the inclusive bounds, in pages."""
        await self._ensure_open("replay")
        remaining = max_count
        low = from_sequence_nr
        while remaining > 0 and low <= to_sequence_nr:
            index = self._ids.get(persistence_id)
            if index is None:
                return
            entries = index.page(low, to_sequence_nr, min(remaining, _PAGE_SIZE))
            if not entries:
                return
            runs = await self._read_records(entries[2::4], entries[3::4])
            page = self._decode_replay_page(persistence_id, runs, entries, low, to_sequence_nr)
            if not page:
                return
            if len(page) > remaining:
                del page[remaining:]
            remaining -= len(page)
            low = page[-1].sequence_nr + 1
            yield page
            if self._closed:
                raise self._closed_error("replay")

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        """The highest sequence number ever stored for the id (0 if unknown)."""
        await self._ensure_open("read the highest sequence number")
        index = self._ids.get(persistence_id)
        return 0 if index is None else index.highest

    async def persistence_ids(self) -> list[str]:
        """Every id that has stored at least one event, in first-write order."""
        await self._ensure_open("list persistence ids")
        return list(self._ids)

    async def highest_ordering(self) -> int:
        """The ordering of the newest event ever stored (0 if none)."""
        await self._ensure_open("read the highest ordering")
        return self._ordering

    async def events_by_tag(
        self, tag: str, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Yield the events carrying ``tag`` with ``ordering > after_ordering``, in pages."""
        await self._ensure_open("query events by tag")
        remaining = max_count
        after = after_ordering
        while remaining > 0:
            entries = self._tags.get(tag)
            if entries is None:
                return
            low, high = 0, len(entries) // 3
            while low < high:  # the first record whose highest tagged ordering is > after
                mid = (low + high) >> 1
                if entries[mid * 3] <= after:
                    low = mid + 1
                else:
                    high = mid
            chunk = entries[low * 3 : (low + _PAGE_SIZE) * 3]
            if not chunk:
                return
            runs = await self._read_records(chunk[1::3], chunk[2::3])
            page: list[TaggedRecord] = []
            record = 0
            for buffer, count in runs:
                position = 0
                for _ in range(count):
                    length, body_crc = _LENGTH_AND_BODY_CRC.unpack_from(buffer, position)
                    start = position + RECORD_HEADER_SIZE
                    body = buffer[start : start + length]
                    file_position = chunk[record * 3 + 1]
                    if start + length - position != chunk[record * 3 + 2] or (
                        _crc32(body) != body_crc
                    ):
                        raise self._corrupted_on_read(file_position)
                    _, first_ordering, persistence_id, events = _unpackb(body, use_list=False)
                    index = self._ids[persistence_id]
                    for ordering, event in enumerate(events, first_ordering):
                        if (
                            ordering > after
                            and tag in event[5]
                            and index.is_live(event[0], file_position)
                        ):
                            tagged = _new_tuple(PersistentRecord, (persistence_id, *event))
                            page.append(TaggedRecord(ordering, tagged))
                    position = start + length
                    record += 1
            after = chunk[-3]
            if len(page) > remaining:
                del page[remaining:]
            if page:
                remaining -= len(page)
                yield page
                if self._closed:
                    raise self._closed_error("query events by tag")

    # -- all events (the read side's notification log) -----------------------------------

    def _all_events_index(self) -> _AllEventsIndex:
        index: _AllEventsIndex | None = vars(self).get("_all_events")
        if index is None:
            index = self._all_events = _AllEventsIndex()
        return index

    async def _all_events_entries(self) -> array[int]:
        """``(last ordering, position, size)`` of every events record written so far, scanning
        only what was appended since the last call (everything, on the first call)."""
        index = self._all_events_index()
        async with index.lock:
            async with self._write_lock:  # no write is then between appending and indexing
                end = (self._segment_number, self._segment_bytes)
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
                length, body_crc = _LENGTH_AND_BODY_CRC.unpack_from(data, position)
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
                            (segment << _OFFSET_BITS) | (offset + position),
                            RECORD_HEADER_SIZE + length,
                        )
                    )
                position = start + length
            if segment == end_segment:
                break
            segment, offset = segment + 1, SEGMENT_HEADER_SIZE
        return found

    async def all_events(
        self, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Yield every stored event with ``ordering > after_ordering``, in pages.

        The first call scans the segments once for where each record is (the open scan keeps
        only per-id and per-tag positions); later calls scan only what was appended since.
        """
        await self._ensure_open("query all events")
        remaining = max_count
        after = after_ordering
        while remaining > 0:
            entries = await self._all_events_entries()
            if self._closed:
                raise self._closed_error("query all events")
            low, high = 0, len(entries) // 3
            while low < high:  # the first record whose last ordering is > after
                mid = (low + high) >> 1
                if entries[mid * 3] <= after:
                    low = mid + 1
                else:
                    high = mid
            chunk = entries[low * 3 : (low + _PAGE_SIZE) * 3]
            if not chunk:
                return
            runs = await self._read_records(chunk[1::3], chunk[2::3])
            page: list[TaggedRecord] = []
            record = 0
            for buffer, count in runs:
                position = 0
                for _ in range(count):
                    length, body_crc = _LENGTH_AND_BODY_CRC.unpack_from(buffer, position)
                    start = position + RECORD_HEADER_SIZE
                    body = buffer[start : start + length]
                    file_position = chunk[record * 3 + 1]
                    if _crc32(body) != body_crc or len(body) != length:
                        raise self._corrupted_on_read(file_position)
                    _, first_ordering, persistence_id, events = _unpackb(body, use_list=False)
                    index = self._ids[persistence_id]
                    for ordering, event in enumerate(events, first_ordering):
                        if ordering > after and index.is_live(event[0], file_position):
                            stored = _new_tuple(PersistentRecord, (persistence_id, *event))
                            page.append(TaggedRecord(ordering, stored))
                    position = start + length
                    record += 1
            after = chunk[-3]
            if len(page) > remaining:
                del page[remaining:]
            if page:
                remaining -= len(page)
                yield page
                if self._closed:
                    raise self._closed_error("query all events")


class _AllEventsIndex:
    """Where :meth:`FileJournal.all_events` finds each events record: built on the first query,
    extended by later ones up to the end of what was written."""

    __slots__ = ("entries", "lock", "offset", "segment")

    def __init__(self) -> None:
        self.entries = array("q")  # (last ordering, position, size) per events record
        self.segment = 1
        self.offset = SEGMENT_HEADER_SIZE
        self.lock = asyncio.Lock()
