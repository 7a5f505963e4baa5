"""Explaining an encode failure: which value, at which field path, has which type.

Only runs after an encode failed, so the encode hot path pays nothing for it. Looks no deeper than
``MAX_DEPTH`` levels (its recursion stays bounded; a deeper value is refused for its depth).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from collections.abc import Mapping
from typing import Any, Final

from persistence.serialization._codecs import Codec
from persistence.serialization._wire import MAX_DEPTH

_LEAVES: Final[frozenset[type]] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        bytes,
        bytearray,
        memoryview,
        decimal.Decimal,
        _dt.datetime,
        _dt.date,
        _dt.timedelta,
        uuid.UUID,
    }
)
_SEQUENCES: Final[frozenset[type]] = frozenset({list, tuple, set, frozenset})

SUPPORTED: Final = (
    "supported: None, bool, int, float, str, bytes, list, tuple, dict, set, frozenset, Decimal, "
    "datetime, date, timedelta, UUID and registered dataclasses, NamedTuples and enums"
)


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class, for error messages."""
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_unencodable(form: Any, codecs: Mapping[type, Codec]) -> str | None:
    """Say where in ``form`` (a registered object's stored form) the first unencodable value is."""
    return _Walker(codecs).fields(form, "")


class _Walker:
    __slots__ = ("_active", "_codecs")

    def __init__(self, codecs: Mapping[type, Codec]) -> None:
        self._codecs = codecs
        self._active: set[int] = set()  # ids of the containers on the current path

    def _too_deep(self) -> bool:
        # the object itself is level 1 and has no id here: the path holds its containers
        return len(self._active) >= MAX_DEPTH - 1

    def fields(self, form: Any, path: str) -> str | None:
        """Walk a stored form; the keys of a fields map are field names."""
        if type(form) is not dict:
            return self.value(form, f"{path}.value" if path else "value")
        return self._container(form, path, named=True)

    def value(self, value: Any, path: str) -> str | None:
        cls = type(value)
        if cls in _LEAVES:
            return None
        if cls is str:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"field {path!r} holds a str that is not valid UTF-8 ({exc.reason})"
            return None
        if cls is dict or cls in _SEQUENCES:
            return self._container(value, path, named=False)
        codec = self._codecs.get(cls)
        if codec is None:
            return (
                f"field {path!r} holds a value of unsupported type {qualified_name(cls)!r} "
                f"({SUPPORTED})"
            )
        if id(value) in self._active:
            return f"field {path!r} refers back to an enclosing value (a reference cycle)"
        if self._too_deep():
            return None
        try:
            form = codec.to_form(value)
        except Exception as exc:
            return f"field {path!r}: {type(exc).__name__}: {exc}"
        self._active.add(id(value))
        try:
            return self.fields(form, path)
        finally:
            self._active.discard(id(value))

    def _container(self, value: Any, path: str, *, named: bool) -> str | None:
        if id(value) in self._active:
            return f"field {path!r} refers back to an enclosing value (a reference cycle)"
        if self._too_deep():
            return None
        self._active.add(id(value))
        try:
            if type(value) is dict:
                for key, item in value.items():
                    if named and type(key) is str:
                        child = f"{path}.{key}" if path else key
                    else:
                        child = f"{path}[{key!r:.40}]"
                    problem = self.value(key, f"{child} (the key)") or self.value(item, child)
                    if problem is not None:
                        return problem
                return None
            ordered = type(value) in {list, tuple}
            for index, item in enumerate(value):
                problem = self.value(item, f"{path}[{index if ordered else '*'}]")
                if problem is not None:
                    return problem
            return None
        finally:
            self._active.discard(id(value))
