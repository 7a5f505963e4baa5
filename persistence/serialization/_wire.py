"""The stored form of events and snapshots: msgpack plus a few extension types.

A payload is exactly one msgpack object (nothing may follow it). The manifest (the registered type
name and its schema version) is stored next to the payload by the journal, so the top-level value
carries no type name. Nothing in a payload names a Python import path, and decoding never runs code
other than the constructors (or ``from_fields``) of registered classes and the registered upcasters.

Grammar (``msgpack(x)`` is the bytes of ``x`` packed as its own msgpack object; ``ext N`` is a
msgpack extension value with type code ``N``)::

    manifest   = name                              schema version 1 (all data stored before
                                                   versions existed is version 1)
               | name "#" version                  version = decimal, 2 to MAX_VERSION, no
                                                   leading zero: "Deposited#2"
    name       = str                               the registered name; it never ends in "#"
                                                   and digits, so a manifest reads one way only
    payload    = form                              one object, no trailing bytes
    form       = fields                            dataclass, NamedTuple, class with to/from_fields
               | value                             enum: the member's value
    fields     = map{ str => value }               constructor argument name -> value, field order
    value      = nil | bool | int | float64 | str | bin
               | array{ value }                    list
               | map{ key => value }               dict; keys are any hashable value, usually str
               | object | decimal | datetime | date | timedelta | uuid
               | tuple | set | frozenset | bigint
    int        = msgpack int                       -2**63 <= n < 2**64
    object     = ext 1  msgpack(array[ manifest: str, form ])     a nested registered value
    decimal    = ext 2  ascii(str(d))              "10000.00", "-0", "1E+3", "NaN", "-Infinity"
    datetime   = ext 3  ascii(dt.isoformat())      "2024-05-01T12:00:00.000001+02:00"; no offset
                                                   means naive
    date       = ext 4  ascii(d.isoformat())       "2024-05-01"
    timedelta  = ext 5  msgpack(array[ days: int, seconds: int, microseconds: int ])
    uuid       = ext 6  16 bytes                   UUID.bytes (big-endian)
    tuple      = ext 7  msgpack(array{ value })
    set        = ext 8  msgpack(array{ value })
    frozenset  = ext 9  msgpack(array{ value })
    bigint     = ext 10 two's complement, big-endian, n.bit_length() // 8 + 1 bytes; ints outside
                                                   the msgpack int range, of any size

No other extension type code is valid, msgpack's own Timestamp (code -1) included.

Nesting: a payload nests at most ``MAX_DEPTH`` (100) levels deep. The stored object is level 1 and
its ``fields`` map is part of that level; every array, map and ext 1, 7, 8, 9 value inside it is
one level deeper than the value holding it, and the array inside an ext 1, 7, 8 or 9 value is part
of that value's level, as is the ``fields`` map of a nested object. In Python terms: the event or
snapshot is level 1 and each list, tuple, set, frozenset, dict and registered value (object or enum
member) in it adds a level; leaves (numbers, strings, Decimal, datetime...) add none. Encoding a
deeper value is an error (the event is rejected, never stored); a deeper payload is corrupt.
Decoding never takes C stack per level, however deep or hostile the payload (see ``_nesting``).

Schema evolution: a field missing from a stored ``fields`` map takes its default (an error if it
has none); a stored key that is no longer a constructor field is an error, never silently dropped
(register an upcaster that renames or drops it). Fields declared with ``init=False`` are not stored.
Every registered type has a schema version (1 unless registered with another); the event's manifest
and the manifest of every nested object record the version the value was written at. A manifest at
the registered version decodes directly; an older one goes through the upcasters registered for
its name and version, one per version step, up to the registered version.

Round-trip rules: every value comes back with its exact type (a tuple stays a tuple and a list a
list wherever they appear, whatever the annotations say; ``Decimal`` keeps its digits, exponent and
sign, e.g. ``Decimal("10000.00")``; ``float`` keeps all 64 bits). Two exceptions: ``bytearray``
and ``memoryview`` are stored as bin and come back as ``bytes``, and an aware ``datetime`` comes
back with a fixed-offset ``datetime.timezone`` equal to the offset it had (same instant, same
offset, but a named zone such as ``ZoneInfo`` is not kept). Only exact types are accepted: a
subclass of ``dict``, ``str``, ``int``... is rejected unless it is itself registered (enums are).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from collections.abc import Callable
from typing import Any, Final

import msgpack
from msgpack import ExtType

MAX_DEPTH: Final = 100
"""How deep a stored value may nest (see the module docstring); encode and decode both check it."""

MAX_VERSION: Final = 2**31 - 1
"""The highest schema version a type can be registered at."""

_VERSION_DIGITS: Final = len(str(MAX_VERSION))


def manifest_of(name: str, version: int) -> str:
    """The manifest that records ``name`` at schema ``version`` (see the grammar)."""
    return name if version == 1 else f"{name}#{version}"


def parse_manifest(manifest: str) -> tuple[str, int]:
    """The ``(name, version)`` a stored manifest records: the inverse of :func:`manifest_of`.

    A manifest without a valid version suffix is a name at version 1 (as everything stored before
    versions existed is).
    """
    name, mark, digits = manifest.rpartition("#")
    if (
        mark
        and name
        and 0 < len(digits) <= _VERSION_DIGITS
        and digits.isascii()
        and digits.isdigit()
        and digits[0] != "0"
    ):
        version = int(digits)
        if 2 <= version <= MAX_VERSION:
            return name, version
    return manifest, 1


def looks_versioned(name: str) -> bool:
    """Whether ``name`` ends in ``#`` and digits, which a registered name must not (it would read
    as a version suffix, or be confused with one)."""
    _, mark, digits = name.rpartition("#")
    return bool(mark) and digits.isascii() and digits.isdigit()


OBJECT: Final = 1
DECIMAL: Final = 2
DATETIME: Final = 3
DATE: Final = 4
TIMEDELTA: Final = 5
UUID: Final = 6
TUPLE: Final = 7
SET: Final = 8
FROZENSET: Final = 9
BIGINT: Final = 10

CONTAINERS: Final[dict[int, str]] = {
    OBJECT: "nested object",
    TUPLE: "tuple",
    SET: "set",
    FROZENSET: "frozenset",
}
"""The extension types holding other values, by code: decoded by ``_nesting.resolve``."""

Pack = Callable[[Any], bytes]


def _encode_decimal(value: decimal.Decimal, pack: Pack) -> ExtType:
    return ExtType(DECIMAL, str(value).encode("ascii"))


def _encode_datetime(value: _dt.datetime, pack: Pack) -> ExtType:
    return ExtType(DATETIME, value.isoformat().encode("ascii"))


def _encode_date(value: _dt.date, pack: Pack) -> ExtType:
    return ExtType(DATE, value.isoformat().encode("ascii"))


def _encode_timedelta(value: _dt.timedelta, pack: Pack) -> ExtType:
    return ExtType(TIMEDELTA, pack([value.days, value.seconds, value.microseconds]))


def _encode_uuid(value: uuid.UUID, pack: Pack) -> ExtType:
    return ExtType(UUID, value.bytes)


def _encode_tuple(value: tuple[Any, ...], pack: Pack) -> ExtType:
    return ExtType(TUPLE, pack(list(value)))


def _encode_set(value: set[Any], pack: Pack) -> ExtType:
    return ExtType(SET, pack(list(value)))


def _encode_frozenset(value: frozenset[Any], pack: Pack) -> ExtType:
    return ExtType(FROZENSET, pack(list(value)))


def _encode_bigint(value: int, pack: Pack) -> ExtType:
    # msgpack hands ints to ``default`` only when they do not fit its 64-bit encodings
    return ExtType(BIGINT, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


LEAF_ENCODERS: Final[dict[type, Callable[[Any, Pack], ExtType]]] = {
    decimal.Decimal: _encode_decimal,
    _dt.datetime: _encode_datetime,
    _dt.date: _encode_date,
    _dt.timedelta: _encode_timedelta,
    uuid.UUID: _encode_uuid,
    tuple: _encode_tuple,
    set: _encode_set,
    frozenset: _encode_frozenset,
    int: _encode_bigint,
}
"""Encoders of the built-in extension types, by exact type."""


def _ascii(data: bytes) -> str:
    return data.decode("ascii")


def _unpack_plain(data: bytes) -> Any:
    # no extension hook: a leaf never holds extension values, so this never nests
    return msgpack.unpackb(data)


def _decode_decimal(data: bytes) -> decimal.Decimal:
    text = _ascii(data)
    value = decimal.Decimal(text)  # exact whatever the context precision
    if value.is_nan() and "nan" not in text.lower():
        # only reachable when the caller's context does not trap InvalidOperation
        raise ValueError(f"invalid Decimal literal {text!r}")
    return value


def _decode_datetime(data: bytes) -> _dt.datetime:
    text = _ascii(data)
    if len(text) > 25 and (text[-9] in "+-" or text[-16] in "+-"):
        return _with_seconds_offset(text)
    return _dt.datetime.fromisoformat(text)


def _with_seconds_offset(text: str) -> _dt.datetime:
    # Python 3.11's fromisoformat drops the fraction of an offset like "+00:00:00.000001"
    cut = len(text) - (9 if text[-9] in "+-" else 16)
    offset = _dt.timedelta(
        hours=int(text[cut + 1 : cut + 3]),
        minutes=int(text[cut + 4 : cut + 6]),
        seconds=int(text[cut + 7 : cut + 9]),
        microseconds=int(text[cut + 10 :] or "0"),
    )
    wall = _dt.datetime.fromisoformat(text[:cut])
    return wall.replace(tzinfo=_dt.timezone(-offset if text[cut] == "-" else offset))


def _decode_date(data: bytes) -> _dt.date:
    return _dt.date.fromisoformat(_ascii(data))


def _decode_timedelta(data: bytes) -> _dt.timedelta:
    days, seconds, microseconds = _int_triple(_unpack_plain(data))
    return _dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _int_triple(value: Any) -> tuple[int, int, int]:
    if type(value) is not list or len(value) != 3 or any(type(x) is not int for x in value):
        raise ValueError(
            f"timedelta must be stored as [days, seconds, microseconds], got {brief(value)}"
        )
    return value[0], value[1], value[2]


def _decode_uuid(data: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=data)


def _decode_bigint(data: bytes) -> int:
    if not data:
        raise ValueError("empty big integer")
    return int.from_bytes(data, "big", signed=True)


LEAF_DECODERS: Final[dict[int, Callable[[bytes], Any]]] = {
    DECIMAL: _decode_decimal,
    DATETIME: _decode_datetime,
    DATE: _decode_date,
    TIMEDELTA: _decode_timedelta,
    UUID: _decode_uuid,
    BIGINT: _decode_bigint,
}
"""Decoders of the extension types that hold no other values, by type code."""


def object_reference(value: Any) -> tuple[str, Any]:
    """Check the ``[manifest, form]`` array of a nested object."""
    if type(value) is not list or len(value) != 2 or type(value[0]) is not str:
        raise ValueError(f"a nested object must be stored as [manifest, form], got {brief(value)}")
    return value[0], value[1]


def brief(value: Any) -> str:
    """A short description of a decoded value for error messages (never a deep or huge ``repr``:
    the values here are leaves, or lists and maps whose items are not shown)."""
    kind = type(value)
    if kind is list or kind is dict:
        return f"{'an array' if kind is list else 'a map'} of {len(value)}"
    if kind is int and value.bit_length() > 64:
        return f"an int of {value.bit_length()} bits"
    return repr(value)[:60]
