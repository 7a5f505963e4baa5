"""Stored payloads as plain JSON-able Python, without the registered classes (journal dumps).

Mapping (``json.dumps(result, allow_nan=False)`` always works):

- nil, bool, str: themselves; float: itself, or ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
- int: itself up to 640 decimal digits (``sys.int_info.str_digits_check_threshold``, below which
  every Python writes and reads int text whatever its ``int_max_str_digits``); a longer int:
  ``{"$int": hex text}`` (``"-0x1f..."``, exact; converting it to decimal text would be refused
  or take quadratic time)
- bin: base64 text; list, tuple, set, frozenset: a list (sets sorted by their JSON text)
- map: a dict; a key that is not a str becomes its JSON text (``1`` -> ``"1"``)
- Decimal: its exact text (``"10000.00"``); datetime and date: ISO 8601 text; timedelta: ``str()``
  of it (``"1 day, 0:00:01.500000"``); UUID: its canonical text
- a nested registered object or enum member: ``{"$type": manifest, "$value": form}``
- an extension type code this version does not know: ``{"$ext": code, "$data": base64 text}``
  (msgpack's own Timestamp, code -1, is refused as in decoding: it is never part of a payload)

Decoded as :meth:`Serializer.decode` does, nesting checked (``_nesting.resolve``); a payload
nested deeper than ``MAX_DEPTH`` is an error.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import json
import math
import sys
import uuid
from typing import Any, Final

import msgpack

from persistence.serialization._nesting import Pending, resolve
from persistence.serialization._wire import CONTAINERS, LEAF_DECODERS


class _Tagged:
    """A nested registered value seen without its class (hashable, so it can be a dict key)."""

    __slots__ = ("form", "manifest")

    def __init__(self, manifest: str, form: Any) -> None:
        self.manifest = manifest
        self.form = form


def _ext_hook(code: int, data: bytes) -> Any:
    if code in CONTAINERS:
        return Pending(code, data)
    decoder = LEAF_DECODERS.get(code)
    if decoder is None:
        return msgpack.ExtType(code, data)
    return decoder(data)


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, strict_map_key=False)


def to_primitive(payload: bytes) -> Any:
    """Decode ``payload`` to JSON-able values (raises whatever msgpack or a decoder raises)."""
    return _plain(resolve(_unpack(payload), _unpack, _Tagged))


def _plain(value: Any) -> Any:
    cls = type(value)
    if value is None or cls is bool or cls is str:
        return value
    if cls is int:
        return value if -_DECIMAL_INT_LIMIT < value < _DECIMAL_INT_LIMIT else {"$int": hex(value)}
    if cls is float:
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if cls is bytes:
        return base64.b64encode(value).decode("ascii")
    if cls is dict:
        return {_key(key): _plain(item) for key, item in value.items()}
    if cls in (list, tuple):
        return [_plain(item) for item in value]
    if cls in (set, frozenset):
        return sorted((_plain(item) for item in value), key=_json_text)
    if cls is _Tagged:
        return {"$type": value.manifest, "$value": _plain(value.form)}
    if cls in (decimal.Decimal, _dt.timedelta, uuid.UUID):
        return str(value)
    if cls in (_dt.datetime, _dt.date):
        return value.isoformat()
    if cls is msgpack.ExtType:
        return {"$ext": value.code, "$data": base64.b64encode(value.data).decode("ascii")}
    raise TypeError(f"unexpected decoded type {cls.__qualname__}")  # pragma: no cover


_DECIMAL_INT_LIMIT: Final = 10**sys.int_info.str_digits_check_threshold


def _key(key: Any) -> str:
    plain = _plain(key)
    return plain if type(plain) is str else _json_text(plain)


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False)
