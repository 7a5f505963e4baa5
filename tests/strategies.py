"""Hypothesis strategies shared by the test suite."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgpack
from hypothesis import strategies as st

from persistence.serialization import MAX_DEPTH

# -- serialization: every field value the msgpack serializer supports ----------------------------

_MAX_OFFSET = dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999)


def fixed_offsets() -> st.SearchStrategy[dt.timezone]:
    """``datetime.timezone`` with any offset Python allows (strictly within a day)."""
    return st.timedeltas(min_value=-_MAX_OFFSET, max_value=_MAX_OFFSET).map(dt.timezone)


def datetimes() -> st.SearchStrategy[dt.datetime]:
    """Naive datetimes and datetimes aware with a fixed offset."""
    return st.datetimes(timezones=st.none() | fixed_offsets())


def hashable_values() -> st.SearchStrategy[Any]:
    """Supported values that can be set members and dict keys and compare equal to themselves."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**200), max_value=2**200),  # beyond msgpack's 64-bit ints
        st.text(),
        st.binary(),
        st.decimals(allow_nan=False),
        datetimes(),
        st.dates(),
        st.timedeltas(),
        st.uuids(),
    )


def leaf_values() -> st.SearchStrategy[Any]:
    """Every supported non-container value, including NaNs and signed zeros."""
    return st.one_of(
        hashable_values(),
        st.floats(),
        st.decimals(allow_nan=True, allow_infinity=True),
    )


def field_values(
    *,
    leaves: st.SearchStrategy[Any] | None = None,
    containers: Callable[[st.SearchStrategy[Any]], st.SearchStrategy[Any]] | None = None,
    max_leaves: int = 12,
) -> st.SearchStrategy[Any]:
    """Nested supported values: lists, tuples, dicts (str and other keys), sets, frozensets.

    ``leaves`` adds leaf values (e.g. registered enum members); ``containers`` maps the
    strategy for children to extra container values (e.g. registered dataclasses holding them).
    """
    base = leaf_values() if leaves is None else leaf_values() | leaves

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        built = st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, max_size=4).map(tuple),
            st.dictionaries(st.text(max_size=8), children, max_size=4),
            st.dictionaries(hashable_values(), children, max_size=3),
            st.dictionaries(st.tuples(st.integers(), st.text(max_size=4)), children, max_size=2),
            st.sets(hashable_values(), max_size=4),
            st.frozensets(hashable_values(), max_size=4),
        )
        return built if containers is None else built | containers(children)

    return st.recursive(base, extend, max_leaves=max_leaves)


# -- hostile payloads: any msgpack, any extension type, nested deep --------------------------------

EXTENSION_CODES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 42, 127)
"""Every extension type code of the wire format and codes it does not use (``msgpack.ExtType``
takes 0..127 only: negative ones, msgpack's reserved range, come as Timestamps or raw bytes)."""

_CONTAINER_CODES = (1, 7, 8, 9)


def msgpack_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Values ``msgpack.packb`` accepts, with extension values holding random bytes or packed
    values (so a nested object, tuple or set may hold anything), and Timestamps (type -1)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(),
        st.text(max_size=8),
        st.binary(max_size=8),
        st.builds(
            msgpack.Timestamp,
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.integers(min_value=0, max_value=999_999_999),
        ),
        st.builds(msgpack.ExtType, st.sampled_from(EXTENSION_CODES), st.binary(max_size=20)),
    )
    keys = st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1), st.binary(max_size=4))

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=4),
            st.builds(
                lambda code, value: msgpack.ExtType(code, msgpack.packb(value)),
                st.sampled_from(EXTENSION_CODES),
                children,
            ),
            st.builds(
                lambda manifest, fields: msgpack.ExtType(1, msgpack.packb([manifest, fields])),
                st.sampled_from(["Holder", "Point", "Color", "Money", "Gone"]),
                st.dictionaries(st.sampled_from(["value", "x", "y", "amount"]), children),
            ),
        )

    return st.recursive(scalars, extend, max_leaves=max_leaves)


@st.composite
def deep_payloads(draw: st.DrawFn, max_levels: int = 600) -> bytes:
    """A fields map whose one value nests arrays, maps and container extension values (nested
    object, tuple, set, frozenset) ``0..max_levels`` deep, in a random order."""
    boundaries = st.sampled_from([MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, max_levels])
    levels = draw(st.integers(min_value=0, max_value=max_levels) | boundaries)
    kinds = draw(st.lists(st.sampled_from(("array", "map", *_CONTAINER_CODES)), min_size=1))
    value: Any = draw(st.sampled_from([1, "x", None, []]))
    for level in range(levels):
        kind = kinds[level % len(kinds)]
        if kind == "array":
            value = [value]
        elif kind == "map":
            value = {"value": value}
        elif kind == 1:
            value = msgpack.ExtType(1, msgpack.packb(["Holder", {"value": value}]))
        else:
            value = msgpack.ExtType(kind, msgpack.packb([value]))
    payload: bytes = msgpack.packb({"value": value})
    return payload


def extension_value(code: int, data: bytes) -> bytes:
    """The msgpack bytes of an extension value of any type code, -128..127."""
    header = {1: b"\xd4", 2: b"\xd5", 4: b"\xd6", 8: b"\xd7", 16: b"\xd8"}.get(len(data))
    if header is None:
        header = (
            b"\xc7" + bytes([len(data)]) if len(data) < 256 else b"\xc8" + len(data).to_bytes(2)
        )
    return header + code.to_bytes(1, signed=True) + data
