"""FileJournal, an append-only file journal: its lifecycle (opened on first use, closed once)
and the journal API, over parts that each own one concern:

- :mod:`~persistence.journal._file_format`: the files on disk, and the scan that checks them;
- :mod:`~persistence.journal._file_index`: where each id's and each tag's events are (in memory);
- :mod:`~persistence.journal._file_recovery`: opening: the lock, the scan into the index, the torn
  tail;
- :mod:`~persistence.journal._file_writer`: encoding a batch of writes into records, appending
  them to segments (synced appends on the writer's own thread), rolling segments, the fsync
  modes;
- :mod:`~persistence.journal._file_reader`: reading records by position, decoding replay and
  query pages, the index of all events.

The directory holds segment files of framed, checksummed records (the format and the recovery
rules are in :mod:`persistence.journal._file_format`). One atomic write is one record, so a crash
never leaves half of one. Opening scans every segment once to build an index per persistence id
(sequence number ranges and file positions, in flat ``array('q')`` buffers: about 32 bytes per
record), so replaying one id reads only that id's records, page by page.

Durability (``fsync``):

- ``"always"``: ``write`` returns after the data is written and ``fdatasync``-ed (on the
  journal's writer thread). Concurrent writes share one write and one sync (group commit).
  Survives a process kill and a power loss.
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
import os
import warnings
import weakref
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Final

from persistence._errors import JournalClosedError, JournalError
from persistence.journal._file_format import encode_deletion
from persistence.journal._file_index import OFFSET_MASK, JournalIndex
from persistence.journal._file_reader import (
    PAGE_SIZE,
    SegmentReader,
    StoredEvent,
    records_after,
)
from persistence.journal._file_recovery import recover
from persistence.journal._file_writer import EncodedBatch, FsyncMode, SegmentWriter, encode_batch
from persistence.journal._group_commit import WriteResults
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    PersistentRecord,
    TaggedRecord,
)

__all__ = ["FileJournal", "FsyncMode"]

_MIN_SEGMENT_SIZE: Final = 256
_MAX_BATCH: Final = 10_000  # atomic writes per flush, unless one call brings more


def _recover(journal_ref: weakref.ref[FileJournal]) -> None:
    # Holds the journal only while it runs: the executor keeps its arguments a little longer,
    # and an unclosed journal must still be collectable (and warn) right after opening.
    journal = journal_ref()
    if journal is not None:
        journal._recover()


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
        if not _MIN_SEGMENT_SIZE <= segment_size <= OFFSET_MASK:
            raise ValueError(
                f"segment_size must be between {_MIN_SEGMENT_SIZE} and {OFFSET_MASK} bytes, "
                f"not {segment_size}"
            )
        self._directory = os.fspath(directory)
        self._read_only = read_only
        self._opening: asyncio.Future[None] | None = None  # the open in progress, shared
        # group commit: the writes of every waiting write() call, flushed together
        self._pending: list[AtomicWrite] = []
        self._waiters: list[asyncio.Future[WriteResults]] = []  # one per call, in order
        self._counts: list[int] = []  # how many of the pending writes each call brought
        self._flush_scheduled = False
        self._appending = False  # an append (a flush or a deletion) is in flight
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._opened = False
        self._closed = False
        self._lock_fd = -1  # set while open (read-write)
        self._index = JournalIndex()
        self._writer = SegmentWriter(self._directory, fsync, segment_size)
        self._reader = SegmentReader(self._directory, self._index)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._opened else "not opened"
        mode = "read-only" if self._read_only else f"fsync={self._writer.fsync!r}"
        return f"<FileJournal {self._directory!r} {mode} {state}>"

    def __del__(self) -> None:
        if getattr(self, "_opened", False) and not self._closed:
            warnings.warn(
                f"unclosed {self!r}: call 'await journal.close()'", ResourceWarning, stacklevel=1
            )
            self._writer.stop_thread()
            for fd in (self._writer.fd, self._lock_fd, *self._reader.fds.values()):
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
            if not self._read_only:
                self._writer.start()

    def _recover(self) -> None:
        """Open the directory (on a worker thread): lock, scan, index, prepare appending."""
        self._lock_fd = recover(self._directory, self._read_only, self._index, self._writer)

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
        await self._drain()
        await self._writer.stop_syncer()
        async with self._writer.lock:
            await self._drain()  # the append of a deletion that began first, even if cancelled
            await asyncio.to_thread(self._release)

    def _release(self) -> None:
        try:
            self._writer.release()
        finally:
            self._reader.release()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
            self._lock_fd = -1

    # -- writing -------------------------------------------------------------------------
    #
    # Group commit: write() queues its writes and a Future; a flush (a loop callback, so that
    # every caller of one loop turn joins it) encodes everything queued, hands it to the writer
    # as one append, and when that is done indexes it and resolves the Futures in one pass.
    # Writes queued meanwhile make the next flush. One append (a flush or a deletion) at a time.

    async def write(self, writes: Sequence[AtomicWrite]) -> list[BaseException | None]:
        """Store each atomic write unless it is malformed or one of its numbers is taken."""
        if self._closed or not self._opened:
            await self._ensure_open("write")
        if not writes:
            return []
        loop = asyncio.get_running_loop()
        # one Future per call, not one shared by the flush: a caller cancelled while waiting
        # cancels only its own wait (its writes are stored all the same)
        future: asyncio.Future[WriteResults] = loop.create_future()
        self._pending += writes
        self._waiters.append(future)
        self._counts.append(len(writes))
        if not (self._flush_scheduled or self._appending):
            # on the next turn: the writes of every caller running in this one join the flush
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _unwritable(self, operation: str) -> JournalError:
        """Why the journal has no segment to append to: it is read-only, or closed."""
        if self._read_only and not self._closed:
            return JournalError(
                f"cannot {operation}: the file journal at {self._directory!r} is open read-only; "
                "open it without read_only=True to change it"
            )
        return self._closed_error(operation)

    def _take_batch(
        self,
    ) -> tuple[list[AtomicWrite], list[asyncio.Future[WriteResults]], list[int]]:
        """The pending writes of the next flush (whole calls, up to about ``_MAX_BATCH``
        writes), their waiters, and how many writes each waiter brought."""
        writes, waiters, counts = self._pending, self._waiters, self._counts
        if len(writes) <= _MAX_BATCH:
            self._pending, self._waiters, self._counts = [], [], []
            return writes, waiters, counts
        calls = taken = 0
        while taken < _MAX_BATCH:
            taken += counts[calls]
            calls += 1
        self._pending, self._waiters, self._counts = writes[taken:], waiters[calls:], counts[calls:]
        return writes[:taken], waiters[:calls], counts[:calls]

    def _flush(self) -> None:
        """Validate and encode the pending writes and start appending them as one write (and
        one sync). Runs as a loop callback; :meth:`_appended` finishes it."""
        self._flush_scheduled = False
        if self._appending or not self._pending:
            return
        writes, waiters, counts = self._take_batch()
        writer = self._writer
        try:
            if writer.fd < 0:
                raise self._unwritable("write")
            writer.check_not_failed()
            batch = encode_batch(writes, self._index)
        except BaseException as exc:  # the whole batch failed: every caller learns why
            _fail(waiters, exc)
            self._after_append()
            if not isinstance(exc, Exception):
                raise
            return
        if not batch.records:  # every write rejected: nothing to append
            _resolve(waiters, counts, batch.results)
            self._after_append()
            return
        self._appending = True
        writer.append(batch.buffer, partial(self._appended, batch, waiters, counts))

    def _appended(
        self,
        batch: EncodedBatch,
        waiters: list[asyncio.Future[WriteResults]],
        counts: list[int],
        position: int,
        error: BaseException | None,
    ) -> None:
        """The flush's append is done (written and synced per the fsync mode, or failed)."""
        self._appending = False
        try:
            if error is None:
                self._index.add_batch(batch.records, batch.tagged, batch.last_ordering, position)
                _resolve(waiters, counts, batch.results)
            else:
                _fail(waiters, error)
        except Exception as exc:  # the writers learn it: nobody may wait forever
            _fail(waiters, exc)
        finally:
            self._after_append()

    def _after_append(self) -> None:
        """Start the next flush if writes came in meanwhile; wake whoever waits for quiet."""
        if self._pending and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        if self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _drain(self) -> None:
        """Wait until every write submitted so far is stored (or rejected) and no append is
        in flight."""
        while self._pending or self._appending:
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter

    async def delete_to(self, persistence_id: str, to_sequence_nr: int) -> None:
        """Delete the stored events of the id up to and including ``to_sequence_nr``.

        Appends a deletion record (synced per the fsync mode); the highest sequence number is
        kept.
        """
        await self._ensure_open("delete events")
        await self._drain()  # the writes submitted before it are stored before it
        writer = self._writer
        async with writer.lock:  # one deletion at a time; closing waits for it
            while self._appending:  # a flush started meanwhile
                await self._drain()
            if writer.fd < 0:
                raise self._unwritable("delete events")
            writer.check_not_failed()
            index = self._index.ids.get(persistence_id)
            if index is None or not index.deletes_something(to_sequence_nr):
                return
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def deleted(position: int, error: BaseException | None) -> None:
                # applied here, not after the await: a cancelled caller leaves the index right
                self._appending = False
                if error is None:
                    try:
                        index.delete_to(to_sequence_nr)
                    except Exception as exc:  # the caller learns it: nobody may wait forever
                        error = exc
                if not done.done():
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)
                self._after_append()

            self._appending = True
            writer.append(encode_deletion(persistence_id, to_sequence_nr), deleted)
            await done

    # -- reading -------------------------------------------------------------------------

    async def replay(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[PersistentRecord]]:
        """Yield the events of ``persistence_id`` within the inclusive bounds, in pages."""
        new = tuple.__new__
        async for rows in self.replay_rows(
            persistence_id, from_sequence_nr, to_sequence_nr, max_count
        ):
            yield [new(PersistentRecord, (persistence_id, *row)) for row in rows]

    async def replay_rows(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int = MAX_SEQUENCE_NR,
        max_count: int = MAX_SEQUENCE_NR,
    ) -> AsyncIterator[list[StoredEvent]]:
        """:meth:`replay` as rows: each event as stored, ``(sequence_nr, manifest, payload,
        writer_id, timestamp, tags)`` (what recovery reads, with no record built per event)."""
        await self._ensure_open("replay")
        remaining = max_count
        low = from_sequence_nr
        while remaining > 0 and low <= to_sequence_nr:
            index = self._index.ids.get(persistence_id)
            if index is None:
                return
            entries = index.page(low, to_sequence_nr, min(remaining, PAGE_SIZE))
            if not entries:
                return
            runs = await self._reader.read_records(entries[2::4], entries[3::4])
            if self._closed:  # closed while a worker thread read
                raise self._closed_error("read events")
            page = self._reader.decode_replay_page(
                persistence_id, runs, entries, low, to_sequence_nr
            )
            if not page:
                return
            if len(page) > remaining:
                del page[remaining:]
            remaining -= len(page)
            low = page[-1][0] + 1
            yield page
            if self._closed:
                raise self._closed_error("replay")

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        """The highest sequence number ever stored for the id (0 if unknown)."""
        await self._ensure_open("read the highest sequence number")
        index = self._index.ids.get(persistence_id)
        return 0 if index is None else index.highest

    async def persistence_ids(self) -> list[str]:
        """Every id that has stored at least one event, in first-write order."""
        await self._ensure_open("list persistence ids")
        return list(self._index.ids)

    async def highest_ordering(self) -> int:
        """The ordering of the newest event ever stored (0 if none)."""
        await self._ensure_open("read the highest ordering")
        return self._index.ordering

    def events_by_tag(
        self, tag: str, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Yield the events carrying ``tag`` with ``ordering > after_ordering``, in pages."""
        return self._pages_by_ordering("query events by tag", tag, after_ordering, max_count)

    def all_events(
        self, after_ordering: int = 0, max_count: int = MAX_SEQUENCE_NR
    ) -> AsyncIterator[list[TaggedRecord]]:
        """Yield every stored event with ``ordering > after_ordering``, in pages.

        The first call scans the segments once for where each record is (the open scan keeps
        only per-id and per-tag positions); later calls scan only what was appended since.
        """
        return self._pages_by_ordering("query all events", None, after_ordering, max_count)

    async def _pages_by_ordering(
        self, operation: str, tag: str | None, after_ordering: int, max_count: int
    ) -> AsyncIterator[list[TaggedRecord]]:
        """The pages of :meth:`events_by_tag` (``tag`` given) or :meth:`all_events` (``None``)."""
        await self._ensure_open(operation)
        remaining = max_count
        after = after_ordering
        while remaining > 0:
            if tag is None:
                entries = await self._reader.all_events_entries(self._writer)
                if self._closed:
                    raise self._closed_error(operation)
            else:
                tagged = self._index.tags.get(tag)
                if tagged is None:
                    return
                entries = tagged
            chunk = records_after(entries, after)
            if not chunk:
                return
            runs = await self._reader.read_records(chunk[1::3], chunk[2::3])
            if self._closed:  # closed while a worker thread read
                raise self._closed_error("read events")
            page = self._reader.decode_ordered(runs, chunk, after, tag)
            after = chunk[-3]
            if len(page) > remaining:
                del page[remaining:]
            if page:
                remaining -= len(page)
                yield page
                if self._closed:
                    raise self._closed_error(operation)


def _resolve(
    waiters: list[asyncio.Future[WriteResults]], counts: list[int], results: WriteResults
) -> None:
    """Give each waiter the results of the writes it brought (in one pass)."""
    if len(waiters) == 1:
        if not waiters[0].done():
            waiters[0].set_result(results)
        return
    start = 0
    for waiter, count in zip(waiters, counts, strict=True):
        end = start + count
        if not waiter.done():
            waiter.set_result(results[start:end])
        start = end


def _fail(waiters: list[asyncio.Future[WriteResults]], error: BaseException) -> None:
    """Fail every waiter with ``error`` (cancel them if it is not an ``Exception``)."""
    for waiter in waiters:
        if not waiter.done():
            if isinstance(error, Exception):
                waiter.set_exception(error)
            else:
                waiter.cancel()
