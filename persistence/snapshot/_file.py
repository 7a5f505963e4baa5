"""A snapshot store keeping one file per snapshot.

Layout and format::

    directory      := id_directory*
    id_directory   := escaped(persistence_id) "/" snapshot_file*
    snapshot_file  := decimal(sequence_nr) ".snap"
    contents       := "ASNP" version:u8 (= 1) reserved:u8[3] (= 0) timestamp:i64le
                      body_length:u32le body_crc:u32le header_crc:u32le body
        body_crc   =  crc32(body)
        header_crc =  crc32(the 24 bytes before it)
    body           := msgpack([persistence_id, sequence_nr, manifest, payload:bin])

``escaped`` keeps ``a-z``, ``0-9``, ``-`` and ``_`` and writes every other UTF-8 byte as ``%XX``
(upper-case hex), so names are safe on case-insensitive file systems too; a name longer than
200 bytes is cut and suffixed with ``~`` and a SHA-256 of the id. The body repeats the id, so a
file found under the wrong name is never returned for another id.

A save writes a temporary file in the id's directory, syncs it, renames it over
``<sequence_nr>.snap`` (so saving the same number again replaces it atomically) and syncs the
directory. A file that fails its checksums or is cut short is passed over (and logged) in favour
of the next older match.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import struct
import time
import warnings
import zlib
from typing import Any, Final

import msgpack

from persistence._errors import SnapshotStoreClosedError, SnapshotStoreError
from persistence._fsync import sync_directory
from persistence._logging import get_logger
from persistence.snapshot._protocol import (
    SnapshotMetadata,
    SnapshotSelectionCriteria,
    StoredSnapshot,
)
from persistence.snapshot._validation import check_persistence_id, check_snapshot

log = get_logger("persistence.snapshot")

MAGIC: Final = b"ASNP"
FORMAT_VERSION: Final = 1
_HEADER = struct.Struct("<4sB3xqII")  # magic, version, timestamp, body_length, body_crc
_HEADER_CRC = struct.Struct("<I")
HEADER_SIZE: Final = _HEADER.size + _HEADER_CRC.size
_SNAPSHOT_NAME = re.compile(r"^(\d+)\.snap$")
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
_MAX_NAME = 200


def escape_persistence_id(persistence_id: str) -> str:
    """The directory name for ``persistence_id`` (see the module docstring)."""
    escaped = "".join(
        chr(byte) if byte in _SAFE else f"%{byte:02X}" for byte in persistence_id.encode()
    )
    if len(escaped) > _MAX_NAME:
        digest = hashlib.sha256(persistence_id.encode()).hexdigest()
        escaped = f"{escaped[: _MAX_NAME - 65]}~{digest}"
    return escaped


def encode_snapshot(metadata: SnapshotMetadata, manifest: str, payload: bytes) -> bytes:
    """The contents of a snapshot file."""
    body: bytes = msgpack.packb([metadata.persistence_id, metadata.sequence_nr, manifest, payload])
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, metadata.timestamp, len(body), zlib.crc32(body))
    return header + _HEADER_CRC.pack(zlib.crc32(header)) + body


class _Unreadable(Exception):
    """A snapshot file that cannot be used; the message says why."""


def _read_header(file: Any) -> tuple[int, int, int]:
    """``(timestamp, body_length, body_crc)`` from an open snapshot file."""
    header = file.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        raise _Unreadable("file is shorter than its header")
    (header_crc,) = _HEADER_CRC.unpack_from(header, _HEADER.size)
    if zlib.crc32(header[: _HEADER.size]) != header_crc:
        raise _Unreadable("header checksum mismatch")
    magic, version, timestamp, body_length, body_crc = _HEADER.unpack_from(header)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise _Unreadable(f"not a snapshot file of format version {FORMAT_VERSION}")
    return timestamp, body_length, body_crc


class FileSnapshotStore:
    """A :class:`~persistence.snapshot.SnapshotStore` writing one file per snapshot under
    ``directory`` (created on first save). Nothing is touched until first use. Closing is final:
    after :meth:`close` (see :attr:`closed`) every call raises
    :class:`~persistence.SnapshotStoreClosedError`."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = os.fspath(directory)
        self._used = False
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<FileSnapshotStore {self._directory!r} {state}>"

    def __del__(self) -> None:
        if getattr(self, "_used", False) and not self._closed:
            warnings.warn(
                f"unclosed {self!r}: call 'await store.close()'", ResourceWarning, stacklevel=1
            )

    @property
    def directory(self) -> str:
        """The store's directory."""
        return self._directory

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every later call raises)."""
        return self._closed

    def _check_open(self, operation: str, persistence_id: str) -> str:
        """The directory of ``persistence_id``, once the store is known open and the id valid."""
        if self._closed:
            raise SnapshotStoreClosedError(
                f"cannot {operation}: the file snapshot store at {self._directory!r} is closed; "
                "create a new instance to use it again"
            )
        check_persistence_id(operation, persistence_id)
        self._used = True
        return os.path.join(self._directory, escape_persistence_id(persistence_id))

    async def save(
        self, metadata: SnapshotMetadata, manifest: str, payload: bytes
    ) -> SnapshotMetadata:
        """Store the snapshot durably (replacing one at the same sequence number)."""
        directory = self._check_open("save a snapshot", metadata.persistence_id)
        check_snapshot(metadata, manifest, payload)
        if metadata.timestamp == 0:
            metadata = SnapshotMetadata(
                metadata.persistence_id, metadata.sequence_nr, time.time_ns() // 1_000_000
            )
        contents = encode_snapshot(metadata, manifest, payload)
        try:
            await asyncio.to_thread(self._write, directory, metadata.sequence_nr, contents)
        except OSError as exc:
            raise SnapshotStoreError(
                f"cannot save a snapshot, persistence_id={metadata.persistence_id!r}, "
                f"sequence_nr={metadata.sequence_nr}: {exc}"
            ) from exc
        return metadata

    # The blocking helpers are static: a worker thread must not keep the store alive.

    @staticmethod
    def _write(directory: str, sequence_nr: int, contents: bytes) -> None:
        if not os.path.isdir(directory):
            root = os.path.dirname(directory)
            root_existed = os.path.isdir(root)
            os.makedirs(directory, exist_ok=True)
            sync_directory(root)
            if not root_existed:
                sync_directory(os.path.dirname(os.path.abspath(root)))
        final = os.path.join(directory, f"{sequence_nr}.snap")
        temporary = os.path.join(directory, f".{sequence_nr}.snap.{secrets.token_hex(8)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(contents)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(temporary)
            raise
        os.close(fd)
        os.replace(temporary, final)
        sync_directory(directory)

    async def load(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> StoredSnapshot | None:
        """The youngest readable snapshot matching ``criteria``, or ``None``."""
        directory = self._check_open("load a snapshot", persistence_id)
        try:
            return await asyncio.to_thread(self._load, directory, persistence_id, criteria)
        except OSError as exc:
            raise SnapshotStoreError(
                f"cannot load a snapshot, persistence_id={persistence_id!r}: {exc}"
            ) from exc

    @staticmethod
    def _load(
        directory: str, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> StoredSnapshot | None:
        for sequence_nr in FileSnapshotStore._candidates(directory, criteria):
            path = os.path.join(directory, f"{sequence_nr}.snap")
            try:
                snapshot = _read_snapshot(path, persistence_id, sequence_nr, criteria)
            except FileNotFoundError:  # deleted meanwhile
                continue
            except _Unreadable as exc:
                log.warning(
                    "snapshot_unreadable_skipped",
                    path=path,
                    persistence_id=persistence_id,
                    sequence_nr=sequence_nr,
                    reason=str(exc),
                )
                continue
            if snapshot is not None:
                return snapshot
        return None

    @staticmethod
    def _candidates(directory: str, criteria: SnapshotSelectionCriteria) -> list[int]:
        """Sequence numbers of the snapshot files within the bounds, youngest first."""
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        numbers = []
        for name in names:
            match = _SNAPSHOT_NAME.match(name)
            if match is not None:
                number = int(match.group(1))
                if criteria.min_sequence_nr <= number <= criteria.max_sequence_nr:
                    numbers.append(number)
        numbers.sort(reverse=True)
        return numbers

    async def delete(self, metadata: SnapshotMetadata) -> None:
        """Delete the snapshot at ``metadata.sequence_nr`` (nothing if there is none)."""
        directory = self._check_open("delete a snapshot", metadata.persistence_id)
        try:
            await asyncio.to_thread(self._delete, directory, [metadata.sequence_nr])
        except OSError as exc:
            raise SnapshotStoreError(
                f"cannot delete a snapshot, persistence_id={metadata.persistence_id!r}, "
                f"sequence_nr={metadata.sequence_nr}: {exc}"
            ) from exc

    async def delete_matching(
        self, persistence_id: str, criteria: SnapshotSelectionCriteria
    ) -> None:
        """Delete every snapshot of the id matching ``criteria`` (and unreadable files within
        its sequence number bounds)."""
        directory = self._check_open("delete snapshots", persistence_id)
        try:
            await asyncio.to_thread(self._delete_matching, directory, criteria)
        except OSError as exc:
            raise SnapshotStoreError(
                f"cannot delete snapshots, persistence_id={persistence_id!r}: {exc}"
            ) from exc

    @staticmethod
    def _delete_matching(directory: str, criteria: SnapshotSelectionCriteria) -> None:
        doomed = []
        for sequence_nr in FileSnapshotStore._candidates(directory, criteria):
            path = os.path.join(directory, f"{sequence_nr}.snap")
            try:
                with open(path, "rb") as file:
                    timestamp, _, _ = _read_header(file)
            except FileNotFoundError:
                continue
            except _Unreadable:
                doomed.append(sequence_nr)  # unusable anyway
                continue
            if criteria.min_timestamp <= timestamp <= criteria.max_timestamp:
                doomed.append(sequence_nr)
        FileSnapshotStore._delete(directory, doomed)

    @staticmethod
    def _delete(directory: str, sequence_nrs: list[int]) -> None:
        removed = False
        for sequence_nr in sequence_nrs:
            try:
                os.unlink(os.path.join(directory, f"{sequence_nr}.snap"))
            except FileNotFoundError:
                continue
            removed = True
        if removed:
            sync_directory(directory)

    async def close(self) -> None:
        """Mark the store closed; later calls raise
        :class:`~persistence.SnapshotStoreClosedError` (closing is final)."""
        self._closed = True


def _read_snapshot(
    path: str, persistence_id: str, sequence_nr: int, criteria: SnapshotSelectionCriteria
) -> StoredSnapshot | None:
    """The snapshot in ``path`` if its timestamp matches ``criteria``; ``_Unreadable`` if the
    file is damaged or belongs to another id."""
    with open(path, "rb") as file:
        timestamp, body_length, body_crc = _read_header(file)
        if not criteria.min_timestamp <= timestamp <= criteria.max_timestamp:
            return None
        body = file.read(body_length + 1)
    if len(body) != body_length:
        raise _Unreadable(f"body is {len(body)} bytes, the header says {body_length}")
    if zlib.crc32(body) != body_crc:
        raise _Unreadable("body checksum mismatch")
    try:
        stored_id, stored_nr, manifest, payload = msgpack.unpackb(body)
    except Exception as exc:  # checksummed but undecodable: written by something else
        raise _Unreadable(f"body does not decode: {exc}") from exc
    if stored_id != persistence_id or stored_nr != sequence_nr:
        raise _Unreadable(
            f"file holds persistence_id={stored_id!r}, sequence_nr={stored_nr} instead"
        )
    return StoredSnapshot(
        SnapshotMetadata(persistence_id, sequence_nr, timestamp), manifest, payload
    )
