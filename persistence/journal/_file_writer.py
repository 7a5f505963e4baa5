"""The file journal's writing side: encoding a batch of atomic writes into records, appending
them to the current segment file, rolling to a new segment, and syncing per the fsync mode.

The journal group-commits concurrent writes and hands the writer one buffer at a time. Appends
that sync (``fsync="always"``), roll to a new segment or are big run on the writer's own thread,
which reports back to the event loop with ``call_soon_threadsafe``: no executor, no Future per
append. Small unsynced appends (``"batch"``, ``"never"``) are written on the loop thread at once.
Everything the loop reads (``fd``, ``segment_number``, ``segment_bytes``) changes on the loop
thread only, once an append is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

import msgpack

from persistence._errors import JournalError, SequenceNrConflictError
from persistence._fsync import sync_directory
from persistence._logging import get_logger
from persistence.journal._file_format import (
    KIND_EVENTS,
    LENGTH_AND_BODY_CRC,
    RECORD_HEADER,
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER,
    SEGMENT_HEADER_SIZE,
    os_errors,
    segment_path,
)
from persistence.journal._file_index import OFFSET_BITS, IdIndex, JournalIndex, TaggedWrite
from persistence.journal._group_commit import WriteResults
from persistence.journal._protocol import AtomicWrite
from persistence.journal._validation import check_atomic_write

log = get_logger("persistence.journal")

FsyncMode = Literal["always", "batch", "never"]

Appended = Callable[[int, "BaseException | None"], None]
"""Called on the event loop when an append is done: its position, and its error if it failed."""

_BATCH_SYNC_INTERVAL: Final = 0.010
_INLINE_WRITE_LIMIT: Final = 1024 * 1024  # bigger un-synced writes go to the writer thread
_crc32: Final = zlib.crc32
_PACK_ERRORS: Final = (TypeError, ValueError, OverflowError, BufferError)


def _sync(fd: int) -> None:
    getattr(os, "fdatasync", os.fsync)(fd)


class EncodedBatch:
    """A batch of atomic writes encoded for one append.

    ``results`` holds per write ``None`` or the error rejecting it; ``buffer`` the framed records
    of the others, in order; ``records`` four items per stored record (persistence id, lowest and
    highest sequence number, size in bytes); ``tagged`` the tagged ones, if any; ``last_ordering``
    the ordering of the batch's last event (the index's ordering if nothing is stored).
    """

    __slots__ = ("buffer", "last_ordering", "records", "results", "tagged")

    def __init__(
        self,
        results: WriteResults,
        buffer: bytes,
        records: list[Any],
        tagged: list[TaggedWrite] | None,
        last_ordering: int,
    ) -> None:
        self.results = results
        self.buffer = buffer
        self.records = records
        self.tagged = tagged
        self.last_ordering = last_ordering


def encode_batch(writes: Sequence[AtomicWrite], index: JournalIndex) -> EncodedBatch:
    """Check each write (well formed, its numbers free in ``index`` and earlier in the batch)
    and frame the accepted ones, numbering their events from the index's next ordering."""
    results: WriteResults = [None] * len(writes)
    pieces: list[bytes] = []
    records: list[Any] = []
    tagged: list[TaggedWrite] | None = None
    in_batch: dict[str, int] = {}  # per id, the highest number stored earlier in the batch
    ordering = index.ordering + 1
    offset = 0
    # One packer for the batch, and no type checks of our own: check_atomic_write has refused
    # every value msgpack could not encode, and msgpack itself refuses anything else.
    pack = msgpack.Packer().pack
    crc32 = _crc32
    pack_length_and_crc = LENGTH_AND_BODY_CRC.pack
    pack_header = RECORD_HEADER.pack
    ids = index.ids
    for position, write in enumerate(writes):
        error = check_atomic_write(write)
        if error is not None or write.owner_epoch is not None:
            results[position] = error or _no_owner_epochs(write)
            continue
        events = write.records
        first = events[0]
        persistence_id, lo, _, _, _, _, tags = first
        hi = lo + len(events) - 1  # checked: consecutive numbers
        stored = ids.get(persistence_id)
        earlier = in_batch.get(persistence_id)
        if (stored is not None and lo <= stored.highest) or (earlier is not None and lo <= earlier):
            conflict = _conflict(stored, persistence_id, lo, hi, records)
            if conflict is not None:
                results[position] = conflict
                continue
        try:  # an event is its record without the persistence id (the grammar's ``event``)
            if hi == lo:
                body: bytes = pack((KIND_EVENTS, ordering, persistence_id, (first[1:],)))
            else:
                body = pack((KIND_EVENTS, ordering, persistence_id, [e[1:] for e in events]))
        except _PACK_ERRORS as exc:
            results[position] = JournalError(
                f"invalid atomic write, persistence_id={persistence_id!r}: cannot encode it: {exc}"
            )
            continue
        length = len(body)
        body_crc = crc32(body)
        header_crc = crc32(pack_length_and_crc(length, body_crc))
        pieces += (pack_header(length, body_crc, header_crc), body)
        size = RECORD_HEADER_SIZE + length
        records += (persistence_id, lo, hi, size)
        if tags or (hi > lo and any(event.tags for event in events)):
            if tagged is None:
                tagged = []
            tagged.append((offset, size, ordering, [event.tags for event in events]))
        if earlier is None or hi > earlier:
            in_batch[persistence_id] = hi
        offset += size
        ordering += hi - lo + 1
    return EncodedBatch(results, b"".join(pieces), records, tagged, ordering - 1)


def _no_owner_epochs(write: AtomicWrite) -> JournalError:
    return JournalError(
        f"cannot write persistence_id={write.persistence_id!r} with an owner epoch: "
        "the file journal does not support owner epochs; use the SQLite or "
        "PostgreSQL journal to fence owners"
    )


def _conflict(
    stored: IdIndex | None, persistence_id: str, lo: int, hi: int, records: list[Any]
) -> SequenceNrConflictError | None:
    """The error if a number of ``[lo, hi]`` is stored, or taken by a record earlier in the
    batch (``records`` as in :class:`EncodedBatch`)."""
    if stored is not None and lo <= stored.highest:
        taken = stored.first_stored_in(lo, hi)
        if taken is not None:
            return SequenceNrConflictError(persistence_id, taken)
    taken_in_batch = [
        max(lo, records[at + 1])
        for at in range(0, len(records), 4)
        if records[at] == persistence_id and records[at + 1] <= hi and lo <= records[at + 2]
    ]
    if taken_in_batch:
        return SequenceNrConflictError(persistence_id, min(taken_in_batch))
    return None


class _Append:
    """One append handed to the writer thread, and what became of it."""

    __slots__ = ("before", "buffer", "done", "error", "fd", "new_fd", "number", "roll", "sync")

    def __init__(
        self,
        buffer: bytes,
        fd: int,
        number: int,
        before: int,
        *,
        roll: bool,
        sync: bool,
        done: Appended,
    ) -> None:
        self.buffer = buffer
        self.fd = fd  # the current segment's
        self.number = number  # the segment appended to: the next one if ``roll``
        self.before = before
        self.roll = roll
        self.sync = sync
        self.done = done
        self.new_fd = -1
        self.error: BaseException | None = None


class SegmentWriter:
    """Appends records to the journal's current segment file and syncs them per ``fsync``.

    One append at a time (the journal waits for one to be done before it starts the next).
    ``lock`` serializes the background syncer, closing, and readers of where the appends end.
    Until the journal is opened (and forever, read-only) ``fd`` is ``-1``.
    """

    __slots__ = (
        "_dirty",
        "_jobs",
        "_syncer",
        "_syncer_stopping",
        "_syncer_wakeup",
        "_thread",
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
        self._jobs: queue.SimpleQueue[_Append | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def _new_segment(self, number: int) -> int:
        """Create segment ``number`` (header synced, directory entry synced); its descriptor."""
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
        return fd

    def create_segment(self, number: int) -> None:
        """Create segment ``number`` and append to it (while opening, before any append)."""
        self.fd = self._new_segment(number)
        self.segment_number = number
        self.segment_bytes = SEGMENT_HEADER_SIZE

    def open_segment(self, number: int, path: str, valid_end: int) -> None:
        """Append to the existing segment ``number`` at ``path``, whose records end at
        ``valid_end``."""
        with os_errors("open for appending the journal segment", path):
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.segment_number = number
        self.segment_bytes = valid_end

    def check_not_failed(self) -> None:
        """Refuse to write after a failure that may have lost acknowledged data."""
        if self.failed is not None:
            raise JournalError(
                f"the file journal at {self.directory!r} failed earlier and accepts no more "
                f"writes: {self.failed}; close and reopen it"
            )

    def append(self, buffer: bytes, done: Appended) -> None:
        """Append ``buffer`` (whole records) durably per the fsync mode, then call ``done`` on
        the event loop with its position (at once for a small unsynced append). The caller
        starts no other append before ``done``."""
        sync = self.fsync == "always"
        if (
            self.segment_bytes + len(buffer) > self.segment_size
            and self.segment_bytes > SEGMENT_HEADER_SIZE
        ):  # seal this segment and go on in a new one (on failure this one stays in use)
            number, before = self.segment_number + 1, SEGMENT_HEADER_SIZE
            self._hand_over(
                _Append(buffer, self.fd, number, before, roll=True, sync=sync, done=done)
            )
        elif sync or len(buffer) > _INLINE_WRITE_LIMIT:
            number, before = self.segment_number, self.segment_bytes
            self._hand_over(
                _Append(buffer, self.fd, number, before, roll=False, sync=sync, done=done)
            )
        else:
            before = self.segment_bytes
            position = (self.segment_number << OFFSET_BITS) | before
            try:
                self._write(self.fd, self.segment_number, buffer, before)
            except JournalError as exc:
                done(position, exc)
                return
            self._written(before + len(buffer), False)
            done(position, None)

    def _hand_over(self, job: _Append) -> None:
        """Give ``job`` to the writer thread (started on first use)."""
        if self._thread is None:
            self._start_thread()
        self._jobs.put(job)

    def _start_thread(self) -> None:
        # a daemon: a journal nobody closed must not keep the interpreter from exiting
        self._thread = threading.Thread(
            target=self._run_appends,
            args=(asyncio.get_running_loop(),),
            name="file-journal-writer",
            daemon=True,
        )
        self._thread.start()

    def _run_appends(self, loop: asyncio.AbstractEventLoop) -> None:
        """The writer thread: do each append handed over, and report it back to the loop."""
        jobs = self._jobs
        finish = self._finish
        while (job := jobs.get()) is not None:
            try:
                if job.roll:  # only the last segment may be torn: seal this one first
                    self._sync_segment(job.fd, job.number - 1)
                    job.new_fd = self._new_segment(job.number)
                    job.fd = job.new_fd
                self._write(job.fd, job.number, job.buffer, job.before)
                if job.sync:
                    self._sync_segment(job.fd, job.number)
            except BaseException as exc:  # reported to whoever waits for the append
                job.error = exc
            try:
                loop.call_soon_threadsafe(finish, job)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return

    def _finish(self, job: _Append) -> None:
        """An append done on the writer thread, back on the loop: take in where it went."""
        if job.new_fd >= 0:  # rolled: the new segment is in use even if the append failed
            with contextlib.suppress(OSError):  # the sealed segment was synced
                os.close(self.fd)
            self.fd = job.new_fd
            self.segment_number = job.number
            self.segment_bytes = SEGMENT_HEADER_SIZE
        if job.error is None:
            self._written(job.before + len(job.buffer), job.sync)
        job.done((job.number << OFFSET_BITS) | job.before, job.error)

    def _written(self, end: int, synced: bool) -> None:
        self.segment_bytes = end
        if not synced and self._syncer is not None:
            self._dirty = True
            self._syncer_wakeup.set()

    def _write(self, fd: int, number: int, buffer: bytes, before: int) -> None:
        """Append ``buffer`` to segment ``number`` (open as ``fd``, its records ending at
        ``before``)."""
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
                f"cannot append to {segment_path(self.directory, number)!r}: {exc}"
            ) from exc

    def _sync_segment(self, fd: int, number: int) -> None:
        try:
            _sync(fd)
        except OSError as exc:
            # after a failed fsync the page cache may have dropped the data: stop writing
            self.failed = exc
            raise JournalError(
                f"cannot sync {segment_path(self.directory, number)!r}: {exc}"
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

    def start(self) -> None:
        """Once opened: start the writer thread if every append syncs (``"always"``; otherwise
        on first need), or the background syncer (``"batch"``)."""
        if self.fsync == "always":
            self._start_thread()
        elif self.fsync == "batch":
            self._syncer = asyncio.get_running_loop().create_task(self._sync_in_batches())

    async def stop_syncer(self) -> None:
        """Stop the background syncer, if any, and wait for it."""
        if self._syncer is not None:
            self._syncer_stopping = True
            self._syncer_wakeup.set()
            await self._syncer
            self._syncer = None

    def stop_thread(self) -> None:
        """Let the writer thread end once it has done the appends handed over (no waiting)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    def release(self) -> None:
        """Stop the writer thread, sync the current segment (unless a failure stopped the
        writes) and close it. Blocks: called on a worker thread, with no append in flight."""
        thread = self._thread
        self.stop_thread()
        if thread is not None:
            thread.join()
        try:
            if self.fd >= 0 and self.failed is None:
                path = segment_path(self.directory, self.segment_number)
                with os_errors("sync on close the journal segment", path):
                    _sync(self.fd)
        finally:
            if self.fd >= 0:
                os.close(self.fd)
            self.fd = -1
