"""The checks every journal applies to an atomic write before storing anything of its batch.

One rejected atomic write must never fail the others of its batch, so everything a backend could
choke on while storing (a wrong type, a number beyond 64 bits, text that is not valid UTF-8 such
as a lone surrogate) is decided here, per atomic write, before the transaction or the append.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from persistence._errors import JournalError
from persistence.journal._protocol import MAX_SEQUENCE_NR, AtomicWrite

_MIN_INT64: Final = -(1 << 63)
_MAX_INT64: Final = (1 << 63) - 1
_BYTES_LIKE: Final = (bytes, bytearray, memoryview)
_TAG_SEQUENCES: Final = (tuple, list)


def utf8_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as UTF-8 (it holds a lone surrogate), or ``None``."""
    if text.isascii():  # a flag check: the common case encodes nothing
        return None
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        return (
            f"cannot be encoded as UTF-8 ({exc.reason}: {text[exc.start]!r} at index {exc.start})"
        )
    return None


def check_atomic_write(write: AtomicWrite) -> JournalError | None:
    """The error that rejects ``write``, or ``None`` if every backend can store it.

    Well formed: at least one record, all of one persistence id (a str), consecutive sequence
    numbers from 1 up to :data:`MAX_SEQUENCE_NR`; per record a str manifest and writer id, an
    int timestamp (64 bits), a bytes-like payload and a tuple or list of str tags; and every
    text valid UTF-8.
    """
    records = write.records
    if records:
        # The common case in one pass of cheap checks (ASCII text is a flag test); anything else,
        # valid or not, takes the slow path below, which names the problem.
        persistence_id = records[0].persistence_id
        expected = records[0].sequence_nr
        if (
            type(persistence_id) is str
            and persistence_id.isascii()
            and type(expected) is int
            and 0 < expected <= MAX_SEQUENCE_NR - len(records) + 1
        ):
            for pid, sequence_nr, manifest, payload, writer_id, timestamp, tags in records:
                if not (
                    pid == persistence_id
                    and sequence_nr == expected
                    and type(sequence_nr) is int
                    and type(manifest) is str
                    and manifest.isascii()
                    and type(writer_id) is str
                    and writer_id.isascii()
                    and type(timestamp) is int
                    and -0x8000000000000000 <= timestamp <= 0x7FFFFFFFFFFFFFFF  # 64 bits
                    and type(payload) is bytes
                    and (tags == () or _tags_ascii(tags) is True)
                ):
                    break
                expected += 1
            else:
                return None
    return _check_slowly(write)


def _check_slowly(write: AtomicWrite) -> JournalError | None:
    """:func:`check_atomic_write` field by field: the error naming the first problem."""
    records = write.records
    if not records:
        return JournalError("invalid atomic write: it holds no records")
    first = records[0]
    persistence_id = first.persistence_id
    expected = first.sequence_nr
    if type(persistence_id) is not str:
        return JournalError(
            f"invalid atomic write: the persistence id must be a str, not {persistence_id!r}"
        )
    problem = utf8_problem(persistence_id)
    if problem is not None:
        return JournalError(
            f"invalid atomic write, persistence_id={persistence_id!r}: the persistence id {problem}"
        )
    if type(expected) is not int or expected < 1:
        return JournalError(
            f"invalid atomic write, persistence_id={persistence_id!r}: sequence_nr={expected!r} "
            "is not an int of at least 1 (sequence numbers start at 1)"
        )
    if expected + len(records) - 1 > MAX_SEQUENCE_NR:
        return JournalError(
            f"invalid atomic write, persistence_id={persistence_id!r}: sequence numbers go "
            f"beyond {MAX_SEQUENCE_NR}"
        )
    for record in records:
        pid, sequence_nr, manifest, payload, writer_id, timestamp, tags = record
        if pid != persistence_id:
            return JournalError(
                f"invalid atomic write: it mixes persistence ids {persistence_id!r} and "
                f"{pid!r} (an atomic write holds events of one id)"
            )
        if sequence_nr != expected or type(sequence_nr) is not int:
            return JournalError(
                f"invalid atomic write, persistence_id={persistence_id!r}: sequence_nr="
                f"{sequence_nr!r} where {expected} was expected (sequence numbers must be "
                "consecutive)"
            )
        expected += 1
        ascii_tags = _tags_ascii(tags) if tags or type(tags) not in _TAG_SEQUENCES else True
        if not (
            type(manifest) is str
            and type(writer_id) is str
            and type(timestamp) is int
            and _MIN_INT64 <= timestamp <= _MAX_INT64
            and (type(payload) is bytes or isinstance(payload, _BYTES_LIKE))
            and ascii_tags is not None
        ):
            return JournalError(
                f"invalid atomic write, persistence_id={persistence_id!r}, "
                f"sequence_nr={sequence_nr}: manifest, writer_id and tags must be str, "
                "timestamp an int and payload bytes"
            )
        if not (ascii_tags and manifest.isascii() and writer_id.isascii()):
            error = _text_error(persistence_id, sequence_nr, manifest, writer_id, tags)
            if error is not None:
                return error
    return None


def _tags_ascii(tags: Sequence[str]) -> bool | None:
    """Whether ``tags`` (a tuple or list of str) are all ASCII; ``None`` if they are not a
    tuple or list of str."""
    if type(tags) not in _TAG_SEQUENCES:
        return None
    ascii_only = True
    for tag in tags:
        if type(tag) is not str:
            return None
        ascii_only = ascii_only and tag.isascii()
    return ascii_only


def _text_error(
    persistence_id: str,
    sequence_nr: int,
    manifest: str,
    writer_id: str,
    tags: Sequence[str],
) -> JournalError | None:
    """The error naming the first text field of a record that is not valid UTF-8, if any."""
    fields = [("manifest", manifest), ("writer_id", writer_id)]
    fields += [("tag", tag) for tag in tags]
    for name, text in fields:
        problem = utf8_problem(text)
        if problem is not None:
            return JournalError(
                f"invalid atomic write, persistence_id={persistence_id!r}, "
                f"sequence_nr={sequence_nr}: the {name} {text!r} {problem}"
            )
    return None
