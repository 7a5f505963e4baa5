"""Opening a file journal's directory: the lock, the recovery scan into the index, and the torn
tail (truncated by a read-write open, left in place and logged by a read-only one).

The rules the scan applies (what is a torn tail, what is corruption) are in
:mod:`persistence.journal._file_format`. Everything here blocks: the journal runs it on a worker
thread.
"""

from __future__ import annotations

import fcntl
import os

from persistence._errors import JournalError
from persistence._fsync import sync_directory
from persistence._logging import get_logger
from persistence.journal._file_format import (
    LOCK_FILE_NAME,
    SEGMENT_HEADER,
    SEGMENT_HEADER_SIZE,
    JournalScan,
    os_error,
    os_errors,
)
from persistence.journal._file_index import JournalIndex
from persistence.journal._file_writer import SegmentWriter

log = get_logger("persistence.journal")


def recover(directory: str, read_only: bool, index: JournalIndex, writer: SegmentWriter) -> int:
    """Lock the directory, scan every segment into the index, drop a torn tail (read-only:
    just scan, and leave a torn tail alone); the locked ``LOCK`` file descriptor (-1 if
    read-only). On failure nothing stays locked and the index is empty."""
    if read_only:
        if not os.path.isdir(directory):
            raise JournalError(
                f"no file journal at {directory!r}: the directory does not exist (a "
                "read-only journal creates nothing)"
            )
        lock_fd = -1
    else:
        lock_fd = _lock_directory(directory)
    try:
        scan = JournalScan(directory)
        index.add_scanned(scan)
        if read_only:
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
            _prepare_appending(scan, writer)
    except BaseException:
        if lock_fd >= 0:
            os.close(lock_fd)  # closing releases the flock
        index.clear()
        raise
    return lock_fd


def _prepare_appending(scan: JournalScan, writer: SegmentWriter) -> None:
    """Drop a torn tail and open the last segment for appending (or create the first)."""
    if not scan.segments:
        writer.create_segment(1)
        return
    number, path = scan.segments[-1]
    valid_end = scan.last_valid_end
    if scan.torn is not None:
        _truncate_torn_tail(path, scan.torn[1].offset, scan.torn[1].reason)
        valid_end = max(scan.torn[1].offset, SEGMENT_HEADER_SIZE)
    writer.open_segment(number, path, valid_end)


def _lock_directory(directory: str) -> int:
    """Create the directory if need be and lock it; the locked ``LOCK`` file descriptor."""
    if not os.path.isdir(directory):
        with os_errors("create the journal directory", directory):
            os.makedirs(directory, exist_ok=True)
            sync_directory(os.path.dirname(os.path.abspath(directory)))
    lock_path = os.path.join(directory, LOCK_FILE_NAME)
    with os_errors("open the journal's lock file", lock_path):
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


def _truncate_torn_tail(path: str, offset: int, reason: str) -> None:
    with os_errors("truncate the torn tail of the journal segment", path):
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
