"""Hypothesis strategies shared by the test suite."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

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
